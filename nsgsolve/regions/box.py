"""Exact region arithmetic over the packet space: the cheap, exact pre-pass beside Z3.

A rule's match set is a *box*: a product of one integer set per packet field (protocol, source IP,
source port, destination IP, destination port). :func:`partition` cuts the space into cells on which
every given rule list has one fixed set of matching rules, so within a cell each list's first match
(and so its decision) is constant. One partition answers, for all packets at once, what the analyses
need: which rules ever decide (shadowing), what decides instead when a rule is removed (redundancy),
where two versions decide differently (diff), and the exact allowed set of a query.

It splits one field at a time, grouping the pieces of a field that have the same candidate rules, and
drops every candidate after the first rule that covers the rest of the box (rules behind it can no
longer decide there). Subtrees are memoised by their candidate sets, as a decision diagram would be.

Packets without ports (protocols other than Tcp/Udp) are represented with both ports 0; a rule that
names ports is restricted to protocols 6 and 17, so the convention never makes such a rule match them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, NamedTuple, Sequence

from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS, IntervalSet, bitset_segments
from nsgsolve.model import PORTED_PROTOCOLS, PROTOCOL_BY_NUMBER
from nsgsolve.semantics.resolve import ResolvedRule

PROTO, SRC, SPORT, DST, DPORT = range(5)
ALL_PROTOCOLS = IntervalSet([(0, 255)])
PORTED = IntervalSet([(p, p) for p in PORTED_PROTOCOLS])
# Split order: few distinct protocol values first, addresses last (they have the most boundaries).
SPLIT_ORDER = (PROTO, DPORT, SPORT, SRC, DST)


class Box(NamedTuple):
    """A product of one integer set per packet field: a rule's match set, a cell, a region of an answer.

    A tuple, so boxes hash, compare and unpack as the 5-tuples they replace, and ``b[d]`` indexes a
    field by its number (:data:`PROTO` ... :data:`DPORT`) where code loops over the fields."""

    proto: IntervalSet
    src: IntervalSet
    sport: IntervalSet
    dst: IntervalSet
    dport: IntervalSet


_new = tuple.__new__  # Box from an iterable of five sets without NamedTuple's argument handling (hot paths)


def make_box(fields: Iterable[IntervalSet]) -> Box:
    return _new(Box, fields)


UNIVERSE = Box(ALL_PROTOCOLS, ALL_IPS, ALL_PORTS, ALL_IPS, ALL_PORTS)


_PROTOCOL_SETS: dict[tuple[int | None, bool], IntervalSet] = {}  # a rule's protocol field: few distinct values


def rule_box(r: ResolvedRule, src: IntervalSet | None = None, dst: IntervalSet | None = None) -> Box:
    """The box of a resolved rule: the one rule-to-box function. ``src``/``dst`` replace the address sides
    when they name dynamic members, whose addresses only the caller knows (the extended space of
    :mod:`nsgsolve.regions.space`, a path's endpoint in :mod:`nsgsolve.regions.paths`, the Z3 encoding's
    over-approximation); by default a side is its fixed intervals."""
    ported = r.sports is not None or r.dports is not None
    proto = _PROTOCOL_SETS.get((r.protocol, ported))
    if proto is None:
        proto = ALL_PROTOCOLS if r.protocol is None else IntervalSet([(r.protocol, r.protocol)])
        if ported:  # only Tcp and Udp packets carry ports
            proto = proto.intersection(PORTED)
        _PROTOCOL_SETS[(r.protocol, ported)] = proto
    return _new(Box, (proto, r.src.intervals if src is None else src, ALL_PORTS if r.sports is None else r.sports,
                      r.dst.intervals if dst is None else dst, ALL_PORTS if r.dports is None else r.dports))


def describe_protocols(s: IntervalSet) -> str:
    """Protocol numbers as people write them: ``any``, ``tcp,udp``, ``any except esp,ah``."""
    def name(n: int) -> str:
        p = PROTOCOL_BY_NUMBER.get(n)
        return p.value.lower() if p else str(n)

    def listed(x: IntervalSet) -> str:
        out = []
        for lo, hi in x:
            out += [name(n) for n in range(lo, hi + 1)] if hi - lo < 3 else [f"{lo}-{hi}"]
        return ",".join(out)

    if s == ALL_PROTOCOLS:
        return "any"
    rest = ALL_PROTOCOLS.difference(s)
    if s.size() > 8 and rest.size() <= 8:
        return f"any except {listed(rest)}"
    return listed(s)


def box_is_empty(b: Box) -> bool:
    return any(not s for s in b)


def box_intersection(a: Box, b: Box) -> Box:
    return _new(Box, [x.intersection(y) for x, y in zip(a, b)])


def box_meets(a: Box, b: Box) -> bool:
    """Do two boxes share a packet? (Without building the intersection: this runs rules × regions
    times. Protocol and ports first: few intervals, and most rules differ there.)"""
    return all(a[d].meets(b[d]) for d in (PROTO, DPORT, SPORT, DST, SRC))


def box_subset(a: Box, b: Box) -> bool:
    return all(x.issubset(y) for x, y in zip(a, b))


def box_minus(a: Box, b: Box) -> list[Box]:
    """``a`` without ``b``, as at most five disjoint boxes."""
    if box_is_empty(box_intersection(a, b)):
        return [a]
    out, cur = [], list(a)
    for d in range(5):
        diff = cur[d].difference(b[d])
        if diff:
            out.append(tuple(cur[:d] + [diff] + cur[d + 1:]))
        cur[d] = cur[d].intersection(b[d])
    return out  # type: ignore[return-value]


def box_contains_point(b: Box, point: Sequence[int]) -> bool:
    return all(v in s for v, s in zip(point, b))


def box_point(b: Box) -> tuple[int, ...]:
    """A representative point: the smallest value of every field."""
    return tuple(s.min() for s in b)


def _union(pieces: list[IntervalSet]) -> IntervalSet:
    if len(pieces) == 1:
        return pieces[0]
    return IntervalSet([iv for p in pieces for iv in p])


def region_walk(sp: Splitter, leaf: Callable[[int], Hashable], by_answer: bool = False) -> dict[Hashable, list[Box]]:
    """The one region walk: the cells of ``sp`` grouped by ``leaf(candidates)`` (cells whose label is
    falsy belong to no region), each label's region as boxes in compact form.

    Folds the memoised partition bottom-up: a state's answer is, per label, a tuple of boxes over the
    fields not split yet, and pieces of the state's field with equal sub-answers are united before going
    up, so the output follows the structure of the rules, not the number of cells. Pieces are united per
    equal sub-box by default (diff's changed regions), or with ``by_answer`` per equal whole sub-answer
    (query's exact sets, which merge_cells then joins).
    """
    memo: dict[tuple[int, int], dict[Hashable, tuple[tuple[IntervalSet, ...], ...]]] = {}
    bottom = ((),) if by_answer else ()

    def walk(level: int, cands: int) -> dict[Hashable, tuple[tuple[IntervalSet, ...], ...]]:
        key = (level, cands)
        got = memo.get(key)
        if got is not None:
            return got
        groups: dict[Hashable, dict[tuple, list[IntervalSet]]] = {}
        for piece, c in sp.children(level, cands):
            if level == 4:
                label = leaf(c)
                if label:
                    groups.setdefault(label, {}).setdefault(bottom, []).append(piece)
            elif by_answer:
                for label, sub in walk(level + 1, c).items():
                    groups.setdefault(label, {}).setdefault(sub, []).append(piece)
            else:
                for label, sub in walk(level + 1, c).items():
                    g = groups.setdefault(label, {})
                    for rest in sub:
                        g.setdefault(rest, []).append(piece)
        if by_answer:
            got = {label: tuple((_union(p),) + rest for sub, p in g.items() for rest in sub)
                   for label, g in groups.items()}
        else:
            got = {label: tuple((_union(p),) + rest for rest, p in g.items()) for label, g in groups.items()}
        memo[key] = got
        return got

    order = sp.order
    out: dict[Hashable, list[Box]] = {}
    for label, found in walk(0, sp.root).items():
        boxes = out[label] = []
        for t in found:
            box: list = [None] * 5
            for pos, d in enumerate(order):
                box[d] = t[pos]
            boxes.append(_new(Box, box))
    return out


def partition(lists: Sequence[Sequence[Box]], universe: Box = UNIVERSE, keep: int = 1) -> list[Cell]:
    """Cells covering ``universe`` exactly once, for the given rule lists (each in evaluation order).

    ``keep`` is how many rules matching a whole cell are kept per list: 1 gives the deciding rule, 2
    also the rule that would decide if the first were removed (redundancy).
    """
    return Splitter(lists, universe, keep).cells()


def merge_cells(boxes: Sequence[Box]) -> list[Box]:
    """Merge boxes that differ in one field only (repeatedly), so a person reads few of them."""
    work = list(boxes)
    changed = True
    while changed and len(work) > 1:
        changed = False
        for d in range(5):
            buckets: dict[tuple, list[Box]] = {}
            for b in work:
                key = tuple(b[x] for x in range(5) if x != d)
                buckets.setdefault(key, []).append(b)
            if len(buckets) < len(work):
                changed = True
                merged = []
                for group in buckets.values():
                    u = group[0][d]
                    for g in group[1:]:
                        u = u.union(g[d])
                    b = list(group[0])
                    b[d] = u
                    merged.append(_new(Box, b))
                work = merged
    return work
