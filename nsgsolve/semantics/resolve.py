"""Resolution: a :class:`~nsgsolve.model.Policy` becomes address and port sets per attachment point.

The evaluator (:mod:`nsgsolve.semantics.evaluate`) and the Z3 encoding (:mod:`nsgsolve.smt.encode`) both read a
:class:`ResolvedPolicy`, so they cannot disagree about what a tag, an ASG or a NIC name means.

Two things make a rule side more than an interval set:

* ``VirtualNetwork`` and ``Internet`` depend on the VNet where the NSG is evaluated, so an NSG is
  resolved once per (NSG, VNet) pair.
* A NIC whose private IP is dynamic has no address until Azure picks one. Sides that name such an IP
  configuration (through an ASG or a NIC name) keep it as a *member* key; the evaluator is given an
  assignment of addresses, the Z3 encoding treats them as variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property

from nsgsolve.semantics.addresses import (
    ALL_ADDRS, ALL_IPS, ALL_PORTS, EMPTY, PRIVATE_SPACE, PUBLIC, PUBLIC_IPV4, V6_BASE, IntervalSet, int_to_ip,
    prefixes,
)
from nsgsolve.errors import Diagnostic, DiagnosticBag, InputError, did_you_mean
from nsgsolve.model import (
    DEFAULT_SUBSCRIPTION,
    AdminRule,
    AddrItem,
    AnyAddress,
    AsgSide,
    Cidr,
    Direction,
    IpRange,
    PARAM_PREFIX,
    param_pin,
    param_what,
    NetworkRef,
    NicAddr,
    Nsg,
    Policy,
    PortRange,
    PortSpec,
    PortsRef,
    PrefixSide,
    Access,
    Rule,
    RuleSide,
    Span,
    Subnet,
    SubnetAddr,
    TagSide,
    VNet,
    VnetAddr,
)
from nsgsolve.semantics.servicetags import BUILTIN_TAGS, ServiceTagDb, canonical_builtin
from nsgsolve.semantics.platform import VIRTUAL_NETWORK_EXTRA, blocks_smtp, platform_tag


@dataclass(frozen=True, order=True)
class IpcKey:
    """One IP configuration of one NIC: the unit that has an address and ASG memberships."""

    nic: str
    index: int = 0

    def __str__(self) -> str:
        return self.nic if self.index == 0 else f"{self.nic}#{self.index + 1}"


@dataclass(frozen=True)
class IpcInfo:
    key: IpcKey
    vnet: str
    subnet: str
    ip: int | None  # None: dynamic
    usable: IntervalSet  # addresses Azure may assign (subnet minus the 5 reserved)
    asgs: frozenset[str]
    nic_nsg: str | None
    subnet_nsg: str | None
    # A host the policy implies but does not name: a subnet behind an NSG with no NIC of the policy in it
    # (an App Gateway's, an AKS pool's, a managed instance's subnet). Its key is the subnet's path.
    implied: bool = False
    # In a VNet whose space is a parameter (model.OpenVNet): the parameter whose value is its subnet's
    # prefix; the address is a usable one of that value, and ``usable`` only bounds it (private space).
    space: "ParamUse | None" = None

    @property
    def subnet_label(self) -> str:
        return f"{self.vnet}/{self.subnet}"


@dataclass(frozen=True)
class ParamUse:
    """An unset template parameter standing for a rule's addresses or ports (symbolic, docs/import.md).
    ``choices``: what each value the template allows means where the rule is evaluated (addresses: the
    set, VirtualNetwork read in the rule's VNet; ports: the set, None for '*'), or None when any
    well-formed value may be given (a prefix; a port range or '*')."""

    name: str
    choices: "tuple[IntervalSet | None, ...] | None" = None


@dataclass(frozen=True)
class AddrSet:
    """A resolved address side: fixed intervals plus dynamic IP configurations matched by identity, plus
    unset parameters (symbolic) whose value is part of the side."""

    intervals: IntervalSet
    members: frozenset[IpcKey] = frozenset()
    params: tuple[ParamUse, ...] = ()

    def contains(self, ip: int, dynamic_at_ip: IpcKey | None = None) -> bool:
        if self.params:  # an unset parameter has no value to test against: bind it first (bind_params)
            raise ParamUnbound(self.params[0].name)
        return ip in self.intervals or (dynamic_at_ip is not None and dynamic_at_ip in self.members)

    @property
    def is_empty(self) -> bool:
        return not self.intervals and not self.members and not self.params


def param_needed(rule: "ResolvedRule") -> InputError:
    """E305: an answer that needs concrete rules (exact regions, flows, a diff) met a rule built from an
    unset parameter; only query, check and lint answer for every value."""
    name = rule.params[0]
    return InputError.single(
        "E305", f"rule '{rule.name}' is built from template parameter '{name}', which has no value, and this "
        "answer needs the value", rule.rule.span,
        f"give it (--param {name}=VALUE or a parameters file); query, check and lint answer for every value "
        "without it (not query --exact)")


class ParamUnbound(AssertionError):
    """Code meant for a concrete policy met a rule built from an unset parameter: a bug in nsgsolve (the
    analyses that answer for every value bind the parameters before they evaluate a packet)."""




@dataclass(frozen=True)
class ResolvedRule:
    rule: Rule | AdminRule  # AdminRule in an admin layer (resolve.admin_layer)
    index: int  # position in evaluation order within its NSG and direction
    protocol: int | None  # IANA number; None matches every protocol
    src: AddrSet
    dst: AddrSet
    sports: IntervalSet | None  # None: '*' (matches packets without ports too)
    dports: IntervalSet | None
    sport_param: ParamUse | None = None  # ports that are an unset parameter (then ``sports`` is empty)
    dport_param: ParamUse | None = None

    @property
    def params(self) -> tuple[str, ...]:
        """The unset parameters the rule is built from (symbolic), in the order they appear."""
        out = [p.name for p in self.src.params + self.dst.params]
        out += [p.name for p in (self.sport_param, self.dport_param) if p is not None]
        return tuple(dict.fromkeys(out))

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def nsg_rule(self) -> Rule:
        """The NSG rule of an entry of an NSG's resolution."""
        assert isinstance(self.rule, Rule), self.rule
        return self.rule

    @property
    def admin_rule(self) -> AdminRule:
        """The admin rule of an entry of an admin layer."""
        assert isinstance(self.rule, AdminRule), self.rule
        return self.rule

    @property
    def access(self) -> Access:
        return self.rule.access

    @property
    def priority(self) -> int:
        return self.rule.priority


@dataclass(frozen=True)
class ResolvedNsg:
    """One NSG evaluated in one VNet: rules of both directions, in evaluation order, defaults last."""

    name: str
    vnet: str | None
    inbound: tuple[ResolvedRule, ...]
    outbound: tuple[ResolvedRule, ...]
    # AzurePlatform* tags named anywhere in the NSG switch the platform bypass off for that service.
    platform_tags: frozenset[str] = frozenset()

    def rules(self, direction: Direction) -> tuple[ResolvedRule, ...]:
        return self.inbound if direction is Direction.INBOUND else self.outbound


@dataclass(frozen=True)
class Layer:
    """An NSG met on a path: which NSG, where it is attached, in which direction."""

    nsg: ResolvedNsg
    attached_to: str  # "subnet hub/web" or "nic web1"
    direction: Direction


@dataclass(frozen=True)
class AdminLayer:
    """The security admin rules (AVNM) applied to one VNet in one direction, by priority. Azure evaluates
    them before the NSGs of the VNet's resources: the first match decides Deny (dropped), AlwaysAllow
    (allowed in this direction, NSGs not consulted) or Allow (the NSGs decide); no match, the NSGs decide."""

    vnet: str
    direction: Direction
    rules: tuple[ResolvedRule, ...]

    @property
    def attached_to(self) -> str:
        return f"vnet {self.vnet}"


def usable_addresses(prefix: Cidr | tuple[Cidr, ...]) -> IntervalSet:
    """Azure reserves the first four and the last address of every subnet prefix (of each of them, in a
    subnet with several)."""
    parts = []
    for p in prefix if isinstance(prefix, tuple) else (prefix,):
        if p.hi - p.lo + 1 > 5:
            parts.append((p.lo + 4, p.hi - 1))
    return IntervalSet(parts) if parts else EMPTY


@dataclass
class ResolvedPolicy:
    policy: Policy
    tag_db: ServiceTagDb
    ipcs: dict[IpcKey, IpcInfo]
    vnet_spaces: dict[str, IntervalSet]
    virtual_network_tag: dict[str, IntervalSet]
    smtp_blocked: bool
    peers: dict[str, frozenset[str]] = field(default_factory=dict)  # VNet -> VNets peered with it
    # NSGs with a rule whose addresses or ports an import left open (``?expr:`` names, W601/W602): what
    # stops their resolution. Analyses that do not need them go on; one that does stops with these errors.
    open_nsgs: dict[str, tuple[Diagnostic, ...]] = field(default_factory=dict)
    # Rules built from an unset template parameter (``?param:`` names) keep it as a variable (ParamUse)
    # for the analyses that answer for every value (query, check, lint); otherwise such an NSG is open.
    symbolic_params: bool = False
    # VNets whose address space is an unset parameter (model.OpenVNet), placed only with symbolic_params:
    # VNet -> the parameter; and each subnet parameter -> the VNet parameter its value lies inside.
    open_spaces: dict[str, str] = field(default_factory=dict)
    subnet_spaces: dict[str, str] = field(default_factory=dict)
    open_peers: dict[str, str] = field(default_factory=dict)  # VNet -> the parameter of its peered space
    _nsg_cache: dict[tuple[str, str | None], ResolvedNsg] = field(default_factory=dict)
    _internet_cache: dict[str | None, IntervalSet] = field(default_factory=dict)
    _layer_cache: dict[tuple[IpcKey, Direction], list[Layer]] = field(default_factory=dict)
    _admin_cache: dict[tuple[str, Direction], "AdminLayer | None"] = field(default_factory=dict)

    def is_open_subnet(self, vnet: str, subnet: str) -> bool:
        """A subnet of a VNet whose address space is a parameter, placed (model.OpenVNet)."""
        return vnet in self.open_spaces and any(
            o.name == vnet and any(s.name == subnet for s in o.subnets) for o in self.policy.open_vnets)

    def param_values(self, name: str) -> tuple[str, ...]:
        """The values unset parameter ``name`` (without ``?param:``) may take, as written: its allowed
        values, with ``FAMILY.*`` (a service tag named with a region nobody gave, docs/import.md "Service
        tags named with the region") standing for every regional tag ``FAMILY.<Region>`` of the tag data;
        () for an unrestricted parameter."""
        decl = next((d for d in self.policy.params if d.name == name), None)
        if decl is None:
            return ()
        out: list[str] = []
        for text in decl.allowed:
            family = regional_family(text)
            if family is None:
                out.append(text)
                continue
            head = family.lower() + "."
            out += sorted(t for t in self.tag_db.names() if t.lower().startswith(head) and "." not in t[len(head):])
        return tuple(out)

    @cached_property
    def has_ipv6(self) -> bool:
        """An IPv6 address is written somewhere: a VNet's or subnet's space, a NIC configuration, a rule's
        or a definition's prefixes. Without one, no NIC has an IPv6 address, every packet a question asks
        about has a NIC of the policy on one side, so every such packet is IPv4: the symbolic engines then
        work on IPv4 alone (32-bit addresses, as before IPv6), and answers are the same."""
        p = self.policy
        if any(c.is_v6 for v in p.vnets for c in v.address_spaces + v.onprem):
            return True
        if any(c.is_v6 for _, s in p.subnets() for c in s.prefixes):
            return True
        if any(ipc.v6 for n in p.nics for ipc in n.ip_configs):
            return True

        def v6_items(items) -> bool:
            return any(isinstance(it, (Cidr, IpRange)) and it.lo >= V6_BASE for it in items)
        sides = [s for n in p.nsgs for r in n.rules for s in (r.source, r.destination)]
        sides += [s for r in p.admin_rules() for s in r.sources + r.destinations]
        if any(isinstance(s, PrefixSide) and v6_items(s.items) for s in sides):
            return True
        return any(v6_items(d.items) for d in p.networks) or any(v6_items(t.items) for t in p.tags)

    @cached_property
    def all_addresses(self) -> IntervalSet:
        """`*` as an address set: both families, or IPv4 alone in a policy without IPv6 (has_ipv6), where
        no packet a question or a NIC meets is IPv6, so sets, output and speed stay what they were."""
        return ALL_ADDRS if self.has_ipv6 else ALL_IPS

    @cached_property
    def any_address(self) -> AddrSet:
        return AddrSet(self.all_addresses)

    @cached_property
    def public(self) -> IntervalSet:
        """Public address space (the Internet tag before a VNet's own space is removed), as all_addresses."""
        return PUBLIC if self.has_ipv6 else PUBLIC_IPV4

    @cached_property
    def static_ip_index(self) -> dict[int, IpcKey]:
        return {i.ip: k for k, i in self.ipcs.items() if i.ip is not None}

    @cached_property
    def shared_ips(self) -> dict[int, tuple[IpcKey, ...]]:
        """Static addresses held by several IP configurations (in different VNets: W501). Azure allows it
        for VNets that are not peered, so an address alone does not name a NIC there."""
        owners: dict[int, list[IpcKey]] = {}
        for k, i in self.ipcs.items():
            if i.ip is not None:
                owners.setdefault(i.ip, []).append(k)
        return {ip: tuple(ks) for ip, ks in owners.items() if len(ks) > 1}

    @cached_property
    def _ipc_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for k in self.ipcs:
            counts[k.nic] = counts.get(k.nic, 0) + 1
        return counts

    def ipc_label(self, key: IpcKey) -> str:
        """``key`` for people: the NIC's name, or ``nic#N`` when the NIC has several IP configurations, so
        an answer about its first configuration never reads as one about the whole NIC."""
        if self._ipc_counts.get(key.nic, 1) > 1:
            return f"{key.nic}#{key.index + 1}"
        return key.nic

    @cached_property
    def ambiguous_dynamic(self) -> dict[IpcKey, IntervalSet]:
        """For each dynamic IP configuration, the addresses it may get that a NIC of another, unpeered VNet
        holds or may get. Azure allows it (addresses are unique only within a VNet), but the encodings keep
        every NIC's address distinct, so questions over these addresses are refused (E803)."""
        out: dict[IpcKey, IntervalSet] = {}
        for k, i in self.ipcs.items():
            if i.ip is not None:
                continue
            clash = EMPTY
            near = self.near_vnets(i.vnet)
            for i2 in self.ipcs.values():
                if i2.vnet in near:
                    continue
                other = IntervalSet([(i2.ip, i2.ip)]) if i2.ip is not None else i2.usable
                clash = clash.union(i.usable.intersection(other))
            if clash:
                out[k] = clash
        return out

    def near_vnets(self, vnet: str) -> frozenset[str]:
        """The VNets a NIC of ``vnet`` reaches by private address: its own and the peered ones."""
        return self.peers.get(vnet, frozenset()) | {vnet}

    @cached_property
    def dynamic_ipcs(self) -> tuple[IpcKey, ...]:
        return tuple(k for k, i in self.ipcs.items() if i.ip is None)

    def nic_ipcs(self, nic: str) -> list[IpcInfo]:
        return [i for k, i in self.ipcs.items() if k.nic == nic]

    def internet_tag(self, vnet: str | None) -> IntervalSet:
        if vnet not in self._internet_cache:
            self._internet_cache[vnet] = (
                self.public.difference(self.vnet_spaces.get(vnet, EMPTY)) if vnet else self.public
            )
        return self._internet_cache[vnet]

    def nsg(self, name: str, vnet: str | None) -> ResolvedNsg:
        key = (name, vnet)
        if key not in self._nsg_cache:
            nsg = self.policy.nsg(name)
            if nsg is None:
                raise KeyError(name)
            if name in self.open_nsgs:
                raise InputError(self.open_nsgs[name])
            try:
                self._nsg_cache[key] = _resolve_nsg(self, nsg, vnet)
            except ResolveError as e:
                raise InputError(e.bag.items) from None
        return self._nsg_cache[key]

    def outbound_layers(self, key: IpcKey) -> list[Layer]:
        """NIC NSG first, then subnet NSG (Azure's outbound order)."""
        return self._layers(key, Direction.OUTBOUND)

    def inbound_layers(self, key: IpcKey) -> list[Layer]:
        """Subnet NSG first, then NIC NSG (Azure's inbound order)."""
        return self._layers(key, Direction.INBOUND)

    def _layers(self, key: IpcKey, direction: Direction) -> list[Layer]:
        cached = self._layer_cache.get((key, direction))
        if cached is not None:
            return cached
        info = self.ipcs[key]
        nic = [(info.nic_nsg, f"nic {key.nic}")] if info.nic_nsg else []
        subnet = [(info.subnet_nsg, f"subnet {info.subnet_label}")] if info.subnet_nsg else []
        order = nic + subnet if direction is Direction.OUTBOUND else subnet + nic
        out = [Layer(self.nsg(name, info.vnet), where, direction) for name, where in order]
        self._layer_cache[(key, direction)] = out
        return out

    def admin_layer(self, vnet: str, direction: Direction) -> AdminLayer | None:
        """The admin rules of ``vnet`` in ``direction`` (None when there are none)."""
        key = (vnet, direction)
        if key not in self._admin_cache:
            rules = [r for r in self.policy.admin_rules_for(vnet) if r.direction is direction]
            if not rules:
                self._admin_cache[key] = None
            else:
                bag = DiagnosticBag()
                r = _SideResolver(self, vnet, bag)
                # Stable: of two rules with one priority the one declared first goes first (W510).
                ordered = sorted(rules, key=lambda a: a.priority)
                resolved = tuple(ResolvedRule(a, i, a.protocol.number, r.union(a.sources), r.union(a.destinations),
                                              r.ports(a.source_ports), r.ports(a.destination_ports))
                                 for i, a in enumerate(ordered))
                if bag.errors:
                    raise ResolveError(bag)
                self._admin_cache[key] = AdminLayer(vnet, direction, resolved)
        return self._admin_cache[key]

    @cached_property
    def has_admin_rules(self) -> bool:
        """Some VNet has security admin rules (AVNM) in some direction."""
        return any(self.admin_layer(v.name, d) is not None for v in self.policy.vnets
                   for d in (Direction.INBOUND, Direction.OUTBOUND))

    def admin_for(self, key: IpcKey, direction: Direction) -> AdminLayer | None:
        return self.admin_layer(self.ipcs[key].vnet, direction)

    def attachments(self, nsg_name: str) -> list[str]:
        """Where an NSG is attached, for `show` and reports."""
        out = [f"subnet {v.name}/{s.name}" for v, s in self.policy.subnets() if s.nsg and s.nsg.name == nsg_name]
        out += [f"nic {n.name}" for n in self.policy.nics if n.nsg and n.nsg.name == nsg_name]
        return out

    def attachment_vnets(self, nsg_name: str) -> list[str]:
        """The VNets an NSG is evaluated in (one resolution each)."""
        seen: list[str] = []
        for v, s in self.policy.subnets():
            if s.nsg and s.nsg.name == nsg_name and v.name not in seen:
                seen.append(v.name)
        for i in self.ipcs.values():
            if i.nic_nsg == nsg_name and i.vnet not in seen:
                seen.append(i.vnet)
        return seen

    def evaluation_vnets(self, nsg_name: str) -> list[str | None]:
        """``attachment_vnets``, or ``[None]`` for an NSG attached nowhere (resolved once, outside any VNet)."""
        return [*self.attachment_vnets(nsg_name)] or [None]


def dual_stack(rp: ResolvedPolicy) -> ResolvedPolicy:
    """``rp`` read for both address families: `*` and the tags with their IPv6 parts even where the policy
    writes no IPv6 address (has_ipv6 reads them as IPv4 alone there, since no packet a question meets is
    IPv6). For concrete IPv6 packets from outside, such as the tuples of a flow log."""
    if rp.has_ipv6:
        return rp
    dual = replace(rp, _nsg_cache={}, _internet_cache={}, _layer_cache={}, _admin_cache={})
    dual.__dict__["has_ipv6"] = True  # the cached_property's slot: everything resolved from here reads both
    return dual


def resolve(policy: Policy, tag_db: ServiceTagDb | None = None, symbolic_params: bool = False,
            subnet_hosts: bool = False, open_vnets: bool = False) -> ResolvedPolicy:
    """Resolve topology eagerly and every attached NSG (so unknown tags are reported at once).

    ``symbolic_params``: a rule side or port list that is an unset template parameter becomes a
    :class:`ParamUse` (the caller answers for every value: the Z3 encoding makes it a variable); without it
    the NSG is open, like one with a value an import could not compute.
    ``subnet_hosts``: every subnet behind an NSG gets an implied host, even one with NICs (a host added
    later, with only the subnet's NSG in front of it: the baseline's destinations).
    ``open_vnets`` (with ``symbolic_params``): place the VNets whose address space is a parameter
    (model.OpenVNet) for the analyses that answer for every value of it (query, check); lint's cross-layer
    checks need concrete layers and see their NSGs unattached, as every other command does."""
    tag_db = tag_db or ServiceTagDb()
    bag = DiagnosticBag()
    spaces = {v.name: IntervalSet([(c.lo, c.hi) for c in v.address_spaces]) for v in policy.vnets}
    peers: dict[str, set[str]] = {v.name: set() for v in policy.vnets}
    for v in policy.vnets:
        for p in v.peerings:
            if p.name in peers:  # peering is symmetric for the VirtualNetwork tag
                peers[v.name].add(p.name)
                peers[p.name].add(v.name)
    vnet_tag: dict[str, IntervalSet] = {}
    for v in policy.vnets:
        parts = [(c.lo, c.hi) for c in v.address_spaces] + [(c.lo, c.hi) for c in v.onprem]
        for peer in peers[v.name]:
            parts += list(spaces[peer])
        parts += list(VIRTUAL_NETWORK_EXTRA)
        vnet_tag[v.name] = IntervalSet(parts)

    ipcs: dict[IpcKey, IpcInfo] = {}
    for nic in policy.nics:
        found = policy.subnet(nic.subnet)
        if found is None:
            bag.error("E201", f"NIC '{nic.name}' names subnet '{nic.subnet}', which does not exist", nic.subnet.span)
            continue
        vnet, subnet = found
        for i, ipc in enumerate(nic.ip_configs):
            key = IpcKey(nic.name, i)
            ipcs[key] = IpcInfo(
                key, vnet.name, subnet.name, ipc.ip,
                # A dynamic configuration takes an address of its own family's prefixes of the subnet.
                usable_addresses(tuple(c for c in subnet.prefixes if c.is_v6 == ipc.v6)),
                frozenset(a.name for a in ipc.asgs), nic.nsg.name if nic.nsg else None,
                subnet.nsg.name if subnet.nsg else None,
            )
    bag.raise_if_errors()
    # A subnet behind an NSG holds hosts the policy does not list (appliances, PaaS, instances deployed
    # later): with no NIC of its own it stands for one dynamic host anywhere in its usable range, so its
    # NSG filters some traffic a question can ask about (docs/query.md, "What an endpoint denotes").
    occupied = {(i.vnet, i.subnet) for i in ipcs.values()}
    for v, s in policy.subnets():
        if s.nsg is not None and (subnet_hosts or (v.name, s.name) not in occupied):
            key = IpcKey(implied_host_name(v.name, s.name), 0)
            ipcs[key] = IpcInfo(key, v.name, s.name, None, usable_addresses(s.prefixes), frozenset(), None,
                                s.nsg.name, implied=True)
    if symbolic_params:
        _check_param_kinds(policy, bag)
    rp = ResolvedPolicy(policy, tag_db, ipcs, spaces, vnet_tag,
                        blocks_smtp(policy.subscription or DEFAULT_SUBSCRIPTION),
                        {v: frozenset(ps) for v, ps in peers.items()}, symbolic_params=symbolic_params)
    if symbolic_params and open_vnets and policy.open_vnets:
        _place_open_vnets(rp, bag)
    # Resolve every NSG where it is evaluated now, collecting all unknown-tag errors in one run.
    for nsg in policy.nsgs:
        for vnet_name in rp.evaluation_vnets(nsg.name):
            try:
                rp.nsg(nsg.name, vnet_name)
            except InputError as e:
                if all(SYMBOLIC_PREFIX in d.message or PARAM_PREFIX in d.message for d in e.diagnostics):
                    # Left open on purpose by an import (it warned): only what needs this NSG stops.
                    rp.open_nsgs.setdefault(nsg.name, e.diagnostics)
                    continue
                # An NSG attached in several VNets is resolved once per VNet: report each problem once.
                bag.items.extend(d for d in e.diagnostics if d not in bag.items)
    for v in policy.vnets:
        for d in (Direction.INBOUND, Direction.OUTBOUND):
            try:
                rp.admin_layer(v.name, d)
            except ResolveError as e:
                bag.items.extend(x for x in e.bag.items if x not in bag.items)
    bag.raise_if_errors()
    return rp


def _place_open_vnets(rp: ResolvedPolicy, bag: DiagnosticBag) -> None:
    """The hosts of VNets whose address space is a parameter (model.OpenVNet), for the analyses that answer
    for every value: each NIC, and a subnet behind an NSG without one, is a dynamic address in its subnet's
    prefix, itself a parameter or (unknown) the VNet's whole value, so those hosts may sit anywhere in it.
    The VNet's VirtualNetwork tag holds the parameter (_SideResolver.side); its Internet tag is public space
    as is (every value is private)."""
    private = PRIVATE_SPACE
    for ov in rp.policy.open_vnets:
        if ov.name in rp.vnet_spaces:
            continue  # the inputs define the VNet too: its written space wins
        rp.open_spaces[ov.name] = ov.param
        if ov.peers_param:
            rp.open_peers[ov.name] = ov.peers_param
        rp.virtual_network_tag[ov.name] = VIRTUAL_NETWORK_EXTRA
        r = _SideResolver(rp, ov.name, bag, params=True)
        subnets = {s.name: s for s in ov.subnets}
        rp.subnet_spaces.update({s.param: ov.param for s in ov.subnets if s.param and s.param != ov.param})

        def space(sub: str) -> ParamUse:
            s = subnets.get(sub)
            name = s.param if s is not None and s.param else ov.param
            return ParamUse(name, r._choices(PARAM_PREFIX + name, False))
        occupied = set()
        for nic in ov.nics:
            s = subnets.get(nic.subnet.subnet)
            occupied.add(nic.subnet.subnet)
            for i, ipc in enumerate(nic.ip_configs):
                key = IpcKey(nic.name, i)
                rp.ipcs[key] = IpcInfo(key, ov.name, nic.subnet.subnet, None, private,
                                       frozenset(a.name for a in ipc.asgs), nic.nsg.name if nic.nsg else None,
                                       s.nsg.name if s is not None and s.nsg else None, space=space(nic.subnet.subnet))
        for s in ov.subnets:
            if s.nsg is not None and s.name not in occupied:
                key = IpcKey(implied_host_name(ov.name, s.name), 0)
                rp.ipcs[key] = IpcInfo(key, ov.name, s.name, None, private, frozenset(), None, s.nsg.name,
                                       implied=True, space=space(s.name))


def _check_param_kinds(policy: Policy, bag: DiagnosticBag) -> None:
    """E308: one unset parameter cannot be both addresses and ports (a value is one or the other, and a
    witness gives it one text)."""
    addr: set[str] = set()
    ports: dict[str, Span] = {}
    for n in policy.nsgs:
        for r in n.rules:
            for sd in (r.source, r.destination):
                if isinstance(sd, TagSide) and sd.tag.name.startswith(PARAM_PREFIX):
                    addr.add(sd.tag.name)
            for spec in (r.source_ports, r.destination_ports):
                for it in spec.items or ():
                    if isinstance(it, PortsRef) and it.define.name.startswith(PARAM_PREFIX):
                        ports.setdefault(it.define.name, it.define.span)
    for name in sorted(addr & set(ports)):
        bag.error("E308", f"template parameter '{name[len(PARAM_PREFIX):]}' is used both as addresses and as ports",
                  ports[name], "a value is one or the other: use two parameters")


class ResolveError(Exception):
    def __init__(self, bag: DiagnosticBag):
        self.bag = bag


class _SideResolver:
    """Resolves rule sides and port specs of one NSG in one VNet, collecting errors."""

    def __init__(self, rp: ResolvedPolicy, vnet: str | None, bag: DiagnosticBag, params: bool = False):
        """``params``: keep unset parameters as :class:`ParamUse` (NSG rules of a ``symbolic_params``
        resolution); otherwise one is an error that leaves its NSG open."""
        self.rp, self.vnet, self.bag, self.keep_params = rp, vnet, bag, params
        p = rp.policy
        self.networks = {d.name: d for d in p.networks}
        self.port_defs = {d.name: d for d in p.ports}
        self.declared_tags = {t.name.lower(): t for t in p.tags}
        # A declared tag's addresses, by lower-case name: one rule in two names a tag, often one of a few
        # lists of hundreds of prefixes, and building its set at every use was a third of resolving.
        self.declared_sets: dict[str, IntervalSet] = {}

    # -- tags
    def tag(self, name: str, span: Span) -> IntervalSet:
        canon = canonical_builtin(name)
        if canon == "VirtualNetwork":
            if self.vnet is None:
                return VIRTUAL_NETWORK_EXTRA
            return self.rp.virtual_network_tag[self.vnet]
        if canon == "Internet":
            return self.rp.internet_tag(self.vnet)
        key = name.lower()
        known_set = self.declared_sets.get(key)
        if known_set is not None:
            return known_set
        decl = self.declared_tags.get(key)
        if decl is not None:
            got = self.items(decl.items).intervals
            if all(isinstance(i, (Cidr, IpRange)) for i in decl.items):  # nothing reported: the same every use
                self.declared_sets[key] = got
            return got
        if canon in BUILTIN_TAGS:
            return BUILTIN_TAGS[canon]
        data = self.rp.tag_db.lookup(name)
        if data is not None:
            # Without IPv6 addresses in the policy no packet a rule meets is IPv6 (has_ipv6).
            return data.addresses if self.rp.has_ipv6 else data.ipv4
        known = (
            list(BUILTIN_TAGS)
            + ["VirtualNetwork", "Internet"]
            + self.rp.tag_db.names()
            + [t.name for t in self.rp.policy.tags]
        )
        hint = did_you_mean(name, known)
        how = ("declare it in the policy (tag NAME = prefix, ...) or load Microsoft's ServiceTags_Public JSON "
               "with --service-tags FILE (or 'nsgsolve tags import FILE' once)")
        if name.startswith(PARAM_PREFIX):
            self.bag.error("E301", f"'{name}' is {param_what(name[len(PARAM_PREFIX):])}, which has no value: "
                                   "this analysis needs it", span, self._param_hint(name))
            return EMPTY
        if name.startswith(SYMBOLIC_PREFIX):
            # Not a tag at all: a template value an import left open (importers.convert.symbolic_name, W601/W602).
            self.bag.error("E301", f"'{name}' has no address data: the import left this template value "
                                   f"open ({name[len(SYMBOLIC_PREFIX):]})", span,
                           "supply the value when importing (--param NAME=VALUE or --params-file FILE for a template, "
                           "--var NAME=VALUE or --var-file FILE for Terraform), or declare "
                           f"it in the imported policy: tag `{name}` = PREFIX, ...")
            return EMPTY
        self.bag.error("E301", f"service tag '{name}' has no address data", span,
                       f"{hint} {how}".strip() if hint else how)
        return EMPTY

    # -- address items
    def items(self, items: tuple[AddrItem, ...], seen: frozenset[str] = frozenset()) -> AddrSet:
        parts: list[tuple[int, int]] = []
        members: set[IpcKey] = set()
        for it in items:
            if isinstance(it, Cidr):
                parts.append((it.lo, it.hi))
            elif isinstance(it, IpRange):
                parts.append((it.lo, it.hi))
            elif isinstance(it, NicAddr):
                ipcs = self.rp.nic_ipcs(it.nic.name)
                if not ipcs:
                    self.bag.error("E202", f"unknown NIC '{it.nic.name}'", it.nic.span,
                                   did_you_mean(it.nic.name, [n.name for n in self.rp.policy.nics]))
                for i in ipcs:
                    if i.ip is None:
                        members.add(i.key)
                    else:
                        parts.append((i.ip, i.ip))
            elif isinstance(it, SubnetAddr):
                found = self.rp.policy.subnet(it.subnet)
                if found is None:
                    self.bag.error("E201", f"unknown subnet '{it.subnet}'", it.subnet.span)
                else:
                    parts += [(c.lo, c.hi) for c in found[1].prefixes]
            elif isinstance(it, VnetAddr):
                sp = self.rp.vnet_spaces.get(it.vnet.name)
                if sp is None:
                    self.bag.error("E203", f"unknown VNet '{it.vnet.name}'", it.vnet.span)
                else:
                    parts += list(sp)
            elif isinstance(it, NetworkRef):
                d = self.networks.get(it.define.name)
                if d is None or it.define.name in seen:
                    self.bag.error("E204", f"unknown or recursive network '{it.define.name}'", it.define.span)
                else:
                    sub = self.items(d.items, seen | {it.define.name})
                    parts += list(sub.intervals)
                    members |= sub.members
            else:  # pragma: no cover - the model admits nothing else
                raise TypeError(f"unexpected address item {it!r}")
        return AddrSet(IntervalSet(parts), frozenset(members))

    @staticmethod
    def _param_hint(name: str) -> str:
        return (f"give it ({param_pin(name[len(PARAM_PREFIX):])}); query, check and lint answer for every value of "
                "it without one")

    def _choices(self, name: str, ports: bool) -> "tuple[IntervalSet | None, ...] | None":
        """What each value the template allows for parameter ``name`` means here (None: any value)."""
        decl = next((d for d in self.rp.policy.params if d.name == name[len(PARAM_PREFIX):]), None)
        if decl is None or not decl.allowed:
            return None
        values = self.rp.param_values(decl.name)
        if not values:  # only FAMILY.* values, and the tag data has no regional tag of the family
            families = ", ".join(f"{f}.<Region>" for f in (regional_family(t) for t in decl.allowed) if f)
            self.bag.error("E301", f"'{name}' is a service tag named with a region nobody gave: one of the regional "
                                   f"tags {families}, and the tag data has none of them", decl.span,
                           "load Microsoft's ServiceTags_Public JSON with --service-tags FILE (or 'nsgsolve tags "
                           "import FILE' once), or give the region (--param location=westeurope; Terraform: --var)")
            return ()
        out: list[IntervalSet | None] = []
        for text in values:
            got = parse_port_value(text) if ports else self._address_value(text, decl.span)
            if got is False:
                self.bag.error("E306", f"parameter '{decl.name}' allows '{text}', which is not "
                               f"{'a port, a port range or *' if ports else 'an address prefix, a service tag or *'}",
                               decl.span, "correct the template's allowedValues, or give the parameter a value")
                continue
            out.append(got)  # type: ignore[arg-type]
        return tuple(out)

    def _address_value(self, text: str, span: Span) -> IntervalSet | bool:
        t = text.strip()
        if t.lower() in ("*", "any"):
            return ALL_IPS
        got = parse_address_value(t)
        if got is not None:
            return got
        if ":" in t:
            return EMPTY  # an IPv6 prefix: an IPv4 packet never matches it
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]*", t):  # what Azure accepts as a service tag name
            return False
        return self.tag(t, span)

    def side(self, side: RuleSide) -> AddrSet:
        if isinstance(side, AnyAddress):
            return self.rp.any_address
        if isinstance(side, TagSide) and side.tag.name.startswith(PARAM_PREFIX) and self.keep_params:
            return AddrSet(EMPTY, params=(ParamUse(side.tag.name[len(PARAM_PREFIX):],
                                                   self._choices(side.tag.name, False)),))
        if isinstance(side, TagSide):
            if self.vnet in self.rp.open_spaces and canonical_builtin(side.tag.name) == "VirtualNetwork":
                # The VNet's own space is its parameter (model.OpenVNet): a variable like a rule's.
                peers = self.rp.open_peers.get(self.vnet)
                own: tuple[ParamUse, ...] = (ParamUse(self.rp.open_spaces[self.vnet]),)
                own += (ParamUse(peers),) if peers else ()
                return AddrSet(self.tag(side.tag.name, side.tag.span), params=own)
            return AddrSet(self.tag(side.tag.name, side.tag.span))
        if isinstance(side, PrefixSide):
            return self.items(side.items)
        if isinstance(side, AsgSide):
            parts: list[tuple[int, int]] = []
            members: set[IpcKey] = set()
            known = {a.name for a in self.rp.policy.asgs}
            for ref in side.asgs:
                if ref.name not in known:
                    self.bag.error("E205", f"unknown application security group '{ref.name}'", ref.span,
                                   did_you_mean(ref.name, known))
                for i in self.rp.ipcs.values():
                    if ref.name in i.asgs:
                        if i.ip is None:
                            members.add(i.key)
                        else:
                            parts.append((i.ip, i.ip))
            return AddrSet(IntervalSet(parts), frozenset(members))
        raise TypeError(f"unexpected rule side {side!r}")  # pragma: no cover

    def union(self, sides: tuple[RuleSide, ...]) -> AddrSet:
        """An admin rule side: the union of its items; ``()`` is any address."""
        if not sides:
            return self.rp.any_address
        parts = [self.side(s) for s in sides]
        iv = parts[0].intervals
        for p in parts[1:]:
            iv = iv.union(p.intervals)
        return AddrSet(iv, frozenset().union(*(p.members for p in parts)))

    def port_param(self, spec: PortSpec) -> ParamUse | None:
        """The unset parameter a port spec is (then :meth:`ports` gives the empty set), or None."""
        items = spec.items or ()
        if self.keep_params and len(items) == 1 and isinstance(items[0], PortsRef) \
                and items[0].define.name.startswith(PARAM_PREFIX):
            name = items[0].define.name
            return ParamUse(name[len(PARAM_PREFIX):], self._choices(name, True))
        return None

    def ports(self, spec: PortSpec, seen: frozenset[str] = frozenset()) -> IntervalSet | None:
        if spec.is_any:
            return None
        if self.port_param(spec) is not None:
            return EMPTY
        parts: list[tuple[int, int]] = []
        for it in spec.items or ():
            if isinstance(it, PortRange):
                parts.append((it.lo, it.hi))
            elif isinstance(it, PortsRef):
                d = self.port_defs.get(it.define.name)
                if it.define.name.startswith(PARAM_PREFIX):
                    self.bag.error("E206", f"'{it.define.name}' is {param_what(it.define.name[len(PARAM_PREFIX):])}"
                                   ", which has no value: this analysis needs it", it.define.span,
                                   self._param_hint(it.define.name))
                elif d is None or it.define.name in seen:
                    self.bag.error("E206", f"unknown or recursive port list '{it.define.name}'", it.define.span)
                else:
                    sub = self.ports(PortSpec(d.items), seen | {it.define.name})
                    parts += list(sub or ALL_PORTS)
        return IntervalSet(parts)


