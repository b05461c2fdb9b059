"""The analysis of one first-match rule list, shared by every check: per rule, which earlier rules cover
it, whether it is shadowed or redundant and by which rules, which packets it still decides.

Everything is exact region arithmetic (:mod:`nsgsolve.regions.box`) in the extended space of
:mod:`nsgsolve.regions.space`, so answers cover every address Azure may give a dynamic NIC. Per rule
the question is asked only inside the rule's own box, against the rules whose boxes meet it (found with
per-field bitsets, :mod:`nsgsolve.regions.fieldindex`), after cheap attempts that settle most rules: a
greedy search for a packet no earlier rule matches, and single-rule containment.
"""

from __future__ import annotations

from itertools import combinations
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

from nsgsolve.model import Access
from nsgsolve.regions.box import (DPORT, DST, PROTO, SPORT, SRC, Box, Splitter, box_intersection, box_subset,
                                  make_box)
from nsgsolve.regions.fieldindex import FieldIndex as _FieldIndex  # the per-field bitsets (shared with smt)
from nsgsolve.semantics.addresses import IntervalSet, ip_to_int


# ---------------------------------------------------------------- readable witness values

_ADDR_PREFS = [ip_to_int("203.0.113.7"), ip_to_int("2001:db8::7")]  # documentation addresses (RFC 5737, 3849)
_PREFS = {PROTO: [6, 17, 1], DPORT: [443, 80, 22, 3389, 53, 25], SPORT: [49152]}


def pick(d: int, s: IntervalSet) -> int:
    """A readable value of ``s`` for field ``d``: Tcp, well-known ports, a documentation address, or an
    address past the network's first four (Azure's reserved ones) rather than x.y.z.0."""
    for v in _PREFS.get(d, _ADDR_PREFS if d in (SRC, DST) else ()):
        if v in s:
            return v
    x = s.min()
    if d in (SRC, DST) and x & 0xFF == 0:
        for lo, hi in s:
            if lo == x and hi >= x + 4:
                return x + 4
    return x


# ---------------------------------------------------------------- one rule list


def _greedy(index: Sequence[_FieldIndex], within: Box, avoid: int) -> tuple[int, ...] | None:
    """Field by field, the value inside ``within`` that the fewest ``avoid`` rules match (sampling at most
    ESCAPE_SAMPLES segments a field): a point no ``avoid`` rule matches, or None when this greedy choice
    does not find one (which proves nothing)."""
    values = [0] * 5
    rem = avoid
    for d in (PROTO, DPORT, SPORT, SRC, DST):
        ix = index[d]
        if not rem:
            values[d] = pick(d, within[d])
            continue
        masks = ix.masks
        best_score, best_k, best_left = -1, 0, 0
        for k in ix.segments_within(within[d], ESCAPE_SAMPLES):
            left = rem & masks[k]
            score = left.bit_count()
            if best_score < 0 or score < best_score:
                best_score, best_k, best_left = score, k, left
                if not score:
                    break
        assert best_score >= 0
        rem = best_left
        values[d] = pick(d, ix.segment_set(best_k, within[d]))
    return tuple(values) if not rem else None


def _bits(m: int) -> list[int]:
    """The positions of the set bits of ``m`` (not negative), ascending. By a scan of its binary digits:
    peeling the lowest bit off costs O(n) per bit on an n-bit set, and a rule's earlier rules are a set of
    thousands of bits on a long list (that was quadratic in the list)."""
    digits = bin(m)[:1:-1]  # least significant first, without "0b"
    out = []
    k = digits.find("1")
    while k >= 0:
        out.append(k)
        k = digits.find("1", k + 1)
    return out


def _lowest(m: int, n: int) -> list[int]:
    """The positions of the lowest ``n`` set bits of ``m``."""
    out: list[int] = []
    while m and len(out) < n:
        low = m & -m
        out.append(low.bit_length() - 1)
        m ^= low
    return out


def _volume(b: Box) -> int:
    v = 1
    for s in b:
        v *= s.size()
    return v


@dataclass(frozen=True)
class RuleFacts:
    """Everything the list analysis knows about one rule (indices are positions in the list)."""

    index: int
    empty: bool = False
    shadowed: bool = False
    cover: tuple[int, ...] = ()
    conflict: tuple[tuple[int, ...], int] | None = None  # a packet decided the other way, and by which rule
    live: tuple[int, ...] | None = None  # a packet the rule decides
    live_next: int | None = None  # the rule that would decide ``live`` without it
    redundant: bool = False
    takeover: tuple[int, ...] = ()  # rules that decide its packets when it is removed
    correlated: tuple[int, ...] = ()
    generalizes: tuple[int, ...] = ()


