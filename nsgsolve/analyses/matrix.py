"""The reachability matrix: for every (source, destination) pair of a policy, what is allowed, exactly.

A row is a place traffic comes from (Internet, AzureLoadBalancer, each VNet, subnet and ASG), a column a
place it goes to (each subnet, NIC and ASG). A cell is one reachability question, ``can ROW reach
COLUMN``, answered by :class:`~nsgsolve.analyses.query.QueryEngine` with its exact allowed set, so a
cell says exactly what ``nsgsolve query "can ROW reach COLUMN" --exact`` says: the verdict (all / some /
none), the allowed protocols and ports, and a witness packet of each kind with the rule that decided at
every layer. There is no second semantics here: the matrix is a table of query answers.

A pair that denotes no traffic nsgsolve can decide (a subnet with no NIC, an address several VNets'
NICs share) is kept as a cell with the engine's error code and message, never as "none": an empty cell
would read as "blocked".

Cells are independent, so they are spread over the machine's cores (:func:`nsgsolve.parallel.fork_map`);
each worker sends back plain data (:class:`Cell` holds strings, numbers and dicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from nsgsolve.analyses.query import ExactBox, Verdict, box_minus
from nsgsolve.analyses.results import Witness
from nsgsolve.errors import InputError
from nsgsolve.model import (
    AnyAddress, Asg, AsgSide, Endpoint as EndpointItem, NicAddr, Policy, Query, Ref, SubnetAddr, SubnetRef, TagSide,
    VnetAddr,
)
from nsgsolve.parallel import fork_map
from nsgsolve.regions.box import (
    PORTED, Box, box_intersection, box_meets, box_point, merge_cells,
)
from nsgsolve.semantics.addresses import ALL_IPS as ALL_IPS_SET, ALL_PORTS, IntervalSet
from nsgsolve.semantics.evaluate import Evaluator
from nsgsolve.semantics.resolve import ResolvedPolicy

DETAIL_BOXES = 12
ZERO = IntervalSet([(0, 0)])
OUTSIDE = "outside"  # the group of endpoints that are no VNet's (Internet, AzureLoadBalancer)
ASGS = "application security groups"


@dataclass(frozen=True)
class Endpoint:
    """One row or column: what it is, what it is called, and the group (a VNet) it is shown in."""

    kind: str  # "internet", "tag", "vnet", "subnet", "nic", "asg"
    name: str  # as a query names it: "Internet", "prod", "prod/web", "web1", "WebTier"
    group: str  # a VNet name, OUTSIDE or ASGS
    item: EndpointItem = field(compare=False, repr=False)  # the query endpoint
    nsgs: tuple[str, ...] = ()  # NSGs attached here (subnets and NICs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "group": self.group, "nsgs": list(self.nsgs)}


@dataclass(frozen=True)
class Cell:
    """The answer for one (row, column) pair.

    ``verdict`` is None when the pair denotes no traffic nsgsolve can decide; ``error`` then holds the
    engine's (code, message). ``exact`` is the exact allowed set as merged boxes (the first
    ``DETAIL_BOXES`` of them; ``more`` says how many were left out), ``ports`` the allowed set projected
    on protocols and destination ports, which is what the cell itself shows."""

    row: int
    col: int
    verdict: Verdict | None
    ports: tuple[tuple[IntervalSet, IntervalSet | None], ...] = ()  # (protocols, destination ports or None: any)
    exact: tuple[ExactBox, ...] = ()
    allowed_witness: Witness | None = None
    blocked_witness: Witness | None = None
    error: tuple[str, str] | None = None  # (code, message)
    more: int = 0

    def to_dict(self) -> dict:
        return {"row": self.row, "col": self.col, "verdict": self.verdict.value if self.verdict else None,
                "exact": [b.to_dict() for b in self.exact], "more": self.more,
                "allowed_witness": self.allowed_witness.to_dict() if self.allowed_witness else None,
                "blocked_witness": self.blocked_witness.to_dict() if self.blocked_witness else None,
                "error": {"code": self.error[0], "message": self.error[1]} if self.error else None}


@dataclass(frozen=True)
class Matrix:
    rows: tuple[Endpoint, ...]
    cols: tuple[Endpoint, ...]
    cells: tuple[Cell, ...]  # row-major, len(rows) * len(cols)

    def cell(self, row: int, col: int) -> Cell:
        return self.cells[row * len(self.cols) + col]

    def find(self, row_name: str, col_name: str) -> Cell:
        r = next(i for i, e in enumerate(self.rows) if e.name == row_name)
        c = next(i for i, e in enumerate(self.cols) if e.name == col_name)
        return self.cell(r, c)

    def to_dict(self) -> dict:
        return {"rows": [e.to_dict() for e in self.rows], "columns": [e.to_dict() for e in self.cols],
                "cells": [c.to_dict() for c in self.cells]}


# ---------------------------------------------------------------- endpoints


def _asg_group(policy: Policy, asg: Asg) -> str:
    """An ASG is shown with its members' VNet when they all sit in one; otherwise among the ASGs."""
    vnets = {n.subnet.vnet for n in policy.nics for c in n.ip_configs if any(r.name == asg.name for r in c.asgs)}
    return next(iter(vnets)) if len(vnets) == 1 else ASGS