def resolve_items(rp: ResolvedPolicy, items: tuple[AddrItem, ...], bag: DiagnosticBag,
                  vnet: str | None = None) -> AddrSet:
    """Address items (CIDRs, ranges, NICs, subnets, VNets, network defines) as a rule evaluated in ``vnet``
    reads them; unknown names go to ``bag``."""
    return _SideResolver(rp, vnet, bag).items(tuple(items))


def resolve_rule_side(rp: ResolvedPolicy, side: RuleSide, bag: DiagnosticBag, vnet: str | None = None) -> AddrSet:
    """A rule side (``*``, a tag, addresses, ASGs) as it reads in ``vnet``; unknown names go to ``bag``."""
    return _SideResolver(rp, vnet, bag).side(side)


def resolve_ports(rp: ResolvedPolicy, spec: PortSpec, bag: DiagnosticBag) -> IntervalSet | None:
    """A port spec (``None`` for ``*``); unknown port defines go to ``bag``."""
    return _SideResolver(rp, None, bag).ports(spec)


SYMBOLIC_PREFIX = "?expr:"  # how importers name a value left open by --symbolic


def _resolve_nsg(rp: ResolvedPolicy, nsg: Nsg, vnet: str | None) -> ResolvedNsg:
    bag = DiagnosticBag()
    r = _SideResolver(rp, vnet, bag, params=rp.symbolic_params)
    by_dir = {}
    for d in (Direction.INBOUND, Direction.OUTBOUND):
        rules = []
        for idx, rule in enumerate(nsg.rules_for(d)):
            rules.append(ResolvedRule(
                rule, idx, rule.protocol.number, r.side(rule.source), r.side(rule.destination),
                r.ports(rule.source_ports), r.ports(rule.destination_ports),
                r.port_param(rule.source_ports), r.port_param(rule.destination_ports),
            ))
        by_dir[d] = tuple(rules)
    if bag.errors:
        raise ResolveError(bag)
    platform = set()
    for rule in nsg.rules:
        for side in (rule.source, rule.destination):
            if isinstance(side, TagSide):
                t = platform_tag(side.tag.name)
                if t is not None:
                    platform.add(t)
    return ResolvedNsg(nsg.name, vnet, by_dir[Direction.INBOUND], by_dir[Direction.OUTBOUND], frozenset(platform))


