"""A JSON reader that knows where every value was written.

Python's :mod:`json` gives no positions, and every import diagnostic must name file:line:column. Objects
come back as :class:`JObject` (a ``dict``) and arrays as :class:`JArray` (a ``list``), each carrying the
:class:`~nsgsolve.model.Span` of itself and of each member, so code that only wants values treats them as
plain dicts and lists. Scalars are plain Python values; their span is found through the container.

Byte order marks and CRLF line ends are accepted (real ARM templates have both). A property name given
twice in one object is an error (E626), as in ARM.

Speed: the values come from the standard library's C parser, and positions are found only when something
reads one (:class:`LazySpan`): the members of one container are located by a second pass over that
container's text, once, so an import that reports nothing never pays for positions and one that reports a
rule pays for the path down to it. The standard library measured close enough to orjson and msgspec on a
2 MB ARM template (23 / 12 / 17 ms; bench/README.md) that a new dependency did not earn its place, and it
alone has ``object_pairs_hook``, which sees duplicate names. Text it refuses (comments, which ARM accepts;
every malformed document) goes to :class:`_Reader`, the position-tracking reader, which accepts comments and
words every error at its line and column.
"""

from __future__ import annotations

import json
import json.decoder
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
    located = False  # whether every element's span has a position (a subclass whose spans are LazySpans)

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
        if known(s):
            return s
        return container.span if known(container.span) else default
    return default



def item_spans(values: Any, default: Span = NOSPAN) -> list[Span]:
    """``[span_in(values, i, default) for i in range(len(values))]``, made at once: a rule side of thousands
    of prefixes reads one span per item."""
    if not isinstance(values, JArray):
        return [default] * len(values)
    spans = values.spans
    if values.located and len(spans) == len(values):
        return spans  # its own LazySpans: every one has a position
    whole = values.span if known(values.span) else default
    out = [s if known(s) else whole for s in spans[:len(values)]]
    if len(out) < len(values):
        out += [whole] * (len(values) - len(out))
    return out


class LazySpan(Span):
    """A span whose line and column are looked up in the source text the first time they are read.

    ``locator.span_fields(key)`` gives (line, column, end line, end column): a JSON container locates its
    members (key: a member, or ``_SELF``), a Bicep source an offset range (key: ``(start, end)``).
    It equals, hashes and pickles as the plain :class:`Span` it stands for (a pickled or copied one *is*
    that plain Span), so nothing downstream can tell the two apart. Every LazySpan has a position: code
    that tests ``span.line`` to see whether a span is known may use :func:`known` to skip the lookup."""

    def __init__(self, file: str, locator: Any, key: Any):
        d = self.__dict__
        d["file"], d["_c"], d["_k"] = file, locator, key

    def _fields(self) -> tuple[int, int, int, int]:
        d = self.__dict__
        f = d.get("_f")
        if f is None:
            f = d["_f"] = d["_c"].span_fields(d["_k"])
            d["_c"] = None  # the text and the tree need not live as long as the span
        return f

    line = property(lambda self: self._fields()[0])
    column = property(lambda self: self._fields()[1])
    end_line = property(lambda self: self._fields()[2])
    end_column = property(lambda self: self._fields()[3])

    def plain(self) -> Span:
        return Span(self.file, *self._fields())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Span):
            return NotImplemented
        return (self.file, self.line, self.column, self.end_line, self.end_column) == \
            (other.file, other.line, other.column, other.end_line, other.end_column)

    def __hash__(self) -> int:
        return hash(self.plain())

    def __repr__(self) -> str:
        return repr(self.plain())

    def __reduce__(self) -> tuple:
        return (Span, (self.file, *self._fields()))


def known(span: Span) -> bool:
    """Whether ``span`` has a position, without looking a lazy one up (a LazySpan always has one)."""
    return type(span) is LazySpan or span.line > 0