# Ends the message of a rule whose packets all get its own decision earlier (_merge_vnets takes it back
# when that holds in only some of the NSG's VNets).
ESCAPE_SAMPLES = 48
SUBSUME_AGAINST = 64  # rules with the largest overlap that every other candidate is checked against
# Cuts the exact pre-pass (ListAnalysis._sweep) may make for one question before it leaves the question
# to the partition: most questions settle in a few dozen, and a policy that fragments more still gets its
# answer, from the partition. At least one cut per rule in the question: the partition's cost grows with
# those rules (on the generated 4,000-rule NSGs one redundancy question over 2,668 rules needed ~1,500 cuts,
# 0.2 s, and took the partition 17 s when the budget was 400 for every question).
SWEEP_BUDGET = 400
UNDECIDED = -1  # ListAnalysis._sweep ran out of budget


class ListAnalysis:
    """Shadowing, redundancy and overlap facts for one first-match list of boxes."""

    def __init__(self, boxes: Sequence[Box], access: Sequence[Access]):
        self.boxes = list(boxes)
        self.access = list(access)
        self.n = len(boxes)
        self.index = [_FieldIndex([b[d] for b in boxes]) for d in range(5)]
        self.allow = sum(1 << i for i, a in enumerate(access) if a is Access.ALLOW)
        # Per access, the rules with it (admin lists have AlwaysAllow too): opposite() in O(1).
        self._with: dict[Access, int] = {}
        for i, a in enumerate(access):
            self._with[a] = self._with.get(a, 0) | 1 << i
        self.full = (1 << self.n) - 1

    def meeting(self, i: int) -> int:
        b = self.boxes[i]
        m = self.full
        for d in (PROTO, DPORT, SPORT, SRC, DST):
            m &= self.index[d].meeting(b[d])
            if not m:
                break
        return m & ~(1 << i)

    def covering(self, b: Box) -> int:
        """The rules whose box contains all of ``b`` (which has no empty field), as a bitset."""
        m = self.full
        for d in (PROTO, DPORT, SPORT, SRC, DST):
            m &= self.index[d].covering(b[d])
            if not m:
                break
        return m

    def matching(self, point: Sequence[int]) -> int:
        m = self.full
        for d in range(5):
            m &= self.index[d].lookup(point[d])
        return m

    def opposite(self, i: int) -> int:
        """The rules whose access is not rule ``i``'s, as a bitset."""
        return self.full & ~self._with[self.access[i]]

    def _escape(self, i: int, avoid: int, within: Box | None = None) -> tuple[int, ...] | None:
        return _greedy(self.index, self.boxes[i] if within is None else within, avoid)

    def _sweep(self, b: Box, cand: int, stop: Callable[[int | None], bool], neutral: int = 0,
               found: list[Box] | None = None) -> int | None:
        """The cheap exact pre-pass before the partition (:meth:`_split`), for questions whose usual answer
        is "no such packet": walks pieces of box ``b``, each with the ``cand`` rules that meet it (found
        with the field indexes), cutting a piece by one rule into the part that rule matches and at most
        five disjoint rest pieces (one per field the rule does not cover).

        ``neutral`` rules come before every other candidate, and which of them decides a packet does not
        matter (the earlier rules of a redundancy question; every rule of a plain union question): a piece
        one of them contains is settled, and a piece they only meet is cut by the one covering it in the
        most fields, so pieces fragment little. The other candidates are taken in rule order (first match).

        Returns the non-neutral rules that decide some part of ``b`` (a bitset); None when some part's
        first match (None: no candidate) satisfies ``stop`` (such a packet exists); UNDECIDED when the
        walk needs more cuts than SWEEP_BUDGET or than there are candidates. Witnesses come from the
        partition (the caller asks it when a packet exists and one is wanted), so they never depend on this
        pass; ``found`` (when given) receives the piece that stopped the walk on None, for a caller that
        needs some packet there, not a shown one."""
        index, boxes = self.index, self.boxes
        # A piece carries the fields it has not been checked in: its candidates already meet its parent
        # in every field, and a cut changes only some of them (_cut).
        stack: list[tuple[Box, int, tuple[int, ...]]] = [(b, cand, (PROTO, DPORT, SPORT, SRC, DST))]
        deciders = steps = 0
        budget = max(SWEEP_BUDGET, cand.bit_count())
        while stack:
            piece, c, fields = stack.pop()
            for d in fields:
                c &= index[d].meeting(piece[d])
                if not c:
                    break
            if not c:
                if stop(None):
                    if found is not None:
                        found.append(piece)
                    return None
                continue
            n = c & neutral
            if n:
                first = c & ~neutral
                first &= -first
                if first & deciders and box_subset(piece, boxes[first.bit_length() - 1]):
                    # The first other candidate holds the whole piece and already decides part of ``b`` (so
                    # ``stop`` said no to it): whatever the neutral rules leave of the piece, it decides.
                    continue
                low = _widest(index, piece, n)
                if not low:
                    continue  # a neutral rule holds the whole piece
            else:
                low = c & -c
                j = low.bit_length() - 1
                if stop(j):
                    return None
                deciders |= low
            steps += 1
            if steps > budget:
                return UNDECIDED
            # The rest of the piece: for a first match, no candidate before j meets the piece at all.
            c ^= low
            stack += [(rest, c, changed) for rest, changed in _cut(piece, boxes[low.bit_length() - 1])[1]]
        return deciders

    def _split(self, b: Box, rules: Iterable[int], first_match: bool) -> tuple[Splitter, list[int]]:
        """A partition of box ``b`` (a rule's box or part of it) by ``rules`` (kept in evaluation order), after
        dropping every rule whose part of the box lies inside another's: inside an earlier one it never decides there,
        and for a plain union question (``first_match`` False) inside any other it adds nothing. Fields
        are split in order of how many cuts the rules make in them, fewest first, so the wide address
        lists come last where each state holds few rules."""
        order = sorted(rules)
        clipped = [box_intersection(self.boxes[j], b) for j in order]
        if len(order) > 8:
            vol = [_volume(c) for c in clipped]
            big = sorted(range(len(order)), key=lambda k: -vol[k])[:SUBSUME_AGAINST]

            def dropped(k: int) -> bool:
                for k2 in big:
                    if vol[k2] < vol[k]:
                        return False  # ``big`` is by volume, largest first: nothing further can hold it
                    if k2 == k or (first_match and k2 > k):
                        continue
                    if box_subset(clipped[k], clipped[k2]) and (k2 < k or clipped[k] != clipped[k2]):
                        return True
                return False

            kept = [k for k in range(len(order)) if not dropped(k)]
            order = [order[k] for k in kept]
            clipped = [clipped[k] for k in kept]
        cuts = [sum(len(c[d]) for c in clipped) for d in range(5)]
        fields = sorted(range(5), key=lambda d: (cuts[d], d))
        return Splitter([[self.boxes[j] for j in order]], universe=b, order=fields), order

    def analyze(self, i: int, info: bool = False, witness: bool = True) -> RuleFacts:
        """The facts of rule ``i``. ``witness`` False: when the rule is live and its removal changes some
        decision, ``live`` may be any packet it decides and ``live_next`` the rule deciding that packet
        without it (maybe of the same action), instead of a packet whose decision changes: the partition
        that picks one is then skipped (lint without ``--all`` shows no such packet)."""
        b = self.boxes[i]
        if any(not s for s in b):
            return RuleFacts(i, empty=True)
        meet = self.meeting(i)
        earlier = meet & ((1 << i) - 1)
        later = meet & ~((1 << (i + 1)) - 1)
        # The first earlier rule holding the whole box, from the field indexes' covering sets (not a subset
        # test per earlier rule: there may be hundreds). With one, no packet escapes: skip the search.
        holders = self.covering(b) & earlier
        contained = (holders & -holders).bit_length() - 1 if holders else None
        live = self._escape(i, earlier) if contained is None else None
        provisional = False  # ``live`` is the pre-pass's packet, not the partition's (see below)
        if live is None:
            if contained is None:
                found: list[Box] = []
                swept = self._sweep(b, earlier, _no_rule, neutral=earlier, found=found)
                if swept is None and not (witness or info):
                    # A packet the rule decides: any point of the piece no earlier rule meets. The partition
                    # below costs more than the rest of most such rules' analysis, and its packet is shown
                    # only when the rule turns out redundant (NSG002's "e.g."): it is then found as before.
                    live, provisional = tuple(pick(d, found[0][d]) for d in range(5)), True
                elif swept in (None, UNDECIDED):
                    live = self._decided_packet(i, earlier)
            if live is None:
                return self._shadowed(i, earlier, contained)
        facts = self._live(i, live, earlier, later, info, witness)
        if provisional and facts.redundant:
            live = self._decided_packet(i, earlier)
            assert live is not None  # the pre-pass found such a packet
            rest = self.matching(live) & ~((1 << (i + 1)) - 1)
            facts = replace(facts, live=live, live_next=(rest & -rest).bit_length() - 1 if rest else None)
        return facts

    def _decided_packet(self, i: int, earlier: int) -> tuple[int, ...] | None:
        """The partition's packet of rule ``i`` that no ``earlier`` rule matches (readable values), or None."""
        split, _ = self._split(self.boxes[i], _bits(earlier), first_match=False)
        got = split.find(lambda m: m[0] == 0, pick)
        return got[0] if got is not None else None

    def _shadowed(self, i: int, earlier: int, contained: int | None) -> RuleFacts:
        b = self.boxes[i]
        conflict = self._overridden(i, earlier)
        forced = [conflict[1]] if conflict else []
        if contained is not None:
            # One rule covers it; keep the overriding one too, so the cover shows the dangerous rule.
            one = forced[0] if forced and box_subset(b, self.boxes[forced[0]]) else contained
            return RuleFacts(i, shadowed=True, cover=tuple(sorted(set(forced) | {one})), conflict=conflict)
        # Greedy by witness: while some packet of the rule escapes the cover, add the earlier rule that
        # matches it with the largest overlap; then drop every member the others make unneeded.
        overlap: dict[int, int] = {}

        def ov(j: int) -> int:
            if j not in overlap:
                overlap[j] = _volume(box_intersection(b, self.boxes[j]))
            return overlap[j]

        cover = list(forced)
        while True:
            got = self._split(b, cover, first_match=False)[0].find(lambda m: m[0] == 0) if cover else None
            if cover and got is None:
                break
            point = got[0] if got else tuple(pick(d, b[d]) for d in range(5))
            cover.append(max(_bits(self.matching(point) & earlier), key=lambda j: (ov(j), -j)))
        for j in sorted((x for x in cover if x not in forced), key=lambda j: (ov(j), -j)):
            rest = [x for x in cover if x != j]
            if rest and self.covers(box_intersection(b, self.boxes[j]), rest):
                cover = rest
        return RuleFacts(i, shadowed=True, cover=tuple(sorted(cover)), conflict=conflict)

    def covers(self, region: Box, rules: list[int]) -> bool:
        """Every packet of ``region`` (no empty field) is matched by some rule of ``rules``. The pre-pass
        answers most such questions (the covering sets' checks) without building a partition; only the
        yes-or-no is used, so which exact method answers cannot change a cover."""
        mask = sum(1 << j for j in rules)
        settled = self._sweep(region, mask, _no_rule, neutral=mask)
        if settled is None:
            return False
        if settled != UNDECIDED:
            return True
        return self._split(region, rules, first_match=False)[0].find(lambda m: m[0] == 0) is None

    def _overridden(self, i: int, earlier: int) -> tuple[tuple[int, ...], int] | None:
        """A packet of rule ``i`` that an earlier rule of the other action decides, and that rule."""
        acc = self.access[i]
        b = self.boxes[i]
        opposite = earlier & self.opposite(i)
        if not opposite:
            return None
        # Cheap first: aim at each opposite rule in turn, avoiding the earlier rules before it.
        for j in _lowest(opposite, 4):
            within = box_intersection(b, self.boxes[j])
            before = earlier & ((1 << j) - 1)
            point = self._escape(i, before, within)
            if point is not None:
                return point, j
        if self._sweep(b, earlier, lambda j: j is not None and self.access[j] is not acc) not in (None, UNDECIDED):
            return None
        split, flist = self._split(b, _bits(earlier), first_match=True)

        def first(m: int) -> int:
            return flist[(m & -m).bit_length() - 1]

        got = split.find(lambda m: m[0] != 0 and self.access[first(m[0])] is not acc, pick)
        return (got[0], first(got[1][0])) if got else None

    def _change(self, i: int, earlier: int, later: int, witness: bool = True
                ) -> tuple[tuple[int, ...], int] | tuple[None, tuple[int, ...] | None]:
        """``(packet, rule)``: a packet rule ``i`` decides whose decision changes without it, and the rule
        that would decide it then; or ``(None, takeover)`` when there is none (the rule is redundant),
        with the rules that decide its packets in its place; or ``(None, None)`` when there is one and
        no ``witness`` is wanted."""
        acc = self.access[i]
        b = self.boxes[i]
        # Cheap first: aim at a few later rules of the other action, avoiding every rule before each.
        for j in _lowest(later & self.opposite(i), 4):
            within = box_intersection(b, self.boxes[j])
            point = self._escape(i, earlier | (later & ((1 << j) - 1)), within)
            if point is not None:
                return point, j
        settled = self._sweep(b, earlier | later, lambda j: j is not None and self.access[j] is not acc, earlier)
        if settled is None and not witness:
            return None, None
        if settled is not None and settled != UNDECIDED:
            return None, tuple(_bits(settled))
        split, rules = self._split(b, _bits(earlier) + _bits(later), first_match=True)

        def first(m: int) -> int:
            return rules[(m & -m).bit_length() - 1]

        got = split.find(lambda m: m[0] != 0 and first(m[0]) > i and self.access[first(m[0])] is not acc, pick)
        if got is not None:
            return got[0], first(got[1][0])
        deciders = [rules[k] for k in _bits(split.fold(lambda c: c & -c))]
        return None, tuple(j for j in deciders if j > i)

    def _live(self, i: int, live: tuple[int, ...], earlier: int, later: int, info: bool,
              witness: bool = True) -> RuleFacts:
        b = self.boxes[i]
        acc = self.access[i]
        rest = self.matching(live) & ~((1 << (i + 1)) - 1)
        nxt = (rest & -rest).bit_length() - 1 if rest else None
        redundant = False
        takeover: tuple[int, ...] = ()
        if nxt is None or self.access[nxt] is acc:
            point, other = self._change(i, earlier, later, witness)
            if point is not None:
                live, nxt = point, other  # type: ignore[assignment]
            elif other is not None:
                redundant, takeover = True, other  # type: ignore[assignment]
        correlated: list[int] = []
        generalizes: list[int] = []
        if info and not redundant:
            for j in _bits(earlier):
                if self.access[j] is not acc:
                    (generalizes if box_subset(self.boxes[j], b) else correlated).append(j)
        return RuleFacts(i, live=live, live_next=nxt, redundant=redundant, takeover=takeover,
                         correlated=tuple(correlated), generalizes=tuple(generalizes))


