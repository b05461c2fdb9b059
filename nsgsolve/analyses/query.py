"""Reachability questions: ``can SOURCES reach DESTINATIONS [port PORTS] [PROTOCOL]``, for all packets.

A question denotes a set of packets; the answer says whether *all*, *some* or *none* of them are allowed,
with a witness packet of each kind replayed through the reference evaluator (so it carries the rule
trace ``verify`` prints), and optionally the exact allowed set as a few boxes.

What the endpoints, ports and protocol denote is :mod:`nsgsolve.analyses.endpoints`, shared with the contracts
of ``nsgsolve check`` so an assertion and a query about the same traffic give the same answer
(docs/query.md, "What an endpoint denotes"). In short: a NIC, an ASG, a subnet or a VNet is those NICs;
an address, a range, a tag or ``any`` is the NICs there plus every other address as an outside host;
``Internet`` is public space outside every VNet's VirtualNetwork tag; packets with no NIC on either side
are in no question.

Dynamic private IPs are free (any usable address of the subnet, distinct from the other NICs): *all*
holds for every address Azure may pick, *none* for every one, and a witness names the addresses it
assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Mapping, Sequence

import z3

from nsgsolve.semantics.addresses import (
    ALL_PORTS, EMPTY, IntervalSet, describe_ports, is_v6,
)
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.analyses.endpoints import (
    Side, Traffic, candidates, endpoint_notes, internet_hosts, resolve_traffic, service_term, side_term, traffic_region,
)
from nsgsolve.errors import DiagnosticBag, InputError
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.model import Access, Direction, Query
from nsgsolve.regions.box import (
    ALL_PROTOCOLS, PORTED, Box, Splitter, box_intersection, box_is_empty, box_meets, box_subset, describe_protocols,
    box_minus, merge_cells, region_walk,
)
from nsgsolve.semantics.platform import HOST_SERVICES, SMTP_BLOCK
from nsgsolve.semantics.resolve import AddrSet, IpcKey, ResolvedPolicy, describe_ipc
from nsgsolve.smt.z3util import mk_and, mk_not, mk_or
from nsgsolve.regions.space import Space
from nsgsolve.analyses.params import Binder
from nsgsolve.analyses.results import Witness

DEFAULT_SPORT = 49152  # the first ephemeral port: what a witness uses when any source port would do
NONPORTED = ALL_PROTOCOLS.difference(PORTED)
ZERO = IntervalSet([(0, 0)])


class Verdict(Enum):
    ALL = "all"
    SOME = "some"
    NONE = "none"


class EncodingDisagreement(AssertionError):
    """Z3 and the reference evaluator decided one packet differently: a bug in nsgsolve, never hidden."""


# ---------------------------------------------------------------- what a question denotes


@dataclass(frozen=True)
class Question(Traffic):
    """A query resolved against one policy: the packets it denotes (a :class:`nsgsolve.analyses.endpoints.Traffic`,
    the meaning assertions share) and the query they came from."""

    query: Query


def compile_query(rp: ResolvedPolicy, q: Query) -> Question:
    bag = DiagnosticBag()
    traffic = resolve_traffic(rp, q.sources, q.destinations, q.ports, q.protocol, q.span, bag)
    bag.raise_if_errors()
    return Question(**{f.name: getattr(traffic, f.name) for f in fields(Traffic)}, query=q)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Hosts:
    """One side of an exact box: plain addresses (the NICs there, and outside hosts) and
    dynamic NICs, each when its address lies in a set (``None``: wherever Azure puts it)."""

    addresses: IntervalSet
    nics: tuple[str, ...]  # NICs with a static address in ``addresses``
    dynamic: tuple[tuple[str, IntervalSet | None], ...]
    nic_ips: tuple[int, ...] = ()  # the addresses of ``nics``
    internet: IntervalSet = EMPTY  # what "Internet" means in this policy, to name it when it appears

    def to_dict(self) -> dict:
        return {"addresses": _cidrs(self.addresses), "nics": list(self.nics),
                "dynamic": [{"nic": n, "if_address_in": None if w is None else _cidrs(w)} for n, w in self.dynamic]}


def _cidrs(s: IntervalSet) -> list[str]:
    from nsgsolve.semantics.addresses import to_cidrs

    return to_cidrs(s)




@dataclass(frozen=True)
class ExactBox:
    """Part of the exact allowed set: every combination of these sources, destinations, protocols and
    ports is allowed. ``region`` is the same box in the packet space of :class:`~nsgsolve.regions.space.Space`
    (dynamic NICs as extra address ranges), for machines; the other fields are for reading."""

    src: Hosts
    dst: Hosts
    protocols: IntervalSet
    sports: IntervalSet
    dports: IntervalSet
    region: Box

    @property
    def has_ports(self) -> bool:
        return bool(self.protocols.intersection(PORTED))

    def to_dict(self) -> dict:
        return {"sources": self.src.to_dict(), "destinations": self.dst.to_dict(),
                "protocols": describe_protocols(self.protocols).split(","),
                "source_ports": describe_ports(self.sports) if self.has_ports else None,
                "destination_ports": describe_ports(self.dports) if self.has_ports else None}


@dataclass(frozen=True)
class Coverage:
    """Which NICs (and whether outside addresses) a question's side covers, with the verdict for each
    (``None`` when there were too many NICs to ask about each)."""

    side: str  # "destination" or "source"
    rows: tuple[tuple[str, Verdict | None], ...]  # (NIC description or "outside addresses", verdict)


EMPTY_ROW = object()  # a coverage row with no packet at all


@dataclass(frozen=True)
class QueryResult:
    query: Query
    verdict: Verdict
    allowed_witness: Witness | None
    blocked_witness: Witness | None
    exact: tuple[ExactBox, ...] | None
    coverage: Coverage | None = None

    @property
    def notes(self) -> list[str]:
        """What ``Internet`` / ``VirtualNetwork`` mean as this question's endpoints, when it names them."""
        return endpoint_notes(self.query.sources + self.query.destinations)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict.value,
                "allowed_witness": self.allowed_witness.to_dict() if self.allowed_witness else None,
                "blocked_witness": self.blocked_witness.to_dict() if self.blocked_witness else None,
                "exact": None if self.exact is None else [b.to_dict() for b in self.exact]}


