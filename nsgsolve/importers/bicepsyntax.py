"""Bicep syntax: a tokenizer and a precedence-climbing parser that keep the offset of every node.

Why not pycep-parser (the Checkov project's Lark grammar, the first candidate): measured on the corpus and
on a generated file with two 1,000-rule NSGs (docs/import.md "Bicep"), its grammar gives every binary
operator one precedence and groups to the right (``10 - 2 - 3`` reads ``10 - (2 - 3)``, ``a == 1 ? x : y``
reads ``a == (1 ? x : y)``, ``a.b[0].c`` reads ``a.((b[0]).c)``), its JSON output keeps no positions, and it
took 3.0 s of CPU for the 670 KB file (the goal for ``show`` is 0.5 s). This parser follows Bicep's own
precedence table and reads that file in a fraction of that.

The parser only builds the tree; :mod:`nsgsolve.importers.bicep` resolves names and evaluates it. A syntax
error is E740 with file:line:column and a caret.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any

from nsgsolve.errors import InputError
from nsgsolve.importers.jsonpos import LazySpan
from nsgsolve.limits import MAX_JSON_DEPTH
from nsgsolve.model import Span


class Source:
    """One Bicep file's text, for turning offsets into line and column."""

    __slots__ = ("text", "filename", "_lines")

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self._lines: list[int] | None = None

    def span(self, start: int, end: int | None = None) -> Span:
        return Span(self.filename, *self.span_fields((start, start if end is None else end)))

    def lazy_span(self, start: int, end: int) -> Span:
        """The span of ``start..end``, its line and column looked up only if read (most never are)."""
        return LazySpan(self.filename, self, (start, end))

    def span_fields(self, offsets: tuple[int, int]) -> tuple[int, int, int, int]:
        """Line, column, end line, end column of an offset range (what a LazySpan asks)."""
        if self._lines is None:
            self._lines = [0] + [m.end() for m in re.finditer("\n", self.text)]
        lines = self._lines
        start, end = offsets
        li = bisect_right(lines, start) - 1
        le = bisect_right(lines, end) - 1
        return li + 1, start - lines[li] + 1, le + 1, end - lines[le] + 1


# ------------------------------------------------------------------ tree


class Node:
    __slots__ = ("src", "start", "end")
    src: Source
    start: int
    end: int

    def span(self) -> Span:
        return self.src.span(self.start, self.end)

    def text(self) -> str:
        return self.src.text[self.start:self.end]


