"""``terraform show -json`` output: a state (``values``) or a plan (``planned_values``), read as exact values.

A state holds what Azure created, ids and dynamic addresses included. A plan holds what will be created;
values known only after apply (an id, a dynamic address) are missing there and flagged in the resource's
``change.after_unknown``. An id is then taken from the configuration the plan embeds: the expression's
``references`` name the resource it comes from, whose id nsgsolve writes from that resource's planned names,
as Azure will. Anything else unknown stays unknown (and is read as the configuration importer reads it).
"""

from __future__ import annotations

import re
from typing import Any

from nsgsolve.errors import DiagnosticBag, InputError
from nsgsolve.model import NOSPAN, Span
from nsgsolve.importers.jsonpos import span_in
from nsgsolve.importers.terraform import _CHILD_ID, _ID_PATH
from nsgsolve.importers.tfconvert import arm_id
from nsgsolve.importers.tfconvert import RELEVANT, TfConverter
from nsgsolve.importers.tfexpr import TfUnknown


class _Ctx:
    def __init__(self, doc: dict, filename: str):
        self.doc, self.filename = doc, filename
        self.ids: dict[str, str] = {}  # instance address → id (given, or written from names)
        self.by_base: dict[str, list[str]] = {}  # address without index → instance addresses
        self.unknown: dict[str, Any] = {}  # instance address → after_unknown
        self.config: dict[str, dict] = {}  # configuration address (module path + type.name) → expressions
        self.calls: dict[str, tuple[str, dict]] = {}  # "module.a." → (parent prefix, the call's expressions)
        for rc in doc.get("resource_changes") or []:
            if isinstance(rc, dict) and isinstance(rc.get("change"), dict):
                self.unknown[str(rc.get("address"))] = rc["change"].get("after_unknown") or {}
        conf = doc.get("configuration")
        if isinstance(conf, dict):
            self._config(conf.get("root_module"), "")

    def _config(self, mod: Any, prefix: str) -> None:
        if not isinstance(mod, dict):
            return
        for r in mod.get("resources") or []:
            if isinstance(r, dict) and r.get("mode", "managed") == "managed":
                self.config[prefix + str(r.get("address"))] = r.get("expressions") or {}
        for name, call in (mod.get("module_calls") or {}).items():
            if isinstance(call, dict):
                self.calls[f"{prefix}module.{name}."] = (prefix, call.get("expressions") or {})
                self._config(call.get("module"), f"{prefix}module.{name}.")

    def resolve(self, refs: Any, prefix: str, index: str, depth: int = 0) -> str | None:
        """The id an expression's ``references`` lead to: a resource's ``.id``, or a module variable followed
        to the caller's expression."""
        for ref in refs or []:
            if not isinstance(ref, str):
                continue
            if ref.startswith("var.") and depth < 20:
                call = self.calls.get(prefix)
                if call is not None:
                    e = call[1].get(ref[4:])
                    got = self.resolve(e.get("references") if isinstance(e, dict) else None, call[0], "", depth + 1)
                    if got is not None:
                        return got
                continue
            if not ref.endswith(".id"):
                continue
            target = prefix + ref[:-3]
            got = self.ids.get(target)
            if got is None:
                cands = self.by_base.get(_base(target), [])
                same = [c for c in cands if index and c.endswith(index)]
                if len(cands) == 1:
                    got = self.ids.get(cands[0])
                elif len(same) == 1:  # azurerm_network_interface.x[count.index].id
                    got = self.ids.get(same[0])
            if got is not None:
                return got
        return None


def _base(address: str) -> str:
    """``module.a["x"].azurerm_subnet.s[0]`` → ``module.a.azurerm_subnet.s`` (configuration addresses)."""
    return re.sub(r"\[[^\]]*\]", "", address)


def _module_prefix(address: str) -> str:
    parts = address.rsplit(".", 2)
    return address[: len(address) - len(".".join(parts[-2:]))] if len(parts) == 3 else ""


