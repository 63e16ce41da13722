"""Reading ``config/persona.yaml``: every text checked before a customer can see it.

Each section of messages must name exactly the keys the bot uses
(``bot.knowledge.persona``): a missing key, a misspelt one or a placeholder
the bot does not fill is reported with its file and line.
"""

from __future__ import annotations

import dataclasses
import functools
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bot.errors import Problem
from bot.knowledge.persona import (
    COMMAND_KEYS,
    MESSAGE_KEYS,
    STAFF_MESSAGE_KEYS,
    STAFF_SIDE_MESSAGES,
    TRANSLATABLE_KEYS,
    WEEKDAYS,
    Persona,
    Translation,
    allowed_placeholders,
)
from bot.knowledge.schema import (
    INVALID,
    Report,
    Rules,
    build,
    by_language,
    closest_key,
    unknown_key_message,
)
from bot.knowledge.yaml_source import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    describe,
    line_of,
    mapping_items,
    read_yaml,
    scalar_value,
)
from bot.reasons import REASON_CODES

ADDED_TEXTS = Path(__file__).with_name("added_texts.yaml")

# Kept exactly as written: its trailing space or colon separates it from the staff text.
_VERBATIM_MESSAGES = frozenset({"staff_reply_prefix"})


def read_persona(path: Path) -> tuple[Persona, list[Problem]]:
    placeholder = Persona(name="", company="", instructions="")
    root, problems = read_yaml(path)
    if problems:
        return placeholder, problems
    report = Report(str(path))
    if root is None:
        report.add(1, "the file is empty; a persona needs name, company, instructions and messages")
        return placeholder, report.problems
    persona = build(Persona, root, report, _PERSONA_RULES)
    if persona is INVALID:
        return placeholder, report.problems
    return with_added_texts(persona), []


@functools.cache
def added_texts() -> dict[str, dict[str, str]]:
    """Texts of keys added since persona.yaml first shipped, by section (see the file)."""
    with ADDED_TEXTS.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def with_added_texts(persona: Persona) -> Persona:
    """An older persona.yaml lacks the keys added since; they get the shipped texts."""
    added = added_texts()
    return dataclasses.replace(
        persona,
        messages={**added["messages"], **persona.messages},
        commands={**added["commands"], **persona.commands},
        staff_messages={**added["staff_messages"], **persona.staff_messages},
    )


def _text_section(keys: Sequence[str], what: str, section: str = ""):
    """A hook reading a mapping that must hold a text for each of ``keys``.

    Keys added since persona.yaml first shipped (``added_texts``) may be left out.
    """

    def read(node: Node, name: str, report: Report) -> Any:
        optional = added_texts().get(section, {})
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            if all(key in optional for key in keys):
                return {}
            report.add(node, f"{name}: is empty; it needs {', '.join(keys)}")
            return INVALID
        if not isinstance(node, MappingNode):
            report.add(node, f"{name}: expected a mapping of {what}, got {describe(node)}")
            return INVALID
        before = len(report.problems)
        texts: dict[str, str] = {}
        accounted: set[str] = set()  # given, or misspelt and already reported as such
        for key, key_node, value_node in mapping_items(node, report.path, report.problems, name):
            if key not in keys:
                report.add(key_node, f"{name}: {unknown_key_message(key, keys)}")
                accounted.add(closest_key(key, keys) or key)
                continue
            accounted.add(key)
            text = _message_text(key, value_node, f"{name}.{key}", report)
            if text is not None:
                texts[key] = text
        missing = [key for key in keys if key not in accounted and key not in optional]
        if missing:
            report.add(node, f"{name}: missing {', '.join(missing)}")
        return INVALID if len(report.problems) > before else texts

    return read


