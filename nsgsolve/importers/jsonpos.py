"""A JSON reader that remembers where every value was written.

Python's :mod:`json` gives no positions, and every import diagnostic must name file:line:column. Objects
come back as :class:`JObject` (a ``dict``) and arrays as :class:`JArray` (a ``list``), each carrying the
:class:`~nsgsolve.model.Span` of itself and of each member, so code that only wants values treats them as
plain dicts and lists. Scalars are plain Python values; their span is found through the container.

Byte order marks and CRLF line ends are accepted (real ARM templates have both). Duplicate keys keep the
last value, as ARM does. Speed: regular expressions do the per-character work, so the 1.6 MB corpus
parses in well under a second.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any

from nsgsolve.errors import InputError
from nsgsolve.limits import MAX_JSON_DEPTH, decimal
from nsgsolve.model import NOSPAN, Span


class JObject(dict):
    """A JSON object with the span of itself and of each member's value."""

    __slots__ = ("span", "spans")

    def __init__(self, *args: Any, span: Span = NOSPAN, spans: dict[str, Span] | None = None):
        super().__init__(*args)
        self.span = span
        self.spans: dict[str, Span] = spans if spans is not None else {}

    def span_of(self, key: str) -> Span:
        """Where the value of ``key`` was written (the object itself when unknown)."""
        return self.spans.get(key, self.span)


class JArray(list):
    """A JSON array with the span of itself and of each element."""

    __slots__ = ("span", "spans")

    def __init__(self, *args: Any, span: Span = NOSPAN, spans: list[Span] | None = None):
        super().__init__(*args)
        self.span = span
        self.spans: list[Span] = spans if spans is not None else []

    def span_of(self, index: int) -> Span:
        return self.spans[index] if 0 <= index < len(self.spans) else self.span


def span_in(container: Any, key: Any, default: Span = NOSPAN) -> Span:
    """The span of ``container[key]`` if the container knows it, else ``default``."""
    if isinstance(container, (JObject, JArray)):
        s = container.span_of(key)
        return s if s.line else (container.span if container.span.line else default)
    return default


_WS = re.compile(r"[ \t\n\r]*")
# A JSON string body without escapes is the common case; the slow path handles escapes.
_STRING_FAST = re.compile(r'"([^"\\\x00-\x1f]*)"')
_STRING_CHUNK = re.compile(r'([^"\\\x00-\x1f]*)(["\\\x00-\x1f])')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# ARM templates may contain // and /* */ comments (the ARM engine accepts them); so do az outputs never.
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