def endpoints(policy: Policy) -> tuple[tuple[Endpoint, ...], tuple[Endpoint, ...]]:
    """The matrix's rows (sources) and columns (destinations), grouped by VNet, in the policy's order."""
    outside = [Endpoint("internet", "Internet", OUTSIDE, TagSide(Ref("Internet"))),
               Endpoint("tag", "AzureLoadBalancer", OUTSIDE, TagSide(Ref("AzureLoadBalancer")))]
    rows: list[Endpoint] = list(outside)
    cols: list[Endpoint] = []
    asgs = [Endpoint("asg", a.name, _asg_group(policy, a), AsgSide((Ref(a.name),))) for a in policy.asgs]
    for v in policy.vnets:
        rows.append(Endpoint("vnet", v.name, v.name, VnetAddr(Ref(v.name))))
        for s in v.subnets:
            ref = SubnetRef(v.name, s.name)
            sub = Endpoint("subnet", str(ref), v.name, SubnetAddr(ref), (s.nsg.name,) if s.nsg else ())
            rows.append(sub)
            cols.append(sub)
        for n in policy.nics:
            if n.subnet.vnet == v.name:
                cols.append(Endpoint("nic", n.name, v.name, NicAddr(Ref(n.name)), (n.nsg.name,) if n.nsg else ()))
        for a in asgs:
            if a.group == v.name:
                rows.append(a)
                cols.append(a)
    for a in asgs:
        if a.group == ASGS:
            rows.append(a)
            cols.append(a)
    return tuple(rows), tuple(cols)


# ---------------------------------------------------------------- cells


def project_ports(boxes: Sequence[Box]) -> tuple[tuple[IntervalSet, IntervalSet | None], ...]:
    """Boxes projected on (protocols, destination ports), merged per protocol set: what a cell shows.
    Ports are None where they do not matter (protocols without ports) or every port is in."""
    by_proto: dict[IntervalSet, IntervalSet | None] = {}
    for b in boxes:
        ports = b[4] if b[0].intersection(PORTED) and b[4] != ALL_PORTS else None
        if b[0] in by_proto:
            got = by_proto[b[0]]
            by_proto[b[0]] = None if got is None or ports is None else got.union(ports)
        else:
            by_proto[b[0]] = ports
    return tuple(by_proto.items())


def _volume(b: Box) -> int:
    v = 1
    for f in b:
        v *= f.size()
        if not v:
            return 0
    return v


