"""Terraform expressions: evaluated over python-hcl2's Lark tree, with unknowns kept explicit.

Values are Python values (str, int/float, bool, None, list, dict) or a :class:`TfUnknown`: a variable with
no value, an attribute Azure computes at apply time, a data source, a module nsgsolve cannot read, or an
expression it cannot evaluate (``error``). An unknown spreads through every operation that reads it, so
nothing unknown is ever read as empty. A string built by interpolation from unknown parts keeps a
*placeholder* (each unknown part replaced by its variable's name), which names may use; addresses never do.

Names (``var``, ``local``, resources, ``data``, ``module``) are resolved by an environment
(:class:`nsgsolve.importers.terraform.ModuleEnv`), lazily, so only what a network resource needs is ever
evaluated and an expression nsgsolve cannot compute in, say, a VM's ``custom_data`` never matters.
"""

from __future__ import annotations

import ipaddress
import json
import re
import math
from dataclasses import dataclass
from typing import Any, Callable

from lark import Token, Tree

from nsgsolve.limits import decimal
from nsgsolve.model import NOSPAN, Span
from nsgsolve.importers.armexpr import Unknown
from nsgsolve.errors import InputError
from nsgsolve.importers.hcl import ident_text, span_of, string_literal, unescape


@dataclass(frozen=True)
class VarParam:
    """An unset variable used as a whole value (``var.x``, ``"${var.x}"``, a local that is just it): a rule's
    address or port field that is exactly this becomes a symbolic parameter, as an unset ARM parameter does
    (docs/import.md, "Unset parameters"). ``name`` is how the policy names it (``var.x``; in a module,
    ``module.net.var.x``), ``allowed`` the values a ``validation`` restricts it to (none: any value), ``span``
    the declaration."""

    name: str
    allowed: tuple[str, ...] = ()
    span: Span = NOSPAN


@dataclass(frozen=True)
class TfUnknown(Unknown):
    """``placeholder``: a readable stand-in when the value is used as a name; ``vars``: the unset variables it
    depends on; ``error``: the expression is wrong (not merely unknown before apply); ``param``: the variable
    this value is, whole (anything computed from it has none)."""

    placeholder: str | None = None
    vars: tuple[str, ...] = ()
    error: bool = False
    param: VarParam | None = None


MISSING = "\0"  # marks, among an unknown's variables, an object the files read do not define


class _Fail(Exception):
    """An expression Terraform would reject (wrong type, bad index, unknown function)."""


class Obj:
    """A value the environment computes on demand (a resource, a module's outputs, ``var``)."""

    def attr(self, name: str, span: Span, text: str) -> Any:  # pragma: no cover - interface
        raise _Fail(f"no attribute '{name}'")

    def index(self, key: Any, span: Span, text: str) -> Any:
        raise _Fail(f"cannot index {self.describe()}")

    def materialize(self) -> Any:
        """The value as plain data, when it is used as a whole (``for_each = azurerm_subnet.x``)."""
        return TfUnknown(f"{self.describe()} used as a whole value is not evaluated")

    def describe(self) -> str:
        return type(self).__name__


def unknown_in(value: Any) -> TfUnknown | None:
    """The first unknown inside ``value``; an error one first, so mistakes are never taken for 'not known yet'."""
    first = None
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Unknown):
            if isinstance(v, TfUnknown) and v.error:
                return v
            first = first or v
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return first  # type: ignore[return-value]


def _merge_unknown(parts: list[Any], reason: str, text: str, span: Span) -> TfUnknown:
    """An unknown standing for an operation on the unknowns among ``parts``."""
    us = [u for u in (unknown_in(p) for p in parts) if u is not None]
    err = next((u for u in us if isinstance(u, TfUnknown) and u.error), None)
    if err is not None:
        return err
    vars_: list[str] = []
    for u in us:
        for v in getattr(u, "vars", ()):
            if v not in vars_:
                vars_.append(v)
    first = us[0] if us else None
    if len(us) == 1 and first is not None:
        return TfUnknown(first.reason, first.expr or text, first.span if first.span.line else span, None,
                         tuple(vars_))
    return TfUnknown(reason or (first.reason if first else "not known"), text, span, None, tuple(vars_))


class Scope:
    """Names visible to an expression: the module's (through ``env``) and local ones (count, each, for)."""

    def __init__(self, env: Any, file: str, names: dict[str, Any] | None = None):
        self.env = env
        self.file = file
        self.names = names or {}

    def child(self, **names: Any) -> "Scope":
        return Scope(self.env, self.file, {**self.names, **names})


_DIRECTIVES = ("template_if_start", "template_else", "template_endif", "template_for_start", "template_endfor")


