"""Bicep, read directly: the program is evaluated into the resources an ARM template describes, and the ARM
importer (:mod:`nsgsolve.importers.arm`, then the shared :class:`~nsgsolve.importers.convert.PolicyBuilder`)
turns them into the model. Nothing about NSGs, subnets or NICs is read here.

How: each file is parsed (:mod:`nsgsolve.importers.bicepsyntax`), its names resolved (an unknown symbol is
E741), and *lowered* to the shape of an ARM template whose object and array literals are ``JObject`` /
``JArray`` with spans in the .bicep file and whose other values are Bicep expression nodes: resources keyed
by symbolic name (``resources['nsg']``, as a languageVersion 2.0 template), a ``for`` loop as a ``copy``, an
``if`` as a ``condition``, a nested resource under its parent's ``resources``, a local module as an inner-scope
nested deployment. :class:`BicepEvaluator` is the ARM :class:`~nsgsolve.importers.armexpr.Evaluator` with one
more kind of value: it evaluates those nodes, lazily, only where the ARM importer reads them. Functions and
operators go to the ARM function implementations (Bicep compiles to them: interpolation is ``format``,
``==`` is ``equals``, ...), so parameters without a value are placeholders or unknown exactly as in ARM
(W601, W602, E610).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nsgsolve.errors import Diagnostic, InputError, did_you_mean
from nsgsolve.limits import MAX_EVAL_STEPS
from nsgsolve.model import NOSPAN, Span
from nsgsolve.importers import bicepsyntax as bs
from nsgsolve.importers.armexpr import (
    _HIGHER_ORDER,
    _PURE,
    _RUNTIME,
    MAX_EVAL_DEPTH,
    Evaluator,
    Index as ArmIndex,
    Lit as ArmLit,
    Placeholder,
    Prop as ArmProp,
    Unknown,
    _copy_count,
    _Fail,
    resource_id,
    with_child_ids,
)
from nsgsolve.importers.jsonpos import JArray, JObject, LazySpan

BICEP_SUFFIXES = (".bicep",)
BICEPPARAM_SUFFIXES = (".bicepparam",)
_PROGRAM = "\0bicep"  # the key of a lowered template that holds its Program (never a JSON key)

# Functions the evaluator knows besides the ARM ones (_PURE, _RUNTIME, the names Evaluator._call handles).
_ARM_SPECIAL = {"resourcegroup", "subscription", "deployment", "environment", "uniquestring", "guid", "resourceid",
                "subscriptionresourceid", "reference", "lambdavariables"} | _HIGHER_ORDER
_BICEP_ONLY = {"any", "loadtextcontent", "loadjsoncontent", "loadfileasbase64", "loadyamlcontent",
               "readenvironmentvariable", "getsecret", "externalinput", "last", "nameof"}
KNOWN_FUNCTIONS = set(_PURE) | set(_RUNTIME) | _ARM_SPECIAL | _BICEP_ONLY


def is_bicep_path(path: str) -> bool:
    return path.lower().endswith(BICEP_SUFFIXES + BICEPPARAM_SUFFIXES)


# ------------------------------------------------------------------ symbols


@dataclass(eq=False)
class ResSym:
    """A ``resource`` declaration: its full type (no API version), where its name comes from, its loop."""

    decl: bs.Decl
    type: str
    api: str
    body: bs.Obj | None
    loop: bs.For | None
    cond: bs.Node | None
    parent: Any = None  # ResSym (nested) or a parent expression node (``parent: x``)
    lowered: JObject | None = None
    children: dict = field(default_factory=dict)  # nested resources by symbolic name
    name_node: bs.Node | None = None

    @property
    def existing(self) -> bool:
        return self.decl.existing


@dataclass(eq=False)
class ModSym:
    decl: bs.Decl
    program: "Program | None"
    body: bs.Obj | None
    loop: bs.For | None
    cond: bs.Node | None
    remote: str = ""  # a registry or template spec module: what it is (W740, W741)


class Program:
    """One Bicep file, parsed, resolved and lowered."""

    def __init__(self, src: bs.Source, decls: list[bs.Decl]):
        self.src = src
        self.filename = src.filename
        self.decls = decls
        self.params: dict[str, bs.Decl] = {}
        self.vars: dict[str, bs.Decl] = {}
        self.outputs: dict[str, bs.Decl] = {}
        self.funcs: dict[str, bs.Decl] = {}
        self.types: dict[str, bs.Decl] = {}
        self.resources: dict[str, ResSym] = {}
        self.modules: dict[str, ModSym] = {}
        self.imports: set[str] = set()  # names from an import nsgsolve cannot read (registry): unknown values
        # Compile-time imports from local files (``import {f} from``, ``import * as ns from``): by local name.
        self.imported_funcs: dict[str, tuple[Program, bs.Decl]] = {}
        self.imported_types: dict[str, tuple[Program, bs.Decl]] = {}
        self.namespaces: dict[str, Program] = {}
        self.template: JObject = JObject()
        self.using = ""

    def exports(self) -> dict[str, bs.Decl]:
        """The ``@export()`` statements (var, func, type) another file may import, by name."""
        return {d.name: d for d in self.decls if d.kind in ("var", "func", "type") and d.decorator("export")}


@dataclass(frozen=True, eq=False)
class ResVal:
    """A resource symbol as a value (``nsg``, ``nsg[i]``): its members are read by :meth:`BicepEvaluator._member`."""

    sym: ResSym
    loops: Any  # the loop bindings its name is evaluated with


@dataclass(frozen=True, eq=False)
class ModVal:
    sym: ModSym
    loops: Any


@dataclass(frozen=True, eq=False)
class Collection:
    """A looped resource or module symbol before indexing (``nsg`` of ``[for ...]``)."""

    sym: Any


@dataclass(frozen=True, eq=False)
class Outputs:
    mod: ModVal


@dataclass(frozen=True, eq=False)
class Namespace:
    """``ns`` of ``import * as ns from 'FILE'``: its members are the file's exports."""

    program: "Program"


@dataclass(frozen=True, eq=False)
class BLambda:
    node: bs.Lambda
    keys: tuple
    loops: dict


# Synthetic nodes made by lowering.
class LoopCount(bs.Node):
    __slots__ = ("loop",)

    def __init__(self, loop: bs.For):
        self.loop = loop
        self.src, self.start, self.end = loop.iterable.src, loop.iterable.start, loop.iterable.end


class ChildName(bs.Node):
    """The full name of a child resource: its parent's name, '/', its own (``parent: vnet``, or nested)."""

    __slots__ = ("parent", "name")

    def __init__(self, parent: Any, name: bs.Node):
        self.parent, self.name = parent, name
        self.src, self.start, self.end = name.src, name.start, name.end


class SymRef(bs.Node):
    """A resource symbol as a value, without a loop index (a nested resource's parent)."""

    __slots__ = ("sym",)

    def __init__(self, sym: ResSym, at: bs.Node):
        self.sym = sym
        self.src, self.start, self.end = at.src, at.start, at.end


# ------------------------------------------------------------------ reading files


