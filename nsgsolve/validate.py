"""Checks on a finished :class:`~nsgsolve.model.Policy`: references, Azure's limits, topology.

Every front end runs these: the DSL builder (:func:`nsgsolve.lang.build.parse_policy`) and the ARM/az
importers, so a policy is held to the same rules however it was written. The checks only need the
model, never the text; each finding carries the span of what the user wrote.

Nothing here is quadratic in the size of a policy: duplicates and priorities use dicts, subnet overlap
is a sort, and the prefix count of a side expands each network define once.
"""

from __future__ import annotations

from typing import Iterable

from nsgsolve.limits import AZURE_LIMITS
from nsgsolve.errors import Diagnostic, DiagnosticBag, did_you_mean
from nsgsolve.model import (
    PARAM_PREFIX, AddrItem, AnyAddress, AsgSide, Assertion, Cidr, Direction, Endpoint, IpRange, NetworkRef, NicAddr,
    Nsg, Policy, PortRange, PortSpec, PortsRef, PrefixSide, Protocol, Query, Ref, Rule, RuleSide, Span, SubnetAddr,
    SubnetRef, TagSide, VnetAddr, ip_text,
)

# Azure's limits (semantics.md "Limits to enforce or warn on").
PRIORITY_MIN, PRIORITY_MAX = 100, 4096
ADMIN_PRIORITY_MIN, ADMIN_PRIORITY_MAX = 1, 4096  # security admin rules (concept-security-admins.md)
MAX_RULES_PER_NSG = 1000
MAX_PREFIXES_PER_SIDE = 4000
MAX_ASGS_PER_SIDE = 10
MAX_ASGS_PER_NSG = 100
MAX_ASGS_PER_IPCONFIG = 20
MAX_NAME = 80
MAX_DESCRIPTION = 140
RESERVED_LOW, RESERVED_HIGH = 4, 1  # Azure keeps the first four and the last address of every subnet


def validate(policy: Policy) -> list[Diagnostic]:
    """Every error and warning of ``policy``, in file order."""
    bag = DiagnosticBag()
    validate_into(policy, bag)
    return sorted(bag.items, key=lambda d: (d.span.file, d.span.line, d.span.column))


def validate_into(policy: Policy, bag: DiagnosticBag, skip: frozenset[str] = frozenset()) -> None:
    """Add the findings to ``bag``. ``skip`` holds "vnet:NAME" / "subnet:VNET/NAME" of objects whose
    definition already failed, so their consequences are not reported as separate mistakes."""
    _Validator(policy, bag, skip).run()


def validate_query_into(query: Query, policy: Policy, bag: DiagnosticBag) -> None:
    v = _Validator(policy, bag, frozenset())
    v.query(query)