def _directive_kids(node: Tree) -> list[Any]:
    return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def _strip(items: list[tuple[str, Any]]) -> None:
    """Apply ``~`` strip markers: ``%{~`` trims the text before, ``~}`` the text after, of white space."""
    for i, (kind, node) in enumerate(items):
        if kind not in _DIRECTIVES:
            continue
        toks = [str(t) for t in node.children if isinstance(t, Token)]
        if len(toks) > 1 and toks[1] == "~" and i > 0 and items[i - 1][0] == "text":
            items[i - 1] = ("text", items[i - 1][1].rstrip())
        if len(toks) > 1 and toks[-2] == "~" and i + 1 < len(items) and items[i + 1][0] == "text":
            items[i + 1] = ("text", items[i + 1][1].lstrip())


def _template_seq(items: list[tuple[str, Any]], i: int, stops: tuple[str, ...]) -> tuple[list, int]:
    """Nodes from ``items[i]`` up to a directive in ``stops``: ("text", s), ("expr", node),
    ("if", cond, then, else), ("for", names, collection, body)."""
    out: list = []
    while i < len(items):
        kind, x = items[i]
        if kind in stops:
            return out, i
        if kind in ("text", "expr"):
            out.append((kind, x))
            i += 1
        elif kind == "template_if_start":
            then, i = _template_seq(items, i + 1, ("template_else", "template_endif"))
            other: list = []
            if i < len(items) and items[i][0] == "template_else":
                other, i = _template_seq(items, i + 1, ("template_endif",))
            if i >= len(items):
                raise _Fail("%{if} without %{endif}")
            out.append(("if", _directive_kids(x)[0], then, other))
            i += 1
        elif kind == "template_for_start":
            kids = _directive_kids(x)
            names = [ident_text(c) for c in kids if c.data == "identifier"]
            coll = [c for c in kids if c.data != "identifier"][0]
            body, i = _template_seq(items, i + 1, ("template_endfor",))
            if i >= len(items):
                raise _Fail("%{for} without %{endfor}")
            out.append(("for", names, coll, body))
            i += 1
        else:
            return out, i  # a closing directive this level did not open: the caller reports it
    return out, i


