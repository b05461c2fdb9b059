"""HCL2 (Terraform) syntax with positions: python-hcl2's Lark parser, our own light tree on top.

python-hcl2's dictionary output (``hcl2.loads``) drops every position and turns expressions back into
strings, and import errors must name file:line:column. Its raw Lark tree (``propagate_positions``) keeps
them, so this module walks that tree into :class:`Body`/:class:`Block`/:class:`Attr`, keeping expression
subtrees as they are for :mod:`nsgsolve.importers.tfexpr` to evaluate on demand. The grammar is
python-hcl2's, a maintained HCL2 grammar; nothing here parses text itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from nsgsolve.errors import InputError
from nsgsolve.model import NOSPAN, Span


@dataclass
class Attr:
    name: str
    expr: Any  # a Lark Tree or Token
    span: Span  # the whole `name = expr`
    value_span: Span  # the expression


@dataclass
class Block:
    type: str
    labels: list[str]
    body: "Body"
    span: Span  # the block's first line (type and labels)


@dataclass
class Body:
    attrs: dict[str, Attr] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    span: Span = NOSPAN

    def blocks_of(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]


def span_of(node: Any, filename: str) -> Span:
    """Where a Lark tree or token was written (1-based line and column)."""
    if isinstance(node, Token):
        if node.line is None or node.column is None:
            return Span(filename, 0, 0)
        return Span(filename, node.line, node.column, node.end_line or node.line, node.end_column or node.column)
    meta = getattr(node, "meta", None)
    if meta is None or getattr(meta, "empty", True):
        return Span(filename, 0, 0)
    return Span(filename, meta.line, meta.column, meta.end_line, meta.end_column)


def _parser():
    # Imported lazily: building the LALR tables costs a few seconds the first time (python-hcl2 caches them).
    from hcl2.parser import parser

    return parser()


def parse_tree(text: str, filename: str) -> Tree:
    """The Lark tree of one HCL file, or E660 at the first syntax error."""
    try:
        return _parser().parse(text + "\n")  # python-hcl2's grammar needs a final newline (lark issue 237)
    except UnexpectedInput as e:
        line, col = getattr(e, "line", 0) or 0, getattr(e, "column", 0) or 0
        if isinstance(e, UnexpectedToken):
            tok = e.token
            line, col = tok.line or line, tok.column or col
            raw = str(tok)
            body = raw.lstrip()
            if body and body != raw:  # python-hcl2's post-lexer glues line ends to the next token: skip them
                lead = raw[: len(raw) - len(body)]
                if "\n" in lead:
                    line += lead.count("\n")
                    col = len(lead) - lead.rfind("\n")
                else:
                    col += len(lead)
            first = body.split("\n", 1)[0].strip()
            what = "end of file" if tok.type == "$END" else (f"'{first}'" if first else "end of line")
            msg = f"HCL syntax error: unexpected {what}"
        elif isinstance(e, UnexpectedCharacters):
            at = e.pos_in_stream
            ch = text[at] if at is not None and 0 <= at < len(text) else "?"
            msg = f"HCL syntax error: unexpected character {ch!r}"
        elif isinstance(e, UnexpectedEOF):
            msg = "HCL syntax error: the file ends inside a block or expression"
        else:
            msg = "HCL syntax error"
        if line in (None, -1) or line > text.count("\n") + 1:
            line, col = text.count("\n") + 1, 1
        raise InputError.single("E660", msg, Span(filename, max(line, 1), max(col, 1)),
                                "'terraform validate' shows the same problem; a .tf file must be valid HCL2") from None
    except LarkError as e:  # e.g. a post-lexer failure: still located at the file
        raise InputError.single("E660", f"HCL syntax error: {e}", Span(filename, 1, 1)) from None


def parse_body(text: str, filename: str) -> Body:
    tree = parse_tree(text, filename)
    body = tree.children[0] if tree.children else Tree("body", [])
    return _body(body, filename)


def _children(node: Tree) -> list[Any]:
    """Children that carry meaning (no newlines, comments or punctuation tokens)."""
    return [c for c in node.children if not (isinstance(c, Tree) and c.data == "new_line_or_comment")
            and not isinstance(c, Token)]


def ident_text(node: Any) -> str:
    """The text of an identifier, keyword or literal used as a name."""
    if isinstance(node, Token):
        return str(node)
    if node.data in ("identifier", "keyword", "literal_value"):
        return str(node.children[0])
    if node.data == "string":
        return string_literal(node) or ""
    return ""


def string_literal(node: Tree) -> str | None:
    """The value of a string with no interpolation (block labels), or None."""
    out = []
    for part in node.children:
        if isinstance(part, Token):
            continue  # the quotes
        inner = part.children[0]
        if isinstance(inner, Token) and inner.type == "STRING_CHARS":
            out.append(unescape(str(inner)))
        elif isinstance(inner, Token) and inner.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
            out.append(str(inner)[1:])
        else:
            return None
    return "".join(out)


_ESC = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def unescape(s: str) -> str:
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in _ESC:
                out.append(_ESC[n])
                i += 2
                continue
            if n == "u" and i + 6 <= len(s):
                out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 6
                continue
            if n == "U" and i + 10 <= len(s):
                out.append(chr(int(s[i + 2:i + 10], 16)))
                i += 10
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _body(node: Tree, filename: str) -> Body:
    body = Body(span=span_of(node, filename))
    for c in _children(node):
        if c.data == "attribute":
            parts = _children(c)
            name = ident_text(parts[0])
            expr = parts[-1] if len(parts) > 1 else None
            # A duplicate argument is an error in Terraform; the later one wins here and 'terraform validate'
            # reports it, which is not nsgsolve's job.
            body.attrs[name] = Attr(name, expr, span_of(c, filename),
                                    span_of(expr, filename) if expr is not None else span_of(c, filename))
        elif c.data == "block":
            parts = _children(c)
            inner: Tree = next((p for p in parts if p.data == "body"), Tree("body", []))
            heads = [p for p in parts if p is not inner]
            btype = ident_text(heads[0])
            labels = [ident_text(h) for h in heads[1:]]
            head = span_of(heads[-1] if heads else c, filename)
            start = span_of(heads[0], filename) if heads else span_of(c, filename)
            body.blocks.append(Block(btype, labels, _body(inner, filename),
                                     Span(filename, start.line, start.column, head.end_line, head.end_column)))
    return body
