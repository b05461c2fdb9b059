"""A fast first-match classifier for one NSG direction: the same answer as a linear scan, in O(log n).

Each of the five packet fields is cut into elementary intervals; each interval carries a bitset (a
Python int) of the rules whose condition on that field it satisfies. A packet's matching rules are the
AND of five look-ups, and the deciding rule is the lowest set bit, because rules are numbered in
evaluation order. This is what lets ``verify --flows`` decide tens of thousands of flows per second on
1,000-rule NSGs; :func:`nsgsolve.semantics.evaluate.first_match` stays the reference it is tested against.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Iterable

from nsgsolve.model import Direction
from nsgsolve.semantics.addresses import bitset_segments
from nsgsolve.semantics.resolve import IpcKey, ParamUnbound, ResolvedNsg, ResolvedRule


class _Axis:
    """Bitsets over one integer field, built with a sweep over interval boundaries."""

    __slots__ = ("starts", "masks")

    def __init__(self, per_rule: Iterable[tuple[int, Iterable[tuple[int, int]]]]):
        self.starts, self.masks = bitset_segments((1 << i, intervals) for i, intervals in per_rule)

    def lookup(self, x: int) -> int:
        i = bisect_right(self.starts, x) - 1
        return self.masks[i] if i >= 0 else 0


class Classifier:
    def __init__(self, rules: tuple[ResolvedRule, ...]):
        self.rules = rules
        n = len(rules)
        for r in rules:
            if r.params:
                raise ParamUnbound(r.params[0])
        self._proto_any = sum(1 << i for i, r in enumerate(rules) if r.protocol is None)
        self._proto: dict[int, int] = {}
        for i, r in enumerate(rules):
            if r.protocol is not None:
                self._proto[r.protocol] = self._proto.get(r.protocol, 0) | (1 << i)
        self._src = _Axis((i, r.src.intervals) for i, r in enumerate(rules))
        self._dst = _Axis((i, r.dst.intervals) for i, r in enumerate(rules))
        self._src_dyn = self._members(rules, "src")
        self._dst_dyn = self._members(rules, "dst")
        full = ((0, 65535),)
        self._sport = _Axis((i, full if r.sports is None else r.sports) for i, r in enumerate(rules))
        self._dport = _Axis((i, full if r.dports is None else r.dports) for i, r in enumerate(rules))
        # A packet without ports (Icmp, Esp, ...) matches only rules whose port sets are both '*'.
        self._portless = sum(1 << i for i, r in enumerate(rules) if r.sports is None and r.dports is None)
        assert n > 0

    @staticmethod
    def _members(rules: tuple[ResolvedRule, ...], side: str) -> dict[IpcKey, int]:
        out: dict[IpcKey, int] = {}
        for i, r in enumerate(rules):
            for k in getattr(r, side).members:
                out[k] = out.get(k, 0) | (1 << i)
        return out

    def matching(self, p, src_dyn: IpcKey | None = None, dst_dyn: IpcKey | None = None) -> int:
        """Bitset of every rule matching packet ``p``."""
        m = self._proto_any | self._proto.get(p.protocol, 0)
        src = self._src.lookup(p.src)
        if src_dyn is not None:
            src |= self._src_dyn.get(src_dyn, 0)
        m &= src
        if not m:
            return 0
        dst = self._dst.lookup(p.dst)
        if dst_dyn is not None:
            dst |= self._dst_dyn.get(dst_dyn, 0)
        m &= dst
        if p.sport is None:
            return m & self._portless
        return m & self._sport.lookup(p.sport) & self._dport.lookup(p.dport)

    def first_match(self, p, src_dyn: IpcKey | None = None, dst_dyn: IpcKey | None = None) -> ResolvedRule:
        m = self.matching(p, src_dyn, dst_dyn)
        return self.rules[(m & -m).bit_length() - 1]


def classifier(nsg: ResolvedNsg, direction: Direction) -> Classifier:
    """The classifier of one direction of a resolved NSG, built on first use and kept on the NSG, so
    every evaluator of the policy shares it (the resolved policy itself knows nothing of classifiers)."""
    got = nsg.__dict__.get("_classifiers")
    if got is None:
        got = nsg.__dict__["_classifiers"] = (Classifier(nsg.inbound), Classifier(nsg.outbound))
    return got[0 if direction is Direction.INBOUND else 1]
