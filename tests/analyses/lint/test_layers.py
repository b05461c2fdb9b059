"""The cross-layer analysis (NSG004) with and without its exact pre-pass (layers._passes, and the list
pre-pass of the engine): on random policies, lint gives the same findings whether the pre-passes settle
the questions they can or leave every one to the partition."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from nsgsolve.analyses.lint import Linter, engine
from nsgsolve.semantics.resolve import resolve
from strategies import policies


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies(max_rules=8))
def test_findings_do_not_depend_on_the_pre_passes(policy):
    rp = resolve(policy)
    old = engine.SWEEP_BUDGET
    try:
        engine.SWEEP_BUDGET = 10**6
        with_pre_pass = Linter(rp, include_info=True).lint()
        engine.SWEEP_BUDGET = 0
        without = Linter(rp, include_info=True).lint()
    finally:
        engine.SWEEP_BUDGET = old
    assert with_pre_pass == without
