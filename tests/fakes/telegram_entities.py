"""Explicit ``entities`` as the Bot API reads them, with the real server's refusals.

python-telegram-bot sends ``entities`` (and ``caption_entities``) as a JSON string in
the form. The server decodes it, reads each MessageEntity (type, offset and length in
UTF-16 units), refuses unknown types, entities that run past the end of the text,
links it cannot open and more than 100 entities, each with the description a bot
would see from Telegram.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.telegram_markup import utf16_len
from tests.fakes.telegram_state import bad_request

MAX_ENTITIES = 100

# Types Telegram detects by itself; given explicitly, they are ignored, not refused.
FOUND_TYPES = frozenset(
    {"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number"}
)
GIVEN_TYPES = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
    }
)


def _refuse(reason: str) -> Exception:
    return bad_request(f"can't parse MessageEntity: {reason}")


def _field(entity: dict, name: str) -> Any:
    if name not in entity:
        raise _refuse(f'Can\'t find field "{name}"')
    return entity[name]


def _integer(entity: dict, name: str) -> int:
    value = _field(entity, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(f'Field "{name}" must be of type Number')
    return value


def _check_url(url: Any) -> None:
    if not isinstance(url, str):
        raise _refuse('Field "url" must be of type String')
    # "host:8080/x" has no scheme: Telegram reads a bare address as http.
    has_scheme = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:(?!\d)", url) is not None
    parts = urlsplit(url if has_scheme else "http://" + url)
    scheme = parts.scheme.lower()
    if scheme == "tg":
        return
    if scheme not in ("http", "https"):
        raise bad_request(f"entity URL '{url}' is invalid: Unsupported URL protocol")
    if "." not in (parts.hostname or ""):
        raise bad_request(f"entity URL '{url}' is invalid: Wrong HTTP URL")


def read_entities(text: str, raw: Any) -> list[dict]:
    """The entities of a message as Telegram stores them, or the ApiError it answers with."""
    if isinstance(raw, str):  # not valid JSON, so the form decoder left it as it came
        raise bad_request("can't parse entities JSON object")
    if not isinstance(raw, list):
        raise bad_request("expected an Array of MessageEntity")
    entities: list[dict] = []
    length = utf16_len(text)
    for entity in raw:
        if not isinstance(entity, dict):
            raise _refuse("expected an Object")
        kind = _field(entity, "type")
        if not isinstance(kind, str):
            raise _refuse('Field "type" must be of type String')
        offset, size = _integer(entity, "offset"), _integer(entity, "length")
        if kind in FOUND_TYPES:
            continue
        if kind not in GIVEN_TYPES:
            raise _refuse("Unsupported type specified")
        if kind == "text_link":
            _check_url(_field(entity, "url"))
        if offset < 0 or size < 0:
            # Our bot never sends these; the wording of this refusal is the double's own.
            raise _refuse(f'Fields "offset" and "length" must not be negative, not {offset}/{size}')
        if size == 0:
            continue  # an empty entity formats nothing, and Telegram drops it
        if offset + size > length:
            raise bad_request(
                f"entity beginning at UTF-16 offset {offset} ends after the end of the text "
                f"at UTF-16 offset {length}"
            )
        entities.append(dict(entity))
    if len(entities) > MAX_ENTITIES:
        raise bad_request("ENTITIES_TOO_LONG")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return entities