class Evaluator:
    def __init__(self, texts: dict[str, str]):
        self.texts = texts  # file → source, for the text of an expression in messages
        self._lines: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ helpers

    def text(self, node: Any, file: str) -> str:
        s = span_of(node, file)
        if not s.line:
            return ""
        lines = self._lines.get(file)
        if lines is None:
            lines = self._lines[file] = self.texts.get(file, "").split("\n")
        if s.end_line == s.line:
            return lines[s.line - 1][s.column - 1:s.end_column - 1] if s.line <= len(lines) else ""
        first = lines[s.line - 1][s.column - 1:] if s.line <= len(lines) else ""
        return first + " ..."

    def fail(self, msg: str, node: Any, scope: Scope) -> TfUnknown:
        return TfUnknown(msg, self.text(node, scope.file), span_of(node, scope.file), error=True)

    # ------------------------------------------------------------------ evaluation

    def eval(self, node: Any, scope: Scope) -> Any:
        try:
            return self._eval(node, scope)
        except _Fail as e:
            return self.fail(str(e), node, scope)
        except RecursionError:
            return self.fail("expression nested too deeply", node, scope)

    def _eval(self, node: Any, scope: Scope) -> Any:
        if isinstance(node, Token):
            raise _Fail(f"unexpected token {node!s}")
        d = node.data
        kids = [c for c in node.children if not (isinstance(c, Tree) and c.data == "new_line_or_comment")]
        if d == "expr_term":
            inner = [c for c in kids if not isinstance(c, Token)]
            return self._eval(inner[0], scope)
        if d == "int_lit":
            return decimal(str(kids[0]))  # a 5,000-digit literal is out of range, not a ValueError
        if d == "float_lit":
            f = float(str(kids[0]))
            return int(f) if f.is_integer() else f
        if d == "literal_value":
            return {"true": True, "false": False, "null": None}[str(kids[0])]
        if d == "string":
            return self._string(node, scope)
        if d in ("heredoc_template", "heredoc_template_trim"):
            return self._heredoc(node, scope, d.endswith("trim"))
        if d == "template_string":
            return unescape(str(kids[0])[2:-2])
        if d == "tuple":
            return [self.eval(c, scope) for c in kids if not isinstance(c, Token)]
        if d == "object":
            return self._object(node, scope)
        if d == "identifier":
            return self._root(str(kids[0]), node, scope)
        if d == "get_attr_expr_term":
            base = self.eval(kids[0], scope)
            return self._get_attr(base, kids[1], node, scope)
        if d == "index_expr_term":
            base = self.eval(kids[0], scope)
            return self._index(base, kids[1], node, scope)
        if d in ("attr_splat_expr_term", "full_splat_expr_term"):
            return self._splat(self.eval(kids[0], scope), kids[1], node, scope)
        if d == "function_call":
            return self._call(node, scope)
        if d == "conditional":
            c, a, b = [k for k in kids if not isinstance(k, Token)]
            cond = self.eval(c, scope)
            if isinstance(cond, Unknown):
                va, vb = self.eval(a, scope), self.eval(b, scope)
                if va == vb and unknown_in(va) is None:
                    return va
                return _merge_unknown([cond], "", self.text(node, scope.file), span_of(node, scope.file))
            return self.eval(a if _truth(cond) else b, scope)
        if d == "binary_op":
            return self._binary(node, kids, scope)
        if d == "unary_op":
            op = str(kids[0])
            v = self.eval(kids[1], scope)
            if isinstance(v, Unknown):
                return v
            if op == "!":
                return not _truth(v)
            return -_num(v)
        if d == "for_tuple_expr" or d == "for_object_expr":
            return self._for(node, kids, scope)
        if d in ("template_if_start", "interpolation"):
            raise _Fail("template directive outside a string")
        raise _Fail(f"unsupported expression ({d})")

    def _root(self, name: str, node: Any, scope: Scope) -> Any:
        if name in scope.names:
            return scope.names[name]
        return scope.env.root(name, span_of(node, scope.file), self.text(node, scope.file), scope)

    def _get_attr(self, base: Any, ga: Tree, node: Any, scope: Scope) -> Any:
        name = ident_text([c for c in ga.children if not isinstance(c, Token)][0])
        return get_attr(base, name, span_of(node, scope.file), self.text(node, scope.file))

    def _index(self, base: Any, idx: Tree, node: Any, scope: Scope) -> Any:
        if idx.data == "short_index":
            key: Any = decimal(str([c for c in idx.children if isinstance(c, Token) and c.type == "INT_LITERAL"][0]))
        else:
            key = self.eval([c for c in idx.children if isinstance(c, Tree) and c.data != "new_line_or_comment"][0],
                            scope)
        return get_index(base, key, span_of(node, scope.file), self.text(node, scope.file))

    def _splat(self, base: Any, sp: Tree, node: Any, scope: Scope) -> Any:
        span, text = span_of(node, scope.file), self.text(node, scope.file)
        if isinstance(base, Unknown):
            return base
        if isinstance(base, Obj):
            base = base.materialize()
            if isinstance(base, Unknown):
                return base
        items = base if isinstance(base, list) else ([] if base is None else [base])
        out = []
        for it in items:
            v = it
            for op in sp.children:
                if isinstance(op, Token):
                    continue
                if op.data == "get_attr":
                    v = get_attr(v, ident_text([c for c in op.children if not isinstance(c, Token)][0]), span, text)
                else:
                    v = self._index(v, op, node, scope)
            out.append(v)
        return out

    def _string(self, node: Tree, scope: Scope) -> Any:
        items: list[tuple[str, Any]] = []  # the template's pieces in order, directives flat as the grammar gives
        for part in node.children:
            if isinstance(part, Token):
                continue
            inner = part.children[0]
            if isinstance(inner, Token):
                if inner.type == "STRING_CHARS":
                    items.append(("text", unescape(str(inner))))
                else:
                    items.append(("text", str(inner)[1:]))  # $${ and %%{ are literal ${ and %{
            elif inner.data == "interpolation":
                items.append(("expr", [c for c in inner.children if not isinstance(c, Token)][0]))
            elif inner.data in _DIRECTIVES:
                items.append((inner.data, inner))
            else:
                return TfUnknown(f"template part {inner.data} is not evaluated by nsgsolve",
                                 self.text(node, scope.file), span_of(node, scope.file))
        if not any(k in _DIRECTIVES for k, _ in items):
            parts = [self.eval(x, scope) if k == "expr" else x for k, x in items]
            return self._concat(parts, node, scope)
        # %{if}/%{else}/%{endif} and %{for}/%{endfor}: nested, then expanded; a condition or collection not
        # known offline makes the whole string unknown (through _concat, which keeps its variables).
        _strip(items)
        tree, end = _template_seq(items, 0, ())
        if end != len(items):
            raise _Fail(f"template directive {items[end][0].removeprefix('template_')} without its opening")
        v = self._concat(self._template_parts(tree, scope), node, scope)
        return v if isinstance(v, (str, Unknown)) else to_str(v)

    def _template_parts(self, tree: list, scope: Scope) -> list[Any]:
        out: list[Any] = []
        for n in tree:
            if n[0] == "text":
                out.append(n[1])
            elif n[0] == "expr":
                out.append(self.eval(n[1], scope))
            elif n[0] == "if":
                c = self.eval(n[1], scope)
                if isinstance(c, Unknown):
                    out.append(c)
                else:
                    out += self._template_parts(n[2] if _truth(c) else n[3], scope)
            else:  # for
                names, coll_node, body = n[1], n[2], n[3]
                coll = self.eval(coll_node, scope)
                if isinstance(coll, Obj):
                    coll = coll.materialize()
                if isinstance(coll, Unknown):
                    out.append(coll)
                    continue
                if isinstance(coll, dict):
                    pairs = list(coll.items())
                elif isinstance(coll, list):
                    pairs = list(enumerate(coll))
                else:
                    raise _Fail("a %{for} directive needs a list, set or map")
                for k, v in pairs:
                    bind = {names[0]: v} if len(names) == 1 else {names[0]: k, names[1]: v}
                    out += self._template_parts(body, scope.child(**bind))
        return out

    def _concat(self, parts: list[Any], node: Any, scope: Scope) -> Any:
        if len(parts) == 1 and not isinstance(parts[0], str):
            v = parts[0]  # "${x}" alone keeps x's type, as Terraform does
            if isinstance(v, (Unknown, list, dict)) or v is None:
                return v
        out: list[str] = []  # joined only when no part is unknown
        holder: list[str | None] = []
        unknowns: list[Unknown] = []
        for p in parts:
            if isinstance(p, Unknown):
                unknowns.append(p)
                holder.append(getattr(p, "placeholder", None))
                continue
            s = to_str(p)
            out.append(s)
            holder.append(s)
        if not unknowns:
            return "".join(out)
        u = _merge_unknown(unknowns, "", self.text(node, scope.file), span_of(node, scope.file))
        if u.error:
            return u
        known = [h for h in holder if h is not None]
        ph = "".join(known) if len(known) == len(holder) else None
        return TfUnknown(u.reason, u.expr, u.span, ph, u.vars)

    def _heredoc(self, node: Tree, scope: Scope, trim: bool) -> Any:
        raw = str(node.children[0])
        lines = raw.split("\n")
        body = lines[1:-2]  # marker line, ..., closing marker, trailing ''
        if trim:
            ind = min((len(x) - len(x.lstrip()) for x in body if x.strip()), default=0)
            body = [x[ind:] for x in body]
        text = "\n".join(body) + ("\n" if body else "")
        if "${" in text or "%{" in text:
            # The body is a template like a quoted string's: parsed as one, so it evaluates the same way.
            from nsgsolve.importers.hcl import template_expr

            try:
                expr = template_expr(text, span_of(node, scope.file), scope.file)
            except InputError:
                raise _Fail("this heredoc is not a valid template") from None
            return self.eval(expr, scope)
        return text

    def _object(self, node: Tree, scope: Scope) -> Any:
        out: dict[str, Any] = {}
        for el in node.children:
            if not isinstance(el, Tree) or el.data != "object_elem":
                continue
            kids = [c for c in el.children if not isinstance(c, Token)]
            key_node, val_node = kids[0], kids[-1]
            k = _literal_key(key_node)
            if k is None:
                kv = self.eval(key_node.children[0], scope)
                if isinstance(kv, Unknown):
                    return kv
                k = to_str(kv)
            out[k] = self.eval(val_node, scope)
        return out

    def _binary(self, node: Tree, kids: list[Any], scope: Scope) -> Any:
        left = self.eval(kids[0], scope)
        term = kids[1]
        tk = [c for c in term.children if not (isinstance(c, Tree) and c.data == "new_line_or_comment")]
        op = str(tk[0].children[0]).strip()
        if op == "&&" and left is False or op == "||" and left is True:
            return left
        right = self.eval(tk[-1], scope)
        if isinstance(left, Unknown) or isinstance(right, Unknown):
            if op == "&&" and right is False or op == "||" and right is True:
                return right
            return _merge_unknown([left, right], "", self.text(node, scope.file), span_of(node, scope.file))
        if op == "==":
            return _eq(left, right)
        if op == "!=":
            return not _eq(left, right)
        if op in ("&&", "||"):
            if not isinstance(left, bool) or not isinstance(right, bool):
                raise _Fail(f"'{op}' needs two booleans")
            return left and right if op == "&&" else left or right
        a, b = _num(left), _num(right)
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            if b == 0:
                raise _Fail("division by zero")
            r = a / b
        elif op == "%":
            if b == 0:
                raise _Fail("modulo by zero")
            r = math.fmod(a, b)
        elif op == "<":
            return a < b
        elif op == ">":
            return a > b
        elif op == "<=":
            return a <= b
        elif op == ">=":
            return a >= b
        else:
            raise _Fail(f"unknown operator {op}")
        return int(r) if isinstance(r, float) and r.is_integer() else r

    def _for(self, node: Tree, kids: list[Any], scope: Scope) -> Any:
        trees = [c for c in kids if isinstance(c, Tree)]
        intro = trees[0]
        ik = [c for c in intro.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
        names = [ident_text(c) for c in ik if c.data == "identifier"]
        coll_node = [c for c in ik if c.data != "identifier"][0]
        rest = trees[1:]
        cond = rest[-1] if rest and rest[-1].data == "for_cond" else None
        if cond is not None:
            rest = rest[:-1]
        grouping = any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in kids)
        coll = self.eval(coll_node, scope)
        if isinstance(coll, Obj):
            coll = coll.materialize()
        if isinstance(coll, Unknown):
            return coll
        if isinstance(coll, dict):
            pairs = list(coll.items())
        elif isinstance(coll, list):
            pairs = list(enumerate(coll))
        else:
            raise _Fail("a for expression needs a list, set or map")
        is_obj = node.data == "for_object_expr"
        out_l: list[Any] = []
        out_d: dict[str, Any] = {}
        for k, v in pairs:
            bind = {names[0]: v} if len(names) == 1 else {names[0]: k, names[1]: v}
            sc = scope.child(**bind)
            if cond is not None:
                c = self.eval([x for x in cond.children if isinstance(x, Tree) and x.data != "new_line_or_comment"][0],
                              sc)
                if isinstance(c, Unknown):
                    return c
                if not _truth(c):
                    continue
            if is_obj:
                key = self.eval(rest[0], sc)
                if isinstance(key, Unknown):
                    return key
                val = self.eval(rest[1], sc)
                ks = to_str(key)
                if grouping:
                    out_d.setdefault(ks, []).append(val)
                else:
                    if ks in out_d:
                        raise _Fail(f"duplicate key '{ks}' in a for expression (use ... to group)")
                    out_d[ks] = val
            else:
                out_l.append(self.eval(rest[0], sc))
        return out_d if is_obj else out_l

    def _call(self, node: Tree, scope: Scope) -> Any:
        kids = [c for c in node.children if not isinstance(c, Token) and c.data != "new_line_or_comment"]
        ids = [c for c in kids if c.data == "identifier"]
        name = "::".join(ident_text(i) for i in ids)
        args_node = next((c for c in kids if c.data == "arguments"), None)
        arg_nodes = [c for c in args_node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"] \
            if args_node is not None else []
        expand = args_node is not None and any(
            isinstance(c, Token) and c.type == "ELLIPSIS" for c in args_node.children
        )
        span, text = span_of(node, scope.file), self.text(node, scope.file)
        if name in ("try", "can"):
            return self._try(name, arg_nodes, scope, span, text)
        args = [self.eval(a, scope) for a in arg_nodes]
        if expand and args:
            last = args[-1]
            if isinstance(last, Unknown):
                return last
            if not isinstance(last, list):
                raise _Fail("'...' needs a list")
            args = args[:-1] + last
        args = [a.materialize() if isinstance(a, Obj) else a for a in args]
        fn = FUNCTIONS.get(name)
        if fn is None:
            return TfUnknown(f"function {name}() is not evaluated by nsgsolve", text, span)
        lazy_ok = name in _UNKNOWN_TOLERANT
        if not lazy_ok and any(unknown_in(a) is not None for a in args):
            u = _merge_unknown(args, "", text, span)
            if u.error:
                return u
            return TfUnknown(u.reason, u.expr, u.span, _placeholder_call(fn, args), u.vars)
        r = fn(*args)
        return int(r) if isinstance(r, float) and r.is_integer() else r

    def _try(self, name: str, arg_nodes: list[Any], scope: Scope, span: Span, text: str) -> Any:
        for a in arg_nodes:
            v = self.eval(a, scope)
            u = unknown_in(v)
            if isinstance(u, TfUnknown) and u.error:
                if name == "can":
                    return False
                continue
            if name == "can":
                return True if u is None else TfUnknown(u.reason, u.expr, u.span, None, getattr(u, "vars", ()))
            return v
        if name == "can":
            return False
        raise _Fail("no argument of try() could be evaluated")


def _placeholder_call(fn: Callable, args: list[Any]) -> str | None:
    """A string function applied to placeholders (``format("%s-nsg", var.name)`` → ``name-nsg``)."""
    subst = []
    for a in args:
        if isinstance(a, Unknown):
            ph = getattr(a, "placeholder", None)
            if ph is None:
                return None
            subst.append(ph)
        elif unknown_in(a) is not None:
            return None
        else:
            subst.append(a)
    try:
        r = fn(*subst)
    except Exception:  # noqa: BLE001 - a placeholder is a best effort; the value stays unknown either way
        return None
    return r if isinstance(r, str) else None


def _literal_key(key_node: Tree) -> str | None:
    """An object key written as a bare name or a literal string is literal, not a reference."""
    c = key_node.children[0]
    if isinstance(c, Tree) and c.data == "keyword":
        return str(c.children[0])
    if isinstance(c, Tree) and c.data == "expr_term":
        inner = [x for x in c.children if not isinstance(x, Token)]
        if len(inner) == 1 and isinstance(inner[0], Tree):
            if inner[0].data == "identifier":
                return str(inner[0].children[0])
            if inner[0].data == "string":
                return string_literal(inner[0])
    if isinstance(c, Tree) and c.data == "identifier":
        return str(c.children[0])
    return None


# ---------------------------------------------------------------------- traversal


def get_attr(base: Any, name: str, span: Span, text: str) -> Any:
    if isinstance(base, Unknown):
        return base
    if isinstance(base, Obj):
        return base.attr(name, span, text)
    if isinstance(base, dict):
        if name in base:
            return base[name]
        raise _Fail(f"the object has no attribute '{name}' (it has {', '.join(sorted(base)) or 'none'})")
    if isinstance(base, list):
        raise _Fail(f"'.{name}' on a list: index it first ([0]) or use a splat ([*].{name})")
    raise _Fail(f"'.{name}' on a {type_name(base)}")


def get_index(base: Any, key: Any, span: Span, text: str) -> Any:
    if isinstance(base, Unknown):
        return base
    if isinstance(key, Unknown):
        return key
    if isinstance(base, Obj):
        return base.index(key, span, text)
    if isinstance(base, list):
        try:
            i = int(key)
        except (TypeError, ValueError):
            raise _Fail(f"a list index must be a number, not {key!r}") from None
        if not 0 <= i < len(base):
            raise _Fail(f"index {i} is outside the list (length {len(base)})")
        return base[i]
    if isinstance(base, dict):
        k = to_str(key)
        if k not in base:
            raise _Fail(f"the map has no key '{k}'")
        return base[k]
    raise _Fail(f"cannot index a {type_name(base)}")


# ---------------------------------------------------------------------- conversions


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def to_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if v is None:
        raise _Fail("null in a string (interpolating a null value is an error in Terraform)")
    raise _Fail(f"a {type_name(v)} cannot be used as a string")


def _num(v: Any) -> int | float:
    if isinstance(v, bool):
        raise _Fail("a bool is not a number")
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            raise _Fail(f"'{v}' is not a number") from None
        return int(f) if f.is_integer() else f
    raise _Fail(f"a {type_name(v)} is not a number")


def _truth(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if v in ("true", "false"):
        return v == "true"
    raise _Fail(f"a condition must be a bool, not {type_name(v)}")


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    return a == b


def _list(v: Any, fn: str) -> list:
    if isinstance(v, list):
        return v
    raise _Fail(f"{fn}() needs a list, not a {type_name(v)}")


def _map(v: Any, fn: str) -> dict:
    if isinstance(v, dict):
        return v
    raise _Fail(f"{fn}() needs a map, not a {type_name(v)}")


# ---------------------------------------------------------------------- functions


def _net(prefix: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(to_str(prefix), strict=False)
    except ValueError as e:
        raise _Fail(f"invalid CIDR prefix {prefix!r}: {e}") from None


def _cidrsubnet(prefix: Any, newbits: Any, netnum: Any) -> str:
    net = _net(prefix)
    nb, nn = int(_num(newbits)), int(_num(netnum))
    new_len = net.prefixlen + nb
    if nb < 0 or new_len > net.max_prefixlen:
        raise _Fail(f"cidrsubnet: {nb} more bits do not fit prefix /{net.prefixlen}")
    if not 0 <= nn < 2 ** nb:
        raise _Fail(f"cidrsubnet: {nn} does not fit in {nb} bits")
    base = int(net.network_address) + (nn << (net.max_prefixlen - new_len))
    return f"{ipaddress.ip_address(base) if net.version == 6 else ipaddress.IPv4Address(base)}/{new_len}"


def _cidrsubnets(prefix: Any, *newbits: Any) -> list[str]:
    net = _net(prefix)
    cur = int(net.network_address)
    out = []
    for nb in newbits:
        length = net.prefixlen + int(_num(nb))
        if length > net.max_prefixlen:
            raise _Fail("cidrsubnets: prefix too long")
        size = 1 << (net.max_prefixlen - length)
        cur = (cur + size - 1) // size * size
        if cur + size > int(net.broadcast_address) + 1:
            raise _Fail("cidrsubnets: not enough space in the prefix")
        out.append(f"{ipaddress.ip_address(cur) if net.version == 6 else ipaddress.IPv4Address(cur)}/{length}")
        cur += size
    return out


def _cidrhost(prefix: Any, hostnum: Any) -> str:
    net = _net(prefix)
    n = int(_num(hostnum))
    size = net.num_addresses
    if n < 0:
        n += size
    if not 0 <= n < size:
        raise _Fail(f"cidrhost: host number {hostnum} outside {net}")
    return str(net.network_address + n)


def _format(fmt: Any, *args: Any) -> str:
    f = to_str(fmt)
    out, i, ai = [], 0, 0
    while i < len(f):
        c = f[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(f) and f[j] in "-+ #0123456789.[]":
            j += 1
        if j >= len(f):
            raise _Fail("format: unterminated verb")
        verb, spec = f[j], f[i + 1:j]
        i = j + 1
        if any(len(w) > 6 for w in re.findall(r"\d+", spec)):  # "%999999999d" would build a gigabyte string
            raise _Fail(f"format: width or precision in '%{spec}{verb}' too large")
        if verb == "%":
            out.append("%")
            continue
        if ai >= len(args):
            raise _Fail("format: not enough arguments")
        a = args[ai]
        ai += 1
        if verb in "sv":
            out.append(("%" + spec.replace("[", "").replace("]", "") + "s") % (to_str(a) if verb == "s" or
                                                                            isinstance(a, (str, int, float, bool))
                                                                            else json.dumps(a)))
        elif verb == "d":
            out.append(("%" + spec + "d") % int(_num(a)))
        elif verb in "fFeEgG":
            out.append(("%" + spec + verb) % float(_num(a)))
        elif verb == "q":
            out.append(json.dumps(to_str(a)))
        elif verb in "xXob":
            out.append(format(int(_num(a)), verb))
        elif verb == "t":
            out.append(to_str(a))
        else:
            raise _Fail(f"format: unsupported verb %{verb}")
    return "".join(out)


def _lookup(m: Any, key: Any, *default: Any) -> Any:
    m = _map(m, "lookup")
    k = to_str(key)
    if k in m:
        return m[k]
    if default:
        return default[0]
    raise _Fail(f"lookup: no key '{k}' and no default")


def _element(lst: Any, i: Any) -> Any:
    lst = _list(lst, "element")
    if not lst:
        raise _Fail("element() of an empty list")
    return lst[int(_num(i)) % len(lst)]


def _flatten(v: Any) -> list:
    out: list = []
    for x in _list(v, "flatten"):
        if isinstance(x, list):
            out += _flatten(x)
        else:
            out.append(x)
    return out


def _distinct(v: Any) -> list:
    out: list = []
    for x in _list(v, "distinct"):
        if x not in out:
            out.append(x)
    return out


def _toset(v: Any) -> list:
    """Sets are lists here; Terraform orders a set of strings lexically, which count.index relies on."""
    d = _distinct(_list(v, "toset"))
    if all(isinstance(x, str) for x in d):
        return sorted(d)
    return d


def _coalesce(*args: Any) -> Any:
    for a in args:
        if isinstance(a, Unknown):
            return a
        if a is not None and a != "":
            return a
    raise _Fail("coalesce: every argument is null or empty")


def _coalescelist(*args: Any) -> Any:
    for a in args:
        if isinstance(a, Unknown):
            return a
        if _list(a, "coalescelist"):
            return a
    raise _Fail("coalescelist: every list is empty")


def _range(*a: Any) -> list:
    n = [_num(x) for x in a]
    start: int | float
    stop: int | float
    step: int | float
    if len(n) == 1:
        start, stop, step = 0, n[0], 1
    elif len(n) == 2:
        start, stop, step = n[0], n[1], 1
    elif len(n) == 3:
        start, stop, step = n
    else:
        raise _Fail("range() takes 1 to 3 numbers")
    if step == 0:
        raise _Fail("range() step 0")
    out, x = [], start
    while (x < stop) if step > 0 else (x > stop):
        out.append(x)
        x += step
        if len(out) > 100000:
            raise _Fail("range() too long")
    return out


def _tonumber(v: Any) -> Any:
    return None if v is None else _num(v)


def _tobool(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if v in ("true", "false"):
        return v == "true"
    raise _Fail(f"tobool: {v!r} is not a bool")


def _substr(s: Any, off: Any, n: Any) -> str:
    s, o, ln = to_str(s), int(_num(off)), int(_num(n))
    if o < 0:
        o += len(s)
    return s[o:] if ln < 0 else s[o:o + ln]


def _index_fn(lst: Any, v: Any) -> int:
    lst = _list(lst, "index")
    if v not in lst:
        raise _Fail(f"index: {v!r} is not in the list")
    return lst.index(v)


def _one(v: Any) -> Any:
    lst = _list(v, "one")
    if len(lst) > 1:
        raise _Fail("one() of a list with more than one element")
    return lst[0] if lst else None


def _merge(*ms: Any) -> dict:
    out: dict = {}
    for m in ms:
        if m is None:
            continue
        out.update(_map(m, "merge"))
    return out


def _zipmap(keys: Any, vals: Any) -> dict:
    k, v = _list(keys, "zipmap"), _list(vals, "zipmap")
    if len(k) != len(v):
        raise _Fail("zipmap: the lists differ in length")
    return {to_str(a): b for a, b in zip(k, v)}


def _setproduct(*ls: Any) -> list:
    out: list = [[]]
    for lst in ls:
        out = [o + [x] for o in out for x in _list(lst, "setproduct")]
    return out


def _chunklist(lst: Any, n: Any) -> list:
    lst, k = _list(lst, "chunklist"), int(_num(n))
    if k <= 0:
        return [lst]
    return [lst[i:i + k] for i in range(0, len(lst), k)]


def _regex_replace(s: Any, a: Any, b: Any) -> str:
    s, a, b = to_str(s), to_str(a), to_str(b)
    if len(a) > 1 and a.startswith("/") and a.endswith("/"):
        import re

        try:
            return re.sub(a[1:-1], b.replace("$", "\\"), s)
        except re.error as e:
            raise _Fail(f"replace: bad regular expression: {e}") from None
    return s.replace(a, b)


def _trim(s: Any, chars: Any) -> str:
    return to_str(s).strip(to_str(chars))


def _keys(m: Any) -> list:
    return sorted(_map(m, "keys"))


def _values(m: Any) -> list:
    m = _map(m, "values")
    return [m[k] for k in sorted(m)]


def _length(v: Any) -> int:
    if isinstance(v, (list, dict, str)):
        return len(v)
    raise _Fail(f"length() of a {type_name(v)}")


def _contains(lst: Any, v: Any) -> bool:
    return v in _list(lst, "contains")


def _slice(lst: Any, a: Any, b: Any) -> list:
    return _list(lst, "slice")[int(_num(a)):int(_num(b))]


def _tostring(v: Any) -> Any:
    return None if v is None else to_str(v)


def _jsondecode(s: Any) -> Any:
    try:
        return json.loads(to_str(s))
    except ValueError as e:
        raise _Fail(f"jsondecode: {e}") from None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "cidrsubnet": _cidrsubnet,
    "cidrsubnets": _cidrsubnets,
    "cidrhost": _cidrhost,
    "cidrnetmask": lambda p: str(ipaddress.IPv4Network(to_str(p), strict=False).netmask),
    "concat": lambda *ls: [x for lst in ls for x in _list(lst, "concat")],
    "format": _format,
    "formatlist": lambda f, *ls: [_format(f, *row) for row in zip(*[_list(x, "formatlist") for x in ls])],
    "lookup": _lookup,
    "join": lambda sep, *ls: to_str(sep).join(to_str(x) for lst in ls for x in _list(lst, "join")),
    "split": lambda sep, s: to_str(s).split(to_str(sep)),
    "replace": _regex_replace,
    "lower": lambda s: to_str(s).lower(),
    "upper": lambda s: to_str(s).upper(),
    "title": lambda s: to_str(s).title(),
    "trimspace": lambda s: to_str(s).strip(),
    "trim": _trim,
    "trimprefix": lambda s, p: to_str(s)[len(to_str(p)):] if to_str(s).startswith(to_str(p)) else to_str(s),
    "trimsuffix": lambda s, p: to_str(s)[:-len(to_str(p))] if to_str(p) and to_str(s).endswith(to_str(p))
    else to_str(s),
    "startswith": lambda s, p: to_str(s).startswith(to_str(p)),
    "endswith": lambda s, p: to_str(s).endswith(to_str(p)),
    "strcontains": lambda s, p: to_str(p) in to_str(s),
    "substr": _substr,
    "length": _length,
    "element": _element,
    "index": _index_fn,
    "keys": _keys,
    "values": _values,
    "merge": _merge,
    "flatten": _flatten,
    "distinct": _distinct,
    "contains": _contains,
    "coalesce": _coalesce,
    "coalescelist": _coalescelist,
    "compact": lambda lst: [x for x in _list(lst, "compact") if x not in (None, "")],
    "tolist": lambda v: list(_list(v, "tolist")),
    "toset": _toset,
    "tomap": lambda v: dict(_map(v, "tomap")),
    "tostring": _tostring,
    "tonumber": _tonumber,
    "tobool": _tobool,
    "range": _range,
    "zipmap": _zipmap,
    "min": lambda *a: min(_num(x) for x in a),
    "max": lambda *a: max(_num(x) for x in a),
    "abs": lambda a: abs(_num(a)),
    "ceil": lambda a: math.ceil(_num(a)),
    "floor": lambda a: math.floor(_num(a)),
    "pow": lambda a, b: _num(a) ** _num(b),
    "signum": lambda a: (_num(a) > 0) - (_num(a) < 0),
    "parseint": lambda s, b: int(to_str(s), int(_num(b))),
    "slice": _slice,
    "sort": lambda lst: sorted(to_str(x) for x in _list(lst, "sort")),
    "reverse": lambda lst: list(reversed(_list(lst, "reverse"))),
    "one": _one,
    "setproduct": _setproduct,
    "setunion": lambda *ls: _distinct([x for lst in ls for x in _list(lst, "setunion")]),
    "setintersection": lambda first, *ls: [x for x in _distinct(_list(first, "setintersection"))
                                          if all(x in _list(o, "setintersection") for o in ls)],
    "setsubtract": lambda a, b: [x for x in _distinct(_list(a, "setsubtract")) if x not in _list(b, "setsubtract")],
    "chunklist": _chunklist,
    "transpose": lambda m: {v: sorted(k for k, vs in _map(m, "transpose").items() if v in vs)
                            for vs in _map(m, "transpose").values() for v in vs},
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "jsondecode": _jsondecode,
    "sum": lambda lst: sum(_num(x) for x in _list(lst, "sum")),
    "alltrue": lambda lst: all(_truth(x) for x in _list(lst, "alltrue")),
    "anytrue": lambda lst: any(_truth(x) for x in _list(lst, "anytrue")),
    "nonsensitive": lambda v: v,
    "sensitive": lambda v: v,
    "type": lambda v: type_name(v),
}
# coalesce returns the first known non-empty argument even when later ones are unknown.
_UNKNOWN_TOLERANT = {"coalesce", "coalescelist"}