class _Reader:
    def __init__(self, text: str, filename: str):
        if text.startswith("\ufeff"):
            text = text[1:]
        self.text = text
        self.filename = filename
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.depth = 0

    def span(self, start: int, end: int) -> Span:
        li = bisect_right(self.line_starts, start) - 1
        le = bisect_right(self.line_starts, end) - 1
        return Span(self.filename, li + 1, start - self.line_starts[li] + 1, le + 1, end - self.line_starts[le] + 1)

    def fail(self, pos: int, message: str) -> InputError:
        return InputError.single("E601", f"invalid JSON: {message}", self.span(pos, pos + 1),
                                 "the file must be a JSON document (ARM template, az output or parameters file)")

    def ws(self, pos: int) -> int:
        text = self.text
        while True:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]  # whitespace* always matches
            if text.startswith("/", pos):
                m = _COMMENT.match(text, pos)
                if not m:
                    raise self.fail(pos, "unexpected '/'")
                pos = m.end()
                continue
            return pos

    def value(self, pos: int) -> tuple[Any, int]:
        text = self.text
        if pos >= len(text):
            raise self.fail(max(pos - 1, 0), "unexpected end of file")
        c = text[pos]
        if c == "{" or c == "[":
            # The reader recurses once per level: refuse a nesting bomb before it exhausts the stack.
            if self.depth >= MAX_JSON_DEPTH:
                raise too_deep(self.span(pos, pos + 1))
            self.depth += 1
            try:
                return self.obj(pos) if c == "{" else self.arr(pos)
            finally:
                self.depth -= 1
        if c == '"':
            return self.string(pos)
        if text.startswith("true", pos):
            return True, pos + 4
        if text.startswith("false", pos):
            return False, pos + 5
        if text.startswith("null", pos):
            return None, pos + 4
        m = _NUMBER.match(text, pos)
        if m and m.end() > pos:
            if m.group(1) or m.group(2):
                return float(m.group(0)), m.end()
            return decimal(m.group(0)), m.end()
        raise self.fail(pos, f"unexpected {text[pos]!r}")

    def string(self, pos: int) -> tuple[str, int]:
        m = _STRING_FAST.match(self.text, pos)
        if m:
            return m.group(1), m.end()
        parts: list[str] = []
        i = pos + 1
        text = self.text
        while True:
            m = _STRING_CHUNK.match(text, i)
            if not m:
                raise self.fail(pos, "unterminated string")
            parts.append(m.group(1))
            i = m.end()
            term = m.group(2)
            if term == '"':
                return "".join(parts), i
            if term != "\\":
                raise self.fail(i - 1, "control character in string")
            esc = text[i:i + 1]
            if esc == "u":
                hexd = text[i + 1:i + 5]
                if not re.fullmatch(r"[0-9a-fA-F]{4}", hexd):
                    raise self.fail(i, "bad \\u escape")
                code = int(hexd, 16)
                i += 5
                if 0xD800 <= code < 0xDC00 and text.startswith("\\u", i):
                    low = int(text[i + 2:i + 6], 16)
                    if 0xDC00 <= low < 0xE000:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                parts.append(chr(code))
            elif esc in _ESCAPES:
                parts.append(_ESCAPES[esc])
                i += 1
            else:
                raise self.fail(i, f"bad escape \\{esc}")

    def obj(self, start: int) -> tuple[JObject, int]:
        text = self.text
        out: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        pos = self.ws(start + 1)
        if text.startswith("}", pos):
            return JObject(out, span=self.span(start, pos + 1), spans=spans), pos + 1
        while True:
            if not text.startswith('"', pos):
                raise self.fail(pos, "expected a quoted member name")
            kstart = pos
            key, pos = self.string(pos)
            if key in out:
                # json.loads would keep the last silently; ARM rejects a template whose object repeats a
                # property name, and a value dropped here would change what is analysed.
                raise InputError.single(
                    "E626", f"property '{key}' appears twice in one JSON object (first at line "
                            f"{spans[key].line}); Azure rejects duplicate property names", self.span(kstart, pos),
                    "keep one of the two: remove or rename the other")
            pos = self.ws(pos)
            if not text.startswith(":", pos):
                raise self.fail(pos, "expected ':'")
            pos = self.ws(pos + 1)
            vstart = pos
            val, pos = self.value(pos)
            out[key] = val
            spans[key] = self.span(vstart, pos)
            pos = self.ws(pos)
            if text.startswith(",", pos):
                pos = self.ws(pos + 1)
                continue
            if text.startswith("}", pos):
                return JObject(out, span=self.span(start, pos + 1), spans=spans), pos + 1
            raise self.fail(pos, "expected ',' or '}'")

    def arr(self, start: int) -> tuple[JArray, int]:
        text = self.text
        out: list[Any] = []
        spans: list[Span] = []
        pos = self.ws(start + 1)
        if text.startswith("]", pos):
            return JArray(out, span=self.span(start, pos + 1), spans=spans), pos + 1
        while True:
            vstart = pos
            val, pos = self.value(pos)
            out.append(val)
            spans.append(self.span(vstart, pos))
            pos = self.ws(pos)
            if text.startswith(",", pos):
                pos = self.ws(pos + 1)
                continue
            if text.startswith("]", pos):
                return JArray(out, span=self.span(start, pos + 1), spans=spans), pos + 1
            raise self.fail(pos, "expected ',' or ']'")


def too_deep(span: Span) -> InputError:
    """E011: JSON nested deeper than nsgsolve reads (any JSON reader of nsgsolve raises this)."""
    return InputError.single(
        "E011", f"JSON nested more than {MAX_JSON_DEPTH} levels deep", span,
        "real ARM templates and az exports nest fewer than 30 levels; check that this file is the one meant "
        "(nsgsolve refuses deeper nesting so that a hostile file cannot exhaust its stack)")


def parse(text: str, filename: str) -> Any:
    """Parse one JSON document, recording spans; raises InputError (E601) with the position on bad JSON."""
    r = _Reader(text, filename)
    pos = r.ws(0)
    val, pos = r.value(pos)
    pos = r.ws(pos)
    if pos != len(r.text):
        raise r.fail(pos, "text after the JSON value")
    return val