class JsonView:
    """One resource (or nested block) of plan/state JSON, with the interface :class:`TfConverter` reads."""

    def __init__(self, ctx: _Ctx, values: dict, address: str, res_address: str, span: Span, unknown: Any,
                 exprs: Any):
        self.ctx, self.values, self.address, self.res_address = ctx, values, address, res_address
        self.span, self.unknown, self.exprs = span, unknown if isinstance(unknown, dict) else {}, \
            exprs if isinstance(exprs, dict) else {}

    def has(self, name: str) -> bool:
        return name in self.values or self.unknown.get(name) is True

    def span_of(self, name: str) -> Span:
        return span_in(self.values, name, self.span)

    def value(self, name: str) -> Any:
        if name in self.values and self.values[name] is not None:
            return self.values[name]
        if self.unknown.get(name) is True:
            return self._from_reference(name)
        return self.values.get(name)

    def _from_reference(self, name: str) -> Any:
        refs = (self.exprs.get(name) or {}).get("references") if isinstance(self.exprs.get(name), dict) else None
        what = f"{self.address}.{name}"
        m = re.search(r"(\[[^\]]*\])$", self.res_address)
        prefix, index = _base(_module_prefix(self.res_address)), m.group(1) if m else ""
        if name.endswith("_ids") and isinstance(refs, list):
            # A list of ids (network_group_ids, configuration_ids): every id referenced, or unknown.
            ids = [self.ctx.resolve([r], prefix, index) for r in refs if isinstance(r, str) and r.endswith(".id")]
            if ids and all(i is not None for i in ids):
                return list(dict.fromkeys(ids))
            return TfUnknown(f"{what} is known only after apply", what, self.span_of(name), None)
        got = self.ctx.resolve(refs, prefix, index)
        if got is not None:
            return got
        return TfUnknown(f"{what} is known only after apply", what, self.span_of(name), None)

    def blocks(self, name: str) -> list["JsonView"]:
        v = self.values.get(name)
        if not isinstance(v, list):
            return []
        u, e = self.unknown.get(name), self.exprs.get(name)
        un = u if isinstance(u, list) else []
        ex = e if isinstance(e, list) else []
        return [JsonView(self.ctx, b, f"{self.address}.{name}[{i}]", self.res_address, span_in(v, i, self.span),
                         un[i] if i < len(un) else {}, ex[i] if i < len(ex) else (ex[0] if len(ex) == 1 else {}))
                for i, b in enumerate(v) if isinstance(b, dict)]


def _resources(mod: Any) -> list[dict]:
    out: list[dict] = []
    if not isinstance(mod, dict):
        return out
    out += [r for r in mod.get("resources") or [] if isinstance(r, dict)]
    for c in mod.get("child_modules") or []:
        out += _resources(c)
    return out


def import_terraform_json(doc: dict, filename: str, builder: Any) -> DiagnosticBag:
    """Feed a plan's or state's azurerm network resources to ``builder``."""
    state = "values" in doc and "planned_values" not in doc
    section = doc.get("values") if state else doc.get("planned_values")
    if not isinstance(section, dict):
        raise InputError.single("E666", f"{filename}: terraform JSON without 'values' or 'planned_values'",
                                getattr(doc, "span", Span(filename, 1, 1)),
                                "give the output of 'terraform show -json' (state) or 'terraform show -json PLANFILE'")
    ctx = _Ctx(doc, filename)
    resources = [r for r in _resources(section.get("root_module")) if r.get("mode", "managed") == "managed"]
    for r in resources:
        addr = str(r.get("address"))
        ctx.by_base.setdefault(_base(addr), []).append(addr)
        vals = r["values"] if isinstance(r.get("values"), dict) else {}
        if isinstance(vals.get("id"), str) and vals["id"]:
            ctx.ids[addr] = vals["id"]
        elif r.get("type") in _ID_PATH:
            rtype, fields = _ID_PATH[r["type"]]
            names = [n for f in fields if isinstance(n := vals.get(f), str) and n]
            if len(names) == len(fields):
                ctx.ids[addr] = arm_id(rtype, names, str(vals.get("resource_group_name") or "rg"))
    # Network manager children (groups, members, configurations, collections, rules): their id is their
    # parent's id and their name, the parent's id possibly itself known only from the configuration's
    # references; a chain is at most four deep.
    children = [r for r in resources if r.get("type") in _CHILD_ID and str(r.get("address")) not in ctx.ids]
    for _ in range(5):
        for r in children:
            addr = str(r.get("address"))
            if addr in ctx.ids:
                continue
            vals = r["values"] if isinstance(r.get("values"), dict) else {}
            attr, seg = _CHILD_ID[r["type"]]
            view = JsonView(ctx, vals, addr, addr, NOSPAN, ctx.unknown.get(addr, {}), ctx.config.get(_base(addr), {}))
            parent, name = view.value(attr), vals.get("name")
            if isinstance(parent, str) and isinstance(name, str) and name:
                ctx.ids[addr] = f"{parent}/{seg}/{name}"
    bag = DiagnosticBag()
    conv = TfConverter(builder, bag, live=state)
    n = 0
    for r in resources:
        t = r.get("type")
        if t not in RELEVANT:
            continue
        addr = str(r.get("address"))
        vals = r.get("values")
        if not isinstance(vals, dict):
            continue
        span = getattr(r, "span", NOSPAN)
        conv.add(t, JsonView(ctx, vals, addr, addr, span if span.line else Span(filename, 1, 1),
                             ctx.unknown.get(addr, {}), ctx.config.get(_base(addr), {})))
        n += 1
    conv.finish()
    if n == 0:
        builder.note(f"{filename}: the Terraform {'state' if state else 'plan'} has no azurerm network resources")
    builder.sources.append(filename)
    return bag
