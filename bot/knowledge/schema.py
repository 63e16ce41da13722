"""Checking composed YAML against the project's frozen dataclasses.

The dataclasses are the schema: their fields are the allowed keys and their
type hints the allowed values, so a setting added in code is checked the day
it is added, with no second list to keep in step. Every problem is collected
with its line before anything is given up on, so one ``check`` run shows an
admin everything that needs fixing.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import Problem
from bot.knowledge.language import LANGUAGE_CODE
from bot.knowledge.yaml_source import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    describe,
    line_of,
    mapping_items,
    scalar_value,
)

# Returned instead of a value when the node was wrong; the reason is already in the report.
INVALID: Any = object()


@dataclass
class Report:
    """Problems found in one file, in the order they were found."""

    path: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, where: Node | int | None, message: str) -> None:
        line = line_of(where) if isinstance(where, Node) else where
        self.problems.append(Problem(self.path, line, message))


# A field that needs more than its type hint says (e.g. persona messages) gets
# a hook: it receives the value node and the dotted name, and returns the value or INVALID.
FieldHook = Callable[[Node, str, Report], Any]
# Value rules that types cannot express ("between 0 and 2"); returns what is
# wrong, or None when the value is fine.
ValueCheck = Callable[[type, str, Any], str | None]


@dataclass(frozen=True)
class Rules:
    hidden: Mapping[type, frozenset[str]] = field(default_factory=dict)  # not settable from YAML
    required: Mapping[type, frozenset[str]] = field(
        default_factory=dict
    )  # beyond fields without defaults
    hooks: Mapping[tuple[type, str], FieldHook] = field(default_factory=dict)
    check: ValueCheck | None = None


@dataclass(frozen=True)
class _Field:
    name: str
    hint: Any
    required: bool


@functools.cache
def _fields(cls: type) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        _Field(
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def build(
    cls: type,
    node: Node | None,
    report: Report,
    rules: Rules,
    *,
    label: str = "",
    line: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """An instance of ``cls`` from a mapping node, or INVALID after reporting why not.

    ``node`` None stands for a key left empty (``llm:`` with everything below
    commented out), which means "all defaults"; ``line`` then locates missing keys.
    """
    before = len(report.problems)
    prefix = f"{label}: " if label else ""
    hidden = rules.hidden.get(cls, frozenset())
    specs = {f.name: f for f in _fields(cls) if f.name not in hidden}
    if node is not None and not isinstance(node, MappingNode):
        report.add(node, f"{label or 'value'}: expected a mapping, got {describe(node)}")
        return INVALID
    where = line_of(node) if node is not None else line
    values: dict[str, Any] = {}
    seen: set[str] = set()
    items = mapping_items(node, report.path, report.problems, label) if node is not None else ()
    for key, key_node, value_node in items:
        spec = specs.get(key)
        if spec is None:
            report.add(key_node, prefix + unknown_key_message(key, specs))
            # "anwser" already says what is wrong; "answer is missing" would be the same mistake twice.
            seen.add(closest_key(key, specs) or key)
            continue
        seen.add(key)
        name = f"{label}.{key}" if label else key
        hook = rules.hooks.get((cls, key))
        if not spec.required and hook is None and _is_null(value_node):
            continue  # "office_hours:" left blank keeps the default, as if the line were absent
        value = (
            hook(value_node, name, report)
            if hook
            else convert(spec.hint, value_node, name, report, rules)
        )
        if value is INVALID:
            continue
        if spec.required and spec.hint is str and not value:
            report.add(value_node, f"{name}: is empty")
            continue
        message = rules.check(cls, key, value) if rules.check else None
        if message:
            report.add(value_node, f"{name}: {message}")
            continue
        values[key] = value
    extra_required = rules.required.get(cls, frozenset())
    for spec in specs.values():
        if (spec.required or spec.name in extra_required) and spec.name not in seen:
            report.add(where, f"{prefix}missing required key '{spec.name}'")
    if len(report.problems) > before:
        return INVALID
    return cls(**values, **(extra or {}))


def convert(hint: Any, node: Node, name: str, report: Report, rules: Rules) -> Any:
    """The value of ``node`` as type ``hint``, or INVALID after reporting what was expected."""
    kind, arg = _shape(hint)
    if kind == "optional":
        return None if _is_null(node) else convert(arg, node, name, report, rules)
    if kind == "dataclass":
        if _is_null(node):
            return build(hint, None, report, rules, label=name, line=line_of(node))
        return build(hint, node, report, rules, label=name)
    if kind == "list":
        return _convert_list(arg, node, name, report, rules)
    if kind == "dict":
        return _convert_dict(arg, node, name, report, rules)
    return _convert_scalar(hint, node, name, report)


@functools.cache
def _shape(hint: Any) -> tuple[str, Any]:
    """What kind of reading a hint asks for; cached because a big FAQ asks a hundred thousand times."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"only 'X | None' unions can be read from YAML, not {hint}")
        return "optional", inner[0]
    if dataclasses.is_dataclass(hint):
        return "dataclass", None
    if origin is tuple:
        return "list", args[0]
    if origin is dict:
        return "dict", args[1]
    return "scalar", None


