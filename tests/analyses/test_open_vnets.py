"""A VNet whose address space is an unset parameter (model.OpenVNet; docs/import.md, "A VNet whose address
space is a parameter"): query and check place its subnets and NICs for every private value, and agree
with the reference evaluator on the policy with the values written in."""

from __future__ import annotations

import ipaddress
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.analyses.query import QueryEngine, Verdict
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.build import parse_query
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import IpcKey, bind_params, resolve
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.smt.z3util import mk_and

from corpus import CANDIDATES, CORPUS

NSG_ID = "[resourceId('Microsoft.Network/networkSecurityGroups', 'web-nsg')]"


def _rule(name, prio, src, dst, port="*", access="Allow"):
    return {"name": name, "properties": {
        "priority": prio, "direction": "Inbound", "access": access, "protocol": "Tcp",
        "sourceAddressPrefix": src, "sourcePortRange": "*", "destinationAddressPrefix": dst,
        "destinationPortRange": port}}


TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"space": {"type": "string"}, "web": {"type": "string"}},
    "resources": [
        {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "web-nsg",
         "properties": {"securityRules": [
             _rule("https", 100, "Internet", "*", "443"),
             _rule("deny-10-1", 110, "*", "10.1.0.0/16", "22", "Deny"),
             _rule("ssh-from-vnet", 120, "VirtualNetwork", "[parameters('web')]", "22"),
             _rule("ssh-192", 130, "*", "192.168.0.0/16", "22")]}},
        {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "hub",
         "properties": {"addressSpace": {"addressPrefixes": ["[parameters('space')]"]}, "subnets": [
             {"name": "web", "properties": {"addressPrefix": "[parameters('web')]",
                                            "networkSecurityGroup": {"id": NSG_ID}}},
             {"name": "app", "properties": {"addressPrefix": "[cidrSubnet(parameters('space'), 24, 2)]",
                                            "networkSecurityGroup": {"id": NSG_ID}}}]}},
    ],
}

# (space, web subnet) values, each web inside its space; private, as the parameter's domain is.
GRID = [("10.1.0.0/16", "10.1.0.0/24"), ("10.0.0.0/8", "10.1.2.0/24"), ("192.168.0.0/16", "192.168.4.0/22"),
        ("172.16.0.0/12", "172.20.0.0/16"), ("100.64.0.0/10", "100.64.0.0/29")]


@pytest.fixture
def policy(tmp_path: Path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(TEMPLATE, indent=1))
    return load_policy([p])


def _ask(policy, text: str):
    return QueryEngine(resolve(policy, symbolic_params=True, open_vnets=True)).ask(parse_query(text, policy))


def test_the_subnets_of_the_open_vnet_are_hosts_a_query_answers_about(policy):
    assert not policy.vnets and policy.open_vnets
    r = _ask(policy, "can Internet reach any port 443 tcp")
    assert r.verdict is Verdict.ALL
    r = _ask(policy, "can Internet reach any port 22 tcp")
    # Only where the space puts a host inside 192.168.0.0/16 (rule ssh-192): Internet is never VirtualNetwork.
    assert r.verdict is Verdict.SOME and r.allowed_witness is not None
    assert r.allowed_witness.packet.dst >> 16 == 0xC0A8
    r = _ask(policy, "can VirtualNetwork reach any port 22 tcp")
    assert r.verdict is Verdict.SOME and r.allowed_witness is not None and r.blocked_witness is not None
    # The witness replays in the policy with the values it names written in.
    values = dict(r.allowed_witness.params)
    assert "space" in values  # the witness says where the space put the host
    bound = resolve(bind_params(policy, {"web": values["space"], **values}))
    assert Evaluator(bound, dict(r.allowed_witness.assignment)).evaluate(r.allowed_witness.packet).allowed


