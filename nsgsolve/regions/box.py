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
from typing import Mapping, Sequence

from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS, IntervalSet
from nsgsolve.model import PORTED_PROTOCOLS, PROTOCOL_BY_NUMBER
from nsgsolve.semantics.resolve import IpcKey, ResolvedRule

PROTO, SRC, SPORT, DST, DPORT = range(5)
FIELDS = ("protocol", "src", "sport", "dst", "dport")
ALL_PROTOCOLS = IntervalSet([(0, 255)])
UNIVERSE: tuple[IntervalSet, ...] = (ALL_PROTOCOLS, ALL_IPS, ALL_PORTS, ALL_IPS, ALL_PORTS)
PORTED = IntervalSet([(p, p) for p in PORTED_PROTOCOLS])
# Split order: few distinct protocol values first, addresses last (they have the most boundaries).
SPLIT_ORDER = (PROTO, DPORT, SPORT, SRC, DST)

Box = tuple[IntervalSet, IntervalSet, IntervalSet, IntervalSet, IntervalSet]


class DynamicAddressError(ValueError):
    """A rule names a dynamic IP configuration and no address was assigned to it."""


def rule_box(r: ResolvedRule, assignment: Mapping[IpcKey, int] | None = None) -> Box:
    """The exact match set of a resolved rule, with dynamic members at their assigned addresses."""
    def side(s) -> IntervalSet:
        if not s.members:
            return s.intervals
        extra = []
        for k in s.members:
            if assignment is None or k not in assignment:
                raise DynamicAddressError(f"{k} has a dynamic IP; assign one (or use the Z3 encoding)")
            extra.append((assignment[k], assignment[k]))
        return s.intervals.union(IntervalSet(extra))

    proto = ALL_PROTOCOLS if r.protocol is None else IntervalSet([(r.protocol, r.protocol)])
    ported = r.sports is not None or r.dports is not None
    if ported:
        proto = proto.intersection(PORTED)
    return (proto, side(r.src), r.sports if r.sports is not None else ALL_PORTS, side(r.dst),
            r.dports if r.dports is not None else ALL_PORTS)


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
    return tuple(x.intersection(y) for x, y in zip(a, b))  # type: ignore[return-value]


def box_meets(a: Box, b: Box) -> bool:
    """Do two boxes share a packet? (Without building the intersection: this runs rules × regions
    times. Protocol and ports first: few intervals, and most rules differ there.)"""
    return all(a[d].meets(b[d]) for d in (PROTO, DPORT, SPORT, DST, SRC))


def box_subset(a: Box, b: Box) -> bool:
    return all(x.issubset(y) for x, y in zip(a, b))


def box_contains_point(b: Box, point: Sequence[int]) -> bool:
    return all(v in s for v, s in zip(point, b))


def box_point(b: Box) -> tuple[int, ...]:
    """A representative point: the smallest value of every field."""
    return tuple(s.min() for s in b)


@dataclass(frozen=True)
class Cell:
    """A box on which each rule list has a fixed set of matching candidates.

    ``matches[k]`` is a bitset over list ``k``: every rule of that list that matches the whole cell, up
    to and including the first ``keep`` ones (the lowest bit decides). Rules after them are dropped. A list may
    have no candidate at all (0) when it does not end with a catch-all rule.
    """

    box: Box
    matches: tuple[int, ...]

    def first(self, k: int) -> int | None:
        m = self.matches[k]
        return (m & -m).bit_length() - 1 if m else None