_SELF = object()  # LazySpan key: the container itself rather than one of its members


class _Doc:
    """The source text of one parsed document, and offset -> line/column."""

    __slots__ = ("text", "filename", "_line_starts")

    def __init__(self, text: str, filename: str):
        self.text, self.filename = text, filename
        self._line_starts: list[int] | None = None

    def position(self, start: int, end: int) -> tuple[int, int, int, int]:
        ls = self._line_starts
        if ls is None:
            ls = self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        li = bisect_right(ls, start) - 1
        le = bisect_right(ls, end) - 1
        return li + 1, start - ls[li] + 1, le + 1, end - ls[le] + 1


# Skips one value in text already known to be valid JSON (its end is all the locator wants); numbers stay
# strings so that no number is too long for int().
_skip_value = json.JSONDecoder(parse_int=str, parse_float=str).scan_once  # type: ignore[attr-defined]


_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # C, untyped in typeshed


def _value_end(text: str, pos: int) -> int:
    return _skip_value(text, pos)[1]


class _Located:
    """What the two document containers share: where they sit in the text (found on demand)."""

    __slots__ = ()
    # Slots of the subclasses (set by _adopt): the document, the parent container and this one's key in it,
    # this container's (start, end) offsets and its members' (found on demand), its spans once asked for.
    _doc: _Doc
    _parent: Any
    _key: Any
    _r: tuple[int, int] | None
    _m: Any
    _spans: Any
    # (containers, levels) of a subtree where no string starts with '[' and no object has a "copy" member:
    # what an ARM template evaluator returns unchanged (armexpr.Evaluator.value). None otherwise.
    literal: tuple[int, int] | None

    def span_fields(self, key: Any) -> tuple[int, int, int, int]:
        """Line, column, end line, end column of this container (``_SELF``) or of one of its members."""
        return self._doc.position(*(self._range() if key is _SELF else self._member_range(key)))

    def _range(self) -> tuple[int, int]:
        r = self._r
        if r is None:
            parent = self._parent
            if parent is None:
                text = self._doc.text
                start = _WS.match(text, 0).end()  # type: ignore[union-attr]
                r = (start, _value_end(text, start))
            else:
                r = parent._member_range(self._key)
            self._r = r  # type: ignore[misc]  # a slot of the subclasses
        return r

    def _member_range(self, key: Any) -> tuple[int, int]:
        m = self._m
        if m is None:
            m = self._m = self._locate_members()
        return m[key]

    def _locate_members(self) -> Any:
        raise NotImplementedError


class _DocObject(JObject, _Located):
    """A JSON object of a parsed document: spans on demand (JObject's own slots stay unused)."""

    __slots__ = ("_doc", "_parent", "_key", "_r", "_m", "_spans", "literal")

    def __init__(self, pairs: list[tuple[str, Any]]):
        dict.__init__(self, pairs)

    @property
    def span(self) -> Span:  # type: ignore[override]
        return LazySpan(self._doc.filename, self, _SELF)

    @property
    def spans(self) -> dict[str, Span]:  # type: ignore[override]
        s = self._spans
        if s is None:
            f = self._doc.filename
            s = self._spans = {k: LazySpan(f, self, k) for k in self}
        return s

    def span_of(self, key: str) -> Span:
        s = self._spans
        if s is not None:
            return s.get(key, self.span)
        return LazySpan(self._doc.filename, self, key) if key in self else self.span

    def _locate_members(self) -> dict[str, tuple[int, int]]:
        text = self._doc.text
        out: dict[str, tuple[int, int]] = {}
        pos = _WS.match(text, self._range()[0] + 1).end()  # type: ignore[union-attr]
        if text.startswith("}", pos):
            return out
        while True:
            key, pos = _scanstring(text, pos + 1)
            pos = _WS.match(text, pos).end() + 1  # type: ignore[union-attr]  # past the ':'
            start = _WS.match(text, pos).end()  # type: ignore[union-attr]
            end = _value_end(text, start)
            out[key] = (start, end)
            pos = _WS.match(text, end).end()  # type: ignore[union-attr]
            if not text.startswith(",", pos):
                return out
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]


