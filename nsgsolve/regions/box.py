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

from nsgsolve.semantics.addresses import ALL_ADDRS, ALL_IPS, ALL_PORTS, IntervalSet, bitset_segments
from nsgsolve.model import PORTED_PROTOCOLS, PROTOCOL_BY_NUMBER
from nsgsolve.semantics.resolve import ResolvedRule, param_needed

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
# Every packet of either family: the box of a catch-all entry (a list's "nothing matched"), which must match
# IPv6 packets too. Only a list's entries span both families; a walk's universe lies in one.
ANY_PACKET = Box(ALL_PROTOCOLS, ALL_ADDRS, ALL_PORTS, ALL_ADDRS, ALL_PORTS)


_PROTOCOL_SETS: dict[tuple[int | None, bool], IntervalSet] = {}  # a rule's protocol field: few distinct values


def rule_box(r: ResolvedRule, src: IntervalSet | None = None, dst: IntervalSet | None = None) -> Box:
    """The box of a resolved rule: the one rule-to-box function. ``src``/``dst`` replace the address sides
    when they name dynamic members, whose addresses only the caller knows (the extended space of
    :mod:`nsgsolve.regions.space`, a path's endpoint in :mod:`nsgsolve.regions.paths`, the Z3 encoding's
    over-approximation); by default a side is its fixed intervals. A rule built from an unset parameter
    has no box (E305; the Z3 encoding widens it itself)."""
    if r.src.params or r.dst.params or r.sport_param is not None or r.dport_param is not None:
        raise param_needed(r)
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


def box_contains_point(b: Box, point: Sequence[int]) -> bool:
    return all(v in s for v, s in zip(point, b))


def box_point(b: Box) -> tuple[int, ...]:
    """A representative point: the smallest value of every field."""
    return tuple(s.min() for s in b)


def box_minus(a: Box, b: Box) -> list[Box]:
    """``a`` without ``b``, as at most five disjoint boxes."""
    if box_is_empty(box_intersection(a, b)):
        return [a]
    out, cur = [], list(a)
    for d in range(5):
        diff = cur[d].difference(b[d])
        if diff:
            out.append(make_box(cur[:d] + [diff] + cur[d + 1:]))
        cur[d] = cur[d].intersection(b[d])
    return out


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
        # Indexed by bit position, so a state visits only its own candidates (``None``: covers the field).
        self.clipped: list[list[tuple[tuple[int, int], ...] | None]] = [[] for _ in range(5)]
        for rules, o in zip(lists, self.offsets):
            for i, b in enumerate(rules):
                bit = 1 << (o + i)
                for d in range(5):
                    u = universe[d]
                    if u.issubset(b[d]):
                        full_in[d] |= bit
                        self.clipped[d].append(None)
                    else:
                        self.clipped[d].append(tuple(b[d].intersection(u)))
        self.full_in = full_in
        self.full_after = []  # rules containing the universe in every field split after each level
        for level in range(5):
            m = -1
            for d in self.order[level + 1:]:
                m &= full_in[d]
            self.full_after.append(m)
        self.uni_bounds = [(tuple(lo for lo, _ in u), tuple(hi for _, hi in u)) for u in universe]
        self.uni_cuts = [tuple(x for lo, hi in u for x in (lo, hi + 1)) for u in universe]
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
        los, his = self.uni_bounds[d]
        clipped = self.clipped[d]
        items: list[tuple[int, tuple[tuple[int, int], ...]]] = []
        rest = cands & ~base
        while rest:
            low = rest & -rest
            ivs = clipped[low.bit_length() - 1]
            assert ivs is not None  # not in ``base``: the rule does not cover the field
            items.append((low, ivs))
            rest ^= low
        points, masks = bitset_segments(items, self.uni_cuts[d])
        # Walk the segments inside the universe's field, grouping pieces by their candidate sets.
        groups: dict[int, list[tuple[int, int]]] = {}
        u = 0
        for j in range(len(points) - 1):
            start = points[j]
            cur = masks[j]
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
                    out.append(Cell(_new(Box, box), self.split_matches(c)))
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

        def walk(level, cands, pieces):
            if (level, cands) in dead:
                return None
            for s, c in self.children(level, cands):
                if level == 4:
                    m = self.split_matches(c)
                    if pred(m):
                        return pieces + (s,), m
                else:
                    got = walk(level + 1, c, pieces + (s,))
                    if got is not None:
                        return got
            dead.add((level, cands))
            return None

        got = walk(0, self.root, ())
        if got is None:
            return None
        pieces, matches = got
        # Values are picked on the path found only (a pick may cost more than a step of the walk).
        point = [0] * 5
        for pos, d in enumerate(self.order):
            point[d] = pieces[pos].min() if pick is None else pick(d, pieces[pos])
        return tuple(point), matches


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
                merged: list[Box] = []
                for group in buckets.values():
                    u = group[0][d]
                    for g in group[1:]:
                        u = u.union(g[d])
                    parts = list(group[0])
                    parts[d] = u
                    merged.append(_new(Box, parts))
                work = merged
    return work