def _translations(node: Node, name: str, report: Report) -> Any:
    """``translations:`` maps language codes to messages, each any of ``messages``' keys,
    and to the ``office_hours`` that messages in that language fill in, the ``commands``
    menu and the ``weekdays`` said in that language."""
    before = len(report.problems)
    items = by_language(node, name, report, "messages (for example 'de: {faq_choices: ...}')")
    if items is None:
        return INVALID
    translations: dict[str, Translation] = {}
    for code, texts_node in items:
        where = f"{name}.{code}"
        if not isinstance(texts_node, MappingNode):
            report.add(texts_node, f"{where}: expected a mapping of message names to texts")
            continue
        translation = Translation()
        for key, key_node, value_node in mapping_items(
            texts_node, report.path, report.problems, where
        ):
            if key == "office_hours":
                value = value_node.value if isinstance(value_node, ScalarNode) else None
                if isinstance(value, str) and value.strip():
                    translation = dataclasses.replace(translation, office_hours=value.strip())
                else:
                    report.add(value_node, f"{where}.office_hours: expected a text")
            elif key == "commands":
                commands = _TRANSLATED_COMMANDS(value_node, f"{where}.commands", report)
                if commands is not INVALID:
                    translation = dataclasses.replace(translation, commands=commands)
            elif key == "weekdays":
                days = _weekdays(value_node, f"{where}.weekdays", report)
                if days is not INVALID:
                    translation = dataclasses.replace(translation, weekdays=days)
            elif key in STAFF_SIDE_MESSAGES:
                report.add(key_node, f"{where}: {key} is read by staff, not translated")
            elif key not in TRANSLATABLE_KEYS:
                known = (*TRANSLATABLE_KEYS, "office_hours", "commands", "weekdays")
                report.add(key_node, f"{where}: {unknown_key_message(key, known)}")
            elif (text := _message_text(key, value_node, f"{where}.{key}", report)) is not None:
                translation.messages[key] = text
        translations[code] = translation
    return INVALID if len(report.problems) > before else translations


def _weekdays(node: Node, name: str, report: Report) -> Any:
    """Seven names of days, Monday first: the day the team is back is said with them."""
    items = node.value if isinstance(node, SequenceNode) else None
    names = [item.value.strip() for item in items or () if isinstance(item, ScalarNode)]
    if items is None or len(items) != len(WEEKDAYS) or len(names) != len(WEEKDAYS):
        report.add(node, f"{name}: expected a list of the 7 days' names, Monday first")
        return INVALID
    if not all(names):
        report.add(node, f"{name}: every day needs a name")
        return INVALID
    return tuple(names)


def _message_text(key: str, node: Node, name: str, report: Report) -> str | None:
    verbatim = key in _VERBATIM_MESSAGES
    value: Any = None
    if isinstance(node, ScalarNode):
        try:
            value = scalar_value(node)
        except ValueError as exc:
            report.add(node, f"{name}: {exc}")
            return None
    if value is None and verbatim and isinstance(node, ScalarNode):
        return ""
    if not isinstance(value, str):
        if value is None and isinstance(node, ScalarNode):
            report.add(node, f"{name}: is empty")
        else:
            report.add(node, f"{name}: expected a text, got {describe(node)}")
        return None
    text = value if verbatim else value.strip()
    if not text and not verbatim:
        report.add(node, f"{name}: is empty")
        return None
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        report.add(
            node, f"{name}: broken placeholder ({exc}); write {{{{ and }}}} for literal braces"
        )
        return None
    parts = name.split(".")
    # translations.de.commands.start is checked as a command, translations.de.reset as a message
    section = parts[2] if parts[0] == "translations" and len(parts) > 3 else parts[0]
    allowed = allowed_placeholders(section, key) if section != "reasons" else ()
    for field in dict.fromkeys(fields):
        if field not in allowed:
            shown = " ".join("{" + a + "}" for a in allowed) or "none"
            report.add(
                _line_of_text(report.path, node, "{" + field),
                f"{name}: unknown placeholder {{{field}}}; the customer would see it as "
                f"written. Allowed here: {shown}; write {{{{ and }}}} for literal braces",
            )
            return None
    return text


def _line_of_text(path: str, node: Node, needle: str) -> int:
    """The line of ``needle`` inside a (possibly multi-line) scalar, as the admin sees it.

    Node marks only say where the value starts; in a block text the mistake may
    be ten lines further down.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return line_of(node)
    for number in range(node.start_mark.line, min(node.end_mark.line + 1, len(lines))):
        if needle in lines[number]:
            return number + 1
    return line_of(node)


# Any of the commands, each as in ``commands:``; the rest keep their description there.
_TRANSLATED_COMMANDS = _text_section(COMMAND_KEYS, "command names to descriptions", "commands")

_PERSONA_RULES = Rules(
    required={Persona: frozenset({"messages", "reasons", "staff_messages"})},
    hooks={
        (Persona, "messages"): _text_section(MESSAGE_KEYS, "message names to texts", "messages"),
        (Persona, "reasons"): _text_section(REASON_CODES, "reason codes to readable names"),
        (Persona, "staff_messages"): _text_section(
            STAFF_MESSAGE_KEYS, "message names to texts", "staff_messages"
        ),
        (Persona, "commands"): _text_section(
            COMMAND_KEYS, "command names to descriptions", "commands"
        ),
        (Persona, "translations"): _translations,
        (Persona, "weekdays"): _weekdays,
    },
)
