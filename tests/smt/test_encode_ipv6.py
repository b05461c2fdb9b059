"""Dual stack: the Z3 encoding (129-bit addresses, one family per packet) decides every packet as the
reference evaluator does, on random dual-stack policies (VNet, subnet and NIC IPv6 configurations, IPv6
prefixes and ranges in rules and admin rules); and it never finds a packet whose addresses mix families."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.model import Access
from nsgsolve.semantics.addresses import is_v6
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import resolve
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.smt.z3util import TRUE

from strategies import dynamic_assignment, packets, policies


@st.composite
def dual_stack_cases(draw, admin: bool = False):
    policy = draw(policies(max_rules=6, admin=admin, ipv6=True))
    assignment = dynamic_assignment(policy)
    pkts = draw(st.lists(packets(policy), min_size=1, max_size=8))
    for ip in list(assignment.values())[:3]:  # the dynamic NICs where they sit, with a peer of their family
        base = draw(packets(policy).filter(lambda p, ip=ip: is_v6(p.src) == is_v6(ip)))
        pkts += [Packet(base.protocol, ip, base.sport, base.dst, base.dport),
                 Packet(base.protocol, base.src, base.sport, ip, base.dport)]
    return policy, assignment, pkts


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(dual_stack_cases())
def test_z3_decides_dual_stack_packets_as_the_evaluator(case):
    policy, assignment, pkts = case
    rp = resolve(policy)
    assert rp.has_ipv6
    ev = Evaluator(rp, assignment)
    enc = Encoding(rp)
    assert enc.addr_bits == 129
    ps = PolicySolver(enc)
    for p in pkts:
        assert ps.decide(p, assignment) is ev.evaluate(p).decision, p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(dual_stack_cases(admin=True))
def test_z3_decides_dual_stack_packets_as_the_evaluator_with_admin_rules(case):
    policy, assignment, pkts = case
    rp = resolve(policy)
    ev = Evaluator(rp, assignment)
    ps = PolicySolver(Encoding(rp))
    for p in pkts:
        assert ps.decide(p, assignment) is ev.evaluate(p).decision, p


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(max_rules=4, ipv6=True))
def test_every_packet_z3_finds_is_of_one_family(policy):
    rp = resolve(policy)
    enc = Encoding(rp)
    ps = PolicySolver(enc)
    for allowed in (True, False):
        m = ps.find(TRUE, allowed, "t")
        if m is not None:
            p = enc.model_packet(m)
            assert is_v6(p.src) == is_v6(p.dst), p
            assert Evaluator(rp, enc.model_assignment(m)).evaluate(p).decision is (
                Access.ALLOW if allowed else Access.DENY)
