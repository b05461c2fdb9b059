"""Path layers in region form decide every packet as the reference evaluator does."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.semantics.evaluate import Evaluator
from nsgsolve.model import Access
from nsgsolve.regions.paths import endpoint_addresses, path_layers
from nsgsolve.regions.box import box_contains_point
from nsgsolve.semantics.resolve import resolve

from strategies import dynamic_assignment, packets, policies


def point(p):
    return (p.protocol, p.src, p.sport or 0, p.dst, p.dport or 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_path_layers_agree_with_evaluator(data):
    policy = data.draw(policies())
    rp = resolve(policy)
    assignment = dynamic_assignment(policy)
    ev = Evaluator(rp, assignment)
    for _ in range(15):
        pkt = data.draw(packets(policy))
        result = ev.evaluate(pkt)
        layers = path_layers(rp, result.src_endpoint, result.dst_endpoint)
        x = point(pkt)
        for key, addr in ((result.src_endpoint, pkt.src), (result.dst_endpoint, pkt.dst)):
            assert addr in endpoint_addresses(rp, key)
        firsts = [next(r for r in layer.rules if box_contains_point(r.box, x)) for layer in layers]
        decision = Access.DENY if any(r.access is Access.DENY for r in firsts) else Access.ALLOW
        assert decision is result.decision, (pkt, [r.name for r in firsts], [s.rule for s in result.trace])
        # the deciding NSG rules are the ones the evaluator reports
        assert [r.name for r in firsts if r.rule is not None] == [s.rule for s in result.trace if s.nsg]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_path_layers_with_security_admin_rules_agree_with_evaluator(data):
    """The admin layer and the AlwaysAllow entries in front of each NSG list make the conjunction of
    first-match lists decide as Azure's admin-then-NSG evaluation does."""
    policy = data.draw(policies(max_rules=5, admin=True))
    rp = resolve(policy)
    ev = Evaluator(rp, dynamic_assignment(policy))
    for _ in range(15):
        pkt = data.draw(packets(policy))
        result = ev.evaluate(pkt)
        layers = path_layers(rp, result.src_endpoint, result.dst_endpoint)
        firsts = [next(r for r in layer.rules if box_contains_point(r.box, point(pkt))) for layer in layers]
        decision = Access.DENY if any(r.access is Access.DENY for r in firsts) else Access.ALLOW
        assert decision is result.decision, (pkt, [r.name for r in firsts], [s.describe() for s in result.trace])
        # Every NSG layer the evaluator consulted decides by the same rule here.
        evaluated = [s.rule for s in result.trace if s.nsg and s.evaluated]
        assert all(name in [r.name for r in firsts] for name in evaluated)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_layers_shared_between_pairs_are_the_layers_built_for_one_pair(data):
    """path_layers shares one entry tuple among the pairs meeting an NSG (only rules naming a dynamic
    endpoint get boxes of their own): every pair's layers equal those of a fresh resolution asked for
    that pair alone, whatever pairs were asked before."""
    policy = data.draw(policies(max_rules=5, admin=data.draw(st.booleans())))
    shared = resolve(policy)
    ends = [None, *shared.ipcs]
    pairs = [(s, d) for s in ends for d in ends if s is not None or d is not None]
    for s, d in data.draw(st.permutations(pairs)):
        got = path_layers(shared, s, d)
        want = path_layers(resolve(policy), s, d)
        assert [(l.attached_to, l.direction, [(r.box, r.access, r.name) for r in l.rules]) for l in got] == \
               [(l.attached_to, l.direction, [(r.box, r.access, r.name) for r in l.rules]) for l in want]