def _packets(space: str, web: str) -> list[Packet]:
    net, sub = ipaddress.ip_network(space), ipaddress.ip_network(web)
    srcs = [int(net.network_address) + 9, int(ipaddress.ip_address("203.0.113.5")),
            int(ipaddress.ip_address("10.1.7.7")), int(ipaddress.ip_address("192.168.9.9")), 0xA8_3F_81_10]
    dsts = [int(sub.network_address) + 4, int(sub.broadcast_address) - 1]
    return [Packet(6, s, 50000, d, port) for s in srcs for d in dsts for port in (22, 443, 80)]


@pytest.mark.parametrize("space,web", GRID)
def test_z3_with_the_space_pinned_decides_as_the_evaluator(policy, space, web):
    _agree(policy, space, web, _packets(space, web))


@st.composite
def _values(draw):
    """A private space, a web subnet inside it (a /29 or larger), and packets to the web host's addresses."""
    base, n = draw(st.sampled_from([(0x0A000000, 8), (0xAC100000, 12), (0xC0A80000, 16), (0x64400000, 10)]))
    length = draw(st.integers(n, 28))
    space = ipaddress.ip_network((base + (draw(st.integers(0, (1 << (length - n)) - 1)) << (32 - length)), length))
    sub_len = draw(st.integers(length, 29))
    web = list(space.subnets(new_prefix=sub_len))[draw(st.integers(0, min(7, (1 << (sub_len - length)) - 1)))]
    usable = st.integers(int(web.network_address) + 4, int(web.broadcast_address) - 1)
    inside = st.integers(int(space.network_address), int(space.broadcast_address))
    src = st.one_of(st.integers(0, (1 << 32) - 1), inside)
    pkts = draw(st.lists(st.builds(Packet, st.just(6), src, st.just(50000), usable, st.sampled_from([22, 80, 443])),
                         min_size=1, max_size=4))
    return str(space), str(web), pkts


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=_values())
def test_z3_with_any_private_space_pinned_decides_as_the_evaluator(policy, case):
    _agree(policy, *case)


def _agree(policy, space: str, web: str, packets: list[Packet]) -> None:
    symbolic = resolve(policy, symbolic_params=True, open_vnets=True)
    enc = Encoding(symbolic)
    ps = PolicySolver(enc)
    decision = ps.full_decision()
    values = {"space": space, "web": web}
    pinned = enc.pin_params(values)
    bound = resolve(bind_params(policy, values))
    assert not bound.policy.open_vnets and bound.vnet_spaces["hub"]
    host = IpcKey("hub/web")
    for p in packets:
        assignment = {host: p.dst}
        # The app subnet's host may be anywhere usable in the space but at the web host's address.
        other = next(a for a in (int(bound.vnet_spaces["hub"].min()) + 5, p.dst + 1, p.dst - 1)
                     if a != p.dst and a in bound.ipcs[IpcKey("hub/app")].usable)
        assignment[IpcKey("hub/app")] = other
        fixed = mk_and([enc.is_packet(p), enc.is_assignment(assignment), pinned])
        allowed = ps.find(fixed, True, "t", decision) is not None
        blocked = ps.find(fixed, False, "t", decision) is not None
        assert allowed != blocked, (p, values)
        assert allowed == Evaluator(bound, assignment).evaluate(p).allowed, (p, values)


def test_no_answer_holds_for_every_grid_value(policy):
    """A 'none' answer is true for every value, an 'all' answer too (sampled on the grid)."""
    for text, port in (("can Internet reach any port 80 tcp", 80), ("can Internet reach any port 443 tcp", 443)):
        r = _ask(policy, text)
        assert r.verdict in (Verdict.ALL, Verdict.NONE)
        for space, web in GRID:
            bound = resolve(bind_params(policy, {"space": space, "web": web}))
            ev = Evaluator(bound, {IpcKey("hub/web"): _packets(space, web)[0].dst})
            got = ev.evaluate(Packet(6, 0xCB_00_71_05, 50000, _packets(space, web)[0].dst, port)).allowed
            assert got is (r.verdict is Verdict.ALL), (text, space, web)


