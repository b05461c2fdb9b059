"""The built-in security baseline (``nsgsolve check --baseline``): exposure controls proved, not guessed.

Scanners (Checkov, tfsec/Trivy, KICS, ...) read one rule at a time and match strings (``*``,
``0.0.0.0/0``, ``internet``). Here every exposure control is an ordinary contract,
``assert no Internet -> DESTINATION port P PROTO``, proved by the contract checker
(:class:`nsgsolve.analyses.contracts.ContractChecker`) over the whole deployment: admin rules, the subnet
NSG and the NIC NSG in Azure's order, default rules, the platform. So a failure carries what a failing
assertion carries (a witness packet replayed through the reference evaluator, its trace, the allow rule
of every layer that let it through), and every report format of ``check`` serves both.

The catalogue (:data:`CONTROLS`) is data: each control's benchmark number and version, its ports and
protocol, and the Checkov and tfsec/Trivy ids of the checks that ask the same question. docs/baseline.md
is its description for users.

*Destinations* are every place a host can be (:func:`destinations`): each NIC (a scale set's NIC
configuration is one), each subnet behind an NSG as any address of its prefixes (a host added later
gets only the subnet's NSG), and each NSG attached to nothing in the input, checked on its own as the
only NSG in front of a host of an assumed private space (and said so). "From the Internet" is the
``Internet`` endpoint of a question (:func:`nsgsolve.analyses.endpoints.internet_hosts`): public IPv4
space outside every VNet's ``VirtualNetwork`` tag, computed as address sets, never from strings.

Rule values an import left open (template parameters without a value, ``?expr:`` names, W601/W602) are
read at their worst (:func:`worst_case`): an open side of an allow rule as every address, of a deny rule
as none. That policy allows a superset of what any value allows (a first-match list only allows more
when allows match more and denies less), so a pass holds for every value, and a failure names the open
values the witness went through: a value holding the witness's address opens the port.

Hygiene controls are structural: an allow rule matching every packet (computed from the resolved rule,
so ``0.0.0.0/0``, ``*`` and ``Internet`` plus ``VirtualNetwork`` are alike), a subnet with no NSG
(except those Azure forbids or manages one on), an NSG attached to nothing.

Waivers (:class:`Waiver`) turn a failure into a pass that says so, until their expiry date; an expired
waiver fails again, saying it expired.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from nsgsolve.analyses.contracts import ContractChecker, ContractResult, Responsible
from nsgsolve.analyses.results import Status
from nsgsolve.errors import DiagnosticBag, InputError, UsageError
from nsgsolve.model import (
    ANY_PORTS, PARAM_PREFIX, Access, AnyAddress, Assertion, AssertionKind, Cidr, Direction, NicAddr, Nsg, Policy,
    PortRange, PortsRef, PortSpec, Protocol, Query, Ref, Rule, Span, Subnet, TagSide, VNet,
)
from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS, ALL_V6, IntervalSet, int_to_ip, ip_to_int
from nsgsolve.semantics.resolve import SYMBOLIC_PREFIX, IpcKey, ResolvedPolicy, implied_host_name, resolve
from nsgsolve.semantics.evaluate import Packet
from nsgsolve.semantics.servicetags import ServiceTagDb

# How many of the latest counterexamples are tried at another destination before asking the solver.
MOVE_TRIES = 4

SETS = ("cis", "high-risk-ports", "hygiene")
CIS_VERSION = "CIS Microsoft Azure Foundations Benchmark v3.0.0"
CIS_OLD = "v2.1.0"
# learn.microsoft.com/azure/virtual-network-manager/concept-security-admins#protect-high-risk-ports
AVNM_SOURCE = ("Azure Virtual Network Manager, 'Security admin rules', section 'Protect high-risk ports' "
               "(learn.microsoft.com/azure/virtual-network-manager/concept-security-admins)")


@dataclass(frozen=True)
class Control:
    """One baseline control. ``ports`` None with a protocol: every port of it (CIS "UDP")."""

    id: str  # stable: SARIF rule id baseline/<id>, JUnit test names, waivers
    set: str  # one of SETS
    title: str
    benchmark: str  # where it comes from, with the number and version
    ports: tuple[tuple[int, int], ...] | None = None
    protocol: Protocol = Protocol.TCP
    checkov: tuple[str, ...] = ()
    tfsec: tuple[str, ...] = ()  # tfsec / Trivy AVD ids
    kind: str = "exposure"  # exposure | any-to-any | subnet-nsg | attached

    @property
    def service(self) -> str:
        """``port 22 tcp``, ``udp``, ``port 111 tcp/udp``: the traffic the control is about."""
        proto = "tcp/udp" if self.protocol is Protocol.ANY else self.protocol.value.lower()
        if self.ports is None:
            return proto
        ports = ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports)
        return f"port {ports} {proto}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "set": self.set, "title": self.title, "benchmark": self.benchmark,
                             "kind": self.kind, "checkov": list(self.checkov), "tfsec": list(self.tfsec)}
        if self.kind == "exposure":
            d["protocol"] = "any" if self.protocol is Protocol.ANY else self.protocol.value.lower()
            d["ports"] = None if self.ports is None else [[lo, hi] for lo, hi in self.ports]
        return d


def _p(*ports: int | tuple[int, int]) -> tuple[tuple[int, int], ...]:
    return tuple((p, p) if isinstance(p, int) else p for p in ports)


def _cis(num: str, old: str, what: str, ports, protocol: Protocol, checkov: tuple[str, ...],
         tfsec: tuple[str, ...]) -> Control:
    return Control(f"cis-{num}", "cis", f"Ensure that {what} access from the Internet is evaluated and restricted",
                   f"{CIS_VERSION} {num} ({CIS_OLD}: {old})", ports, protocol, checkov, tfsec)


def _hrp(slug: str, name: str, ports, protocol: Protocol, why: str, source: str = AVNM_SOURCE,
         checkov: tuple[str, ...] = (), tfsec: tuple[str, ...] = ()) -> Control:
    return Control(f"hrp-{slug}", "high-risk-ports", f"{name} is not reachable from the Internet ({why})", source,
                   ports, protocol, checkov, tfsec)


COMMON = "nsgsolve: a database or management port commonly exposed by mistake (issue 20)"
TCP, UDP, BOTH = Protocol.TCP, Protocol.UDP, Protocol.ANY

CONTROLS: tuple[Control, ...] = (
    # RDP also runs over UDP 3389 (RDP's UDP transport): CIS's audit names "TCP or Any", checkov #7271 asks for UDP.
    _cis("7.1", "6.1", "RDP", _p(3389), BOTH, ("CKV_AZURE_9",), ("AVD-AZU-0048",)),
    _cis("7.2", "6.2", "SSH", _p(22), TCP, ("CKV_AZURE_10",), ("AVD-AZU-0050",)),
    _cis("7.3", "6.3", "UDP", None, UDP, ("CKV_AZURE_77",), ()),
    _cis("7.4", "6.4", "HTTP(S)", _p(80, 443), TCP, ("CKV_AZURE_160",), ()),
    # The AVNM table, row by row (port, protocol, Microsoft's reason).
    _hrp("ftp", "FTP (20, 21)", _p(20, 21), TCP, "unencrypted FTP traffic"),
    _hrp("ssh", "SSH (22)", _p(22), TCP, "brute force attacks", checkov=("CKV_AZURE_10",), tfsec=("AVD-AZU-0050",)),
    _hrp("telnet", "Telnet (23)", _p(23), TCP, "unauthenticated, unencrypted traffic"),
    _hrp("tftp", "TFTP (69)", _p(69), UDP, "unauthenticated, unencrypted traffic"),
    _hrp("rpc", "RPC (111)", _p(111), BOTH, "unencrypted authentication"),
    _hrp("nntp", "NNTP (119)", _p(119), TCP, "unencrypted authentication"),
    _hrp("epmap", "RPC endpoint mapper (135)", _p(135), BOTH, "remote management services"),
    _hrp("snmp", "SNMP (161)", _p(161), TCP, "no or weak authentication"),
    _hrp("snmp-trap", "SNMP trap (162)", _p(162), BOTH, "no or weak authentication"),
    _hrp("smb", "SMB (445)", _p(445), TCP, "a well-known attack vector"),
    _hrp("rexec", "rexec (512)", _p(512), TCP, "remote commands without encryption"),
    _hrp("rsh", "Remote shell (514)", _p(514), TCP, "remote commands without authentication or encryption"),
    _hrp("rpc-http", "HTTP RPC endpoint mapper (593)", _p(593), BOTH, "unencrypted remote procedure calls"),
    _hrp("rsync", "rsync (873)", _p(873), TCP, "unencrypted file transfer"),
    _hrp("nfs", "NFS (2049)", _p(2049), BOTH, "network file system"),
    _hrp("rdp", "RDP (3389)", _p(3389), TCP, "brute force attacks", checkov=("CKV_AZURE_9",), tfsec=("AVD-AZU-0048",)),
    _hrp("vnc", "VNC (5800, 5900)", _p(5800, 5900), TCP, "remote frame buffer"),
    _hrp("memcached", "Memcached (11211)", _p(11211), UDP, "reflection attacks"),
    # Common database and management ports (issue 20's list; SMB, Telnet and FTP are in the AVNM table).
    _hrp("mssql", "SQL Server (1433)", _p(1433), TCP, "database", COMMON),
    _hrp("mysql", "MySQL (3306)", _p(3306), TCP, "database", COMMON),
    _hrp("postgresql", "PostgreSQL (5432)", _p(5432), TCP, "database", COMMON),
    _hrp("redis", "Redis (6379)", _p(6379), TCP, "database", COMMON),
    _hrp("mongodb", "MongoDB (27017)", _p(27017), TCP, "database", COMMON),
    _hrp("winrm", "WinRM (5985-5986)", _p((5985, 5986)), TCP, "remote management", COMMON),
    Control("hyg-any-to-any", "hygiene", "No NSG rule allows every packet (any source, destination, port and "
            "protocol)", "nsgsolve hygiene", kind="any-to-any", tfsec=("AVD-AZU-0047",)),
    Control("hyg-subnet-nsg", "hygiene", "Every subnet has an NSG (except the subnets Azure forbids or manages one on)",
            "nsgsolve hygiene", kind="subnet-nsg", checkov=("CKV2_AZURE_31",)),
    Control("hyg-nsg-attached", "hygiene", "Every NSG is attached to a subnet or a NIC", "nsgsolve hygiene",
            kind="attached"),
)
CONTROL_BY_ID = {c.id: c for c in CONTROLS}

# Subnets that cannot or need not carry an NSG: GatewaySubnet (NSGs are not supported on the VPN/ExpressRoute
# gateway subnet), AzureFirewallSubnet and AzureFirewallManagementSubnet (the firewall is the filter; NSGs are
# not supported there), RouteServerSubnet (not supported). Microsoft Learn: "VPN Gateway settings: gateway
# subnet", "Azure Firewall FAQ", "Azure Route Server FAQ".
EXEMPT_SUBNETS = {"gatewaysubnet": "Azure does not support an NSG on the gateway subnet",
                  "azurefirewallsubnet": "Azure Firewall's subnet does not support an NSG",
                  "azurefirewallmanagementsubnet": "Azure Firewall's management subnet does not support an NSG",
                  "routeserversubnet": "Azure Route Server's subnet does not support an NSG"}


class SelectionError(ValueError):
    """An unknown baseline set name (the command words it as a usage error)."""


def select(names: Sequence[str]) -> tuple[Control, ...]:
    """The controls of the named sets (``all`` is every set), in catalogue order."""
    wanted: set[str] = set()
    for n in names:
        for part in n.split(","):
            part = part.strip().lower()
            if part == "all":
                wanted |= set(SETS)
            elif part in SETS:
                wanted.add(part)
            elif part:
                raise SelectionError(part)
    return tuple(c for c in CONTROLS if c.set in wanted)


# ---------------------------------------------------------------- destinations


@dataclass(frozen=True)
class Destination:
    """A place a host can be: ``nic NAME``, ``subnet VNET/SUBNET`` (any address of its prefixes, behind its
    NSG) or ``nsg NAME`` (an NSG attached to nothing, on its own)."""

    kind: str  # nic | subnet | nsg
    name: str
    span: Span
    keys: frozenset[IpcKey]  # the IP configurations that stand for it
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def endpoint_name(self) -> str:
        """The NIC name it is asked about as (an implied host goes by VNET/SUBNET)."""
        return next(iter(self.keys)).nic

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.note:
            d["note"] = self.note
        return d


ASSUMED_SPACES = ("10.255.0.0/16", "172.31.0.0/16", "192.168.255.0/24", "10.254.0.0/16")
UNATTACHED_VNET = "(unattached)"


def augmented(policy: Policy) -> tuple[Policy, dict[str, Cidr]]:
    """The policy with every NSG attached to nothing placed alone on a subnet of an assumed VNet, so it
    filters a host a question can reach. Returns the assumed prefix per NSG; the VNet's space is private and
    apart from every declared VNet, so it changes nothing about the Internet of the question."""
    attached = {s.nsg.name for _, s in policy.subnets() if s.nsg} | {n.nsg.name for n in policy.nics if n.nsg}
    lonely = [n for n in policy.nsgs if n.name not in attached]
    if not lonely:
        return policy, {}
    taken = IntervalSet([(c.lo, c.hi) for v in policy.vnets for c in v.address_spaces])
    base = next((c for c in ASSUMED_SPACES if not taken.intersection(IntervalSet([(_cidr(c).lo, _cidr(c).hi)]))), None)
    if base is None:  # every candidate overlaps: fall back on the documentation range, still not Internet
        base = "192.0.2.0/24"
    space = _cidr(base)
    # One /28 per NSG inside the assumed space: each NSG gets its own host and subnet.
    subnets = []
    prefixes: dict[str, Cidr] = {}
    for i, n in enumerate(lonely):
        net = space.network + (i << 4)
        if net + 15 > space.network + (1 << (32 - space.length)) - 1:
            break
        c = Cidr(net, 28)
        prefixes[n.name] = c
        subnets.append(Subnet(n.name, c, Ref(n.name), n.span))
    vnet = VNet(UNATTACHED_VNET, (space,), tuple(subnets))
    return dataclasses.replace(policy, vnets=policy.vnets + (vnet,)), prefixes


def _cidr(text: str) -> Cidr:
    net, _, length = text.partition("/")
    return Cidr(ip_to_int(net), int(length))


def destinations(rp: ResolvedPolicy, lonely: dict[str, Cidr]) -> list[Destination]:
    """Every place a host can be, in the order of the input: NICs, subnets behind an NSG, lonely NSGs."""
    policy = rp.policy
    out: list[Destination] = []
    for nic in policy.nics:
        keys = frozenset(k for k in rp.ipcs if k.nic == nic.name and not rp.ipcs[k].implied)
        if keys:
            out.append(Destination("nic", nic.name, nic.span, keys))
    for v, s in policy.subnets():
        if s.nsg is None:
            continue
        key = IpcKey(implied_host_name(v.name, s.name), 0)
        if key not in rp.ipcs:
            continue
        if v.name == UNATTACHED_VNET:
            nsg = policy.nsg(s.nsg.name)
            out.append(Destination("nsg", s.nsg.name, nsg.span if nsg else s.span, frozenset([key]),
                                   f"nsg {s.nsg.name} is attached to nothing in the input (or to a resource nsgsolve "
                                   f"does not model): checked on its own, as the only NSG in front of a host of an "
                                   f"assumed private subnet {int_to_ip(s.prefix.network)}/{s.prefix.length} (its "
                                   "VirtualNetwork tag is that subnet's assumed VNet)"))
        else:
            out.append(Destination("subnet", f"{v.name}/{s.name}", s.span, frozenset([key]),
                                   f"any address of {', '.join(_cidr_text(c) for c in s.prefixes)} behind nsg "
                                   f"{s.nsg.name} (a host added later gets only the subnet's NSG)"))
    return out


def _cidr_text(c: Cidr) -> str:
    return f"{int_to_ip(c.network)}/{c.length}"


# ---------------------------------------------------------------- open values, read at their worst


@dataclass(frozen=True)
class OpenValue:
    """A rule value an import left open, and how the baseline read it."""

    name: str  # the ?expr: name
    nsg: str
    rule: str
    access: Access
    span: Span
    side: str = "source"  # source | destination | source ports | destination ports
    source: str = ""  # the template text at the value, e.g. [parameters('sshSource')]

    @property
    def assumed(self) -> str:
        if self.access is not Access.ALLOW:
            return "nothing (the deny rule is left out)"
        return "every port" if self.side.endswith("ports") else "every address"

    def describe(self) -> str:
        text = f" {self.source}" if self.source else ""
        return (f"{self.side} value{text} of {self.access.value.lower()} rule {self.rule} in nsg {self.nsg} "
                f"({self.span})")


def _source_text(span: Span) -> str:
    """The template text at a span (a JSON string value), for naming a parameter; '' when unreadable."""
    try:
        with open(span.file, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if i == span.line:
                    rest = line[max(span.column - 1, 0):].strip()
                    if rest.startswith('"'):
                        end = rest.find('"', 1)
                        while end > 0 and rest[end - 1] == "\\":
                            end = rest.find('"', end + 1)
                        return rest[1:end] if end > 0 else rest
                    return rest.rstrip(",")[:120]
    except OSError:
        return ""
    return ""


def _is_open(name: str) -> bool:
    """A value an import left open: ``?expr:`` (not computable offline) or ``?param:`` (an unset parameter)."""
    return name.startswith(SYMBOLIC_PREFIX) or name.startswith(PARAM_PREFIX)


def _open_parts(r: Rule) -> list[tuple[str, str, Span]]:
    """(side, ?expr/?param name, span) of every value of ``r`` an import left open."""
    out = []
    for which, side in (("source", r.source), ("destination", r.destination)):
        if isinstance(side, TagSide) and _is_open(side.tag.name):
            out.append((which, side.tag.name, side.span if side.span.line else side.tag.span))
    for which, spec in (("source ports", r.source_ports), ("destination ports", r.destination_ports)):
        for it in spec.items or ():
            if isinstance(it, PortsRef) and _is_open(it.define.name):
                out.append((which, it.define.name, it.define.span if it.define.span.line else spec.span))
    return out


def worst_case(policy: Policy) -> tuple[Policy, list[OpenValue]]:
    """The policy with each open value of an NSG rule read at its worst: on an allow rule every address
    (every port) in its place; a deny rule with an open value is left out (it matches nothing). That allows
    a superset of what any value allows."""
    opened: list[OpenValue] = []
    nsgs = []
    for nsg in policy.nsgs:
        kept = []
        changed = False
        for r in nsg.rules:
            parts = _open_parts(r)
            if not parts:
                kept.append(r)
                continue
            changed = True
            for which, name, span in parts:
                span = span if span.line else r.span
                opened.append(OpenValue(name, nsg.name, r.name, r.access, span, which, _source_text(span)))
            if r.access is not Access.ALLOW:
                continue
            sides = {w for w, _, _ in parts}
            every = PortSpec((PortRange(0, 65535),))
            kept.append(dataclasses.replace(
                r, source=AnyAddress(r.source.span) if "source" in sides else r.source,
                destination=AnyAddress(r.destination.span) if "destination" in sides else r.destination,
                source_ports=every if "source ports" in sides else r.source_ports,
                destination_ports=every if "destination ports" in sides else r.destination_ports))
        nsgs.append(dataclasses.replace(nsg, rules=tuple(kept)) if changed else nsg)
    if not opened:
        return policy, []
    return dataclasses.replace(policy, nsgs=tuple(nsgs)), opened


# ---------------------------------------------------------------- waivers


@dataclass(frozen=True)
class Waiver:
    control: str  # a control id, a set name, or * (every control)
    destination: str  # "nic web1", "subnet hub/dmz", "nsg x", or * (every destination)
    reason: str
    expires: datetime.date | None
    span: Span

    def matches(self, c: Control, d: "Destination | None", label: str) -> bool:
        ctl = self.control.lower()
        if ctl not in ("*", c.id.lower(), c.set):
            return False
        return self.destination == "*" or self.destination.lower() == label.lower()

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "destination": self.destination, "reason": self.reason,
                "expires": self.expires.isoformat() if self.expires else None, "location": {
                    "file": self.span.file, "line": self.span.line, "column": self.span.column}}


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class BaselineResult:
    """One control at one destination (or one rule, subnet or NSG for hygiene)."""

    control: Control
    target: str  # what it is about: "nic web1", "subnet hub/dmz", "nsg x", "rule r in nsg x"
    span: Span  # where that is in the input
    status: Status
    summary: str
    contract: ContractResult | None = None  # exposure controls: the proof, witness and responsible rules
    responsible: tuple[Responsible, ...] = ()
    notes: tuple[str, ...] = ()
    waiver: Waiver | None = None
    waiver_state: str = ""  # "" | "active" | "expired"
    destination: Destination | None = None
    open_values: tuple[OpenValue, ...] = ()
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """Stable test name: the control and what it is about."""
        return f"{self.control.id}/{self.target}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"control": self.control.to_dict(), "target": self.target, "status": self.status.value,
                             "summary": self.summary}
        if self.destination is not None:
            d["destination"] = self.destination.to_dict()
        c = self.contract
        if c is not None:
            d["assertion"] = c.claim()
            w = c.as_witness()
            if w is not None:
                d["witness"] = w.to_dict()
            if c.reason:
                d["reason"] = c.reason
        d["responsible"] = [r.to_dict() for r in self.responsible]
        if self.notes:
            d["notes"] = list(self.notes)
        if self.open_values:
            d["open_values"] = [{"name": o.name, "nsg": o.nsg, "rule": o.rule, "side": o.side, "assumed": o.assumed,
                                 "source": o.source, "location": {"file": o.span.file, "line": o.span.line,
                                                                  "column": o.span.column}}
                                for o in self.open_values]
        if self.waiver is not None:
            d["waiver"] = {**self.waiver.to_dict(), "state": self.waiver_state}
        d["seconds"] = round(self.seconds, 4)
        return d


Progress = Callable[[int, int, str], None]


class Baseline:
    """Checks the baseline controls on one policy."""

    def __init__(self, policy: Policy, tag_db: ServiceTagDb | None = None, rlimit: int | None = None):
        self.original = policy
        worst, self.open_values = worst_case(policy)
        full, self.lonely = augmented(worst)
        self.rp = resolve(full, tag_db, subnet_hosts=True)
        self.destinations = destinations(self.rp, self.lonely)
        self.rlimit = rlimit
        self._checker: ContractChecker | None = None
        self._pool: list[Packet] = []  # allowed packets from the Internet found so far (the latest last)

    @property
    def checker(self) -> ContractChecker:
        if self._checker is None:
            self._checker = ContractChecker(self.rp, rlimit=self.rlimit)
        return self._checker

    def run(self, controls: Sequence[Control], progress: Progress | None = None) -> list[BaselineResult]:
        out: list[BaselineResult] = []
        for i, c in enumerate(controls):
            if progress is not None:
                progress(i, len(controls), c.id)
            start = time.perf_counter()
            if c.kind == "exposure":
                got = self._exposure(c)
            elif c.kind == "any-to-any":
                got = self._any_to_any(c)
            elif c.kind == "subnet-nsg":
                got = self._subnet_nsg(c)
            else:
                got = self._attached(c)
            spent = (time.perf_counter() - start) / max(len(got), 1)
            out += [dataclasses.replace(r, seconds=spent) for r in got]
        return out

    # -- exposure: assert no Internet -> DESTINATION port P PROTO, one destination at a time

    def _open_layers(self, d: Destination) -> list[str]:
        names = set()
        for k in d.keys:
            info = self.rp.ipcs[k]
            names |= {n for n in (info.nic_nsg, info.subnet_nsg) if n}
        return sorted(n for n in names if n in self.rp.open_nsgs)

    def _assertion(self, c: Control, ds: Sequence[Destination]) -> Assertion:
        ports = ANY_PORTS if c.ports is None else PortSpec(tuple(PortRange(lo, hi) for lo, hi in c.ports))
        dst = tuple(NicAddr(Ref(d.endpoint_name)) for d in ds)
        where = ds[0].label if len(ds) == 1 else f"{len(ds)} destinations"
        text = f"no Internet -> {where} {c.service}"
        span = ds[0].span if len(ds) == 1 else Span(self.original.source, 0, 0)
        q = Query((TagSide(Ref("Internet")),), dst, ports, c.protocol, span, text)
        return Assertion(AssertionKind.NO, q, (), c.id, "", span, text, True)

    def _exposure(self, c: Control) -> list[BaselineResult]:
        results: dict[str, BaselineResult] = {}
        todo: list[Destination] = []
        for d in self.destinations:
            opened = self._open_layers(d)
            if opened:
                results[d.label] = self._undecided_open(c, d, opened)
            else:
                todo.append(d)
        by_key = {k: d for d in todo for k in d.keys}
        remaining = list(todo)

        def settle(d: Destination, r: ContractResult) -> None:
            results[d.label] = self._from_contract(c, d, r)
            remaining.remove(d)
            self._pool.append(r.witness.packet)  # type: ignore[union-attr]

        # A failure needs one allowed packet, which the reference evaluator confirms: first move the
        # counterexamples found so far (for any control) to each destination and this control's ports.
        for d in list(remaining):
            moved = self._moved(c, d)
            if moved is not None:
                settle(d, moved)
        # Then one question for every destination left; each counterexample names the destination it reached,
        # which fails, is moved to the others, and leaves the question. What is left when the solver finds
        # nothing passes: most controls hold, and then they cost one question.
        while remaining:
            a = self._assertion(c, remaining)
            try:
                r = self.checker.check(a, c.id)
            except InputError:  # E803 for one of them: ask each on its own below
                r = ContractResult(a, c.id, Status.UNKNOWN, "")
            if r.verdict is Status.PASS:
                for d in remaining:
                    results[d.label] = self._from_contract(c, d, r, "no packet from the Internet is allowed")
                break
            hit = by_key.get(r.witness.dst_endpoint) if r.witness is not None and r.witness.dst_endpoint else None
            if r.verdict is Status.FAIL and hit is not None and hit in remaining:
                settle(hit, r)
                for d in list(remaining):
                    moved = self._moved(c, d)
                    if moved is not None:
                        settle(d, moved)
                continue
            # Undecided (or a witness we cannot place): ask about each remaining destination on its own.
            for d in remaining:
                a = self._assertion(c, [d])
                try:
                    one = self.checker.check(a, c.id)
                except InputError as e:
                    # A destination the encodings cannot tell from another VNet's NIC (E803): undecided, with
                    # the reason, never a pass.
                    first = e.diagnostics[0]
                    one = ContractResult(a, c.id, Status.UNKNOWN, f"undecided: {first.message}",
                                         reason=f"{first.code}: {first.hint}")
                results[d.label] = self._from_contract(c, d, one)
            break
        return [results[d.label] for d in self.destinations if d.label in results]

    def _moved(self, c: Control, d: Destination) -> ContractResult | None:
        """A known allowed packet (the latest first) sent to ``d`` on this control's service instead, if the
        reference evaluator allows it there."""
        if not self._pool:
            return None
        number = c.protocol.number
        protos = [6, 17] if number is None else [number]
        ports = [lo for lo, _ in c.ports] if c.ports is not None else [None]
        a = self._assertion(c, [d])
        seen = set()
        for w in reversed(self._pool[-MOVE_TRIES:]):
            if w.src in seen:
                continue
            seen.add(w.src)
            for k in sorted(d.keys):
                ip, assignment = self._address(k)
                for proto in protos:
                    for port in ports:
                        dport = port if port is not None else (w.dport if w.dport is not None else 53)
                        cand = Packet(proto, w.src, w.sport if w.sport is not None else 49152, ip, dport)
                        try:
                            got = self.checker.confirm(a, c.id, cand, assignment)
                        except (InputError, UsageError):  # E803, or an address several NICs hold
                            return None
                        if got is not None:
                            return got
        return None

    def _address(self, k: IpcKey) -> tuple[int, dict[IpcKey, int]]:
        """An address for ``k`` and the assignment that puts it there (a dynamic one: its first usable address
        no static NIC holds)."""
        info = self.rp.ipcs[k]
        if info.ip is not None:
            return info.ip, {}
        taken = self.rp.static_ip_index
        for lo, hi in info.usable:
            for ip in range(lo, min(hi, lo + 64) + 1):
                if ip not in taken:
                    return ip, {k: ip}
        return info.usable.min(), {k: info.usable.min()}

    def _from_contract(self, c: Control, d: Destination, r: ContractResult, summary: str = "") -> BaselineResult:
        own = self._assertion(c, [d])
        r = dataclasses.replace(r, assertion=own, name=f"{c.id}/{d.label}")
        notes = [d.note] if d.note else []
        opened: tuple[OpenValue, ...] = ()
        text = summary or r.summary
        if r.verdict is Status.FAIL and r.witness is not None and self.open_values:
            opened = tuple(o for o in self.open_values if o.access is Access.ALLOW
                           and any(s.nsg == o.nsg and s.rule == o.rule for s in r.responsible))
            p = r.witness.packet
            for o in opened:
                if o.side.endswith("ports"):
                    held = str(p.dport if o.side == "destination ports" else p.sport)
                    example = "'*'"
                else:
                    held = int_to_ip(p.src if o.side == "source" else p.dst)
                    example = "'*' or 'Internet'" if o.side == "source" else "'*'"
                notes.append(f"fails for some value of a template value the import left open: with the {o.describe()} "
                             f"holding {held} (e.g. {example}), {p} is allowed")
            if opened:
                text += " (for some value of a template parameter: see the notes)"
        elif r.verdict is Status.PASS and self.open_values:
            notes.append("holds for every value of the template values the import left open (read at their worst: "
                         "an allow rule's as every address or port, a deny rule's as nothing)")
        return BaselineResult(c, d.label, d.span, r.verdict, text, r, r.responsible, tuple(notes), destination=d,
                              open_values=opened)

    def _undecided_open(self, c: Control, d: Destination, opened: list[str]) -> BaselineResult:
        diags = [x for n in opened for x in self.rp.open_nsgs[n]]
        first = diags[0]
        what = _source_text(first.span) if first.span.line else ""
        named = f" ({what})" if what else ""
        return BaselineResult(c, d.label, d.span, Status.UNKNOWN,
                              f"undecided: nsg {opened[0]} has a value the import left open at {first.span}{named}",
                              notes=(first.message,
                                     f"how to fix: {first.hint or 'give the value (--param NAME=VALUE)'}"),
                              destination=d)

    # -- hygiene

    def _any_to_any(self, c: Control) -> list[BaselineResult]:
        out: list[BaselineResult] = []
        for nsg in self.original.nsgs:
            bad = self._allow_everything(nsg)
            target = f"nsg {nsg.name}"
            if not bad:
                out.append(BaselineResult(c, target, nsg.span, Status.PASS, "no rule allows every packet"))
                continue
            for r, direction, what in bad:
                resp = Responsible(nsg.name, ", ".join(self._attachments(nsg.name)) or "nothing", direction,
                                   r.name, r.priority, r.access, r.span)
                out.append(BaselineResult(c, f"rule {r.name} in nsg {nsg.name}", r.span, Status.FAIL,
                                          f"{direction.value.lower()} allow rule {r.name} (priority {r.priority}) "
                                          f"matches {what}: any source, destination, port and protocol",
                                          responsible=(resp,)))
        return out

    def _allow_everything(self, nsg: Nsg) -> list[tuple[Rule, Direction, str]]:
        """Allow rules whose resolved match is the whole packet space, wherever the NSG is evaluated, or in
        a dual-stack policy the whole space of one family (0.0.0.0/0 to 0.0.0.0/0 still opens every IPv4
        packet), with which ("every packet", "every IPv4 packet")."""
        if nsg.name in self.rp.open_nsgs:
            vnets: list[str | None] = []
        else:
            vnets = list(self.rp.evaluation_vnets(nsg.name))
        out = []
        seen = set()
        for vnet in vnets:
            resolved = self.rp.nsg(nsg.name, vnet)
            for direction in (Direction.INBOUND, Direction.OUTBOUND):
                for rr in resolved.rules(direction):
                    rule = rr.nsg_rule
                    if rule.is_default or rule.access is not Access.ALLOW or id(rule) in seen:
                        continue
                    if not (rr.protocol is None and rr.sports in (None, ALL_PORTS) and rr.dports in (None, ALL_PORTS)):
                        continue
                    # `*` is both families in a policy with IPv6 addresses: a packet is of one family.
                    families = [name for name, f in (("IPv4", ALL_IPS), ("IPv6", ALL_V6))
                                if f.issubset(rr.src.intervals) and f.issubset(rr.dst.intervals)]
                    if families:
                        seen.add(id(rule))
                        dual = self.rp.has_ipv6 and len(families) == 1
                        out.append((rule, direction, f"every {families[0]} packet" if dual else "every packet"))
        return out

    def _subnet_nsg(self, c: Control) -> list[BaselineResult]:
        out = []
        for v, s in self.original.subnets():
            target = f"subnet {v.name}/{s.name}"
            if s.nsg is not None:
                out.append(BaselineResult(c, target, s.span, Status.PASS, f"behind nsg {s.nsg.name}"))
            elif s.name.lower() in EXEMPT_SUBNETS:
                out.append(BaselineResult(c, target, s.span, Status.PASS,
                                          f"exempt: {EXEMPT_SUBNETS[s.name.lower()]}"))
            else:
                nics = [n.name for n in self.original.nics if (n.subnet.vnet, n.subnet.subnet) == (v.name, s.name)]
                guarded = [n for n in nics if (nic := self.original.nic(n)) is not None and nic.nsg is not None]
                extra = (f"; its NICs {', '.join(guarded)} have NSGs of their own, hosts added later would not"
                         if guarded else "")
                out.append(BaselineResult(c, target, s.span, Status.FAIL,
                                          f"subnet {v.name}/{s.name} has no NSG: every packet reaches a host without "
                                          f"one{extra}"))
        return out

    def _attachments(self, nsg: str) -> list[str]:
        """Where the input attaches ``nsg`` (not the assumed subnet of a lonely NSG)."""
        return [a for a in self.rp.attachments(nsg) if not a.startswith(f"subnet {UNATTACHED_VNET}/")]

    def _attached(self, c: Control) -> list[BaselineResult]:
        out = []
        for nsg in self.original.nsgs:
            target = f"nsg {nsg.name}"
            where = self._attachments(nsg.name)
            if where:
                out.append(BaselineResult(c, target, nsg.span, Status.PASS, f"attached to {', '.join(where)}"))
            else:
                out.append(BaselineResult(c, target, nsg.span, Status.FAIL,
                                          f"nsg {nsg.name} is attached to nothing in the input (or to a resource "
                                          "nsgsolve does not model): it filters nothing; the exposure controls "
                                          "checked it on its own"))
        return out


# ---------------------------------------------------------------- waivers applied


def apply_waivers(results: Sequence[BaselineResult], waivers: Sequence[Waiver],
                  today: datetime.date) -> tuple[list[BaselineResult], list[Waiver]]:
    """Failures a waiver names become passes that say so; an expired waiver leaves the failure failing,
    saying it expired. Returns the results and the waivers that matched no failure (W770)."""
    used: set[int] = set()
    out = []
    for r in results:
        w = next((w for w in waivers if w.matches(r.control, r.destination, r.target)), None)
        if w is None or r.status is Status.PASS:
            if w is not None:
                used.add(id(w))
            out.append(r)
            continue
        used.add(id(w))
        if w.expires is not None and w.expires < today:
            out.append(dataclasses.replace(r, summary=f"{r.summary} (the waiver at {w.span} expired on "
                                                      f"{w.expires.isoformat()}: {w.reason})",
                                           waiver=w, waiver_state="expired"))
        else:
            until = f" until {w.expires.isoformat()}" if w.expires else ""
            out.append(dataclasses.replace(r, status=Status.PASS, summary=f"waived{until} ({w.span}): {w.reason}; "
                                                                        f"without the waiver: {r.summary}",
                                           waiver=w, waiver_state="active"))
    return out, [w for w in waivers if id(w) not in used]


def parse_waivers(text: str, path: str) -> list[Waiver]:
    """A waivers file: TOML, ``[[waiver]]`` tables with ``control``, ``destination``, ``reason`` and
    ``expires`` (a date). Errors E770-E773 with the file and line."""
    import re
    import tomllib

    bag = DiagnosticBag()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+), column (\d+)", str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        raise InputError.single("E770", f"the waivers file is not valid TOML: {str(e).split(' (at')[0]}",
                                Span(path, line, col), "write [[waiver]] tables: control = \"cis-7.2\", "
                                "destination = \"nic web1\", reason = \"...\", expires = 2027-01-31") from None
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip().replace(" ", "") == "[[waiver]]"]
    entries = data.get("waiver", [])
    unknown_top = [k for k in data if k != "waiver"]
    if unknown_top:
        bag.error("E771", f"unknown key '{unknown_top[0]}' in the waivers file", Span(path, 1, 1),
                  "the file holds only [[waiver]] tables")
    out = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        span = Span(path, starts[i] if i < len(starts) else 1, 1)
        missing = [k for k in ("control", "destination", "reason")
                   if not isinstance(entry.get(k), str) or not entry.get(k)]
        if missing:
            bag.error("E771", f"waiver {i + 1} has no {missing[0]}", span,
                      "every waiver names control, destination and reason (and an expires date)")
            continue
        extra = sorted(set(entry) - {"control", "destination", "reason", "expires"})
        if extra:
            bag.error("E771", f"waiver {i + 1} has an unknown key '{extra[0]}'", span,
                      "keys: control, destination, reason, expires")
            continue
        ctl = entry["control"]
        if ctl != "*" and ctl.lower() not in {c.id for c in CONTROLS} and ctl.lower() not in SETS:
            from nsgsolve.errors import did_you_mean

            hint = did_you_mean(ctl, [c.id for c in CONTROLS] + list(SETS))
            bag.error("E772", f"waiver {i + 1} names control '{ctl}', which is not a baseline control", span,
                      (hint + " " if hint else "") + "see docs/baseline.md for the control ids, or a set name")
            continue
        exp = entry.get("expires")
        if exp is not None and not (isinstance(exp, datetime.date) and not isinstance(exp, datetime.datetime)):
            if isinstance(exp, str):
                try:
                    exp = datetime.date.fromisoformat(exp)
                except ValueError:
                    exp = None
                    bag.error("E773", f"waiver {i + 1}: expires = '{entry.get('expires')}' is not a date", span,
                              "write a date: expires = 2027-01-31")
                    continue
            else:
                bag.error("E773", f"waiver {i + 1}: expires is not a date", span, "write a date: expires = 2027-01-31")
                continue
        if exp is None:
            bag.error("E773", f"waiver {i + 1} has no expires date", span,
                      "a waiver must end: expires = 2027-01-31 (review it then)")
            continue
        out.append(Waiver(ctl, entry["destination"], entry["reason"], exp, span))
    bag.raise_if_errors()
    return out


def check_baseline(policy: Policy, sets: Sequence[str], tag_db: ServiceTagDb | None = None,
                   rlimit: int | None = None, waivers: Sequence[Waiver] = (), today: datetime.date | None = None,
                   progress: Progress | None = None) -> tuple[list[BaselineResult], list[Waiver]]:
    """The named baseline sets on one policy, waivers applied; also the waivers that matched nothing."""
    controls = select(sets)
    results = Baseline(policy, tag_db, rlimit).run(controls, progress)
    return apply_waivers(results, waivers, today or datetime.date.today())


__all__ = [
    "AVNM_SOURCE", "Baseline", "BaselineResult", "CIS_VERSION", "CONTROLS", "CONTROL_BY_ID", "Control", "Destination",
    "EXEMPT_SUBNETS", "OpenValue", "SETS", "SelectionError", "Waiver", "apply_waivers", "augmented", "check_baseline",
    "destinations", "parse_waivers", "select", "worst_case",
]