class Reader:
    """Reads a Bicep file and the local modules it uses (each file once; a module cycle is E743)."""

    def __init__(self, read: Callable[[str], str], warn: Callable[[Diagnostic], None]):
        self.read = read
        self.warn = warn
        self.cache: dict[str, Program] = {}
        self.busy: set[str] = set()

    def program(self, path: str, text: str | None = None, at: Span = NOSPAN, what: str = "module") -> Program:
        """The program of ``path``, used by another file as ``what`` ('module': E743 if it cannot be read or
        closes a cycle; 'import': E747)."""
        key = str(Path(path).resolve()) if Path(path).exists() else path
        if key in self.cache:
            return self.cache[key]
        code = "E747" if what == "import" else "E743"
        if key in self.busy:
            cycle = f"module {path} uses itself" if what == "module" else f"{path} imports from itself"
            raise InputError.single(code, f"{cycle} (through the modules and imports it uses)", at,
                                    f"Bicep refuses cycles of modules and imports; remove the {what} that closes "
                                    f"the cycle")
        if text is None:
            try:
                text = self.read(path)
            except InputError as e:
                d = e.diagnostics[0]
                raise InputError.single(code, f"{'module' if what == 'module' else 'imported'} file {path} cannot "
                                              f"be read: {d.message}", at,
                                        f"the path is relative to the Bicep file that names the {what}") from None
        self.busy.add(key)
        try:
            src, decls = bs.parse(text, path)
            prog = Program(src, decls)
            _Resolver(prog, self).run()
            _lower(prog)
        finally:
            self.busy.discard(key)
        self.cache[key] = prog
        return prog


def _ident_span(src: bs.Source, start: int, name: str) -> Span:
    return src.span(start, start + len(name))


class _Resolver:
    """Names to what they mean, statically as Bicep does: an unknown symbol is E741 at the name."""

    def __init__(self, prog: Program, reader: Reader):
        self.p = prog
        self.reader = reader
        self.globals: dict[str, Any] = {}
        self.warned_fns: set[str] = set()

    def run(self) -> None:
        p = self.p
        for d in p.decls:
            k = d.kind
            if k == "param":
                p.params[d.name] = d
                self.declare(d, ("param", d.name))
            elif k == "var":
                p.vars[d.name] = d
                self.declare(d, ("var", d.name))
            elif k == "output":
                p.outputs[d.name] = d
            elif k == "func":
                p.funcs[d.name] = d
            elif k == "type":
                p.types[d.name] = d
            elif k == "resource":
                rsym = self.resource(d, None)
                p.resources[d.name] = rsym
                self.declare(d, ("res", rsym))
            elif k == "module":
                msym = self.module(d)
                p.modules[d.name] = msym
                self.declare(d, ("mod", msym))
            elif k == "import":
                if d.path:
                    self.import_(d)
            elif k == "using":
                p.using = d.path
        for d in p.decls:
            if d.kind in ("param", "var", "output", "targetScope", "metadata") and d.value is not None:
                self.expr(d.value, {})
            elif d.kind == "func":
                scope = {n: ("fparam", f"\0bf:{d.name}:{n}") for n in d.params}
                self.expr(d.value, scope)
            for dec in d.decorators:
                for a in dec.args:
                    self.expr(a, {})
        for sym in list(p.resources.values()):
            self.resource_body(sym, {})
        for msym in p.modules.values():
            self.body_exprs(msym.decl.value, {})

    def declare(self, d: bs.Decl, binding: Any) -> None:
        self.declare_at(d.name, d.src, d.name_start, binding)

    def resource(self, d: bs.Decl, parent: ResSym | None) -> ResSym:
        rtype, _, api = d.rtype.partition("@")
        if parent is not None and "." not in rtype.split("/")[0]:
            full = f"{parent.type}/{rtype}"
        else:
            full = rtype
        body, loop, cond = _body_parts(d.value)
        sym = ResSym(d, full, api, body, loop, cond, parent)
        if body is not None:
            for c in body.resources:
                child = self.resource(c, sym)
                sym.children[c.name] = child
                self.globals.setdefault(c.name, ("res", child))
        return sym

    def module(self, d: bs.Decl) -> ModSym:
        body, loop, cond = _body_parts(d.value)
        given = next((v for k, _s, v in body.pairs if k.lower() == "params"), None) if body is not None else None
        if isinstance(given, bs.SpreadObj):
            first = next(p for p in given.parts if type(p) is bs.Spread)
            raise bs.spread_error(d.src, first.start, "the spread operator '...' in a module's params, where Bicep "
                                                      "does not allow it", "write each parameter: params: { a: x.a }")
        path = d.path
        low = path.lower()
        span = d.src.span(d.start, d.end)
        for prefix, code, what in (("br:", "W740", "a registry module"), ("br/", "W740", "a registry module"),
                                   ("ts:", "W741", "a template spec"), ("ts/", "W741", "a template spec")):
            if low.startswith(prefix):
                self.reader.warn(Diagnostic(
                    code, f"module '{d.name}' is {what} ({path}), which nsgsolve cannot read offline: the resources "
                          f"it deploys are not in the policy, and its outputs are unknown", span,
                    "restore it locally ('bicep restore') and point the module at the file, or give nsgsolve the "
                    "compiled ARM template ('az bicep build')", "warning"))
                return ModSym(d, None, body, loop, cond, remote=f"{what} ({path})")
        target = str(Path(self.p.filename).parent / path)
        prog = self.reader.program(target, None, self.p.src.span(d.start, d.end))
        return ModSym(d, prog, body, loop, cond)

    def import_(self, d: bs.Decl) -> None:
        """``import {a, b as c} from 'FILE'`` / ``import * as ns from 'FILE'``: the ``@export()`` ed var, func
        and type statements of a local Bicep file, read as if declared here (evaluated in their own file). A
        registry or template-spec source, or an ARM template, is W744: the names are declared, their values
        unknown. A file that cannot be read, a cycle, or a name the file does not export is E747."""
        p = self.p
        src = d.src
        path = d.path
        low = path.lower()
        at = src.span(d.path_start, d.path_start + len(path) + 2)
        names = [alias for _n, alias, _s, _a in d.items] or [d.name]
        remote = next((what for prefix, what in (("br:", "a registry"), ("br/", "a registry"),
                                                   ("ts:", "a template spec"), ("ts/", "a template spec"))
                       if low.startswith(prefix)), None)
        if remote is None and not low.endswith(".bicep"):
            remote = "an ARM template, whose exports nsgsolve does not read" if low.endswith(".json") else \
                "a file nsgsolve does not read as Bicep"
        if remote is not None:
            for (_n, alias, _s, a) in d.items or [("", d.name, 0, d.name_start)]:
                self.declare_at(alias, src, a, ("import", alias))
                p.imports.add(alias)
            self.reader.warn(Diagnostic(
                "W744", f"import from {remote} ({path}): nsgsolve reads imports from local .bicep files only, so "
                        f"{', '.join(repr(x) for x in names)} "
                        f"{'has an unknown value' if len(names) == 1 else 'have unknown values'} (a type from there "
                        f"reads as 'object')",
                at, "restore it locally ('bicep restore') and import from the file, or write the values here",
                "warning"))
            return
        prog = self.reader.program(str(Path(p.filename).parent / path), None, at, what="import")
        exports = prog.exports()
        if not d.items:
            self.declare_at(d.name, src, d.name_start, ("ns", prog))
            p.namespaces[d.name] = prog
            return
        for name, alias, start, astart in d.items:
            e = exports.get(name)
            if e is None:
                raise _no_export(prog, name, src.span(start, start + len(name)), exports)
            if e.kind == "type":
                p.imported_types[alias] = (prog, e)
            elif e.kind == "func":
                p.imported_funcs[alias] = (prog, e)
            self.declare_at(alias, src, astart, ("ivar", prog, name) if e.kind == "var" else ("iother", alias))

    def declare_at(self, name: str, src: bs.Source, start: int, binding: Any) -> None:
        if name in self.globals:
            raise InputError.single("E741", f"'{name}' is declared twice", src.span(start, start + len(name)),
                                    "every param, var, resource, module and imported name needs its own name")
        self.globals[name] = binding

    def resource_body(self, sym: ResSym, scope: dict) -> None:
        if sym.loop is not None:
            self.expr(sym.loop.iterable, scope)
            scope = self.loop_scope(sym.loop, scope)
            if sym.loop.cond is not None:
                self.expr(sym.loop.cond, scope)
        if sym.cond is not None:
            self.expr(sym.cond, scope)
        if sym.body is not None:
            for _k, _s, v in sym.body.pairs:
                self.expr(v, scope)
            for child in sym.children.values():
                self.resource_body(child, scope)

    def body_exprs(self, value: Any, scope: dict) -> None:
        body, loop, cond = _body_parts(value)
        if loop is not None:
            self.expr(loop.iterable, scope)
            scope = self.loop_scope(loop, scope)
            if loop.cond is not None:
                self.expr(loop.cond, scope)
        if cond is not None:
            self.expr(cond, scope)
        if body is not None:
            self.expr(body, scope)

    @staticmethod
    def loop_scope(loop: bs.For, scope: dict) -> dict:
        key = f"\0loop{id(loop)}"
        inner = {**scope, loop.item: ("item", loop, key)}
        if loop.index:
            inner[loop.index] = ("index", loop, key)
        return inner

    def expr(self, n: Any, scope: dict) -> None:
        stack = [(n, scope)]
        while stack:
            n, scope = stack.pop()
            t = type(n)
            if t is bs.Lit or n is None:
                continue
            if t is bs.Ident:
                b = scope.get(n.name) or self.globals.get(n.name)
                if b is None:
                    known = sorted(set(scope) | set(self.globals))
                    raise InputError.single("E741", f"unknown symbol '{n.name}'", n.span(),
                                            did_you_mean(n.name, known) or
                                            "declare it (param, var, resource, module) or check the spelling")
                n.binding = b
            elif t is bs.Interp:
                stack += [(p, scope) for p in n.parts if not isinstance(p, str)]
            elif t is bs.Arr:
                stack += [(x, scope) for x in n.items]
            elif t is bs.Obj:
                stack += [(v, scope) for _k, _s, v in n.pairs]
            elif t in (bs.Member, bs.Child):
                stack.append((n.target, scope))
                if t is bs.Member and type(n.target) is bs.Ident:
                    b = scope.get(n.target.name) or self.globals.get(n.target.name)
                    if b is not None and b[0] == "ns":  # ns.x of import * as ns: x must be exported
                        self.exported(b[1], n.name, n, "var")
            elif t is bs.Index:
                stack += [(n.target, scope), (n.index, scope)]
            elif t is bs.Call:
                self.call(n, scope)
                stack += [(a, scope) for a in n.args]
                if n.target is not None:
                    stack.append((n.target, scope))
            elif t is bs.Unary:
                stack.append((n.operand, scope))
            elif t is bs.Binary:
                stack += [(n.left, scope), (n.right, scope)]
            elif t is bs.Ternary:
                stack += [(n.cond, scope), (n.then, scope), (n.other, scope)]
            elif t is bs.For:
                stack.append((n.iterable, scope))
                inner = self.loop_scope(n, scope)
                stack.append((n.body, inner))
                if n.cond is not None:
                    stack.append((n.cond, inner))
            elif t is bs.Lambda:
                inner = {**scope, **{p: ("lambda", f"\0lambda{id(n)}:{p}") for p in n.params}}
                stack.append((n.body, inner))
            elif t is bs.IfBody:
                stack += [(n.cond, scope), (n.body, scope)]
            elif t is bs.SpreadObj or t is bs.SpreadArr:
                stack += [(x, scope) for x in n.parts]
            elif t is bs.Spread:
                stack.append((n.value, scope))

    def exported(self, prog: Program, name: str, n: bs.Member | bs.Call, kind: str) -> None:
        """E747 unless ``prog`` exports ``name`` as a ``kind`` statement (``ns.name`` of ``import * as ns``)."""
        e = prog.exports().get(name)
        at = _ident_span(n.src, n.name_start, name) if isinstance(n, bs.Call) else n.src.span(n.end - len(name), n.end)
        if e is None:
            raise _no_export(prog, name, at, prog.exports())
        if e.kind != kind:
            raise InputError.single("E747", f"'{name}' of {prog.filename} is a {e.kind}, used here as a "
                                            f"{'value' if kind == 'var' else 'function'}", at,
                                    "call a function with (...); use a type only where a type goes")

    def call(self, n: bs.Call, scope: dict) -> None:
        if n.ns and n.ns not in ("sys", "az") and n.target is None:
            b = scope.get(n.ns) or self.globals.get(n.ns)
            if b is not None and b[0] == "ns":  # ns.f(...) of import * as ns
                self.exported(b[1], n.name, n, "func")
                return
            if b is not None and b[0] == "import":  # ns.f(...) of an import nsgsolve cannot read (W744)
                return
            if b is not None:  # kv.getSecret('x'), sa.listKeys(): a method of a resource
                target = bs.Ident(n.ns)
                target.src, target.start, target.end = n.src, n.start, n.start + len(n.ns)
                n.target = target
                return
        if n.target is not None:
            return
        name = n.name
        if not n.ns and (name in self.p.funcs or name in self.p.imported_funcs):
            return
        if name.lower() in KNOWN_FUNCTIONS or name.lower().startswith("list"):
            return
        what = f"{n.ns}.{name}" if n.ns else name
        if what not in self.warned_fns:
            self.warned_fns.add(what)
            self.reader.warn(Diagnostic("W742", f"function '{what}()' is not one nsgsolve evaluates: its value is "
                                                f"unknown wherever it is used", _ident_span(n.src, n.name_start, name),
                                        "if nsgsolve needs the value (a rule's field, a name), write it without this "
                                        "function or give it as a parameter; docs/import.md lists the functions read",
                                        "warning"))