def test_a_space_parameter_given_a_value_is_a_plain_vnet(tmp_path: Path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(TEMPLATE, indent=1))
    policy = load_policy([p], params={"space": "10.9.0.0/16", "web": "10.9.1.0/24"})
    assert not policy.open_vnets and [v.name for v in policy.vnets] == ["hub"]


def test_other_commands_see_the_nsg_unattached(policy):
    rp = resolve(policy)  # not symbolic: verify, diff, show, ...
    assert not rp.ipcs and not rp.open_spaces
    rp = resolve(policy, symbolic_params=True)  # lint: concrete layers only
    assert not rp.ipcs and not rp.open_spaces


CORPUS_OPEN = ["ase-azfirewall-vnet-nested.json", "sqlmi-managed-instance-vnet-nested.json"]


@pytest.mark.parametrize("name", CORPUS_OPEN)
def test_corpus_templates_with_an_unset_vnet_space_answer(name):
    if CORPUS is None:
        pytest.skip(f"no corpus: looked in {', '.join(str(c) for c in CANDIDATES)}")
    from nsgsolve.semantics.servicetags import ServiceTagDb

    tags = next((CORPUS / "servicetags").glob("ServiceTags_Public_*.json"))
    policy = load_policy([CORPUS / "arm" / name])
    rp = resolve(policy, ServiceTagDb.from_json_file(tags), symbolic_params=True, open_vnets=True)
    r = QueryEngine(rp).ask(parse_query("can Internet reach any", policy))
    assert r.verdict in (Verdict.SOME, Verdict.ALL, Verdict.NONE)
    assert any(i.space is not None for i in rp.ipcs.values())


def test_grid_is_inside_the_parameter_domain():
    blocks = [ipaddress.ip_network(b) for b in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]
    for space, web in itertools.chain(GRID):
        assert any(ipaddress.ip_network(space).subnet_of(b) for b in blocks)
        assert ipaddress.ip_network(web).subnet_of(ipaddress.ip_network(space))


EXISTING = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"vnetName": {"type": "string"}},
    "variables": {
        "subnetId": "[resourceId('Microsoft.Network/virtualNetworks/subnets', parameters('vnetName'), 'db')]"},
    "resources": [
        {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "db-nsg",
         "properties": {"securityRules": [
             _rule("in-subnet", 100, "[reference(variables('subnetId')).addressPrefix]", "*", "5432"),
             _rule("vnet-ssh", 110, "VirtualNetwork", "*", "22"),
             _rule("web", 120, "Internet", "*", "443")]}},
        # As vnet-nsg-for-redis.json: a nested deployment updates the existing subnet (reference() of it at
        # the top level is the subnet before the update).
        {"type": "Microsoft.Resources/deployments", "apiVersion": "2020-06-01", "name": "associate",
         "properties": {"mode": "Incremental", "template": {
             "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
             "contentVersion": "1.0.0.0", "resources": [
                 {"type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": "2023-04-01",
                  "name": "[concat(parameters('vnetName'), '/db')]",
                  "properties": {"addressPrefix": "[reference(variables('subnetId')).addressPrefix]",
                                 "networkSecurityGroup": {
                                     "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'db-nsg')]"}}}]}}},
    ],
}
SPACE, SUBNET, PEERED = "vnet:vnetName", "vnet:vnetName/db", "vnet:vnetName:peered"


@pytest.fixture
def existing(tmp_path: Path):
    p = tmp_path / "e.json"
    p.write_text(json.dumps(EXISTING, indent=1))
    warnings: list = []
    policy = load_policy([p], warnings=warnings)
    return policy, warnings


