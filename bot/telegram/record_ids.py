"""Ticket and record ids as they arrive in button data and command arguments.

Both come from outside: button data can be forged, and staff type ids by hand.
``str.isdigit()`` also accepts "²", which ``int()`` then rejects, and a longer
number overflows the database driver; either would fail the update instead of
being ignored as not an id.
"""

from __future__ import annotations

import re

_ID = re.compile(r"[0-9]{1,18}")


def is_record_id(text: str) -> bool:
    """ASCII digits that fit SQLite's integers."""
    return _ID.fullmatch(text) is not None


def is_ticket_argument(text: str) -> bool:
    """A ticket id as staff type it, with or without its "#"."""
    return is_record_id(text.removeprefix("#"))
