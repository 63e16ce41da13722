"""Reading YAML so that every value still knows the line it came from.

``yaml.safe_load`` throws line numbers away, and an admin told "top_k must be an
integer" in a 2,000-line FAQ folder cannot act on it. So files are only
*composed* into nodes here (which keep their marks), and the schema reads
values off the nodes. Syntax errors become one short sentence at the line
that needs fixing instead of pyyaml's multi-line report.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
from collections.abc import Iterator
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import Problem

# The C parser is an order of magnitude faster on large FAQ folders; it is an
# optional part of pyyaml, so the pure-Python one stands in when it is absent.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_constructor = yaml.constructor.SafeConstructor()

__all__ = [
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "collector_paused",
    "describe",
    "line_of",
    "mapping_items",
    "parse_yaml",
    "read_yaml",
    "scalar_value",
]


def read_yaml(path: Path) -> tuple[Node | None, list[Problem]]:
    """Compose one file; ``(None, [])`` means the file holds no document at all.

    Problems with reading the file itself (missing, a folder, not UTF-8) are
    reported like syntax errors, so callers need only one error path.
    """
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(name, None, "file not found")]
    except IsADirectoryError:
        return None, [Problem(name, None, "is a folder, expected a YAML file")]
    except OSError as exc:
        return None, [Problem(name, None, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, [Problem(name, line, "not valid UTF-8 text; save the file as UTF-8")]
    return parse_yaml(text, name)


def parse_yaml(text: str, path: str) -> tuple[Node | None, list[Problem]]:
    try:
        with collector_paused():
            return yaml.compose(text, Loader=_LOADER), []
    except yaml.MarkedYAMLError as exc:
        line, message = _explain(exc, text)
        return None, [Problem(path, line, message)]
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, [Problem(path, None, f"invalid YAML: {first}")]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Composing and validating allocate an object per value and create no
    reference cycles, but every allocation burst wakes the cyclic garbage
    collector, which then rescans the whole growing tree: on a 10,000-entry
    FAQ that was two thirds of the loading time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


def scalar_value(node: ScalarNode) -> object:
    """The Python value of a scalar as ``yaml.safe_load`` would give it.

    Raises ``ValueError`` for tags that safe loading does not allow, such as
    ``!!python/object``.
    """
    if node.tag == _STR_TAG:
        return node.value
    try:
        return _constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise ValueError(f"unsupported YAML tag {node.tag!r}") from exc


def describe(node: Node) -> str:
    """How a found value is shown in "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    try:
        value = scalar_value(node)
    except ValueError:
        return f"a value tagged {node.tag!r}"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{node.value} (a yes/no value)"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, datetime.date):
        return f"{node.value} (a date)"
    return node.value


def mapping_items(
    node: MappingNode, path: str, problems: list[Problem], where: str = ""
) -> Iterator[tuple[str, Node, Node]]:
    """Yield ``(key, key_node, value_node)``, reporting keys YAML allows but we cannot use.

    Keys are taken as written, so ``on:`` or ``no:`` stay words instead of
    turning into booleans. A repeated key is an error: pyyaml would silently
    keep the last one, and the admin would wonder why the first has no effect.
    """
    prefix = f"{where}: " if where else ""
    seen: dict[str, int] = {}
    for key_node, value_node in _merged(node):
        if not isinstance(key_node, ScalarNode):
            problems.append(
                Problem(
                    path,
                    line_of(key_node),
                    f"{prefix}a key must be a plain word, got {describe(key_node)}",
                )
            )
            continue
        key = key_node.value
        if key in seen:
            problems.append(
                Problem(
                    path,
                    line_of(key_node),
                    f"{prefix}duplicate key '{key}' (first at line {seen[key]})",
                )
            )
            continue
        seen[key] = line_of(key_node)
        yield key, key_node, value_node


def _merged(node: MappingNode) -> list[tuple[Node, Node]]:
    """Resolve ``<<: *anchor`` merge keys; keys written out take precedence over merged ones."""
    if not any(k.tag == _MERGE_TAG for k, _ in node.value):
        return node.value
    own = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
    own_keys = {k.value for k, _ in own if isinstance(k, ScalarNode)}
    merged: list[tuple[Node, Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            continue
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                continue
            for k, v in _merged(source):
                if isinstance(k, ScalarNode) and k.value not in own_keys:
                    own_keys.add(k.value)
                    merged.append((k, v))
    return own + merged


def _explain(exc: yaml.MarkedYAMLError, text: str) -> tuple[int | None, str]:
    """Turn pyyaml's report into one sentence and the line an admin should look at."""
    problem = exc.problem or ""
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    context_line = exc.context_mark.line + 1 if exc.context_mark else None

    if "quoted scalar" in context:
        return (
            context_line or line,
            "unclosed quote: the quoted text starting on this line never ends",
        )
    opened = _runaway_quote(text, line)
    if opened is not None:
        return opened, (
            f"unclosed quote: the quoted text starting on this line runs on to line {line}; "
            "add the closing quote on this line"
        )
    if _char_at(text, mark) == "\t" or "tab" in problem:
        return line, "tab character; indent with spaces only"
    if "cannot start any token" in problem:
        char = _char_at(text, mark)
        return line, f"a value cannot start with {char!r}; put the value in quotes"
    if "mapping values are not allowed" in problem:
        return line, (
            "unexpected ':'; check this line's indentation, "
            "or put the value in quotes if it contains ': '"
        )
    if "while parsing a flow" in context:
        bracket = "]" if "sequence" in context else "}"
        return (
            context_line or line,
            f"a list or mapping opened on this line is not closed with '{bracket}'",
        )
    if "block" in context and ("expected" in problem or "block end" in problem):
        where = f" (the block starts at line {context_line})" if context_line else ""
        return line, f"bad indentation: this line does not line up with the lines above it{where}"
    if "could not find expected ':'" in problem:
        return line, "a key is missing its ':', or a multi-line value is not indented"
    if "single document" in context:
        return line, "only one YAML document per file; remove the '---' line"
    if "undefined alias" in problem:
        return line, "'*' refers to an anchor ('&name') that is not defined above"
    if "duplicate anchor" in context:
        return line, "anchor ('&name') defined twice"
    summary = "; ".join(part for part in (context, problem) if part)
    return line, f"invalid YAML: {summary}"


def _runaway_quote(text: str, error_line: int | None) -> int | None:
    """The line of an opening quote whose text ran on and caused an error at ``error_line``.

    A quote left open mid-file is closed by the next quote character YAML meets,
    often lines further down, and the error then shows up there as bad
    indentation. A quoted value spanning lines that ends just before the error
    is that case; the line to fix is where it opened.
    """
    if error_line is None:
        return None
    culprit = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.line + 1 > error_line:
                break
            if (
                isinstance(token, yaml.ScalarToken)
                and token.style in ('"', "'")
                and token.end_mark.line > token.start_mark.line
                and token.end_mark.line + 1 >= error_line - 1
            ):
                culprit = token.start_mark.line + 1
    except yaml.YAMLError:
        pass  # scanning stops at the error; what was scanned before it is enough
    return culprit


def _char_at(text: str, mark: yaml.Mark | None) -> str:
    # Line and column rather than ``index``: the C parser counts the index in
    # bytes, which drifts from the text after the first non-ASCII character.
    if mark is None:
        return ""
    lines = text.splitlines()
    if not 0 <= mark.line < len(lines) or not 0 <= mark.column < len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]
