"""ARM templates: resources that matter for NSG semantics, with expressions and copy loops evaluated.

Read: NSGs (inline ``securityRules`` and child ``networkSecurityGroups/securityRules`` resources, nested or
top-level, named ``nsg/rule``), VNets with subnets, peerings and NSG associations, standalone
``virtualNetworks/subnets`` and ``virtualNetworkPeerings`` resources, NICs (IP configurations, ASG
membership, NIC-level NSG), ASGs, and ``Microsoft.Resources/deployments`` with an inline template (both
``inner`` and ``outer`` expression scope). Resource ``copy`` loops and property ``copy`` loops are
expanded; ``condition: false`` resources are left out.

Other resources are not evaluated at all, so an expression nsgsolve cannot compute in, say, a VM's
``osProfile`` never stops an import. Linked templates (``templateLink``) cannot be read offline; the
policy notes say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nsgsolve.errors import InputError
from nsgsolve.model import NOSPAN, Span
from nsgsolve.importers.armexpr import (
    Evaluator,
    Placeholder,
    Unknown,
    _copy_count,
    _Fail,
    _to_int,
    find_unknown,
    resource_id,
)
from nsgsolve.importers.convert import (
    ASG_TYPE,
    AVNM_TYPES,
    NM_COLLECTION_TYPE,
    NM_CONFIG_TYPE,
    NM_GROUP_TYPE,
    NM_MEMBER_TYPE,
    NM_RULE_TYPE,
    NIC_TYPE,
    NSG_TYPE,
    NAMES_USE,
    PEERING_TYPE,
    RULE_TYPE,
    SUBNET_TYPE,
    VNET_TYPE,
    PolicyBuilder,
    get,
    props_of,
)
from nsgsolve.importers.jsonpos import JArray, JObject, span_in

DEPLOYMENT_TYPE = "microsoft.resources/deployments"
VMSS_TYPE = "microsoft.compute/virtualmachinescalesets"
RES_LOOP = "\0resource"  # the loops key copyIndex() without a name reads (see armexpr)
RELEVANT = {NSG_TYPE, RULE_TYPE, VNET_TYPE, SUBNET_TYPE, PEERING_TYPE, NIC_TYPE, ASG_TYPE, DEPLOYMENT_TYPE} | AVNM_TYPES


def is_template(doc: Any) -> bool:
    if not isinstance(doc, dict) or "resources" not in doc:
        return False
    schema = str(doc.get("$schema", "")).lower()
    return "deploymenttemplate" in schema or "contentVersion" in doc or "parameters" in doc or "variables" in doc


def is_parameters_file(doc: Any) -> bool:
    if not isinstance(doc, dict) or "resources" in doc:
        return False
    schema = str(doc.get("$schema", "")).lower()
    return "deploymentparameters" in schema


def parameter_values(doc: dict, filename: str) -> dict[str, Any]:
    """Values of a deployment parameters file (``{"parameters": {"x": {"value": ...}}}``)."""
    params = doc.get("parameters") if isinstance(doc, dict) else None
    if not isinstance(params, dict):
        raise InputError.single("E602", "not a parameters file (no top-level 'parameters' object)",
                                getattr(doc, "span", Span(filename, 0, 0)))
    out: dict[str, Any] = {}
    for k, v in params.items():
        span = span_in(params, k, Span(filename, 0, 0))
        if isinstance(v, dict) and "value" in v:
            out[k] = v["value"]
        elif isinstance(v, dict) and "reference" in v:
            out[k] = Unknown(f"parameter '{k}' is read from Key Vault at deployment", "", span)
        else:
            out[k] = v
    return out


@dataclass
class _Expanded:
    type: str  # lower case, fully qualified
    name: Any  # str or Unknown
    raw: dict
    loops: dict
    path: str
    span: Span


def _subset(raw: dict, drop: tuple[str, ...]) -> JObject:
    out = JObject({k: v for k, v in raw.items() if k not in drop}, span=getattr(raw, "span", NOSPAN),
                  spans={k: s for k, s in getattr(raw, "spans", {}).items() if k not in drop})
    return out


class TemplateImporter:
    def __init__(self, builder: PolicyBuilder, filename: str, lenient: bool = False):
        self.lenient = lenient
        self.b = builder
        self.filename = filename
        self.evaluators: list[Evaluator] = []

    def run(self, doc: dict, values: dict[str, Any], path: str = "", outer: Evaluator | None = None,
            loops: dict | None = None) -> None:
        if outer is None:
            params = doc.get("parameters") or {}
            variables = doc.get("variables") or {}
            ev = Evaluator(self.filename, params if isinstance(params, dict) else {}, values,
                           variables if isinstance(variables, dict) else {}, lenient=self.lenient)
            ev.set_functions(doc.get("functions"))
            copies = variables.get("copy") if isinstance(variables, dict) else None
            if isinstance(copies, list):
                ev.set_variable_loops(copies)
            self.evaluators.append(ev)
        else:
            ev = outer
        resources = doc.get("resources")
        rpath = f"{path}resources"
        if isinstance(resources, dict):  # languageVersion 2.0: symbolic names
            items = [(f"{rpath}['{k}']", v, span_in(resources, k)) for k, v in resources.items()]
        elif isinstance(resources, list):
            items = [(f"{rpath}[{i}]", v, span_in(resources, i)) for i, v in enumerate(resources)]
        else:
            raise InputError.single("E602", f"{rpath} must be an array of resources", getattr(doc, "span", NOSPAN))
        expanded: list[_Expanded] = []
        for p, r, s in items:
            self._expand(ev, r, p, s, None, None, dict(loops or {}), expanded)
        for e in expanded:
            if isinstance(e.name, str):
                names = e.name.split("/")
                if len(names) == e.type.count("/"):
                    canon = _canonical_type(get(e.raw, "type"), e.type)
                    try:
                        ev.resources_by_id[resource_id(canon, names).lower()] = e.raw
                    except _Fail:
                        pass
        for e in expanded:
            self._import(ev, e)

    # -------------------------------------------------------------- resources and copy loops

    def _expand(self, ev: Evaluator, r: Any, path: str, span: Span, ptype: str | None, pname: Any, loops: dict,
                out: list[_Expanded]) -> None:
        if not isinstance(r, dict):
            return
        span = getattr(r, "span", span)
        t = ev.value(get(r, "type"), r.span_of("type") if isinstance(r, JObject) else span, loops)
        if not isinstance(t, str):
            return
        # A child resource may write its type relative to its parent ("securityRules") or in full.
        relative = ptype is not None and "." not in t.split("/")[0]
        full_t = f"{ptype}/{t}" if relative else t
        copy = get(r, "copy")
        if isinstance(copy, dict):
            cname = ev.value(get(copy, "name"), span, loops)
            count = ev.value(get(copy, "count"), span_in(copy, "count", span), loops)
            if isinstance(count, Unknown) or isinstance(cname, Unknown):
                if full_t.lower() in RELEVANT:
                    self.b.unknown(count if isinstance(count, Unknown) else cname, f"{path}.copy.count", span)
                return
            try:
                n = _to_int(count)
            except _Fail as e:
                self.b.bag.error("E611", f"{path}.copy.count: {e}", span_in(copy, "count", span))
                return
            _copy_count(n, f"{path}.copy", span_in(copy, "count", span))
            instances = [{**loops, str(cname): i, RES_LOOP: i} for i in range(n)]
        else:
            instances = [loops]
        for lp in instances:
            if "condition" in r:
                cond = ev.value(r["condition"], span_in(r, "condition", span), lp)
                if isinstance(cond, Unknown):
                    if full_t.lower() in RELEVANT:
                        self.b.unknown(cond, f"{path}.condition", span_in(r, "condition", span))
                    continue
                if cond is False or (isinstance(cond, str) and cond.lower() == "false"):
                    continue
            name = ev.value(get(r, "name"), span_in(r, "name", span), lp)
            if relative and isinstance(name, str) and isinstance(pname, str):
                name = f"{pname}/{name}"
            if isinstance(pname, Unknown) and relative:
                name = pname
            # Instances of a copy loop share a template path; the index tells them apart in messages.
            ipath = f"{path}[copy {lp[RES_LOOP]}]" if isinstance(copy, dict) else path
            out.append(_Expanded(full_t.lower(), name, r, lp, ipath, span))
            children = get(r, "resources")
            if isinstance(children, list):
                for i, c in enumerate(children):
                    self._expand(ev, c, f"{ipath}.resources[{i}]", span_in(children, i, span), full_t, name, lp, out)

    def _import(self, ev: Evaluator, e: _Expanded) -> None:
        b = self.b
        if e.type == "microsoft.network/virtualnetworkgateways":
            b.note("the template deploys a virtual network gateway: on-premises prefixes it connects are part of "
                   "the VirtualNetwork tag but are not imported")
            return
        if e.type == VMSS_TYPE:
            self._scale_set(ev, e)
            return
        if e.type not in RELEVANT:
            return
        if isinstance(e.name, Unknown):
            b.unknown(e.name, f"{e.path}.name", span_in(e.raw, "name", e.span))
            return
        if not isinstance(e.name, str) or not e.name:
            b.bag.error("E611", f"{e.path}.name is missing", e.span)
            return
        if e.type == DEPLOYMENT_TYPE:
            self._deployment(ev, e)
            return
        obj = ev.value(_subset(e.raw, ("resources", "copy", "condition", "dependsOn")), e.span, e.loops)
        for ph in _names_from_unset(obj):
            b.used_unset(ph, NAMES_USE)
        parts = e.name.split("/")
        expected = e.type.count("/")
        if len(parts) != expected:
            b.bag.error("E611", f"{e.path}.name: '{e.name}' should have {expected} segment(s) for type "
                        f"{get(e.raw, 'type')}", span_in(e.raw, "name", e.span))
            return
        if e.type == NSG_TYPE:
            b.add_nsg(parts[0], obj, e.path, e.span)
        elif e.type == RULE_TYPE:
            b.add_child_rule(parts[0], obj, e.path, e.span)
        elif e.type == VNET_TYPE:
            b.add_vnet(parts[0], obj, e.path, e.span)
        elif e.type == SUBNET_TYPE:
            b.add_subnet(parts[0], parts[1], obj, e.path, e.span)
        elif e.type == PEERING_TYPE:
            b.add_peering(parts[0], obj, e.path, e.span)
        elif e.type == NIC_TYPE:
            b.add_nic(parts[0], obj, e.path, e.span)
        elif e.type == ASG_TYPE:
            b.add_asg(parts[0], e.span)
        elif e.type == NM_GROUP_TYPE:
            b.add_nm_group(parts[0], parts[1], obj, e.path, e.span)
        elif e.type == NM_MEMBER_TYPE:
            b.add_nm_member(parts[0], parts[1], obj, e.path, e.span)
        elif e.type == NM_CONFIG_TYPE:
            b.add_nm_config(parts[0], parts[1], obj, e.path, e.span)
        elif e.type == NM_COLLECTION_TYPE:
            b.add_nm_collection(parts[0], parts[1], parts[2], obj, e.path, e.span)
        elif e.type == NM_RULE_TYPE:
            # The kind sits beside the properties; _subset dropped nothing of it.
            b.add_nm_rule(parts[0], parts[1], parts[2], parts[3], obj, e.path, e.span)

    def _scale_set(self, ev: Evaluator, e: _Expanded) -> None:
        """A VM scale set's NIC configurations: every instance gets a NIC per configuration, in its subnet
        with its NSG and ASGs and a dynamic address. One dynamic NIC per configuration stands for all the
        instances (they share every NSG and ASG, and any of them may get any usable address of the subnet)."""
        b = self.b
        if not isinstance(e.name, str) or not e.name:
            what = e.name.reason if isinstance(e.name, Unknown) else "no name"
            b.note(f"VM scale set at {e.path}: its name cannot be evaluated ({what}); its instances' NICs are not "
                   f"modelled")
            return
        props = get(e.raw, "properties")
        profile = get(get(props, "virtualMachineProfile"), "networkProfile")
        configs = get(profile, "networkInterfaceConfigurations")
        ppath = f"{e.path}.properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations"
        if configs is None:
            b.note(f"VM scale set {e.name}: no networkInterfaceConfigurations (a Flexible scale set's NICs come "
                   f"from its VMs); its instances' NICs are not modelled")
            return
        configs = ev.value(configs, span_in(profile, "networkInterfaceConfigurations", e.span), e.loops)
        if not isinstance(configs, list):
            b._not_list(configs, ppath, e.span)
            return
        cap = ev.value(get(get(e.raw, "sku"), "capacity"), e.span, e.loops)
        capacity = cap if isinstance(cap, int) and not isinstance(cap, bool) else None  # for the note only
        for i, c in enumerate(configs):
            cspan = span_in(configs, i, e.span)
            cname = get(c, "name") if isinstance(c, dict) else None
            for ph in _names_from_unset(c):
                b.used_unset(ph, NAMES_USE)
            if not isinstance(cname, str) or not cname:
                b.bag.error("E611", f"{ppath}[{i}].name is missing", cspan)
                continue
            cprops, _ = props_of(c)
            ipcs = get(cprops, "ipConfigurations")
            if isinstance(ipcs, list):
                # Instance addresses are always assigned by Azure: no configuration of a scale set is static.
                ipcs = JArray([_dynamic(ipc) for ipc in ipcs], span=getattr(ipcs, "span", cspan),
                              spans=list(getattr(ipcs, "spans", [])))
            nic = {"name": f"{e.name}.{cname}", "properties": {**cprops, "ipConfigurations": ipcs}}
            b.add_scale_set_nics(e.name, cname, _keep_spans(nic, c), f"{ppath}[{i}]", cspan, capacity)

    def _deployment(self, ev: Evaluator, e: _Expanded) -> None:
        props = get(e.raw, "properties")
        if not isinstance(props, dict):
            return
        ppath = f"{e.path}.properties"
        link = get(props, "templateLink")
        template = get(props, "template")
        if template is None:
            if link is not None:
                uri = ev.value(get(link, "uri"), e.span, e.loops)
                where = uri if isinstance(uri, str) else (get(link, "uri") or get(link, "id") or "?")
                self.b.note(f"linked template of deployment {e.name} ({where}) is not read (nsgsolve works "
                            f"offline); import that template too if it defines NSGs or networks")
            return
        if not isinstance(template, dict):
            return
        child = ev.child(template, props, e.span, e.loops)
        tpath = f"{ppath}.template."
        if child is ev:
            # Outer scope: the nested template's expressions see the parent's parameters and variables,
            # and the deployment's own copy index.
            self.run(template, {}, tpath, outer=ev, loops=e.loops)
        else:
            self.evaluators.append(child)
            self.run(template, {}, tpath, outer=child)


def _dynamic(ipc: Any) -> Any:
    if not isinstance(ipc, dict):
        return ipc
    props = get(ipc, "properties")
    props = props if isinstance(props, dict) else {}
    new_props = JObject({**props, "privateIPAllocationMethod": "Dynamic"}, span=getattr(props, "span", NOSPAN),
                        spans=dict(getattr(props, "spans", {})))
    out = JObject(ipc, span=getattr(ipc, "span", NOSPAN), spans=dict(getattr(ipc, "spans", {})))
    out[next((k for k in ipc if k.lower() == "properties"), "properties")] = new_props
    return out


def _keep_spans(new: dict, old: Any) -> JObject:
    """``new`` as a JObject with ``old``'s positions, so errors about it still point into the file."""
    spans = dict(getattr(old, "spans", {}))
    inner = get(old, "properties")
    out = JObject(new, span=getattr(old, "span", NOSPAN), spans=spans)
    p = new.get("properties")
    if isinstance(p, dict) and isinstance(inner, dict):
        out["properties"] = JObject(p, span=getattr(inner, "span", NOSPAN), spans=dict(getattr(inner, "spans", {})))
    return out


