"""Loading the persona and the FAQ, with errors an admin can act on.

Every function collects all problems before giving up, because fixing one
typo per restart is how a five-minute edit becomes an afternoon. The
``*_problems`` functions are the same work without raising, for ``check``
(``bot.config_check``) and for the live reloader, which keeps the last good
version when an edit is broken. ``bot.yaml`` and the environment are read by
``bot.settings_loader``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, Problem
from bot.knowledge.faq import FaqEntry, FaqSet
from bot.knowledge.persona import Persona
from bot.knowledge.persona_loader import read_persona
from bot.knowledge.schema import INVALID, Report, Rules, build, by_language, unknown_key_message
from bot.knowledge.yaml_source import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    collector_paused,
    describe,
    line_of,
    mapping_items,
    read_yaml,
)

__all__ = ["faq_paths", "faq_problems", "load_faq", "load_persona", "persona_problems"]

PERSONA_FILE = "persona.yaml"


def load_persona(path: Path) -> Persona:
    persona, problems = read_persona(path)
    if problems:
        raise ConfigError(problems)
    return persona


def persona_problems(path: Path) -> list[Problem]:
    return read_persona(path)[1]


def load_faq(paths: Sequence[Path]) -> FaqSet:
    faq, problems = _read_faq(paths)
    if problems:
        raise ConfigError(problems)
    return faq


def faq_problems(paths: Sequence[Path]) -> list[Problem]:
    return _read_faq(paths)[1]


def faq_paths(faq_dir: Path) -> list[Path]:
    """FAQ files in name order; hidden files are editors' lock and swap files, not FAQ."""
    if not faq_dir.is_dir():
        return []
    found = [
        path
        for pattern in ("*.yaml", "*.yml")
        for path in faq_dir.glob(pattern)
        if not path.name.startswith(".") and path.is_file()
    ]
    return sorted(found)


# --- FAQ files --------------------------------------------------------------------


def _by_language(what: str):
    """A hook reading ``answers:`` or ``questions:``: language codes to texts, such as
    'zh: ...' or 'pt-BR: ...'; ``what`` is "answer" or "question"."""

    def read(node: Node, name: str, report: Report) -> Any:
        before = len(report.problems)
        items = by_language(node, name, report, f"{what}s (for example 'zh: ...')")
        if items is None:
            return INVALID
        texts: dict[str, str] = {}
        for key, value_node in items:
            value = value_node.value if isinstance(value_node, ScalarNode) else None
            if not isinstance(value, str) or value_node.tag != "tag:yaml.org,2002:str":
                report.add(
                    value_node,
                    f"{name}.{key}: expected the {what} as text, got {describe(value_node)}",
                )
            elif not value.strip():
                report.add(value_node, f"{name}.{key}: is empty")
            else:
                texts[key] = value
        return INVALID if len(report.problems) > before else texts

    return read


_FAQ_RULES = Rules(
    hidden={FaqEntry: frozenset({"source", "line"})},
    hooks={
        (FaqEntry, "answers"): _by_language("answer"),
        (FaqEntry, "questions"): _by_language("question"),
    },
)
_FAQ_SHAPE = "a mapping with the key 'faq' holding a list of entries"


def _read_faq(paths: Sequence[Path]) -> tuple[FaqSet, list[Problem]]:
    problems: list[Problem] = []
    entries: list[FaqEntry] = []
    for path in paths:
        with collector_paused():
            file_entries, file_problems = _read_faq_file(path)
        entries += file_entries
        problems += file_problems
    problems += _duplicate_ids(entries)
    return FaqSet(tuple(entries)), problems


def _read_faq_file(path: Path) -> tuple[list[FaqEntry], list[Problem]]:
    root, problems = read_yaml(path)
    if problems:
        return [], problems
    report = Report(str(path))
    if root is None:
        report.add(1, f"the file is empty; expected {_FAQ_SHAPE}")
        return [], report.problems
    if isinstance(root, SequenceNode):
        report.add(
            root,
            f"expected {_FAQ_SHAPE}, got a list; "
            "put 'faq:' on the first line and indent the entries under it",
        )
        return [], report.problems
    if not isinstance(root, MappingNode):
        report.add(root, f"expected {_FAQ_SHAPE}, got {describe(root)}")
        return [], report.problems
    entries_node: Node | None = None
    for key, key_node, value_node in mapping_items(root, report.path, report.problems):
        if key == "faq":
            entries_node = value_node
        else:
            report.add(key_node, unknown_key_message(key, ["faq"]))
    if entries_node is None:
        if not report.problems:
            report.add(root, "missing the key 'faq' that holds the list of entries")
        return [], report.problems
    return _faq_entries(entries_node, report), report.problems


def _faq_entries(node: Node, report: Report) -> list[FaqEntry]:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []  # "faq:" with every entry commented out
    if not isinstance(node, SequenceNode):
        report.add(
            node, f"faq: expected a list of entries (each starting with '- '), got {describe(node)}"
        )
        return []
    entries = []
    for number, item in enumerate(node.value, start=1):
        if not isinstance(item, MappingNode):
            report.add(
                item,
                f"entry {number}: expected a mapping with id, question and answer, got {describe(item)}",
            )
            continue
        line = line_of(item)
        entry = build(
            FaqEntry, item, report, _FAQ_RULES, extra={"source": report.path, "line": line}
        )
        if entry is not INVALID:
            entries.append(entry)
    return entries


def _duplicate_ids(entries: Sequence[FaqEntry]) -> list[Problem]:
    """Report a repeated id at both places: either copy may be the one to rename."""
    problems = []
    first: dict[str, FaqEntry] = {}
    for entry in entries:
        earlier = first.setdefault(entry.id, entry)
        if earlier is entry:
            continue
        problems.append(
            Problem(
                entry.source,
                entry.line,
                f"duplicate id '{entry.id}' (first defined at {earlier.source}:{earlier.line})",
            )
        )
        problems.append(
            Problem(
                earlier.source,
                earlier.line,
                f"id '{entry.id}' is defined again at {entry.source}:{entry.line}",
            )
        )
    return problems
