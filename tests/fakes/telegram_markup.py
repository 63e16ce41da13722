"""Telegram's text formatting rules: HTML, MarkdownV2 and legacy Markdown.

The real server rejects malformed markup with "can't parse entities"; a bot that feeds LLM
output into a parse mode must survive that, so the double has to be exactly as strict. The
parsers also return the plain text and the entities, as Telegram does in the sent Message.
"""

from __future__ import annotations

import re


class MarkupError(Exception):
    """The text cannot be parsed in the requested parse mode."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


class _Out:
    """Accumulates plain text and measures positions in UTF-16 units, as entities do."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: object) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": kind, "offset": start, "length": self.pos - start, **extra}
            )

    def result(self) -> tuple[str, list[dict]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


# --------------------------------------------------------------------------- HTML

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTR = re.compile(r"""\s*([a-zA-Z_-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _decode_entity(src: str, i: int) -> tuple[str, int]:
    """Decode an HTML character reference at src[i] == '&'; unknown ones stay literal."""
    m = re.match(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);", src[i:])
    if not m:
        return "&", i + 1
    name = m.group(1)
    if name.startswith("#x"):
        return chr(int(name[2:], 16)), i + m.end()
    if name.startswith("#"):
        return chr(int(name[1:])), i + m.end()
    if name in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[name], i + m.end()
    return m.group(0), i + m.end()


def parse_html(src: str) -> tuple[str, list[dict]]:
    out = _Out()
    stack: list[tuple[str, int, dict]] = []  # (tag, start position, entity extras)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "&":
            text, i = _decode_entity(src, i)
            out.add(text)
            continue
        if c != "<":
            j = i
            while j < n and src[j] not in "<&":
                j += 1
            out.add(src[i:j])
            i = j
            continue
        end = src.find(">", i)
        if end < 0:
            raise MarkupError(f"Unclosed start tag at byte offset {_byte_offset(src, i)}")
        inner = src[i + 1 : end]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise MarkupError(f"Unexpected end tag at byte offset {_byte_offset(src, i)}")
            tag, start, extra = stack.pop()
            if name != tag:
                raise MarkupError(
                    f'Unmatched end tag at byte offset {_byte_offset(src, i)}, expected "</{tag}>", found "</{name}>"'
                )
            _close_html(out, stack, tag, start, extra)
            i = end + 1
            continue
        m = re.match(r"[a-zA-Z][a-zA-Z0-9-]*", inner)
        name = m.group(0).lower() if m else inner.split(" ", 1)[0]
        if not m or name not in _HTML_TAGS:
            raise MarkupError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(src, i)}'
            )
        attrs = {
            a.group(1).lower(): a.group(2) or a.group(3) or a.group(4) or ""
            for a in _ATTR.finditer(inner[m.end() :])
            if a.group(1)
        }
        extra: dict = {}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise MarkupError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(src, i)}'
            )
        if name == "a":
            extra["url"] = attrs.get("href", "")
        if name == "tg-emoji":
            if "emoji-id" not in attrs:
                raise MarkupError(
                    f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {_byte_offset(src, i)}'
                )
            extra["custom_emoji_id"] = attrs["emoji-id"]
        if name == "blockquote" and "expandable" in attrs:
            extra["expandable"] = True
        if name == "code" and "class" in attrs and attrs["class"].startswith("language-"):
            extra["language"] = attrs["class"][len("language-") :]
        stack.append((name, out.pos, extra))
        i = end + 1
    if stack:
        raise MarkupError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _close_html(out: _Out, stack: list, tag: str, start: int, extra: dict) -> None:
    kind = _HTML_TAGS[tag]
    if kind == "blockquote" and extra.pop("expandable", False):
        kind = "expandable_blockquote"
    if kind == "code" and stack and stack[-1][0] == "pre":
        # <pre><code class="language-x"> is one pre entity carrying the language.
        if "language" in extra:
            stack[-1][2]["language"] = extra["language"]
        return
    if kind == "text_link" and not extra.get("url"):
        return
    if kind == "code":
        extra.pop("language", None)
    out.entity(kind, start, **extra)


# --------------------------------------------------------------------------- MarkdownV2

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
}


def parse_markdown_v2(src: str) -> tuple[str, list[dict]]:
    out = _Out()
    stack: list[tuple[str, int, int]] = []  # (kind, start position, source index)
    quote_start: int | None = None
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        at_line_start = i == 0 or src[i - 1] == "\n"
        if c == "\\":
            if i + 1 < n and 0 < ord(src[i + 1]) < 127:
                out.add(src[i + 1])
                i += 2
                continue
            raise _reserved(src, i)
        if c == "`":
            i = _mdv2_code(src, i, out)
            continue
        if c == ">" and at_line_start:
            if quote_start is None:
                quote_start = out.pos
            i += 1
            continue
        if c == "\n" and quote_start is not None and not src.startswith(">", i + 1):
            out.entity("blockquote", quote_start)
            quote_start = None
        toggles = {"*": "bold", "~": "strikethrough"}
        kind = None
        width = 1
        if c in toggles:
            kind = toggles[c]
        elif c == "_":
            kind, width = ("underline", 2) if src.startswith("__", i) else ("italic", 1)
        elif c == "|":
            if not src.startswith("||", i):
                raise _reserved(src, i)
            kind, width = "spoiler", 2
        if kind is not None:
            if stack and stack[-1][0] == kind:
                _, start, _ = stack.pop()
                out.entity(kind, start)
            elif any(k == kind for k, _, _ in stack):
                open_kind, _, open_i = stack[-1]
                raise _unclosed(src, open_kind, open_i)
            else:
                stack.append((kind, out.pos, i))
            i += width
            continue
        if c == "[" or (c == "!" and src.startswith("![", i)):
            stack.append(("text_link", out.pos, i))
            i += 1 if c == "[" else 2
            continue
        if c == "]":
            if not stack or stack[-1][0] != "text_link":
                raise _reserved(src, i)
            _, start, _ = stack.pop()
            url = ""
            if src.startswith("(", i + 1):
                j = i + 2
                chars = []
                while j < n and src[j] != ")":
                    if src[j] == "\\" and j + 1 < n:
                        j += 1
                    chars.append(src[j])
                    j += 1
                if j >= n:
                    raise MarkupError(
                        f"Can't find end of a url at byte offset {_byte_offset(src, i + 1)}"
                    )
                url = "".join(chars)
                i = j + 1
            else:
                i += 1
            if url.startswith("tg://emoji?id="):
                out.entity("custom_emoji", start, custom_emoji_id=url.split("=", 1)[1])
            elif url:
                out.entity("text_link", start, url=url)
            continue
        if c in _MDV2_RESERVED:
            raise _reserved(src, i)
        out.add(c)
        i += 1
    if stack:
        kind, _, open_i = stack[-1]
        raise _unclosed(src, kind, open_i)
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    return out.result()


def _mdv2_code(src: str, i: int, out: _Out) -> int:
    """Inline code and pre blocks, where only ` and \\ are special."""
    fence = "```" if src.startswith("```", i) else "`"
    j = i + len(fence)
    language = None
    if fence == "```":
        newline = src.find("\n", j)
        first_line = src[j:newline] if newline >= 0 else ""
        if newline >= 0 and first_line and " " not in first_line and "`" not in first_line:
            language = first_line
            j = newline + 1
    start = out.pos
    while j < len(src):
        if src[j] == "\\" and j + 1 < len(src):
            out.add(src[j + 1])
            j += 2
            continue
        if src.startswith(fence, j):
            if fence == "```":
                out.entity("pre", start, **({"language": language} if language else {}))
            else:
                out.entity("code", start)
            return j + len(fence)
        out.add(src[j])
        j += 1
    raise _unclosed(src, "pre" if fence == "```" else "code", i)


def _reserved(src: str, i: int) -> MarkupError:
    return MarkupError(
        f"Character '{src[i]}' is reserved and must be escaped with the preceding '\\'"
    )


def _unclosed(src: str, kind: str, i: int) -> MarkupError:
    name = _MDV2_NAMES.get(kind, kind.capitalize())
    return MarkupError(f"Can't find end of {name} entity at byte offset {_byte_offset(src, i)}")


# --------------------------------------------------------------------------- Markdown


def parse_markdown(src: str) -> tuple[str, list[dict]]:
    """Legacy Markdown: no nesting, and only _ * ` [ can be escaped."""
    out = _Out()
    i, n = 0, len(src)
    marks = {"*": "bold", "_": "italic"}
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if c in marks or c == "`":
            fence = "```" if src.startswith("```", i) else c
            end = src.find(fence, i + len(fence))
            if end < 0:
                raise MarkupError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
                )
            start = out.pos
            out.add(src[i + len(fence) : end])
            kind = "pre" if fence == "```" else "code" if c == "`" else marks[c]
            out.entity(kind, start)
            i = end + len(fence)
            continue
        if c == "[":
            m = re.match(r"\[([^\]]*)\]\(([^)]*)\)", src[i:])
            if not m:
                raise MarkupError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
                )
            start = out.pos
            out.add(m.group(1))
            out.entity("text_link", start, url=m.group(2))
            i += m.end()
            continue
        out.add(c)
        i += 1
    return out.result()


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict]]:
    """Apply parse_mode the way the server does; raises MarkupError on malformed markup."""
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise ValueError("unsupported parse_mode")