class _DocArray(JArray, _Located):
    """A JSON array of a parsed document: spans on demand."""

    __slots__ = ("_doc", "_parent", "_key", "_r", "_m", "_spans", "literal")
    located = True

    def __init__(self, items: list[Any]):
        list.__init__(self, items)

    @property
    def span(self) -> Span:  # type: ignore[override]
        return LazySpan(self._doc.filename, self, _SELF)

    @property
    def spans(self) -> list[Span]:  # type: ignore[override]
        s = self._spans
        if s is None:
            f = self._doc.filename
            s = self._spans = [LazySpan(f, self, i) for i in range(len(self))]
        return s

    def span_of(self, index: int) -> Span:
        if self._spans is not None:
            return JArray.span_of(self, index)
        return LazySpan(self._doc.filename, self, index) if 0 <= index < len(self) else self.span

    def _locate_members(self) -> list[tuple[int, int]]:
        text = self._doc.text
        out: list[tuple[int, int]] = []
        pos = _WS.match(text, self._range()[0] + 1).end()  # type: ignore[union-attr]
        if text.startswith("]", pos):
            return out
        while True:
            end = _value_end(text, pos)
            out.append((pos, end))
            pos = _WS.match(text, end).end()  # type: ignore[union-attr]
            if not text.startswith(",", pos):
                return out
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]

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


class _Refused(Exception):
    """The fast path declines a document; the position-tracking reader takes it (and words any error)."""


def _object(pairs: list[tuple[str, Any]]) -> _DocObject:
    o = _DocObject(pairs)
    if len(o) != len(pairs):
        raise _Refused  # a duplicate name: E626, worded by the reader
    return o


def _constant(name: str) -> Any:
    raise _Refused  # NaN, Infinity: not JSON, though json.loads takes them


_loads = json.JSONDecoder(object_pairs_hook=_object, parse_int=decimal, parse_constant=_constant).decode


def _adopt(value: Any, doc: _Doc, parent: Any, key: Any, depth: int) -> Any:
    """Lists become :class:`_DocArray`; every container learns its document, parent and key, and whether
    it is literal (:attr:`_Located.literal`)."""
    if type(value) is list:
        value = _DocArray(value)
    if depth > MAX_JSON_DEPTH:
        raise _Refused  # E011, located by the reader
    value._doc, value._parent, value._key = doc, parent, key
    value._r = value._m = value._spans = None
    count, height, literal = 1, 1, True
    if type(value) is _DocArray:
        children: Any = enumerate(value)
    else:
        children = value.items()
        literal = "copy" not in value
    for k, v in children:
        t = type(v)
        if t is str:
            if v.startswith("["):
                literal = False
        elif t is list or t is _DocObject:
            v = value[k] = _adopt(v, doc, value, k, depth + 1)
            lit = v.literal
            if lit is None:
                literal = False
            else:
                count += lit[0]
                height = max(height, lit[1] + 1)
    value.literal = (count, height) if literal else None
    return value


def parse(text: str, filename: str) -> Any:
    """Parse one JSON document, with spans; raises InputError (E601 and others) with the position on bad JSON."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = _loads(text)
        return _adopt(value, _Doc(text, filename), None, None, 1)
    except (ValueError, RecursionError, _Refused):
        pass
    return _parse_slowly(text, filename)


def _parse_slowly(text: str, filename: str) -> Any:
    """The position-tracking reader: comments, and a located message for every malformed document."""
    r = _Reader(text, filename)
    pos = r.ws(0)
    val, pos = r.value(pos)
    pos = r.ws(pos)
    if pos != len(r.text):
        raise r.fail(pos, "text after the JSON value")
    return val