def _no_export(prog: Program, name: str, at: Span, exports: dict) -> InputError:
    """E747: ``name`` is not exported by ``prog`` (missing, or declared without ``@export()``)."""
    declared = any(d.name == name for d in prog.decls if d.kind in ("var", "func", "type", "param"))
    return InputError.single(
        "E747", f"{prog.filename} does not export '{name}'" + (" (it is declared without @export())" if declared
                                                                else ""), at,
        ("add @export() above its declaration" if declared else did_you_mean(name, sorted(exports))) or
        f"exported there: {', '.join(sorted(exports)) or 'nothing'} (Bicep imports only @export() var, func and "
        f"type statements)")


def _body_parts(value: Any) -> tuple[bs.Obj | None, bs.For | None, bs.Node | None]:
    """A resource's or module's value: (object, loop, condition)."""
    loop = None
    cond = None
    if isinstance(value, bs.For):
        loop = value
        value = value.body
        if loop.cond is not None:
            cond = loop.cond
    if isinstance(value, bs.IfBody):
        cond = value.cond if cond is None else cond
        value = value.body
    return (value if isinstance(value, bs.Obj) else None), loop, cond


# ------------------------------------------------------------------ lowering


_DROP = {"parent", "scope", "dependson"}


class LoweredObject(JObject):
    """A lowered Bicep object literal. ``literal`` as for a parsed JSON container (jsonpos ``_Located.literal``):
    (containers, levels) when nothing inside needs evaluating, so the ARM evaluator takes it as it is.
    Spans are made from the node when first read: most of a large file's never are."""

    __slots__ = ("literal", "_node", "_spans")
    literal: tuple[int, int] | None

    def __init__(self, node: bs.Obj):
        dict.__init__(self)
        self._node = node
        self._spans: dict[str, Span] | None = None

    @property
    def span(self) -> Span:  # type: ignore[override]
        n = self._node
        return n.src.lazy_span(n.start, n.end)

    @property
    def spans(self) -> dict[str, Span]:  # type: ignore[override]
        s = self._spans
        if s is None:
            lazy = self._node.src.lazy_span
            s = self._spans = {k: lazy(v.start, v.end) for k, _s, v in self._node.pairs}
        return s

    def span_of(self, key: str) -> Span:
        s = self.spans.get(key)
        return s if s is not None else self.span


