"""The reference evaluator against hand-worked cases from semantics.md, and against a naive formulation."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.errors import InputError
from nsgsolve.semantics.evaluate import Evaluator, Packet, evaluate
from nsgsolve.model import (
    Access, AnyAddress, Asg, AsgSide, Direction, IpConfig, Nic, Nsg, Policy, PortRange, PortSpec,
    Protocol, Ref, Rule, Subnet, SubnetRef, Subscription, TagSide, VNet,
)
from nsgsolve.semantics.resolve import IpcKey, resolve

from naive import naive_decision
from strategies import cidr, dynamic_assignment, packets, policies

ANY = PortSpec(None)


def ports(*ps: int) -> PortSpec:
    return PortSpec(tuple(PortRange(p, p) for p in ps))


def rule(name, prio, direction, access, proto=Protocol.TCP, src=None, dst=None, dports=ANY, sports=ANY) -> Rule:
    return Rule(name, prio, direction, access, proto, src or AnyAddress(), sports, dst or AnyAddress(), dports)


IN, OUT = Direction.INBOUND, Direction.OUTBOUND
ALLOW, DENY = Access.ALLOW, Access.DENY


def two_nic_policy(subnet_rules=(), nic_rules=(), subscription=None) -> Policy:
    """VNet 10.0.0.0/16, subnet web 10.0.1.0/24 with NSG 'sub', web1 (10.0.1.4, NSG 'nic', ASG WebServers),
    web2 (10.0.1.5, no NIC NSG)."""
    return Policy(
        vnets=(VNet("vnet", (cidr("10.0.0.0/16"),), (Subnet("web", cidr("10.0.1.0/24"), Ref("sub")),)),),
        nics=(
            Nic("web1", SubnetRef("vnet", "web"), (IpConfig(ip_to_int("10.0.1.4"), (Ref("WebServers"),)),), Ref("nic")),
            Nic("web2", SubnetRef("vnet", "web"), (IpConfig(ip_to_int("10.0.1.5")),)),
        ),
        asgs=(Asg("WebServers"),),
        nsgs=(Nsg("sub", tuple(subnet_rules)), Nsg("nic", tuple(nic_rules))),
        subscription=subscription,
    )


def tcp(src, dst, dport, sport=50000) -> Packet:
    return Packet.parse("tcp", src, sport, dst, dport)


def test_port_80_allowed_on_subnet_but_not_nic_is_denied():
    p = two_nic_policy(subnet_rules=[rule("web", 100, IN, ALLOW, dports=ports(80))])
    r = evaluate(resolve(p), tcp("203.0.113.7", "10.0.1.4", 80))
    assert r.decision is DENY
    assert [(s.nsg, s.attached_to, s.rule) for s in r.trace] == [
        ("sub", "subnet vnet/web", "web"), ("nic", "nic web1", "DenyAllInBound")]


def test_allowed_on_both_layers_is_allowed():
    allow80 = rule("web", 100, IN, ALLOW, dports=ports(80))
    r = evaluate(resolve(two_nic_policy([allow80], [allow80])), tcp("203.0.113.7", "10.0.1.4", 80))
    assert r.decision is ALLOW
    assert [s.rule for s in r.trace] == ["web", "web"]


def test_intra_subnet_traffic_passes_all_four_layers_in_azure_order():
    p = two_nic_policy(nic_rules=[rule("deny-out", 100, OUT, DENY, dports=ports(22))])
    r = evaluate(resolve(p), tcp("10.0.1.4", "10.0.1.5", 22))
    assert r.decision is DENY
    # outbound: NIC first, then subnet; inbound: subnet (web2 has no NIC NSG)
    assert [(s.attached_to, s.direction, s.rule) for s in r.trace] == [
        ("nic web1", OUT, "deny-out"), ("subnet vnet/web", OUT, "AllowVnetOutBound"),
        ("subnet vnet/web", IN, "AllowVnetInBound")]
    r2 = evaluate(resolve(p), tcp("10.0.1.5", "10.0.1.4", 22))
    assert r2.decision is ALLOW and len(r2.trace) == 3


def test_default_rules_decide_when_nothing_else_matches():
    rp = resolve(two_nic_policy())
    assert evaluate(rp, tcp("203.0.113.7", "10.0.1.4", 443)).trace[0].rule == "DenyAllInBound"
    out = evaluate(rp, tcp("10.0.1.4", "8.8.8.8", 443))
    assert out.decision is ALLOW and [s.rule for s in out.trace] == ["AllowInternetOutBound"] * 2
    lb = evaluate(rp, tcp("168.63.129.16", "10.0.1.4", 80))
    # 168.63.129.16 is in the VirtualNetwork tag, so AllowVnetInBound (65000) decides before 65001
    assert lb.decision is ALLOW and lb.trace[0].rule == "AllowVnetInBound"
    priv = evaluate(rp, tcp("10.0.1.4", "192.168.9.9", 443))
    assert priv.decision is DENY and priv.trace[0].rule == "DenyAllOutBound"


def test_lower_priority_number_wins_regardless_of_order_written():
    p = two_nic_policy(subnet_rules=[rule("allow", 200, IN, ALLOW), rule("deny", 100, IN, DENY)],
                       nic_rules=[rule("allow", 100, IN, ALLOW)])
    r = evaluate(resolve(p), tcp("203.0.113.7", "10.0.1.4", 80))
    assert r.decision is DENY and r.trace[0].rule == "deny" and r.trace[0].priority == 100


def test_asg_matches_only_member_nic_addresses():
    asg_rule = rule("to-web", 100, IN, ALLOW, dst=AsgSide((Ref("WebServers"),)), dports=ports(443))
    p = two_nic_policy([asg_rule], [asg_rule])
    rp = resolve(p)
    assert evaluate(rp, tcp("203.0.113.7", "10.0.1.4", 443)).decision is ALLOW
    r = evaluate(rp, tcp("203.0.113.7", "10.0.1.5", 443))  # web2 is not a member
    assert r.decision is DENY and r.trace[0].rule == "DenyAllInBound"


def test_rule_with_ports_matches_only_tcp_and_udp():
    p = two_nic_policy([rule("any-80", 100, IN, ALLOW, proto=Protocol.ANY, dports=ports(80))])
    rp = resolve(p)
    assert evaluate(rp, Packet.parse("udp", "203.0.113.7", 1, "10.0.1.5", 80)).decision is ALLOW
    icmp = evaluate(rp, Packet.parse("icmp", "203.0.113.7", None, "10.0.1.5", None))
    assert icmp.decision is DENY and icmp.packet.dport is None


def test_icmp_rule_with_ports_matches_nothing():
    p = two_nic_policy([rule("icmp-ports", 100, IN, ALLOW, proto=Protocol.ICMP, dports=ports(0))])
    icmp = evaluate(resolve(p), Packet.parse("icmp", "203.0.113.7", None, "10.0.1.5", None))
    assert icmp.trace[0].rule == "DenyAllInBound"


def test_any_protocol_matches_esp_and_ah():
    p = two_nic_policy([rule("all", 100, IN, ALLOW, proto=Protocol.ANY)])
    for proto in ("esp", "ah"):
        assert evaluate(resolve(p), Packet.parse(proto, "203.0.113.7", None, "10.0.1.5", None)).decision is ALLOW


def test_internet_tag_excludes_private_ranges_and_own_vnet():
    p = two_nic_policy([rule("from-internet", 100, IN, ALLOW, src=TagSide(Ref("Internet")))])
    rp = resolve(p)
    assert evaluate(rp, tcp("203.0.113.7", "10.0.1.5", 80)).trace[0].rule == "from-internet"
    assert evaluate(rp, tcp("172.16.0.1", "10.0.1.5", 80)).trace[0].rule == "DenyAllInBound"
    assert evaluate(rp, tcp("10.0.9.9", "10.0.1.5", 80)).trace[0].rule == "AllowVnetInBound"


def test_classic_spelling_and_case_of_tags():
    p = two_nic_policy([rule("classic", 100, IN, DENY, src=TagSide(Ref("VIRTUAL_NETWORK")))])
    assert evaluate(resolve(p), tcp("10.0.1.4", "10.0.1.5", 80)).trace[-1].rule == "classic"


def test_virtual_network_tag_includes_peered_vnets_and_onprem():
    base = two_nic_policy([rule("vnet-only", 100, IN, ALLOW, src=TagSide(Ref("VirtualNetwork"))),
                           rule("rest", 200, IN, DENY)])
    vnet = base.vnets[0]
    peered = VNet("vnet", vnet.address_spaces, vnet.subnets, (Ref("other"),), (cidr("192.168.0.0/16"),))
    other = VNet("other", (cidr("10.9.0.0/16"),))
    p = Policy((peered, other), base.nics, base.asgs, base.nsgs)
    rp = resolve(p)
    for src in ("10.9.1.1", "192.168.3.3", "168.63.129.16"):
        assert evaluate(rp, tcp(src, "10.0.1.5", 80)).trace[0].rule == "vnet-only", src
    assert evaluate(rp, tcp("10.10.0.1", "10.0.1.5", 80)).trace[0].rule == "rest"


def test_platform_blocks_outbound_smtp_to_internet_by_subscription():
    rp = resolve(two_nic_policy())
    r = evaluate(rp, tcp("10.0.1.5", "198.51.100.20", 25))
    assert r.decision is DENY and r.trace[-1].rule == "PlatformBlockOutboundSmtp" and r.trace[-1].nsg is None
    ea = resolve(two_nic_policy(subscription=Subscription.ENTERPRISE_AGREEMENT))
    assert evaluate(ea, tcp("10.0.1.5", "198.51.100.20", 25)).decision is ALLOW
    # not to the Internet: no platform block (private destinations are decided by the NSGs)
    assert all(s.nsg for s in evaluate(rp, tcp("10.0.1.5", "10.0.1.4", 25)).trace)


def test_host_services_bypass_nsg_unless_platform_tag_used():
    deny_all = rule("deny-all-out", 100, OUT, DENY, proto=Protocol.ANY)
    rp = resolve(two_nic_policy(nic_rules=[deny_all], subnet_rules=[deny_all]))
    dns = Packet.parse("udp", "10.0.1.4", 5000, "168.63.129.16", 53)
    r = evaluate(rp, dns)
    assert r.decision is ALLOW and r.trace[-1].rule == "AllowAzurePlatformDNS"
    assert evaluate(rp, tcp("10.0.1.4", "168.63.129.16", 443)).decision is DENY
    deny_dns = rule("deny-dns", 100, OUT, DENY, proto=Protocol.ANY, dst=TagSide(Ref("AzurePlatformDNS")))
    rp2 = resolve(two_nic_policy(nic_rules=[deny_dns]))
    r2 = evaluate(rp2, dns)
    assert r2.decision is DENY and r2.trace[0].rule == "deny-dns"


def test_unknown_service_tag_is_an_error_not_an_empty_set():
    p = two_nic_policy([rule("s", 100, IN, DENY, src=TagSide(Ref("Storag")))])
    with pytest.raises(InputError) as e:
        resolve(p)
    d = e.value.diagnostics[0]
    assert d.code == "E301" and "Storag" in d.message and "--service-tags" in d.hint


def test_external_to_external_meets_no_nsg():
    r = evaluate(resolve(two_nic_policy()), tcp("203.0.113.7", "8.8.8.8", 80))
    assert r.decision is ALLOW and r.trace == () and r.notes


def test_dynamic_nic_needs_an_assignment_and_then_matches_its_asg():
    base = two_nic_policy([rule("to-web", 100, IN, ALLOW, dst=AsgSide((Ref("WebServers"),)))])
    dyn = Nic("web3", SubnetRef("vnet", "web"), (IpConfig(None, (Ref("WebServers"),)),))
    p = Policy(base.vnets, base.nics + (dyn,), base.asgs, base.nsgs)
    rp = resolve(p)
    ev = Evaluator(rp, {IpcKey("web3"): ip_to_int("10.0.1.77")})
    assert ev.evaluate(tcp("203.0.113.7", "10.0.1.77", 80)).decision is ALLOW
    # without the assignment the address belongs to no NIC: no inbound layer applies
    assert Evaluator(rp).evaluate(tcp("203.0.113.7", "10.0.1.77", 80)).trace == ()


# ---------------------------------------------------------------- properties

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.data())
def test_evaluator_agrees_with_naive_formulation(data):
    policy = data.draw(policies())
    rp = resolve(policy)
    assignment = dynamic_assignment(policy)
    ev = Evaluator(rp, assignment)
    for _ in range(20):
        pkt = data.draw(packets(policy))
        assert ev.evaluate(pkt).decision is naive_decision(policy, pkt, assignment), pkt


@SETTINGS
@given(st.data())
def test_classifier_agrees_with_linear_first_match(data):
    policy = data.draw(policies(max_rules=12))
    rp = resolve(policy)
    assignment = dynamic_assignment(policy)
    fast, slow = Evaluator(rp, assignment, fast=True), Evaluator(rp, assignment, fast=False)
    for _ in range(20):
        pkt = data.draw(packets(policy))
        assert fast.evaluate(pkt) == slow.evaluate(pkt)
