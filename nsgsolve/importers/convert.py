"""Azure resource objects (ARM/REST shape or az's flattened shape) → the typed model.

ARM templates (after expression evaluation) and ``az`` exports describe the same resources, so both feed a
:class:`PolicyBuilder`. An object's fields live under ``properties`` in ARM/REST and at the top level in
flattened ``az`` output; :func:`props_of` hides the difference, and field names are matched
case-insensitively (PowerShell exports write ``SourceAddressPrefix``). Singular and plural fields are
united (``sourceAddressPrefix`` + ``sourceAddressPrefixes``), as az prints both.

A value the template evaluator could not compute arrives as an :class:`~.armexpr.Unknown`. It is an
error (E610) naming the template path and the expression, unless the import is symbolic: then a rule side
becomes a service tag named :func:`symbolic_name` that has no address data, and ports a port list of that
name that is not defined. Resolution stops (E301/E206) on anything that depends on them, so an unknown
value is never read as empty or as everything; a user may also declare that tag or port list in the
printed policy to supply the value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from nsgsolve.errors import DiagnosticBag
from nsgsolve.limits import decimal
from nsgsolve.semantics.addresses import MAX_IP, V6_BASE, int_to_ip, parse_ipv4_cidr
from nsgsolve.semantics.resolve import SYMBOLIC_PREFIX
from nsgsolve.model import (
    AdminConfig, AdminRule, NetworkGroup, OpenSubnet, OpenVNet, ParamDecl, RuleCollection, existing_space,
    param_label, param_name,
    Access,
    AddrItem,
    AnyAddress,
    Asg,
    AsgSide,
    Cidr,
    DEFAULT_RULES,
    Direction,
    IpConfig,
    IpRange,
    Nic,
    NOSPAN,
    Nsg,
    Policy,
    PortRange,
    PortSpec,
    PortsRef,
    PrefixSide,
    Protocol,
    Ref,
    Rule,
    RuleSide,
    Span,
    Subnet,
    SubnetRef,
    TagSide,
    VNet,
)
from nsgsolve.importers.armexpr import Placeholder, Unknown, find_unknown, find_unset, parse_resource_id
from nsgsolve.importers.jsonpos import item_spans, known, span_in

NSG_TYPE = "microsoft.network/networksecuritygroups"
RULE_TYPE = "microsoft.network/networksecuritygroups/securityrules"
VNET_TYPE = "microsoft.network/virtualnetworks"
SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
PEERING_TYPE = "microsoft.network/virtualnetworks/virtualnetworkpeerings"
NIC_TYPE = "microsoft.network/networkinterfaces"
ASG_TYPE = "microsoft.network/applicationsecuritygroups"
# Azure Virtual Network Manager (security admin rules, docs/import.md)
NM_TYPE = "microsoft.network/networkmanagers"
NM_GROUP_TYPE = NM_TYPE + "/networkgroups"
NM_MEMBER_TYPE = NM_GROUP_TYPE + "/staticmembers"
NM_CONFIG_TYPE = NM_TYPE + "/securityadminconfigurations"
NM_COLLECTION_TYPE = NM_CONFIG_TYPE + "/rulecollections"
NM_RULE_TYPE = NM_COLLECTION_TYPE + "/rules"
AVNM_TYPES = {NM_TYPE, NM_GROUP_TYPE, NM_MEMBER_TYPE, NM_CONFIG_TYPE, NM_COLLECTION_TYPE, NM_RULE_TYPE}

# A service tag named with an unset parameter: FAMILY.<the parameter's placeholder> (Storage.location).
_REGIONAL = re.compile(r"([A-Za-z][A-Za-z0-9_\-]*)\.([A-Za-z_][A-Za-z0-9_\-]*)")
# What W601 says of a parameter without a value that became (part of) a name or an id.
NAMES_USE = "names and ids built from it read its name in its place"

_DEFAULT_NAMES = {r.name.lower() for rules in DEFAULT_RULES.values() for r in rules}


def symbolic_name(path: str) -> str:
    """The name a value left open under --symbolic gets (a tag or a port list with no data)."""
    return SYMBOLIC_PREFIX + path


def props_of(obj: dict) -> tuple[dict, str]:
    """The object holding a resource's fields and the path suffix to it."""
    p = get(obj, "properties")
    if isinstance(p, dict):
        return p, ".properties"
    return obj, ""


def get(obj: Any, name: str) -> Any:
    """``obj[name]`` matching the key case-insensitively; None when absent."""
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    low = name.lower()
    for k, v in obj.items():
        if k.lower() == low:
            return v
    return None


def key_of(obj: Any, name: str) -> str:
    if isinstance(obj, dict) and name not in obj:
        low = name.lower()
        for k in obj:
            if k.lower() == low:
                return k
    return name


def folded_keys(obj: dict) -> dict[str, str]:
    """Lower-cased name -> the key as written (the first, as :func:`key_of` finds it): one pass over the
    keys for an object many fields are looked up in, most of them absent."""
    return {k.lower(): k for k in reversed(obj)}  # reversed: the first of two spellings wins


def _key(obj: dict, folded: dict[str, str], name: str) -> str:
    """``key_of(obj, name)`` with the keys folded once (:func:`folded_keys`)."""
    return name if name in obj else folded.get(name.lower(), name)


def name_from_id(rid: Any, type_lower: str) -> list[str] | None:
    """The name segments of a resource id of the given type (``[vnet, subnet]`` for a subnet), or None."""
    if not isinstance(rid, str):
        return None
    parsed = parse_resource_id(rid)
    if parsed is None:
        return None
    t, names = parsed
    if t.lower() != type_lower:
        return None
    return names


_IPISH = re.compile(r"\s*[0-9]")  # compiled once: _is_ipish runs for every prefix of every rule


_PORT_RANGE = re.compile(r"(\d+)\s*(?:-\s*(\d+))?")


def _item_path(path: str, index: int, is_list: bool) -> str:
    return f"{path}[{index}]" if is_list else path


_ENUM_TABLES: dict[Any, dict[str, Any]] = {}


def _enum_table(enum: Any) -> dict[str, Any]:
    """Lower-cased value -> member (an Enum's ``.value`` is slow to read, and _enum runs per rule)."""
    t = _ENUM_TABLES.get(enum)
    if t is None:
        t = _ENUM_TABLES[enum] = {}
        for m in enum:
            t.setdefault(m.value.lower(), m)
    return t


# Text -> (network, prefix length) of the plain a.b.c.d[/n] with no host bits set, None for any other text:
# the same prefixes recur across the rules of a large NSG, and this is read for every one of them.
_CIDR_CACHE: dict[str, tuple[int, int] | None] = {}


def _plain_cidr(t: str) -> tuple[int, int] | None:
    r = _CIDR_CACHE.get(t, False)
    if r is False:
        fast = parse_ipv4_cidr(t)
        r = None
        if fast is not None and fast[0] & ((1 << (32 - fast[1])) - 1) == 0:  # host bits set: _addr words the note
            r = fast
        if len(_CIDR_CACHE) < 100_000:  # bounded: a long-running caller must not grow it without end
            _CIDR_CACHE[t] = r
    return r  # type: ignore[return-value]


# Text -> (low, high) of a port or port range, None for any other text; as _CIDR_CACHE, for ports.
_PORT_CACHE: dict[str, tuple[int, int] | None] = {}


def _cidr(network: int, length: int, span: Span, _new: Any = object.__new__) -> Cidr:
    """``Cidr(network, length, span)`` made without the frozen dataclass's ``__init__`` (three
    ``object.__setattr__`` calls): a large template has tens of thousands of prefixes. The same object."""
    c = _new(Cidr)
    d = c.__dict__
    d["network"], d["length"], d["span"] = network, length, span
    return c


def _port_item(lo: int, hi: int, span: Span, _new: Any = object.__new__) -> PortRange:
    """``PortRange(lo, hi, span)`` made as :func:`_cidr` makes a Cidr."""
    r = _new(PortRange)
    d = r.__dict__
    d["lo"], d["hi"], d["span"] = lo, hi, span
    return r


_ANY_PORT = frozenset(("*", "any", "Any"))
# (field, its lower-cased name, whether it lists ASGs) of each rule side's address fields.
_SIDE_FIELDS = {side: ((f"{side}AddressPrefix", f"{side}addressprefix", False),
                       (f"{side}AddressPrefixes", f"{side}addressprefixes", False),
                       (f"{side}ApplicationSecurityGroups", f"{side}applicationsecuritygroups", True))
                for side in ("source", "destination")}
# (field, its lower-cased name) of each side's port fields, made once rather than per rule.
_PORT_FIELDS = {side: tuple((f, f.lower()) for f in (f"{side}PortRange", f"{side}PortRanges"))
                for side in ("source", "destination")}


def _port_range(t: str) -> tuple[int, int] | None:
    r = _PORT_CACHE.get(t, False)
    if r is False:
        m = _PORT_RANGE.fullmatch(t)
        lo = decimal(m.group(1)) if m else -1
        hi = decimal(m.group(2)) if m and m.group(2) else lo
        r = (lo, hi) if m and 0 <= lo <= hi <= 65535 else None
        if len(_PORT_CACHE) < 100_000:
            _PORT_CACHE[t] = r
    return r  # type: ignore[return-value]