def regional_family(text: str) -> str | None:
    """``Storage`` for the parameter value ``Storage.*``: every regional tag of the family (None: not one)."""
    t = text.strip()
    if t.endswith(".*") and re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", t[:-2]):
        return t[:-2]
    return None


def parse_address_value(text: str) -> IntervalSet | None:
    """An IPv4 address, prefix or range given as a parameter's value (None: not one)."""
    import ipaddress

    t = text.strip()
    try:
        if "-" in t:
            a, b = (int(ipaddress.IPv4Address(x.strip())) for x in t.split("-", 1))
            return IntervalSet([(a, b)]) if a <= b else None
        net = ipaddress.IPv4Network(t, strict=False)
        return IntervalSet([(int(net.network_address), int(net.broadcast_address))])
    except ValueError:
        return None


def parse_port_value(text: str) -> IntervalSet | None | bool:
    """A port parameter's value: the set, None for '*', False when it is not a port, range or '*'."""
    t = str(text).strip()
    if t == "*":
        return None
    lo, _, hi = t.partition("-")
    if not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
        return False
    a, b = int(lo), int(hi or lo)
    return IntervalSet([(a, b)]) if 0 <= a <= b <= 65535 else False


def bind_params(policy: Policy, values: "dict[str, str]") -> Policy:
    """``policy`` with the unset parameters in ``values`` given those values (as a template writes them:
    a prefix, a range, ``*``, a service tag; a port, a port range, ``*``): the concrete policy the
    reference evaluator decides a witness in. Parameters not in ``values`` stay unset."""
    import dataclasses

    from nsgsolve.model import ANY_PORTS, PortRange, Ref

    def side(sd: RuleSide) -> RuleSide:
        if not (isinstance(sd, TagSide) and sd.tag.name.startswith(PARAM_PREFIX)):
            return sd
        v = values.get(sd.tag.name[len(PARAM_PREFIX):])
        if v is None:
            return sd
        t = v.strip()
        if t.lower() in ("*", "any"):
            return AnyAddress(sd.span)
        got = parse_address_value(t)
        if got is None:
            return TagSide(Ref(t, sd.tag.span), sd.span)
        (lo, hi), = list(got)
        if "-" in t:
            return PrefixSide((IpRange(lo, hi, sd.span),), sd.span)
        length = int(t.split("/")[1]) if "/" in t else 32
        return PrefixSide((Cidr(lo, length, sd.span),), sd.span)

    def ports(spec: PortSpec) -> PortSpec:
        items = spec.items or ()
        if not (len(items) == 1 and isinstance(items[0], PortsRef) and items[0].define.name.startswith(PARAM_PREFIX)):
            return spec
        v = values.get(items[0].define.name[len(PARAM_PREFIX):])
        if v is None:
            return spec
        got = parse_port_value(v)
        if got is None:
            return dataclasses.replace(ANY_PORTS, span=spec.span)
        if not isinstance(got, IntervalSet):
            raise ValueError(f"'{v}' is not a port, a port range or *")
        return PortSpec(tuple(PortRange(a, b, spec.span) for a, b in got), spec.span)

    nsgs = tuple(dataclasses.replace(n, rules=tuple(
        dataclasses.replace(r, source=side(r.source), destination=side(r.destination),
                            source_ports=ports(r.source_ports), destination_ports=ports(r.destination_ports))
        for r in n.rules)) for n in policy.nsgs)
    vnets, still_open = list(policy.vnets), []
    for ov in policy.open_vnets:
        if ov.param not in values:
            still_open.append(ov)
            continue

        def prefix(name: str, span: Span) -> Cidr:
            got = IntervalSet([(0, (1 << 32) - 1)]) if values[name].strip() in ("*", "any") else \
                parse_address_value(values[name])
            if got is None or "/" not in values[name] and "-" in values[name]:
                raise ValueError(f"'{values[name]}' is not an address prefix")
            (lo, hi), = list(got)
            return Cidr(lo, 32 - (hi - lo + 1).bit_length() + 1, span)
        # A subnet without a parameter of its own is some prefix inside the space; the VNet's whole value is
        # one (and its hosts' addresses, any usable one of it, are those of every such prefix together).
        subnets = tuple(Subnet(s.name, prefix(s.param if s.param in values else ov.param, s.span), s.nsg, s.span)
                        for s in ov.subnets)
        onprem = (prefix(ov.peers_param, ov.span),) if ov.peers_param in values else ()
        vnets.append(VNet(ov.name, (prefix(ov.param, ov.span),), subnets, onprem=onprem, span=ov.span))
    nics = policy.nics + tuple(n for ov in policy.open_vnets if ov not in still_open for n in ov.nics)
    return dataclasses.replace(policy, nsgs=nsgs, vnets=tuple(vnets), nics=nics, open_vnets=tuple(still_open))