class _Cells:
    """Cells cut out of one exact answer: the allowed set of ``can any reach any`` is computed once (region
    arithmetic, the engine of ``query --exact``), and each cell is that set intersected with the cell's
    packets. Disjoint boxes make the verdict a comparison of volumes; witnesses are points of the set
    (allowed) and of its complement in the cell (blocked), each replayed through the reference evaluator,
    which must agree."""

    def __init__(self, rp: ResolvedPolicy, engine):
        from nsgsolve.analyses.query import compile_query

        self.rp, self.engine, self.space = rp, engine, engine.space
        everything = compile_query(rp, Query((AnyAddress(),), (AnyAddress(),), text="can any reach any"))
        self.allowed = [b.region for b in engine.exact(everything)]
        statics = IntervalSet([(ip, ip) for ip in rp.static_ip_index])
        self._columns: dict[str, list[Box]] = {}
        self.nic_addresses = statics.union(IntervalSet([iv for r in self.space.ranges.values() for iv in r]))

    def _column(self, name: str, d: IntervalSet) -> list[Box]:
        """The allowed boxes cut to one destination (cached: every row of a column shares it)."""
        got = self._columns.get(name)
        if got is None:
            got = self._columns[name] = [Box(b[0], b[1], b[2], dd, b[4]) for b in self.allowed
                                         if (dd := b[3].intersection(d))]
        return got

    def bases(self, q) -> list[tuple[IntervalSet, IntervalSet, IntervalSet]]:
        out = []
        if q.protocols.intersection(PORTED):
            out.append((q.protocols.intersection(PORTED), ALL_PORTS, q.dports))
        if not q.has_ports and q.protocols.difference(PORTED):
            out.append((q.protocols.difference(PORTED), ZERO, ZERO))
        return out

    def answer(self, i: int, j: int, src: Endpoint, dst: Endpoint) -> Cell:
        from nsgsolve.analyses.query import compile_query

        query = Query((src.item,), (dst.item,), text=f"can {src.name} reach {dst.name}")
        q = compile_query(self.rp, query)
        self.engine._candidates(q.src)  # the engine's own refusals (E803: an address several NICs share)
        self.engine._candidates(q.dst)
        s, d = self.engine._extended(q.src), self.engine._extended(q.dst)
        s_nic, d_nic = s.intersection(self.nic_addresses), d.intersection(self.nic_addresses)
        s_out = s.difference(s_nic)
        # The cell's packets: a NIC on at least one side (outside-to-outside traffic meets no NSG).
        regions = [r for p, sp, dp in self.bases(q)
                   for r in (Box(p, s_nic, sp, d, dp), Box(p, s_out, sp, d_nic, dp)) if _volume(r)]
        if self._may_collide(s, d):
            return self._asked(i, j, query, q, regions)
        total = sum(_volume(r) for r in regions)
        if not total:
            raise InputError.single(
                "E802", f"the query '{query.text}' covers no traffic nsgsolve can decide", query.span,
                "a side must denote at least one NIC of the policy")
        # Allowed boxes never hold outside-to-outside packets (exact() skips them), so cutting them by
        # the cell's sides and its protocol/port bases is cutting them by the cell's packets.
        pieces = []
        for b in self._column(dst.name, d):
            src_part = b[1].intersection(s)
            if src_part:
                for p, sp, dp in self.bases(q):
                    x = box_intersection(Box(b[0], src_part, b[2], b[3], b[4]), Box(p, s, sp, d, dp))
                    if _volume(x):
                        pieces.append(x)
        allowed = sum(_volume(x) for x in pieces)
        verdict = Verdict.ALL if allowed == total else Verdict.SOME if allowed else Verdict.NONE
        allowed_w = self._witness(_readable_point(pieces[0]), True, query, q) if pieces else None
        blocked_w = None
        if verdict is not Verdict.ALL:
            point = next(pt for r in regions if (pt := self._uncovered(r, [b for b in pieces if box_meets(b, r)])))
            blocked_w = self._witness(point, False, query, q)
        merged = merge_cells(pieces)
        # A cell keeps its first boxes for its detail; all of them are `nsgsolve query --exact`'s answer.
        boxes = tuple(self.engine._exact_box(b) for b in merged[:DETAIL_BOXES])
        return Cell(i, j, verdict, project_ports(merged), boxes, allowed_w, blocked_w,
                    more=max(0, len(merged) - DETAIL_BOXES))

    def _may_collide(self, s: IntervalSet, d: IntervalSet) -> bool:
        """Whether a point of ``s`` x ``d`` can put two ends on one address that only one can hold: two
        dynamic NICs (or one dynamic NIC twice) at one address, or a dynamic NIC where the other side has
        a plain (outside) host. Such points are in the Space but are no possible assignment, so cutting
        the exact set would count them; the cell is then asked as a query, whose Z3 encoding keeps
        dynamic addresses distinct."""
        sp = self.space
        if not sp.dynamic:
            return False
        s_dyn = sp.plain(s.difference(ALL_IPS_SET))
        d_dyn = sp.plain(d.difference(ALL_IPS_SET))
        s_plain, d_plain = s.intersection(ALL_IPS_SET), d.intersection(ALL_IPS_SET)
        return bool(s_dyn.intersection(d_dyn.union(d_plain)) or d_dyn.intersection(s_plain))

    def _asked(self, i: int, j: int, query: Query, q, regions: list[Box]) -> Cell:
        """The cell from the query engine's verdict (Z3, which keeps dynamic addresses apart) and exact set.
        Witnesses are points of possible assignments picked from the boxes as on the fast path, so the
        page does not depend on the solver's history (which differs between worker processes); the
        solver's own witness only when no such point is found in a few tries."""
        r = self.engine.ask(query, exact=True, coverage=False)
        boxes = r.exact or ()
        allowed_w = blocked_w = None
        if r.verdict is not Verdict.NONE:
            point = next((p for b in boxes if (p := self._possible_point(b.region))), None)
            allowed_w = self._witness(point, True, query, q) if point else r.allowed_witness
        if r.verdict is not Verdict.ALL:
            cut = [b.region for b in boxes]
            point = next((p for reg in regions if (p := self._uncovered(reg, [b for b in cut if box_meets(b, reg)]))),
                         None)
            blocked_w = self._witness(point, False, query, q) if point else r.blocked_witness
        return Cell(i, j, r.verdict, project_ports([b.region for b in boxes]), tuple(boxes[:DETAIL_BOXES]),
                    allowed_w, blocked_w, more=max(0, len(boxes) - DETAIL_BOXES))

    def _possible_point(self, b: Box) -> tuple[int, ...] | None:
        """A point of ``b`` that is a possible packet: no two ends on one address only one can hold (see
        :meth:`_may_collide`), among a few readable candidates per address field."""
        base = _readable_point(b)
        decode = self.space.decode
        for s in _candidates(b[1]):
            es = decode(s)
            for d in _candidates(b[3]):
                ed = decode(d)
                if es.dynamic is None and ed.dynamic is None:
                    ok = True
                elif es.dynamic is not None and es.dynamic == ed.dynamic:
                    ok = es.ip == ed.ip
                else:
                    ok = es.ip != ed.ip
                if ok:
                    return (base[0], s, base[2], d, base[4])
        return None

    def _uncovered(self, region: Box, boxes: list[Box]) -> tuple[int, ...] | None:
        """A possible point of ``region`` in none of ``boxes`` (None: they cover it, or no possible point
        was found), by splitting around one box at a time."""
        meeting = [b for b in boxes if box_meets(b, region)]
        if not meeting:
            return self._possible_point(region) if _volume(region) else None
        first, rest = meeting[0], meeting[1:]
        for piece in box_minus(region, first):
            got = self._uncovered(piece, rest)
            if got is not None:
                return got
        return None

    def _witness(self, point: tuple[int, ...], allowed: bool, query: Query, q):
        from nsgsolve.analyses.query import EncodingDisagreement

        packet, s, d = self.space.packet(point)
        assignment = {e.dynamic: e.ip for e in (s, d) if e.dynamic is not None}
        flow = Evaluator(self.rp, assignment).evaluate(packet)
        if flow.allowed is not allowed or not q.contains(packet, flow.src_endpoint, flow.dst_endpoint):
            raise EncodingDisagreement(
                f"the exact set of {query.text!r} says {packet} is {'allowed' if allowed else 'blocked'}, but the "
                f"evaluator decides {flow.decision.value}; this is a bug in nsgsolve, please report it")
        return Witness.replayed(flow, assignment)


