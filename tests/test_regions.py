"""Region partitions against brute force on a small packet space."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from nsgsolve.semantics.addresses import IntervalSet
from nsgsolve.regions.box import box_contains_point, box_meets, merge_cells, partition
from nsgsolve.regions.fieldindex import BoxIndex

SMALL = (IntervalSet([(0, 3)]), IntervalSet([(0, 7)]), IntervalSet([(0, 2)]), IntervalSet([(0, 7)]),
         IntervalSet([(0, 3)]))
POINTS = list(itertools.product(*[range(s.min(), max(h for _, h in s) + 1) for s in SMALL]))


def field_set(hi: int):
    return st.lists(st.tuples(st.integers(0, hi), st.integers(0, hi)), min_size=0, max_size=2).map(
        lambda xs: IntervalSet([(min(a, b), max(a, b)) for a, b in xs]))


boxes = st.tuples(field_set(3), field_set(7), field_set(2), field_set(7), field_set(3))
rule_lists = st.lists(st.lists(boxes, max_size=6), min_size=1, max_size=2)


def brute_matches(rules, point):
    return [i for i, b in enumerate(rules) if box_contains_point(b, point)]


@settings(max_examples=200, deadline=None)
@given(rule_lists, st.integers(1, 2))
def test_cells_tile_the_space_and_give_the_first_matches(lists, keep):
    cells = partition(lists, SMALL, keep=keep)
    for point in POINTS:
        holding = [c for c in cells if box_contains_point(c.box, point)]
        assert len(holding) == 1, point
        cell = holding[0]
        for k, rules in enumerate(lists):
            expected = brute_matches(rules, point)[:keep]
            got = [i for i in range(len(rules)) if cell.matches[k] >> i & 1][:keep]
            assert got == expected, (point, k)


@settings(max_examples=100, deadline=None)
@given(st.lists(boxes, min_size=1, max_size=6))
def test_merge_keeps_the_same_points(bs):
    bs = [b for b in bs if all(b)]
    merged = merge_cells(bs)
    for point in POINTS:
        assert any(box_contains_point(b, point) for b in bs) == any(box_contains_point(b, point) for b in merged)
    assert len(merged) <= max(1, len(bs))


@settings(max_examples=200, deadline=None)
@given(st.lists(boxes, max_size=8), boxes)
def test_the_box_index_finds_exactly_the_boxes_that_meet_a_region(bs, region):
    # The Z3 encoding keeps a rule in a question's term by this bitset instead of box_meets per rule.
    got = BoxIndex(bs).meeting(region)
    assert [i for i in range(len(bs)) if got >> i & 1] == [i for i, b in enumerate(bs) if box_meets(b, region)]