class Lit(Node):
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class Interp(Node):
    """``'a${x}b'``: literal parts and expressions, alternating (``parts[0]`` and ``parts[-1]`` are text)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list):
        self.parts = parts


class Arr(Node):
    __slots__ = ("items",)

    def __init__(self, items: list):
        self.items = items


class Obj(Node):
    """An object literal; ``pairs`` are (key, key offset, value); ``resources`` the nested child resources."""

    __slots__ = ("pairs", "resources")

    def __init__(self, pairs: list, resources: list):
        self.pairs = pairs
        self.resources = resources


class Spread(Node):
    """``...value`` inside an object or array literal (Bicep's spread operator)."""

    __slots__ = ("value",)

    def __init__(self, value: Node):
        self.value = value


class SpreadObj(Node):
    """An object literal holding ``...x``: its ``parts`` in order, each an :class:`Obj` of the properties
    written between spreads or a :class:`Spread`. Bicep compiles it to ``shallowMerge([part, ...])``: a later
    key wins. Kept apart from :class:`Obj` so that the code reading plain literals stays as it is."""

    __slots__ = ("parts",)

    def __init__(self, parts: list):
        self.parts = parts


class SpreadArr(Node):
    """An array literal holding ``...x``: ``parts`` are :class:`Arr` runs of items and :class:`Spread` s, in
    order (Bicep compiles it to ``flatten([part, ...])``)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list):
        self.parts = parts


class Ident(Node):
    __slots__ = ("name", "binding")

    def __init__(self, name: str):
        self.name = name
        self.binding: Any = None  # set by name resolution (bicep.py)


class Member(Node):
    __slots__ = ("target", "name", "safe")

    def __init__(self, target: Node, name: str, safe: bool):
        self.target, self.name, self.safe = target, name, safe


class Index(Node):
    __slots__ = ("target", "index", "safe")

    def __init__(self, target: Node, index: Node, safe: bool):
        self.target, self.index, self.safe = target, index, safe


class Child(Node):
    """``parent::child``: a nested resource by its symbolic name."""

    __slots__ = ("target", "name")

    def __init__(self, target: Node, name: str):
        self.target, self.name = target, name


class Call(Node):
    """``ns.fn(args)`` (``ns`` is '' for a plain call, 'sys'/'az' or a user namespace) or ``x.fn(args)``
    on a value (``target``: ``kv.getSecret('x')``, ``sa.listKeys()``)."""

    __slots__ = ("name", "args", "ns", "target", "name_start")

    def __init__(self, name: str, args: list, ns: str = "", target: Node | None = None):
        self.name, self.args, self.ns, self.target = name, args, ns, target
        self.name_start = 0


class Unary(Node):
    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: Node):
        self.op, self.operand = op, operand


class Binary(Node):
    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Node, right: Node):
        self.op, self.left, self.right = op, left, right


class Ternary(Node):
    __slots__ = ("cond", "then", "other")

    def __init__(self, cond: Node, then: Node, other: Node):
        self.cond, self.then, self.other = cond, then, other


class For(Node):
    """``[for item in iterable: body]``, ``[for (item, i) in ...]``, ``[for x in ...: if (c) body]``."""

    __slots__ = ("item", "index", "iterable", "body", "cond")

    def __init__(self, item: str, index: str | None, iterable: Node, body: Node, cond: Node | None):
        self.item, self.index, self.iterable, self.body, self.cond = item, index, iterable, body, cond


class IfBody(Node):
    """``if (cond) { ... }`` as a resource or module value."""

    __slots__ = ("cond", "body")

    def __init__(self, cond: Node, body: Node):
        self.cond, self.body = cond, body


class Lambda(Node):
    __slots__ = ("params", "body")

    def __init__(self, params: list[str], body: Node):
        self.params, self.body = params, body


class Decl:
    """A top-level statement (or a nested resource): ``kind`` is param, var, output, resource, module, func,
    type, using, metadata, targetScope, import."""

    __slots__ = ("kind", "name", "src", "start", "end", "name_start", "decorators", "type_text", "value",
                 "rtype", "existing", "path", "params", "nested", "items", "path_start")

    def __init__(self, kind: str, name: str, src: Source, start: int):
        self.kind, self.name, self.src, self.start = kind, name, src, start
        self.end = start
        self.name_start = start
        self.decorators: list[Call] = []
        self.type_text = ""
        self.value: Node | None = None
        self.rtype = ""  # resource type with api version, module path
        self.existing = False
        self.path = ""
        self.params: list[str] = []
        self.nested: list[Decl] = []  # nested child resources
        # A compile-time import (``import {a, b as c} from 'path'``): (exported name, local name, offset of the
        # exported name, offset of the local name) each; ``import * as ns from 'path'`` has none and ``name``
        # ns. ``path`` is the source ('' for an extension's ``import 'az@1.0.0'``), at ``path_start``.
        self.items: list[tuple[str, str, int, int]] = []
        self.path_start = start

    def span(self) -> Span:
        return self.src.span(self.start, self.end)

    def name_span(self) -> Span:
        return self.src.span(self.name_start, self.name_start + len(self.name))

    def decorator(self, name: str) -> Call | None:
        return next((d for d in self.decorators if d.name.lower() == name.lower()), None)


# ------------------------------------------------------------------ tokens

# One match per token, with the blanks and comments before it (whether they hold a line break matters: a new
# line ends a statement, an object member or an array item). A string without escapes or '${' is one match;
# others (group 5, a lone quote) go through _string. Groups: 1 blanks, then the token's kind as _KINDS says.
# Loops are written unrolled ('[^x]*(?:y[^x]*)*' rather than '(?:[^x]|y)*'): the engine then steps per run
# of characters, not per character. Repeats are possessive ('*+'): what follows each one cannot start with
# what it repeats, so giving characters back never finds another match, and the engine then keeps no
# backtracking state per character (40% of the tokenizer's time on a 1.6 MB file;
# tests/importers/test_bicep_tokens.py holds the tokens equal to those of the plain repeats).
_TOKEN = re.compile(r"""
    ([ \t\r\n]*+(?:(?://[^\n]*+|/\*[^*]*+\*++(?:[^/*][^*]*+\*++)*+/)[ \t\r\n]*+)*+)
    (?:
      ([A-Za-z_][A-Za-z0-9_]*+)
    | ('''[\s\S]*?''')
    | ('[^'\\\n$]*+(?:\$(?!\{)[^'\\\n$]*+)*+')
    | (')
    | (\d++)
    | (==|!=|=~|!~|<=|>=|&&|\|\||\?\?|=>|::|\.\?|\[\?|[{}\[\]().,:?!=<>+\-*/%@|])
    )?
""", re.X)
_KINDS = (None, "ws", "id", "mstr", "pstr", "str", "num", "op")  # by group number (Match.lastindex)
_STR_PART = re.compile(r"[^'\\$]+")
_ESC = {"'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


class Tok:
    __slots__ = ("kind", "value", "start", "end", "nl")

    def __init__(self, kind: str, value: Any, start: int, end: int, nl: bool):
        self.kind, self.value, self.start, self.end, self.nl = kind, value, start, end, nl

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Tok({self.kind}, {self.value!r})"


_SPREAD_IN_BODY = "spread into 'properties' (or another property) instead: properties: { ...base, priority: 100 }"


def spread_error(src: Source, start: int, message: str, hint: str) -> InputError:
    """E746 at the ``...`` of a spread Bicep refuses (here, or in bicep.py: a value of the wrong kind)."""
    return InputError.single("E746", message, src.span(start, start + 3), hint)


def _fail(src: Source, start: int, message: str, hint: str = "") -> InputError:
    return InputError.single("E740", f"Bicep syntax: {message}", src.span(start, start + 1),
                             hint or "fix the file so that 'az bicep build' accepts it")


def tokenize(src: Source) -> list[Tok]:
    """Tokens of the whole file. An interpolated string is one ``istr`` token whose value alternates text
    and token lists (each ``${...}`` tokenized on its own, ending with an ``eof`` token)."""
    toks = _tokenize_all(src)
    # The end of the file is reported where the last token ends, a position an editor can show.
    end = toks[-1].end if toks else 0
    toks.append(Tok("eof", None, end, end, True))
    return toks


def _tokenize(src: Source, pos: int, inner: bool, sdepth: int = 0, nl: bool = True) -> tuple[list[Tok], int, bool]:
    text = src.text
    n = len(text)
    toks: list[Tok] = []
    append = toks.append
    depth = 0
    match = _TOKEN.match
    while True:
        m = match(text, pos)
        group = m.lastindex  # type: ignore[union-attr]  # every part is optional: it always matches
        kind = _KINDS[group or 0]
        ws = m.group(1)  # type: ignore[union-attr]
        if ws and "\n" in ws:
            nl = True
        if kind is None or kind == "ws":
            pos = m.end()  # type: ignore[union-attr]
            if pos >= n:
                break
            raise _fail(src, pos, f"unexpected character {text[pos]!r}")
        start = m.start(group)  # type: ignore[union-attr,arg-type]  # a token's group (not None: checked above)
        end = m.end()  # type: ignore[union-attr]
        if kind == "pstr":
            append(Tok("str", text[start + 1:end - 1], start, end, nl))
        elif kind == "id":
            append(Tok("id", text[start:end], start, end, nl))
        elif kind == "op":
            op = text[start:end]
            if inner:
                if op == "{":
                    depth += 1
                elif op == "}":
                    if depth == 0:
                        append(Tok("eof", None, start, start, False))
                        return toks, end, nl
                    depth -= 1
            append(Tok("op", op, start, end, nl))
        elif kind == "num":
            if end - start > 18:  # Bicep's integers are 64-bit; a longer number is no value of any field
                raise _fail(src, start, f"a number of {end - start} digits (Bicep's integers are 64-bit)")
            append(Tok("num", int(text[start:end]), start, end, nl))
        elif kind == "str":
            tok, end = _string(src, start, nl, sdepth)
            append(tok)
        else:  # mstr
            append(Tok("str", text[start + 3:end - 3], start, end, nl))
        nl = False
        pos = end
    if inner:
        raise _fail(src, n - 1 if n else 0, "unterminated '${' in a string")
    return toks, pos, nl


def _tokenize_all(src: Source) -> list[Tok]:
    """The tokens of a whole file, as :func:`_tokenize` makes them, from one ``findall`` over the text: the
    regular expression engine's C loop does the matching, and this loop only turns its tuples into tokens
    (match objects cost more than the matching, a 1.6 MB file has 100,000 tokens).

    A string that needs :func:`_string` (escapes, ``${...}``) is read by it; ``findall`` meanwhile went on
    through the string's inside, and the tuples are skipped up to the one starting where the string ends.
    If none does (the inside read differently from how the rest goes on), the rest of the file is read by
    :func:`_tokenize` from there, as it would have been."""
    text = src.text
    n = len(text)
    toks: list[Tok] = []
    append = toks.append
    nl = True
    pos = 0
    resume = -1  # inside a string _string read: tuples before this offset are skipped
    for ws, ident, mstr, pstr, lone, num, op in _TOKEN.findall(text):
        if pos < resume:  # a tuple from inside a string _string read
            pos += len(ws) + len(ident or mstr or pstr or lone or num or op) or 1  # an empty match moves on one
            continue
        if pos > resume >= 0:
            rest, _, _ = _tokenize(src, resume, False, nl=nl)
            toks += rest
            return toks
        resume = -1
        if ws:
            if "\n" in ws:
                nl = True
            pos += len(ws)
        if ident:
            end = pos + len(ident)
            append(Tok("id", ident, pos, end, nl))
        elif op:
            end = pos + len(op)
            append(Tok("op", op, pos, end, nl))
        elif pstr:
            end = pos + len(pstr)
            append(Tok("str", pstr[1:-1], pos, end, nl))
        elif num:
            end = pos + len(num)
            if end - pos > 18:  # Bicep's integers are 64-bit; a longer number is no value of any field
                raise _fail(src, pos, f"a number of {end - pos} digits (Bicep's integers are 64-bit)")
            append(Tok("num", int(num), pos, end, nl))
        elif lone:
            tok, end = _string(src, pos, nl)
            append(tok)
            resume = end
            pos += 1
            nl = False
            continue
        elif mstr:
            end = pos + len(mstr)
            append(Tok("str", mstr[3:-3], pos, end, nl))
        else:
            if pos >= n:
                break
            raise _fail(src, pos, f"unexpected character {text[pos]!r}")
        nl = False
        pos = end
    if resume >= 0:  # a string ended the file (findall's last tuples were inside it)
        rest, _, _ = _tokenize(src, resume, False, nl=nl)
        toks += rest
    return toks


def _string(src: Source, start: int, nl: bool, depth: int = 0) -> tuple[Tok, int]:
    text = src.text
    pos = start + 1
    parts: list[Any] = []
    buf: list[str] = []
    n = len(text)
    while True:
        if pos >= n or text[pos] == "\n":
            raise _fail(src, start, "unterminated string", "close the string with ' on the same line "
                                                            "(use ''' for text over several lines)")
        c = text[pos]
        if c == "'":
            pos += 1
            break
        if c == "\\":
            e = text[pos + 1:pos + 2]
            if e in _ESC:
                buf.append(_ESC[e])
                pos += 2
                continue
            if e == "u" and text.startswith("{", pos + 2):
                close = text.find("}", pos + 3)
                try:
                    buf.append(chr(int(text[pos + 3:close], 16)))
                except ValueError:
                    raise _fail(src, pos, "bad \\u{...} escape") from None
                pos = close + 1
                continue
            raise _fail(src, pos, f"unknown escape '\\{e}' in a string", "Bicep's escapes are \\' \\\\ \\n \\r \\t "
                                                                          "\\$ and \\u{...}")
        if c == "$" and text.startswith("{", pos + 1):
            parts.append("".join(buf))
            buf = []
            # Each '${' inside a string inside '${' recurses once: bounded like every other nesting.
            if depth >= MAX_JSON_DEPTH:
                raise _fail(src, pos, f"strings nested in '${{...}}' more than {MAX_JSON_DEPTH} levels deep")
            inner, pos, _ = _tokenize(src, pos + 2, True, depth + 1)
            if len(inner) == 1:
                raise _fail(src, pos - 1, "empty '${}' in a string")
            parts.append(inner)
            continue
        m = _STR_PART.match(text, pos)
        if m:
            buf.append(m.group())
            pos = m.end()
        else:
            buf.append(c)
            pos += 1
    parts.append("".join(buf))
    if len(parts) == 1:
        return Tok("str", parts[0], start, pos, nl), pos
    return Tok("istr", parts, start, pos, nl), pos


# ------------------------------------------------------------------ parser

# Bicep's operator precedence, loosest first (docs: "Bicep operators"): ?? is looser than ||.
_BINARY = {
    "??": 1,
    "||": 2,
    "&&": 3,
    "==": 4, "!=": 4, "=~": 4, "!~": 4,
    "<": 5, "<=": 5, ">": 5, ">=": 5,
    "+": 6, "-": 6,
    "*": 7, "/": 7, "%": 7,
}
_CLOSERS = frozenset((",", "]", "}", ")", ":"))
_STATEMENTS = {"param", "var", "output", "resource", "module", "targetScope", "metadata", "type", "func",
               "import", "using", "extension", "provider", "assert"}


class Parser:
    def __init__(self, src: Source, toks: list[Tok]):
        self.src = src
        self.toks = toks
        self.i = 0
        self.depth = 0

    # -------------------------------------------------------------- helpers

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, value: str) -> bool:
        t = self.toks[self.i]
        return t.kind == "op" and t.value == value

    def at_id(self, value: str | None = None) -> bool:
        t = self.toks[self.i]
        return t.kind == "id" and (value is None or t.value == value)

    def fail(self, message: str, tok: Tok | None = None, hint: str = "") -> InputError:
        t = tok or self.tok
        if t.kind == "eof" and "end of the file" not in message:
            message += " (found the end of the file)"
        return _fail(self.src, t.start, message, hint)

    def expect(self, value: str, what: str = "") -> Tok:
        if not self.at(value):
            found = self.tok.value if self.tok.kind != "istr" else "a string"
            raise self.fail(f"expected '{value}'{what}, found {found!r}" if self.tok.kind != "eof"
                            else f"expected '{value}'{what}")
        return self.next()

    def ident(self, what: str) -> Tok:
        if self.tok.kind != "id":
            raise self.fail(f"expected {what}")
        return self.next()

    def node(self, n: Node, start: int, end: int | None = None) -> Any:
        n.src = self.src
        n.start = start
        n.end = self.toks[self.i - 1].end if end is None else end
        return n

    def end_of_statement(self) -> None:
        t = self.tok
        if t.kind != "eof" and not t.nl:
            raise self.fail(f"unexpected {t.value!r} after the statement; one statement per line")

    # -------------------------------------------------------------- statements

    def program(self) -> list[Decl]:
        out: list[Decl] = []
        while self.tok.kind != "eof":
            out.append(self.statement())
        return out

    def decorators(self) -> list[Call]:
        decs = []
        while self.at("@"):
            start = self.next().start
            expr = self.postfix()
            if not isinstance(expr, Call):
                raise self.fail("a decorator must be a function call, such as @description('...')")
            expr.start = start
            decs.append(expr)
        return decs

    def statement(self) -> Decl:
        decs = self.decorators()
        t = self.tok
        if t.kind != "id" or t.value not in _STATEMENTS:
            raise self.fail(f"expected a declaration (param, var, resource, module, output, ...), found "
                            f"{t.value if t.kind in ('id', 'op', 'num') else 'a string'!r}")
        kw = self.next().value
        d = Decl(kw, "", self.src, t.start)
        d.decorators = decs
        getattr(self, "_" + kw.lower())(d)
        d.end = self.toks[self.i - 1].end
        self.end_of_statement()
        return d

    def _name(self, d: Decl, what: str) -> None:
        t = self.ident(what)
        d.name = t.value
        d.name_start = t.start

    def _skip_type(self, stop: tuple[str, ...]) -> str:
        """A type expression (``string``, ``string[]``, ``'a' | 'b'``, ``{ ... }``): kept as text; nsgsolve
        needs only whether it is a string, a number, a truth value, an array or an object."""
        start = self.tok.start
        depth = 0
        first = True
        while True:
            t = self.tok
            if t.kind == "eof":
                break
            if depth == 0 and not first and (t.nl or (t.kind == "op" and t.value in stop)):
                break
            if t.kind == "op" and t.value in ("{", "[", "("):
                depth += 1
            elif t.kind == "op" and t.value in ("}", "]", ")"):
                if depth == 0:
                    break
                depth -= 1
            self.next()
            first = False
        return self.src.text[start:self.toks[self.i - 1].end].strip() if not first else ""

    def _param(self, d: Decl) -> None:
        self._name(d, "a parameter name")
        if self.at("="):  # .bicepparam: param name = value
            self.next()
            d.value = self.expr()
            return
        if self.at_id("resource"):
            self.next()
            d.type_text = "string"
            self.next()
        else:
            d.type_text = self._skip_type(("=",))
            if not d.type_text:
                raise self.fail("expected the parameter's type (string, int, bool, array, object, ...)")
        if self.at("="):
            self.next()
            d.value = self.expr()

    def _var(self, d: Decl) -> None:
        self._name(d, "a variable name")
        if not self.at("="):
            d.type_text = self._skip_type(("=",))
        self.expect("=", " after the variable name")
        d.value = self.expr()

    def _output(self, d: Decl) -> None:
        self._name(d, "an output name")
        if self.at_id("resource"):
            self.next()
            self.next()
            d.type_text = "string"
        else:
            d.type_text = self._skip_type(("=",))
        self.expect("=", " after the output's type")
        d.value = self.expr()

    def _resource(self, d: Decl) -> None:
        self._name(d, "the resource's symbolic name")
        t = self.tok
        if t.kind != "str":
            raise self.fail("expected the resource type and API version as a string, "
                            "such as 'Microsoft.Network/networkSecurityGroups@2023-04-01'")
        self.next()
        d.rtype = t.value
        d.path = t.value
        if self.at_id("existing"):
            self.next()
            d.existing = True
        self.expect("=", " after the resource type")
        d.value = self.body("a resource")

    def _module(self, d: Decl) -> None:
        self._name(d, "the module's symbolic name")
        t = self.path_string("the module's path as a string, such as './network.bicep'")
        d.path = t.value
        d.rtype = t.value
        self.expect("=", " after the module path")
        d.value = self.body("a module")

    def body(self, what: str) -> Node:
        """A resource's or module's value (``what``: 'a resource', 'a module'): an object, ``if (c) {...}``,
        or a ``[for ...]`` loop."""
        start = self.tok.start
        if self.at_id("if"):
            self.next()
            self.expect("(", " after 'if'")
            cond = self.expr()
            self.expect(")")
            return self.node(IfBody(cond, self.body_obj(what)), start)
        if self.at("["):
            loop = self.primary()
            if not isinstance(loop, For):
                raise self.fail("expected an object, 'if (...) {...}' or '[for ...]'", self.toks[self.i - 1])
            if isinstance(loop.body, SpreadObj):
                first = next(p for p in loop.body.parts if type(p) is Spread)
                raise spread_error(self.src, first.start, f"the spread operator '...' in the body of {what}, "
                                                           f"where Bicep does not allow it", _SPREAD_IN_BODY)
            return loop
        return self.body_obj(what)

    def _targetscope(self, d: Decl) -> None:
        self.expect("=")
        d.value = self.expr()

    def _metadata(self, d: Decl) -> None:
        self._name(d, "a metadata name")
        self.expect("=")
        d.value = self.expr()

    def _type(self, d: Decl) -> None:
        self._name(d, "a type name")
        self.expect("=")
        d.type_text = self._skip_type(())

    def _func(self, d: Decl) -> None:
        self._name(d, "a function name")
        self.expect("(")
        while not self.at(")"):
            d.params.append(self.ident("a parameter name").value)
            self._skip_type((",", ")"))
            if self.at(","):
                self.next()
        self.expect(")")
        d.type_text = self._skip_type(("=>",))
        self.expect("=>", " before the function's body")
        d.value = self.expr()

    def _rest_of_line(self) -> None:
        while self.tok.kind != "eof" and not self.tok.nl:
            self.next()

    def _import(self, d: Decl) -> None:
        """``import {a, b as c} from 'x.bicep'`` or ``import * as ns from 'x.bicep'`` (compile-time imports);
        an extension's ``import 'name@version' ...`` is skipped to the end of the line (its ``path`` is '')."""
        if self.at("*"):
            self.next()
            if not self.at_id("as"):
                raise self.fail("expected 'as' and a name after 'import *' (import * as NAME from 'FILE')")
            self.next()
            self._name(d, "the name of the imported namespace")
        elif self.at("{"):
            self.next()
            while not self.at("}"):
                name = self.ident("the name of an exported symbol (import {NAME, ...} from 'FILE')")
                alias = name
                if self.at_id("as"):
                    self.next()
                    alias = self.ident("the local name after 'as'")
                d.items.append((name.value, alias.value, name.start, alias.start))
                if self.at(","):
                    self.next()
                elif not self.at("}") and not self.tok.nl:
                    raise self.fail("expected ',' or '}' in the list of imported names")
            self.next()
        else:
            self._rest_of_line()
            return
        if not self.at_id("from"):
            raise self.fail("expected 'from' and the file the names come from (import ... from 'FILE')")
        self.next()
        t = self.path_string("the path of the Bicep file as a string, such as './types.bicep'")
        d.path = t.value
        d.path_start = t.start

    def path_string(self, what: str) -> Tok:
        """A plain string token (a file path: no '${...}'); E740 naming ``what`` otherwise."""
        t = self.tok
        if t.kind != "str":
            raise self.fail(f"expected {what}")
        self.next()
        return t

    def _using(self, d: Decl) -> None:
        t = self.tok
        if t.kind != "str":
            raise self.fail("expected the path of the Bicep file, such as 'main.bicep'")
        self.next()
        d.path = t.value
        self._rest_of_line()

    def _skip(self, d: Decl) -> None:
        """A statement nsgsolve does not read (extension, provider, assert): to the end of the line."""
        self._rest_of_line()

    _extension = _provider = _assert = _skip

    # -------------------------------------------------------------- expressions

    def expr(self) -> Node:
        t = self.toks[self.i]
        if t.kind == "str" or t.kind == "num":
            # Most values are a literal alone (a rule's fields): no operator follows, so skip the descent.
            nxt = self.toks[self.i + 1]
            if nxt.kind != "op" or nxt.value in _CLOSERS:
                self.i += 1
                lit = Lit(t.value)
                lit.src, lit.start, lit.end = self.src, t.start, t.end
                return lit
        self.depth += 1
        if self.depth > MAX_JSON_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_JSON_DEPTH} levels", hint="real files nest far less; "
                                                                                 "move inner parts into variables")
        try:
            return self._ternary()
        finally:
            self.depth -= 1

    def _ternary(self) -> Node:
        start = self.tok.start
        if self.tok.kind == "id" and self.toks[self.i + 1].kind == "op" and self.toks[self.i + 1].value == "=>":
            name = self.next().value
            self.next()
            return self.node(Lambda([name], self.expr()), start)
        cond = self.binary(1)
        if self.at("?"):
            self.next()
            then = self.expr()
            self.expect(":", " in a conditional (cond ? a : b)")
            other = self.expr()
            return self.node(Ternary(cond, then, other), start)
        return cond

    def binary(self, level: int) -> Node:
        start = self.tok.start
        left = self.unary()
        while True:
            t = self.tok
            if t.kind != "op":
                return left
            prec = _BINARY.get(t.value)
            if prec is None or prec < level or (t.nl and t.value == "-"):
                return left
            self.next()
            right = self.binary(prec + 1)
            left = self.node(Binary(t.value, left, right), start)

    def unary(self) -> Node:
        t = self.tok
        if t.kind == "op" and t.value in ("!", "-"):
            self.next()
            self.depth += 1
            if self.depth > MAX_JSON_DEPTH:
                raise self.fail(f"nesting deeper than {MAX_JSON_DEPTH} levels")
            try:
                operand = self.unary()
            finally:
                self.depth -= 1
            if t.value == "-" and isinstance(operand, Lit) and isinstance(operand.value, int) \
                    and not isinstance(operand.value, bool):
                return self.node(Lit(-operand.value), t.start)
            return self.node(Unary(t.value, operand), t.start)
        return self.postfix()

    def postfix(self) -> Node:
        start = self.tok.start
        e = self.primary()
        while True:
            t = self.tok
            if t.kind != "op":
                return e
            v = t.value
            if v in (".", ".?"):
                if t.nl and self._at_spread():  # the next item of an array or object, spread into it
                    return e
                self.next()
                name = self.tok
                if name.kind != "id":
                    raise self.fail("expected a property name after '.'")
                self.next()
                if self.at("(") and not self.tok.nl:
                    if isinstance(e, Ident) and v == ".":  # ns.fn(...): sys.concat, az.resourceGroup, udf ns
                        call = self._call(name.value, e.name, None, start, name.start)
                    else:
                        call = self._call(name.value, "", e, start, name.start)
                    e = call
                else:
                    e = self.node(Member(e, name.value, v == ".?"), start)
            elif v in ("[", "[?") and not t.nl:
                self.next()
                idx = self.expr()
                self.expect("]")
                e = self.node(Index(e, idx, v == "[?"), start)
            elif v == "::":
                self.next()
                name = self.ident("a nested resource's name after '::'")
                e = self.node(Child(e, name.value), start)
            elif v == "!" and not t.nl:  # the non-null assertion (x!) changes no value
                self.next()
            else:
                return e

    def _call(self, name: str, ns: str, target: Node | None, start: int, name_start: int) -> Call:
        self.expect("(")
        args = []
        while not self.at(")"):
            args.append(self.expr())
            if self.at(","):
                self.next()
            elif not self.at(")"):
                if self.tok.nl:  # Bicep 0.27+: arguments on their own lines, without commas
                    continue
                raise self.fail("expected ',' or ')' in the argument list")
        self.next()
        c = self.node(Call(name, args, ns, target), start)
        c.name_start = name_start
        return c

    def primary(self) -> Node:
        t = self.tok
        start = t.start
        k = t.kind
        if k == "str":
            self.next()
            return self.node(Lit(t.value), start)
        if k == "num":
            self.next()
            return self.node(Lit(t.value), start)
        if k == "istr":
            self.next()
            parts: list[Any] = []
            for p in t.value:
                if isinstance(p, str):
                    parts.append(p)
                else:
                    sub = Parser(self.src, p)
                    sub.depth = self.depth
                    e = sub.expr()
                    if sub.tok.kind != "eof":
                        raise sub.fail("expected '}' to close '${' in the string")
                    parts.append(e)
            return self.node(Interp(parts), start)
        if k == "id":
            v = t.value
            self.next()
            if v in ("true", "false"):
                return self.node(Lit(v == "true"), start)
            if v == "null":
                return self.node(Lit(None), start)
            if self.at("(") and not self.tok.nl:
                return self._call(v, "", None, start, start)
            return self.node(Ident(v), start)
        if k == "op":
            if t.value == "(":
                self.next()
                if self.tok.kind == "id" and self.toks[self.i + 1].kind == "op" and \
                        self.toks[self.i + 1].value in (",", ")"):
                    # a lambda's parameter list: (a, b) => ...
                    j = self.i
                    names = []
                    while self.toks[j].kind == "id" and self.toks[j + 1].kind == "op":
                        names.append(self.toks[j].value)
                        if self.toks[j + 1].value == ")":
                            break
                        if self.toks[j + 1].value != ",":
                            names = []
                            break
                        j += 2
                    if names and self.toks[j + 1].value == ")" and self.toks[j + 2].kind == "op" \
                            and self.toks[j + 2].value == "=>":
                        self.i = j + 3
                        return self.node(Lambda(names, self.expr()), start)
                if self.at(")") and self.toks[self.i + 1].kind == "op" and self.toks[self.i + 1].value == "=>":
                    self.i += 2
                    return self.node(Lambda([], self.expr()), start)
                e = self.expr()
                self.expect(")")
                return e
            if t.value == "[":
                return self.array()
            if t.value == "{":
                return self.obj()
        what = "the end of the file" if k == "eof" else repr(t.value) if k != "istr" else "a string"
        raise self.fail(f"expected a value, found {what}")

    def _at_spread(self) -> bool:
        """Whether the next tokens are ``...`` (three '.' with nothing between them: Bicep's spread)."""
        toks, i = self.toks, self.i
        return all(toks[j].kind == "op" and toks[j].value == "." and toks[j].start == toks[i].start + j - i
                   for j in (i, i + 1, i + 2))

    def _spread_item(self) -> Spread:
        """``...value`` (the parser is at the first '.')."""
        start = self.toks[self.i].start
        self.i += 3
        return self.node(Spread(self.expr()), start)

    def _item_end(self, close: str, message: str) -> None:
        """After an array item or an object property: a ',' (taken), the closing bracket or a new line
        (left for the loop), anything else an error."""
        t = self.toks[self.i]
        if t.kind == "op" and t.value == ",":
            self.i += 1
        elif not (t.kind == "op" and t.value == close) and not t.nl:
            raise self.fail(message)

    def array(self) -> Node:
        start = self.next().start
        if self.at_id("for"):
            return self._for(start)
        items: list = []
        parts: list | None = None  # with a spread: runs of items (Arr) and Spread nodes, in order
        toks = self.toks  # the loop reads tokens directly: arrays of thousands of items
        while True:
            t = toks[self.i]
            if t.kind == "op" and t.value == "]":
                break
            if t.kind == "eof":
                raise self.fail("expected ']' to close the array", hint="")
            if t.kind == "op" and t.value == "." and self._at_spread():
                if parts is None:
                    parts = []
                if items:
                    parts.append(self.node(Arr(items), items[0].start))
                    items = []
                parts.append(self._spread_item())
            else:
                items.append(self.expr())
            self._item_end("]", "expected ',' or a new line between array items, or ']'")
        self.i += 1
        if parts is None:
            return self.node(Arr(items), start)
        if items:
            parts.append(self.node(Arr(items), items[0].start))
        return self.node(SpreadArr(parts), start)

    def _for(self, start: int) -> Node:
        self.next()
        index = None
        if self.at("("):
            self.next()
            item = self.ident("the loop's item variable").value
            self.expect(",")
            index = self.ident("the loop's index variable").value
            self.expect(")")
        else:
            item = self.ident("the loop's item variable").value
        if not self.at_id("in"):
            raise self.fail("expected 'in' in the loop ([for x in LIST: ...])")
        self.next()
        iterable = self.expr()
        self.expect(":", " after the loop's list ([for x in LIST: ...])")
        cond = None
        if self.at_id("if"):
            self.next()
            self.expect("(", " after 'if'")
            cond = self.expr()
            self.expect(")")
        body = self.expr()
        self.expect("]", " to close the loop")
        return self.node(For(item, index, iterable, body, cond), start)

    def body_obj(self, what: str) -> Obj:
        """The object of a resource or module declaration, where Bicep refuses a spread (E746)."""
        o = self.obj(what)
        assert isinstance(o, Obj)
        return o

    def obj(self, body: str = "") -> Node:
        """An object literal (:class:`Obj`), or :class:`SpreadObj` if it holds ``...x``; ``body`` names the
        declaration whose body it is ('a resource', 'a module'), where Bicep refuses a spread."""
        if not self.at("{"):
            raise self.fail("expected '{'")
        start = self.next().start
        pairs: list = []
        resources: list[Decl] = []
        parts: list | None = None  # with a spread: runs of properties (Obj) and Spread nodes, in order
        toks = self.toks  # the loop reads tokens directly: objects of a thousand rules' fields
        while True:
            t = toks[self.i]
            if t.kind == "op" and t.value == "}":
                break
            if t.kind == "eof":
                raise self.fail("expected '}' to close the object")
            if t.kind == "op" and t.value == "." and self._at_spread():
                if body:
                    raise spread_error(self.src, t.start, f"the spread operator '...' in the body of {body}, "
                                                          f"where Bicep does not allow it",
                                        _SPREAD_IN_BODY)
                if parts is None:
                    parts = []
                if pairs:
                    parts.append(self.node(Obj(pairs, []), pairs[0][1]))
                    pairs = []
                parts.append(self._spread_item())
            elif t.kind == "op" and t.value == "@" or (t.kind == "id" and t.value == "resource"
                                                       and self.toks[self.i + 1].kind == "id"):
                decs = self.decorators()
                kw = self.ident("'resource'")
                if kw.value != "resource":
                    raise self.fail("expected a nested 'resource' after the decorators", kw)
                d = Decl("resource", "", self.src, kw.start)
                d.decorators = decs
                self._resource(d)
                d.end = self.toks[self.i - 1].end
                resources.append(d)
                continue
            else:
                if t.kind == "id" or t.kind == "str":
                    key = t.value
                else:
                    raise self.fail("expected a property name" + (" (a quoted key may not use '${...}')"
                                                                  if t.kind == "istr" else ""))
                self.i += 1
                c = toks[self.i]
                if c.kind == "op" and c.value == ":":
                    self.i += 1
                else:
                    self.expect(":", f" after the property name '{key}'")  # raises, worded as everywhere
                pairs.append((key, t.start, self.expr()))
            self._item_end("}", "expected a new line or ',' between properties, or '}'")
        self.i += 1
        if parts is None:
            return self.node(Obj(pairs, resources), start)
        if pairs:
            parts.append(self.node(Obj(pairs, []), pairs[0][1]))
        loop = next((v for p in parts if type(p) is Obj for _k, _s, v in p.pairs if type(v) is For), None)
        if loop is not None:  # Bicep's rule: a property loop becomes a 'copy', which a merge cannot hold
            first = next(p for p in parts if type(p) is Spread)
            raise spread_error(self.src, first.start, "the spread operator '...' in an object with a property "
                                                       "loop ([for ...]), which Bicep does not allow",
                                "build the looped property in a variable first, then spread or use it")
        return self.node(SpreadObj(parts), start)


def parse(text: str, filename: str) -> tuple[Source, list[Decl]]:
    """The statements of a Bicep (or .bicepparam) file; E740 on a syntax error."""
    src = Source(text, filename)
    p = Parser(src, tokenize(src))
    return src, p.program()