def implied_host_name(vnet: str, subnet: str) -> str:
    """The name an implied host of a subnet goes by (a NIC name never holds '/')."""
    return f"{vnet}/{subnet}"


def describe_ipc(rp: ResolvedPolicy, key: IpcKey, ip: int | None = None) -> str:
    info = rp.ipcs[key]
    addr = ip if ip is not None else info.ip
    if info.implied:
        where = int_to_ip(addr) if addr is not None else "any usable address"
        return f"a host of subnet {info.subnet_label} ({where}; the subnet has no NIC in the policy)"
    nic = rp.policy.nic(key.nic)
    name = nic.ip_configs[key.index].name if nic is not None and key.index < len(nic.ip_configs) else ""
    config = f", ipconfig {name}" if name and rp._ipc_counts.get(key.nic, 1) > 1 else ""
    return (f"{rp.ipc_label(key)} ({int_to_ip(addr) if addr is not None else 'dynamic'} in subnet "
            f"{info.subnet_label}{config})")


__all__ = [
    "AddrSet", "AdminLayer", "ParamUse", "ParamUnbound", "param_needed", "bind_params", "parse_address_value",
    "parse_port_value", "IpcInfo", "IpcKey", "Layer", "ResolvedNsg", "ResolvedPolicy", "ResolvedRule",
    "resolve", "resolve_items", "resolve_ports", "resolve_rule_side", "usable_addresses", "prefixes", "describe_ipc",
    "implied_host_name",
]
