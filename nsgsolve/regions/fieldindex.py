"""Per-field candidate bitsets over a list of boxes: "which boxes meet (or contain) this set", in
O(log n) big-int operations per interval instead of one test per box.

Each field is cut into elementary segments (:func:`nsgsolve.semantics.addresses.bitset_segments`); a
segment carries the bitset of the boxes whose set in that field covers it, and a segment tree of ORs
(and, on demand, ANDs) answers for a run of segments at once. Bit ``i`` is box ``i``, so the lowest set
bit is the first box in list order. Used by lint (:mod:`nsgsolve.analyses.lint.engine`) and by the Z3
encoding to keep only the rules that can match in a question's region.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

from nsgsolve.regions.box import DPORT, DST, PROTO, SPORT, SRC, Box
from nsgsolve.semantics.addresses import IntervalSet, bitset_segments


class FieldIndex:
    """One field of one rule list: elementary segments, the rules covering each (bitset), and a segment
    tree of ORs, so "which rules meet this set" costs O(log n) big-int ORs per interval."""

    __slots__ = ("starts", "masks", "tree", "size", "_and")

    def __init__(self, sets: Sequence[IntervalSet]):
        self.starts, masks = bitset_segments(((1 << i, s) for i, s in enumerate(sets)), (0,))
        self.masks = masks
        size = 1
        while size < len(masks):
            size *= 2
        tree = [0] * (2 * size)
        tree[size:size + len(masks)] = masks
        for k in range(size - 1, 0, -1):
            tree[k] = tree[2 * k] | tree[2 * k + 1]
        self.tree, self.size = tree, size
        self._and: list[int] | None = None  # the same tree with AND, built on first use (covering)

    def seg(self, v: int) -> int:
        return bisect_right(self.starts, v) - 1

    def lookup(self, v: int) -> int:
        return self.masks[bisect_right(self.starts, v) - 1]

    def meeting(self, s: IntervalSet) -> int:
        # The hottest loop of lint (every piece of every question asks it per field): bisect and the tree
        # climb inlined, no method call per interval.
        acc = 0
        tree, starts, size = self.tree, self.starts, self.size
        for lo, hi in s:
            l = bisect_right(starts, lo) - 1 + size
            r = bisect_right(starts, hi) + size
            while l < r:
                if l & 1:
                    acc |= tree[l]
                    l += 1
                if r & 1:
                    r -= 1
                    acc |= tree[r]
                l >>= 1
                r >>= 1
        return acc

    def covering(self, s: IntervalSet) -> int:
        """The rules whose set in this field contains all of ``s`` (not empty). Exact for any ``s``: a
        segment lies wholly inside or wholly outside each rule's set, so the rules covering every segment
        that ``s`` meets are the rules covering ``s``."""
        tree = self._and
        if tree is None:
            size = self.size
            tree = [-1] * (2 * size)
            tree[size:size + len(self.masks)] = self.masks
            for k in range(size - 1, 0, -1):
                tree[k] = tree[2 * k] & tree[2 * k + 1]
            self._and = tree
        acc = -1
        starts, size = self.starts, self.size
        for lo, hi in s:
            l = bisect_right(starts, lo) - 1 + size
            r = bisect_right(starts, hi) + size
            while l < r:
                if l & 1:
                    acc &= tree[l]
                    l += 1
                if r & 1:
                    r -= 1
                    acc &= tree[r]
                l >>= 1
                r >>= 1
        return acc

    def segments_within(self, s: IntervalSet, limit: int) -> list[int]:
        """Indices of the segments inside ``s`` (``s`` is one of the indexed sets, so segments never
        straddle its bounds), evenly thinned to at most ``limit``."""
        starts = self.starts
        ranges = [(bisect_right(starts, lo) - 1, bisect_right(starts, hi) - 1) for lo, hi in s]
        total = sum(r - l + 1 for l, r in ranges)
        out: list[int] = []
        if total <= limit:
            for l, r in ranges:
                out.extend(range(l, r + 1))
            return out
        step = total / limit
        flat_pos = [int(k * step) for k in range(limit)]
        base, it = 0, iter(flat_pos)
        want = next(it, None)
        for l, r in ranges:
            n = r - l + 1
            while want is not None and want < base + n:
                out.append(l + want - base)
                want = next(it, None)
            base += n
        return out

    def segment_set(self, k: int, within: IntervalSet) -> IntervalSet:
        hi = self.starts[k + 1] - 1 if k + 1 < len(self.starts) else max(h for _, h in within)
        return within.intersection(IntervalSet._raw((self.starts[k],), (hi,)))  # one interval: no normalising


class BoxIndex:
    """:class:`FieldIndex` for all five fields of a list of boxes."""

    __slots__ = ("fields", "full")

    def __init__(self, boxes: Sequence[Box]):
        self.fields = [FieldIndex([b[d] for b in boxes]) for d in range(5)]
        self.full = (1 << len(boxes)) - 1

    def meeting(self, region: Box) -> int:
        """The boxes that share a packet with ``region``, as a bitset: the same answer as
        :func:`nsgsolve.regions.box.box_meets` per box (boxes meet when every field does)."""
        m = self.full
        for d in (PROTO, DPORT, SPORT, DST, SRC):  # the order of box_meets: most boxes differ in the first
            m &= self.fields[d].meeting(region[d])
            if not m:
                break
        return m


__all__ = ["BoxIndex", "FieldIndex"]