def _is_ipish(text: str) -> bool:
    return _IPISH.match(text) is not None or ":" in text


@dataclass
class _NsgAcc:
    name: str
    span: Span
    rules: dict[str, Rule] = field(default_factory=dict)


@dataclass
class _VnetAcc:
    name: str
    span: Span
    spaces: list[Cidr] = field(default_factory=list)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    peerings: list[Ref] = field(default_factory=list)
    extra: list[Cidr] = field(default_factory=list)  # peered spaces of VNets not in the inputs


class PolicyBuilder:
    """Collects resources from one or several inputs and builds one :class:`Policy`."""

    def __init__(self, symbolic: bool = False, unknown_code: str = "E610", unknown_hint: str | None = None,
                 strict: bool = False):
        self.symbolic = symbolic
        self.strict = strict
        # Terraform inputs report a value they cannot know under their own code and with their own remedy.
        self.unknown_code = unknown_code
        self.unknown_hint = unknown_hint
        self.bag = DiagnosticBag()
        self.notes: list[str] = []
        self.nsgs: dict[str, _NsgAcc] = {}
        self.vnets: dict[str, _VnetAcc] = {}
        self.nics: dict[str, Nic] = {}
        self.asgs: dict[str, Asg] = {}
        self.asg_refs: dict[str, Span] = {}
        # Associations written on the NSG side (az nsg show lists its subnets and NICs).
        self.pending_subnet_nsg: list[tuple[str, str, str, Span]] = []
        self.pending_nic_nsg: list[tuple[str, str, Span]] = []
        self.pending_subnets: list[tuple[str, str, dict, str, Span]] = []
        self.pending_peerings: list[tuple[str, dict, str, Span]] = []
        self.pending_rules: list[tuple[str, dict, str, Span]] = []
        self.sources: list[str] = []
        # AVNM, keyed by the network manager's name (group and configuration names are per manager).
        self.nm_groups: dict[tuple[str, str], Span] = {}
        self.nm_members: list[tuple[str, str, str, Span]] = []  # (manager, group, vnet, span)
        self.nm_configs: dict[tuple[str, str], Span] = {}
        self.nm_collections: dict[tuple[str, str, str], tuple[list[tuple[str, Span]], Span]] = {}
        self.nm_rules: list[tuple[tuple[str, str, str], AdminRule]] = []
        # Managers whose deployments are known (Terraform's azurerm_network_manager_deployment): only the
        # configurations listed are deployed. Managers absent here: every configuration read is.
        self.nm_deployed: dict[str, set[str]] = {}
        self.nm_deploy_all: set[str] = set()  # a deployment whose list is not known offline
        self.nm_no_admin: set[str] = set()  # managers without SecurityAdmin access: nothing of theirs deploys
        # Parameters without a value (not --strict): parameter → what nsgsolve did where it was used (W601).
        self.unset_uses: dict[str, list[str]] = {}
        self.params: dict[str, ParamDecl] = {}  # unset parameters rule fields are exactly (symbolic)
        self.unplaced_vnets: dict[str, str] = {}  # VNet → why its address space is not known
        # VNets whose address space is exactly an unset parameter: VNet → (parameter, span), and their subnets
        # (model.OpenVNet: query and check answer for every value of it).
        self.open_spaces: dict[str, tuple[str, Span]] = {}
        self.open_subnets: dict[str, dict[str, OpenSubnet]] = {}
        self.existing_vnets: set[str] = set()  # open VNets the inputs only refer to (model.existing_space)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -------------------------------------------------------------- values

    def unknown(self, u: Unknown, path: str, span: Span, symbolic_helps: bool = False) -> None:
        """E610. ``symbolic_helps``: the value is one --symbolic may leave open (a rule's addresses or ports)."""
        where = u.span if u.span.line else span
        expr = f" (expression {u.expr})" if u.expr else ""
        how = "give parameter values with --param NAME=VALUE or a parameters file (--params-file FILE)"
        if symbolic_helps and not self.symbolic:
            how += ", or leave the value open: drop --strict (or add --symbolic)"
        elif not symbolic_helps:
            how += "; nsgsolve needs this value itself (only a rule's addresses and ports can be left open)"
        self.bag.error(self.unknown_code, f"cannot evaluate {path}{expr}: {u.reason}", where, self.unknown_hint or how)

    def used_unset(self, ph: Placeholder, what: str) -> None:
        """Record that a value built from parameters nobody gave was read as ``what`` (for W601)."""
        for p in sorted(ph.params):
            uses = self.unset_uses.setdefault(p, [])
            if what not in uses:
                uses.append(what)

    @staticmethod
    def unset_unknown(ph: Placeholder, span: Span) -> Unknown:
        names = ", ".join(f"'{p}'" for p in sorted(ph.params))
        return Unknown(f"parameter {names} has no value (no default, not given)", "", span)

    def known(self, value: Any, path: str, span: Span) -> bool:
        u = find_unknown(value)
        if u is not None:
            self.unknown(u, path, span)
            return False
        return True

    def _not_list(self, v: Any, path: str, span: Span) -> None:
        if isinstance(v, Unknown):
            self.unknown(v, path, span)
        else:
            self.bag.error("E611", f"{path} must be an array", span)

    def text(self, obj: dict, key: str, path: str, span: Span, required: bool = True) -> str | None:
        k = key_of(obj, key)
        v = obj.get(k) if isinstance(obj, dict) else None
        tv = type(v)
        if tv is str and v != "" or tv is int:  # the common case: no span is made (a lazy one costs a lookup)
            return str(v)
        vspan = span_in(obj, k, span)
        if isinstance(v, Placeholder) and key.lower() != "name":
            v = self.unset_unknown(v, vspan)
        if isinstance(v, Unknown):
            self.unknown(v, f"{path}.{key}", vspan)
            return None
        if v is None or v == "":
            if required:
                self.bag.error("E611", f"{path}.{key} is missing", span)
            return None
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            self.bag.error("E611", f"{path}.{key} must be a string, not {type(v).__name__}", vspan)
            return None
        return str(v)

    # -------------------------------------------------------------- NSGs and rules

    def add_nsg(self, name: str, obj: dict, path: str, span: Span) -> None:
        props, sub = props_of(obj)
        acc = self.nsgs.get(name)
        if acc is None:
            acc = self.nsgs[name] = _NsgAcc(name, span)
        rules = get(props, "securityRules")
        rkey = key_of(props, "securityRules")
        rpath = f"{path}{sub}.{rkey}"
        if isinstance(rules, Unknown):
            self.unknown(rules, rpath, span_in(props, rkey, span))
        elif rules is not None:
            if not isinstance(rules, list):
                self.bag.error("E611", f"{rpath} must be an array", span_in(props, rkey, span))
            else:
                for i, r in enumerate(rules):
                    self.add_rule(name, r, f"{rpath}[{i}]", span_in(rules, i, span))
        defaults = get(props, "defaultSecurityRules")
        if isinstance(defaults, list):
            names = {str(get(d, "name")).lower() for d in defaults if isinstance(d, dict)}
            if names - _DEFAULT_NAMES:
                self.note(f"NSG {name}: defaultSecurityRules in the input are read-only; Azure's six default rules "
                          f"are used instead of {sorted(names - _DEFAULT_NAMES)}")
        for key, pending in (("subnets", "subnet"), ("networkInterfaces", "nic")):
            for j, ref in enumerate(get(props, key) or []):
                rid = get(ref, "id")
                if pending == "subnet":
                    parts = name_from_id(rid, "microsoft.network/virtualnetworks/subnets")
                    if parts:
                        self.pending_subnet_nsg.append((parts[0], parts[1], name, span_in(get(props, key), j, span)))
                else:
                    parts = name_from_id(rid, NIC_TYPE)
                    if parts:
                        self.pending_nic_nsg.append((parts[0], name, span_in(get(props, key), j, span)))

    def add_rule(self, nsg: str, obj: Any, path: str, span: Span) -> None:
        if isinstance(obj, Unknown):
            self.unknown(obj, path, span)
            return
        if not isinstance(obj, dict):
            self.bag.error("E611", f"{path} must be an object (a security rule)", span)
            return
        span = getattr(obj, "span", span) if known(getattr(obj, "span", NOSPAN)) else span
        rule = self.convert_rule(obj, path, span)
        if rule is None:
            return
        acc = self.nsgs.setdefault(nsg, _NsgAcc(nsg, span))
        old = acc.rules.get(rule.name)
        if old is not None and _strip(old) != _strip(rule):
            self.note(f"NSG {nsg}: rule {rule.name} is defined twice with different values; the later one "
                      f"({span}) is used")
        acc.rules[rule.name] = rule

    def add_child_rule(self, nsg: str, obj: dict, path: str, span: Span) -> None:
        """A ``networkSecurityGroups/securityRules`` resource; its NSG may be defined later or elsewhere."""
        self.pending_rules.append((nsg, obj, path, span))

    def convert_rule(self, obj: dict, path: str, span: Span) -> Rule | None:
        props, sub = props_of(obj)
        ppath = path + sub
        errors_before = len(self.bag.errors)
        notes: list[str] = []
        name = self.text(obj, "name", path, span)
        if name is not None and "/" in name:
            name = name.rsplit("/", 1)[1]  # effective rules: "securityRules/x"; child resources: "nsg/x"
        proto_t = self.text(props, "protocol", ppath, span)
        protocol = None
        if proto_t is not None:
            try:
                protocol = Protocol.parse(proto_t)
            except ValueError:
                self.bag.error("E612", f"{ppath}.protocol: unknown protocol '{proto_t}'",
                               span_in(props, key_of(props, "protocol"), span),
                               "Azure accepts Tcp, Udp, Icmp, Esp, Ah or * (any case)")
        access = self._enum(props, "access", Access, ppath, span)
        if access is Access.ALWAYS_ALLOW:
            self.bag.error("E680", f"{ppath}.access: an NSG security rule is Allow or Deny; AlwaysAllow exists only in "
                           "security admin rules", span_in(props, key_of(props, "access"), span),
                           "Azure rejects it here; if this is an admin rule, it belongs under "
                           "networkManagers/securityAdminConfigurations/ruleCollections/rules")
            access = None
        direction = self._enum(props, "direction", Direction, ppath, span)
        priority = self._priority(props, ppath, span, "E613", 100,
                                  "Azure accepts priorities from 100 to 4096 for user rules")
        description = get(props, "description")
        if isinstance(description, Unknown):
            notes.append(f"description not evaluated: {description.expr or description.reason}")
            description = ""
        description = "" if description is None else str(description)
        folded = folded_keys(props)
        src = self._side(props, folded, "source", ppath, span, notes)
        dst = self._side(props, folded, "destination", ppath, span, notes)
        sports = self._ports(props, folded, "source", ppath, span, notes)
        dports = self._ports(props, folded, "destination", ppath, span, notes)
        if len(self.bag.errors) > errors_before or None in (name, protocol, access, direction, priority, src, dst,
                                                            sports, dports):
            return None
        return Rule(name, priority, direction, access, protocol, src, sports, dst, dports, description,  # type: ignore[arg-type]
                    span, notes=tuple(notes))

    def _priority(self, props, ppath: str, span, code: str, lowest: int, hint: str) -> int | None:
        """A rule's priority between ``lowest`` and 4096 (NSG rules from 100, admin rules from 1), or None
        with ``code`` reported; numbers are read by ``limits.decimal`` so a 20,000-digit one is an error."""
        v = props.get("priority")
        if type(v) is int and lowest <= v <= 4096:  # the common case: no text, no span
            return v
        pt = self.text(props, "priority", ppath, span)
        if pt is None:
            return None
        pspan = span_in(props, key_of(props, "priority"), span)
        try:
            priority = decimal(pt)
        except ValueError:
            self.bag.error(code, f"{ppath}.priority: '{pt}' is not a number", pspan)
            return None
        if not lowest <= priority <= 4096:
            self.bag.error(code, f"{ppath}.priority: {priority} is outside {lowest}..4096", pspan, hint)
        return priority

    def _enum(self, props: dict, key: str, enum: Any, path: str, span: Span) -> Any:
        t = self.text(props, key, path, span)
        if t is None:
            return None
        m = _enum_table(enum).get(t.strip().lower())
        if m is not None:
            return m
        self.bag.error("E612", f"{path}.{key}: '{t}' is not one of {', '.join(m.value for m in enum)}",
                       span_in(props, key_of(props, key), span))
        return None

    def _symbolic(
        self, u: Unknown, path: str, span: Span, notes: list[str], what: str, warn: bool = True
    ) -> str | None:
        """Under --symbolic: the name standing for an unknown value; otherwise report it (None).
        ``warn``: say so with W602 (a parameter without a value has its own W601 instead)."""
        if not self.symbolic:
            self.unknown(u, path, span, symbolic_helps=True)
            return None
        name = symbolic_name(path)
        if warn:
            expr = f" (expression {u.expr})" if u.expr else ""
            self.bag.warning("W602", f"cannot evaluate {path}{expr} offline: {u.reason}; the rule's {what} is left "
                                     f"open as '{name}' (symbolic)", span,
                             "analyses that depend on this rule stop (E301/E206) until the value is known: give it "
                             "(--param, --params-file) if it comes from a parameter, or declare the name in the "
                             "imported policy (tag/define ports); --strict makes this an error (E610)")
        notes.append(f"{what} is not known offline: {u.expr or ''} ({u.reason}); left open as '{name}'")
        return name

    def _bare_param(self, v: Any, ph: Placeholder | None, what: str, notes: list[str],
                    lists: bool = False, plural: bool = False) -> str | None:
        """The parameter a rule field is exactly (``[parameters('x')]``, or a list of just that), which then
        stays a variable: analyses answer for every value (docs/import.md, "Unset parameters"). So is a list
        of prefixes split from it (``split(replace(parameters('x'), ' ', ''), ',')``, Placeholder.item): a
        question about one packet reads of a list only whether the packet's addresses lie in it, which one
        prefix reproduces, so the same variable answers for every list. ``lists``: the field is addresses
        (a split list of ports stays open: docs/import.md)."""
        if ph is None or not (ph.bare or (ph.item and lists)) or not (v is ph or (isinstance(v, list) and len(v) == 1
                                                                      and v[0] is ph)):
            return None
        name = ph.of if ph.item else next(iter(ph.params))
        assert name is not None
        if ph.item:
            self.used_unset(ph, f"the {what} of rules built from it are a list of prefixes split from it, as the "
                                f"template does: query, check and lint answer for every list (symbolic; pin it "
                                f"with a comma-separated value such as --param {name}=10.1.0.0/24,192.0.2.7)")
        else:
            among = f" the template allows ({', '.join(ph.allowed)})" if ph.allowed else ""
            self.used_unset(ph, f"the {what} of rules built from it are symbolic: query, check and lint answer for "
                                f"every value{among}")
        decl = self.params.setdefault(name, ParamDecl(name, tuple(ph.allowed), ph.declared_at or NOSPAN))
        # A list field that is the whole parameter (Terraform's `source_address_prefixes = var.blocked`) reads
        # it as a list too.
        if (ph.item or (plural and v is ph)) and not decl.lists:
            self.params[name] = replace(decl, lists=True)
        notes.append(f"{what} are {param_label(name)}, which has no value: answers hold for every value")
        return name

    def _regional_param(self, v: Any, ph: Placeholder | None, side: str, notes: list[str], span: Span) -> str | None:
        """A service tag named with a parameter nobody gave (``[format('Storage.{0}', parameters('location'))]``,
        ``"Storage.${var.location}"``): whatever the value, the tag Azure reads is one of the regional tags
        ``Storage.<Region>``, so the side is a parameter ranging over those of the tag data (``Storage.*``;
        docs/import.md "Service tags named with the region")."""
        if ph is None or not (v is ph or (isinstance(v, list) and len(v) == 1 and v[0] is ph)) \
                or len(ph.params) != 1:
            return None
        (param,) = ph.params
        m = _REGIONAL.fullmatch(str(ph))
        if m is None or not (m.group(2) == param or param.endswith("." + m.group(2))):
            return None
        family = m.group(1)
        name = f"{family}.{param}"
        self.used_unset(ph, f"the {side} addresses of rules built from it are one of the regional service tags "
                            f"{family}.<Region> of the tag data (symbolic: query, check and lint answer for every "
                            f"region; without tag data they stop with E301)")
        self.params.setdefault(name, ParamDecl(name, (f"{family}.*",), span))  # where the tag is written
        notes.append(f"{side} addresses are the service tag {family}.<{param}>, which has no value: answers hold "
                     f"for every regional tag {family}.<Region> of the tag data")
        return name

    def _existing_prefix(self, u: Unknown, span: Span, what: str, notes: list[str]) -> str | None:
        """``[reference(SUBNET_ID).addressPrefix]`` of a subnet of a VNet not in the inputs (a template adding
        an NSG to an existing subnet writes its rules so): the subnet's prefix, the same variable query and
        check place the subnet with (model.existing_space), rather than a value left open."""
        if not re.fullmatch(r"\[\s*reference\(.*\)\.addressPrefix\s*\]", u.expr, re.IGNORECASE | re.DOTALL):
            return None
        m = re.match(r"reference\('([^']*)'\) reads a resource that is not defined", u.reason)
        names = name_from_id(m.group(1), SUBNET_TYPE) if m else None
        if not names or names[0] in self.vnets:
            return None
        vnet, subnet = names[0], names[1]
        self._existing_subnet(vnet, subnet, span)
        name = existing_space(vnet, subnet)
        notes.append(f"{what} are {param_label(name)}, not in the inputs: answers hold for every value")
        return name

    def _open_field(self, v: Any, fspan: Span, fpath: str, what: str, one: str, notes: list[str],
                    side: str | None = None, plural: bool = False) -> tuple[bool, Ref | None]:
        """A rule field left open: (True, the name it stands for) when ``v`` is a parameter without a value or
        holds a value nsgsolve cannot compute, (True, None) when that is an error (reported), else
        (False, None). ``what``: the field's values in words ("source addresses"); ``one``: for W602;
        ``side``: for addresses, which may be a regional service tag named with a parameter."""
        u = find_unknown(v)
        ph = find_unset(v) if u is None else None
        name = self._bare_param(v, ph, what, notes, lists=side is not None, plural=plural) or \
            (self._regional_param(v, ph, side, notes, fspan) if side is not None else None)
        if name is None and u is not None and (v is u or (isinstance(v, list) and len(v) == 1 and v[0] is u)):
            name = self._existing_prefix(u, fspan, what, notes)
        if name is not None:
            return True, Ref(param_name(name), fspan)
        if ph is not None:
            u = self.unset_unknown(ph, fspan)
            if self.symbolic:
                self.used_unset(ph, f"the {what} of rules built from it are left open (symbolic)")
        if u is not None:
            sym = self._symbolic(u, fpath, u.span if u.span.line else fspan, notes, one,
                                 warn=ph is None and not getattr(u, "vars", ()))  # Terraform: W620 says it
            return True, Ref(sym, u.span if u.span.line else fspan) if sym else None
        return False, None

    def _side(self, props: dict, folded: dict[str, str], side: str, path: str, span: Span,
              notes: list[str]) -> RuleSide | None:
        """One rule side: union of the singular and plural prefix fields, or the ASG list."""
        # In order: a prefix already read (a Cidr), or (text, span, what _item_path words) to read below.
        items: list[Any] = []
        seen: set[str] = set()  # a set: a side of 20,000 prefixes must not take quadratic time
        asgs: list[Ref] = []
        cached = _CIDR_CACHE.get
        for f, low, groups in _SIDE_FIELDS[side]:
            k = f if f in props else folded.get(low, f)
            v = props.get(k)
            if v is None:
                continue
            fspan = span_in(props, k, span)
            fpath = f"{path}.{k}"
            if type(v) is not str:  # plain text (most fields) holds no unknown or unset value
                is_open, ref = self._open_field(v, fspan, fpath, f"{side} addresses", f"{side} address", notes,
                                                 side, plural=low.endswith("es"))
                if is_open:
                    return TagSide(ref, fspan) if ref else None
            is_list = isinstance(v, list)
            values = v if is_list else [v]
            # Per item of sides with thousands: the span only (a path string is made for an error alone).
            spans = item_spans(values, fspan) if is_list else (fspan,)
            if groups:
                for i, x in enumerate(values):
                    rid = get(x, "id") if isinstance(x, dict) else x
                    names = name_from_id(rid, ASG_TYPE)
                    if not names:
                        self.bag.error("E614", f"{_item_path(fpath, i, is_list)}: not an application security "
                                       f"group id: {rid!r}", spans[i])
                        continue
                    asgs.append(Ref(names[0], spans[i]))
                    self.asg_refs.setdefault(names[0], spans[i])
                continue
            for i, x in enumerate(values):
                if type(x) is str:
                    fast = cached(x)  # the plain a.b.c.d[/n] of nearly every rule, read before (no spaces)
                    if fast is not None:
                        if x not in seen:
                            seen.add(x)
                            items.append(_cidr(fast[0], fast[1], spans[i]))
                        continue
                if isinstance(x, (str, int)) and (t := str(x).strip()) != "":
                    if t not in seen:
                        seen.add(t)
                        items.append((t, spans[i], (fpath, i, is_list)))
                elif x not in (None, ""):
                    self.bag.error("E614", f"{_item_path(fpath, i, is_list)}: expected an address prefix, found "
                                   f"{type(x).__name__}", spans[i])
        if asgs and items:
            self.bag.error("E615", f"{path}: the {side} names both application security groups and address "
                           f"prefixes", asgs[0].span, "Azure accepts one of: prefix(es), a service tag, ASGs")
            return None
        if asgs:
            return AsgSide(tuple(asgs), asgs[0].span)
        if not items:
            self.bag.error("E616", f"{path}: the rule has no {side} address (no {side}AddressPrefix, "
                           f"{side}AddressPrefixes or {side}ApplicationSecurityGroups)", span)
            return None
        first = items[0]
        if len(items) == 1 and type(first) is tuple and not _is_ipish(first[0]):
            t, s, _ = first
            if t.lower() in ("*", "any"):
                return AnyAddress(s)
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]*", t):
                self.bag.error("E617", f"{_item_path(*first[2])}: '{t}' is not an address prefix, range or "
                               "service tag", s)
                return None
            return TagSide(Ref(t, s), s)
        out: list[AddrItem] = []
        for it in items:
            if type(it) is not tuple:
                out.append(it)
                continue
            t, s, p = it
            fast = _plain_cidr(t)
            if fast is not None:
                out.append(_cidr(fast[0], fast[1], s))
                continue
            if not _is_ipish(t):
                self.bag.error("E617", f"{_item_path(*p)}: '{t}' in a list of prefixes", s,
                               "a service tag or '*' must be the only value of its side (Azure rejects it in a list)")
                continue
            a = self._addr(t, s, _item_path(*p), notes)
            if a is not None:
                out.append(a)
        if len(out) != len(items):
            return None
        return PrefixSide(tuple(out), first.span if type(first) is not tuple else first[1])

    def _addr(self, t: str, s: Span, p: str, notes: list[str]) -> AddrItem | None:
        fast = parse_ipv4_cidr(t)  # the plain a.b.c.d[/n] of nearly every rule, in integers
        if fast is not None:
            ip, length = fast
            network = ip & (MAX_IP ^ ((1 << (32 - length)) - 1))
            if network == ip:  # host bits set: the path below words the note
                return Cidr(network, length, s)
        try:
            if ":" in t:
                return self._addr_v6(t, s, notes)
            if "-" in t:
                a, b = (ipaddress.IPv4Address(x.strip()) for x in t.split("-", 1))
                if int(a) > int(b):
                    raise ValueError("range start after its end")
                return IpRange(int(a), int(b), s)
            net = ipaddress.IPv4Network(t, strict=False)
            if "/" in t and int(ipaddress.IPv4Address(t.split("/")[0])) != int(net.network_address):
                notes.append(f"{t} has host bits set; read as {net} (as Azure does)")
            return Cidr(int(net.network_address), net.prefixlen, s)
        except ValueError as e:
            self.bag.error("E617", f"{p}: '{t}' is not a valid address, prefix or range ({e})", s)
            return None

    @staticmethod
    def _addr_v6(t: str, s: Span, notes: list[str]) -> AddrItem:
        """An IPv6 address, prefix or range (raises ValueError as the IPv4 path does)."""
        if "-" in t:
            lo, hi = (V6_BASE + int(ipaddress.IPv6Address(x.strip())) for x in t.split("-", 1))
            if lo > hi:
                raise ValueError("range start after its end")
            return IpRange(lo, hi, s)
        net = ipaddress.IPv6Network(t.strip(), strict=False)
        if "/" in t and ipaddress.IPv6Address(t.split("/")[0].strip()) != net.network_address:
            notes.append(f"{t} has host bits set; read as {net} (as Azure does)")
        return Cidr(V6_BASE + int(net.network_address), net.prefixlen, s)

    def _ports(self, props: dict, folded: dict[str, str], side: str, path: str, span: Span,
               notes: list[str]) -> PortSpec | None:
        # In order: a port range already read (a PortRange), or (text, span, what _item_path words) to read.
        items: list[Any] = []
        seen: set[str] = set()
        star = False
        cached = _PORT_CACHE.get
        for f, low in _PORT_FIELDS[side]:
            k = f if f in props else folded.get(low, f)
            v = props.get(k)
            if v is None:
                continue
            fspan = span_in(props, k, span)
            fpath = f"{path}.{k}"
            if type(v) is not str:  # plain text (most fields) holds no unknown or unset value
                is_open, ref = self._open_field(v, fspan, fpath, f"{side} ports", f"{side} ports", notes)
                if is_open:
                    return PortSpec((PortsRef(ref),), fspan) if ref else None
            is_list = isinstance(v, list)
            values = v if is_list else [v]
            spans = item_spans(values, fspan) if is_list else (fspan,)
            for i, x in enumerate(values):
                if type(x) is str:
                    r = cached(x)  # a port or range read before (its text has no spaces around it)
                    if r is not None:
                        if x not in seen:
                            seen.add(x)
                            items.append(_port_item(r[0], r[1], spans[i]))
                        continue
                if x is None or x == "":
                    continue
                t = str(x).strip()
                if t not in seen:  # a set: a list of thousands of ports must not take quadratic time
                    seen.add(t)
                    star = star or t in _ANY_PORT
                    items.append((t, spans[i], (fpath, i, is_list)))
        if not items:
            self.bag.error("E618", f"{path}: the rule has no {side} port ({side}PortRange or {side}PortRanges)", span,
                           "Azure requires one; write '*' for every port")
            return None
        first = items[0]
        first_span = first.span if type(first) is not tuple else first[1]
        if star:
            if len(items) > 1:
                notes.append(f"{side} ports list '*' with other ports; read as '*'")
            return PortSpec(None, first_span)
        out = []
        for it in items:
            if type(it) is not tuple:
                out.append(it)
                continue
            t, s, p = it
            r = _port_range(t)
            if r is None:
                self.bag.error("E618", f"{_item_path(*p)}: '{t}' is not a port or port range (0-65535, a-b)", s)
                continue
            out.append(_port_item(r[0], r[1], s))
        if len(out) != len(items):
            return None
        return PortSpec(tuple(out), first_span)

    # -------------------------------------------------------------- AVNM security admin rules

    def add_nm_group(self, nm: str, group: str, obj: dict, path: str, span: Span) -> None:
        self.nm_groups.setdefault((nm, group), span)

    def add_nm_member(self, nm: str, group: str, obj: dict, path: str, span: Span) -> None:
        props, sub = props_of(obj)
        rid = get(props, "resourceId")
        rspan = span_in(props, key_of(props, "resourceId"), span)
        if isinstance(rid, Unknown):
            self.unknown(rid, f"{path}{sub}.resourceId", rspan)
            return
        names = name_from_id(rid, VNET_TYPE)
        if not names:
            self.bag.error("E685", f"{path}{sub}.resourceId: a static member of network group '{group}' must be a "
                           f"virtual network id, not {rid!r}", rspan,
                           "network groups hold VNets: /subscriptions/.../providers/Microsoft.Network/"
                           "virtualNetworks/NAME")
            return
        self.nm_members.append((nm, group, names[0], rspan))

    def add_nm_config(self, nm: str, cfg: str, obj: dict, path: str, span: Span) -> None:
        self.nm_configs.setdefault((nm, cfg), span)

    def add_nm_collection(self, nm: str, cfg: str, coll: str, obj: dict, path: str, span: Span) -> None:
        props, sub = props_of(obj)
        key = key_of(props, "appliesToGroups")
        applies = get(props, "appliesToGroups")
        apath = f"{path}{sub}.{key}"
        groups: list[tuple[str, Span]] = []
        if isinstance(applies, Unknown):
            self.unknown(applies, apath, span_in(props, key, span))
        elif isinstance(applies, list):
            for i, g in enumerate(applies):
                gspan = span_in(applies, i, span)
                gid = get(g, "networkGroupId") if isinstance(g, dict) else None
                if isinstance(gid, Unknown):
                    self.unknown(gid, f"{apath}[{i}].networkGroupId", gspan)
                    continue
                names = name_from_id(gid, NM_GROUP_TYPE)
                if not names:
                    self.bag.error("E684", f"{apath}[{i}].networkGroupId: not a network group id: {gid!r}", gspan,
                                   "a rule collection applies to .../networkManagers/NM/networkGroups/GROUP")
                    continue
                if names[0] != nm:
                    self.note(f"rule collection {cfg}/{coll} of network manager {nm} applies to a group of network "
                              f"manager {names[0]}; read as that manager's group")
                groups.append((f"{names[0]}\0{names[1]}", gspan))
        elif applies is not None:
            self._not_list(applies, apath, span_in(props, key, span))
        self.nm_collections[(nm, cfg, coll)] = (groups, span)

    def add_nm_rule(self, nm: str, cfg: str, coll: str, name: str, obj: dict, path: str, span: Span) -> None:
        props, sub = props_of(obj)
        ppath = path + sub
        kind = get(obj, "kind")
        if isinstance(kind, str) and kind.lower() != "custom":
            self.bag.error("E681", f"{path}.kind: '{kind}' admin rules are not supported (only kind Custom)",
                           span_in(obj, key_of(obj, "kind"), span),
                           "Default rules take their match from Microsoft's recommended list by 'flag'; write the "
                           "rule as kind Custom with its protocol, addresses and ports")
            return
        errors_before = len(self.bag.errors)
        notes: list[str] = []
        proto_t = self.text(props, "protocol", ppath, span)
        protocol = None
        if proto_t is not None:
            try:
                protocol = Protocol.parse(proto_t)
            except ValueError:
                self.bag.error("E612", f"{ppath}.protocol: unknown protocol '{proto_t}'",
                               span_in(props, key_of(props, "protocol"), span),
                               "admin rules accept Tcp, Udp, Icmp, Esp, Ah or Any")
        access = self._enum(props, "access", Access, ppath, span)
        direction = self._enum(props, "direction", Direction, ppath, span)
        priority = self._priority(props, ppath, span, "E682", 1,
                                  "security admin rules take priorities 1 (first) to 4096")
        description = get(props, "description")
        description = "" if description is None or isinstance(description, Unknown) else str(description)
        srcs = self._admin_side(props, "sources", ppath, span, notes)
        dsts = self._admin_side(props, "destinations", ppath, span, notes)
        sports = self._admin_ports(props, "sourcePortRanges", ppath, span)
        dports = self._admin_ports(props, "destinationPortRanges", ppath, span)
        if len(self.bag.errors) > errors_before or None in (protocol, access, direction, priority, srcs, dsts,
                                                            sports, dports):
            return
        self.nm_rules.append(((nm, cfg, coll), AdminRule(
            name, priority, direction, access, protocol, srcs, sports, dsts, dports,  # type: ignore[arg-type]
            description, span, coll, cfg, tuple(notes))))

    def _admin_side(self, props: dict, key: str, path: str, span: Span, notes: list[str]) -> tuple | None:
        """``sources[]``/``destinations[]``: items ``{addressPrefix, addressPrefixType: IPPrefix|ServiceTag}``;
        none (or ``*``) is any address. Consecutive prefixes make one list, tags stand alone."""
        k = key_of(props, key)
        v = get(props, k)
        kspan = span_in(props, k, span)
        kpath = f"{path}.{k}"
        if isinstance(v, Unknown):
            self.unknown(v, kpath, kspan)
            return None
        if v is None:
            return ()
        if not isinstance(v, list):
            self._not_list(v, kpath, kspan)
            return None
        sides: list[RuleSide] = []
        run: list[AddrItem] = []
        ok = True
        for i, item in enumerate(v):
            ispan = span_in(v, i, kspan)
            ipath = f"{kpath}[{i}]"
            if not isinstance(item, dict):
                self.bag.error("E683", f"{ipath}: expected an object with addressPrefix and addressPrefixType", ispan)
                ok = False
                continue
            prefix, ptype = get(item, "addressPrefix"), get(item, "addressPrefixType")
            for x, what in ((prefix, "addressPrefix"), (ptype, "addressPrefixType")):
                if isinstance(x, Unknown):
                    self.unknown(x, f"{ipath}.{what}", ispan)
                    ok = False
            if not ok or isinstance(prefix, Unknown) or isinstance(ptype, Unknown):
                continue
            text = str(prefix or "").strip()
            kind = str(ptype or "").strip().lower()
            if text == "*" and kind != "servicetag":
                return ()  # every address, whatever else the list holds
            if kind == "servicetag":
                if run:
                    sides.append(PrefixSide(tuple(run), ispan))
                    run = []
                if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]*", text):
                    self.bag.error("E683", f"{ipath}.addressPrefix: '{text}' is not a service tag name", ispan)
                    ok = False
                    continue
                sides.append(TagSide(Ref(text, ispan), ispan))
            elif kind == "ipprefix":
                it = self._addr(text, ispan, f"{ipath}.addressPrefix", notes)
                if it is None:
                    ok = False
                else:
                    run.append(it)
            else:
                self.bag.error("E683", f"{ipath}.addressPrefixType: '{ptype}' is not IPPrefix or ServiceTag", ispan)
                ok = False
        if run:
            sides.append(PrefixSide(tuple(run), span))
        return tuple(sides) if ok else None

    def _admin_ports(self, props: dict, key: str, path: str, span: Span) -> PortSpec | None:
        k = key_of(props, key)
        v = get(props, k)
        kspan = span_in(props, k, span)
        if isinstance(v, Unknown):
            self.unknown(v, f"{path}.{k}", kspan)
            return None
        if v is None or v == []:
            return PortSpec(None, kspan)
        values = v if isinstance(v, list) else [v]
        out = []
        for i, x in enumerate(values):
            t = str(x).strip()
            s = span_in(v, i, kspan) if isinstance(v, list) else kspan
            if t in ("*", "0-65535"):
                return PortSpec(None, s)
            m = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", t)
            lo = int(m.group(1)) if m else -1
            hi = int(m.group(2)) if m and m.group(2) else lo
            if not m or not 0 <= lo <= hi <= 65535:
                self.bag.error("E618", f"{path}.{k}[{i}]: '{t}' is not a port or port range (0-65535, a-b)", s)
                return None
            out.append(PortRange(lo, hi, s))
        return PortSpec(tuple(out), kspan)

    def _build_admin(self) -> tuple[tuple[NetworkGroup, ...], tuple[AdminConfig, ...]]:
        """Groups and configurations with per-manager names made unique: ``group`` when only one manager
        has that name, else ``manager.group``."""
        def naming(keys) -> dict:
            count: dict[str, int] = {}
            for _, n in keys:
                count[n] = count.get(n, 0) + 1
            return {k: (k[1] if count[k[1]] == 1 else f"{k[0]}.{k[1]}") for k in keys}

        group_keys = list(self.nm_groups)
        for nm, g, _, s in self.nm_members:
            if (nm, g) not in self.nm_groups:
                self.nm_groups[(nm, g)] = s
                group_keys.append((nm, g))
        gname = naming(group_keys)
        members: dict[tuple[str, str], list[Ref]] = {k: [] for k in group_keys}
        for nm, g, vnet, s in self.nm_members:
            if vnet not in self.vnets:
                self.note(f"network group {g} lists VNet {vnet}, which is not in the inputs; left out")
                continue
            if vnet not in [r.name for r in members[(nm, g)]]:
                members[(nm, g)].append(Ref(vnet, s))
        groups = tuple(NetworkGroup(gname[k], tuple(members[k]), self.nm_groups[k]) for k in group_keys)
        cfg_keys = list(self.nm_configs)
        for (nm, cfg, _) in self.nm_collections:
            if (nm, cfg) not in self.nm_configs:
                self.nm_configs[(nm, cfg)] = self.nm_collections[(nm, cfg, _)][1]
                cfg_keys.append((nm, cfg))
        deployed = [k for k in cfg_keys if k[0] not in self.nm_no_admin and (
            k[0] not in self.nm_deployed or k[0] in self.nm_deploy_all or k[1] in self.nm_deployed[k[0]])]
        for nm, cfg in cfg_keys:
            if (nm, cfg) not in deployed and nm not in self.nm_no_admin:
                self.note(f"security admin configuration {cfg} of network manager {nm} is not deployed (no "
                          f"SecurityAdmin deployment of the manager lists it): left out")
        cfg_keys = deployed
        cname = naming(cfg_keys)
        rules: dict[tuple[str, str, str], list[AdminRule]] = {}
        for key, r in self.nm_rules:
            if key not in self.nm_collections:
                self.note(f"admin rule {r.name} belongs to rule collection {key[1]}/{key[2]}, which is not in the "
                          "inputs: it applies to no VNet here")
                continue
            rules.setdefault(key, []).append(r)
        configs = []
        for ck in cfg_keys:
            colls = []
            for (nm, cfg, coll), (applies, span) in self.nm_collections.items():
                if (nm, cfg) != ck:
                    continue
                refs = []
                for gid, gspan in applies:
                    gk = tuple(gid.split("\0", 1))
                    if gk not in gname:
                        self.bag.error("E684", f"rule collection {cfg}/{coll} applies to network group '{gk[1]}' of "
                                       f"network manager {gk[0]}, which is not in the inputs", gspan,
                                       "import the network group (and its staticMembers) too")
                        continue
                    refs.append(Ref(gname[gk], gspan))
                rs = tuple(replace(r, config=cname[ck]) for r in rules.get((nm, cfg, coll), []))
                colls.append(RuleCollection(coll, tuple(refs), rs, span))
            configs.append(AdminConfig(cname[ck], tuple(colls), self.nm_configs[ck]))
        return groups, tuple(configs)

    # -------------------------------------------------------------- topology

    def add_asg(self, name: str, span: Span) -> None:
        self.asgs.setdefault(name, Asg(name, span))

    def add_vnet(self, name: str, obj: dict, path: str, span: Span) -> None:
        props, sub = props_of(obj)
        ppath = path + sub
        acc = self.vnets.get(name)
        if acc is None:
            acc = self.vnets[name] = _VnetAcc(name, span)
        space = get(props, "addressSpace")
        spath = f"{ppath}.addressSpace.addressPrefixes"
        pfx = get(space, "addressPrefixes") if isinstance(space, dict) else space
        ph = find_unset(pfx)
        if ph is not None:
            # Without its address space the VNet cannot be placed for commands that need concrete addresses:
            # its subnets and NICs are left out there (their NSGs are analysed unattached). A space that is
            # exactly one parameter is kept as that parameter for query and check (model.OpenVNet).
            bare = self._bare_space(pfx, ph)
            if bare is not None:
                self.used_unset(ph, f"address space of VNet {name}: query and check place its subnets and NICs "
                                    f"for every value, a private prefix (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                                    f"100.64.0.0/10); other commands leave them out")
                self.open_spaces[name] = (bare, span)
                self.open_subnets.setdefault(name, {})
                self._vnet_subnets(name, props, ppath, span)
            else:
                self.used_unset(ph, f"address space of VNet {name} (the VNet, its subnets and NICs are not modelled)")
            self.unplaced_vnets[name] = f"its address space comes from parameter {', '.join(sorted(ph.params))}"
            return
        if not self.known(pfx, spath, span_in(props, key_of(props, "addressSpace"), span)):
            return
        pfx_list = pfx if isinstance(pfx, list) else ([pfx] if pfx else [])
        for i, t in enumerate(pfx_list):
            c = self._vnet_prefix(t, span_in(pfx, i, span) if isinstance(pfx, list) else span, f"{spath}[{i}]",
                                  f"VNet {name}")
            if c is not None and c not in acc.spaces:
                acc.spaces.append(c)
        self._vnet_subnets(name, props, ppath, span)
        peers = get(props, "virtualNetworkPeerings")
        if isinstance(peers, list):
            for i, p in enumerate(peers):
                self.add_peering(name, p, f"{ppath}.virtualNetworkPeerings[{i}]", span_in(peers, i, span))

    @staticmethod
    def _bare_space(pfx: Any, ph: Placeholder) -> str | None:
        """The parameter an address space is exactly (``[parameters('x')]`` or a list of just that)."""
        if ph.bare and (pfx is ph or (isinstance(pfx, list) and len(pfx) == 1 and pfx[0] is ph)):
            return next(iter(ph.params))
        return None

    def _vnet_subnets(self, name: str, props: dict, ppath: str, span: Span) -> None:
        subs = get(props, "subnets")
        if subs is not None:
            skey = key_of(props, "subnets")
            if isinstance(subs, Unknown) or not isinstance(subs, list):
                self._not_list(subs, f"{ppath}.{skey}", span_in(props, skey, span))
                return
            for i, s in enumerate(subs):
                if isinstance(s, Unknown):
                    self.unknown(s, f"{ppath}.{skey}[{i}]", span_in(subs, i, span))
                    continue
                sname = self.text(s, "name", f"{ppath}.{skey}[{i}]", span_in(subs, i, span))
                if sname:
                    self.add_subnet(name, sname, s, f"{ppath}.{skey}[{i}]", span_in(subs, i, span))

    def _vnet_prefix(self, t: Any, s: Span, p: str, owner: str) -> Cidr | None:
        if not isinstance(t, str):
            self.bag.error("E619", f"{p}: expected an address prefix", s)
            return None
        try:
            if ":" in t:
                n6 = ipaddress.IPv6Network(t.strip(), strict=False)
                return Cidr(V6_BASE + int(n6.network_address), n6.prefixlen, s)
            net = ipaddress.IPv4Network(t.strip(), strict=False)
        except ValueError as e:
            self.bag.error("E619", f"{p}: '{t}' is not an IPv4 or IPv6 prefix ({e})", s)
            return None
        return Cidr(int(net.network_address), net.prefixlen, s)

    def add_subnet(self, vnet: str, name: str, obj: dict, path: str, span: Span) -> None:
        self.pending_subnets.append((vnet, name, obj, path, span))

    def _build_subnet(self, vnet: str, name: str, obj: dict, path: str, span: Span) -> None:
        props, sub = props_of(obj)
        ppath = path + sub
        acc = self.vnets.get(vnet)
        if vnet in self.existing_vnets:
            self._existing_subnet(vnet, name, span)
        if vnet in self.open_spaces:
            self._open_subnet(vnet, name, props, ppath, span)
            return
        if vnet in self.unplaced_vnets:
            self.note(f"subnet {vnet}/{name} not modelled: {self.unplaced_vnets[vnet]}, which has no value")
            return
        if acc is None:
            # Typical of templates that attach a new NSG to an existing subnet. Commands that need concrete
            # addresses cannot place the subnet (its NSG is analysed unattached there); query and check take
            # the VNet's space as unknown (model.OpenVNet), W606 says so.
            nsg = get(props, "networkSecurityGroup")
            nsg_names = name_from_id(get(nsg, "id"), NSG_TYPE) if isinstance(nsg, dict) else None
            also = f" (its association with NSG {nsg_names[0]} is not modelled there)" if nsg_names else ""
            self.note(f"subnet {vnet}/{name} belongs to VNet {vnet}, which is not in the inputs: only query and "
                      f"check place it, for every address space{also}")
            self._existing_subnet(vnet, name, span)
            self._open_subnet(vnet, name, props, ppath, span, existing_space(vnet, name))
            return
        prefixes: list[tuple[Any, Span, str]] = []  # (value, where it is written, its path)
        for f in ("addressPrefix", "addressPrefixes"):
            k = key_of(props, f)
            v = get(props, f)
            vspan = span_in(props, k, span)
            ph = find_unset(v)
            if ph is not None:
                self.used_unset(ph, f"address prefix of subnet {vnet}/{name} (the subnet and its NICs are not "
                                    f"modelled)")
                self.note(f"subnet {vnet}/{name}: its address prefix comes from parameter "
                          f"{', '.join(sorted(ph.params))}, which has no value; subnet not modelled")
                return
            if not self.known(v, f"{ppath}.{f}", vspan):
                return
            if isinstance(v, list):
                prefixes += [(t, span_in(v, i, vspan), f"{ppath}.{k}[{i}]") for i, t in enumerate(v)]
            elif v:
                prefixes.append((v, vspan, f"{ppath}.{k}"))
        cidrs: list[Cidr] = []
        for t, tspan, tpath in prefixes:
            c = self._vnet_prefix(t, tspan, tpath, f"subnet {vnet}/{name}")
            if c is not None and c not in cidrs:
                cidrs.append(c)
        if not cidrs:
            if prefixes:  # a prefix was wrong: its error is reported
                return
            self.bag.error("E619", f"{ppath}: subnet {vnet}/{name} has no addressPrefix", span)
            return
        cidrs.sort(key=lambda c: c.is_v6)  # the IPv4 prefix first, as the language writes a dual-stack subnet
        nsg = self._nsg_ref(props, ppath, span)
        if nsg is False:
            return
        old = acc.subnets.get(name)
        if old is not None and old.nsg and not nsg:
            nsg = old.nsg  # a later copy without the association (e.g. az vnet list before nsg show) keeps it
        acc.subnets[name] = Subnet(name, cidrs[0], nsg or None, span, tuple(cidrs[1:]))

    def _existing_subnet(self, vnet: str, subnet: str, span: Span) -> None:
        """Subnet ``subnet`` of VNet ``vnet``, which the inputs only refer to: an open VNet whose space, the
        subnet's prefix and peered space are unknown (model.existing_space), with W606 once per subnet."""
        if vnet not in self.open_spaces:
            self.open_spaces[vnet] = (existing_space(vnet), span)
            self.existing_vnets.add(vnet)
        subs = self.open_subnets.setdefault(vnet, {})
        if subnet not in subs:
            subs[subnet] = OpenSubnet(subnet, None, existing_space(vnet, subnet), span)
            self.bag.warning("W606", f"subnet {vnet}/{subnet} belongs to VNet {vnet}, which is not in the inputs: "
                             "query and check answer for every address space it may have (a private prefix, the "
                             "subnet some prefix inside it, any peered or on-premises space); other commands "
                             "leave it out", span,
                             f"add VNet {vnet} to the inputs (its template, or 'az network vnet show' output) to "
                             "analyse it with its real addresses everywhere")

    def _open_subnet(self, vnet: str, name: str, props: dict, ppath: str, span: Span,
                     param: str | None = None) -> None:
        """A subnet of a VNet whose space is a parameter: its prefix is a parameter too when it is exactly one,
        else (computed, or a literal the parameter's value must hold) some prefix inside the space."""
        for f in ("addressPrefix", "addressPrefixes"):
            v = get(props, f)
            ph = find_unset(v)
            if ph is not None and self._bare_space(v, ph) is not None:
                param = self._bare_space(v, ph)
                self.used_unset(ph, f"address prefix of subnet {vnet}/{name} (inside VNet {vnet}'s space, "
                                    "a parameter too)")
        nsg = self._nsg_ref(props, ppath, span)
        if nsg is False:
            return
        old = self.open_subnets[vnet].get(name)
        self.open_subnets[vnet][name] = OpenSubnet(name, nsg or (old.nsg if old else None),
                                                   param or (old.param if old else None), span)

    def _nsg_ref(self, props: dict, path: str, span: Span) -> Ref | None | Literal[False]:
        """The ``networkSecurityGroup.id`` association; False after an error."""
        ref = get(props, "networkSecurityGroup")
        if ref is None:
            return None
        k = key_of(props, "networkSecurityGroup")
        rspan = span_in(props, k, span)
        if not self.known(ref, f"{path}.{k}.id", rspan):
            return False
        rid = get(ref, "id") if isinstance(ref, dict) else ref
        names = name_from_id(rid, NSG_TYPE)
        if not names:
            self.bag.error("E621", f"{path}.{k}.id: not a network security group id: {rid!r}",
                           span_in(ref, key_of(ref, "id"), rspan))
            return False
        return Ref(names[0], span_in(ref, key_of(ref, "id"), rspan))

    def add_peering(self, vnet: str, obj: dict, path: str, span: Span) -> None:
        self.pending_peerings.append((vnet, obj, path, span))

    def _build_peering(self, vnet: str, obj: dict, path: str, span: Span) -> None:
        props, sub = props_of(obj)
        acc = self.vnets.get(vnet)
        if acc is None:
            self.note(f"peering {path} of VNet {vnet}, which is not in the inputs, ignored")
            return
        remote = get(props, "remoteVirtualNetwork")
        rpath = f"{path}{sub}.remoteVirtualNetwork.id"
        if not self.known(remote, rpath, span):
            return
        names = name_from_id(get(remote, "id"), VNET_TYPE)
        if not names:
            self.bag.error("E622", f"{rpath}: not a virtual network id", span)
            return
        if names[0] in self.vnets:
            if names[0] not in [p.name for p in acc.peerings]:
                acc.peerings.append(Ref(names[0], span))
            return
        # The remote VNet's address space is part of this VNet's VirtualNetwork tag; az prints it.
        space = get(get(props, "remoteAddressSpace"), "addressPrefixes")
        if isinstance(space, list) and space and find_unknown(space) is None:
            for i, t in enumerate(space):
                c = self._vnet_prefix(t, span, f"{path}{sub}.remoteAddressSpace.addressPrefixes[{i}]", f"VNet {vnet}")
                if c is not None:
                    acc.extra.append(c)
            self.note(f"VNet {vnet} peers with {names[0]}, which is not in the inputs: its address space "
                      f"{', '.join(str(t) for t in space)} is added to {vnet}'s VirtualNetwork tag")
            return
        self.bag.error("E622", f"{rpath}: VNet {vnet} peers with '{names[0]}', which is not in the inputs; its "
                       f"address space belongs to {vnet}'s VirtualNetwork tag", span,
                       "import the peered VNet too (its template or 'az network vnet list' output)")

    def add_nic(self, name: str, obj: dict, path: str, span: Span, live: bool = False) -> None:
        """``live``: the object describes a deployed NIC (az CLI / REST), whose ``privateIPAddress`` is the
        address Azure assigned even when the allocation method is Dynamic; in a template a dynamic
        configuration has no address until deployment."""
        props, sub = props_of(obj)
        ppath = path + sub
        nsg = self._nsg_ref(props, ppath, span)
        if nsg is False:
            return
        ipcs = get(props, "ipConfigurations")
        ikey = key_of(props, "ipConfigurations")
        if isinstance(ipcs, Unknown) or not isinstance(ipcs, list):
            self._not_list(ipcs, f"{ppath}.{ikey}", span_in(props, ikey, span))
            return
        subnet: SubnetRef | None = None
        out: list[IpConfig] = []
        for i, ipc in enumerate(ipcs or []):
            ipath = f"{ppath}.{ikey}[{i}]"
            ispan = span_in(ipcs, i, span)
            if isinstance(ipc, Unknown):
                self.unknown(ipc, ipath, ispan)
                return
            iprops, isub = props_of(ipc)
            ipp = ipath + isub
            version = get(iprops, "privateIPAddressVersion")
            v6 = isinstance(version, str) and version.lower() == "ipv6"
            sref = get(iprops, "subnet")
            if not self.known(sref, f"{ipp}.subnet.id", span_in(iprops, key_of(iprops, "subnet"), ispan)):
                return
            names = name_from_id(get(sref, "id"), SUBNET_TYPE)
            if not names:
                self.bag.error("E623", f"{ipp}.subnet.id: not a subnet id: {get(sref, 'id')!r}", ispan)
                return
            sr = SubnetRef(names[0], names[1], span_in(sref, key_of(sref, "id"), ispan))
            if subnet is None:
                subnet = sr
            elif (sr.vnet, sr.subnet) != (subnet.vnet, subnet.subnet):
                self.note(f"NIC {name}: IP configuration {get(ipc, 'name')} is in subnet {sr}, not {subnet}; "
                          f"nsgsolve models a NIC in one subnet, so it is left out")
                continue
            method = get(iprops, "privateIPAllocationMethod")
            addr = get(iprops, "privateIPAddress")
            ip: int | None = None
            for ph in (find_unset(method), find_unset(addr)):
                if ph is not None:
                    self.used_unset(ph, f"private IP of NIC {name} (modelled as dynamic: any usable address of "
                                        f"its subnet)")
                    if self.symbolic:
                        self.note(f"NIC {name}: private IP of {get(ipc, 'name')} comes from parameter "
                                  f"{', '.join(sorted(ph.params))}, which has no value; modelled as dynamic")
                        method = addr = None
                    else:
                        method = self.unset_unknown(ph, ispan)
            if isinstance(method, Unknown) or isinstance(addr, Unknown):
                u = method if isinstance(method, Unknown) else addr
                if not self.symbolic:
                    self.unknown(u, f"{ipp}.privateIPAddress", ispan)
                    return
                self.note(f"NIC {name}: private IP of {get(ipc, 'name')} is not known offline ({u.expr}); "
                          f"modelled as dynamic (any usable address of its subnet)")
            elif isinstance(addr, str) and addr and (method is None or str(method).lower() == "static" or live):
                try:
                    ip = (V6_BASE + int(ipaddress.IPv6Address(addr.strip())) if v6
                          else int(ipaddress.IPv4Address(addr.strip())))
                except ValueError:
                    self.bag.error("E623", f"{ipp}.privateIPAddress: '{addr}' is not an "
                                           f"{'IPv6' if v6 else 'IPv4'} address", ispan)
                    return
            asg_refs = []
            av = get(iprops, "applicationSecurityGroups")
            if not self.known(
                av, f"{ipp}.applicationSecurityGroups", span_in(iprops, "applicationSecurityGroups", ispan)
            ):
                return
            for j, a in enumerate(av or []):
                anames = name_from_id(get(a, "id"), ASG_TYPE)
                if not anames:
                    self.bag.error("E614", f"{ipp}.applicationSecurityGroups[{j}]: not an ASG id", ispan)
                    return
                asg_refs.append(Ref(anames[0], span_in(av, j, ispan)))
                self.asg_refs.setdefault(anames[0], span_in(av, j, ispan))
            ipc_name = get(ipc, "name")
            out.append(IpConfig(ip, tuple(asg_refs), ipc_name if isinstance(ipc_name, str) else "", ispan, v6=v6))
        if subnet is None:
            self.note(f"NIC {name} has no IP configuration; not modelled")
            return
        self.nics[name] = Nic(name, subnet, tuple(out), nsg or None, span)

    def add_scale_set_nics(self, vmss: str, config: str, obj: dict, path: str, span: Span,
                           instances: int | None = None) -> None:
        """A VM scale set's NIC configuration (``obj`` in the NIC shape, every IP configuration dynamic) as the
        NICs of its instances: ``VMSS.CONFIG.0`` and ``VMSS.CONFIG.1``. Instances are alike (one subnet, NSG and
        ASGs, any usable address each), so two stand for any number, and traffic between two instances is a
        pair of distinct NICs like any other (one NIC standing for all could not express it: a NIC's traffic to
        itself never meets an NSG). Two whatever the count written (``instances``, for the note): autoscale
        changes it at run time. A configuration that cannot be placed costs its hosts, not the import: its
        errors become W604."""
        names = [f"{vmss}.{config}.{i}" for i in range(2)]
        before = len(self.bag.items)
        for n in names:
            self.add_nic(n, obj, path, span)
        errors = [d for d in self.bag.items[before:] if d.severity == "error"]
        if errors:
            self.bag.items[before:] = [d for d in self.bag.items[before:] if d.severity != "error"]
            for n in names:
                self.nics.pop(n, None)
            seen: set[tuple] = set()
            for d in errors:
                if (d.code, d.message, d.span) in seen:
                    continue
                seen.add((d.code, d.message, d.span))
                self.bag.warning("W604", f"NIC configuration {config} of VM scale set {vmss} is not modelled: "
                                         f"{d.message}", d.span, "fix the value (the scale set's NSGs are analysed "
                                                                 "all the same)")
            return
        count = f"{instances} instance(s) written, which autoscale may change" if instances is not None else \
            "its instances"
        self.note(f"VM scale set {vmss}: NIC configuration {config} is modelled as NICs {names[0]} and {names[1]}, "
                  f"two dynamic NICs standing for {count} (alike: any two instances behave as these two)")

    # -------------------------------------------------------------- result

    def build(self, source: str) -> Policy:
        for name in self.unplaced_vnets:
            self.vnets.pop(name, None)
            if name in self.open_spaces:
                self.note(f"VNet {name}: {self.unplaced_vnets[name]}, which has no value; query and check place "
                          f"its subnets and NICs for every value (a private prefix), other commands leave them out")
            else:
                self.note(f"VNet {name} not modelled: {self.unplaced_vnets[name]}, which has no value")
        for nsg, obj, path, span in self.pending_rules:
            if nsg not in self.nsgs:
                self.note(f"NSG {nsg} is not defined in the inputs; only its rules given as separate "
                          f"securityRules resources are modelled")
            self.add_rule(nsg, obj, path, span)
        for subnet_args in self.pending_subnets:
            self._build_subnet(*subnet_args)
        for peering_args in self.pending_peerings:
            self._build_peering(*peering_args)
        for vnet, sub, nsg, span in self.pending_subnet_nsg:
            acc = self.vnets.get(vnet)
            s = acc.subnets.get(sub) if acc else None
            o = self.open_subnets.get(vnet, {}).get(sub)
            if o is not None and o.nsg is None:
                self.open_subnets[vnet][sub] = replace(o, nsg=Ref(nsg, span))
            elif s is None:
                self.note(f"NSG {nsg} is associated with subnet {vnet}/{sub}, which is not in the inputs")
            elif s.nsg is None:
                acc.subnets[sub] = replace(s, nsg=Ref(nsg, span))  # type: ignore[union-attr]
        for nic_name, nsg, span in self.pending_nic_nsg:
            n = self.nics.get(nic_name)
            if n is None:
                self.note(f"NSG {nsg} is associated with NIC {nic_name}, which is not in the inputs")
            elif n.nsg is None:
                self.nics[nic_name] = Nic(n.name, n.subnet, n.ip_configs, Ref(nsg, span), n.span)
        # A NIC in a subnet the inputs do not define cannot be placed; say so rather than guess.
        open_nics: dict[str, list[Nic]] = {}
        for name, nic in list(self.nics.items()):
            acc = self.vnets.get(nic.subnet.vnet)
            if acc is None and nic.subnet.vnet not in self.unplaced_vnets:
                self._existing_subnet(nic.subnet.vnet, nic.subnet.subnet, nic.span)
            if nic.subnet.subnet in self.open_subnets.get(nic.subnet.vnet, {}):
                # Its address lies in a parameter's value: dynamic, whatever the template wrote.
                open_nics.setdefault(nic.subnet.vnet, []).append(
                    replace(nic, ip_configs=tuple(replace(c, ip=None) for c in nic.ip_configs if not c.v6)))
                del self.nics[name]
            elif acc is None or nic.subnet.subnet not in acc.subnets:
                self.note(f"NIC {name} is in subnet {nic.subnet}, which is not in the inputs; NIC not modelled")
                del self.nics[name]
        # Every association must name an NSG we have, or resolution could not evaluate the subnet or NIC.
        open_vnets = tuple(
            OpenVNet(v, param, tuple(self.open_subnets[v].values()), tuple(open_nics.get(v, ())), vspan,
                     existing_space(v, peered=True) if v in self.existing_vnets else None)
            for v, (param, vspan) in self.open_spaces.items())
        placed: list[tuple[str, Subnet | OpenSubnet]] = [(a.name, sb) for a in self.vnets.values()
                                                          for sb in a.subnets.values()]
        placed += [(o.name, sb) for o in open_vnets for sb in o.subnets]
        for vname, sb in placed:
            if sb.nsg and sb.nsg.name not in self.nsgs:
                self.bag.error("E624", f"subnet {vname}/{sb.name} is associated with NSG '{sb.nsg.name}', "
                               f"which is not in the inputs", sb.nsg.span,
                               "import the NSG too (its template or 'az network nsg list' output)")
        for nic in self.nics.values():
            if nic.nsg and nic.nsg.name not in self.nsgs:
                self.bag.error("E624", f"NIC {nic.name} is associated with NSG '{nic.nsg.name}', which is not in "
                               f"the inputs", nic.nsg.span, "import the NSG too")
        for name, span in self.asg_refs.items():
            if name not in self.asgs:
                self.asgs[name] = Asg(name, span)
                self.note(f"ASG {name} is referenced but not defined in the inputs; its members are the NICs "
                          f"given here")
        for nacc in self.nsgs.values():
            seen: dict[tuple[Direction, int], Rule] = {}
            for r in nacc.rules.values():
                other = seen.setdefault((r.direction, r.priority), r)
                if other is not r:
                    # Azure rejects this (SecurityRuleConflict); evaluation order would be undefined.
                    self.bag.error("E613", f"NSG {nacc.name}: rules '{other.name}' and '{r.name}' both have "
                                   f"{r.direction.value} priority {r.priority}", r.span,
                                   "Azure requires priorities unique per direction within an NSG")
        groups, admin_configs = self._build_admin()
        self.bag.raise_if_errors()
        vnets = tuple(
            VNet(a.name, tuple(a.spaces), tuple(a.subnets.values()), tuple(a.peerings), tuple(a.extra), a.span)
            for a in self.vnets.values())
        nsgs = tuple(Nsg(a.name, tuple(sorted(a.rules.values(), key=lambda r: (r.direction.value, r.priority))),
                         a.span) for a in self.nsgs.values())
        return Policy(vnets=vnets, nics=tuple(self.nics.values()), asgs=tuple(self.asgs.values()), nsgs=nsgs,
                      source=source, notes=tuple(self.notes), groups=groups, admin_configs=admin_configs,
                      params=tuple(self.params.values()), open_vnets=open_vnets)


def _cidr_text(c: Cidr) -> str:
    return f"{int_to_ip(c.network)}/{c.length}"


def _strip(rule: Rule) -> tuple:
    """A rule's meaning without spans, to tell true duplicates from conflicting definitions."""
    from dataclasses import fields, replace

    def clean(v: Any) -> Any:
        if isinstance(v, Span):
            return None
        if isinstance(v, tuple):
            return tuple(clean(x) for x in v)
        if hasattr(v, "__dataclass_fields__"):
            return tuple((f.name, clean(getattr(v, f.name))) for f in fields(v) if f.name != "span")
        return v

    return clean(replace(rule, notes=()))