def _readable_point(b: Box) -> tuple[int, ...]:
    """A point of ``b`` a person recognises: Tcp when the box has it, the first ephemeral source port when it
    has that (as ``query`` witnesses do), otherwise the smallest value of each field."""
    from nsgsolve.analyses.query import DEFAULT_SPORT

    point = list(box_point(b))
    if 6 in b[0]:
        point[0] = 6
    if DEFAULT_SPORT in b[2]:
        point[2] = DEFAULT_SPORT
    return tuple(point)


def _candidates(s: IntervalSet, per_interval: int = 3, intervals: int = 4) -> list[int]:
    """A few values of ``s``, smallest first: the ends of its first intervals and their neighbours."""
    out: list[int] = []
    for lo, hi in list(s)[:intervals]:
        for v in (lo, lo + 1, hi)[:per_interval]:
            if lo <= v <= hi and v not in out:
                out.append(v)
    return out


def compute_matrix(rp: ResolvedPolicy, rlimit: int | None = None, n_workers: int | None = None) -> Matrix:
    """Every row × column question of ``rp``'s policy, answered exactly (see the module docstring)."""
    from nsgsolve.analyses.query import QueryEngine

    rows, cols = endpoints(rp.policy)
    cells = _Cells(rp, QueryEngine(rp, rlimit=rlimit))
    pairs = [(i, j) for i in range(len(rows)) for j in range(len(cols))]

    def answer(pair: tuple[int, int]) -> Cell:
        i, j = pair
        try:
            return cells.answer(i, j, rows[i], cols[j])
        except InputError as e:
            d = e.diagnostics[0]
            return Cell(i, j, None, error=(d.code, d.message))

    return Matrix(rows, cols, tuple(fork_map(answer, pairs, n_workers)))


