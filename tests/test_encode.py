"""The Z3 encoding agrees with the reference evaluator on concrete packets, for random policies.

The evaluator (nsgsolve/semantics/evaluate.py) is the specification; every packet hypothesis draws is decided by
both, with dynamic NICs pinned to the addresses the evaluator is given.
"""

from __future__ import annotations

import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.semantics.addresses import IntervalSet, ip_to_int
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.model import (
    Access, AnyAddress, AsgSide, Direction, IpConfig, Nic, Nsg, Policy, PortRange, PortSpec, Protocol, Ref, Rule,
    Subnet, SubnetRef, TagSide, VNet, Asg,
)
from nsgsolve.semantics.resolve import IpcKey, resolve
from nsgsolve.smt.z3util import mk_and

from strategies import cidr, dynamic_assignment, packets, policies

ALLOW, DENY = Access.ALLOW, Access.DENY


def _point(v: int) -> IntervalSet:
    return IntervalSet([(v, v)])


PLATFORM_DSTS = ["168.63.129.16", "169.254.169.254", "203.0.113.7", "8.8.8.8"]


@st.composite
def platform_packet(draw, policy):
    """From a NIC to the host services or the Internet on the ports the platform rules single out."""
    nic_ips = [c.ip for n in policy.nics for c in n.ip_configs if c.ip is not None]
    src = draw(st.sampled_from(nic_ips)) if nic_ips else ip_to_int("10.0.0.4")
    proto = draw(st.sampled_from([6, 6, 17, 1]))
    dst = ip_to_int(draw(st.sampled_from(PLATFORM_DSTS)))
    if proto == 1:
        return Packet(proto, src, None, dst, None)
    return Packet(proto, src, draw(st.sampled_from([0, 49152])), dst, draw(st.sampled_from([25, 53, 80, 32526, 443])))


@st.composite
def policy_and_packets(draw, admin: bool = False):
    policy = draw(policies(max_rules=6, admin=admin))
    assignment = dynamic_assignment(policy)
    pkts = draw(st.lists(st.one_of(packets(policy), platform_packet(policy)), min_size=1, max_size=8))
    # Also packets to and from the dynamic NICs at their assigned addresses (the shared pool has none).
    for ip in list(assignment.values())[:2]:
        base = draw(packets(policy))
        pkts.append(Packet(base.protocol, ip, base.sport, base.dst, base.dport))
        pkts.append(Packet(base.protocol, base.src, base.sport, ip, base.dport))
    return policy, assignment, pkts


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_and_packets())
def test_z3_decides_every_packet_as_the_evaluator(case):
    policy, assignment, pkts = case
    rp = resolve(policy)
    ev = Evaluator(rp, assignment)
    ps = PolicySolver(Encoding(rp))
    for p in pkts:
        assert ps.decide(p, assignment) is ev.evaluate(p).decision, p


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_and_packets())
def test_decision_narrowed_to_a_region_agrees_too(case):
    """path_allows(region, sources, destinations) drops rules that cannot match in the region; for the
    packet's own one-point region it must still decide as the evaluator does."""
    policy, assignment, pkts = case
    rp = resolve(policy)
    ev = Evaluator(rp, assignment)
    enc = Encoding(rp)
    ps = PolicySolver(enc)
    for p in pkts:
        r = ev.evaluate(p)
        region = (_point(p.protocol), _point(p.src), _point(p.sport or 0), _point(p.dst), _point(p.dport or 0))
        srcs = [r.src_endpoint] if r.src_endpoint else []
        dsts = [r.dst_endpoint] if r.dst_endpoint else []
        dec = enc.path_allows(region, srcs, dsts)
        fixed = mk_and([enc.is_packet(p), enc.is_assignment(assignment)])
        allowed = ps.find(fixed, True, "t", dec) is not None
        blocked = ps.find(fixed, False, "t", dec) is not None
        assert allowed != blocked
        assert (ALLOW if allowed else DENY) is r.decision, p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_and_packets(), st.lists(st.integers(0, 3), min_size=1, max_size=6))
def test_narrowing_keeps_the_same_rules_with_or_without_the_rule_index(case, widen):
    """A list is scanned rule by rule until it gets per-field bitsets (Encoding._kept): both ways must
    keep the same rules, so the same term (Z3 shares equal terms: ``eq`` is identity)."""
    policy, _, pkts = case
    rp = resolve(policy)
    scanned, indexed = Encoding(rp), Encoding(rp)
    scanned._tested = _Never()
    indexed._tested = _Always()
    for p, w in zip(pkts, widen * len(pkts)):
        # a point, or the point with one field opened (so regions meet more rules and fewer cover them)
        region = [_point(p.protocol), _point(p.src), _point(p.sport or 0), _point(p.dst), _point(p.dport or 0)]
        region[[0, 1, 3, 4][w]] = IntervalSet([(0, 255)]) if w == 0 else IntervalSet([(0, 1 << 32)]) if w < 3 \
            else IntervalSet([(0, 65535)])
        region = tuple(region)
        assert scanned.path_allows(region).eq(indexed.path_allows(region))