def test_a_subnet_of_a_vnet_not_in_the_inputs_is_placed_for_every_space(existing):
    policy, warnings = existing
    w606 = [w for w in warnings if w.code == "W606"]
    assert len(w606) == 1 and w606[0].span.line > 0 and "vnetName/db" in w606[0].message
    assert "az network vnet show" in w606[0].hint
    assert [(o.param, o.peers_param, [(s.name, s.param) for s in o.subnets]) for o in policy.open_vnets] == \
        [(SPACE, PEERED, [("db", SUBNET)])]
    # The rule reading the subnet's prefix is that same variable, not a value left open.
    rule = policy.nsgs[0].rules[0]
    assert rule.source.tag.name == "?param:" + SUBNET
    assert _ask(policy, "can Internet reach any port 5432 tcp").verdict is Verdict.NONE
    assert _ask(policy, "can Internet reach any port 22 tcp").verdict is Verdict.NONE  # peered space is private
    assert _ask(policy, "can Internet reach any port 443 tcp").verdict is Verdict.ALL
    r = _ask(policy, "can 10.0.0.0/8 reach any port 22 tcp")
    assert r.verdict is Verdict.SOME
    assert r.allowed_witness.params == () or "[with the " in str(r.allowed_witness)


@pytest.mark.parametrize("space,subnet,peered", [
    ("10.0.0.0/16", "10.0.1.0/24", "192.168.0.0/16"), ("172.16.0.0/12", "172.16.0.0/12", "10.9.9.0/24"),
    ("192.168.0.0/16", "192.168.100.0/29", "100.64.0.0/10")])
def test_existing_vnet_z3_pinned_decides_as_the_evaluator(existing, space, subnet, peered):
    policy, _ = existing
    symbolic = resolve(policy, symbolic_params=True, open_vnets=True)
    enc = Encoding(symbolic)
    ps = PolicySolver(enc)
    decision = ps.full_decision()
    values = {SPACE: space, SUBNET: subnet, PEERED: peered}
    pinned = enc.pin_params(values)
    bound = resolve(bind_params(policy, values))
    host = IpcKey("vnetName/db")
    assert host in bound.ipcs
    for p in _packets(space, subnet):
        assignment = {host: p.dst}
        fixed = mk_and([enc.is_packet(p), enc.is_assignment(assignment), pinned])
        allowed = ps.find(fixed, True, "t", decision) is not None
        blocked = ps.find(fixed, False, "t", decision) is not None
        assert allowed != blocked, (p, values)
        assert allowed == Evaluator(bound, assignment).evaluate(p).allowed, (p, values)


@pytest.mark.parametrize("name,code", [
    ("vnet-nsg-for-redis.json", None), ("darktrace-vsensor-standalone.json", None),
    ("darktrace-vsensor-autoscaling.json", None), ("chef-automate-ha-nsg-nested.json", "E804"),
    ("solace-security-shared-resources-nested.json", "E804"), ("sas-viya-2021.json", None)])
def test_corpus_templates_answer_or_say_what_is_missing_never_e802(name, code):
    if CORPUS is None:
        pytest.skip(f"no corpus: looked in {', '.join(str(c) for c in CANDIDATES)}")
    from nsgsolve.errors import InputError
    from nsgsolve.semantics.servicetags import ServiceTagDb

    tags = next((CORPUS / "servicetags").glob("ServiceTags_Public_*.json"))
    policy = load_policy([CORPUS / "arm" / name])
    try:
        rp = resolve(policy, ServiceTagDb.from_json_file(tags), symbolic_params=True, open_vnets=True)
        r = QueryEngine(rp).ask(parse_query("can Internet reach any", policy))
    except InputError as e:
        d = e.diagnostics[0]
        assert d.code == code and d.span.line > 0 and d.span.file.endswith(name), d
        return
    assert code is None and r.verdict in (Verdict.SOME, Verdict.ALL, Verdict.NONE)