# The parts of a resource nsgsolve reads names and ids from (a load balancer pool's id is not one).
_READ = {"properties", "securityrules", "subnets", "ipconfigurations", "networksecuritygroup", "subnet",
         "applicationsecuritygroups", "virtualnetworkpeerings", "remotevirtualnetwork",
         "sourceapplicationsecuritygroups", "destinationapplicationsecuritygroups", "networkinterfaces"}


def _names_from_unset(obj: Any) -> list[Placeholder]:
    """Placeholders that became names or ids nsgsolve reads (``name``, ``id`` in the parts it reads)."""
    out: list[Placeholder] = []
    stack = [obj]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if type(x) is str:  # plain text, most values: no Placeholder, nothing to walk
                    continue
                if isinstance(x, Placeholder) and k.lower() in ("name", "id"):
                    out.append(x)
                elif isinstance(x, (dict, list)) and k.lower() in _READ:
                    stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
    return out


def _canonical_type(written: Any, lower: str) -> str:
    return written if isinstance(written, str) and written.lower() == lower else lower


def import_template(doc: dict, filename: str, builder: PolicyBuilder, values: dict[str, Any],
                    lenient: bool = False, unset: dict | None = None, evaluator: Evaluator | None = None) -> set[str]:
    """Feed one template's resources to ``builder``; returns the deployment-dependent placeholders used.
    ``lenient``: parameters without a value become placeholders (their names); ``unset`` collects them
    (name → where declared). ``evaluator``: the template's own evaluator (Bicep's, whose values are Bicep
    expressions), instead of one for ARM expressions built from ``doc``."""
    imp = TemplateImporter(builder, filename, lenient)
    if evaluator is None:
        imp.run(doc, values)
    else:
        imp.evaluators.append(evaluator)
        imp.run(doc, values, outer=evaluator)
    used: set[str] = set()
    for ev in imp.evaluators:
        used |= ev.placeholders
        if unset is not None:
            for k, v in ev.unset.items():
                unset.setdefault(k, v)
    return used


def declared_parameters(doc: dict) -> set[str]:
    p = doc.get("parameters")
    return {k.lower() for k in p} if isinstance(p, dict) else set()


__all__ = ["import_template", "is_template", "is_parameters_file", "parameter_values", "declared_parameters",
           "find_unknown"]
