"""Removing personal data from customer and staff text before it leaves a ticket.

The knowledge-gap report turns real conversations into FAQ drafts and eval
cases that admins read, share and commit; an address, phone number or order
number copied from one customer's ticket must never end up in them. Each kind of
data becomes a placeholder that says what stood there ("[email]", "[phone]"), so
a draft still reads naturally and an admin sees that something was removed.

It errs on the side of removing: a long run of digits is taken for an order or
card number even when it was something else, because a missing number costs a
draft little and a leaked one costs a customer much.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EMAIL = "[email]"
PHONE = "[phone]"
NUMBER = "[number]"
NAME = "[name]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Card numbers: 13 to 19 digits, maybe grouped by spaces or dashes.
_CARD = re.compile(r"(?<!\w)(?:\d[ -]?){12,18}\d(?!\w)")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+Z?)?\b")
# Phone numbers: an optional +, then digits with spaces, dots, dashes or brackets,
# at least seven digits in all.
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{5,}\d(?!\w)")
# Order, invoice, ticket or tracking references: a keyword then a code with digits,
# and any bare run of five or more digits.
_ORDER = re.compile(
    r"(?i)\b(order|bestellung|commande|pedido|ordine|заказ|invoice|rechnung|tracking|"
    r"parcel|paket|sendung)(\s*(?:no\.?|nr\.?|number|#|n°|№)?\s*[:#]?\s*)"
    r"([A-Z]{0,4}[-\d][\w-]{2,})"
)
_LONG_NUMBER = re.compile(r"(?<!\w)#?\d{5,}(?!\w)")
_NAME_WORD = r"[A-ZÀ-ÖØ-ÞА-ЯЁ][^\W\d_]*(?:['-][^\W\d_]+)?"
# "my name is X", "I'm X", "this is X", "name: X" and the same in a few languages;
# the name is one or two capitalised words right after the phrase.
_NAME_PHRASE = re.compile(
    r"(?i:\b(?:my name is|my name's|i am|i'm|im|this is|name\s*:|call me|"
    r"je m'appelle|je suis|ich heiße|ich heisse|mein name ist|ich bin|me llamo|mi nombre es|"
    r"soy|mi chiamo|sono|меня зовут|я|chamo-me|meu nome é|me chamo|nazywam się|jestem)\s+)"
    rf"({_NAME_WORD}(?:\s+{_NAME_WORD})?)"
)


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with emails, phone, card and order numbers, and names replaced.

    ``names`` are names known from elsewhere (the customer's Telegram first and
    last name); they are removed wherever they appear as whole words, in any case.
    """
    if not text:
        return text
    out = _EMAIL.sub(EMAIL, text)
    out = _ORDER.sub(lambda m: m.group(1) + m.group(2) + NUMBER, out)
    out = _CARD.sub(NUMBER, out)
    out = _DATE.sub(lambda m: m.group(0).replace("-", "\u2011"), out)  # kept, not a phone
    out = _PHONE.sub(_phone_or_number, out)
    out = out.replace("\u2011", "-")
    out = _LONG_NUMBER.sub(NUMBER, out)
    out = _NAME_PHRASE.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + NAME, out)
    known = {n.strip() for n in names if n and len(n.strip()) > 1}
    for name in sorted(known, key=len, reverse=True):
        out = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", NAME, out, flags=re.IGNORECASE)
    return out


def _phone_or_number(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    if digits < 7:
        return match.group(0)  # a date, a price, a size: not a phone number
    return PHONE