class _Validator:
    def __init__(self, policy: Policy, bag: DiagnosticBag, skip: frozenset[str]):
        self.p = policy
        self.bag = bag
        self.skip = skip
        self.nsg_names = {n.name for n in policy.nsgs}
        self.asg_names = {a.name for a in policy.asgs}
        self.nic_names = {n.name for n in policy.nics}
        # VNets whose space is a parameter (model.OpenVNet) are names a question may use (query and check place
        # them; elsewhere their hosts do not exist and resolution says so).
        self.vnet_names = {v.name for v in policy.vnets} | {v.name for v in policy.open_vnets}
        self.subnet_paths = {f"{v.name}/{s.name}" for v in policy.vnets for s in v.subnets}
        self.subnet_paths |= {f"{v.name}/{s.name}" for v in policy.open_vnets for s in v.subnets}
        self.networks = {d.name: d for d in policy.networks}
        self.port_defs = {d.name: d for d in policy.ports}
        self._prefix_count: dict[str, int] = {}
        self.asg_vnet: dict[str, str] = {}  # ASG → the VNet of its members (first one seen)

    def run(self) -> None:
        self.duplicates()
        self.defines()
        self.topology()
        self.nics()
        for nsg in self.p.nsgs:
            self.nsg(nsg)
        for q in self.p.queries:
            self.query(q)
        for a in self.p.assertions:
            self.assertion(a)
        self.admin()

    # ------------------------------------------------------------ names

    def _dups(self, kind: str, items: Iterable[tuple[str, Span]], fold_case: bool = False, where: str = "") -> None:
        first: dict[str, Span] = {}
        for name, span in items:
            key = name.lower() if fold_case else name
            if key in first:
                self.bag.error("E210", f"duplicate {kind} '{name}'{where}", span,
                               f"the first is at {first[key]}; rename or remove one")
            else:
                first[key] = span

    def duplicates(self) -> None:
        p = self.p
        self._dups("VNet", ((v.name, v.span) for v in p.vnets))
        for v in p.vnets:
            self._dups("subnet", ((s.name, s.span) for s in v.subnets), where=f" in VNet '{v.name}'")
        self._dups("NIC", ((n.name, n.span) for n in p.nics))
        self._dups("ASG", ((a.name, a.span) for a in p.asgs))
        self._dups("NSG", ((n.name, n.span) for n in p.nsgs))
        for n in p.nsgs:
            self._dups("rule name", ((r.name, r.span) for r in n.rules), where=f" in NSG '{n.name}'")
        # Tags are looked up case-insensitively, so 'storage' and 'Storage' are one tag declared twice.
        self._dups("service tag declaration", ((t.name, t.span) for t in p.tags), fold_case=True)
        self._dups("network define", ((d.name, d.span) for d in p.networks))
        self._dups("ports define", ((d.name, d.span) for d in p.ports))

    def unknown(self, code: str, what: str, ref: Ref, known: Iterable[str], how: str = "") -> None:
        hint = did_you_mean(ref.name, known)
        if how:
            hint = f"{hint} {how}".strip() if hint else how
        self.bag.error(code, f"unknown {what} '{ref.name}'", ref.span, hint)

    def check_subnet_ref(self, ref: SubnetRef) -> bool:
        path = str(ref)
        if path in self.subnet_paths:
            return True
        if f"subnet:{path}" in self.skip or (not ref.vnet and any(k.endswith(f"/{ref.subnet}") for k in self.skip)):
            return False
        shown = ref.subnet if not ref.vnet else path
        cands = sorted(self.subnet_paths | {p.split("/", 1)[1] for p in self.subnet_paths})
        hint = did_you_mean(shown, cands)
        if ref.vnet and ref.vnet not in self.vnet_names:
            hint = hint or f"there is no VNet '{ref.vnet}'" + (f"; {did_you_mean(ref.vnet, self.vnet_names)}"
                                                               if did_you_mean(ref.vnet, self.vnet_names) else "")
        self.bag.error("E201", f"unknown subnet '{shown}'", ref.span,
                       hint or "declare it inside its VNet: vnet NAME PREFIX { subnet NAME PREFIX }")
        return False

    def check_nsg_ref(self, ref: Ref | None, owner: str) -> None:
        if ref is not None and ref.name not in self.nsg_names:
            self.unknown("E207", "NSG", ref, self.nsg_names,
                         f"(attached to {owner}) declare it with 'nsg {ref.name} {{ ... }}'")

    def check_asg_ref(self, ref: Ref) -> None:
        if ref.name not in self.asg_names:
            self.unknown("E205", "application security group", ref, self.asg_names,
                         f"declare it with 'asg {ref.name}'")

    def addr_items(self, items: Iterable[AddrItem]) -> None:
        for it in items:
            if type(it) is Cidr:  # nearly every item of an imported policy: checked without a call
                n = it.network
                if n & ((1 << ((128 if n >> 128 else 32) - it.length)) - 1):
                    self.cidr(it)
                continue
            if isinstance(it, NicAddr) and it.nic.name not in self.nic_names:
                self.unknown("E202", "NIC", it.nic, self.nic_names,
                             f"declare it with 'nic {it.nic.name} in VNET/SUBNET ip ADDRESS'")
            elif isinstance(it, SubnetAddr):
                self.check_subnet_ref(it.subnet)
            elif isinstance(it, VnetAddr) and it.vnet.name not in self.vnet_names:
                self.unknown("E203", "VNet", it.vnet, self.vnet_names, f"declare it with 'vnet {it.vnet.name} PREFIX'")
            elif isinstance(it, NetworkRef) and it.define.name not in self.networks:
                self.unknown("E204", "network define", it.define, self.networks,
                             f"declare it with 'define network {it.define.name} = ...'")
            elif isinstance(it, Cidr):
                self.cidr(it)
            elif isinstance(it, IpRange) and it.lo > it.hi:
                self.bag.error("E404", "address range is reversed (first address after the last)", it.span)

    def cidr(self, c: Cidr) -> None:
        # The DSL builder never produces these; importers and hand-built models might.
        if c.network & ((1 << ((128 if c.is_v6 else 32) - c.length)) - 1):
            net = ip_text(c.network & ~((1 << ((128 if c.is_v6 else 32) - c.length)) - 1))
            self.bag.error("E405", f"prefix {ip_text(c.network)}/{c.length} has host bits set",
                           c.span, f"did you mean {net}/{c.length}?")

    def ports(self, spec: PortSpec) -> None:
        for it in spec.items or ():
            if isinstance(it, PortRange):
                self.port_range(it)
            elif isinstance(it, PortsRef) and it.define.name not in self.port_defs \
                    and not it.define.name.startswith(PARAM_PREFIX):  # an unset parameter (resolve.ParamUse)
                self.unknown("E206", "ports define", it.define, self.port_defs,
                             f"declare it with 'define ports {it.define.name} = ...'")

    def port_range(self, r: PortRange) -> None:
        for v in (r.lo, r.hi):
            if not 0 <= v <= 65535:
                self.bag.error("E403", f"port {v} is outside 0-65535", r.span,
                               "TCP and UDP ports are 0-65535; write '*' (or leave the port out) for every port")
                return
        if r.lo > r.hi:
            self.bag.error("E403", f"port range {r.lo}-{r.hi} is reversed", r.span, f"write {r.hi}-{r.lo}")

    def defines(self) -> None:
        for d in self.p.networks:
            self.addr_items(d.items)
        for t in self.p.tags:
            self.addr_items(t.items)
        for pd in self.p.ports:
            self.ports(PortSpec(pd.items))
        self._cycles("network define", "E204", {d.name: d for d in self.p.networks},
                     lambda d: [i.define for i in d.items if isinstance(i, NetworkRef)])
        self._cycles("ports define", "E206", self.port_defs,
                     lambda d: [i.define for i in d.items if isinstance(i, PortsRef)])

    def _cycles(self, kind: str, code: str, defs: dict, refs) -> None:
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for r in refs(defs[name]):
                if r.name not in defs:
                    continue
                if state.get(r.name) == 1:
                    cycle = path[path.index(r.name):] + [r.name] if r.name in path else [name, r.name]
                    self.bag.error(code, f"{kind} '{r.name}' refers to itself: {' -> '.join(cycle)}", r.span,
                                   "a define may use other defines, but not itself")
                elif state.get(r.name) is None:
                    visit(r.name, path + [r.name])
            state[name] = 2

        for name in defs:
            if name not in state:
                visit(name, [name])

    # ------------------------------------------------------------ topology

    def topology(self) -> None:
        for v in self.p.vnets:
            for c in (*v.address_spaces, *v.onprem):
                self.cidr(c)
            for peer in v.peerings:
                if peer.name not in self.vnet_names:
                    self.unknown("E203", "VNet", peer, self.vnet_names, "(in a 'peer' line)")
            spaces = [(c.lo, c.hi) for c in v.address_spaces]
            check_space = f"vnet:{v.name}" not in self.skip
            for s in v.subnets:
                self.check_nsg_ref(s.nsg, f"subnet {v.name}/{s.name}")
                for c in s.prefixes:
                    self.cidr(c)
                    if check_space and not any(lo <= c.lo and c.hi <= hi for lo, hi in spaces):
                        shown = ", ".join(_cidr_text(x) for x in v.address_spaces) or "none"
                        self.bag.error("E506", f"subnet '{s.name}' ({_cidr_text(c)}) is outside the address "
                                               f"space of VNet '{v.name}' ({shown})", _where(c, s),
                                       "choose a prefix inside the VNet's address space, or add a space to the VNet")
            # Every prefix of every subnet, sorted by start: one overlaps an earlier one iff it starts before
            # the furthest end so far (two prefixes of one subnet may not overlap either).
            ordered = sorted(((c, s) for s in v.subnets for c in s.prefixes), key=lambda cs: (cs[0].lo, -cs[0].hi))
            reach = None
            for c, s in ordered:
                if reach is not None and c.lo <= reach[0].hi:
                    rc, rs = reach
                    other = "its own prefix" if rs is s else f"subnet '{rs.name}'"
                    self.bag.error("E507", f"subnet '{s.name}' ({_cidr_text(c)}) overlaps {other} "
                                           f"({_cidr_text(rc)}) in VNet '{v.name}'",
                                   _where(c, s), "subnets of one VNet must not share addresses")
                if reach is None or c.hi > reach[0].hi:
                    reach = (c, s)

    def nics(self) -> None:
        by_ip: dict[int, tuple[str, str, Span]] = {}  # ip → (nic, vnet, span)
        asg_first: dict[str, tuple[str, str]] = {}  # ASG → (vnet, nic) of its first member
        for nic in self.p.nics:
            self.check_nsg_ref(nic.nsg, f"NIC '{nic.name}'")
            found = self.p.subnet(nic.subnet) if self.check_subnet_ref(nic.subnet) else None
            for ipc in nic.ip_configs:
                for a in ipc.asgs:
                    self.check_asg_ref(a)
                if len(ipc.asgs) > MAX_ASGS_PER_IPCONFIG:
                    self.bag.error("E415", f"NIC '{nic.name}' has {len(ipc.asgs)} ASGs on one IP configuration; "
                                           f"Azure allows {MAX_ASGS_PER_IPCONFIG}", ipc.span)
                if found is None:
                    continue
                vnet, subnet = found
                for a in ipc.asgs:
                    first = asg_first.setdefault(a.name, (vnet.name, nic.name))
                    if first[0] != vnet.name:
                        self.bag.error("E501", f"ASG '{a.name}' has members in VNets '{first[0]}' (NIC '{first[1]}') "
                                               f"and '{vnet.name}' (NIC '{nic.name}')", a.span,
                                       "all NICs of an application security group must be in one VNet; use one "
                                       "ASG per VNet")
                if ipc.ip is None:
                    continue
                addr = ip_text(ipc.ip)
                pfx = next((c for c in subnet.prefixes if c.lo <= ipc.ip <= c.hi), subnet.prefix)
                if not pfx.lo <= ipc.ip <= pfx.hi:
                    shown = ", ".join(_cidr_text(c) for c in subnet.prefixes)
                    self.bag.error("E503", f"NIC '{nic.name}' address {addr} is outside its subnet "
                                           f"{nic.subnet} ({shown})", ipc.span,
                                   f"choose an address in {shown}, or put the NIC in the subnet that "
                                   f"holds {addr}")
                elif ipc.ip < pfx.lo + RESERVED_LOW or ipc.ip > pfx.hi - RESERVED_HIGH:
                    first_ok = ip_text(pfx.lo + RESERVED_LOW)
                    last_ok = ip_text(pfx.hi - RESERVED_HIGH)
                    self.bag.error("E504", f"NIC '{nic.name}' address {addr} is reserved by Azure in subnet "
                                           f"{_cidr_text(pfx)}", ipc.span,
                                   f"Azure keeps the first four and the last address of a subnet; use "
                                   f"{first_ok}-{last_ok}")
                prev = by_ip.get(ipc.ip)
                if prev is None:
                    by_ip[ipc.ip] = (nic.name, vnet.name, ipc.span)
                elif prev[1] == vnet.name:
                    self.bag.error("E505", f"address {addr} of NIC '{nic.name}' is already used by NIC "
                                           f"'{prev[0]}' ({prev[2]})", ipc.span,
                                   "every private address in a VNet belongs to one NIC")
                else:
                    self.bag.warning("W501", f"address {addr} is used in VNet '{prev[1]}' (NIC '{prev[0]}') and "
                                             f"in VNet '{vnet.name}' (NIC '{nic.name}')", ipc.span,
                                     "legal in Azure, but the address alone does not say which NIC: name the NIC "
                                     "in 'verify'; queries and assertions over the address stop with E803")
        self.asg_vnet = {a: v for a, (v, _) in asg_first.items()}

    # ------------------------------------------------------------ NSGs and rules

    def nsg(self, nsg: Nsg) -> None:
        if len(nsg.name) > MAX_NAME:
            self.bag.error("E409", f"NSG name is {len(nsg.name)} characters; Azure allows {MAX_NAME}", nsg.span)
        if len(nsg.rules) > MAX_RULES_PER_NSG:
            if AZURE_LIMITS.get():
                self.bag.error("E410", f"NSG '{nsg.name}' has {len(nsg.rules)} rules; Azure allows "
                                       f"{MAX_RULES_PER_NSG}", nsg.span,
                               "split the rules over a subnet NSG and NIC NSGs, or merge rules with lists")
            else:
                self.bag.warning("W410", f"NSG '{nsg.name}' has {len(nsg.rules)} rules; Azure allows "
                                         f"{MAX_RULES_PER_NSG} (analysed anyway: --no-azure-limits)", nsg.span,
                                 "Azure rejects this NSG as written; split the rules over a subnet NSG and NIC "
                                 "NSGs before deploying it")
        prios: dict[tuple[Direction, int], Rule] = {}
        asgs_in_nsg: set[str] = set()
        for r in nsg.rules:
            self.rule(nsg, r)
            if not PRIORITY_MIN <= r.priority <= PRIORITY_MAX:
                self.bag.error("E401", f"priority {r.priority} of rule '{r.name}' is outside {PRIORITY_MIN}-"
                                       f"{PRIORITY_MAX}", r.span,
                               "user rules take priorities 100 (first) to 4096; 65000 and above belong to Azure's "
                               "default rules")
            else:
                other = prios.setdefault((r.direction, r.priority), r)
                if other is not r:
                    self.bag.error("E402", f"priority {r.priority} is used twice in the {r.direction.value.lower()} "
                                           f"rules of NSG '{nsg.name}' (rules '{other.name}' and '{r.name}')", r.span,
                                   f"the first is at {other.span}; give each rule its own priority")
            for side in (r.source, r.destination):
                if isinstance(side, AsgSide):
                    asgs_in_nsg.update(a.name for a in side.asgs)
        if len(asgs_in_nsg) > MAX_ASGS_PER_NSG:
            self.bag.error("E416", f"NSG '{nsg.name}' names {len(asgs_in_nsg)} application security groups; Azure "
                                   f"allows {MAX_ASGS_PER_NSG}", nsg.span)

    def rule(self, nsg: Nsg, r: Rule) -> None:
        if len(r.name) > MAX_NAME:
            self.bag.error("E409", f"rule name is {len(r.name)} characters; Azure allows {MAX_NAME}", r.span)
        if len(r.description) > MAX_DESCRIPTION:
            self.bag.error("E408", f"description of rule '{r.name}' is {len(r.description)} characters; Azure allows "
                                   f"{MAX_DESCRIPTION}", r.span, "shorten it; a '#' comment can say more")
        for side, what in ((r.source, "source"), (r.destination, "destination")):
            self.side(side, r, what)
        self.ports(r.source_ports)
        self.ports(r.destination_ports)
        if r.protocol in (Protocol.ICMP, Protocol.ESP, Protocol.AH) and not (
                r.source_ports.is_any and r.destination_ports.is_any):
            self.bag.warning("W401", f"rule '{r.name}' is {r.protocol.value} with ports: it matches nothing",
                             r.span, f"{r.protocol.value} packets carry no ports, so a rule with ports matches only "
                                     f"TCP/UDP packets; drop the ports, or use tcp/udp")
        if isinstance(r.source, AsgSide) or isinstance(r.destination, AsgSide):
            named = [a.name for s in (r.source, r.destination) if isinstance(s, AsgSide) for a in s.asgs]
            vnets = {self.asg_vnet[a]: a for a in named if a in self.asg_vnet}
            if len(vnets) > 1:
                shown = ", ".join(f"'{a}' in '{v}'" for v, a in vnets.items())
                self.bag.error("E502", f"rule '{r.name}' names ASGs in different VNets ({shown})", r.span,
                               "the ASGs of one rule must all have their members in the same VNet")

    def side(self, side: RuleSide, r: Rule, what: str) -> None:
        if isinstance(side, AsgSide):
            if not side.asgs:
                self.bag.error("E407", f"the {what} of rule '{r.name}' names no ASG", side.span or r.span)
            if len(side.asgs) > MAX_ASGS_PER_SIDE:
                self.bag.error("E407", f"the {what} of rule '{r.name}' names {len(side.asgs)} ASGs; Azure allows "
                                       f"{MAX_ASGS_PER_SIDE}", side.span if side.span.line else r.span,
                               "use fewer, larger ASGs, or split the rule")
            for a in side.asgs:
                self.check_asg_ref(a)
        elif isinstance(side, PrefixSide):
            self.addr_items(side.items)
            n = self.prefix_count(side.items)
            if n > MAX_PREFIXES_PER_SIDE:
                self.bag.error("E411", f"the {what} of rule '{r.name}' has {n} addresses and ranges; Azure allows "
                                       f"{MAX_PREFIXES_PER_SIDE}", side.span if side.span.line else r.span,
                               "summarise the prefixes (fewer, larger CIDRs) or split the rule")

    def prefix_count(self, items: Iterable[AddrItem], seen: frozenset[str] = frozenset()) -> int:
        n = 0
        for it in items:
            if isinstance(it, NetworkRef):
                name = it.define.name
                d = self.networks.get(name)
                if d is None or name in seen:
                    continue
                if name not in self._prefix_count:
                    self._prefix_count[name] = self.prefix_count(d.items, seen | {name})
                n += self._prefix_count[name]
            else:
                n += 1
        return n

    # ------------------------------------------------------------ security admin rules (AVNM)

    def admin(self) -> None:
        p = self.p
        if not p.groups and not p.admin_configs:
            return
        self._dups("network group", ((g.name, g.span) for g in p.groups))
        self._dups("security admin configuration", ((c.name, c.span) for c in p.admin_configs))
        group_names = {g.name for g in p.groups}
        for g in p.groups:
            for m in g.members:
                if m.name not in self.vnet_names:
                    self.unknown("E514", "VNet", m, self.vnet_names,
                                 f"(a member of network group '{g.name}') network groups hold VNets; declare it "
                                 f"with 'vnet {m.name} PREFIX'")
        for c in p.admin_configs:
            self._dups("rule collection", ((rc.name, rc.span) for rc in c.collections),
                       where=f" in admin configuration '{c.name}'")
            for rc in c.collections:
                self._dups("rule name", ((r.name, r.span) for r in rc.rules),
                           where=f" in rule collection '{c.name}/{rc.name}'")
                for gref in rc.groups:
                    if gref.name not in group_names:
                        self.unknown("E515", "network group", gref, group_names,
                                     f"declare it with 'group {gref.name} = VNET, ...'")
                for r in rc.rules:
                    self.admin_rule(r)
        # Azure documents no order between two admin rules of one priority applied to one VNet.
        for v in p.vnets:
            seen: dict[tuple[Direction, int], object] = {}
            for r in p.admin_rules_for(v.name):
                if not ADMIN_PRIORITY_MIN <= r.priority <= ADMIN_PRIORITY_MAX:
                    continue
                other = seen.setdefault((r.direction, r.priority), r)
                if other is not r:
                    self.bag.warning("W510", f"admin rules '{other.label}' and '{r.label}' both have priority "  # type: ignore[attr-defined]
                                             f"{r.priority} for {r.direction.value.lower()} traffic of VNet "
                                             f"'{v.name}'", r.span,
                                     "Azure does not document which of them goes first; nsgsolve takes the one "
                                     f"declared first ({other.span}). Give each its own priority")  # type: ignore[attr-defined]

    def admin_rule(self, r) -> None:
        if not ADMIN_PRIORITY_MIN <= r.priority <= ADMIN_PRIORITY_MAX:
            self.bag.error("E513", f"priority {r.priority} of admin rule '{r.name}' is outside "
                                   f"{ADMIN_PRIORITY_MIN}-{ADMIN_PRIORITY_MAX}", r.span,
                           "security admin rules take priorities 1 (first) to 4096")
        if len(r.description) > MAX_DESCRIPTION:
            self.bag.error("E408", f"description of rule '{r.name}' is {len(r.description)} characters; Azure allows "
                                   f"{MAX_DESCRIPTION}", r.span, "shorten it; a '#' comment can say more")
        for side in (*r.sources, *r.destinations):
            if isinstance(side, PrefixSide):
                self.addr_items(side.items)
        self.ports(r.source_ports)
        self.ports(r.destination_ports)
        if r.protocol in (Protocol.ICMP, Protocol.ESP, Protocol.AH) and not (
                r.source_ports.is_any and r.destination_ports.is_any):
            self.bag.warning("W401", f"rule '{r.name}' is {r.protocol.value} with ports: it matches nothing",
                             r.span, f"{r.protocol.value} packets carry no ports, so a rule with ports matches only "
                                     f"TCP/UDP packets; drop the ports, or use tcp/udp")

    # ------------------------------------------------------------ queries

    def query(self, q: Query) -> None:
        for ep in (*q.sources, *q.destinations):
            self.endpoint(ep)
        self.ports(q.ports)

    def assertion(self, a: Assertion) -> None:
        """An assertion's traffic and except clauses get a query's checks: Z3 keeps ports in 16 bits, so an
        unchecked ``port 70000`` would silently stand for port 4464."""
        if a.traffic is not None:
            self.query(a.traffic)
        for e in a.excepts:
            for ep in (*(e.sources or ()), *(e.destinations or ())):
                self.endpoint(ep)
            self.ports(e.ports)

    def endpoint(self, ep: Endpoint) -> None:
        if isinstance(ep, AsgSide):
            for a in ep.asgs:
                self.check_asg_ref(a)
        elif isinstance(ep, (AnyAddress, TagSide)):
            return  # tags are checked when resolved (E301), with the service tag data at hand
        else:
            self.addr_items([ep])


def _cidr_text(c: Cidr) -> str:
    return f"{ip_text(c.network)}/{c.length}"


__all__ = ["validate", "validate_into", "validate_query_into"]


def _where(c, s) -> Span:
    """Where to point for one prefix of a subnet: the subnet for its first, the prefix itself for another."""
    return s.span if c is s.prefix or not c.span.line else c.span