class LoweredArray(JArray):
    """A lowered Bicep array literal (as :class:`LoweredObject`)."""

    __slots__ = ("literal", "_node", "_spans")
    literal: tuple[int, int] | None
    located = True

    def __init__(self, node: bs.Arr, items: list):
        list.__init__(self, items)
        self._node = node
        self._spans: list[Span] | None = None

    @property
    def span(self) -> Span:  # type: ignore[override]
        n = self._node
        return n.src.lazy_span(n.start, n.end)

    @property
    def spans(self) -> list[Span]:  # type: ignore[override]
        s = self._spans
        if s is None:
            src = self._node.src
            f = src.filename
            s = self._spans = [LazySpan(f, src, (v.start, v.end)) for v in self._node.items]  # src.lazy_span's
        return s


def _lower_value(n: Any) -> Any:
    """Object and array literals become JObject / JArray (so the ARM importer reads them member by member,
    with spans); a literal the ARM evaluator reads as written becomes that value (text not starting with
    '[', which ARM would take for an expression; a number, true, false, null); anything else stays a node,
    evaluated when read."""
    t = type(n)
    if t is bs.Lit:
        v = n.value
        return v if type(v) is not str or not v.startswith("[") else n
    if t is bs.Obj and not n.resources:
        obj = LoweredObject(n)
        for k, _s, v in n.pairs:
            if type(v) is bs.Lit:  # most members: no call
                x = v.value
                obj[k] = x if type(x) is not str or not x.startswith("[") else v
            else:
                obj[k] = _lower_value(v)
        obj.literal = None if "copy" in obj else _literal_size(obj.values())  # "copy": ARM's property loops
        return obj
    if t is bs.Arr:
        arr = LoweredArray(n, [_lower_value(v) for v in n.items])
        arr.literal = _literal_size(arr)
        return arr
    return n


def _literal_size(values: Any) -> tuple[int, int] | None:
    """(containers, levels) of a lowered container whose members are all literal, else None."""
    count, height = 1, 1
    for v in values:
        tv = type(v)
        if tv is LoweredObject or tv is LoweredArray:
            lit = v.literal
            if lit is None:
                return None
            count += lit[0]
            height = max(height, lit[1] + 1)
        elif isinstance(v, bs.Node):
            return None
    return count, height


def _loop_key(loop: bs.For) -> str:
    return f"\0loop{id(loop)}"


def _lower_resource(sym: ResSym, nested: bool) -> JObject:
    d = sym.decl
    body = sym.body
    out = JObject(span=d.span())
    src = d.src
    rel = sym.type.rsplit("/", 1)[-1] if nested else sym.type
    out["type"] = rel
    out.spans["type"] = d.span()
    name_node: Any = None
    parent_expr = None
    if body is not None:
        for k, _s, v in body.pairs:
            lk = k.lower()
            if lk == "name":
                name_node = v
            elif lk == "parent":
                parent_expr = v
            if lk in _DROP:
                continue
            out[k] = _lower_value(v)
            out.spans[k] = src.span(v.start, v.end)
    if name_node is None:
        name_node = bs.Lit("")
        name_node.src, name_node.start, name_node.end = src, d.start, d.end
    if parent_expr is not None and not nested:
        sym.parent = parent_expr
    if sym.parent is not None and not nested:
        out["name"] = ChildName(sym.parent, name_node)
    sym.name_node = ChildName(sym.parent, name_node) if sym.parent is not None else name_node
    if sym.loop is not None:
        out["copy"] = JObject({"name": _loop_key(sym.loop), "count": LoopCount(sym.loop)},
                              span=src.span(sym.loop.start, sym.loop.end),
                              spans={"count": sym.loop.iterable.span()})
    if sym.cond is not None:
        out["condition"] = sym.cond
        out.spans["condition"] = sym.cond.span()
    kids = [_lower_resource(c, True) for c in sym.children.values() if not c.existing]
    if kids:
        out["resources"] = JArray(kids, span=d.span(), spans=[k.span for k in kids])
    sym.lowered = out
    return out


def _lower(p: Program) -> None:
    params = JObject(span=p.src.span(0, 0))
    for name, d in p.params.items():
        decl = JObject({"type": _arm_type(d.type_text, p, d)}, span=d.span())
        if d.value is not None:
            decl["defaultValue"] = d.value
            decl.spans["defaultValue"] = d.value.span()
        params[name] = decl
        params.spans[name] = d.span()
    variables = JObject({n: d.value for n, d in p.vars.items()}, span=p.src.span(0, 0),
                        spans={n: d.span() for n, d in p.vars.items()})
    resources = JObject(span=p.src.span(0, 0))
    for name, sym in p.resources.items():
        nested_in_emitted = isinstance(sym.parent, ResSym) and not sym.parent.existing
        if nested_in_emitted:
            continue  # lowered under its parent
        if sym.existing:
            _lower_resource(sym, False)  # for its name; not deployed
            for c in sym.children.values():
                _lower_children_of_existing(c, resources)
            continue
        resources[name] = _lower_resource(sym, False)
        resources.spans[name] = sym.decl.span()
    for name, msym in p.modules.items():
        if msym.program is None:
            continue
        resources[name] = _lower_module(msym)
        resources.spans[name] = msym.decl.span()
    p.template = JObject({"parameters": params, "variables": variables, "resources": resources, _PROGRAM: p},
                         span=p.src.span(0, 0))


def _lower_children_of_existing(sym: ResSym, resources: JObject) -> None:
    """A resource nested in an ``existing`` one is deployed on its own, with its full type and name."""
    r = _lower_resource(sym, False)
    if not sym.existing:
        r["type"] = sym.type
        resources[sym.decl.name] = r
        resources.spans[sym.decl.name] = sym.decl.span()
    for c in sym.children.values():
        _lower_children_of_existing(c, resources)