def expected(hint: Any) -> str:
    """A type hint in the words an admin reads: "expected an integer"."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(expected(a) for a in args if a is not type(None))
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    if origin is tuple:
        item = expected(args[0])
        plural = {"a string": "strings", "an integer": "integers", "a number": "numbers"}
        return f"a list of {plural.get(item, 'mappings' if item == 'a mapping' else item)}"
    if origin is dict:
        return "a mapping of names to texts"
    return _SCALAR_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def unknown_key_message(key: str, allowed: Iterable[str]) -> str:
    allowed = sorted(allowed)
    close = closest_key(key, allowed)
    if close:
        return f"unknown key '{key}', did you mean '{close}'?"
    return f"unknown key '{key}'; allowed keys: {', '.join(allowed)}"


def by_language(
    node: Node, name: str, report: Report, expected: str
) -> list[tuple[str, Node]] | None:
    """The items of a mapping keyed by language code (``answers:``, ``questions:``,
    ``translations:``): none for an empty value, None for anything but a mapping, which
    is reported as not holding ``expected``. A key that is no language code is reported
    at its line and left out."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []
    if not isinstance(node, MappingNode):
        report.add(
            node,
            f"{name}: expected a mapping of language codes to {expected}, got {describe(node)}",
        )
        return None
    items = []
    for code, code_node, value_node in mapping_items(node, report.path, report.problems, name):
        if LANGUAGE_CODE.match(code):
            items.append((code, value_node))
        else:
            report.add(
                code_node,
                f"{name}: {code!r} is not a language code; use codes such as zh, de, es or pt-BR",
            )
    return items


def closest_key(key: str, allowed: Iterable[str]) -> str | None:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not close:
        close = [a for a in allowed if a.lower() == key.lower()]
    return close[0] if close else None


_SCALAR_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _convert_list(item_hint: Any, node: Node, name: str, report: Report, rules: Rules) -> Any:
    if _is_null(node):
        return ()
    if not isinstance(node, SequenceNode):
        found = describe(node)
        hint = ""
        if isinstance(node, ScalarNode):
            found = f"a single value {found}"
            hint = "; write it as a list, e.g. [" + node.value + "]"
        report.add(node, f"{name}: expected {expected(tuple[item_hint, ...])}, got {found}{hint}")
        return INVALID
    before = len(report.problems)
    items = []
    for index, item_node in enumerate(node.value):
        item_name = f"{name}[{index}]"
        value = convert(item_hint, item_node, item_name, report, rules)
        if value is not INVALID and item_hint is str and not value:
            report.add(item_node, f"{item_name}: is empty")
        items.append(value)
    return INVALID if len(report.problems) > before else tuple(items)


def _convert_dict(value_hint: Any, node: Node, name: str, report: Report, rules: Rules) -> Any:
    if _is_null(node):
        return {}
    if not isinstance(node, MappingNode):
        report.add(
            node, f"{name}: expected {expected(dict[str, value_hint])}, got {describe(node)}"
        )
        return INVALID
    before = len(report.problems)
    result = {}
    for key, _key_node, value_node in mapping_items(node, report.path, report.problems, name):
        result[key] = convert(value_hint, value_node, f"{name}.{key}", report, rules)
    return INVALID if len(report.problems) > before else result


def _convert_scalar(hint: Any, node: Node, name: str, report: Report) -> Any:
    if not isinstance(node, ScalarNode):
        report.add(node, f"{name}: expected {expected(hint)}, got {describe(node)}")
        return INVALID
    try:
        value = scalar_value(node)
    except ValueError as exc:
        report.add(node, f"{name}: {exc}")
        return INVALID
    if hint is str:
        if isinstance(value, str):
            # Block scalars end in a newline and stray spaces are invisible in an
            # editor; neither is ever meant as part of the text.
            return value.strip()
        if value is None:
            report.add(node, f"{name}: is empty")
        else:
            report.add(
                node,
                f'{name}: expected a string, got {describe(node)}; put it in quotes: "{node.value}"',
            )
        return INVALID
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    report.add(node, f"{name}: expected {expected(hint)}, got {describe(node)}")
    return INVALID
