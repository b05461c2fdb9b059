"""Terraform configurations (``.tf`` files and directories): modules, variables and resources.

A directory is one Terraform module; ``.tf`` files given one by one are read together as one module too
(as if they were the files of a directory). Values come, lowest precedence first, from variable defaults,
``terraform.tfvars``, ``*.auto.tfvars`` (alphabetical), ``--var-file`` files and ``--var`` options, as in
Terraform. Local ``module`` blocks (``source = "./network"``) are read with the arguments the call gives;
a registry or git module cannot be read offline (W621), unless ``terraform init`` left a copy that
``.terraform/modules/modules.json`` names.

A resource is evaluated only as far as the network model needs (:mod:`nsgsolve.importers.tfexpr` is
lazy), and what cannot be known offline stays unknown; :mod:`nsgsolve.importers.tfconvert` turns the
azurerm resources into :class:`~nsgsolve.importers.convert.PolicyBuilder` calls, the converter ARM
templates and az exports use too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lark import Tree

from nsgsolve.errors import DiagnosticBag, InputError
from nsgsolve.fileio import read_input_bytes
from nsgsolve.limits import TF_MAX_COUNT
from nsgsolve.model import NOSPAN, Span
from nsgsolve.importers.hcl import Attr, Block, Body, ident_text, parse_body, parse_json_body
from nsgsolve.importers.tfconvert import SUBSCRIPTION, arm_id
from nsgsolve.importers.tfexpr import (
    MISSING, Evaluator, Obj, Scope, TfUnknown, VarParam, _Fail, to_str, unknown_in,
)


# Read through importers.files, not the loader: the loader dispatches to this module, so importing it back
# would close an import circle (tests/test_architecture.py).
TF_READS = ("Terraform configurations (.tf files, directories of them, .tfvars), ARM templates and az exports "
            "(JSON) and nsgsolve policy files (.nsg)")


def _read_text(path) -> str:
    from nsgsolve.importers import files

    return files.read_text(path, TF_READS)


# Resource types whose `id` nsgsolve can write offline, as Azure will: the ARM id built from the names.
_ID_PATH: dict[str, tuple[str, tuple[str, ...]]] = {
    "azurerm_network_security_group": ("Microsoft.Network/networkSecurityGroups", ("name",)),
    "azurerm_network_security_rule": ("Microsoft.Network/networkSecurityGroups/securityRules",
                                      ("network_security_group_name", "name")),
    "azurerm_virtual_network": ("Microsoft.Network/virtualNetworks", ("name",)),
    "azurerm_subnet": ("Microsoft.Network/virtualNetworks/subnets", ("virtual_network_name", "name")),
    "azurerm_virtual_network_peering": ("Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
                                        ("virtual_network_name", "name")),
    "azurerm_network_interface": ("Microsoft.Network/networkInterfaces", ("name",)),
    "azurerm_application_security_group": ("Microsoft.Network/applicationSecurityGroups", ("name",)),
    "azurerm_linux_virtual_machine_scale_set": ("Microsoft.Compute/virtualMachineScaleSets", ("name",)),
    "azurerm_windows_virtual_machine_scale_set": ("Microsoft.Compute/virtualMachineScaleSets", ("name",)),
    "azurerm_orchestrated_virtual_machine_scale_set": ("Microsoft.Compute/virtualMachineScaleSets", ("name",)),
    "azurerm_network_manager": ("Microsoft.Network/networkManagers", ("name",)),
}
# The association resources' id is the id of what they attach to (the subnet or the NIC), as in azurerm.
# Network manager children: the parent's id (an attribute) and the child's segment.
_CHILD_ID = {
    "azurerm_network_manager_network_group": ("network_manager_id", "networkGroups"),
    "azurerm_network_manager_static_member": ("network_group_id", "staticMembers"),
    "azurerm_network_manager_security_admin_configuration": ("network_manager_id", "securityAdminConfigurations"),
    "azurerm_network_manager_admin_rule_collection": ("security_admin_configuration_id", "ruleCollections"),
    "azurerm_network_manager_admin_rule": ("admin_rule_collection_id", "rules"),
}
_ASSOC_ID = {
    "azurerm_subnet_network_security_group_association": "subnet_id",
    "azurerm_network_interface_security_group_association": "network_interface_id",
}
_PRIMITIVE_TYPES = ("string", "number", "bool")




# ---------------------------------------------------------------------- values of variables


@dataclass
class VarValue:
    """A variable value given from outside the module: a value, or an expression to evaluate in the caller."""

    value: Any = None
    attr: Attr | None = None
    scope: Scope | None = None
    origin: str = ""


def parse_cli_var(item: str, declared_type: str | None) -> tuple[str, Any]:
    """``NAME=VALUE`` of ``--var``: VALUE is HCL for complex types and literal text for primitive ones, as in
    Terraform; for a variable without a declared type, text that parses as a list or map is read as one."""
    from nsgsolve.errors import UsageError

    name, eq, raw = item.partition("=")
    name = name.strip()
    if not eq or not name:
        raise UsageError(f"--var {item!r}: expected NAME=VALUE", "for example --var 'address_space=[\"10.0.0.0/16\"]'")
    if declared_type in _PRIMITIVE_TYPES:
        return name, raw
    if raw.strip()[:1] in ("[", "{") or declared_type is not None:
        try:
            body = parse_body(f"v = {raw}\n", "<--var>")
            v = Evaluator({"<--var>": f"v = {raw}"}).eval(body.attrs["v"].expr, Scope(_NoRefs(), "<--var>"))
        except InputError:
            v = None
        else:
            if unknown_in(v) is None:
                return name, v
        if declared_type is not None:
            raise UsageError(f"--var {name}: '{raw}' is not a valid HCL value for a variable of type {declared_type}",
                             "write lists as [\"a\", \"b\"] and maps as {k = \"v\"}, quoted for the shell")
    return name, raw


class _NoRefs:
    """The environment of a .tfvars file or a --var value: literals only, no references."""

    def root(self, name: str, span: Span, text: str, scope: Scope) -> Any:
        raise _Fail(f"'{name}': variable values may not refer to other objects")


def read_tfvars(path: str, text: str) -> dict[str, VarValue]:
    body = parse_body(text, path)
    ev = Evaluator({path: text})
    out: dict[str, VarValue] = {}
    for name, a in body.attrs.items():
        v = ev.eval(a.expr, Scope(_NoRefs(), path))
        u = unknown_in(v)
        if u is not None:
            raise InputError.single("E663", f"{path}: value of '{name}' cannot be evaluated: {u.reason}", a.value_span,
                                    "a .tfvars file holds literal values only")
        out[name] = VarValue(value=v, origin=path)
    return out


def read_tfvars_json(path: str, text: str) -> dict[str, VarValue]:
    from nsgsolve.importers import jsonpos

    doc = jsonpos.parse(text, path)
    if not isinstance(doc, dict):
        raise InputError.single("E663", f"{path}: a .tfvars.json file must hold one JSON object", Span(path, 1, 1))
    return {k: VarValue(value=_plain(v), origin=path) for k, v in doc.items()}


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


# ---------------------------------------------------------------------- modules


class ModuleEnv:
    """One Terraform module (a directory's .tf files) with the variable values its caller gives."""

    def __init__(self, loader: "TfLoader", path: str, files: dict[str, str], values: dict[str, VarValue],
                 address: str = "", root_dir: str = "."):
        self.loader = loader
        self.path = path
        self.address = address  # "" for the root module, "module.net" (with instance keys) otherwise
        self.root_dir = root_dir
        self.values = values
        self.texts = files
        self.ev = Evaluator(files)
        self.loader.evaluators.append(self.ev)
        self.variables: dict[str, Block] = {}
        self.locals: dict[str, Attr] = {}
        self.outputs: dict[str, Attr] = {}
        self.resources: dict[tuple[str, str], "Resource"] = {}
        self.data: dict[tuple[str, str], "Resource"] = {}
        self.calls: dict[str, "ModuleCall"] = {}
        self._local_cache: dict[str, Any] = {}
        self._var_cache: dict[str, Any] = {}
        self._busy: set[str] = set()
        for f, text in files.items():
            body = loader.bodies.get(f)
            if body is None:  # a module called several times (count, for_each) is parsed once
                body = loader.bodies[f] = parse_file(text, f)
            for b in body.blocks:
                self._declare(b, f)

    def _declare(self, b: Block, file: str) -> None:
        lab = b.labels
        if b.type == "variable" and len(lab) == 1:
            self.variables[lab[0]] = b
        elif b.type == "locals":
            self.locals.update(b.body.attrs)
        elif b.type == "output" and len(lab) == 1:
            self.outputs[lab[0]] = b.body.attrs.get("value")  # type: ignore[assignment]
        elif b.type == "resource" and len(lab) == 2:
            self.resources[(lab[0], lab[1])] = Resource(self, "resource", lab[0], lab[1], b, file)
        elif b.type == "data" and len(lab) == 2:
            self.data[(lab[0], lab[1])] = Resource(self, "data", lab[0], lab[1], b, file)
        elif b.type == "module" and len(lab) == 1:
            self.calls[lab[0]] = ModuleCall(self, lab[0], b, file)

    def qualify(self, local_address: str) -> str:
        return f"{self.address}.{local_address}" if self.address else local_address

    # -- names an expression may use

    def root(self, name: str, span: Span, text: str, scope: Scope) -> Any:
        if name == "var":
            return _Namespace(self, "var")
        if name == "local":
            return _Namespace(self, "local")
        if name == "data":
            return _Namespace(self, "data")
        if name == "module":
            return _Namespace(self, "module")
        if name == "path":
            return {"module": self.path, "root": self.root_dir, "cwd": os.getcwd()}
        if name == "terraform":
            return {"workspace": "default"}
        if name in ("count", "each", "self"):
            raise _Fail(f"'{name}' is only available inside a resource or module with count/for_each")
        if any(t == name for t, _ in self.resources) or _looks_like_type(name):
            return _TypeNs(self, name, "resource")
        raise _Fail(f"'{name}' is not a variable, local, resource type, data source or module of this configuration")

    def var(self, name: str, span: Span, text: str) -> Any:
        if name in self._var_cache:
            v = self._var_cache[name]
            if isinstance(v, TfUnknown) and v.placeholder == name and v.vars:
                # each use is reported where it is
                return TfUnknown(v.reason, text, span, name, v.vars, param=v.param)
            return v
        qual = f"{self.address}.{name}" if self.address else name
        given = self.values.get(name)
        decl = self.variables.get(name)
        if given is not None:
            if given.attr is not None and given.scope is not None:
                v = given.scope.env.ev.eval(given.attr.expr, given.scope)
            else:
                v = given.value
            v = _convert_var(v, decl)
        elif decl is not None and "default" in decl.body.attrs:
            d = decl.body.attrs["default"]
            v = self.ev.eval(d.expr, Scope(_NoRefs(), d.span.file))
            v = _convert_var(v, decl)
        else:
            why = (f"variable '{name}' has no value" if decl is not None else
                   f"variable '{name}' is not declared in the inputs and has no value")
            self.loader.unset_vars.setdefault(qual, decl.span if decl is not None else span)
            pname = f"{self.address}.var.{name}" if self.address else f"var.{name}"
            param = VarParam(pname, _validation_values(self.ev, decl, name), decl.span if decl is not None else span)
            v = TfUnknown(why, text, span, name, (qual,), param=param)
        self._var_cache[name] = v
        return v

    def local(self, name: str, span: Span, text: str) -> Any:
        if name in self._local_cache:
            return self._local_cache[name]
        a = self.locals.get(name)
        if a is None:
            return self.missing(f"local.{name}", span, text, name)
        key = f"local.{name}"
        if key in self._busy:
            raise _Fail(f"local.{name} refers to itself")
        self._busy.add(key)
        try:
            v = self.ev.eval(a.expr, Scope(self, a.span.file))
        finally:
            self._busy.discard(key)
        self._local_cache[name] = v
        return v

    def module_outputs(self, name: str, span: Span = NOSPAN, text: str = "") -> Any:
        call = self.calls.get(name)
        if call is None:
            return _Missing(self, f"module.{name}", span, text, name)
        return call.value()

    def missing(self, local: str, span: Span, text: str, placeholder: str) -> TfUnknown:
        """An object the files read do not define (a module split over files not given): unknown, not an error,
        and reported once (W624) if a network resource reads it."""
        qual = self.qualify(local)
        self.loader.missing.setdefault(qual, span)
        return TfUnknown(f"{qual} is not defined in the files read", text, span, placeholder, (MISSING + qual,))

    def all_resources(self) -> Iterator["Resource"]:
        yield from self.resources.values()
        for call in self.calls.values():
            for child in call.children():
                yield from child.all_resources()


def _validation_values(ev: Evaluator, decl: Block | None, name: str) -> tuple[str, ...]:
    """The values a variable's ``validation`` blocks restrict it to, when one is ``contains([LITERALS],
    var.NAME)`` (the usual way to write an enumeration); () when none says so, which is any value (sound:
    a wider range of values only makes answers hold for more)."""
    if decl is None:
        return ()
    for v in decl.body.blocks_of("validation"):
        cond = v.body.attrs.get("condition")
        if cond is None:
            continue
        node = cond.expr
        while isinstance(node, Tree) and node.data == "expr_term" and len(node.children) == 1:
            node = node.children[0]
        if not (isinstance(node, Tree) and node.data == "function_call"):
            continue
        kids = [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
        if not kids or ident_text(kids[0]) != "contains":
            continue
        args = next((c for c in kids if c.data == "arguments"), None)
        arg_nodes = [c for c in args.children if isinstance(c, Tree) and c.data != "new_line_or_comment"] \
            if args is not None else []
        if len(arg_nodes) != 2 or "".join(ev.text(arg_nodes[1], cond.span.file).split()) != f"var.{name}":
            continue
        values = ev.eval(arg_nodes[0], Scope(_NoRefs(), cond.span.file))
        if isinstance(values, list) and values and all(isinstance(x, (str, int)) and not isinstance(x, bool)
                                                       for x in values):
            return tuple(str(x) for x in values)
    return ()


def _convert_var(v: Any, decl: Block | None) -> Any:
    """A value made to fit the variable's declared ``type``, as Terraform converts it: a string given for a
    number or bool (every -var value is a string) becomes one, and an object attribute declared ``optional``
    and not given is null (or the optional's default)."""
    if decl is None:
        return v
    t = decl.body.attrs.get("type")
    if t is None:
        return v
    try:
        return _conform(v, t.expr, t.span.file)
    except (IndexError, AttributeError, KeyError, TypeError):  # an unusual type expression: keep the value
        return v


def _unwrap(node: Any) -> Any:
    from lark import Tree

    while isinstance(node, Tree) and node.data == "expr_term":
        inner = [c for c in node.children if isinstance(c, Tree)]
        if len(inner) != 1:
            break
        node = inner[0]
    return node


def _type_args(node: Any) -> list[Any]:
    from lark import Tree

    args = next((c for c in node.children if isinstance(c, Tree) and c.data == "arguments"), None)
    return [c for c in args.children if isinstance(c, Tree) and c.data != "new_line_or_comment"] if args else []


def _conform(v: Any, tnode: Any, file: str) -> Any:
    from nsgsolve.importers.hcl import ident_text

    if isinstance(v, TfUnknown) or v is None:
        return v
    node = _unwrap(tnode)
    kind = getattr(node, "data", None)
    if kind == "identifier":
        name = ident_text(node)
        if name == "number" and isinstance(v, str):
            try:
                f = float(v)
                return int(f) if f.is_integer() else f
            except ValueError:
                return v
        if name == "bool" and v in ("true", "false"):
            return v == "true"
        if name == "string" and isinstance(v, (int, float)) and not isinstance(v, bool):
            return to_str(v)
        return v
    if kind != "function_call":
        return v
    name = ident_text(node.children[0])
    args = _type_args(node)
    if name in ("list", "set") and args and isinstance(v, list):
        out = [_conform(x, args[0], file) for x in v]
        return sorted(set(out)) if name == "set" and all(isinstance(x, str) for x in out) else out
    if name == "map" and args and isinstance(v, dict):
        return {k: _conform(x, args[0], file) for k, x in v.items()}
    if name == "tuple" and args and isinstance(v, list):
        elems = [c for c in _unwrap(args[0]).children if hasattr(c, "data") and c.data != "new_line_or_comment"]
        return [_conform(x, elems[i], file) if i < len(elems) else x for i, x in enumerate(v)]
    if name == "object" and args and isinstance(v, dict):
        from nsgsolve.importers.tfexpr import _literal_key

        conformed = dict(v)
        obj = _unwrap(args[0])
        for el in obj.children:
            if not hasattr(el, "data") or el.data != "object_elem":
                continue
            kids = [c for c in el.children if hasattr(c, "data")]
            key = _literal_key(kids[0])
            if key is None:
                continue
            at = _unwrap(kids[-1])
            opt = getattr(at, "data", None) == "function_call" and ident_text(at.children[0]) == "optional"
            if key in conformed:
                conformed[key] = _conform(conformed[key], _type_args(at)[0] if opt else at, file)
            elif opt:
                oargs = _type_args(at)
                dflt = None
                if len(oargs) > 1:
                    dflt = Evaluator({}).eval(oargs[1], Scope(_NoRefs(), file))
                conformed[key] = _conform(dflt, oargs[0], file)
        return conformed
    return v


def _type_text(t: Attr | None) -> str | None:
    if t is None:
        return None
    from nsgsolve.importers.hcl import ident_text

    node = t.expr
    try:
        while hasattr(node, "data") and node.data == "expr_term":
            node = [c for c in node.children if hasattr(c, "data")][0]
        if hasattr(node, "data") and node.data == "identifier":
            return ident_text(node)
        if hasattr(node, "data") and node.data == "function_call":
            return ident_text(node.children[0])
    except (IndexError, AttributeError):
        return None
    return None


class _Namespace(Obj):
    def __init__(self, env: ModuleEnv, kind: str):
        self.env, self.kind = env, kind

    def describe(self) -> str:
        return self.kind

    def attr(self, name: str, span: Span, text: str) -> Any:
        if self.kind == "var":
            return self.env.var(name, span, text)
        if self.kind == "local":
            return self.env.local(name, span, text)
        if self.kind == "module":
            return self.env.module_outputs(name, span, text)
        return _TypeNs(self.env, name, "data")


class _TypeNs(Obj):
    def __init__(self, env: ModuleEnv, rtype: str, mode: str):
        self.env, self.rtype, self.mode = env, rtype, mode

    def describe(self) -> str:
        return self.rtype

    def attr(self, name: str, span: Span, text: str) -> Any:
        table = self.env.resources if self.mode == "resource" else self.env.data
        r = table.get((self.rtype, name))
        if r is None:
            local = f"{self.rtype}.{name}" if self.mode == "resource" else f"data.{self.rtype}.{name}"
            return _Missing(self.env, local, span, text, name)
        return r.value()



_PROVIDER_PREFIXES = ("azurerm_", "azuread_", "azapi_", "random_", "null_", "time_", "tls_", "local_", "http_",
                      "external_", "template_", "archive_", "terraform_")


def _looks_like_type(name: str) -> bool:
    return name.startswith(_PROVIDER_PREFIXES)


class _Missing(Obj):
    """A resource, data source or module the files read do not define: every attribute is unknown."""

    def __init__(self, env: "ModuleEnv", local: str, span: Span, text: str, label: str):
        self.env, self.local, self.label = env, local, label
        env.missing(local, span, text, label)

    def describe(self) -> str:
        return self.local

    def attr(self, name: str, span: Span, text: str) -> Any:
        return self.env.missing(self.local, span, text, self.label)

    def index(self, key: Any, span: Span, text: str) -> Any:
        return self

    def materialize(self) -> Any:
        return self.env.missing(self.local, NOSPAN, "", self.label)


class Resource:
    """A ``resource`` or ``data`` block; its instances come from ``count`` or ``for_each``."""

    def __init__(self, env: ModuleEnv, mode: str, rtype: str, name: str, block: Block, file: str):
        self.env, self.mode, self.type, self.name, self.block, self.file = env, mode, rtype, name, block, file
        self._instances: list[Instance] | TfUnknown | None = None
        self.keyed: str = ""  # "", "count" or "for_each"

    @property
    def address(self) -> str:
        local = f"data.{self.type}.{self.name}" if self.mode == "data" else f"{self.type}.{self.name}"
        return self.env.qualify(local)

    @property
    def span(self) -> Span:
        return self.block.span

    def instances(self) -> list["Instance"] | TfUnknown:
        if self._instances is not None:
            return self._instances
        self._instances = TfUnknown(f"{self.address} refers to itself", "", self.span, error=True)
        attrs = self.block.body.attrs
        sc = Scope(self.env, self.file)
        ev = self.env.ev
        if "count" in attrs:
            self.keyed = "count"
            n = ev.eval(attrs["count"].expr, sc)
            if isinstance(n, TfUnknown) or unknown_in(n) is not None:
                self._instances = _why_not(n, f"{self.address}: count", attrs["count"].value_span)
                return self._instances
            try:
                k = int(n)
                if k < 0 or k != n:
                    raise ValueError
            except (TypeError, ValueError):
                self._instances = TfUnknown(f"count must be a whole number >= 0, not {n!r}",
                                            ev.text(attrs["count"].expr, self.file), attrs["count"].value_span,
                                            error=True)
                return self._instances
            if k > TF_MAX_COUNT:
                # Checked before a single instance is made: count = 1000000000 hung nsgsolve.
                raise InputError.single("E696", f"{self.address}: count {n} is more instances than nsgsolve expands "
                                                f"({TF_MAX_COUNT:,})", attrs["count"].value_span,
                                        "Azure's own limits (5,000 NSGs, 1,000 rules per NSG) are far below; check the "
                                        "count expression")
            self._instances = [Instance(self, i, None) for i in range(k)]
        elif "for_each" in attrs:
            self.keyed = "for_each"
            coll = ev.eval(attrs["for_each"].expr, sc)
            if isinstance(coll, Obj):
                coll = coll.materialize()
            if unknown_in(coll) is not None and not isinstance(coll, (dict, list)):
                self._instances = _why_not(coll, f"{self.address}: for_each", attrs["for_each"].value_span)
                return self._instances
            if isinstance(coll, dict):
                self._instances = [Instance(self, k, v) for k, v in coll.items()]
            elif isinstance(coll, list):
                bad = [x for x in coll if not isinstance(x, str)]
                if bad:
                    u = unknown_in(bad)
                    self._instances = _why_not(u, f"{self.address}: for_each", attrs["for_each"].value_span) \
                        if u is not None else TfUnknown("for_each over a list needs a set of strings (toset([...]))",
                                                        ev.text(attrs["for_each"].expr, self.file),
                                                        attrs["for_each"].value_span, error=True)
                    return self._instances
                self._instances = [Instance(self, k, k) for k in sorted(set(coll))]
            else:
                self._instances = TfUnknown(f"for_each needs a map or a set of strings, not {coll!r}",
                                            ev.text(attrs["for_each"].expr, self.file), attrs["for_each"].value_span,
                                            error=True)
        else:
            self._instances = [Instance(self, None, None)]
        return self._instances

    def value(self) -> Any:
        """What ``type.name`` means in an expression: the instance, or a list/map of instances."""
        inst = self.instances()
        if isinstance(inst, TfUnknown):
            return inst
        if self.keyed == "count":
            return list(inst)
        if self.keyed == "for_each":
            return {str(i.key): i for i in inst}
        return inst[0]


def _why_not(v: Any, what: str, span: Span) -> TfUnknown:
    u = unknown_in(v) if not isinstance(v, TfUnknown) else v
    if u is None:
        return TfUnknown(f"{what} cannot be evaluated", "", span, error=True)
    return TfUnknown(f"{what} depends on a value not known offline ({u.reason})", u.expr, u.span if u.span.line
                     else span, None, getattr(u, "vars", ()), getattr(u, "error", False))


class Instance(Obj):
    """One instance of a resource: attributes evaluated on demand, with ``count.index`` / ``each`` in scope."""

    def __init__(self, res: Resource, key: Any, each_value: Any):
        self.res, self.key, self.each_value = res, key, each_value
        self._cache: dict[str, Any] = {}
        self._busy: set[str] = set()

    @property
    def type(self) -> str:
        return self.res.type

    @property
    def address(self) -> str:
        a = self.res.address
        if self.key is None:
            return a
        return f"{a}[{self.key}]" if isinstance(self.key, int) else f'{a}["{self.key}"]'

    @property
    def span(self) -> Span:
        return self.res.span

    def describe(self) -> str:
        return self.address

    def scope(self) -> Scope:
        names: dict[str, Any] = {}
        if self.res.keyed == "count":
            names["count"] = {"index": self.key}
        elif self.res.keyed == "for_each":
            names["each"] = {"key": self.key, "value": self.each_value}
        return Scope(self.res.env, self.res.file, names)

    def view(self) -> "BlockView":
        return BlockView(self.res.block.body, self.scope(), self.address, self.res.env)

    def attr(self, name: str, span: Span, text: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        if name in self._busy:
            raise _Fail(f"{self.address}.{name} refers to itself")
        self._busy.add(name)
        try:
            v = self._attr(name, span, text)
        finally:
            self._busy.discard(name)
        if not (isinstance(v, TfUnknown) and not v.error and v.expr == text):
            self._cache[name] = v  # an unknown made for this reference keeps this reference's place
        return v

    def _attr(self, name: str, span: Span, text: str) -> Any:
        body = self.res.block.body
        if name == "id":
            return self._id(span, text)
        if name in body.attrs:
            return self.view().value(name)
        if body.blocks_of(name) or any(b.type == "dynamic" and b.labels == [name] for b in body.blocks):
            blocks = self.view().blocks(name)
            if isinstance(blocks, TfUnknown):  # a dynamic block over a collection not known offline
                return blocks
            return [b.as_value() for b in blocks]
        if name == "name" and self.res.mode == "resource":
            raise _Fail(f"{self.address} has no name")
        what = "data source" if self.res.mode == "data" else "resource"
        return TfUnknown(f"{self.address}.{name} is computed at apply ({what} attribute not in the configuration)",
                         text, span, self.res.name)

    def _id(self, span: Span, text: str) -> Any:
        t = self.type
        if t in _ASSOC_ID:
            return self.view().value(_ASSOC_ID[t])
        if t == "azurerm_resource_group":
            n = self.view().value("name")
            return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{_name_text(n, 'resourceGroup')}"
        child = _CHILD_ID.get(t)
        if child is not None:
            parent = self.view().value(child[0])
            if not isinstance(parent, str):
                return parent if isinstance(parent, TfUnknown) else TfUnknown(
                    f"{self.address}.id is assigned at apply", text, span, self.res.name)
            return f"{parent}/{child[1]}/{_name_text(self.view().value('name'), self.address)}"
        spec = _ID_PATH.get(t)
        if spec is None:
            return TfUnknown(f"{self.address}.id is assigned at apply", text, span, self.res.name)
        rtype, fields = spec
        names = []
        for f in fields:
            v = self.view().value(f)
            if isinstance(v, TfUnknown) and v.error:
                return v
            names.append(_name_text(v, f"{self.address}.{f}"))
        rg = self.view().value("resource_group_name") if "resource_group_name" in self.res.block.body.attrs else "rg"
        return arm_id(rtype, names, _name_text(rg, "resourceGroup"))

    def materialize(self) -> Any:
        body = self.res.block.body
        out: dict[str, Any] = {k: self.attr(k, NOSPAN, "") for k in body.attrs}
        out["id"] = self.attr("id", NOSPAN, "")
        return out


def _name_text(v: Any, fallback: str) -> str:
    """A name for an id: the value, the unknown's placeholder, or the Terraform address it comes from."""
    if isinstance(v, str):
        return v
    if isinstance(v, TfUnknown) and v.placeholder:
        return v.placeholder
    return fallback


class BlockView:
    """A block body read in a scope: the interface :mod:`tfconvert` reads resources through."""

    def __init__(self, body: Body, scope: Scope, address: str, env: ModuleEnv, span: Span | None = None):
        self.body, self.sc, self.address, self.env = body, scope, address, env
        self.span = span or body.span

    def has(self, name: str) -> bool:
        return name in self.body.attrs

    def value(self, name: str) -> Any:
        a = self.body.attrs.get(name)
        if a is None:
            return None
        return self.env.ev.eval(a.expr, Scope(self.sc.env, a.span.file, self.sc.names))

    def span_of(self, name: str) -> Span:
        a = self.body.attrs.get(name)
        return a.value_span if a is not None else self.span

    def blocks(self, name: str) -> list["BlockView"] | TfUnknown:
        """Nested blocks of a type, static ones and those a ``dynamic`` block generates, in source order."""
        out: list[BlockView] = []
        for b in self.body.blocks:
            if b.type == name:
                out.append(BlockView(b.body, self.sc, f"{self.address}.{name}[{len(out)}]", self.env, b.span))
            elif b.type == "dynamic" and b.labels == [name]:
                gen = self._dynamic(b, name, len(out))
                if isinstance(gen, TfUnknown):
                    return gen
                out += gen
        return out

    def _dynamic(self, b: Block, name: str, start: int) -> list["BlockView"] | TfUnknown:
        fe = b.body.attrs.get("for_each")
        content = next(iter(b.body.blocks_of("content")), None)
        if fe is None or content is None:
            return TfUnknown(f'dynamic "{name}" needs for_each and a content block', "", b.span, error=True)
        it_attr = b.body.attrs.get("iterator")
        iterator = name
        if it_attr is not None:
            from nsgsolve.importers.hcl import ident_text

            node = it_attr.expr
            while hasattr(node, "data") and node.data == "expr_term":
                node = [c for c in node.children if hasattr(c, "data")][0]
            iterator = ident_text(node) or name
        coll = self.env.ev.eval(fe.expr, Scope(self.sc.env, fe.span.file, self.sc.names))
        if isinstance(coll, Obj):
            coll = coll.materialize()
        if isinstance(coll, TfUnknown) or not isinstance(coll, (list, dict)):
            if isinstance(coll, TfUnknown) or coll is None:
                return _why_not(coll, f'{self.address}: dynamic "{name}" for_each', fe.value_span) \
                    if coll is not None else []
            return TfUnknown(f'dynamic "{name}" for_each needs a list, set or map', "", fe.value_span, error=True)
        pairs = list(coll.items()) if isinstance(coll, dict) else list(enumerate(coll))
        out: list[BlockView] = []
        for k, v in pairs:
            sc = self.sc.child(**{iterator: {"key": k, "value": v}})
            out.append(BlockView(content.body, sc, f"{self.address}.{name}[{start + len(out)}]", self.env,
                                 content.span))
        return out

    def as_value(self) -> dict[str, Any]:
        out = {k: self.value(k) for k in self.body.attrs}
        for b in self.body.blocks:
            t = b.labels[0] if b.type == "dynamic" and b.labels else b.type
            if t not in out:
                bl = self.blocks(t)
                out[t] = bl if isinstance(bl, TfUnknown) else [x.as_value() for x in bl]
        return out


class ModuleCall(Obj):
    """A ``module`` block: a local module read with the call's arguments; anything else cannot be read."""

    def __init__(self, parent: ModuleEnv, name: str, block: Block, file: str):
        self.parent, self.name, self.block, self.file = parent, name, block, file
        self._children: list[ModuleEnv] | None = None
        self._keys: list[Any] = []
        self._keyed = ""
        self.remote: str | None = None

    def describe(self) -> str:
        return f"module.{self.name}"

    def _source(self) -> tuple[str | None, str]:
        a = self.block.body.attrs.get("source")
        if a is None:
            return None, ""
        v = self.parent.ev.eval(a.expr, Scope(_NoRefs(), a.span.file))
        return (v if isinstance(v, str) else None), self.parent.ev.text(a.expr, a.span.file)

    def children(self) -> list[ModuleEnv]:
        if self._children is not None:
            return self._children
        self._children = []
        src, text = self._source()
        loader = self.parent.loader
        if src is None:
            return self._children
        local = src.startswith("./") or src.startswith("../")
        directory = os.path.normpath(os.path.join(self.parent.path, src)) if local else \
            loader.downloaded_module(self.parent, self.name)
        if directory is None:
            self.remote = src
            loader.bag.warning("W621", f"module '{self.name}' comes from '{src}', which nsgsolve cannot read offline; "
                                       f"what it creates is not analysed and its outputs are left open",
                               self.block.span, "run 'terraform init' so that .terraform/modules holds a copy "
                                                "nsgsolve reads, or import that module's resources separately")
            return self._children
        files = loader.module_files(directory, self.block.span)
        attrs = self.block.body.attrs
        sc = Scope(self.parent, self.file)
        instances: list[tuple[Any, dict[str, Any]]] = [(None, {})]
        if "count" in attrs or "for_each" in attrs:
            key = "count" if "count" in attrs else "for_each"
            v = self.parent.ev.eval(attrs[key].expr, sc)
            if unknown_in(v) is not None:
                u = _why_not(v, f"module.{self.name}: {key}", attrs[key].value_span)
                loader.bag.error("E664", f"cannot expand module.{self.name}: {u.reason}", u.span,
                                 "give the variables it depends on with --var or a .tfvars file")
                return self._children
            self._keyed = key
            if key == "count":
                instances = [(i, {"count": {"index": i}}) for i in range(int(v))]
            else:
                pairs = v.items() if isinstance(v, dict) else [(x, x) for x in sorted(set(v))]
                instances = [(k, {"each": {"key": k, "value": x}}) for k, x in pairs]
        for k, names in instances:
            values = {}
            csc = Scope(self.parent, self.file, names)
            for an, a in attrs.items():
                if an in ("source", "version", "count", "for_each", "providers", "depends_on"):
                    continue
                values[an] = VarValue(attr=a, scope=csc, origin=f"module.{self.name}")
            addr = self.parent.qualify(f"module.{self.name}")
            if k is not None:
                addr += f"[{k}]" if isinstance(k, int) else f'["{k}"]'
            self._keys.append(k)
            self._children.append(ModuleEnv(loader, directory, files, values, addr, self.parent.root_dir))
        return self._children

    def _outputs(self, env: ModuleEnv) -> dict[str, Any]:
        out = {}
        for name, a in env.outputs.items():
            out[name] = env.ev.eval(a.expr, Scope(env, a.span.file)) if a is not None else None
        return out

    def value(self) -> Any:
        kids = self.children()
        if self.remote is not None or not kids and not self._keyed:
            return TfUnknown(f"outputs of module '{self.name}' ({self.remote or 'not read'}) are not known offline",
                             f"module.{self.name}", self.block.span, f"module.{self.name}")
        if self._keyed == "count":
            return [_Outputs(e) for e in kids]
        if self._keyed == "for_each":
            return {str(k): _Outputs(e) for k, e in zip(self._keys, kids)}
        return _Outputs(kids[0])


class _Outputs(Obj):
    def __init__(self, env: ModuleEnv):
        self.env = env

    def describe(self) -> str:
        return self.env.address

    def attr(self, name: str, span: Span, text: str) -> Any:
        a = self.env.outputs.get(name)
        if a is None:
            raise _Fail(f"{self.env.address} has no output '{name}'")
        return self.env.ev.eval(a.expr, Scope(self.env, a.span.file))

    def materialize(self) -> Any:
        return {n: self.attr(n, NOSPAN, "") for n in self.env.outputs}


# ---------------------------------------------------------------------- loading


@dataclass
class TfLoader:
    """Reads the root module and its local modules, with the variable values from outside."""

    bag: DiagnosticBag = field(default_factory=DiagnosticBag)
    evaluators: list[Evaluator] = field(default_factory=list)
    unset_vars: dict[str, Span] = field(default_factory=dict)
    missing: dict[str, Span] = field(default_factory=dict)
    bodies: dict[str, Body] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    _module_files: dict[str, dict[str, str]] = field(default_factory=dict)
    root_dir: str = "."
    _depth: int = 0

    def module_files(self, directory: str, span: Span) -> dict[str, str]:
        if directory in self._module_files:
            return self._module_files[directory]
        d = Path(directory)
        if not d.is_dir():
            raise InputError.single("E667", f"module source '{directory}' is not a directory", span,
                                    "a local module's source is a directory path starting with ./ or ../")
        files = {str(p): _read_text(p) for p in tf_files(d)}
        if not files:
            raise InputError.single("E667", f"module source '{directory}' holds no .tf file", span)
        if len(self._module_files) > 200:
            raise InputError.single("E667", "more than 200 module directories: a module calls itself?", span)
        self._module_files[directory] = files
        self.texts.update(files)
        return files

    def downloaded_module(self, parent: ModuleEnv, name: str) -> str | None:
        """Where ``terraform init`` put a registry/git module, from .terraform/modules/modules.json."""
        manifest = Path(self.root_dir) / ".terraform" / "modules" / "modules.json"
        if not manifest.is_file():
            return None
        try:
            # Bounded (E010 stops a huge file); a damaged manifest is one without this module.
            doc = json.loads(read_input_bytes(manifest, "Terraform module manifest").decode("utf-8"))
        except (ValueError, RecursionError):
            return None
        key = ".".join(p for p in (parent.address.replace("module.", "") if parent.address else "", name) if p)
        for m in doc.get("Modules", []) if isinstance(doc, dict) else []:
            if isinstance(m, dict) and m.get("Key") == key and isinstance(m.get("Dir"), str):
                d = os.path.join(self.root_dir, m["Dir"])
                if os.path.isdir(d):
                    return d
        return None


def variable_types(files: dict[str, str]) -> dict[str, str | None]:
    """Declared variable types of the root module (for reading --var values as Terraform does)."""
    out: dict[str, str | None] = {}
    for f, text in files.items():
        for b in parse_file(text, f).blocks:
            if b.type == "variable" and len(b.labels) == 1:
                out[b.labels[0]] = _type_text(b.body.attrs.get("type"))
    return out


def load_root(files: dict[str, str], root_dir: str, var_files: list[str], cli_vars: list[str],
              auto_tfvars: list[str]) -> tuple[TfLoader, ModuleEnv]:
    """The root module with its variable values, in Terraform's precedence."""
    loader = TfLoader(root_dir=root_dir)
    loader.texts.update(files)
    values: dict[str, VarValue] = {}
    for vf in auto_tfvars + list(var_files):
        text = _read_text(vf)
        loader.texts[vf] = text
        values.update(read_tfvars_json(vf, text) if vf.endswith(".json") else read_tfvars(vf, text))
    env = ModuleEnv(loader, root_dir, files, {}, "", root_dir)
    types = {n: _type_text(b.body.attrs.get("type")) for n, b in env.variables.items()}
    for item in cli_vars:
        name, v = parse_cli_var(item, types.get(item.partition("=")[0].strip()))
        if types and name not in types:
            from nsgsolve.errors import UsageError, did_you_mean

            raise UsageError(f"--var {name}: no variable '{name}' is declared in the configuration",
                             did_you_mean(name, sorted(types)))
        values[name] = VarValue(value=v, origin="--var")
    env.values.update(values)  # read lazily, so setting them after the files are parsed is the same
    return loader, env


# ---------------------------------------------------------------------- entry point


def tf_files(directory: Path) -> list[Path]:
    """A module directory's configuration files: ``*.tf`` and ``*.tf.json`` (Terraform's JSON syntax)."""
    return sorted([*directory.glob("*.tf"), *directory.glob("*.tf.json")])


def parse_file(text: str, path: str) -> Body:
    """One configuration file, in HCL or (``.tf.json``) Terraform's JSON syntax."""
    return parse_json_body(text, path) if path.endswith(".tf.json") else parse_body(text, path)


def is_terraform_path(path: str) -> bool:
    """A .tf file, a .tfvars file, or a directory holding .tf files."""
    p = Path(path)
    if p.is_dir():
        return bool(tf_files(p))
    return path.endswith((".tf", ".tf.json", ".tfvars", ".tfvars.json"))


def _auto_tfvars(directory: Path) -> list[str]:
    names = ["terraform.tfvars", "terraform.tfvars.json"]
    out = [str(directory / n) for n in names if (directory / n).is_file()]
    out += sorted(str(p) for p in directory.iterdir() if p.is_file() and
                  (p.name.endswith(".auto.tfvars") or p.name.endswith(".auto.tfvars.json")))
    return out


def roots_of(paths: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The root modules (directory, its .tf files) the inputs name, and .tfvars files given among them."""

    roots: list[tuple[str, list[str]]] = []
    loose: list[str] = []
    tfvars: list[str] = []
    for p in paths:
        pp = Path(p)
        if pp.is_dir():
            files = [str(f) for f in tf_files(pp)]
            if not files:
                raise InputError.single("E665", f"{p} is a directory with no .tf file", Span(p, 0, 0),
                                        "give a Terraform configuration directory, .tf files, or a policy file")
            roots.append((str(pp), files))
        elif p.endswith((".tfvars", ".tfvars.json")):
            tfvars.append(p)
        else:
            loose.append(p)
    if loose:
        dirs = {str(Path(f).parent) for f in loose}
        roots.append((dirs.pop() if len(dirs) == 1 else ".", loose))
    return roots, tfvars


def import_configuration(paths: list[str], builder: Any, var_files: list[str] | None = None,
                         cli_vars: list[str] | None = None) -> DiagnosticBag:
    """Feed every azurerm network resource of the configuration(s) to ``builder``; returns Terraform's own
    diagnostics (W620-W629 warnings, E66x errors)."""
    from nsgsolve.importers.tfconvert import RELEVANT, TfConverter

    roots, tfvars = roots_of(paths)
    if not roots:
        raise InputError.single("E665", "only .tfvars files were given; add the configuration they belong to",
                                Span(paths[0], 0, 0))
    bag = DiagnosticBag()
    conv = TfConverter(builder, bag)
    unset: dict[str, Span] = {}
    for root_dir, files in roots:
        texts = {f: _read_text(f) for f in files}
        auto = _auto_tfvars(Path(root_dir)) if Path(root_dir).is_dir() else []
        auto = [a for a in auto if a not in tfvars and a not in (var_files or [])]
        loader, env = load_root(texts, root_dir, list(tfvars) + list(var_files or []), list(cli_vars or []), auto)
        for res in env.all_resources():
            if res.type not in RELEVANT:
                continue
            insts = res.instances()
            if isinstance(insts, TfUnknown):
                conv._record(insts, f"{res.address} ({res.env.resources and 'count/for_each'})")
                code = "E661" if insts.error else "E664"
                bag.error(code, f"cannot expand {res.address}: {insts.reason}", insts.span if insts.span.line
                          else res.span, "fix the expression" if insts.error else
                          "give the variables it depends on with --var or a .tfvars file")
                continue
            for inst in insts:
                conv.add(res.type, inst.view())
        conv.finish()
        bag.items += loader.bag.items
        unset.update(loader.unset_vars)
        unset.update({MISSING + k: v for k, v in loader.missing.items()})
        builder.sources += list(texts)
    conv.warn_unset(unset)
    return bag