def _lower_module(m: ModSym) -> JObject:
    d = m.decl
    src = d.src
    out = JObject({"type": "Microsoft.Resources/deployments"}, span=d.span(), spans={"type": d.span()})
    name: Any = None
    params: Any = JObject(span=d.span())
    if m.body is not None:
        for k, _s, v in m.body.pairs:
            if k.lower() == "name":
                name = v
            elif k.lower() == "params":
                params = v
    if name is None:
        name = bs.Lit(d.name)
        name.src, name.start, name.end = src, d.name_start, d.name_start + len(d.name)
    out["name"] = name
    out.spans["name"] = name.span()
    given: Any = params  # an object computed by an expression: read by BicepEvaluator.child
    if isinstance(params, bs.Obj):
        given = JObject({k: JObject({"value": v}, span=v.span(), spans={"value": v.span()})
                         for k, _s, v in params.pairs},
                        span=params.span(), spans={k: v.span() for k, _s, v in params.pairs})
    assert m.program is not None
    out["properties"] = JObject({"expressionEvaluationOptions": JObject({"scope": "inner"}), "mode": "Incremental",
                                 "parameters": given, "template": m.program.template},
                                span=d.span(), spans={"parameters": getattr(given, "span", d.span())
                                                      if not isinstance(given, bs.Node) else given.span()})
    if m.loop is not None:
        out["copy"] = JObject({"name": _loop_key(m.loop), "count": LoopCount(m.loop)},
                              span=src.span(m.loop.start, m.loop.end), spans={"count": m.loop.iterable.span()})
    if m.cond is not None:
        out["condition"] = m.cond
        out.spans["condition"] = m.cond.span()
    return out


_SIMPLE_TYPES = {"string": "string", "int": "int", "bool": "bool", "array": "array", "object": "object"}


def _arm_type(text: str, p: Program, d: bs.Decl, depth: int = 0) -> str:
    """The ARM type of a Bicep type expression (what ``--param`` text is converted to, and whether an unset
    parameter may be a placeholder: strings and objects may, as in ARM)."""
    t = text.strip().rstrip("?").strip()
    if d.decorator("secure") is not None:
        return "securestring" if t == "string" else "secureobject"
    if t.endswith("[]"):
        return "array"
    if t.startswith("{"):
        return "object"
    if t[:1] == "'":
        return "string"
    if t[:1].isdigit() or t[:1] == "-":
        return "int"
    if t in ("true", "false"):
        return "bool"
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t]
    alias = p.types.get(t)
    if alias is None and t in p.imported_types:  # import {t} from ...: read in its own file
        p, alias = p.imported_types[t]
    elif alias is None and t.partition(".")[0] in p.namespaces:  # import * as ns: ns.t
        p = p.namespaces[t.partition(".")[0]]
        alias = p.exports().get(t.partition(".")[2])
    if alias is not None and alias.kind == "type" and depth < 16:
        return _arm_type(alias.type_text, p, alias, depth + 1)
    return "object"


# ------------------------------------------------------------------ evaluation