# ---------------------------------------------------------------- the engine


class QueryEngine:
    """Answers questions about one resolved policy; the encoding and solver are built once and shared.

    >>> engine = QueryEngine(rp)
    >>> engine.ask(query).verdict
    """

    def __init__(self, rp: ResolvedPolicy, rlimit: int | None = None, mode: str = "assumptions",
                 coverage_limit: int = 64):
        self.rp = rp
        self.enc = Encoding(rp)
        self.solver = PolicySolver(self.enc, rlimit, mode)
        self.binder = Binder(rp, self.enc)
        self.coverage_limit = coverage_limit
        self._space: Space | None = None
        self._rule_boxes: dict[tuple, tuple[list[Box], list[Access]]] = {}
        self._internet = internet_hosts(rp)

    @property
    def space(self) -> Space:
        if self._space is None:
            self._space = Space(self.rp)
        return self._space

    def _use_family(self, v6: bool) -> None:
        """Region arithmetic works in one address family's space (a box over both would hold packets from
        an IPv4 address to an IPv6 one); the rule boxes are that space's."""
        if self._space is None or self._space.v6 != v6:
            self._space = Space(self.rp, v6)
            self._rule_boxes = {}

    # -- the packet set as Z3 terms

    def _candidates(self, side: Side) -> list[IpcKey]:
        """The NICs that can be at an address of ``side``."""
        return candidates(self.enc, side)

    def _region(self, q: Question) -> Box:
        return traffic_region(self.rp, q)

    def _terms(self, q: Question, srcs: Sequence[IpcKey], dsts: Sequence[IpcKey], src_outside: bool = True,
               dst_outside: bool = True) -> tuple[z3.BoolRef, z3.BoolRef]:
        """(the question's packets whose source is one of ``srcs`` or, if ``src_outside``, an outside
        host, and likewise for the destination; the decision term valid on exactly those packets)."""
        enc = self.enc

        def restrict(field: str, side: Side, keys: Sequence[IpcKey], outside: bool) -> tuple[z3.BoolRef, z3.BoolRef]:
            is_key = mk_or([enc.at(field, k) for k in keys])
            ok = [is_key]
            if outside:  # an address of the side that no candidate NIC holds is an outside host
                ok.append(mk_not(mk_or([enc.at(field, k) for k in self._candidates(side)])))
            return mk_and([side_term(enc, field, side), mk_or(ok)]), is_key

        src, src_nic = restrict("src", q.src, srcs, src_outside)
        dst, dst_nic = restrict("dst", q.dst, dsts, dst_outside)
        packets = mk_and([
            src, dst, service_term(enc, q),
            mk_or([src_nic, dst_nic]),  # a NIC of the policy on at least one side
        ])
        return packets, enc.path_allows(self._region(q), srcs, dsts)

    # -- witnesses

    def _witness(self, q: Question, packets: z3.BoolRef, decision: z3.BoolRef, allowed: bool) -> Witness | None:
        enc = self.enc
        what = f"'{q.query.text or 'the query'}' ({'allowed' if allowed else 'blocked'} traffic)"
        prefs = []
        if 6 in q.protocols:
            prefs.append(enc.in_set("protocol", IntervalSet([(6, 6)])))
        prefs.append(mk_or([mk_not(enc.ported), enc.in_set("sport", IntervalSet([(DEFAULT_SPORT, DEFAULT_SPORT)]))]))
        m = self.solver.find(mk_and([packets] + prefs), allowed, what, decision)
        if m is None:
            m = self.solver.find(packets, allowed, what, decision)
        if m is None:
            return None
        packet = enc.model_packet(m)
        assignment = enc.model_assignment(m)
        values = self.binder.values(m)
        flow = Evaluator(self.binder.bound(values), assignment).evaluate(packet)
        claimed = Access.ALLOW if allowed else Access.DENY
        if flow.decision is not claimed or not q.contains(packet, flow.src_endpoint, flow.dst_endpoint):
            raise EncodingDisagreement(
                f"Z3 found {packet} (dynamic IPs {assignment}, parameters {values}) as {claimed.value} traffic of "
                f"{q.query.text!r}, "
                f"but the evaluator decides {flow.decision.value} via "
                f"{[(s.nsg, s.rule) for s in flow.trace]} and "
                f"in-query={q.contains(packet, flow.src_endpoint, flow.dst_endpoint)}; "
                "this is a bug in nsgsolve's encoding, please report it"
            )
        params = self.binder.relevant(lambda c, a: self.solver.find(c, a, what, decision), m, flow, assignment,
                                      values)
        return Witness.replayed(flow, assignment, params=params)

    def ask(self, query: Query, exact: bool = False, coverage: bool = True) -> QueryResult:
        q = compile_query(self.rp, query)
        srcs, dsts = self._candidates(q.src), self._candidates(q.dst)
        packets, decision = self._terms(q, srcs, dsts)
        allowed = self._witness(q, packets, decision, True)
        blocked = self._witness(q, packets, decision, False)
        if allowed is None and blocked is None:
            named = f" '{query.text}'" if query.text else ""
            hint = ("a side must denote at least one NIC of the policy (traffic between two outside addresses "
                    "meets no NSG), and both sides must denote something; check the names and addresses")
            pol = self.rp.policy
            if not self.rp.ipcs and pol.nsgs and not (pol.vnets or pol.open_vnets or pol.nics):
                # Nothing in the inputs is a subnet or a NIC: an NSG-only template (another one attaches them).
                # The question is fine; the inputs are what lacks a path, so say so at the NSG.
                nsgs = ", ".join(n.name for n in pol.nsgs[:5]) + (", ..." if len(pol.nsgs) > 5 else "")
                raise InputError.single(
                    "E804", f"no subnet and no NIC in the inputs, so no traffic meets "
                    f"NSG{'s' if len(pol.nsgs) > 1 else ''} {nsgs}: the question{named} cannot be answered",
                    pol.nsgs[0].span,
                    "the template that attaches these NSGs (to subnets or NICs) is not among the inputs (an NSG-only "
                    "or nested template, or a linked one nsgsolve does not fetch): give it, or an export of the VNet "
                    "('az network vnet show'), in the same command; or check the rules alone with 'nsgsolve lint'")
            if not self.rp.ipcs and self.rp.policy.nsgs:
                # A template that only adds NSGs to a network defined elsewhere (an existing VNet, a linked
                # template): no path is known, which is not the question's fault.
                nsgs = ", ".join(n.name for n in self.rp.policy.nsgs[:5])
                hint = (f"the policy has no NIC and no subnet behind an NSG, so no NSG is on a path nsgsolve knows: "
                        f"{nsgs} {'is' if len(self.rp.policy.nsgs) == 1 else 'are'} attached to subnets or NICs "
                        "nsgsolve could not place (not in the inputs, or with addresses known only when deployed: "
                        "the import's warnings and notes say which); give those values or add the template or "
                        "export that defines the VNet, or check the rules alone with 'nsgsolve lint'")
            raise InputError.single("E802", f"the query{named} covers no traffic nsgsolve can decide", query.span,
                                    hint)
        verdict = Verdict.SOME if allowed and blocked else Verdict.ALL if allowed else Verdict.NONE
        cov = self._coverage(q, srcs, dsts, verdict) if coverage else None
        boxes = None
        if exact:
            boxes = self.exact(q)
            self._check_exact(q, verdict, boxes, allowed, blocked)
        return QueryResult(query, verdict, allowed, blocked, boxes, cov)

    def _coverage(self, q: Question, srcs: list[IpcKey], dsts: list[IpcKey], verdict: Verdict) -> Coverage:
        """Which NICs the destination covers (the source, when the destination is all outside hosts), with
        a verdict for each when there are several (up to ``coverage_limit``)."""
        by_dst = bool(dsts)
        keys = dsts if by_dst else srcs
        outside = self._outside(q.dst if by_dst else q.src)
        labels = [describe_ipc(self.rp, k) for k in keys] + (["outside addresses"] if outside else [])
        side = "destination" if by_dst else "source"
        if len(labels) == 1:
            return Coverage(side, ((labels[0], verdict),))
        if len(labels) > self.coverage_limit:
            return Coverage(side, tuple((label, None) for label in labels))
        rows = []
        for k, label in zip(keys, labels):
            if by_dst:
                packets, decision = self._terms(q, srcs, [k], True, False)
            else:
                packets, decision = self._terms(q, [k], dsts, False, True)
            rows.append((label, self._verdict(q, packets, decision)))
        if outside:
            if by_dst:
                packets, decision = self._terms(q, srcs, [], True, True)
            else:
                packets, decision = self._terms(q, [], dsts, True, True)
            rows.append(("outside addresses", self._verdict(q, packets, decision)))
        # A NIC that only might lie in the question's addresses (a dynamic one) and cannot: not covered.
        return Coverage(side, tuple((n, v) for n, v in rows if isinstance(v, Verdict)))  # not EMPTY_ROW

    def _verdict(self, q: Question, packets: z3.BoolRef, decision: z3.BoolRef) -> Verdict | object:
        what = f"'{q.query.text or 'the query'}' per NIC"
        a = self.solver.find(packets, True, what, decision) is not None
        b = self.solver.find(packets, False, what, decision) is not None
        if not a and not b:
            return EMPTY_ROW
        return Verdict.SOME if a and b else Verdict.ALL if a else Verdict.NONE

    def _outside(self, side: Side) -> bool:
        statics = IntervalSet([(ip, ip) for ip in self.rp.static_ip_index])
        return bool(side.addresses.difference(statics))

    # -- the exact allowed set, by region arithmetic

    def _extended(self, side: Side) -> IntervalSet:
        """A side in the Space's coordinates (dynamic NICs as their own address ranges)."""
        ips = [self.rp.ipcs[k].ip for k in side.nics]
        statics = [(ip, ip) for ip in ips if ip is not None]
        dyn = frozenset(k for k in side.nics if self.rp.ipcs[k].ip is None)
        return self.space.side(AddrSet(side.addresses.union(IntervalSet(statics)), dyn))

    def _groups(self, universe: IntervalSet, direction: Direction) -> list[tuple[IntervalSet, IpcKey | None]]:
        """The universe split by path: NICs with the same layers together (one representative each),
        and outside hosts (representative None)."""
        sp, rp = self.space, self.rp
        by_path: dict[tuple, tuple[list[tuple[int, int]], IpcKey]] = {}
        for k in self.enc.endpoints:
            part = sp.endpoint_set(k).intersection(universe)
            if not part:
                continue
            # NICs of one VNet under admin rules share those rules; NICs elsewhere do not.
            admin = rp.ipcs[k].vnet if rp.admin_for(k, direction) is not None else None
            key: tuple
            if direction is Direction.OUTBOUND:
                layers = rp.outbound_layers(k)
                key = (tuple((l.nsg.name, l.nsg.vnet) for l in layers), rp.ipcs[k].vnet if rp.smtp_blocked else None,
                       admin)
            else:
                key = (tuple((l.nsg.name, l.nsg.vnet) for l in rp.inbound_layers(k)), admin)
            got = by_path.setdefault(key, ([], k))
            got[0].extend(part)
        out: list[tuple[IntervalSet, IpcKey | None]] = [(IntervalSet(parts), rep) for parts, rep in by_path.values()]
        statics = IntervalSet([(ip, ip) for ip in rp.static_ip_index])
        outside = universe.intersection(sp.family).difference(statics)
        if outside:
            out.append((outside, None))
        return out

    def _lists(self, layers) -> tuple[list[list[Box]], list[list[Access]]]:
        boxes, accesses = [], []
        for l in layers:
            key = (l.nsg.name, l.nsg.vnet, l.direction)
            got = self._rule_boxes.get(key)
            if got is None:
                rules = l.nsg.rules(l.direction)
                got = self._rule_boxes[key] = ([self.space.box(r) for r in rules], [r.access for r in rules])
            boxes.append(got[0])
            accesses.append(got[1])
        return boxes, accesses

    def _pieces(self, base: Box, src_rep: IpcKey | None) -> list[tuple[Box, list]]:
        """``base`` cut where the source's outbound layers apply differently (host services, SMTP)."""
        if src_rep is None:
            return [(base, [])]
        sp, rp = self.space, self.rp
        layers = rp.outbound_layers(src_rep)
        anyp, anya = ALL_PORTS, sp.addresses
        special = [(Box(s.protocols, anya, anyp, sp.side(AddrSet(s.addresses)), s.dports),
                    [l for l in layers if s.filtered_by(l.nsg.platform_tags)]) for s in HOST_SERVICES]
        pieces = [(box_intersection(base, b), ls) for b, ls in special]
        rest = [base]
        for b, _ in special:
            rest = [r for x in rest for r in box_minus(x, b)]
        pieces += [(r, layers) for r in rest]
        if rp.smtp_blocked:
            smtp = Box(SMTP_BLOCK.protocols, anya, anyp, sp.side(AddrSet(rp.internet_tag(rp.ipcs[src_rep].vnet))),
                       SMTP_BLOCK.dports)
            pieces = [(r, ls) for b, ls in pieces for r in box_minus(b, smtp)]
        return [(b, ls) for b, ls in pieces if not box_is_empty(b)]

    def _admin_split(self, piece: Box, s_rep: IpcKey | None, d_rep: IpcKey | None, out_layers, inbound
                     ) -> list[tuple[Box, list, list]]:
        """``piece`` cut by the admin layers' first matches (source's outbound, destination's inbound): a
        Deny part is dropped, an AlwaysAllow part loses that direction's NSG layers, the rest keeps them."""
        parts = [(piece, list(out_layers), list(inbound))]
        for rep, direction in ((s_rep, Direction.OUTBOUND), (d_rep, Direction.INBOUND)):
            layer = self.rp.admin_for(rep, direction) if rep is not None else None
            if layer is None:
                continue
            nxt = []
            for b, ol, il in parts:
                rest = [b]
                for r in layer.rules:
                    rb = self.space.box(r)
                    left = []
                    for x in rest:
                        inter = box_intersection(x, rb)
                        if not box_is_empty(inter):
                            if r.access is Access.ALWAYS_ALLOW:
                                nxt.append((inter, [] if direction is Direction.OUTBOUND else ol,
                                            il if direction is Direction.OUTBOUND else []))
                            elif r.access is Access.ALLOW:
                                nxt.append((inter, ol, il))
                            left += box_minus(x, rb)
                        else:
                            left.append(x)
                    rest = left
                nxt += [(x, ol, il) for x in rest]
            parts = nxt
        return parts

    def exact(self, q: Question) -> tuple[ExactBox, ...]:
        """The allowed packets of the question as merged boxes (exact: every packet of a box is allowed,
        every allowed packet of the question is in a box): IPv4 boxes, then IPv6 ones when the policy has
        IPv6 addresses (a box lies in one family)."""
        out: list[ExactBox] = []
        for v6 in ((False, True) if self.rp.has_ipv6 else (False,)):
            self._use_family(v6)
            out += self._exact_family(q)
        return tuple(out)

    def _exact_family(self, q: Question) -> list[ExactBox]:
        rp = self.rp
        src_u, dst_u = self._extended(q.src), self._extended(q.dst)
        bases = []
        if q.protocols.intersection(PORTED):
            bases.append((q.protocols.intersection(PORTED), ALL_PORTS, q.dports))
        if not q.has_ports and q.protocols.intersection(NONPORTED):
            bases.append((q.protocols.intersection(NONPORTED), ZERO, ZERO))
        found: list[Box] = []
        for s_set, s_rep in self._groups(src_u, Direction.OUTBOUND):
            for d_set, d_rep in self._groups(dst_u, Direction.INBOUND):
                if s_rep is None and d_rep is None:
                    continue
                inbound = rp.inbound_layers(d_rep) if d_rep is not None else []
                for protos, sports, dports in bases:
                    base = Box(protos, s_set, sports, d_set, dports)
                    for piece, out_layers in self._pieces(base, s_rep):
                        for sub, out_l, in_l in self._admin_split(piece, s_rep, d_rep, out_layers, inbound):
                            boxes, accesses = self._lists(list(out_l) + list(in_l))
                            found += allowed_boxes(boxes, accesses, sub)
        merged = merge_cells(found)
        out = [self._exact_box(b) for b in merged]
        out.sort(key=lambda e: tuple(e.region[d].min() for d in (3, 1, 0, 4, 2)))
        return out

    def _hosts(self, s: IntervalSet) -> Hosts:
        sp = self.space
        plain = s.intersection(sp.family)
        nics = sorted((ip, self.rp.ipc_label(k)) for ip, k in self.rp.static_ip_index.items() if ip in plain)
        dyn = []
        for k in sp.dynamic:
            part = s.intersection(sp.ranges[k])
            if part:
                where = sp.plain(part)
                dyn.append((self.rp.ipc_label(k), None if part == sp.ranges[k] else where))
        return Hosts(plain, tuple(n for _, n in nics), tuple(dyn), tuple(ip for ip, _ in nics), self._internet)

    def _exact_box(self, b: Box) -> ExactBox:
        return ExactBox(self._hosts(b[1]), self._hosts(b[3]), b[0], b[2], b[4], b)

    def point(self, p: Packet, assignment: Mapping[IpcKey, int] | None = None) -> tuple[int, ...]:
        """A packet in the Space's coordinates of its family (for testing membership in exact boxes)."""
        if self.rp.has_ipv6:
            self._use_family(is_v6(p.src))
        at = {ip: k for k, ip in (assignment or {}).items() if self.rp.ipcs[k].ip is None}

        def addr(ip: int) -> int:
            k = at.get(ip)
            return ip if k is None else self.space.base[k] | ip

        return (p.protocol, addr(p.src), p.sport or 0, addr(p.dst), p.dport or 0)

    def _check_exact(self, q: Question, verdict: Verdict, boxes: Sequence[ExactBox], allowed: Witness | None,
                     blocked: Witness | None) -> None:
        """The region arithmetic and Z3 answered independently; they must agree."""
        def inside(w: Witness) -> bool:
            pt = self.point(w.packet, dict(w.assignment))
            return any(all(v in f for v, f in zip(pt, b.region)) for b in boxes)

        problems = []
        if (verdict is Verdict.NONE) != (not boxes):
            problems.append(f"verdict {verdict.value} but {len(boxes)} allowed boxes")
        if allowed is not None and not inside(allowed):
            problems.append(f"allowed witness {allowed.packet} outside the exact set")
        if blocked is not None and inside(blocked):
            problems.append(f"blocked witness {blocked.packet} inside the exact set")
        if problems:
            raise EncodingDisagreement(f"exact set and solver disagree on {q.query.text!r}: {'; '.join(problems)}; "
                                       "this is a bug in nsgsolve, please report it")


