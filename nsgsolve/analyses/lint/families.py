"""One rule list in every address family of the policy: IPv4, and IPv6 when the policy has IPv6 addresses.

A packet is IPv4 or IPv6, so a rule matching both families matches the union of two boxes (IPv4 x IPv4
and IPv6 x IPv6), never one box over both: that would hold packets from an IPv4 address to an IPv6 one,
which do not exist, and a "live" witness could be one of them. So a list is analysed once per family,
each in its own extended space (:class:`nsgsolve.regions.space.Space`), and a rule's facts are merged:

* it is **unmatchable** when it matches no packet of either family;
* **shadowed** when in every family where it matches packets it is shadowed (its cover is the union of
  the families' covers, minimised again, the overriding rule kept);
* **redundant** when it decides packets in some family and is shadowed or redundant in each (removing it
  changes no decision of either family);
* otherwise live, its witness from a family whose decision changes without it.

A policy without IPv6 addresses has one family: its facts are the IPv4 analysis's, unchanged.
Points of the two spaces never collide (:func:`nsgsolve.regions.space.in_v6_space`), so a witness point
says which family's analysis and space decode it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from nsgsolve.analyses.lint.engine import ListAnalysis, RuleFacts, _bits
from nsgsolve.regions.box import SRC, Box, box_intersection, box_is_empty, box_subset
from nsgsolve.regions.space import in_v6_space


class Families:
    """The list analyses of one rule list, one per address family (IPv4 first), and the merged facts."""

    def __init__(self, parts: Sequence[ListAnalysis]):
        self.parts = tuple(parts)
        self.n = self.parts[0].n
        self.access = self.parts[0].access

    def boxes_of(self, i: int) -> tuple[Box, ...]:
        """Rule ``i``'s box in each family (an empty box where it matches no packet of that family)."""
        return tuple(la.boxes[i] for la in self.parts)

    def part_for(self, point: Sequence[int]) -> ListAnalysis:
        """The analysis of the family a point of the extended spaces belongs to."""
        return self.parts[-1] if len(self.parts) > 1 and in_v6_space(point[SRC]) else self.parts[0]

    def analyze(self, i: int, info: bool = False, witness: bool = True) -> RuleFacts:
        if len(self.parts) == 1:
            return self.parts[0].analyze(i, info, witness)
        facts = [la.analyze(i, info, witness) for la in self.parts]
        matching = [(la, f) for la, f in zip(self.parts, facts) if not f.empty]
        if not matching:
            return RuleFacts(i, empty=True)
        deciding = [f for _, f in matching if not f.shadowed]
        if not deciding:
            conflict = next((f.conflict for _, f in matching if f.conflict is not None), None)
            cover = self._minimal_cover(i, sorted({j for _, f in matching for j in f.cover}),
                                        conflict[1] if conflict else None, [la for la, _ in matching])
            return RuleFacts(i, shadowed=True, cover=tuple(cover), conflict=conflict)
        changing = [f for f in deciding if not f.redundant]
        if not changing:
            return replace(deciding[0], takeover=tuple(sorted({j for f in deciding for j in f.takeover})),
                           correlated=(), generalizes=())
        out = replace(changing[0], correlated=(), generalizes=())
        if info:
            correlated, generalizes = self._overlaps(i)
            out = replace(out, correlated=correlated, generalizes=generalizes)
        return out

    def _minimal_cover(self, i: int, cover: list[int], forced: int | None, parts: list[ListAnalysis]) -> list[int]:
        """Drop members of the union of the families' covers that the others make unneeded in every family
        (each family's cover is minimal for that family alone; a rule of one may cover the other's too)."""
        for j in sorted((x for x in cover if x != forced), key=lambda x: -x):
            rest = [x for x in cover if x != j]
            if rest and all(self._covers(la, i, j, rest) for la in parts):
                cover = rest
        return cover

    @staticmethod
    def _covers(la: ListAnalysis, i: int, j: int, rest: list[int]) -> bool:
        part = box_intersection(la.boxes[i], la.boxes[j])
        return box_is_empty(part) or la.covers(part, rest)

    def _overlaps(self, i: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """NSG006/NSG007 over both families: an earlier rule of the other action meeting rule ``i`` in some
        family is generalized when its packets of every family are the rule's, else correlated."""
        acc = self.access[i]
        earlier = 0
        for la in self.parts:
            earlier |= la.meeting(i) & ((1 << i) - 1)
        correlated: list[int] = []
        generalizes: list[int] = []
        for j in _bits(earlier):
            if self.access[j] is acc:
                continue
            inside = all(box_is_empty(la.boxes[j]) or box_subset(la.boxes[j], la.boxes[i]) for la in self.parts)
            (generalizes if inside else correlated).append(j)
        return tuple(correlated), tuple(generalizes)