class BicepEvaluator(Evaluator):
    """The ARM evaluator, for a program whose values are Bicep expression nodes (see the module doc)."""

    program: Program
    _iter_cache: dict  # a resource loop's list, by loop (the loop of a copy the ARM importer expands)
    _children: dict  # the evaluator of each module instance
    _props_cache: dict  # a resource's evaluated properties, by instance
    _imports: dict  # the evaluator of each file imported from (import ... from), by program

    @classmethod
    def for_program(cls, prog: Program, values: dict, lenient: bool, **kw: Any) -> "BicepEvaluator":
        t = prog.template
        ev = cls(prog.filename, t["parameters"], values, t["variables"], lenient=lenient, **kw)
        ev.program = prog
        ev._iter_cache = {}
        ev._children = {}
        ev._props_cache = {}
        ev._imports = {}
        return ev

    # -------------------------------------------------------------- entry points from the ARM side

    def value(self, raw: Any, span: Span = NOSPAN, loops: dict | None = None) -> Any:
        if isinstance(raw, bs.Node):
            v = self.ev(raw, loops if loops is not None else {})
            if isinstance(v, (ResVal, ModVal, Collection, Outputs, BLambda, Namespace)):
                return Unknown("a resource, module, lambda or import namespace is not a value here", raw.text(),
                               raw.span())
            return v
        return super().value(raw, span, loops)

    def parameter(self, name: Any, text: str, span: Span) -> Any:
        v = super().parameter(name, text, span)
        d = self.program.params.get(name)
        allowed = d.decorator("allowed") if d is not None else None
        if allowed is not None and allowed.args and not isinstance(v, (Unknown, Placeholder)):
            choices = self.ev(allowed.args[0], {})
            if isinstance(choices, list) and v not in choices:
                raise InputError.single(
                    "E744", f"parameter '{name}' is {json.dumps(v, default=str)}, which is not one of its @allowed "
                            f"values ({', '.join(json.dumps(c, default=str) for c in choices)})", allowed.span(),
                    "give one of the allowed values (--param, a parameters file), as Azure would refuse the "
                    "deployment")
        return v

    def child(self, template: dict, props: dict, span: Span, loops: dict | None = None) -> Evaluator:
        prog = template.get(_PROGRAM) if isinstance(template, dict) else None
        if prog is None:
            return super().child(template, props, span, loops)
        key = (id(template), tuple(sorted((k, v) for k, v in (loops or {}).items() if isinstance(v, int))))
        ev = self._children.get(key)
        if ev is not None:
            return ev
        given = props.get("parameters")
        values: dict[str, Any] = {}
        if isinstance(given, bs.Node):
            obj = self.value(given, span, loops)
            if isinstance(obj, dict):
                values = dict(obj)
            else:
                u = obj if isinstance(obj, Unknown) else Unknown("a module's params must be an object", given.text(),
                                                                 given.span())
                values = {k: u for k in prog.params}
        elif isinstance(given, JObject):
            for k, v in given.items():
                values[k] = self.value(v["value"], given.span_of(k), loops)
        for k in values:
            if k not in prog.params:
                raise InputError.single("E741", f"module {prog.filename} has no parameter '{k}'",
                                        given.span_of(k) if isinstance(given, JObject) else span,
                                        did_you_mean(k, sorted(prog.params)) or "check the module's 'param' lines")
        ev = BicepEvaluator.for_program(prog, values, self.lenient, budget=self.budget)
        ev.unset = self.unset
        ev.placeholders = self.placeholders
        self._children[key] = ev
        return ev

    def _apply(self, fn: Any, values: list, text: str, span: Span) -> Any:
        if isinstance(fn, BLambda):
            scope = {**fn.loops, **dict(zip(fn.keys, values))}
            out = self.ev(fn.node.body, scope)
            if isinstance(out, Unknown):
                raise _Fail(out.reason)
            return out
        return super()._apply(fn, values, text, span)

    # -------------------------------------------------------------- nodes

    def ev(self, n: Any, loops: dict) -> Any:
        t = type(n)
        if t is bs.Lit:
            return n.value
        b = self.budget
        b.steps += 1
        b.depth += 1
        try:
            if b.steps > MAX_EVAL_STEPS or b.depth > MAX_EVAL_DEPTH:
                self._enter(n.span())  # raises E694 / E690 with the location
            return _DISPATCH[t](self, n, loops)
        except _Fail as e:
            return Unknown(str(e), n.text(), n.span())
        finally:
            b.depth -= 1

    def _fn(self, name: str, args: list, n: bs.Node, loops: dict) -> Any:
        return self.apply_call(name, args, n.text(), n.span(), loops)

    def _interp(self, n: bs.Interp, loops: dict) -> Any:
        fmt: list[str] = []
        args: list[Any] = []
        for p in n.parts:
            if isinstance(p, str):
                fmt.append(p.replace("{", "{{").replace("}", "}}"))
            else:
                fmt.append("{%d}" % len(args))
                args.append(self.ev(p, loops))
        # Bicep compiles '${a}-x' to format('{0}-x', a): the same text, booleans included.
        return self._fn("format", ["".join(fmt), *args], n, loops)

    def _spread_value(self, part: bs.Spread, want: type, loops: dict) -> Any:
        """The value of ``...x``: an object (``want`` dict) or an array (list); Unknown if it is not known, and
        E746 if it is known and of the other kind (Bicep refuses the file)."""
        v = self.ev(part.value, loops)
        if isinstance(v, Unknown):
            return v
        if isinstance(v, Placeholder):
            return Unknown(f"'...' spreads parameter(s) {', '.join(sorted(v.params))}, which have no value: which "
                           f"{'keys' if want is dict else 'items'} it adds is unknown", part.text(), part.span())
        if isinstance(v, (ResVal, ModVal, Collection, Outputs, BLambda, Namespace)):
            return Unknown("'...' of a resource, module, lambda or import namespace (nsgsolve spreads objects and "
                           "arrays)", part.text(), part.span())
        if not isinstance(v, want):
            kind = "null" if v is None else "an array" if isinstance(v, list) else "an object" \
                if isinstance(v, dict) else "a truth value" if isinstance(v, bool) else "a number" \
                if isinstance(v, int) else "a string"
            into, needs = ("an object", "an object") if want is dict else ("an array", "an array")
            raise bs.spread_error(part.src, part.start, f"'...{part.value.text()}' spreads {kind} into {into}, "
                                                          f"which needs {needs}",
                                   "spread an object into an object and an array into an array ('...' of a "
                                   "conditional value: cond ? {...} : {} or cond ? [...] : [])")
        return v

    def _spread_obj(self, n: bs.SpreadObj, loops: dict) -> Any:
        """``{ a: 1, ...x, b: 2 }``: Bicep's ``shallowMerge``, a later key replacing an earlier one. Keys are
        matched without regard to case (Azure reads property names so, and the converter would otherwise
        keep the first spelling: the earlier value)."""
        out = JObject(span=n.span())
        folded: dict[str, str] = {}
        for part in n.parts:
            v = self._spread_value(part, dict, loops) if type(part) is bs.Spread else self._obj(part, loops)
            if isinstance(v, Unknown):
                return v
            spans = v.spans if isinstance(v, JObject) else {}
            for k, x in v.items():
                old = folded.get(k.lower())
                if old is not None and old != k:
                    del out[old]
                    out.spans.pop(old, None)
                folded[k.lower()] = k
                out[k] = x
                out.spans[k] = spans.get(k) or part.span()
        return out

    def _spread_arr(self, n: bs.SpreadArr, loops: dict) -> Any:
        """``[a, ...x, b]``: Bicep's ``flatten`` of the runs and the spread arrays (the size limits of ARM's
        functions apply)."""
        chunks: list = []
        spans: list[Span] = []
        for part in n.parts:
            v = self._spread_value(part, list, loops) if type(part) is bs.Spread else self._arr(part, loops)
            if isinstance(v, Unknown):
                return v
            spans += v.spans if isinstance(v, JArray) and len(v.spans) == len(v) else [part.span()] * len(v)
            chunks.append(v)
        flat = self._fn("flatten", [chunks], n, loops)
        return JArray(flat, span=n.span(), spans=spans) if isinstance(flat, list) else flat

    def _arr(self, n: bs.Arr, loops: dict) -> Any:
        src = n.src
        return JArray([self.ev(x, loops) for x in n.items], span=n.span(),
                      spans=[src.span(x.start, x.end) for x in n.items])

    def _obj(self, n: bs.Obj, loops: dict) -> Any:
        src = n.src
        return JObject({k: self.ev(v, loops) for k, _s, v in n.pairs}, span=n.span(),
                       spans={k: src.span(v.start, v.end) for k, _s, v in n.pairs})

    def _ident(self, n: bs.Ident, loops: dict) -> Any:
        b = n.binding
        kind = b[0]
        if kind == "param":
            return self.parameter(b[1], n.text(), n.span())
        if kind == "var":
            return self.variable(b[1], n.text(), n.span())
        if kind == "item" or kind == "index":
            key = b[2]
            if key not in loops:
                return Unknown(f"loop variable '{n.name}' outside its loop", n.text(), n.span())
            if kind == "index":
                return loops[key]
            ik = key + "\0item"
            if ik in loops:
                return loops[ik]
            lst = self._iter_cache.get(key)
            if lst is None:
                lst = self._iterable(b[1], loops)
                self._iter_cache[key] = lst
            if isinstance(lst, Unknown):
                return lst
            item = lst[loops[key]]
            loops[ik] = item
            return item
        if kind == "lambda" or kind == "fparam":
            return loops.get(b[1], Unknown(f"'{n.name}' outside its function", n.text(), n.span()))
        if kind == "ivar":  # import {x} from ...: x evaluated in its own file
            return self.imported(b[1]).variable(b[2], n.text(), n.span())
        if kind == "ns":
            return Namespace(b[1])
        if kind == "iother":
            return Unknown(f"'{n.name}' is an imported function or type, not a value", n.text(), n.span())
        if kind == "res":
            sym = b[1]
            return Collection(sym) if sym.loop is not None else ResVal(sym, {})
        if kind == "mod":
            sym = b[1]
            return Collection(sym) if sym.loop is not None else ModVal(sym, {})
        return Unknown(f"'{n.name}' comes from an import nsgsolve cannot read (W744)", n.text(), n.span())

    def _iterable(self, loop: bs.For, loops: dict) -> Any:
        lst = self.ev(loop.iterable, loops)
        if isinstance(lst, Unknown):
            return lst
        if isinstance(lst, Placeholder):
            return Unknown(f"the loop's list is built from parameter(s) {', '.join(sorted(lst.params))}, which have "
                           f"no value", loop.iterable.text(), loop.iterable.span())
        if not isinstance(lst, list):
            kind = "an object" if isinstance(lst, dict) else type(lst).__name__ if lst is not None else "null"
            raise InputError.single(
                "E742", f"a 'for' loop over {kind}, not a list: {loop.iterable.text()}", loop.iterable.span(),
                "loop over an array (use items(OBJECT) for an object's entries, range(0, N) for N copies)")
        _copy_count(len(lst), "a Bicep 'for' loop", loop.iterable.span())
        return lst

    def _loopcount(self, n: LoopCount, loops: dict) -> Any:
        lst = self._iterable(n.loop, loops)
        return lst if isinstance(lst, Unknown) else len(lst)

    def _for(self, n: bs.For, loops: dict) -> Any:
        lst = self._iterable(n, loops)
        if isinstance(lst, Unknown):
            return lst
        key = _loop_key(n)
        out = JArray(span=n.span())
        bspan = n.body.span()
        for i, item in enumerate(lst):
            lp = {**loops, key: i, key + "\0item": item}
            if n.cond is not None:
                c = self.ev(n.cond, lp)
                if isinstance(c, Unknown):
                    return c
                if c is not True:
                    continue
            out.append(self.ev(n.body, lp))
            out.spans.append(bspan)
        return out

    def _lambda(self, n: bs.Lambda, loops: dict) -> Any:
        return BLambda(n, tuple(f"\0lambda{id(n)}:{p}" for p in n.params), loops)

    def _member(self, n: bs.Member, loops: dict) -> Any:
        t = self.ev(n.target, loops)
        return self.member(t, n.name, n.safe, n, loops)

    def member(self, t: Any, name: str, safe: bool, n: bs.Node, loops: dict) -> Any:
        if isinstance(t, Unknown):
            return t
        if t is None and safe:
            return None
        if isinstance(t, ResVal):
            return self._res_member(t, name, n)
        if isinstance(t, ModVal):
            low = name.lower()
            if low == "outputs":
                return Outputs(t)
            if low == "name":
                return self._mod_name(t, n)
            return Unknown(f"module property '{name}' (nsgsolve reads a module's name and outputs)", n.text(),
                           n.span())
        if isinstance(t, Outputs):
            return self._output(t.mod, name, n)
        if isinstance(t, Namespace):  # ns.x: the resolver checked that x is an exported var
            return self.imported(t.program).variable(name, n.text(), n.span())
        if isinstance(t, Collection):
            return Unknown(f"'{t.sym.decl.name}' is a loop of resources: index it ({t.sym.decl.name}[i].{name})",
                           n.text(), n.span())
        if safe and isinstance(t, dict) and not any(k.lower() == name.lower() for k in t):
            return None
        return self.eval(ArmProp(ArmLit(t), name), n.text(), n.span(), loops)

    def _index(self, n: bs.Index, loops: dict) -> Any:
        t = self.ev(n.target, loops)
        i = self.ev(n.index, loops)
        if isinstance(t, Unknown):
            return t
        if isinstance(i, Unknown):
            return i
        if isinstance(t, Collection):
            if not isinstance(i, int) or isinstance(i, bool):
                return Unknown("a loop of resources is indexed by a number", n.text(), n.span())
            key = _loop_key(t.sym.loop)
            lp = {key: i}
            if isinstance(t.sym, ResSym):
                return ResVal(t.sym, lp)
            return ModVal(t.sym, lp)
        if n.safe:
            if t is None:
                return None
            if isinstance(t, list) and isinstance(i, int) and not 0 <= i < len(t):
                return None
            if isinstance(t, dict) and isinstance(i, str) and not any(k.lower() == i.lower() for k in t):
                return None
        return self.eval(ArmIndex(ArmLit(t), ArmLit(i)), n.text(), n.span(), loops)

    def _child(self, n: bs.Child, loops: dict) -> Any:
        t = self.ev(n.target, loops)
        if isinstance(t, ResVal) and n.name in t.sym.children:
            return ResVal(t.sym.children[n.name], t.loops)
        if isinstance(t, Unknown):
            return t
        return Unknown(f"no nested resource '{n.name}'", n.text(), n.span())

    def _callnode(self, n: bs.Call, loops: dict) -> Any:
        if n.target is not None:
            return Unknown(f"{n.name}() reads a deployed resource; nsgsolve works offline", n.text(), n.span())
        prog = self.program
        if not n.ns and n.name in prog.funcs:
            return self._user_func(prog.funcs[n.name], n, loops, self)
        if not n.ns and n.name in prog.imported_funcs:  # import {f} from ...: f's body read in its own file
            other, d = prog.imported_funcs[n.name]
            return self._user_func(d, n, loops, self.imported(other))
        if n.ns in prog.namespaces:  # ns.f(...) of import * as ns
            other = prog.namespaces[n.ns]
            return self._user_func(other.funcs[n.name], n, loops, self.imported(other))
        name = n.name.lower()
        if n.ns and n.ns not in ("sys", "az"):
            return Unknown(f"function '{n.ns}.{n.name}()' comes from an import nsgsolve cannot read (W744)",
                           n.text(), n.span())
        args = [self.ev(a, loops) for a in n.args]
        if name == "any":
            return args[0] if len(args) == 1 else Unknown("any() takes one argument", n.text(), n.span())
        if name in ("loadtextcontent", "loadjsoncontent"):
            return self._load(name, args, n)
        if name in _BICEP_ONLY:
            return Unknown(f"{n.name}() is not evaluated by nsgsolve", n.text(), n.span())
        return self._fn(name, args, n, loops)

    def _load(self, name: str, args: list, n: bs.Call) -> Any:
        """loadTextContent / loadJsonContent: the file is read when Bicep compiles, relative to this file."""
        from nsgsolve.importers.files import read_text

        if not args or not isinstance(args[0], str):
            return Unknown(f"{n.name}() needs a file path", n.text(), n.span())
        path = Path(self.program.filename).parent / args[0]
        try:
            text = read_text(path)
            return json.loads(text) if name == "loadjsoncontent" else text
        except (InputError, ValueError) as e:
            return Unknown(f"{n.name}('{args[0]}'): {e}", n.text(), n.span())

    def _user_func(self, d: bs.Decl, n: bs.Call, loops: dict, callee: "BicepEvaluator") -> Any:
        """A user-defined function: its arguments evaluated here, its body by ``callee``, the evaluator of the
        file that declares it (an imported function calls that file's functions and reads its variables)."""
        if len(n.args) != len(d.params):
            return Unknown(f"{d.name}() takes {len(d.params)} argument(s)", n.text(), n.span())
        scope = {f"\0bf:{d.name}:{p}": self.ev(a, loops) for p, a in zip(d.params, n.args)}
        assert d.value is not None
        return callee.ev(d.value, scope)

    def imported(self, prog: Program) -> "BicepEvaluator":
        """The evaluator of a file this one imports from (one per file and run; its exported variables are
        compile-time constants, so it has no parameter values)."""
        ev = self._imports.get(id(prog))
        if ev is None:
            ev = BicepEvaluator.for_program(prog, {}, self.lenient, budget=self.budget)
            ev.unset = self.unset
            ev.placeholders = self.placeholders
            self._imports[id(prog)] = ev
        return ev

    def _unary(self, n: bs.Unary, loops: dict) -> Any:
        v = self.ev(n.operand, loops)
        if n.op == "!":
            return self._fn("not", [v], n, loops)
        return self._fn("sub", [0, v], n, loops)

    _OPS = {"<": "less", "<=": "lessorequals", ">": "greater", ">=": "greaterorequals", "+": "add", "-": "sub",
            "*": "mul", "/": "div", "%": "mod", "==": "equals"}

    def _binary(self, n: bs.Binary, loops: dict) -> Any:
        op = n.op
        left = self.ev(n.left, loops)
        if op == "??":
            if left is None:
                return self.ev(n.right, loops)
            return left
        if op == "&&" and left is False or op == "||" and left is True:
            return left
        right = self.ev(n.right, loops)
        if op == "&&" or op == "||":
            return self._fn("and" if op == "&&" else "or", [left, right], n, loops)
        if op in self._OPS:
            return self._fn(self._OPS[op], [left, right], n, loops)
        if op == "!=":
            eq = self._fn("equals", [left, right], n, loops)
            return self._fn("not", [eq], n, loops)
        # =~ and !~: case-insensitive comparison of strings
        if isinstance(left, str) and isinstance(right, str):
            eq = self._fn("equals", [self._fn("tolower", [left], n, loops), self._fn("tolower", [right], n, loops)],
                          n, loops)
        else:
            eq = self._fn("equals", [left, right], n, loops)
        return eq if op == "=~" else self._fn("not", [eq], n, loops)

    def _ternary(self, n: bs.Ternary, loops: dict) -> Any:
        c = self.ev(n.cond, loops)
        if isinstance(c, Unknown):
            return c
        if not isinstance(c, bool):
            return Unknown("the condition of '?' is not true or false", n.cond.text(), n.cond.span())
        return self.ev(n.then if c else n.other, loops)

    def _ifbody(self, n: bs.IfBody, loops: dict) -> Any:  # pragma: no cover - bodies are lowered, never values
        return self.ev(n.body, loops)

    def _childname(self, n: ChildName, loops: dict) -> Any:
        parent = n.parent
        pv = ResVal(parent, {}) if isinstance(parent, ResSym) else self.ev(parent, loops)
        if isinstance(pv, Unknown):
            return pv
        if not isinstance(pv, ResVal):
            return Unknown("'parent' must name a resource", n.text(), n.span())
        pname = self._res_name(pv, n)
        own = self.ev(n.name, loops)
        return self._fn("format", ["{0}/{1}", pname, own], n, loops)

    def _symref(self, n: SymRef, loops: dict) -> Any:
        return ResVal(n.sym, {})

    # -------------------------------------------------------------- resource and module symbols

    def _res_name(self, rv: ResVal, at: bs.Node) -> Any:
        sym = rv.sym
        assert sym.name_node is not None
        return self.ev(sym.name_node, dict(rv.loops))

    def _res_member(self, rv: ResVal, name: str, n: bs.Node) -> Any:
        sym = rv.sym
        low = name.lower()
        if low in ("name", "id"):
            full = self._res_name(rv, n)
            if low == "name" or isinstance(full, Unknown):
                return full
            try:
                rid = resource_id(sym.type, str(full).split("/"))
            except _Fail as e:
                return Unknown(str(e), n.text(), n.span())
            return Placeholder(rid, full.params) if isinstance(full, Placeholder) else rid
        if low == "type":
            return sym.type
        if low == "apiversion":
            return sym.api
        if sym.existing:
            return Unknown(f"'{sym.decl.name}' is an existing resource: its {name} exists only in Azure", n.text(),
                           n.span())
        lowered = sym.lowered
        key = next((k for k in (lowered or {}) if k.lower() == low), None)
        if lowered is None or key is None:
            return Unknown(f"'{sym.decl.name}.{name}' exists only after deployment", n.text(), n.span())
        if low != "properties":
            return self.value(lowered[key], lowered.span_of(key), dict(rv.loops))
        ck = (id(sym), tuple(sorted(rv.loops.items())))
        if ck in self._props_cache:
            return self._props_cache[ck]
        self._props_cache[ck] = Unknown(f"the properties of '{sym.decl.name}' refer to themselves", n.text(), n.span())
        props = self.value(lowered[key], lowered.span_of(key), dict(rv.loops))
        rid = self._res_member(rv, "id", n)
        if isinstance(rid, str):
            props = with_child_ids(props, rid)
        self._props_cache[ck] = props
        return props

    def _mod_name(self, mv: ModVal, n: bs.Node) -> Any:
        if mv.sym.program is None:
            return Unknown(f"module '{mv.sym.decl.name}' is {mv.sym.remote}", n.text(), n.span())
        lowered = _lowered_module(self, mv.sym)
        return self.value(lowered["name"], lowered.span_of("name"), dict(mv.loops))

    def _output(self, mv: ModVal, name: str, n: bs.Node) -> Any:
        sym = mv.sym
        if sym.program is None:
            return Unknown(f"output '{name}' of module '{sym.decl.name}', which is {sym.remote} nsgsolve cannot read "
                           f"offline", n.text(), n.span())
        out = sym.program.outputs.get(name)
        if out is None:
            return Unknown(f"module '{sym.decl.name}' has no output '{name}'", n.text(), n.span())
        lowered = _lowered_module(self, sym)
        child = self.child(lowered["properties"]["template"], lowered["properties"], n.span(), dict(mv.loops))
        assert isinstance(child, BicepEvaluator) and out.value is not None
        return child.ev(out.value, {})