def allowed_boxes(lists: Sequence[Sequence[Box]], accesses: Sequence[Sequence[Access]], universe: Box) -> list[Box]:
    """The packets of ``universe`` every rule list allows (first match), as boxes.

    Folds the memoised partition of :class:`~nsgsolve.regions.box.Splitter` bottom-up: a state's answer is a
    list of boxes over the fields not split yet, and sibling pieces with the same answer are united
    before going up, so the output follows the structure of the rules, not the number of cells.
    """
    if box_is_empty(universe):
        return []
    if not lists:
        return [universe]
    # Rules that cannot match in the universe never decide there, and nothing after a rule covering all
    # of it does: drop them before the partition, which costs per candidate rule at every state.
    kept_lists, kept_access = [], []
    for boxes, acc in zip(lists, accesses):
        kb, ka = [], []
        for b, a in zip(boxes, acc):
            if not box_meets(b, universe):
                continue
            kb.append(b)
            ka.append(a)
            if box_subset(universe, b):
                break
        if ka and all(a is Access.ALLOW for a in ka) and len(ka) == 1:
            continue  # one rule allowing all of the universe: this list allows everything here
        kept_lists.append(kb)
        kept_access.append(ka)
    lists, accesses = kept_lists, kept_access
    if not lists:
        return [universe]
    sp = Splitter(lists, universe)

    def accept(cands: int) -> bool:
        for m, acc in zip(sp.split_matches(cands), accesses):
            if not m or acc[(m & -m).bit_length() - 1] is not Access.ALLOW:
                return False
        return True

    return region_walk(sp, accept, by_answer=True).get(True, [])