class Splitter:
    """The partition as a memoised tree: ``children(level, cands)`` splits field ``SPLIT_ORDER[level]``.

    A state is (level, candidate rules); its subtree depends on nothing else, so every walk (enumerate
    cells, fold a summary, find one point) shares one memo and the work is proportional to the number
    of distinct states, not to the number of cells (their product).

    Internally the candidate sets of all lists are one integer: list ``k`` owns bits
    ``offsets[k]..offsets[k]+len(lists[k])``. :meth:`split_matches` gives them back per list.
    """

    def __init__(self, lists: Sequence[Sequence[Box]], universe: Box = UNIVERSE, keep: int = 1,
                 order: Sequence[int] = SPLIT_ORDER, require: Sequence[int] = ()):
        """``order`` is the field split order (a permutation of the five fields); ``require`` names lists
        that must keep a candidate: states where one of them has none are dropped, so the walk covers only
        the union of that list's boxes (a diff's changed rules) instead of the whole universe."""
        self.lists, self.universe, self.keep = lists, universe, keep
        self.order = tuple(order)
        if sorted(self.order) != list(range(5)):
            raise ValueError(f"split order {order!r} is not a permutation of the five fields")
        self.offsets, off = [], 0
        for rules in lists:
            self.offsets.append(off)
            off += len(rules)
        self.list_masks = [((1 << len(r)) - 1) << o for r, o in zip(lists, self.offsets)]
        full_in = [0] * 5
        # Per field: each rule's intervals clipped to the universe, or nothing when the rule covers it all
        # (such a rule is in every piece of that field: it goes into ``full_in`` instead of the sweep).
        self.clipped: list[list[tuple[int, tuple[tuple[int, int], ...]]]] = [[] for _ in range(5)]
        for rules, o in zip(lists, self.offsets):
            for i, b in enumerate(rules):
                bit = 1 << (o + i)
                for d in range(5):
                    if universe[d].issubset(b[d]):
                        full_in[d] |= bit
                    else:
                        self.clipped[d].append((bit, tuple(b[d].intersection(universe[d]))))
        self.full_in = full_in
        self.full_after = []  # rules containing the universe in every field split after each level
        for level in range(5):
            m = -1
            for d in self.order[level + 1:]:
                m &= full_in[d]
            self.full_after.append(m)
        self.uni_bounds = [(tuple(lo for lo, _ in u), tuple(hi for _, hi in u)) for u in universe]
        self._children: dict[tuple[int, int], list[tuple[IntervalSet, int]]] = {}
        self.root = sum(self.list_masks)
        self.required = [self.list_masks[k] for k in require]

    def split_matches(self, cands: int) -> tuple[int, ...]:
        return tuple((cands & m) >> o for m, o in zip(self.list_masks, self.offsets))

    def _prune(self, c: int, level: int) -> int:
        """Drop, per list, every rule after the first ``keep`` that match the rest of the box entirely."""
        full = c & self.full_after[level]
        if not full:
            return c
        for m in self.list_masks:
            f = full & m
            for _ in range(self.keep - 1):
                if f:
                    f &= f - 1
            if f:
                low = f & -f
                c &= ~m | ((low << 1) - 1)
        return c

    def children(self, level: int, cands: int) -> list[tuple[IntervalSet, int]]:
        key = (level, cands)
        got = self._children.get(key)
        if got is not None:
            return got
        d = self.order[level]
        base = cands & self.full_in[d]
        events: dict[int, int] = {}
        for bit, ivs in self.clipped[d]:
            if cands & bit:
                for lo, hi in ivs:
                    events[lo] = events.get(lo, 0) ^ bit
                    events[hi + 1] = events.get(hi + 1, 0) ^ bit
        los, his = self.uni_bounds[d]
        for lo, hi in zip(los, his):
            events.setdefault(lo, 0)
            events.setdefault(hi + 1, 0)
        # Sweep the universe's field, grouping pieces by their candidate sets.
        groups: dict[int, list[tuple[int, int]]] = {}
        cur = 0
        points = sorted(events)
        u = 0
        for j in range(len(points) - 1):
            start = points[j]
            cur ^= events[start]
            while u < len(los) and his[u] < start:
                u += 1
            if u == len(los) or start < los[u]:
                continue  # between the universe's intervals
            end = points[j + 1] - 1
            piece = groups.setdefault(cur, [])
            if piece and piece[-1][1] + 1 == start:
                piece[-1] = (piece[-1][0], end)
            else:
                piece.append((start, end))
        out = []
        required = self.required
        for c, pieces in groups.items():
            c |= base
            if required and not all(c & m for m in required):
                continue
            out.append((IntervalSet._raw(tuple(p[0] for p in pieces), tuple(p[1] for p in pieces)),
                        self._prune(c, level)))
        self._children[key] = out
        return out

    def cells(self) -> list[Cell]:
        """Every cell (their number is the product of the splits: use on small spaces or few rules)."""
        out = []

        def walk(level, cands, sets):
            for s, c in self.children(level, cands):
                if level == 4:
                    box = [None] * 5
                    for pos, d in enumerate(self.order):
                        box[d] = (sets + (s,))[pos]
                    out.append(Cell(tuple(box), self.split_matches(c)))
                else:
                    walk(level + 1, c, sets + (s,))

        walk(0, self.root, ())
        return out

    def fold(self, leaf, combine=lambda a, b: a | b, empty=0):
        """Combine ``leaf(cands)`` over all cells, memoised per state. ``cands`` is the combined bitset
        (see :meth:`split_matches`); with one list it is that list's matches."""
        memo: dict[tuple[int, int], object] = {}

        def walk(level, cands):
            key = (level, cands)
            if key in memo:
                return memo[key]
            acc = empty
            for _, c in self.children(level, cands):
                acc = combine(acc, leaf(c) if level == 4 else walk(level + 1, c))
            memo[key] = acc
            return acc

        return walk(0, self.root)

    def find(self, pred, pick=None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """A point of some cell whose matches (per list) satisfy ``pred``, with those matches; or None.

        ``pick(field, piece)`` chooses the point's value in each piece (default: its smallest value), so
        callers can prefer readable witnesses (Tcp over protocol 0, port 443 over port 0)."""
        dead: set[tuple[int, int]] = set()
        choose = (lambda level, s: s.min()) if pick is None else (lambda level, s: pick(self.order[level], s))

        def walk(level, cands, values):
            if (level, cands) in dead:
                return None
            for s, c in self.children(level, cands):
                if level == 4:
                    m = self.split_matches(c)
                    if pred(m):
                        return values + (choose(level, s),), m
                else:
                    got = walk(level + 1, c, values + (choose(level, s),))
                    if got is not None:
                        return got
            dead.add((level, cands))
            return None

        got = walk(0, self.root, ())
        if got is None:
            return None
        values, matches = got
        point = [0] * 5
        for pos, d in enumerate(self.order):
            point[d] = values[pos]
        return tuple(point), matches


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
                    merged.append(tuple(b))
                work = merged
    return work
