"""Semantic diff: exact regions, checked against the reference evaluator on both versions."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve import cli
from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS, ALL_V6, IntervalSet, describe_ips, ip_to_int, is_v6
from nsgsolve.analyses.diff import (CLOSED, INTERNET, OPENED, PartialItem, _changed_entries, _hull, _meeting_entries,
                                    diff_policies, packet_point)
from nsgsolve.reports.diff import describe_region, diff_dict
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.model import (
    Access,
    AnyAddress,
    Asg,
    AsgSide,
    Direction,
    IpConfig,
    Nic,
    NicAddr,
    Nsg,
    Policy,
    PortRange,
    PortSpec,
    PrefixSide,
    Protocol,
    Ref,
    Rule,
    SubnetRef,
    TagSide,
)
from nsgsolve.regions.box import DST, SRC, Box, Splitter, box_contains_point, box_meets
from nsgsolve.regions.paths import PathRule
from nsgsolve.semantics.resolve import resolve

from strategies import PORTS, PROTOCOL_NUMBERS, addresses_of, cidr, dynamic_assignment, policies

IN, OUT = Direction.INBOUND, Direction.OUTBOUND
ALLOW, DENY = Access.ALLOW, Access.DENY
ANY = PortSpec(None)


def ports(*ranges) -> PortSpec:
    return PortSpec(tuple(PortRange(*r) if isinstance(r, tuple) else PortRange(r, r) for r in ranges))


def rule(name, prio, direction, access, proto=Protocol.TCP, src=None, dst=None, dports=ANY) -> Rule:
    return Rule(name, prio, direction, access, proto, src or AnyAddress(), ANY, dst or AnyAddress(), dports)


def web_policy(nic_rules=(), subnet_rules=()) -> Policy:
    from test_evaluate import two_nic_policy

    return two_nic_policy(subnet_rules=subnet_rules, nic_rules=nic_rules)


SRC_NET = PrefixSide((cidr("203.0.113.0/24"),))
ALLOW_IN_SUBNET = [rule("in-all", 100, IN, ALLOW, Protocol.ANY, src=SRC_NET)]


# ---------------------------------------------------------------- hand-worked cases


def test_identical_policies_give_an_empty_diff():
    p = web_policy([rule("web", 100, IN, ALLOW, src=SRC_NET, dports=ports(80))], ALLOW_IN_SUBNET)
    r = diff_policies(p, p)
    assert r.is_empty and not r.opened and not r.closed and not r.endpoint_changes
    assert r.pairs_compared > 0


def test_renamed_and_reordered_rules_that_change_nothing_give_an_empty_diff():
    rules = [rule("ssh", 100, IN, ALLOW, src=SRC_NET, dports=ports(22)),
             rule("no-http", 110, IN, DENY, dports=ports(80)),
             rule("https", 120, IN, ALLOW, src=SRC_NET, dports=ports(443))]
    # Disjoint ports: any order decides alike; the names are not semantics either.
    reordered = [replace(rules[0], name="ssh-renamed", priority=300), replace(rules[1], priority=200),
                 replace(rules[2], name="https2", priority=100)]
    r = diff_policies(web_policy(rules, ALLOW_IN_SUBNET), web_policy(reordered, ALLOW_IN_SUBNET))
    assert r.is_empty
    assert r.changed_rules > 0  # the reorder was seen as changed entries, and proved harmless


def test_a_reorder_that_matters_is_reported():
    rules = [rule("deny-22", 100, IN, DENY, dports=ports(22)), rule("allow-all", 110, IN, ALLOW, src=SRC_NET)]
    swapped = [replace(rules[0], priority=110), replace(rules[1], priority=100)]
    r = diff_policies(web_policy(rules, ALLOW_IN_SUBNET), web_policy(swapped, ALLOW_IN_SUBNET))
    assert not r.closed
    [(pair, region)] = r.opened
    assert (pair.source.name, pair.destination.name) == (INTERNET, "web1")
    assert region.box == (IntervalSet([(6, 6)]), IntervalSet([(ip_to_int("203.0.113.0"), ip_to_int("203.0.113.255"))]),
                          ALL_PORTS, IntervalSet([(ip_to_int("10.0.1.4"),) * 2]), IntervalSet([(22, 22)]))


@pytest.mark.parametrize("before,after,kind", [((80, 80), (80, 81), OPENED), ((80, 81), (80, 80), CLOSED)])
def test_a_single_changed_port_range_gives_exactly_that_region(before, after, kind):
    old = web_policy([rule("web", 100, IN, ALLOW, src=SRC_NET, dports=ports(before))], ALLOW_IN_SUBNET)
    new = web_policy([rule("web", 100, IN, ALLOW, src=SRC_NET, dports=ports(after))], ALLOW_IN_SUBNET)
    r = diff_policies(old, new)
    assert len(r.pairs) == 1
    [(pair, region)] = r.opened if kind == OPENED else r.closed
    assert not (r.closed if kind == OPENED else r.opened)
    assert (pair.source.name, pair.destination.name) == (INTERNET, "web1")
    assert region.protocols == IntervalSet([(6, 6)])
    assert region.sources == IntervalSet([(ip_to_int("203.0.113.0"), ip_to_int("203.0.113.255"))])
    assert region.source_ports == ALL_PORTS
    assert region.destinations == IntervalSet([(ip_to_int("10.0.1.4"), ip_to_int("10.0.1.4"))])
    assert region.destination_ports == IntervalSet([(81, 81)])
    assert describe_region(region) == "tcp 203.0.113.0/24 -> 10.0.1.4 dport 81"
    # the deciding rules: OLD's and NEW's trace at web1's NIC layer
    nic_old = [s for s in region.old.trace if s.attached_to == "nic web1"]
    nic_new = [s for s in region.new.trace if s.attached_to == "nic web1"]
    got = (nic_old[0].rule, nic_new[0].rule)
    assert got == (("DenyAllInBound", "web") if kind == OPENED else ("web", "DenyAllInBound"))


def test_endpoints_in_one_version_only_are_listed_apart_and_readdressed_nics_noted():
    old = web_policy(ALLOW_IN_SUBNET)
    nics = list(old.nics)
    web3 = Nic("web3", SubnetRef("vnet", "web"), (IpConfig(ip_to_int("10.0.1.6")),))
    new = replace(old, nics=(replace(nics[0], ip_configs=(replace(nics[0].ip_configs[0], ip=ip_to_int("10.0.1.9")),)),
                             web3))
    r = diff_policies(old, new)
    changes = {(c.name, c.change) for c in r.endpoint_changes}
    assert changes == {("web2", "only in OLD"), ("web3", "only in NEW"), ("web1", "readdressed")}
    assert not any("web2" in (p.source.name, p.destination.name) for p in r.pairs)


def test_an_nsg_detached_from_a_nic_opens_what_it_denied():
    old = web_policy([rule("deny-22", 100, IN, DENY, dports=ports(22))], ALLOW_IN_SUBNET)
    new = replace(old, nics=(replace(old.nics[0], nsg=None), old.nics[1]))
    r = diff_policies(old, new, destinations=["web1"])
    assert r.opened and not r.closed
    assert {p.destination.name for p, _ in r.opened} == {"web1"}
    # the subnet allows only 203.0.113.0/24 from outside, so that is all the NIC NSG was holding back
    src = {p.source.name for p, _ in r.opened}
    assert INTERNET in src


def test_from_and_to_restrict_the_pairs_and_clip_cidrs():
    old = web_policy([rule("web", 100, IN, ALLOW, src=SRC_NET, dports=ports(80))], ALLOW_IN_SUBNET)
    new = web_policy([rule("web", 100, IN, ALLOW, src=AnyAddress(), dports=ports(80))],
                     [rule("in-all", 100, IN, ALLOW, Protocol.ANY)])
    full = diff_policies(old, new)
    clipped = diff_policies(old, new, sources=["198.51.100.0/24"], destinations=["web1"])
    assert clipped.opened and not full.is_empty
    for p, g in clipped.opened:
        assert p.destination.name == "web1"
        assert g.sources.issubset(IntervalSet([(ip_to_int("198.51.100.0"), ip_to_int("198.51.100.255"))]))
    assert diff_policies(old, new, sources=["web2"], destinations=["web2"]).is_empty


def test_unknown_selector_is_a_usage_error():
    from nsgsolve.errors import UsageError

    p = web_policy()
    with pytest.raises(UsageError, match="web9"):
        diff_policies(p, p, sources=["web9"])


# ---------------------------------------------------------------- the regions.py addition


def test_required_list_restricts_the_walk_to_its_boxes():
    small = (IntervalSet([(0, 3)]), IntervalSet([(0, 7)]), IntervalSet([(0, 2)]), IntervalSet([(0, 7)]),
             IntervalSet([(0, 3)]))
    required = [(IntervalSet([(1, 2)]),) + small[1:3] + (IntervalSet([(2, 5)]), small[4])]
    rules = [small, (small[0], IntervalSet([(0, 3)]), small[2], small[3], IntervalSet([(1, 1)]))]
    for order in ((0, 4, 2, 1, 3), (1, 3, 0, 2, 4)):
        cells = Splitter([required, rules], small, order=order, require=(0,)).cells()
        points = itertools.product(*[range(s.min(), max(h for _, h in s) + 1) for s in small])
        for pt in points:
            holding = [c for c in cells if box_contains_point(c.box, pt)]
            assert len(holding) == int(box_contains_point(required[0], pt)), pt
            if holding:
                expected = next(i for i, b in enumerate(rules) if box_contains_point(b, pt))
                assert holding[0].first(1) == expected


# ---------------------------------------------------------------- property: exact against the evaluator


@st.composite
def mutated(draw, policy: Policy) -> Policy:
    """A later version: a few rules edited, moved, added or removed; sometimes an NSG detached, a NIC removed
    or a static NIC readdressed."""
    nsgs = list(policy.nsgs)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(nsgs) - 1))
        rules = list(nsgs[i].rules)
        what = draw(st.sampled_from(["access", "ports", "proto", "source", "move", "delete", "add"]))
        if not rules or what == "add":
            used = {(r.direction, r.priority) for r in rules}
            d = draw(st.sampled_from([IN, OUT]))
            prio = draw(st.integers(100, 4096).filter(lambda p: (d, p) not in used))
            rules.append(Rule(f"new{len(rules)}", prio, d, draw(st.sampled_from([ALLOW, DENY])),
                              draw(st.sampled_from(list(Protocol))),
                              draw(st.sampled_from([AnyAddress(), TagSide(Ref("Internet")),
                                                    PrefixSide((cidr("10.0.0.0/24"),))])), ANY,
                              draw(st.sampled_from([AnyAddress(), TagSide(Ref("VirtualNetwork"))])),
                              draw(st.sampled_from([ANY, ports(22), ports((80, 443)), ports((1000, 2000))]))))
        else:
            k = draw(st.integers(0, len(rules) - 1))
            r = rules[k]
            if what == "access":
                rules[k] = replace(r, access=DENY if r.access is ALLOW else ALLOW)
            elif what == "ports":
                rules[k] = replace(r, destination_ports=draw(st.sampled_from([ANY, ports(22), ports((80, 443)),
                                                                             ports((25, 53), 1433)])))
            elif what == "proto":
                rules[k] = replace(r, protocol=draw(st.sampled_from(list(Protocol))))
            elif what == "source":
                dual = any(c.is_v6 for v in policy.vnets for c in v.address_spaces)
                v6 = [PrefixSide((cidr("fd00::/8"),))] if dual else []
                rules[k] = replace(r, source=draw(st.sampled_from([AnyAddress(), TagSide(Ref("Internet")),
                                                                   PrefixSide((cidr("8.0.0.0/7"),))] + v6)))
            elif what == "move":
                used = {(x.direction, x.priority) for x in rules}
                rules[k] = replace(r, priority=draw(st.integers(100, 4096).filter(
                    lambda p: (r.direction, p) not in used)))
            else:
                del rules[k]
        nsgs[i] = Nsg(nsgs[i].name, tuple(rules))
    new = replace(policy, nsgs=tuple(nsgs))
    nics = list(new.nics)
    topo = draw(st.sampled_from(["none", "none", "detach", "remove", "readdress", "regroup"]))
    j = draw(st.integers(0, len(nics) - 1))
    if topo == "detach":
        nics[j] = replace(nics[j], nsg=None if nics[j].nsg else Ref(policy.nsgs[0].name))
    elif topo == "remove" and len(nics) > 1 and nics[j].name not in _named_nics(new):
        del nics[j]
    elif topo == "readdress" and nics[j].ip_configs[0].ip is not None:
        ipc = nics[j].ip_configs[0]
        nics[j] = replace(nics[j], ip_configs=(replace(ipc, ip=ipc.ip + 50),))
    elif topo == "regroup":  # other ASG memberships, of the NIC's own VNet (as the strategy draws them)
        v = nics[j].subnet.vnet[4:]
        asgs = draw(st.lists(st.sampled_from([f"asg{v}a", f"asg{v}b"]), max_size=2, unique=True))
        nics[j] = replace(nics[j], ip_configs=(replace(nics[j].ip_configs[0], asgs=tuple(Ref(a) for a in asgs)),))
    return replace(new, nics=tuple(nics))


def _named_nics(policy: Policy) -> set[str]:
    """NICs that rules name: removing one would make NEW invalid, not different."""
    out = set()
    for n in policy.nsgs:
        for r in n.rules:
            for side in (r.source, r.destination):
                if isinstance(side, PrefixSide):
                    out |= {it.nic.name for it in side.items if isinstance(it, NicAddr)}
    return out


def _pool(old: Policy, new: Policy, assignment) -> list[int]:
    from nsgsolve.semantics.addresses import int_to_ip

    addrs = set(addresses_of(old)) | set(addresses_of(new)) | {int_to_ip(a) for a in assignment.values()}
    return sorted(ip_to_int(a) for a in addrs)


def _evaluators(rp_old, rp_new, assignment) -> tuple[Evaluator, Evaluator]:
    """The reference evaluator of each version, with the dynamic addresses each still has."""
    return (Evaluator(rp_old, assignment),
            Evaluator(rp_new, {k: v for k, v in assignment.items() if k in rp_new.ipcs}))


def _random_packets(data, old: Policy, new: Policy, assignment, n: int) -> list[Packet]:
    """``n`` packets between the interesting addresses of both versions."""
    pool = _pool(old, new, assignment)
    out = []
    for _ in range(n):
        proto = data.draw(st.sampled_from(PROTOCOL_NUMBERS))
        src = data.draw(st.sampled_from(pool))
        dst = data.draw(st.sampled_from([a for a in pool if is_v6(a) == is_v6(src)]))  # a packet is of one family
        out.append(_packet(proto, src, data.draw(st.sampled_from(PORTS)), dst, data.draw(st.sampled_from(PORTS))))
    return out


def _packet(proto: int, src: int, sport: int, dst: int, dport: int) -> Packet:
    if proto in (6, 17):
        return Packet(proto, src, sport, dst, dport)
    return Packet(proto, src, None, dst, None)


@settings(max_examples=int(os.environ.get("NSGSOLVE_DIFF_EXAMPLES", "120")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_regions_are_exactly_where_decisions_differ(data):
    old = data.draw(policies(max_rules=6))
    new = data.draw(mutated(old))
    _regions_are_exactly_where_decisions_differ(data, old, new)


@settings(max_examples=int(os.environ.get("NSGSOLVE_DIFF_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_dual_stack_regions_are_exactly_where_decisions_differ(data):
    """The same in dual-stack policies: IPv4 and IPv6 packets are compared, each region in one family."""
    old = data.draw(policies(max_rules=5, ipv6=True))
    new = data.draw(mutated(old))
    _regions_are_exactly_where_decisions_differ(data, old, new)


@st.composite
def admin_mutated(draw, policy: Policy) -> Policy:
    """One admin rule's access changed or the rule dropped, or a group's members changed."""
    from dataclasses import replace as rep

    cfg = policy.admin_configs[0]
    rules = [(i, j) for i, rc in enumerate(cfg.collections) for j in range(len(rc.rules))]
    if rules and draw(st.booleans()):
        i, j = draw(st.sampled_from(rules))
        rc = cfg.collections[i]
        r = rc.rules[j]
        if draw(st.booleans()):
            new_rules = rc.rules[:j] + rc.rules[j + 1:]
        else:
            access = draw(st.sampled_from([a for a in Access if a is not r.access]))
            new_rules = rc.rules[:j] + (rep(r, access=access),) + rc.rules[j + 1:]
        cols = cfg.collections[:i] + (rep(rc, rules=new_rules),) + cfg.collections[i + 1:]
        return rep(policy, admin_configs=(rep(cfg, collections=cols),))
    g = policy.groups[0]
    names = [v.name for v in policy.vnets]
    members = tuple(Ref(n) for n in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)))
    return rep(policy, groups=(rep(g, members=members),) + policy.groups[1:])


@settings(max_examples=int(os.environ.get("NSGSOLVE_DIFF_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_admin_rule_changes_give_exactly_the_regions_where_decisions_differ(data):
    old = data.draw(policies(max_rules=4, admin=True))
    new = data.draw(admin_mutated(old))
    _regions_are_exactly_where_decisions_differ(data, old, new)


def _regions_are_exactly_where_decisions_differ(data, old: Policy, new: Policy) -> None:
    rp_old, rp_new = resolve(old), resolve(new)
    result = diff_policies(rp_old, rp_new)
    assignment = dynamic_assignment(old)  # the mutations readdress static NICs only, or remove one
    ev_old, ev_new = _evaluators(rp_old, rp_new, assignment)
    by_pair: dict[tuple, list] = {}
    for pair in result.pairs:
        by_pair.setdefault((pair.source.key, pair.destination.key), []).extend(pair.regions)

    def check(p: Packet) -> None:
        a, b = ev_old.evaluate(p), ev_new.evaluate(p)
        ends = (a.src_endpoint, a.dst_endpoint)
        if ends != (b.src_endpoint, b.dst_endpoint):
            return  # an address that is a NIC in one version only: listed apart, not compared
        if ends[0] is not None and ends[0] == ends[1] and ends[0] in assignment:
            return  # a dynamic NIC to itself: documented as not compared
        inside = [g for g in by_pair.get(ends, []) if g.contains(p)]
        assert len(inside) <= 1, (p, inside)  # regions of a pair are disjoint
        if a.decision is b.decision:
            assert not inside, (p, describe_region(inside[0]), a.trace, b.trace)
        else:
            assert inside, (p, a.decision, b.decision, a.trace, b.trace)
            assert inside[0].kind == (OPENED if b.decision is ALLOW else CLOSED)

    # Every witness really differs, replayed here independently of the diff's own check.
    for pair in result.pairs:
        for g in pair.regions:
            asg = {k: v for k, v in ((pair.source.key, g.witness.src), (pair.destination.key, g.witness.dst))
                   if k is not None and (rp_old.ipcs[k].ip is None)}
            wa, wb = Evaluator(rp_old, asg).evaluate(g.witness), Evaluator(rp_new, asg).evaluate(g.witness)
            assert (wa.decision, wb.decision) == ((DENY, ALLOW) if g.kind == OPENED else (ALLOW, DENY))
            assert g.contains(g.witness)
            # and the region's edges: one step outside in each address and port field, evaluated as above
            pt = packet_point(g.witness)
            assert is_v6(g.witness.src) == is_v6(g.witness.dst) == is_v6(g.box[SRC].min()) == is_v6(g.box[DST].min())
            family = ALL_V6 if is_v6(g.witness.src) else ALL_IPS
            for field, delta in ((SRC, -1), (DST, 1), (4, 1), (4, -1)):
                q = list(pt)
                q[field] += delta
                if q[field] in (ALL_PORTS if field == 4 else family):
                    check(_packet(*q))
    for p in _random_packets(data, old, new, assignment, 40):
        check(p)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_changed_rule_filter_gives_the_same_regions_as_the_global_partition(data):
    old = data.draw(policies(max_rules=5, ipv6=data.draw(st.booleans())))
    new = data.draw(mutated(old))

    fast = diff_policies(old, new)
    slow = diff_policies(old, new, changed_rule_filter=False)
    assert (fast.opened == ()) == (slow.opened == ()) and (fast.closed == ()) == (slow.closed == ())
    # Both are exact, so they cover the same packets per pair and kind; the boxes may be cut differently.
    for r1, r2 in ((fast, slow), (slow, fast)):
        for p in r1.pairs:
            for g in p.regions:
                twin = [h for q in r2.pairs if (q.source.name, q.destination.name) == (p.source.name,
                        p.destination.name) for h in q.regions if h.kind == g.kind and h.contains(g.witness)]
                assert twin, (p.source.name, p.destination.name, describe_region(g))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans().flatmap(lambda v6: policies(max_rules=6, ipv6=v6)))
def test_a_policy_against_itself_is_empty(policy):
    assert diff_policies(policy, policy).is_empty


# ---------------------------------------------------------------- command line


def arm(dport: str, nic_ip: str = "10.0.1.4") -> dict:
    nsg_id = "[resourceId('Microsoft.Network/networkSecurityGroups', 'web-nsg')]"
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0", "resources": [
            {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "web-nsg",
             "properties": {"securityRules": [{"name": "web", "properties": {
                 "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": dport,
                 "sourceAddressPrefix": "Internet", "destinationAddressPrefix": "*", "access": "Allow",
                 "priority": 100, "direction": "Inbound"}}]}},
            {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "hub",
             "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [
                 {"name": "web", "properties": {"addressPrefix": "10.0.1.0/24",
                                                "networkSecurityGroup": {"id": nsg_id}}}]}},
            {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": "web1",
             "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
                 "privateIPAllocationMethod": "Static", "privateIPAddress": nic_ip,
                 "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', 'web')]"}}}]}},
        ]}


def run_cli(*argv, monkeypatch) -> tuple[int, str, str]:
    # Only this command: the CLI shell lists commands other engineers have not landed yet.
    monkeypatch.setattr(cli, "COMMANDS", ("diff",))
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(["diff", *argv], out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def versions(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(arm("443")))
    new.write_text(json.dumps(arm("443-444")))
    return str(old), str(new)


def test_cli_reports_and_fails_on_the_named_kind(versions, monkeypatch):
    old, new = versions
    status, out, _ = run_cli(old, new, monkeypatch=monkeypatch)
    assert status == 0
    assert "OPENED  tcp" in out and "dport 444" in out and "Internet" in out
    assert run_cli(old, new, "--fail-on", "opened", monkeypatch=monkeypatch)[0] == 1
    assert run_cli(old, new, "--fail-on", "any", monkeypatch=monkeypatch)[0] == 1
    assert run_cli(old, new, "--fail-on", "closed", monkeypatch=monkeypatch)[0] == 0
    assert run_cli(new, old, "--fail-on", "closed", monkeypatch=monkeypatch)[0] == 1
    assert run_cli(old, old, "--fail-on", "any", monkeypatch=monkeypatch)[0] == 0


def test_cli_json_lists_regions_with_witness_and_traces(versions, monkeypatch):
    old, new = versions
    status, out, _ = run_cli(old, new, "--json", "--to", "web1", monkeypatch=monkeypatch)
    d = json.loads(out)
    assert status == 0 and d["summary"]["opened"] == 1 and d["summary"]["closed"] == 0
    [pair] = d["pairs"]
    [g] = pair["opened"]
    assert (g["protocols"], g["destinations"], g["destination_ports"]) == (["tcp"], ["10.0.1.4/32"], "444")
    assert g["old"]["decision"] == "Deny" and g["new"]["decision"] == "Allow"
    assert g["new"]["trace"][0]["rule"] == "web"


def test_cli_invalid_input_and_selector_exit_2(versions, monkeypatch, tmp_path):
    old, new = versions
    status, _, err = run_cli(old, str(tmp_path / "missing.json"), monkeypatch=monkeypatch)
    assert status == 2 and "missing.json" in err
    status, _, err = run_cli(old, new, "--from", "nope", monkeypatch=monkeypatch)
    assert status == 2 and "nope" in err


def test_cli_reads_a_git_revision(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    try:
        git("init", "-q")
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"git is not usable here: {e}")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(arm("443")))
    git("add", "policy.json")
    git("commit", "-q", "-m", "v1")
    policy.write_text(json.dumps(arm("22")))
    monkeypatch.chdir(tmp_path)
    status, out, _ = run_cli("HEAD:policy.json", "policy.json", "--fail-on", "closed", monkeypatch=monkeypatch)
    assert status == 1 and "CLOSED" in out and "dport 443" in out and "OPENED" in out
    status, _, err = run_cli("HEAD~5:policy.json", "policy.json", monkeypatch=monkeypatch)
    assert status == 2 and "git" in err


def test_text_output_groups_pairs_that_differ_only_in_an_endpoints_addresses():
    from nsgsolve.reports.diff import format_diff

    old = web_policy(subnet_rules=ALLOW_IN_SUBNET)
    new = web_policy(subnet_rules=ALLOW_IN_SUBNET + [rule("ssh", 90, IN, DENY, dports=ports(22))])
    r = diff_policies(old, new, sources=["Internet"])
    # web1 has a NIC NSG that denies everything anyway; web2 has none, so only web2 loses port 22 ...
    assert [(p.source.name, p.destination.name) for p in r.pairs] == [(INTERNET, "web2")]
    # ... and with web1's NSG gone both lose it, reported as one block over both addresses
    new2 = replace(new, nics=(replace(new.nics[0], nsg=None), new.nics[1]))
    old2 = replace(old, nics=new2.nics)
    r2 = diff_policies(old2, new2, sources=["Internet"])
    assert len(r2.pairs) == 2
    text = format_diff(r2, "old", "new")
    assert "-> web1, web2 [2]" in text
    both = describe_ips(IntervalSet([(ip_to_int("10.0.1.4"), ip_to_int("10.0.1.5"))]))
    assert text.count("CLOSED") == 1 and f"-> {both} dport 22" in text


@pytest.mark.parametrize("example", sorted(str(p) for p in (
    __import__("pathlib").Path(__file__).resolve().parent.parent / "examples").glob("*.nsg")))
def test_every_shipped_example_against_itself_is_an_empty_diff(example, monkeypatch):
    status, out, err = run_cli(example, example, "--fail-on", "any", monkeypatch=monkeypatch)
    assert status == 0, err
    assert "no difference" in out


# ---------------------------------------------------------------- --from/--to: the query's endpoints


EXAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "examples"
SSH_RULE = "    110 allow Allow-SSH-Admins tcp from 198.51.100.0/24 to WebServers port 22\n"


@pytest.fixture
def webservers(tmp_path):
    """examples/webservers.nsg before and after one rule: SSH from 198.51.100.0/24 to WebServers."""
    text = (EXAMPLES / "webservers.nsg").read_text()
    anchor = '"HTTP and HTTPS from anywhere"\n'
    assert anchor in text
    new = tmp_path / "new.nsg"
    new.write_text(text.replace(anchor, anchor + SSH_RULE))
    return str(EXAMPLES / "webservers.nsg"), str(new)


def _pairs(out: str) -> list[tuple[str, str, str]]:
    d = json.loads(out)
    return sorted((p["source"]["name"], p["destination"]["name"], g["destination_ports"])
                  for p in d["pairs"] for g in p["opened"] + p["closed"])


def test_from_internet_to_an_asg_is_the_querys_traffic(webservers, monkeypatch):
    old, new = webservers
    status, out, _ = run_cli(old, new, "--from", "Internet", "--to", "WebServers", "--json", monkeypatch=monkeypatch)
    assert status == 0
    assert _pairs(out) == [("Internet", "web1", "22"), ("Internet", "web2", "22")]
    d = json.loads(out)
    assert any("168.63.129.16" in n for n in d["notes"])  # the query's meaning of Internet, said as query says it
    # text output: the same note as query's, and the pair block
    status, text, _ = run_cli(old, new, "--from", "Internet", "--to", "WebServers", monkeypatch=monkeypatch)
    assert "note: Internet here is public address space outside every VNet's VirtualNetwork tag" in text
    assert "Internet (public IPv4 outside the VNets) -> web1, web2 [2]" in text
    # a NIC the ASG does not hold, and traffic the other way, select nothing that changed
    assert json.loads(run_cli(old, new, "--from", "WebServers", "--to", "Internet", "--json",
                              monkeypatch=monkeypatch)[1])["pairs"] == []


@pytest.mark.parametrize("to", ["myVirtualNetwork/mySubnet", "mySubnet", "subnet mySubnet", "vnet myVirtualNetwork",
                                "web1, web2", "nic web1,nic web2", "asg WebServers", "any", "*"])
def test_nic_type_and_any_destinations_select_the_nics(webservers, monkeypatch, to):
    old, new = webservers
    status, out, err = run_cli(old, new, "--to", to, "--json", monkeypatch=monkeypatch)
    assert status == 0, err
    assert _pairs(out) == [("Internet", "web1", "22"), ("Internet", "web2", "22")]


def test_a_subnet_is_its_nics_and_its_cidr_every_address():
    # web2 leaves the subnet NSG's deny on port 22 behind: a rule on the NIC-less part of the range would
    # be invisible to a subnet endpoint (its NICs) but seen through the subnet's prefix (every address).
    base = [rule("in-all", 100, IN, ALLOW, Protocol.ANY, src=SRC_NET)]
    old = web_policy(subnet_rules=base)
    new = web_policy(subnet_rules=base + [rule("out-22", 100, OUT, DENY, dst=PrefixSide((cidr("10.0.1.0/24"),)),
                                               dports=ports(22))])
    by_subnet = diff_policies(old, new, sources=["web"], destinations=["`vnet`/web"])  # 'vnet' is a keyword
    by_cidr = diff_policies(old, new, sources=["web"], destinations=["10.0.1.0/24"])
    # web1 -> web2 and web2 -> web1 (and web2 -> itself: static, compared) lose port 22 in both readings ...
    nic_pairs = {(p.source.name, p.destination.name) for p in by_subnet.pairs}
    assert nic_pairs and all(d != INTERNET and d in ("web1", "web2") for _, d in nic_pairs)
    # ... and the CIDR also reaches the range's addresses of no NIC, reported as the outside class "private"
    cidr_pairs = {(p.source.name, p.destination.name) for p in by_cidr.pairs}
    assert nic_pairs < cidr_pairs
    [extra] = {d for _, d in cidr_pairs - nic_pairs}
    assert extra == "private"
    for p in by_cidr.pairs:
        if p.destination.name == "private":
            assert all(g.destinations.issubset(IntervalSet([(ip_to_int("10.0.1.0"), ip_to_int("10.0.1.255"))]))
                       for g in p.regions)


def test_a_cidr_selects_the_nics_inside_and_clips_the_outside_world(webservers, monkeypatch):
    old, new = webservers
    status, out, _ = run_cli(old, new, "--from", "198.51.100.0/25", "--to", "10.0.1.4", "--json",
                             monkeypatch=monkeypatch)
    assert status == 0
    [pair] = json.loads(out)["pairs"]
    assert (pair["source"]["name"], pair["destination"]["name"]) == ("Internet", "web1")
    [g] = pair["opened"]
    assert g["sources"] == ["198.51.100.0/25"] and g["destinations"] == ["10.0.1.4/32"]
    # a range and a CIDR that meets no changed traffic
    assert _pairs(run_cli(old, new, "--from", "198.51.100.200-198.51.100.210", "--json",
                          monkeypatch=monkeypatch)[1]) == [("Internet", "web1", "22"), ("Internet", "web2", "22")]
    assert (
        json.loads(run_cli(old, new, "--from", "203.0.113.0/24", "--json", monkeypatch=monkeypatch)[1])["pairs"] == []
    )


@pytest.mark.parametrize("spec,says,hint", [
    ("WebServerz", "unknown name 'WebServerz'", "did you mean 'WebServers'?"),
    ("web3", "unknown name 'web3'", "'web1'"),
    ("webservers", "'webservers'", "did you mean 'WebServers'?"),
    ("Internte", "Internte", "did you mean 'Internet'?"),
    ("on-premises", "outside classes are how the diff reports", "'outside'"),
    ("web1#2", "no IP configuration of that name", "'web1'"),
    ("web1 port 22", "not an endpoint", "docs/query.md"),
])
def test_an_unknown_endpoint_exits_2_naming_it_with_a_suggestion(webservers, monkeypatch, spec, says, hint):
    old, new = webservers
    status, out, err = run_cli(old, new, "--to", "web1", "--from", spec, monkeypatch=monkeypatch)
    assert status == 2 and out == ""
    assert f"--from {spec}: " in err and says in err and hint in err, err


def test_a_name_known_in_one_version_only_is_resolved_there_and_noted():
    base = [rule("in-all", 100, IN, ALLOW, Protocol.ANY, src=SRC_NET)]
    old = web_policy(subnet_rules=base)
    new = web_policy(subnet_rules=base + [rule("ssh", 90, IN, DENY, dports=ports(22))])
    # NEW adds ASG Admins with web2 in it
    nics = list(new.nics)
    nics[1] = replace(nics[1], ip_configs=(replace(nics[1].ip_configs[0], asgs=(Ref("Admins"),)),))
    new = replace(new, asgs=new.asgs + (Asg("Admins"),), nics=tuple(nics))
    r = diff_policies(old, new, destinations=["Admins"])
    assert {p.destination.name for p in r.pairs} == {"web2"}
    assert r.notes == (PartialItem("destinations", "Admins", "NEW"),)
    assert diff_dict(r, "old", "new")["notes"] == ["--to Admins: unknown in OLD, resolved in NEW only"]


def test_an_asg_selects_its_members_of_either_version():
    # web2 joins WebServers in NEW, whose subnet rule denies port 22 to the ASG: web2 loses port 22. It is a
    # member in NEW only; `--to WebServers` is the traffic to WebServers of either version, so it is selected.
    deny_ssh = rule("ssh", 90, IN, DENY, dst=AsgSide((Ref("WebServers"),)), dports=ports(22))
    old = web_policy(subnet_rules=[deny_ssh] + ALLOW_IN_SUBNET)
    old = replace(old, nics=(replace(old.nics[0], nsg=None), old.nics[1]))
    web2 = old.nics[1]
    new = replace(old, nics=(old.nics[0], replace(web2, ip_configs=(replace(web2.ip_configs[0],
                                                                             asgs=(Ref("WebServers"),)),))))
    r = diff_policies(old, new, sources=["Internet"], destinations=["WebServers"])
    assert [(p.source.name, p.destination.name, g.kind) for p, g in r.closed] == [(INTERNET, "web2", CLOSED)]
    assert not r.opened and not any("only" in n for n in r.notes)  # WebServers is known in both
    assert diff_policies(new, old, destinations=["WebServers"]).opened  # and the member of OLD only, reversed


def test_outside_and_one_ip_configuration_are_kept_from_the_old_vocabulary(webservers, monkeypatch):
    old, new = webservers
    assert _pairs(run_cli(old, new, "--from", "outside", "--to", "web2", "--json", monkeypatch=monkeypatch)[1]) == [
        ("Internet", "web2", "22")]
    assert json.loads(run_cli(old, new, "--from", "web1", "--to", "outside", "--json",
                              monkeypatch=monkeypatch)[1])["pairs"] == []
    # outside hosts only: not web2, although its dynamic range holds addresses an outside host may have
    assert _pairs(run_cli(old, new, "--to", "outside", "--json", monkeypatch=monkeypatch)[1]) == []
    two = web_policy(subnet_rules=ALLOW_IN_SUBNET)
    nics = list(two.nics)
    nics[1] = replace(nics[1], ip_configs=nics[1].ip_configs + (IpConfig(ip_to_int("10.0.1.9")),))
    two = replace(two, nics=tuple(nics))
    after = replace(two, nsgs=(Nsg("sub", tuple(ALLOW_IN_SUBNET) + (rule("d", 90, IN, DENY, dports=ports(22)),)),
                               two.nsgs[1]))
    r = diff_policies(two, after, destinations=["web2#2"])
    assert {p.destination.name for p in r.pairs} == {"web2#2"}
    assert {p.destination.name for p in diff_policies(two, after, destinations=["web2"]).pairs} == {"web2", "web2#2"}


# The vocabulary the property draws from: every kind of query endpoint, and the two diff words.
_SPECS = ["any", "*", "Internet", "VirtualNetwork", "Storage", "AzureLoadBalancer", "asg0a", "asg0b", "vnet0/sub0",
          "vnet vnet0", "10.0.0.0/28", "10.0.0.96/27", "10.0.0.0/16", "203.0.113.0/24", "8.0.0.0/7", "168.63.129.16",
          "192.168.0.0/16", "10.0.0.4-10.0.0.200", "outside", "Internet, asg0a", "10.1.0.0/16, vnet0/sub0"]


def _selected(spec: str, rps, ip: int, key) -> bool:
    """Is the address ``ip`` (held by IP configuration ``key``) on the side ``spec`` names, read as a query
    endpoint in OLD or in NEW (nsgsolve.analyses.endpoints, the one meaning), or as the diff word ``outside``?"""
    from nsgsolve.lang.build import parse_query
    from nsgsolve.analyses.endpoints import resolve_side
    from nsgsolve.errors import DiagnosticBag, InputError

    for item in (t.strip() for t in spec.split(",")):
        if item == "outside":
            if key is None:
                return True
            continue
        for rp in rps:
            try:
                q = parse_query(f"can {item} reach any", rp.policy)
            except InputError:
                continue  # a NIC that NEW removed
            bag = DiagnosticBag()
            side = resolve_side(rp, q.sources, bag)
            if not bag.errors and side.contains(ip, key):
                return True
    return False


@settings(max_examples=int(os.environ.get("NSGSOLVE_DIFF_EXAMPLES", "120")) // 3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_from_and_to_select_exactly_the_traffic_the_query_endpoints_denote(data):
    old = data.draw(policies(max_rules=5))
    new = data.draw(mutated(old))
    rp_old, rp_new = resolve(old), resolve(new)
    specs = _SPECS + [n.name for n in old.nics] + ["asg0a", "asg0b"] * 4  # ASGs: "regroup" changes them
    src, dst = data.draw(st.sampled_from(specs)), data.draw(st.sampled_from(specs))
    full = diff_policies(rp_old, rp_new)
    part = diff_policies(rp_old, rp_new, sources=[src], destinations=[dst])
    assignment = dynamic_assignment(old)
    ev_old, ev_new = _evaluators(rp_old, rp_new, assignment)
    regions = {}
    for pair in part.pairs:
        regions.setdefault((pair.source.key, pair.destination.key), []).extend(pair.regions)

    def check(p: Packet) -> None:
        a, b = ev_old.evaluate(p), ev_new.evaluate(p)
        ends = (a.src_endpoint, a.dst_endpoint)
        if ends != (b.src_endpoint, b.dst_endpoint) or (ends[0] is not None and ends[0] == ends[1]
                                                        and ends[0] in assignment):
            return  # not compared at all (test_regions_are_exactly_where_decisions_differ)
        wanted = (a.decision is not b.decision and ends != (None, None)  # outside to outside: no NSG
                  and _selected(src, (rp_old, rp_new), p.src, ends[0])
                  and _selected(dst, (rp_old, rp_new), p.dst, ends[1]))
        inside = [g for g in regions.get(ends, []) if g.contains(p)]
        assert bool(inside) == wanted, (src, dst, p, ends, a.decision, b.decision)

    for pair in full.pairs + part.pairs:  # every changed region's witness, selected or not
        for g in pair.regions:
            check(g.witness)
    for p in _random_packets(data, old, new, assignment, 30):
        check(p)


NO_COMMON = """vnet v 10.0.0.0/16 {{
  subnet s 10.0.1.0/24 nsg n
}}
{nics}
nsg n {{
  inbound {{
    100 allow A tcp from Internet to any port 443
  }}
}}
"""


def test_cli_nothing_compared_is_no_clean_bill(tmp_path, monkeypatch):
    # No NIC is in both versions: no pair has an NSG of both on its path, so "no difference" would certify
    # nothing. The output says nothing was compared and why; every --fail-on kind fails (exit 1).
    old, new = tmp_path / "old.nsg", tmp_path / "new.nsg"
    old.write_text(NO_COMMON.format(nics="nic a in v/s ip 10.0.1.4"))
    new.write_text(NO_COMMON.format(nics="nic b in v/s ip 10.0.1.5"))
    status, out, _ = run_cli(str(old), str(new), monkeypatch=monkeypatch)
    assert status == 0
    assert "no difference" not in out
    assert "nothing compared: no NIC is in both versions" in out
    assert "only in OLD: a" in out and "only in NEW: b" in out
    for kind in ("any", "opened", "closed"):
        status, _, err = run_cli(str(old), str(new), "--fail-on", kind, monkeypatch=monkeypatch)
        assert status == 1 and f"--fail-on {kind}: failing because nothing was compared" in err
    d = json.loads(run_cli(str(old), str(new), "--json", monkeypatch=monkeypatch)[1])
    assert d["summary"]["pairs_compared"] == 0 and d["summary"]["nothing_compared"].startswith("no NIC")


def test_cli_nothing_compared_when_the_only_nic_moved(tmp_path, monkeypatch):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(arm("443")))
    new.write_text(json.dumps(arm("443", nic_ip="10.0.1.9")))  # a static NIC moved: no common address
    status, out, err = run_cli(str(old), str(new), "--fail-on", "opened", monkeypatch=monkeypatch)
    assert status == 1 and "readdressed: web1" in out and "nothing compared" in out and "--fail-on opened" in err


def test_cli_nothing_to_compare_without_changed_endpoints_passes(tmp_path, monkeypatch):
    # No NIC in either version and no subnet behind an NSG: no NSG decides any packet in either, so the
    # versions cannot differ.
    empty = tmp_path / "empty.nsg"
    empty.write_text(NO_COMMON.format(nics="").replace(" nsg n\n", "\n", 1))
    status, out, _ = run_cli(str(empty), str(empty), "--fail-on", "any", monkeypatch=monkeypatch)
    assert status == 0 and "nothing compared: neither version has a NIC" in out
    # A subnet behind an NSG with no NIC is a host of its range (docs/language.md): it is compared.
    guarded = tmp_path / "guarded.nsg"
    guarded.write_text(NO_COMMON.format(nics=""))
    status, out, _ = run_cli(str(guarded), str(guarded), "--fail-on", "any", monkeypatch=monkeypatch)
    assert status == 0 and "nothing compared" not in out and "no difference" in out
    # A selection that leaves only outside-to-outside traffic compares nothing either, and says so.
    one = tmp_path / "one.nsg"
    one.write_text(NO_COMMON.format(nics="nic a in v/s ip 10.0.1.4"))
    status, out, _ = run_cli(str(one), str(one), "--from", "10.9.0.0/16", "--to", "10.9.0.0/16", "--fail-on", "any",
                             monkeypatch=monkeypatch)
    assert status == 0 and "nothing compared: the --from/--to selection" in out and "no difference" not in out


# ---------------------------------------------------------------- the filter's building blocks

_FIELD_SETS = [
    IntervalSet([(0, 255)]), IntervalSet([(6, 6)]), IntervalSet([(6, 6), (17, 17)]), IntervalSet([(1, 1)]),
    IntervalSet(), ALL_PORTS, IntervalSet([(22, 22)]), IntervalSet([(80, 80), (443, 443)]),
    IntervalSet([(1000, 2000), (3000, 3000)]), ALL_IPS, IntervalSet([(10, 20), (40, 50)]),
    IntervalSet([(15, 15)]), IntervalSet([(21, 39)]), IntervalSet([(0, 9), (51, 60)]),
]
_boxes = st.builds(lambda fs: Box(*fs), st.lists(st.sampled_from(_FIELD_SETS), min_size=5, max_size=5))
_entries = st.lists(st.builds(lambda b, a: PathRule(b, a, "r", None, None), _boxes, st.sampled_from([ALLOW, DENY])),
                    max_size=12)


@settings(max_examples=200, deadline=None)
@given(_entries, _boxes)
def test_the_bounds_filter_keeps_exactly_the_entries_meeting_a_box(entries, box):
    hulls = [_hull(r.box) for r in entries]
    assert _meeting_entries(entries, box, hulls) == [i for i, r in enumerate(entries) if box_meets(r.box, box)]


@settings(max_examples=300, deadline=None)
@given(_entries, st.data())
def test_changed_entries_leave_a_common_subsequence(old, data):
    """Trimming the common head and tail before matching still leaves, outside the changed entries, two
    equal sequences of (box, access): what the filter's proof needs."""
    new = list(old)
    for _ in range(data.draw(st.integers(0, 3))):
        op = data.draw(st.sampled_from(["add", "delete", "flip"]))
        if op == "add":
            new.insert(data.draw(st.integers(0, len(new))), data.draw(_entries.filter(bool))[0])
        elif new:
            i = data.draw(st.integers(0, len(new) - 1))
            if op == "delete":
                del new[i]
            else:
                new[i] = PathRule(new[i].box, DENY if new[i].access is ALLOW else ALLOW, "r", None, None)
    co, cn = _changed_entries(old, new)
    rest_old = [(r.box, r.access) for i, r in enumerate(old) if i not in co]
    rest_new = [(r.box, r.access) for j, r in enumerate(new) if j not in cn]
    assert rest_old == rest_new
    if [(r.box, r.access) for r in old] == [(r.box, r.access) for r in new]:
        assert co == cn == []
