"""validate() on models built directly, the way the ARM/az importers build them."""

from __future__ import annotations

from dataclasses import replace

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.model import (
    Access, AnyAddress, Asg, AsgSide, Cidr, Direction, IpConfig, NetworkDefine, NetworkRef, Nic, Nsg, Policy,
    PortRange, PortSpec, PortsDefine, PortsRef, PrefixSide, Protocol, Ref, Rule, Span, Subnet, SubnetRef, VNet,
)
from nsgsolve.validate import validate

S = Span("t.json", 7, 3)


def cidr(text: str) -> Cidr:
    net, _, length = text.partition("/")
    return Cidr(ip_to_int(net), int(length or 32), S)


def rule(name="r", prio=100, src=None, dst=None, proto=Protocol.TCP, dports=None, desc="", direction=Direction.INBOUND):
    return Rule(name, prio, direction, Access.ALLOW, proto, src or AnyAddress(), PortSpec(None),
                dst or AnyAddress(), dports or PortSpec(None), desc, S)


def base(*rules: Rule, **kw) -> Policy:
    vnet = VNet("v", (cidr("10.0.0.0/16"),), (Subnet("s", cidr("10.0.1.0/24"), Ref("n", S), S),), span=S)
    nic = Nic("nic1", SubnetRef("v", "s", S), (IpConfig(ip_to_int("10.0.1.4"), (Ref("A", S),), span=S),), span=S)
    return Policy(vnets=(vnet,), nics=(nic,), asgs=(Asg("A", S),), nsgs=(Nsg("n", tuple(rules), S),), **kw)


def codes(p: Policy) -> list[str]:
    return [d.code for d in validate(p)]


def test_clean_model_has_no_findings():
    assert validate(base(rule())) == []


def test_host_bits_from_an_importer_are_reported_with_the_network():
    p = base(rule(src=PrefixSide((Cidr(ip_to_int("10.0.1.5"), 24, S),), S)))
    (d,) = validate(p)
    assert d.code == "E405" and "10.0.1.0/24" in d.hint and d.span == S


def test_unknown_nsg_association():
    p = base(rule())
    p = replace(p, nsgs=(replace(p.nsgs[0], name="other"),))
    (d,) = validate(p)
    assert d.code == "E207" and "'n'" in d.message


def test_asg_limits_and_references():
    many = AsgSide(tuple(Ref(f"A{i}", S) for i in range(11)), S)
    found = codes(base(rule(dst=many)))
    assert found.count("E407") == 1 and found.count("E205") == 11


def test_prefix_limit_counts_through_defines_once():
    big = NetworkDefine("BIG", tuple(cidr(f"10.{i // 256}.{i % 256}.0/24") for i in range(3000)), S)
    side = PrefixSide((NetworkRef(Ref("BIG", S)), NetworkRef(Ref("BIG", S))), S)
    p = replace(base(rule(src=side)), networks=(big,))
    (d,) = validate(p)
    assert d.code == "E411" and "6000" in d.message


def test_rule_count_name_and_description_limits():
    rules = tuple(rule(f"r{i}", 100 + i) for i in range(1001))
    assert codes(base(*rules)) == ["E410"]
    assert codes(base(rule("x" * 81))) == ["E409"]
    assert codes(base(rule(desc="d" * 141))) == ["E408"]
    nsg_long = replace(base(rule()), nsgs=(Nsg("n" * 81, (), S),))
    assert "E409" in codes(nsg_long)


def test_priorities_range_and_duplicates_per_direction():
    assert codes(base(rule("a", 99), rule("b", 4097))) == ["E401", "E401"]
    assert codes(base(rule("a", 100), rule("b", 100))) == ["E402"]
    # The same priority in the other direction is fine.
    assert codes(base(rule("a", 100), rule("b", 100, direction=Direction.OUTBOUND))) == []


def test_ports_and_port_defines():
    bad = PortSpec((PortRange(90, 80, S), PortRange(0, 70000, S), PortsRef(Ref("NOPE", S))), S)
    assert codes(base(rule(dports=bad))) == ["E403", "E403", "E206"]
    loop = (PortsDefine("A", (PortsRef(Ref("B", S)),), S), PortsDefine("B", (PortsRef(Ref("A", S)),), S))
    assert codes(replace(base(rule()), ports=loop)) == ["E206"]


def test_icmp_with_ports_warns():
    (d,) = validate(base(rule(proto=Protocol.ESP, dports=PortSpec((PortRange(1, 1, S),), S))))
    assert (d.code, d.severity) == ("W401", "warning")


def test_asgs_per_ipconfig_and_per_nsg():
    p = base(rule())
    nic = p.nics[0]
    many = replace(nic, ip_configs=(replace(nic.ip_configs[0], asgs=tuple(Ref(f"A{i}", S) for i in range(21))),))
    p2 = replace(p, nics=(many,), asgs=tuple(Asg(f"A{i}", S) for i in range(21)) + (Asg("A", S),))
    assert codes(p2) == ["E415"]
    asg_rules = tuple(rule(f"r{i}", 100 + i, dst=AsgSide((Ref(f"G{i}", S),), S)) for i in range(101))
    p3 = replace(base(*asg_rules), asgs=(Asg("A", S),) + tuple(Asg(f"G{i}", S) for i in range(101)))
    assert codes(p3) == ["E416"]


def test_duplicate_ip_across_vnets_is_a_warning():
    p = base(rule())
    v2 = VNet("w", (cidr("10.0.0.0/16"),), (Subnet("s", cidr("10.0.1.0/24"), None, S),), span=S)
    n2 = Nic("nic2", SubnetRef("w", "s", S), (IpConfig(ip_to_int("10.0.1.4"), span=S),), span=S)
    diags = validate(replace(p, vnets=p.vnets + (v2,), nics=p.nics + (n2,)))
    assert [(d.code, d.severity) for d in diags] == [("W501", "warning")]


def test_subnet_overlap_is_found_by_sorting_not_pairs():
    subnets = tuple(Subnet(f"s{i}", cidr(f"10.0.{i}.0/24"), None, S) for i in range(256))
    overlapping = subnets + (Subnet("wide", cidr("10.0.128.0/17"), None, S),)
    vnet = VNet("v", (cidr("10.0.0.0/16"),), overlapping, span=S)
    diags = validate(Policy(vnets=(vnet,)))
    assert {d.code for d in diags} == {"E507"} and len(diags) == 128