def test_endpoints_name_the_open_vnet_and_its_subnets(policy):
    r = _ask(policy, "can Internet reach subnet hub/web port 443 tcp")
    assert r.verdict is Verdict.ALL
    r = _ask(policy, "can Internet reach vnet hub port 443 tcp")
    assert r.verdict is Verdict.ALL
    # VirtualNetwork as a source holds the hosts of the open VNet, whatever the value.
    r = _ask(policy, "can VirtualNetwork reach subnet hub/app port 22 tcp")
    assert r.allowed_witness is not None


def test_an_unknown_subnet_of_the_open_vnet_is_still_a_located_error(policy):
    from nsgsolve.errors import InputError

    with pytest.raises(InputError) as e:
        _ask(policy, "can Internet reach subnet hub/nope port 443 tcp")
    d = e.value.diagnostics[0]
    assert d.code == "E201" and d.span.line == 1 and d.span.column > 1


def test_a_bad_value_for_the_space_is_a_located_error(tmp_path: Path):
    from nsgsolve.errors import InputError

    p = tmp_path / "t.json"
    p.write_text(json.dumps(TEMPLATE, indent=1))
    with pytest.raises(InputError) as e:
        load_policy([p], params={"space": "notacidr"})
    d = e.value.diagnostics[0]
    assert d.code == "E619" and d.span.line > 0 and "notacidr" in d.message


def test_assert_some_from_virtual_network_is_not_passed_on_a_private_block_outside_the_space(tmp_path):
    """VirtualNetwork as an endpoint spans every private block while the VNet's space is unset (a superset:
    sound for no/all/only). For `some` that superset could pass on a packet from outside the real space: here
    only 10.5.0.0/16 is allowed, and with the space 192.168.0.0/16 no VirtualNetwork host reaches port 22."""
    import dataclasses

    from nsgsolve.analyses.contracts import check_policy
    from nsgsolve.analyses.results import Status
    from nsgsolve.model import Assertion, AssertionKind

    template = json.loads(json.dumps(TEMPLATE))
    template["resources"][0]["properties"]["securityRules"] = [
        _rule("from-10-5", 100, "10.5.0.0/16", "*", "22"),
        _rule("no-vnet-ssh", 110, "VirtualNetwork", "*", "22", "Deny")]
    p = tmp_path / "t.json"
    p.write_text(json.dumps(template))
    policy = load_policy([p])

    def check(text: str, kind: AssertionKind = AssertionKind.SOME):
        a = Assertion(kind, parse_query(f"can {text}", policy), name="a", text=text)
        (r,) = check_policy(dataclasses.replace(policy, assertions=(a,)),
                            resolve(policy, symbolic_params=True, open_vnets=True))
        return r

    r = check("VirtualNetwork reach any port 22 tcp")
    assert r.verdict is Status.UNKNOWN and "VirtualNetwork" in r.summary and "--param" in r.reason, r
    # Pinned to 192.168.0.0/16, every VirtualNetwork source meets no-vnet-ssh first (from-10-5 is outside the
    # space): the claim fails for that value, so the symbolic answer must not have said pass.
    from nsgsolve.model import Access, Direction
    from nsgsolve.semantics.evaluate import first_match

    pinned = resolve(bind_params(policy, {"space": "192.168.0.0/16", "web": "192.168.1.0/24"}))
    rules = pinned.nsg("web-nsg", "hub").rules(Direction.INBOUND)
    for src in ("192.168.0.1", "192.168.200.9", "168.63.129.16"):
        ssh = Packet(6, int(ipaddress.ip_address(src)), 1000, int(ipaddress.ip_address("192.168.1.4")), 22)
        assert first_match(rules, ssh, None, None).access is Access.DENY
    # The other kinds keep their answers over the superset, and `some` without VirtualNetwork still passes.
    assert check("VirtualNetwork reach any port 22 tcp", AssertionKind.ALL).verdict is Status.FAIL
    assert check("10.5.0.0/16 reach any port 22 tcp").verdict is Status.PASS