def diff_cells(matrix: Matrix, rp: ResolvedPolicy, result) -> dict[tuple[int, int], dict[str, tuple]]:
    """What a change does to each cell of ``matrix`` (the NEW policy's), from ``nsgsolve diff``'s result:
    ``{(row, col): {"opened": ports, "closed": ports}}`` (ports as :func:`project_ports` gives them), cells
    with no change left out. A changed region belongs to a cell when its source and destination lie on
    the cell's sides (NICs by identity, outside hosts by address), cut to those sides."""
    from nsgsolve.errors import DiagnosticBag
    from nsgsolve.analyses.endpoints import resolve_side

    def side(e: Endpoint):
        bag = DiagnosticBag()
        s = resolve_side(rp, [e.item], bag)
        return None if bag.errors else s

    rows = [side(e) for e in matrix.rows]
    cols = [side(e) for e in matrix.cols]

    def on(s, end, addresses: IntervalSet) -> IntervalSet:
        """The part of ``addresses`` (a region's side, at endpoint ``end``) that lies on side ``s``."""
        if s is None:
            return IntervalSet([])
        if end.kind == "nic" and end.key is not None:
            return addresses if end.key in s.nics or addresses.intersection(s.addresses) else IntervalSet([])
        return addresses.intersection(s.addresses)

    found: dict[tuple[int, int], dict[str, list[Box]]] = {}
    for pair in result.pairs:
        for region in pair.regions:
            b = region.box
            for i, rs in enumerate(rows):
                src = on(rs, pair.source, b[1])
                if not src:
                    continue
                for j, cs in enumerate(cols):
                    dst = on(cs, pair.destination, b[3])
                    if dst:
                        found.setdefault((i, j), {}).setdefault(region.kind, []).append(
                            Box(b[0], src, b[2], dst, b[4]))
    return {cell: {kind: project_ports(boxes) for kind, boxes in kinds.items()} for cell, kinds in found.items()}


__all__ = ["Cell", "Endpoint", "Matrix", "compute_matrix", "diff_cells", "endpoints", "project_ports"]

