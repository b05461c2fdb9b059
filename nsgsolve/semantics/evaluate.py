"""The reference evaluator: one concrete flow, decided exactly as Azure would (semantics.md).

This module is the specification in code. The Z3 encoding is tested against it, so it favours being
obviously right: a flow meets the source NIC's outbound layers (NIC NSG, then subnet NSG), then the
destination's inbound layers (subnet NSG, then NIC NSG); in each NSG the first matching rule by
priority decides, then the default rules; the flow is allowed only if every layer allows. Platform
behaviour outside the rules (the outbound TCP 25 block, the host services at 168.63.129.16 and
169.254.169.254: the tables of :mod:`nsgsolve.semantics.platform`) is reported as its own trace step.

Speed comes from :mod:`nsgsolve.semantics.classify`, which finds the same first match with bitsets; the test
suite checks it against :func:`first_match` here on random policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from nsgsolve.semantics.addresses import int_to_ip, ip_to_int, is_v6
from nsgsolve.errors import UsageError
from nsgsolve.model import PORTED_PROTOCOLS, PROTOCOL_BY_NUMBER, Access, Direction, Protocol
from nsgsolve.semantics.classify import classifier
from nsgsolve.semantics.platform import SMTP_BLOCK, HostService, host_service
from nsgsolve.semantics.resolve import (
    AdminLayer, IpcKey, Layer, ParamUnbound, ResolvedNsg, ResolvedPolicy, ResolvedRule,
)


@dataclass(frozen=True)
class Packet:
    """The first packet of a flow. Ports are None for protocols without ports (not Tcp/Udp)."""

    protocol: int
    src: int
    sport: int | None
    dst: int
    dport: int | None

    @classmethod
    def parse(
        cls, protocol: str | int, src: str | int, sport: int | None, dst: str | int, dport: int | None
    ) -> "Packet":
        proto = protocol if isinstance(protocol, int) else Protocol.parse(protocol).number
        if proto is None:
            raise ValueError("a packet has one protocol; '*' describes rules, not packets")
        s = src if isinstance(src, int) else ip_to_int(src)
        d = dst if isinstance(dst, int) else ip_to_int(dst)
        if proto in PORTED_PROTOCOLS:
            return cls(proto, s, 0 if sport is None else sport, d, 0 if dport is None else dport)
        return cls(proto, s, None, d, None)

    @property
    def has_ports(self) -> bool:
        return self.protocol in PORTED_PROTOCOLS

    @property
    def protocol_name(self) -> str:
        p = PROTOCOL_BY_NUMBER.get(self.protocol)
        return p.value if p else str(self.protocol)

    def to_dict(self) -> dict:
        return {"src": int_to_ip(self.src), "dst": int_to_ip(self.dst), "protocol": self.protocol_name,
                "sport": self.sport, "dport": self.dport}

    def __str__(self) -> str:
        if self.has_ports:
            return f"{self.protocol_name} {_host(self.src)}:{self.sport} -> {_host(self.dst)}:{self.dport}"
        return f"{self.protocol_name} {int_to_ip(self.src)} -> {int_to_ip(self.dst)}"


def _host(ip: int) -> str:
    """An address before ``:port``: an IPv6 one in brackets (RFC 3986), so the port stays readable."""
    return f"[{int_to_ip(ip)}]" if is_v6(ip) else int_to_ip(ip)


@dataclass(frozen=True)
class TraceStep:
    """One layer met by a flow and what decided there.

    ``layer`` is "nsg", "admin" (the security admin rules of a VNet) or "platform". A step with
    ``evaluated`` False is a layer Azure never consulted for this flow, kept because it helps repair:
    ``skipped`` says why (an earlier layer denied, or an admin AlwaysAllow rule let the flow past the NSGs
    of that direction).
    """

    nsg: str | None  # None for a platform or admin step
    attached_to: str  # "subnet hub/web", "nic web1", "vnet hub" (admin) or "platform"
    direction: Direction
    rule: str
    priority: int | None
    access: Access
    is_default: bool = False
    rule_span: object = None  # model.Span of the deciding user rule, for reports
    layer: str = "nsg"
    evaluated: bool = True
    skipped: str = ""  # why not evaluated, as a sentence fragment
    admin_collection: str = ""  # "config/collection" of the deciding admin rule

    def to_dict(self) -> dict:
        d = {"layer": self.layer, "nsg": self.nsg, "attached_to": self.attached_to,
             "direction": self.direction.value, "rule": self.rule, "priority": self.priority,
             "access": self.access.value, "evaluated": self.evaluated}
        if self.admin_collection:
            d["admin_collection"] = self.admin_collection
        if not self.evaluated:
            d["skipped"] = self.skipped
        return d



NOT_EVALUATED_DENIED = "not evaluated: an earlier layer denied"


def skipped_by_always_allow(rule: str) -> str:
    return f"skipped: AlwaysAllow by admin rule {rule}"


def mark_not_evaluated(steps: list[TraceStep] | tuple[TraceStep, ...]) -> list[TraceStep]:
    """Azure stops at the first layer that denies: every later step stays in the trace (it says what
    would decide there, which helps repair) but is marked as not evaluated."""
    out: list[TraceStep] = []
    denied = False
    for s in steps:
        if denied:
            s = replace(s, evaluated=False, skipped=NOT_EVALUATED_DENIED)
        elif s.evaluated and s.access is Access.DENY:
            denied = True
        out.append(s)
    return out


@dataclass(frozen=True)
class FlowResult:
    packet: Packet
    decision: Access
    trace: tuple[TraceStep, ...]
    src_endpoint: IpcKey | None
    dst_endpoint: IpcKey | None
    notes: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.decision is Access.ALLOW

    @property
    def deciding(self) -> TraceStep | None:
        """The step that denied the flow (None when allowed)."""
        return next((s for s in self.trace if s.evaluated and s.access is Access.DENY), None)

    def to_dict(self) -> dict:
        """One shape wherever a decided flow appears in JSON (verify, diff's OLD/NEW, a witness)."""
        d = self.packet.to_dict()
        d["src_nic"] = str(self.src_endpoint) if self.src_endpoint else None
        d["dst_nic"] = str(self.dst_endpoint) if self.dst_endpoint else None
        d["decision"] = self.decision.value
        d["trace"] = [s.to_dict() for s in self.trace]
        d["notes"] = list(self.notes)
        return d


# ---------------------------------------------------------------- one rule, one NSG


def rule_matches(r: ResolvedRule, p: Packet, src_dyn: IpcKey | None = None, dst_dyn: IpcKey | None = None) -> bool:
    """Does rule ``r`` match packet ``p``? ``*_dyn`` name the dynamic IP configuration at that address."""
    if r.protocol is not None and r.protocol != p.protocol:
        return False
    if r.sports is not None or r.dports is not None:
        if r.sport_param is not None or r.dport_param is not None:
            raise ParamUnbound((r.sport_param or r.dport_param).name)  # type: ignore[union-attr]
        if not p.has_ports:
            return False
        assert p.sport is not None and p.dport is not None  # a ported packet carries both (Packet.parse)
        if r.sports is not None and p.sport not in r.sports:
            return False
        if r.dports is not None and p.dport not in r.dports:
            return False
    return r.src.contains(p.src, src_dyn) and r.dst.contains(p.dst, dst_dyn)


def first_match(rules: tuple[ResolvedRule, ...], p: Packet, src_dyn: IpcKey | None = None,
                dst_dyn: IpcKey | None = None) -> ResolvedRule:
    """The rule that decides: rules are already in evaluation order and end with DenyAll*."""
    for r in rules:
        if rule_matches(r, p, src_dyn, dst_dyn):
            return r
    raise AssertionError("default rules always match")  # pragma: no cover


# ---------------------------------------------------------------- platform behaviour

def platform_bypass(p: Packet) -> tuple[str, str | None] | None:
    """Traffic to the host's services that NSG rules do not filter (:data:`~nsgsolve.semantics.platform.HOST_SERVICES`).

    Returns (platform rule name, the AzurePlatform* tag that would put it back under NSG rules).
    """
    s = host_service(p.protocol, p.dst, p.dport)
    return None if s is None else (s.rule, s.tag)


# ---------------------------------------------------------------- the path


def path_steps(rp: ResolvedPolicy, src_key: IpcKey | None, dst_key: IpcKey | None, dst: int,
               service: HostService | None, smtp: bool, inet: bool
               ) -> tuple[list[Layer | TraceStep], list[str]]:
    """What a flow meets, in trace order: layers still to decide and fixed platform steps, with the notes.

    Everything here depends on the endpoints and three facts about the packet: ``service`` (the host
    service it goes to, :func:`~nsgsolve.semantics.platform.host_service`), ``smtp`` (the platform's
    outbound block applies: protocol and port match and the destination is in the source VNet's Internet,
    on a subscription that has the block) and ``inet`` (an outside source in the destination VNet's
    Internet). So the vectorised engine (flows.py) calls it once per group of flows sharing them."""
    steps: list[Layer | TraceStep] = []
    notes: list[str] = []
    if src_key is not None:
        layers = rp.outbound_layers(src_key)
        if service is not None:
            tag = service.tag
            # A layer whose NSG names the service's AzurePlatform* tag filters it like any traffic.
            filtering = [l for l in layers if service.filtered_by(l.nsg.platform_tags)]
            steps.extend(filtering)
            if len(filtering) < len(layers) or not layers:
                steps.append(TraceStep(None, "platform", Direction.OUTBOUND, service.rule, None, Access.ALLOW,
                                       layer="platform"))
                if filtering:
                    notes.append(f"traffic to {int_to_ip(dst)} on this port passes every NSG that does not "
                                 f"use the {tag} tag; {', '.join(l.nsg.name for l in filtering)} uses it, so "
                                 "its rules decide")
                else:
                    notes.append(f"traffic to {int_to_ip(dst)} on this port is not subject to NSG rules"
                                 + (f" unless a rule uses the {tag} tag" if tag else ""))
        else:
            steps.extend(layers)
        if smtp:
            steps.append(TraceStep(None, "platform", Direction.OUTBOUND, SMTP_BLOCK.rule, None, Access.DENY,
                                   layer="platform"))
            notes.append(SMTP_BLOCK.note)
    if dst_key is not None:
        steps.extend(rp.inbound_layers(dst_key))
        if inet:
            deciders = "the admin rules' and the NSGs'" if rp.admin_for(dst_key, Direction.INBOUND) else "the NSGs'"
            notes.append("routing is not modelled: an Internet host reaches this NIC only through a public IP "
                         f"or load balancer; the decision is {deciders}")
    if src_key is None and dst_key is None:
        notes.append("neither address is a NIC of the policy, so no NSG is on the path")
    return steps, notes


class Evaluator:
    """Evaluates flows against one resolved policy with one assignment of dynamic addresses.

    Cheap to create: the per-NSG classifiers live on the resolved NSGs and are shared."""

    def __init__(self, rp: ResolvedPolicy, assignment: Mapping[IpcKey, int] | None = None, fast: bool = True):
        """``assignment`` gives addresses to dynamic IP configurations (the evaluator needs concrete ones)."""
        self.rp = rp
        self.assignment = dict(assignment or {})
        self.fast = fast
        self._by_ip: dict[int, IpcKey] = dict(rp.static_ip_index)
        for k, ip in self.assignment.items():
            self._by_ip.setdefault(ip, k)
        self._dynamic = {k for k in self.assignment if rp.ipcs[k].ip is None}
        self._shared = rp.shared_ips

    def endpoint(self, ip: int, peer: IpcKey | None = None) -> IpcKey | None:
        """The IP configuration at ``ip`` (None: an outside host). An address held by NICs of several
        VNets (W501) is the one in ``peer``'s VNet or a VNet peered with it, where the packet stays;
        with no such single NIC the address names no NIC, and guessing could decide the wrong NSGs."""
        owners = self._shared.get(ip)
        if owners is None:
            return self._by_ip.get(ip)
        rp = self.rp
        if peer is not None:
            near = rp.near_vnets(rp.ipcs[peer].vnet)
            close = [k for k in owners if rp.ipcs[k].vnet in near]
            if len(close) == 1:
                return close[0]
        held = ", ".join(f"{k} in VNet {rp.ipcs[k].vnet}" for k in owners)
        raise UsageError(f"address {int_to_ip(ip)} belongs to several NICs ({held}), so it does not say which "
                         "NIC's NSGs apply",
                         f"name the NIC instead of the address (for example {owners[0]}), or make the other "
                         "end a NIC of the same VNet or of a peered one")

    def endpoints(self, p: Packet, src: IpcKey | None = None, dst: IpcKey | None = None
                  ) -> tuple[IpcKey | None, IpcKey | None]:
        """The IP configurations at the packet's two ends; ``src``/``dst`` when the caller named them (a
        NIC's name says which NIC even when its address is shared). Raises UsageError for an address
        shared by NICs of several VNets that the other end does not settle."""
        for key, ip in ((src, p.src), (dst, p.dst)):
            if key is not None and self.address(key) != ip:
                raise ValueError(f"{key} does not hold the address {int_to_ip(ip)}")
        if src is None and p.src not in self._shared:
            src = self._by_ip.get(p.src)
        if dst is None and p.dst not in self._shared:
            dst = self._by_ip.get(p.dst)
        if src is None and p.src in self._shared:
            src = self.endpoint(p.src, dst)
        if dst is None and p.dst in self._shared:
            dst = self.endpoint(p.dst, src)
        return src, dst

    def address(self, key: IpcKey) -> int | None:
        ip = self.rp.ipcs[key].ip
        return ip if ip is not None else self.assignment.get(key)

    def _decide(self, nsg: ResolvedNsg, direction: Direction, p: Packet, src_dyn, dst_dyn) -> ResolvedRule:
        if not self.fast:
            return first_match(nsg.rules(direction), p, src_dyn, dst_dyn)
        return classifier(nsg, direction).first_match(p, src_dyn, dst_dyn)

    def _layer_step(self, layer: Layer, p: Packet, src_dyn, dst_dyn) -> TraceStep:
        r = self._decide(layer.nsg, layer.direction, p, src_dyn, dst_dyn)
        return TraceStep(layer.nsg.name, layer.attached_to, layer.direction, r.name, r.priority, r.access,
                         r.rule.is_default, r.rule.span)

    def _admin_step(self, layer: AdminLayer, p: Packet, src_dyn, dst_dyn) -> tuple[TraceStep, ResolvedRule | None]:
        """The admin layer's first match (admin rules have no defaults: no match is its own outcome)."""
        for r in layer.rules:
            if rule_matches(r, p, src_dyn, dst_dyn):
                a = r.admin_rule
                return TraceStep(None, layer.attached_to, layer.direction, a.name, a.priority, a.access, False,
                                 a.span, layer="admin", admin_collection=f"{a.config}/{a.collection}"), r
        return TraceStep(None, layer.attached_to, layer.direction, "(no admin rule matched)", None, Access.ALLOW,
                         layer="admin"), None

    def _with_admin(self, key: IpcKey, direction: Direction, p: Packet, src_dyn, dst_dyn,
                    nsg_steps: list[TraceStep]) -> list[TraceStep]:
        """The admin layer of ``key``'s VNet, then the NSG steps, marked skipped after an AlwaysAllow."""
        layer = self.rp.admin_for(key, direction)
        if layer is None:
            return nsg_steps
        step, r = self._admin_step(layer, p, src_dyn, dst_dyn)
        if r is not None and r.access is Access.ALWAYS_ALLOW:
            why = skipped_by_always_allow(r.name)
            nsg_steps = [replace(s, evaluated=False, skipped=why) for s in nsg_steps]
        return [step] + nsg_steps

    def _admin_steps(self, src_key: IpcKey | None, dst_key: IpcKey | None, steps: list[TraceStep], p: Packet,
                     src_dyn, dst_dyn) -> list[TraceStep]:
        """The trace with each VNet's admin layer in front of its direction's NSG layers. The platform's
        outbound TCP 25 block stays after them and is not lifted by an AlwaysAllow (it is not an NSG)."""
        out = [s for s in steps if s.direction is Direction.OUTBOUND]
        smtp = [s for s in out if s.layer == "platform" and s.rule == SMTP_BLOCK.rule]
        out = [s for s in out if s not in smtp]
        inb = [s for s in steps if s.direction is Direction.INBOUND]
        res: list[TraceStep] = []
        if src_key is not None:
            res += self._with_admin(src_key, Direction.OUTBOUND, p, src_dyn, dst_dyn, out)
        res += smtp
        if dst_key is not None:
            res += self._with_admin(dst_key, Direction.INBOUND, p, src_dyn, dst_dyn, inb)
        return res

    def evaluate(self, p: Packet, src: IpcKey | None = None, dst: IpcKey | None = None) -> FlowResult:
        """Decide ``p``; ``src``/``dst`` name the IP configurations at its ends when the caller knows them
        (see :meth:`endpoints`)."""
        if is_v6(p.src) != is_v6(p.dst):
            raise UsageError(f"a packet is IPv4 or IPv6: source {int_to_ip(p.src)} and destination "
                             f"{int_to_ip(p.dst)} are of different families",
                             "give two IPv4 or two IPv6 addresses (a NIC name stands for its first IP configuration)")
        rp = self.rp
        src_key, dst_key = self.endpoints(p, src, dst)
        src_dyn = src_key if src_key in self._dynamic else None
        dst_dyn = dst_key if dst_key in self._dynamic else None
        service = host_service(p.protocol, p.dst, p.dport) if src_key is not None else None
        smtp = (src_key is not None and rp.smtp_blocked and SMTP_BLOCK.matches(p.protocol, p.dport)
                and p.dst in rp.internet_tag(rp.ipcs[src_key].vnet))
        inet = src_key is None and dst_key is not None and p.src in rp.internet_tag(rp.ipcs[dst_key].vnet)
        path, notes = path_steps(rp, src_key, dst_key, p.dst, service, smtp, inet)
        steps = [s if isinstance(s, TraceStep) else self._layer_step(s, p, src_dyn, dst_dyn) for s in path]
        if rp.has_admin_rules:
            steps = self._admin_steps(src_key, dst_key, steps, p, src_dyn, dst_dyn)
        steps = mark_not_evaluated(steps)
        decision = Access.DENY if any(s.evaluated and s.access is Access.DENY for s in steps) else Access.ALLOW
        return FlowResult(p, decision, tuple(steps), src_key, dst_key, tuple(notes))


def evaluate(rp: ResolvedPolicy, packet: Packet, assignment: Mapping[IpcKey, int] | None = None) -> FlowResult:
    """Decide one flow. For many flows build one :class:`Evaluator` and call its ``evaluate``."""
    return Evaluator(rp, assignment).evaluate(packet)


def resolve_endpoint(rp: ResolvedPolicy, text: str, assignment: Mapping[IpcKey, int] | None = None
                     ) -> tuple[int, IpcKey | None]:
    """An address from a CLI argument, an IPv4 or IPv6 address or a NIC name (its first IP configuration), with
    the IP configuration a NIC name chose: its address may be another VNet's NIC's too (W501)."""
    try:
        return ip_to_int(text), None
    except ValueError:
        pass
    ipcs = rp.nic_ipcs(text)
    if not ipcs:
        from nsgsolve.errors import did_you_mean

        names = [n.name for n in rp.policy.nics]
        raise UsageError(
            f"'{text}' is neither an IPv4 or IPv6 address nor a NIC of the policy",
            did_you_mean(text, names) or (f"NICs: {', '.join(names[:10])}" if names else "the policy has no NICs"),
        )
    info = ipcs[0]
    if info.ip is not None:
        return info.ip, info.key
    if assignment and info.key in assignment:
        return assignment[info.key], info.key
    raise UsageError(f"NIC '{text}' has a dynamic IP, so it has no address to verify against",
                     f"pin one with --assume-ip {text}=ADDRESS (a usable address of subnet {info.subnet_label})")