def _lowered_module(ev: BicepEvaluator, sym: ModSym) -> JObject:
    r = ev.program.template["resources"].get(sym.decl.name)
    assert isinstance(r, JObject)
    return r


_DISPATCH: dict[type, Callable[[BicepEvaluator, Any, dict], Any]] = {
    bs.Interp: BicepEvaluator._interp,
    bs.Arr: BicepEvaluator._arr,
    bs.Obj: BicepEvaluator._obj,
    bs.Ident: BicepEvaluator._ident,
    bs.Member: BicepEvaluator._member,
    bs.Index: BicepEvaluator._index,
    bs.Child: BicepEvaluator._child,
    bs.Call: BicepEvaluator._callnode,
    bs.Unary: BicepEvaluator._unary,
    bs.Binary: BicepEvaluator._binary,
    bs.Ternary: BicepEvaluator._ternary,
    bs.For: BicepEvaluator._for,
    bs.Lambda: BicepEvaluator._lambda,
    bs.IfBody: BicepEvaluator._ifbody,
    bs.SpreadObj: BicepEvaluator._spread_obj,
    bs.SpreadArr: BicepEvaluator._spread_arr,
    LoopCount: BicepEvaluator._loopcount,
    ChildName: BicepEvaluator._childname,
    SymRef: BicepEvaluator._symref,
}


