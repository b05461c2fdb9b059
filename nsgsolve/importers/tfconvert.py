"""azurerm resources → :class:`~nsgsolve.importers.convert.PolicyBuilder`, the converter ARM and az share.

Each resource is rewritten in the ARM shape the builder reads (``security_rule`` → ``securityRules``,
``address_prefixes`` → ``addressPrefixes``, ``subnet_id`` → ``subnet.id``), so how a rule, a subnet or a NIC is
understood lives in one place. Both an evaluated configuration (:mod:`nsgsolve.importers.terraform`) and
``terraform show -json`` output (:mod:`nsgsolve.importers.tfplan`) come through a *view* with
``value(attr)``, ``span_of(attr)``, ``blocks(type)``, ``span`` and ``address``.

What cannot be known offline:

* a name: the unknown's placeholder (the variable's name) or the resource's Terraform address;
* a rule's addresses or ports: left open (the builder's symbolic mode: a named tag or port list with no data);
* a VNet's address space or a subnet's prefixes: the VNet or subnet is not modelled (W623), so its NSGs
  are analysed unattached, as for an ARM template that attaches an NSG to a subnet it does not define;
* a NIC's subnet: the subnet is then not one of the inputs' (the inputs' own subnets always have an id),
  so the NIC is not modelled, as the builder does for NICs of other subnets.

Each unset variable a network resource reads is reported once (W620) with the places it feeds.
"""

from __future__ import annotations

from typing import Any, Protocol

from nsgsolve.errors import DiagnosticBag
from nsgsolve.model import Span
from nsgsolve.importers.convert import (
    ASG_TYPE, NIC_TYPE, NM_COLLECTION_TYPE, NM_CONFIG_TYPE, NM_GROUP_TYPE, NM_TYPE, NSG_TYPE, SUBNET_TYPE, VNET_TYPE,
    PolicyBuilder, name_from_id,
)
from nsgsolve.importers.jsonpos import JArray, JObject
from nsgsolve.importers.tfexpr import MISSING, TfUnknown, unknown_in
from nsgsolve.importers.armexpr import Placeholder, Unknown

TF_HINT = ("give the variable with --var NAME=VALUE, in a --var-file FILE or in terraform.tfvars / *.auto.tfvars, "
           "or read 'terraform show -json' plan or state output, where values are exact")

RELEVANT = {
    "azurerm_network_security_group", "azurerm_network_security_rule", "azurerm_virtual_network", "azurerm_subnet",
    "azurerm_subnet_network_security_group_association", "azurerm_network_interface",
    "azurerm_network_interface_security_group_association", "azurerm_application_security_group",
    "azurerm_network_interface_application_security_group_association", "azurerm_virtual_network_peering",
    "azurerm_linux_virtual_machine_scale_set", "azurerm_windows_virtual_machine_scale_set",
    "azurerm_orchestrated_virtual_machine_scale_set", "azurerm_virtual_machine_scale_set",
    # Azure Virtual Network Manager: security admin rules (docs/import.md, "Terraform")
    "azurerm_network_manager", "azurerm_network_manager_network_group", "azurerm_network_manager_static_member",
    "azurerm_network_manager_security_admin_configuration", "azurerm_network_manager_admin_rule_collection",
    "azurerm_network_manager_admin_rule", "azurerm_network_manager_deployment",
}

_RULE_FIELDS = {
    "name": "name", "description": "description", "protocol": "protocol", "access": "access",
    "direction": "direction", "priority": "priority",
    "source_port_range": "sourcePortRange", "source_port_ranges": "sourcePortRanges",
    "destination_port_range": "destinationPortRange", "destination_port_ranges": "destinationPortRanges",
    "source_address_prefix": "sourceAddressPrefix", "source_address_prefixes": "sourceAddressPrefixes",
    "destination_address_prefix": "destinationAddressPrefix",
    "destination_address_prefixes": "destinationAddressPrefixes",
}
# Rule fields an unset variable may be, whole, as a symbolic parameter (addresses and ports).
_SYMBOLIC_FIELDS = tuple(tf for tf in _RULE_FIELDS if tf.endswith(("_prefix", "_prefixes", "_range", "_ranges")))
_RULE_ASGS = {"source_application_security_group_ids": "sourceApplicationSecurityGroups",
              "destination_application_security_group_ids": "destinationApplicationSecurityGroups"}


SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def arm_id(rtype: str, names: list[str], rg: str) -> str:
    """The id Azure gives a resource of ``rtype`` (``Microsoft.Network/virtualNetworks/subnets``) named ``names``."""
    types = rtype.split("/")
    provider, segs = types[0], types[1:]
    tail = "/".join(f"{t}/{n}" for t, n in zip(segs, names))
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/{provider}/{tail}"


class View(Protocol):
    address: str
    span: Span

    def value(self, name: str) -> Any: ...

    def span_of(self, name: str) -> Span: ...

    def blocks(self, name: str) -> Any: ...

    def has(self, name: str) -> bool: ...


class _Skip(Exception):
    """The resource cannot be converted; a diagnostic says why."""


class TfConverter:
    def __init__(self, builder: PolicyBuilder, bag: DiagnosticBag, live: bool = False):
        self.b = builder
        self.bag = bag  # Terraform's own warnings and errors (the builder keeps its own)
        self.live = live  # state: addresses Azure assigned, dynamic ones included
        self.var_uses: dict[str, list[str]] = {}
        self.nic_nsg: dict[str, tuple[str, Span]] = {}
        self.nic_asgs: dict[str, list[tuple[str, Span, str | None]]] = {}
        self.later: list[tuple[str, View]] = []
        self.placeholder_warned: set[str] = set()

    # ------------------------------------------------------------------ values

    def _record(self, v: Any, what: str) -> None:
        stack = [v]
        while stack:
            x = stack.pop()
            if isinstance(x, TfUnknown):
                for var in x.vars:
                    uses = self.var_uses.setdefault(var, [])
                    if what not in uses:
                        uses.append(what)
            elif isinstance(x, dict):
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)

    def val(self, view: View, attr: str, what: str | None) -> Any:
        """An attribute's value; an expression error stops this resource (E661). ``what`` says what an unset
        variable in it means (None: the caller records it)."""
        v = view.value(attr)
        u = unknown_in(v)
        if isinstance(u, TfUnknown) and u.error:
            self.bag.error("E661", f"{view.address}.{attr}: {u.reason}", u.span if u.span.line else view.span_of(attr),
                           "fix the expression ('terraform validate' reports it too)")
            raise _Skip()
        if what is not None:
            self._record(v, what)
        return v

    def name(self, view: View, attr: str, what: str, fallback: str) -> str:
        v = self.val(view, attr, None)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, Unknown):
            text = v.placeholder if isinstance(v, TfUnknown) and v.placeholder else fallback
            self._record(v, f"{what} is '{text}'")
            key = v.expr or v.reason
            if not (isinstance(v, TfUnknown) and v.vars) and key not in self.placeholder_warned:
                # Unset variables are reported once each (W620); other unknown names once per expression.
                self.placeholder_warned.add(key)
                self.bag.warning("W622", f"{what} is not known before apply ({v.reason}); it is '{text}' here (names "
                                         f"built from the same value alike)",
                                 v.span if v.span.line else view.span_of(attr),
                                 "names do not change any decision; 'terraform show -json' output gives the real one")
            return text
        if v is None:
            return fallback
        self.bag.error("E661", f"{view.address}.{attr}: a name must be a string", view.span_of(attr))
        raise _Skip()

    def ids(self, view: View, attr: str, what: str) -> Any:
        v = self.val(view, attr, what)
        return v

    # ------------------------------------------------------------------ resources

    def add(self, rtype: str, view: View) -> None:
        try:
            if rtype in ("azurerm_network_interface_security_group_association",
                         "azurerm_network_interface_application_security_group_association"):
                self._nic_assoc(rtype, view)
            elif rtype in RELEVANT:
                self.later.append((rtype, view))
        except _Skip:
            pass

    def finish(self) -> None:
        """NICs last: their NSG and ASG associations are separate resources that may come after them."""
        order = {"azurerm_network_interface": 2, "azurerm_linux_virtual_machine_scale_set": 2,
                 "azurerm_windows_virtual_machine_scale_set": 2, "azurerm_orchestrated_virtual_machine_scale_set": 2,
                 "azurerm_virtual_machine_scale_set": 2}
        for rtype, view in sorted(self.later, key=lambda p: order.get(p[0], 1)):
            try:
                getattr(self, "_" + rtype.removeprefix("azurerm_"))(view)
            except _Skip:
                pass

    def _nsg(self, view: View, what: str) -> str:
        return self.name(view, "name", f"the name of {what}", view.address)

    def _network_security_group(self, view: View) -> None:
        name = self._nsg(view, view.address)
        blocks = view.blocks("security_rule")
        if isinstance(blocks, Unknown):
            self._unknown_blocks(blocks, view, "security_rule")
            return
        rules = []
        for r in blocks or []:
            obj = self._rule(r)
            if obj is not None:
                rules.append(obj)
        self.b.add_nsg(name, JObject({"securityRules": JArray(rules, span=view.span, spans=[r.span for r in rules])},
                                     span=view.span), view.address, view.span)

    def _unknown_blocks(self, u: Unknown, view: View, what: str) -> None:
        if isinstance(u, TfUnknown) and u.error:
            self.bag.error("E661", f"{view.address}: {u.reason}", u.span if u.span.line else view.span)
            return
        self._record(u, f"{view.address} {what} blocks")
        self.bag.error("E664", f"{view.address}: the {what} blocks cannot be expanded offline: {u.reason}",
                       u.span if u.span.line else view.span, TF_HINT)

    def _rule(self, r: View) -> JObject | None:
        try:
            out = JObject(span=r.span)
            for tf, arm in _RULE_FIELDS.items():
                if r.has(tf):
                    v = self.val(r, tf, None if tf in ("name", *_SYMBOLIC_FIELDS) else
                                 f"{r.address}.{tf} is left open")
                    if tf in _SYMBOLIC_FIELDS:
                        v = self._param_field(r, tf, v)
                    if tf == "name" and isinstance(v, TfUnknown):
                        v = self.name(r, tf, f"the name of rule {r.address}", r.address.rsplit(".", 1)[-1])
                    if v is None or v == [] or v == "":
                        continue
                    out[arm] = _tag_list(v, r.span_of(tf))
                    out.spans[arm] = r.span_of(tf)
            for tf, arm in _RULE_ASGS.items():
                if r.has(tf):
                    v = self.val(r, tf, f"{r.address}.{tf}")
                    if isinstance(v, list) and v:
                        out[arm] = JArray([{"id": x} if not isinstance(x, Unknown) else x for x in v],
                                          span=r.span_of(tf), spans=[r.span_of(tf)] * len(v))
                        out.spans[arm] = r.span_of(tf)
                    elif isinstance(v, Unknown):
                        out[arm] = v
            return out
        except _Skip:
            return None

    def _param_field(self, r: View, tf: str, v: Any) -> Any:
        """A rule's address or port field that is exactly an unset variable (or a list of just it): the
        builder's unset-parameter form (a Placeholder marked bare), so query, check and lint answer for every
        value of it, as for an unset ARM parameter (docs/import.md, "Unset parameters"). A list variable
        is one value as well: a rule reads of its value only whether a packet's address (port) lies in it,
        which one prefix (range) decides as well as any list. Anything else is recorded for W620 as open."""
        whole = v[0] if isinstance(v, list) and len(v) == 1 else v
        p = whole.param if isinstance(whole, TfUnknown) else None
        if p is None and isinstance(whole, TfUnknown) and len(whole.vars) == 1 and whole.placeholder \
                and not whole.vars[0].startswith(MISSING) and tf.endswith(("_prefix", "_prefixes")):
            # "Storage.${var.location}": one of the family's regional tags whatever the value (the builder
            # reads a placeholder FAMILY.NAME of one variable so, convert.PolicyBuilder._regional_param).
            head, _, short = whole.vars[0].rpartition(".")
            family, dot, rest = whole.placeholder.partition(".")
            if dot and rest == short:
                self._record(v, f"{r.address}.{tf} is one of the regional service tags {family}.<Region> of the "
                                f"tag data (symbolic: query, check and lint answer for every region)")
                ph = Placeholder(whole.placeholder, (f"{head}.var.{short}" if head else f"var.{short}",))
                ph.declared_at = whole.span
                return [ph] if isinstance(v, list) else ph
        if p is None:
            self._record(v, f"{r.address}.{tf} is left open")
            return v
        among = f" among the values its validation allows ({', '.join(p.allowed)})" if p.allowed else ""
        self._record(v, f"{r.address}.{tf} is symbolic: query, check and lint answer for every value{among}")
        ph = Placeholder(p.name, (p.name,))
        ph.bare, ph.allowed, ph.declared_at = True, p.allowed, p.span
        return [ph] if isinstance(v, list) else ph

    def _network_security_rule(self, view: View) -> None:
        nsg = self.name(view, "network_security_group_name", f"the NSG of {view.address}", view.address)
        obj = self._rule(view)
        if obj is not None:
            self.b.add_child_rule(nsg, obj, view.address, view.span)

    def _application_security_group(self, view: View) -> None:
        self.b.add_asg(self.name(view, "name", f"the name of {view.address}", view.address), view.span)

    def _prefixes(self, view: View, attrs: tuple[str, ...], what: str) -> list | None:
        """Address prefixes, or None (with W623) when they cannot be known offline."""
        out: list = []
        for a in attrs:
            if not view.has(a):
                continue
            v = self.val(view, a, f"{what} is not modelled (NSGs on it are analysed unattached)")
            if v is None:
                continue
            u = unknown_in(v)
            if u is not None and u.vars:
                return None  # W620 for the variable says it (one warning per cause)
            if u is not None:
                self.bag.warning("W623", f"{what}: address prefixes not known offline ({u.reason}); not modelled, so "
                                         "NSGs associated with it are analysed unattached",
                                 u.span if u.span.line else view.span_of(a), TF_HINT)
                return None
            out += v if isinstance(v, list) else [v]
        return out

    def _virtual_network(self, view: View) -> None:
        name = self.name(view, "name", f"the name of {view.address}", view.address)
        space = self._prefixes(view, ("address_space",), f"VNet {name} ({view.address})")
        if space is None:
            return
        subnets = []
        blocks = view.blocks("subnet")
        if isinstance(blocks, Unknown):
            self._unknown_blocks(blocks, view, "subnet")
            return
        for s in blocks or []:
            try:
                sname = self.name(s, "name", f"the name of {s.address}", s.address)
                pfx = self._prefixes(s, ("address_prefixes", "address_prefix"), f"subnet {name}/{sname}")
                if pfx is None:
                    continue
                obj = JObject({"name": sname, "addressPrefixes": pfx}, span=s.span,
                              spans={"addressPrefixes": s.span_of("address_prefixes")})
                sg = self.val(s, "security_group", f"{s.address}.security_group") if s.has("security_group") else None
                if isinstance(sg, str) and sg:
                    obj["networkSecurityGroup"] = JObject({"id": sg}, span=s.span_of("security_group"))
                    obj.spans["networkSecurityGroup"] = s.span_of("security_group")
                subnets.append(obj)
            except _Skip:
                continue
        self.b.add_vnet(name, JObject({"addressSpace": {"addressPrefixes": space}, "subnets": JArray(
            subnets, span=view.span, spans=[s.span for s in subnets])}, span=view.span,
            spans={"addressSpace": view.span_of("address_space")}), view.address, view.span)

    def _subnet(self, view: View) -> None:
        vnet = self.name(view, "virtual_network_name", f"the VNet of {view.address}", view.address)
        name = self.name(view, "name", f"the name of {view.address}", view.address)
        pfx = self._prefixes(view, ("address_prefixes", "address_prefix"), f"subnet {vnet}/{name} ({view.address})")
        if pfx is None:
            return
        key = "address_prefixes" if view.has("address_prefixes") else "address_prefix"
        self.b.add_subnet(vnet, name, JObject({"addressPrefixes": JArray(pfx, span=view.span_of(key),
                                                                         spans=[view.span_of(key)] * len(pfx))},
                                              span=view.span, spans={"addressPrefixes": view.span_of(key)}),
                          view.address, view.span)

    def _subnet_network_security_group_association(self, view: View) -> None:
        sid = self.val(view, "subnet_id", f"{view.address} is not modelled")
        nid = self.val(view, "network_security_group_id", f"{view.address}.network_security_group_id")
        snames = name_from_id(sid, SUBNET_TYPE) if isinstance(sid, str) else None
        if snames is None:
            if isinstance(sid, Unknown):
                self.b.note(f"{view.address}: the subnet ({sid.expr or sid.reason}) is not one of the inputs' "
                            f"(its id is not known offline); association not modelled")
                return
            self.bag.error("E665", f"{view.address}.subnet_id: not a subnet id: {sid!r}", view.span_of("subnet_id"))
            return
        nsg = self._nsg_name(view, nid, "network_security_group_id")
        self.b.pending_subnet_nsg.append((snames[0], snames[1], nsg, view.span_of("network_security_group_id")))

    def _nsg_name(self, view: View, nid: Any, attr: str) -> str:
        names = name_from_id(nid, NSG_TYPE) if isinstance(nid, str) else None
        if names is not None:
            return names[0]
        if isinstance(nid, Unknown):
            # Leaving the association out would read the subnet or NIC as unfiltered: refuse instead.
            self.bag.error("E665", f"{view.address}.{attr}: the NSG is not known offline ({nid.reason})",
                           nid.span if nid.span.line else view.span_of(attr),
                           "define the NSG in the configuration read, or read 'terraform show -json' state output")
        else:
            self.bag.error("E665", f"{view.address}.{attr}: not a network security group id: {nid!r}",
                           view.span_of(attr))
        raise _Skip()

    def _nic_assoc(self, rtype: str, view: View) -> None:
        nid = self.val(view, "network_interface_id", f"{view.address} is not modelled")
        names = name_from_id(nid, NIC_TYPE) if isinstance(nid, str) else None
        if names is None:
            if isinstance(nid, Unknown):
                self.b.note(f"{view.address}: the NIC ({nid.expr or nid.reason}) is not one of the inputs'; "
                            f"association not modelled")
                return
            self.bag.error("E665", f"{view.address}.network_interface_id: not a NIC id: {nid!r}",
                           view.span_of("network_interface_id"))
            return
        if rtype == "azurerm_network_interface_security_group_association":
            nsg = self._nsg_name(view, self.val(view, "network_security_group_id", view.address),
                                 "network_security_group_id")
            self.nic_nsg[names[0]] = (nsg, view.span_of("network_security_group_id"))
        else:
            aid = self.val(view, "application_security_group_id", view.address)
            anames = name_from_id(aid, ASG_TYPE) if isinstance(aid, str) else None
            if anames is None:
                self.bag.error(
                    "E665",
                    f"{view.address}.application_security_group_id: the ASG is "
                    f"{'not known offline' if isinstance(aid, Unknown) else f'not an ASG id: {aid!r}'}",
                    view.span_of("application_security_group_id"),
                    "define the ASG in the configuration read",
                )
                return
            ipc = self.val(view, "ip_configuration_name", view.address) if view.has("ip_configuration_name") else None
            self.nic_asgs.setdefault(names[0], []).append(
                (anames[0], view.span_of("application_security_group_id"), ipc if isinstance(ipc, str) else None))

    def _network_interface(self, view: View) -> None:
        name = self.name(view, "name", f"the name of {view.address}", view.address)
        blocks = view.blocks("ip_configuration")
        if isinstance(blocks, Unknown):
            self._unknown_blocks(blocks, view, "ip_configuration")
            return
        ipcs = []
        for i, c in enumerate(blocks or []):
            cname = self.name(c, "name", f"the name of {c.address}", f"ipconfig{i + 1}")
            sid = self.val(c, "subnet_id", f"{c.address} is not modelled")
            if isinstance(sid, Unknown):
                self.b.note(f"NIC {name}: IP configuration {cname} is in a subnet that is not one of the inputs' "
                            f"({sid.expr or sid.reason}); not modelled")
                continue
            props = JObject({"subnet": JObject({"id": sid}, span=c.span_of("subnet_id"))}, span=c.span,
                            spans={"subnet": c.span_of("subnet_id")})
            for tf, arm in (("private_ip_address_allocation", "privateIPAllocationMethod"),
                            ("private_ip_address", "privateIPAddress"),
                            ("private_ip_address_version", "privateIPAddressVersion")):
                if c.has(tf):
                    v = self.val(c, tf, f"{c.address}.{tf} is left open (dynamic)")
                    if tf == "private_ip_address" and isinstance(v, Unknown) and \
                            str(props.get("privateIPAllocationMethod", "")).lower() == "dynamic":
                        continue  # a dynamic address not assigned yet: any usable address of the subnet
                    if v not in (None, ""):
                        props[arm] = v
                        props.spans[arm] = c.span_of(tf)
            asgs = [JObject({"id": _id(ASG_TYPE, a)}, span=s) for a, s, ipn in self.nic_asgs.get(name, [])
                    if ipn in (None, cname)]
            if asgs:
                props["applicationSecurityGroups"] = JArray(asgs, span=asgs[0].span, spans=[a.span for a in asgs])
            ipcs.append(JObject({"name": cname, "properties": props}, span=c.span))
        if not ipcs:
            self.b.note(f"NIC {name} ({view.address}) has no IP configuration in a subnet of the inputs; not modelled")
            return
        obj = JObject({"ipConfigurations": JArray(ipcs, span=view.span, spans=[c.span for c in ipcs])}, span=view.span)
        nsg = self.nic_nsg.get(name)
        if nsg is None and view.has("network_security_group_id"):  # azurerm 1.x wrote it on the NIC
            nid = self.val(view, "network_security_group_id", view.address)
            if nid not in (None, ""):
                nsg = (
                    self._nsg_name(view, nid, "network_security_group_id"),
                    view.span_of("network_security_group_id"),
                )
        if nsg is not None:
            obj["networkSecurityGroup"] = JObject({"id": _id(NSG_TYPE, nsg[0])}, span=nsg[1])
            obj.spans["networkSecurityGroup"] = nsg[1]
        self.b.add_nic(name, obj, view.address, view.span, live=self.live)

    # Scale sets: each NIC configuration is one NIC with a dynamic address, standing for every instance's.
    def _scale_set(self, view: View, nic_block: str) -> None:
        vmss = self.name(view, "name", f"the name of {view.address}", view.address)
        blocks = view.blocks(nic_block)
        if isinstance(blocks, Unknown):
            self._unknown_blocks(blocks, view, nic_block)
            return
        for k, nb in enumerate(blocks or []):
            nname = self.name(nb, "name", f"the name of {nb.address}", f"nic{k + 1}")
            cfgs = nb.blocks("ip_configuration")
            if isinstance(cfgs, Unknown):
                self._unknown_blocks(cfgs, nb, "ip_configuration")
                continue
            ipcs = []
            for i, c in enumerate(cfgs or []):
                cname = self.name(c, "name", f"the name of {c.address}", f"ipconfig{i + 1}")
                sid = self.val(c, "subnet_id", f"{c.address} is not modelled")
                if isinstance(sid, Unknown) or sid in (None, ""):
                    self.b.note(f"scale set {vmss}: IP configuration {cname} is in a subnet that is not one of the "
                                f"inputs'; not modelled")
                    continue
                props = JObject({"subnet": JObject({"id": sid}, span=c.span_of("subnet_id")),
                                 "privateIPAllocationMethod": "Dynamic"}, span=c.span,
                                spans={"subnet": c.span_of("subnet_id")})
                ver = self.val(c, "version", c.address) if c.has("version") else None
                if isinstance(ver, str):
                    props["privateIPAddressVersion"] = ver
                aids = self.val(c, "application_security_group_ids", c.address) \
                    if c.has("application_security_group_ids") else None
                if isinstance(aids, Unknown):
                    self.bag.error("E665", f"{c.address}.application_security_group_ids: not known offline "
                                           f"({aids.reason})", c.span_of("application_security_group_ids"), TF_HINT)
                    continue
                if aids:
                    props["applicationSecurityGroups"] = JArray([{"id": a} for a in aids],
                                                                span=c.span_of("application_security_group_ids"),
                                                                spans=[c.span_of("application_security_group_ids")] *
                                                                len(aids))
                ipcs.append(JObject({"name": cname, "properties": props}, span=c.span))
            if not ipcs:
                continue
            obj = JObject({"ipConfigurations": JArray(ipcs, span=nb.span, spans=[c.span for c in ipcs])}, span=nb.span)
            nid = self.val(nb, "network_security_group_id", nb.address) if nb.has("network_security_group_id") else None
            if nid not in (None, ""):
                obj["networkSecurityGroup"] = JObject({"id": _id(NSG_TYPE, self._nsg_name(
                    nb, nid, "network_security_group_id"))}, span=nb.span_of("network_security_group_id"))
                obj.spans["networkSecurityGroup"] = nb.span_of("network_security_group_id")
            self.b.add_scale_set_nics(vmss, nname, obj, nb.address, nb.span, self._instances(view))

    def _instances(self, view: View) -> int | None:
        """The instance count written (``instances``, or the old resource's ``sku { capacity }``), for the note."""
        v = self.val(view, "instances", None) if view.has("instances") else None
        if v is None:
            sku = view.blocks("sku")
            if isinstance(sku, list) and sku and sku[0].has("capacity"):
                v = self.val(sku[0], "capacity", None)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def _linux_virtual_machine_scale_set(self, view: View) -> None:
        self._scale_set(view, "network_interface")

    def _windows_virtual_machine_scale_set(self, view: View) -> None:
        self._scale_set(view, "network_interface")

    def _orchestrated_virtual_machine_scale_set(self, view: View) -> None:
        self._scale_set(view, "network_interface")

    def _virtual_machine_scale_set(self, view: View) -> None:
        self._scale_set(view, "network_profile")

    def _virtual_network_peering(self, view: View) -> None:
        vnet = self.name(view, "virtual_network_name", f"the VNet of {view.address}", view.address)
        rid = self.val(view, "remote_virtual_network_id", f"{view.address}.remote_virtual_network_id")
        if isinstance(rid, Unknown):
            if vnet not in self.b.vnets:
                self.b.note(f"peering {view.address} of VNet {vnet}, which is not in the inputs, ignored")
                return
            self.bag.error("E665", f"{view.address}: VNet {vnet} peers with a VNet not known offline ({rid.reason}); "
                                   f"its address space belongs to {vnet}'s VirtualNetwork tag",
                           rid.span if rid.span.line else view.span_of("remote_virtual_network_id"), TF_HINT)
            return
        self.b.add_peering(vnet, JObject({"remoteVirtualNetwork": JObject({"id": rid},
                                                                         span=view.span_of("remote_virtual_network_id"))},
                                         span=view.span), view.address, view.span)

    # ------------------------------------------------------------------ AVNM security admin rules
    # Each resource becomes the ARM shape of its networkManagers child and goes to the builder's add_nm_*
    # (the ARM importer's path); the parent comes from the resource's parent id attribute.

    def _parent(self, view: View, attr: str, arm_type: str, what: str) -> list[str] | None:
        """The name segments of the parent id in ``attr`` (manager; manager, group; ...), or None with a
        note (a parent not known offline is not one of the inputs') or E666 (not an id of that type)."""
        v = self.val(view, attr, f"{view.address} is not modelled")
        names = name_from_id(v, arm_type) if isinstance(v, str) else None
        if names is not None:
            return names
        if isinstance(v, Unknown):
            self.b.note(f"{view.address}: its {what} ({v.expr or v.reason}) is not one of the inputs'; not modelled")
        else:
            self.bag.error("E670", f"{view.address}.{attr}: not the id of a {what}: {v!r}", view.span_of(attr),
                           f"give the {what}'s id, e.g. a reference like azurerm_....example.id")
        return None

    def _network_manager(self, view: View) -> None:
        name = self.name(view, "name", f"the name of {view.address}", view.address)
        acc = self.val(view, "scope_accesses", None) if view.has("scope_accesses") else None
        if isinstance(acc, list) and all(isinstance(a, str) for a in acc) and \
                "securityadmin" not in {a.lower() for a in acc}:
            # Azure refuses to deploy a security admin configuration of such a manager.
            self.b.nm_no_admin.add(name)
            self.bag.warning("W670", f"network manager {name} ({view.address}) has no SecurityAdmin in scope_accesses, "
                                     f"so none of its security admin configurations can be deployed; left out",
                             view.span_of("scope_accesses"), "add \"SecurityAdmin\" to scope_accesses")

    def _network_manager_network_group(self, view: View) -> None:
        nm = self._parent(view, "network_manager_id", NM_TYPE, "network manager")
        if nm is not None:
            name = self.name(view, "name", f"the name of {view.address}", view.address)
            self.b.add_nm_group(nm[0], name, JObject(span=view.span), view.address, view.span)

    def _network_manager_static_member(self, view: View) -> None:
        g = self._parent(view, "network_group_id", NM_GROUP_TYPE, "network group")
        if g is None:
            return
        vid = self.val(view, "target_virtual_network_id", f"{view.address} is not modelled")
        s = view.span_of("target_virtual_network_id")
        self.b.add_nm_member(g[0], g[1], JObject({"resourceId": vid}, span=view.span, spans={"resourceId": s}),
                             view.address, view.span)

    def _network_manager_security_admin_configuration(self, view: View) -> None:
        nm = self._parent(view, "network_manager_id", NM_TYPE, "network manager")
        if nm is not None:
            name = self.name(view, "name", f"the name of {view.address}", view.address)
            self.b.add_nm_config(nm[0], name, JObject(span=view.span), view.address, view.span)

    def _network_manager_admin_rule_collection(self, view: View) -> None:
        cfg = self._parent(view, "security_admin_configuration_id", NM_CONFIG_TYPE, "security admin configuration")
        if cfg is None:
            return
        name = self.name(view, "name", f"the name of {view.address}", view.address)
        ids = self.val(view, "network_group_ids", f"{view.address}.network_group_ids")
        s = view.span_of("network_group_ids")
        if isinstance(ids, str):
            ids = [ids]  # a plan's list known only from its reference (one group: the usual case)
        applies: Any = ids
        if isinstance(ids, list):
            applies = JArray([JObject({"networkGroupId": i}, span=s) for i in ids], span=s, spans=[s] * len(ids))
        self.b.add_nm_collection(cfg[0], cfg[1], name, JObject({"appliesToGroups": applies}, span=view.span,
                                                               spans={"appliesToGroups": s}), view.address, view.span)

    def _network_manager_admin_rule(self, view: View) -> None:
        coll = self._parent(view, "admin_rule_collection_id", NM_COLLECTION_TYPE, "admin rule collection")
        if coll is None:
            return
        name = self.name(view, "name", f"the name of {view.address}", view.address)
        props = JObject(span=view.span)
        for tf, arm in (("action", "access"), ("direction", "direction"), ("priority", "priority"),
                        ("protocol", "protocol"), ("description", "description"),
                        ("source_port_ranges", "sourcePortRanges"),
                        ("destination_port_ranges", "destinationPortRanges")):
            if view.has(tf):
                v = self.val(view, tf, f"{view.address}.{tf} is left open")
                props[arm] = _tag_list(v, view.span_of(tf))
                props.spans[arm] = view.span_of(tf)
        for tf, arm in (("source", "sources"), ("destination", "destinations")):
            blocks = view.blocks(tf)
            if isinstance(blocks, Unknown):
                self._unknown_blocks(blocks, view, tf)
                return
            if not blocks:
                continue
            items = []
            for b in blocks:
                item = JObject(span=b.span)
                for f, a in (("address_prefix", "addressPrefix"), ("address_prefix_type", "addressPrefixType")):
                    item[a] = self.val(b, f, f"{b.address}.{f} is left open")
                    item.spans[a] = b.span_of(f)
                items.append(item)
            props[arm] = JArray(items, span=blocks[0].span, spans=[i.span for i in items])
            props.spans[arm] = blocks[0].span
        self.b.add_nm_rule(coll[0], coll[1], coll[2], name, JObject({"kind": "Custom", "properties": props},
                                                                    span=view.span), view.address, view.span)

    def _network_manager_deployment(self, view: View) -> None:
        """A SecurityAdmin deployment says which configurations of its manager are deployed: once a manager
        has one, only the configurations some deployment lists apply (regions are not modelled: a deployment
        to any location counts)."""
        acc = self.val(view, "scope_access", None)
        if not (isinstance(acc, str) and acc.lower() == "securityadmin"):
            if isinstance(acc, Unknown):
                self.bag.warning("W671", f"{view.address}: scope_access is not known offline ({acc.reason}); the "
                                         f"deployment is not read, so its manager's configurations are all taken "
                                         f"as deployed", view.span_of("scope_access"), TF_HINT)
            return  # Connectivity or Routing: nothing nsgsolve models
        nm = self._parent(view, "network_manager_id", NM_TYPE, "network manager")
        if nm is None:
            return
        ids = self.val(view, "configuration_ids", None)
        if not isinstance(ids, list) or any(isinstance(i, Unknown) for i in ids):
            self.bag.warning("W671", f"{view.address}: the configurations it deploys are not known offline; every "
                                     f"security admin configuration of network manager {nm[0]} is taken as deployed",
                             view.span_of("configuration_ids"), TF_HINT)
            self.b.nm_deploy_all.add(nm[0])
            return
        listed = self.b.nm_deployed.setdefault(nm[0], set())
        for i in ids:
            names = name_from_id(i, NM_CONFIG_TYPE)
            if names is None:
                self.bag.error("E670", f"{view.address}.configuration_ids: not a security admin configuration id: "
                                       f"{i!r}", view.span_of("configuration_ids"),
                               "list azurerm_network_manager_security_admin_configuration ids")
                continue
            listed.add(names[1])

    # ------------------------------------------------------------------ end

    def warn_unset(self, unset: dict[str, Span]) -> None:
        for var, span in unset.items():
            uses = self.var_uses.get(var)
            if not uses:
                continue
            shown = "; ".join(uses[:4]) + (f"; and {len(uses) - 4} more" if len(uses) > 4 else "")
            if var.startswith(MISSING):
                self.bag.warning("W624", f"{var[1:]} is not defined in the files read; without it: {shown}", span,
                                 "give the whole module directory (every .tf file), not single files")
                continue
            short = var.rsplit(".", 1)[-1]
            self.bag.warning("W620", f"variable '{var}' has no value; without it: {shown}", span,
                             f"pin it with --var {short}=VALUE, a --var-file, or terraform.tfvars / *.auto.tfvars")


def _id(arm_type: str, name: str) -> str:
    canon = {
        NSG_TYPE: "Microsoft.Network/networkSecurityGroups",
        ASG_TYPE: "Microsoft.Network/applicationSecurityGroups",
        VNET_TYPE: "Microsoft.Network/virtualNetworks",
    }[arm_type]
    return arm_id(canon, [name], "rg")


def _tag_list(v: Any, span: Span) -> Any:
    if isinstance(v, list):
        return JArray(v, span=span, spans=[span] * len(v))
    return v
