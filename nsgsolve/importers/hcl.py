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


# ---------------------------------------------------------------------- Terraform's JSON syntax (.tf.json)
#
# The same configuration written as JSON (developer.hashicorp.com/terraform/language/syntax/json): the top
# level maps block types to their labels and bodies; in a body, a property is an argument unless it names a
# nested block, and a string is a template ("${...}" and "%{...}" are evaluated). Each value is turned into
# the HCL expression it stands for and parsed by the same grammar, so evaluation is shared with .tf files;
# every position in a value's tree is the value's place in the JSON file.

# Labels per top-level block type ("locals" and "terraform" have none).
_JSON_LABELS = {"resource": 2, "data": 2, "module": 1, "variable": 1, "output": 1, "provider": 1, "locals": 0,
                "terraform": 0, "moved": 0, "import": 0, "check": 1, "removed": 0}
# Nested block types of the resources nsgsolve reads (a property of this name holding an object, or an array
# of objects, is a block), plus Terraform's own.
_JSON_BLOCKS = {"security_rule", "subnet", "ip_configuration", "network_interface", "network_profile", "source",
                "destination", "scope", "lifecycle", "timeouts", "provisioner", "connection", "validation",
                "precondition", "postcondition", "delegation", "ddos_protection_plan", "encryption",
                "os_profile", "os_disk", "storage_profile", "backend", "required_providers", "content"}
# Arguments whose JSON string is an expression, not a template.
_JSON_RAW = {("variable", "type"), ("dynamic", "iterator")}


def parse_json_body(text: str, filename: str) -> Body:
    """A ``.tf.json`` file as the :class:`Body` its HCL form would give (E660 for JSON Terraform rejects)."""
    from nsgsolve.importers.jsonpos import JObject, parse

    try:
        doc = parse(text, filename)
    except InputError as e:
        d = e.diagnostics[0]
        raise InputError.single("E660", f"Terraform JSON syntax: {d.message}", d.span,
                                "a .tf.json file must be one JSON object (Terraform's JSON syntax)") from None
    if not isinstance(doc, JObject):
        raise InputError.single("E660", "Terraform JSON syntax: the file must be one JSON object",
                                Span(filename, 1, 1), "the top level maps block types (resource, variable, ...) to "
                                                      "their contents")
    body = Body(span=doc.span)
    for btype, content in doc.items():
        if btype.startswith("//"):
            continue  # a comment property
        n = _JSON_LABELS.get(btype)
        if n is None:
            raise InputError.single("E660", f"Terraform JSON syntax: unknown top-level block type '{btype}'",
                                    doc.span_of(btype), f"expected one of: {', '.join(sorted(_JSON_LABELS))}")
        _json_labelled(body, btype, n, content, doc.span_of(btype), [], filename)
    return body


def _json_labelled(body: Body, btype: str, n: int, value: Any, span: Span, labels: list[str], filename: str) -> None:
    from nsgsolve.importers.jsonpos import JArray, JObject

    if n == 0:
        for i, item in enumerate(value if isinstance(value, JArray) else [value]):
            s = value.span_of(i) if isinstance(value, JArray) else span
            if not isinstance(item, JObject):
                raise InputError.single("E660", f"Terraform JSON syntax: the body of {btype} "
                                                f"{' '.join(labels)} must be an object", s)
            body.blocks.append(Block(btype, labels, _json_body(item, btype, filename), s))
        return
    if not isinstance(value, JObject):
        raise InputError.single("E660", f"Terraform JSON syntax: {btype} {' '.join(labels)} must map labels to "
                                        f"bodies", span)
    for label, inner in value.items():
        _json_labelled(body, btype, n - 1, inner, value.span_of(label), labels + [label], filename)


def _json_body(obj: Any, btype: str, filename: str) -> Body:
    from nsgsolve.importers.jsonpos import JArray, JObject

    body = Body(span=obj.span)
    for key, v in obj.items():
        s = obj.span_of(key)
        if key.startswith("//"):
            continue
        if btype == "locals":
            body.attrs[key] = Attr(key, _json_expr(v, s, filename), s, s)
        elif key == "dynamic" and isinstance(v, JObject):
            for label, spec in v.items():
                if not isinstance(spec, JObject):
                    raise InputError.single("E660", f"Terraform JSON syntax: dynamic \"{label}\" must be an object",
                                            v.span_of(label))
                body.blocks.append(Block("dynamic", [label], _json_body(spec, "dynamic", filename), v.span_of(label)))
        elif key in _JSON_BLOCKS and (isinstance(v, JObject) or (isinstance(v, JArray) and v and
                                                                 all(isinstance(x, JObject) for x in v))):
            for i, item in enumerate(v if isinstance(v, JArray) else [v]):
                si = v.span_of(i) if isinstance(v, JArray) else s
                body.blocks.append(Block(key, [], _json_body(item, key, filename), si))
        else:
            raw = (btype, key) in _JSON_RAW
            body.attrs[key] = Attr(key, _json_expr(v, s, filename, raw), s, s)
    return body


def _hcl_text(v: Any, raw: bool = False) -> str:
    """The HCL expression a JSON value stands for: strings are templates (or raw expressions)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        if raw:
            return v
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")\
            .replace("\t", "\\t") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_hcl_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_hcl_text(str(k))} = {_hcl_text(x)}" for k, x in v.items()) + "}"
    return repr(v)


def template_expr(text: str, span: Span, filename: str) -> Any:
    """The parsed template a heredoc's body is (``${}`` and ``%{}`` kept), positioned at ``span``."""
    return _json_expr(text, span, filename)


def _json_expr(v: Any, span: Span, filename: str, raw: bool = False) -> Any:
    """The parsed expression of one JSON value, every position set to the value's place in the file."""
    text = _hcl_text(v, raw)
    try:
        tree = parse_tree(f"a = {text}\n", filename)
    except InputError as e:
        raise InputError.single("E660", f"Terraform JSON syntax: this value is not a valid template or "
                                        f"expression ({e.diagnostics[0].message})", span) from None
    attr = next(c for c in _children(tree.children[0]) if c.data == "attribute")
    expr = _children(attr)[-1]
    for node in [expr, *expr.iter_subtrees()] if isinstance(expr, Tree) else [expr]:
        if isinstance(node, Tree):
            m = node.meta
            m.line, m.column, m.end_line, m.end_column = span.line, span.column, span.end_line, span.end_column
            m.empty = False
            for t in node.children:
                if isinstance(t, Token):
                    t.line, t.column, t.end_line, t.end_column = span.line, span.column, span.end_line, \
                        span.end_column
    if isinstance(expr, Token):
        expr.line, expr.column, expr.end_line, expr.end_column = span.line, span.column, span.end_line, \
            span.end_column
    return expr