# ------------------------------------------------------------------ entry points


@dataclass
class ParameterFile:
    """A ``.bicepparam`` file read: its values and the Bicep file its ``using`` names ('' when none)."""

    filename: str
    values: dict
    using: str


def read_parameter_file(text: str, filename: str, reader: Reader) -> ParameterFile:
    values, using = parameter_file_values(text, filename, reader)
    return ParameterFile(filename, values, using)


def parameter_file_values(text: str, filename: str, reader: Reader) -> tuple[dict[str, Any], str]:
    """A ``.bicepparam`` file: its ``param NAME = VALUE`` values (evaluated: they may use variables and
    functions) and the Bicep file its ``using`` names (relative to it; '' when none)."""
    prog = reader.program(filename, text)
    ev = BicepEvaluator.for_program(prog, {}, lenient=False)
    out: dict[str, Any] = {}
    for d in prog.decls:
        if d.kind == "param":
            if d.value is None:
                raise InputError.single("E745", f"parameter '{d.name}' in a .bicepparam file has no value",
                                        d.span(), "write it as: param NAME = VALUE")
            out[d.name] = ev.value(d.value, d.span())
    using = str(Path(filename).parent / prog.using) if prog.using else ""
    return out, using


def check_parameter_file(values: dict[str, Any], prog: Program, filename: str) -> None:
    """A .bicepparam value for a parameter its template does not declare: Bicep refuses it (E745)."""
    for k in values:
        if k not in prog.params:
            raise InputError.single("E745", f"{filename}: parameter '{k}' is not declared in {prog.filename}",
                                    Span(filename, 1, 1), did_you_mean(k, sorted(prog.params)) or
                                    "remove it, or declare it with 'param' in the Bicep file")


def declared_parameters(prog: Program) -> set[str]:
    return {k.lower() for k in prog.params}


def entry_files(directory: Path) -> list[Path]:
    """The Bicep files of a directory that are deployed on their own: those no other file there uses as a
    module or imports from (``main.bicep`` beside its ``network.bicep`` and ``types.bicep``)."""
    files = sorted(p for p in directory.glob("*.bicep") if p.is_file())
    used: set[Path] = set()
    for f in files:
        try:
            text = f.read_text(encoding="utf-8-sig", errors="replace")
        except OSError:
            continue
        for m in re.finditer(r"^\s*module\s+\w+\s+'([^']+)'|^\s*import\b[^'\n]*(?:\{[^}']*\}[^'\n]*)?from\s+'([^']+)'",
                             text, re.M):
            used.add((f.parent / (m.group(1) or m.group(2))).resolve())
    return [f for f in files if f.resolve() not in used]


__all__ = ["Reader", "Program", "ParameterFile", "read_parameter_file", "BicepEvaluator", "parameter_file_values",
           "check_parameter_file",
           "declared_parameters", "entry_files", "is_bicep_path"]