class _Never(dict):
    """Box tests counted so far: never enough for an index."""

    def get(self, key, default=None):
        return 0


class _Always(dict):
    def get(self, key, default=None):
        return 1 << 60


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_and_packets(admin=True))
def test_z3_decides_as_the_evaluator_with_security_admin_rules(case):
    """Admin rules (Deny, AlwaysAllow, Allow over network groups) before the NSGs, whole and narrowed."""
    policy, assignment, pkts = case
    rp = resolve(policy)
    ev = Evaluator(rp, assignment)
    enc = Encoding(rp)
    ps = PolicySolver(enc)
    for p in pkts:
        r = ev.evaluate(p)
        assert ps.decide(p, assignment) is r.decision, p
        region = (_point(p.protocol), _point(p.src), _point(p.sport or 0), _point(p.dst), _point(p.dport or 0))
        dec = enc.path_allows(region, [r.src_endpoint] if r.src_endpoint else [],
                              [r.dst_endpoint] if r.dst_endpoint else [])
        fixed = mk_and([enc.is_packet(p), enc.is_assignment(assignment)])
        assert (ps.find(fixed, True, "t", dec) is not None) is r.allowed, p


def _policy(dynamic: bool) -> Policy:
    """web1 (dynamic or 10.0.1.4, ASG Web) and web2 (10.0.1.5) in 10.0.1.0/28; the NSG allows 443 to Web."""
    rules = (Rule("web", 100, Direction.INBOUND, ALLOW, Protocol.TCP, AnyAddress(), PortSpec(None),
                  AsgSide((Ref("Web"),)), PortSpec((PortRange(443, 443),))),)
    return Policy(
        vnets=(VNet("v", (cidr("10.0.0.0/16"),), (Subnet("s", cidr("10.0.1.0/28"), Ref("n")),)),),
        nics=(Nic("web1", SubnetRef("v", "s"), (IpConfig(None if dynamic else ip_to_int("10.0.1.4"), (Ref("Web"),)),)),
              Nic("web2", SubnetRef("v", "s"), (IpConfig(ip_to_int("10.0.1.5")),))),
        asgs=(Asg("Web"),), nsgs=(Nsg("n", rules),))


def test_dynamic_nic_is_a_variable_in_its_subnet_usable_range_distinct_from_others():
    rp = resolve(_policy(dynamic=True))
    enc = Encoding(rp)
    ps = PolicySolver(enc)
    k = IpcKey("web1")
    a = enc.addr(k)
    # usable addresses of 10.0.1.0/28: .4 to .14, minus web2's .5
    possible = set()
    block = []
    while True:
        m = ps.find(mk_and([enc.at("dst", k)] + block), None, "t")
        if m is None:
            break
        v = m.eval(a, model_completion=True).as_long()
        possible.add(v)
        block.append(a != v)
    assert possible == {ip_to_int(f"10.0.1.{i}") for i in range(4, 15)} - {ip_to_int("10.0.1.5")}


def test_asg_rule_matches_the_dynamic_member_wherever_it_is():
    rp = resolve(_policy(dynamic=True))
    ps = PolicySolver(Encoding(rp))
    for host in (4, 9, 14):
        ip = ip_to_int(f"10.0.1.{host}")
        p = Packet.parse("tcp", "203.0.113.7", 50000, ip, 443)
        assert ps.decide(p, {IpcKey("web1"): ip}) is ALLOW
        # the same address is no member when web1 is elsewhere: no NIC there, so no NSG on the path
        other = ip_to_int("10.0.1.12") if host != 12 else ip_to_int("10.0.1.13")
        assert ps.decide(p, {IpcKey("web1"): other}) is ALLOW
    web2 = Packet.parse("tcp", "203.0.113.7", 50000, "10.0.1.5", 443)
    assert ps.decide(web2, {IpcKey("web1"): ip_to_int("10.0.1.9")}) is DENY


def test_icmp_packets_carry_no_ports_and_models_give_none():
    rp = resolve(_policy(dynamic=False))
    enc = Encoding(rp)
    ps = PolicySolver(enc)
    q = mk_and([enc.in_set("protocol", _point(1)), enc.at("dst", IpcKey("web1"))])
    m = ps.find(q, False, "t")
    assert m is not None
    p = enc.model_packet(m)
    assert p.protocol == 1 and p.sport is None and p.dport is None
    assert Evaluator(rp).evaluate(p).decision is DENY


def test_unsigned_comparisons_on_high_addresses():
    """A signed <= would put 200.0.0.0 below 10.0.0.0; the interval 10.0.0.0-199.255.255.255 must not
    contain it."""
    from nsgsolve.smt.z3util import Consts, interval

    x = z3.BitVec("x", 32)
    s = z3.Solver()
    s.add(interval(x, ip_to_int("10.0.0.0"), ip_to_int("199.255.255.254"), 32, Consts()), x == ip_to_int("200.0.0.1"))
    assert s.check() == z3.unsat


