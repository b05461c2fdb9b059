"""The lint engine's exact pre-pass (ListAnalysis._sweep) against brute force and the partition.

On random first-match lists of small boxes (every packet of the space enumerable), for every rule: the
three questions the pre-pass answers (is the rule covered by the earlier rules; does an earlier rule of
the other action decide some of its packets; which later rules decide its packets once it is removed,
and does one of them give the other action) get the same answer from the pre-pass, from the partition
(:class:`nsgsolve.regions.box.Splitter`, which the pre-pass leaves the question to when it stops) and
from enumerating every packet.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.analyses.lint import engine
from nsgsolve.analyses.lint.engine import ListAnalysis, _no_rule
from nsgsolve.model import Access
from nsgsolve.regions.box import Box, box_contains_point
from nsgsolve.semantics.addresses import IntervalSet

SIZES = (3, 6, 3, 6, 4)  # values per field: small enough to enumerate every packet
SPACE = Box(*(IntervalSet([(0, n - 1)]) for n in SIZES))
POINTS = list(itertools.product(*(range(n) for n in SIZES)))


@st.composite
def field_sets(draw, n: int) -> IntervalSet:
    ivs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=2))
    return IntervalSet([(min(a, b), max(a, b)) for a, b in ivs])


@st.composite
def rule_lists(draw) -> tuple[list[Box], list[Access]]:
    n = draw(st.integers(1, 9))
    boxes = [Box(*[draw(st.one_of(st.just(SPACE[d]), field_sets(SIZES[d]))) for d in range(5)]) for _ in range(n)]
    access = [draw(st.sampled_from([Access.ALLOW, Access.DENY])) for _ in range(n)]
    return boxes, access


def _first(boxes: list[Box], rules: list[int], p: tuple[int, ...]) -> int | None:
    return next((j for j in rules if box_contains_point(boxes[j], p)), None)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists())
def test_the_pre_pass_agrees_with_enumeration_and_the_partition(case):
    boxes, access = case
    la = ListAnalysis(boxes, access)
    old = engine.SWEEP_BUDGET
    engine.SWEEP_BUDGET = 10**6  # here every question is answered by the pre-pass itself
    try:
        for i, b in enumerate(boxes):
            if any(not s for s in b):
                continue
            mine = [p for p in POINTS if box_contains_point(b, p)]
            earlier = list(range(i))
            later = list(range(i + 1, len(boxes)))
            e_mask = sum(1 << j for j in earlier)
            l_mask = sum(1 << j for j in later)
            acc = access[i]

            # Covered by the earlier rules (shadowed)?
            covered = all(_first(boxes, earlier, p) is not None for p in mine)
            assert (la._sweep(b, e_mask, _no_rule, neutral=e_mask) is not None) == covered
            split, _ = la._split(b, earlier, first_match=False)
            assert (split.find(lambda m: m[0] == 0) is None) == covered

            # An earlier rule of the other action decides some of its packets?
            overridden = any((j := _first(boxes, earlier, p)) is not None and access[j] is not acc for p in mine)
            got = la._sweep(b, e_mask, lambda j: j is not None and access[j] is not acc)
            assert (got is None) == overridden

            # Without it: which later rules decide its packets, and does one give the other action?
            firsts = {_first(boxes, earlier + later, p) for p in mine}
            deciders = {j for j in firsts if j is not None and j > i}
            changes = any(access[j] is not acc for j in deciders)
            got = la._sweep(b, e_mask | l_mask, lambda j: j is not None and access[j] is not acc, e_mask)
            assert (got is None) == changes
            if got is not None:
                assert {j for j in range(len(boxes)) if got >> j & 1} == deciders
    finally:
        engine.SWEEP_BUDGET = old


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists())
def test_a_pre_pass_out_of_budget_leaves_the_answer_to_the_partition(case):
    """With no budget the pre-pass answers nothing (None), and the facts are still the partition's."""
    boxes, access = case
    old = engine.SWEEP_BUDGET
    try:
        engine.SWEEP_BUDGET = 10**6
        want = [ListAnalysis(boxes, access).analyze(i, True) for i in range(len(boxes))]
        engine.SWEEP_BUDGET = 0
        got = [ListAnalysis(boxes, access).analyze(i, True) for i in range(len(boxes))]
    finally:
        engine.SWEEP_BUDGET = old
    assert got == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists(), st.booleans())
def test_facts_without_a_witness_have_the_same_verdicts(case, greedy):
    """``witness=False`` (lint without --all) may keep any packet the rule decides as ``live``: every
    verdict is the same, and ``live`` is still decided by the rule, ``live_next`` by the next rule. A
    redundant rule keeps the partition's packet (NSG002 shows it), also when it was first settled by the
    pre-pass's packet (``greedy`` False: no greedy search, so every live rule goes through the pre-pass)."""
    boxes, access = case
    old = engine._greedy
    if not greedy:
        engine._greedy = lambda *a: None
    try:
        for i in range(len(boxes)):
            full = ListAnalysis(boxes, access).analyze(i)
            quick = ListAnalysis(boxes, access).analyze(i, witness=False)
            same = ("empty", "shadowed", "cover", "conflict", "redundant", "takeover")
            assert [getattr(quick, k) for k in same] == [getattr(full, k) for k in same]
            if quick.live is not None:
                assert _first(boxes, list(range(len(boxes))), quick.live) == i
                later = _first(boxes, list(range(i + 1, len(boxes))), quick.live)
                assert quick.live_next == later
            if full.redundant:
                assert (quick.live, quick.live_next) == (full.live, full.live_next)
    finally:
        engine._greedy = old


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists(), st.data(), st.booleans())
def test_covers_agrees_with_enumeration(case, data, pre_pass):
    """ListAnalysis.covers (the covering sets' yes-or-no: the pre-pass, else the partition) is exact on
    any region, answered by the pre-pass or, when it runs out of budget, by the partition."""
    boxes, access = case
    region = Box(*[data.draw(field_sets(SIZES[d])) for d in range(5)])
    rules = sorted(data.draw(st.lists(st.integers(0, len(boxes) - 1), unique=True)))
    want = all(any(box_contains_point(boxes[j], p) for j in rules) for p in POINTS if box_contains_point(region, p))
    la = ListAnalysis(boxes, access)
    if not pre_pass:
        la._sweep = lambda *a, **k: engine.UNDECIDED  # type: ignore[method-assign]
    assert la.covers(region, rules) == want