# Subsets of the five fields, largest first: the cut that leaves the fewest pieces (ListAnalysis._sweep).
_COMBOS = tuple(c for k in (4, 3, 2, 1) for c in combinations(range(5), k))


def _widest(index: Sequence[_FieldIndex], piece: Box, rules: int) -> int:
    """Of ``rules`` (a bitset of rules meeting ``piece``), the one (as a bit) covering ``piece`` in the
    most fields, so cutting by it leaves the fewest pieces; 0 when one covers it whole."""
    cov = [rules & index[d].covering(piece[d]) for d in range(5)]
    if cov[0] & cov[1] & cov[2] & cov[3] & cov[4]:
        return 0
    for combo in _COMBOS:
        m = rules
        for d in combo:
            m &= cov[d]
        if m:
            return m & -m
    return rules & -rules


def _cut(piece: Box, rb: Box) -> tuple[Box, list[tuple[Box, tuple[int, ...]]]]:
    """``piece`` cut by box ``rb`` (which meets it): the part inside ``rb``, and the rest as at most five
    disjoint boxes, one per field ``rb`` does not cover, each with the fields where it differs from
    ``piece`` (the pre-passes re-check candidates only there)."""
    cur = list(piece)
    rest = []
    changed: tuple[int, ...] = ()
    for d in range(5):
        if cur[d].issubset(rb[d]):
            continue
        changed += (d,)
        rest.append((make_box(cur[:d] + [cur[d].difference(rb[d])] + cur[d + 1:]), changed))
        cur[d] = cur[d].intersection(rb[d])
    return make_box(cur), rest


def _no_rule(j: int | None) -> bool:
    return j is None


def _first(m: int) -> int:
    return (m & -m).bit_length() - 1


def _matching(index: Sequence[_FieldIndex], point: Sequence[int]) -> int:
    m = -1
    for d in range(5):
        m &= index[d].lookup(point[d])
    return m