def test_rule_match_terms_are_cached_per_nsg_vnet_direction_and_index():
    rp = resolve(_policy(dynamic=False))
    enc = Encoding(rp)
    nsg = rp.nsg("n", "v")
    a = enc.rule_match(nsg, Direction.INBOUND, 0)
    assert enc.rule_match(nsg, Direction.INBOUND, 0) is a
    # the decision of rule 0 and of the default DenyAllInBound partition what reaches them
    ps = PolicySolver(enc)
    both = mk_and([enc.rule_decides(nsg, Direction.INBOUND, 0), enc.rule_decides(nsg, Direction.INBOUND, 3)])
    assert ps.find(both, None, "t") is None


def _grid_policies():
    from test_evaluate import rule, two_nic_policy  # the evaluator's hand-worked fixtures

    from nsgsolve.model import Subscription

    deny_out = rule("deny-all-out", 100, Direction.OUTBOUND, DENY, proto=Protocol.ANY)
    dns = rule("deny-dns", 100, Direction.OUTBOUND, DENY, proto=Protocol.ANY, dst=TagSide(Ref("AzurePlatformDNS")))
    imds = rule("deny-imds", 100, Direction.OUTBOUND, DENY, proto=Protocol.ANY, dst=TagSide(Ref("AzurePlatformIMDS")))
    yield two_nic_policy(nic_rules=[deny_out], subnet_rules=[deny_out])
    yield two_nic_policy(nic_rules=[dns, deny_out])
    yield two_nic_policy(nic_rules=[imds], subnet_rules=[deny_out])
    yield two_nic_policy()
    yield two_nic_policy(subscription=Subscription.ENTERPRISE_AGREEMENT)


def test_platform_rules_agree_with_the_evaluator_on_a_grid():
    """Host services bypass (with and without the AzurePlatform* tags) and the SMTP block, exhaustively
    over a small grid: random policies rarely name the platform tags and deny the host at once."""
    n = 0
    for policy in _grid_policies():
        rp = resolve(policy)
        ev = Evaluator(rp)
        ps = PolicySolver(Encoding(rp))
        for src in ("10.0.1.4", "10.0.1.5", "203.0.113.7"):
            for dst in ("168.63.129.16", "169.254.169.254", "198.51.100.20", "10.0.1.4"):
                for proto in ("tcp", "udp", "icmp"):
                    for dport in ((25, 53, 80, 32526, 443) if proto != "icmp" else (None,)):
                        p = Packet.parse(proto, src, 49152, dst, dport)
                        assert ps.decide(p) is ev.evaluate(p).decision, (p, [r.name for r in policy.nsgs[1].rules])
                        n += 1
    assert n == 5 * 3 * 4 * 11


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rules_kept_for_a_region_are_the_same_with_the_index_built_at_once(data):
    """check builds every list's per-field index before its first question (Encoding.index_after = 0); a
    single question tests the rules one by one. Both keep the same rules for every region."""
    from nsgsolve.model import Direction
    from nsgsolve.regions.box import Box
    from nsgsolve.semantics.addresses import ALL_ADDRS, ALL_PORTS

    policy = data.draw(policies(max_rules=6))
    rp = resolve(policy)
    at_once, one_by_one = Encoding(rp), Encoding(rp)
    at_once.index_after, one_by_one.index_after = 0, 10**9
    addr_sets = [ALL_ADDRS, IntervalSet([(ip_to_int("10.0.0.0"), ip_to_int("10.0.255.255"))]),
                 IntervalSet([(ip_to_int("10.0.1.4"), ip_to_int("10.0.1.4"))]),
                 IntervalSet([(0, ip_to_int("9.255.255.255"))])]
    port_sets = [ALL_PORTS, IntervalSet([(22, 22)]), IntervalSet([(80, 80), (443, 443)]), IntervalSet([(1000, 3000)])]
    proto_sets = [IntervalSet([(0, 255)]), IntervalSet([(6, 6)]), IntervalSet([(17, 17)]), IntervalSet([(1, 1)])]
    lists = [(n, d) for n in {l.nsg for k in rp.ipcs for l in rp.inbound_layers(k) + rp.outbound_layers(k)}
             for d in (Direction.INBOUND, Direction.OUTBOUND)]
    for _ in range(10):
        region = Box(data.draw(st.sampled_from(proto_sets)), data.draw(st.sampled_from(addr_sets)),
                     data.draw(st.sampled_from(port_sets)), data.draw(st.sampled_from(addr_sets)),
                     data.draw(st.sampled_from(port_sets)))
        for nsg, direction in lists:
            assert at_once._kept(nsg, direction, region) == one_by_one._kept(nsg, direction, region)
