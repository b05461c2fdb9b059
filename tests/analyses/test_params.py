"""Unset template parameters as variables (docs/import.md, "Unset parameters").

The reference evaluator decides a policy with the values written in (``bind_params``); the Z3 encoding with
the parameter variables pinned to the same values must decide every packet the same way. On top of that:
a query's allowed witness exists when some value lets a packet through and names it, an assertion passes
only when it holds for every value, and a parameter the template restricts takes only its allowed values.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.analyses.contracts import check_policy
from nsgsolve.analyses.query import QueryEngine, Verdict
from nsgsolve.errors import InputError
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.build import parse_policy, parse_query
from nsgsolve.lang.printer import print_policy
from nsgsolve.model import ParamDecl, PortsRef, PortSpec, Ref, TagSide, param_name
from nsgsolve.analyses.results import Status
from nsgsolve.semantics.evaluate import Evaluator
from nsgsolve.semantics.resolve import bind_params, resolve
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.smt.z3util import mk_and

from strategies import dynamic_assignment, packets, policies

ADDRESS_VALUES = ["*", "0.0.0.0/0", "10.0.0.0/8", "10.0.0.4/32", "10.1.0.0/16", "203.0.113.0/24", "10.0.1.0/24"]
PORT_VALUES = ["*", "22", "80", "443", "1000-2000", "0-65535", "25"]
CHOICES = ("10.0.0.0/8", "Internet", "VirtualNetwork", "*")


@st.composite
def parametrised(draw):
    """A random policy with some rule sides and port lists replaced by parameters, and values for them."""
    policy = draw(policies(max_rules=5))
    restricted = draw(st.booleans())
    nsgs = []
    for n in policy.nsgs:
        rules = []
        for r in n.rules:
            if draw(st.integers(0, 2)) == 0:
                r = dataclasses.replace(r, source=TagSide(Ref(param_name("src"))))
            if draw(st.integers(0, 3)) == 0:
                r = dataclasses.replace(r, destination=TagSide(Ref(param_name("dst"))))
            if draw(st.integers(0, 2)) == 0:
                r = dataclasses.replace(r, destination_ports=PortSpec((PortsRef(Ref(param_name("port"))),)))
            rules.append(r)
        nsgs.append(dataclasses.replace(n, rules=tuple(rules)))
    decls = (ParamDecl("dst", CHOICES),) if restricted else ()
    policy = dataclasses.replace(policy, nsgs=tuple(nsgs), params=decls)
    values = {"src": draw(st.sampled_from(ADDRESS_VALUES)), "port": draw(st.sampled_from(PORT_VALUES)),
              "dst": draw(st.sampled_from(CHOICES if restricted else ADDRESS_VALUES))}
    pkts = draw(st.lists(packets(policy), min_size=1, max_size=6))
    return policy, values, dynamic_assignment(policy), pkts


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parametrised())
def test_z3_with_pinned_parameters_decides_as_the_evaluator_on_the_bound_policy(case):
    policy, values, assignment, pkts = case
    symbolic = resolve(policy, symbolic_params=True)
    # A subnet behind an NSG with no NIC stands for a dynamic host: pin it too (to its last usable address).
    taken = set(assignment.values()) | set(symbolic.static_ip_index)
    for k, info in symbolic.ipcs.items():
        if info.implied and info.usable:
            free = [hi for _, hi in info.usable if hi not in taken]
            if free:
                assignment[k] = free[0]
                taken.add(free[0])
    enc = Encoding(symbolic)
    ps = PolicySolver(enc)
    decision = ps.full_decision()  # builds every rule term, so every parameter has its variables
    pinned = enc.pin_params(values)
    ev = Evaluator(resolve(bind_params(policy, values)), assignment)
    for p in pkts:
        fixed = mk_and([enc.is_packet(p), enc.is_assignment(assignment), pinned])
        allowed = ps.find(fixed, True, "t", decision) is not None
        blocked = ps.find(fixed, False, "t", decision) is not None
        assert allowed != blocked, (p, values)
        assert allowed == ev.evaluate(p).allowed, (p, values)


NSG_ID = "[resourceId('Microsoft.Network/networkSecurityGroups', concat(parameters('env'), '-nsg'))]"
TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {
        "allowedSource": {"type": "string"},
        "mgmtPort": {"type": "string", "allowedValues": ["22", "3389"]},
        "env": {"type": "string"},
    },
    "resources": [
        {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01",
         "name": "[concat(parameters('env'), '-nsg')]",
         "properties": {"securityRules": [
             {"name": "allow-mgmt", "properties": {
                 "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                 "sourceAddressPrefix": "[parameters('allowedSource')]", "sourcePortRange": "*",
                 "destinationAddressPrefix": "*", "destinationPortRange": "[parameters('mgmtPort')]"}},
             {"name": "deny-10", "properties": {
                 "priority": 200, "direction": "Inbound", "access": "Deny", "protocol": "*",
                 "sourceAddressPrefix": "10.0.0.0/8", "sourcePortRange": "*",
                 "destinationAddressPrefix": "*", "destinationPortRange": "*"}}]}},
        {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "vnet",
         "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [
             {"name": "web", "properties": {"addressPrefix": "10.1.0.0/24", "networkSecurityGroup": {"id": NSG_ID}}}]}},
        {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": "web-0",
         "properties": {"ipConfigurations": [{"name": "ipc", "properties": {
             "privateIPAllocationMethod": "Static", "privateIPAddress": "10.1.0.4",
             "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'web')]"}}}]}},
    ],
}


@pytest.fixture
def template(tmp_path: Path) -> Path:
    p = tmp_path / "t.json"
    p.write_text(json.dumps(TEMPLATE, indent=1))
    return p


def test_import_keeps_a_bare_parameter_as_a_variable_with_its_allowed_values(template: Path):
    warnings: list = []
    policy = load_policy([template], warnings=warnings)
    assert policy.params == (ParamDecl("allowedSource", (), policy.params[0].span), ParamDecl(
        "mgmtPort", ("22", "3389"), policy.params[1].span))
    rule = policy.nsgs[0].rules[0]
    assert rule.source == TagSide(Ref("?param:allowedSource", rule.source.span), rule.source.span)
    w601 = {d.message.split("'")[1]: d.message for d in warnings if d.code == "W601"}
    assert "symbolic" in w601["allowedSource"] and "every value" in w601["allowedSource"]
    assert "(22, 3389)" in w601["mgmtPort"]
    assert policy.params[0].span.line == 5  # the parameter's declaration


def _ask(policy, text: str):
    engine = QueryEngine(resolve(policy, symbolic_params=True))
    return engine.ask(parse_query(text, policy))


def test_query_is_yes_when_some_value_lets_a_packet_through_and_names_the_value(template: Path):
    policy = load_policy([template])
    r = _ask(policy, "can Internet reach web-0 port 22")
    assert r.allowed_witness is not None
    params = dict(r.allowed_witness.params)
    assert params["mgmtPort"] == "22" and "allowedSource" in params
    # The witness holds: the evaluator allows it in the policy with those values written in.
    bound = resolve(bind_params(policy, params))
    assert Evaluator(bound).evaluate(r.allowed_witness.packet).allowed
    assert "with parameters('allowedSource') = " in str(r.allowed_witness)


def test_allowed_values_restrict_the_parameter(template: Path):
    policy = load_policy([template])
    # mgmtPort can only be 22 or 3389: no value opens port 80 (the default rules deny Internet).
    r = _ask(policy, "can Internet reach web-0 port 80")
    assert r.verdict is Verdict.NONE and r.allowed_witness is None
    # A blocked witness whose decision no value changes names no parameter.
    assert r.blocked_witness is not None and r.blocked_witness.params == ()


def test_a_deny_contract_passes_only_for_every_value(template: Path):
    policy = load_policy([template])
    text = print_policy(policy) + "\n".join([
        "assert ssh: no Internet -> web-0 port 22",
        "assert http: no Internet -> web-0 port 80",
        "assert some-mgmt: some Internet -> web-0 port 22, 3389",
    ]) + "\n"
    p2 = parse_policy(text, "t.nsg")
    results = {r.name: r for r in check_policy(p2, resolve(p2, symbolic_params=True))}
    assert results["ssh"].verdict is Status.FAIL
    assert results["ssh"].params["mgmtPort"] == "22" and "allowedSource" in results["ssh"].params
    assert "with parameters('allowedSource') = " in results["ssh"].summary
    assert results["ssh"].to_dict()["witness"]["parameters"] == results["ssh"].params
    assert results["http"].verdict is Status.PASS
    # allowedSource may be one address nobody on the Internet has: then nothing of it is allowed.
    assert results["some-mgmt"].verdict is Status.FAIL


def test_the_param_statement_round_trips(template: Path):
    policy = load_policy([template])
    text = print_policy(policy)
    assert 'param mgmtPort in "22", "3389"' in text and "param allowedSource" in text
    again = parse_policy(text, "t.nsg")
    assert [(d.name, d.allowed) for d in again.params] == [(d.name, d.allowed) for d in policy.params]
    # The import's notes are comments (not read back); everything else prints the same.
    assert print_policy(again) == "\n".join(line for line in text.split("\n") if not line.strip().startswith("#"))


def test_a_parameter_declared_twice_is_an_error():
    with pytest.raises(InputError) as e:
        parse_policy('param a\nparam a in "22"\n', "t.nsg")
    assert e.value.diagnostics[0].code == "E307"


def test_an_allowed_value_that_is_no_address_is_located_error():
    text = 'param src in "not an address!"\nnsg n {\n inbound {\n 100 allow r tcp from `?param:src` to any\n }\n}\n'
    policy = parse_policy(text, "t.nsg")
    with pytest.raises(InputError) as e:
        resolve(policy, symbolic_params=True)
    assert e.value.diagnostics[0].code == "E306"


def test_exact_regions_need_the_value(template: Path):
    policy = load_policy([template])
    engine = QueryEngine(resolve(policy, symbolic_params=True))
    with pytest.raises(InputError) as e:
        engine.ask(parse_query("can Internet reach web-0 port 22", policy), exact=True)
    assert e.value.diagnostics[0].code == "E305" and "allowedSource" in e.value.diagnostics[0].message


def test_without_symbolic_params_the_nsg_stays_open(template: Path):
    policy = load_policy([template])
    rp = resolve(policy)
    assert "env-nsg" in rp.open_nsgs


LINT_TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"src": {"type": "string"}, "port": {"type": "string"}},
    "resources": [{"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "nsg",
                   "properties": {"securityRules": [
                       {"name": n, "properties": {"priority": p, "direction": d, "access": a, "protocol": "Tcp",
                                                  "sourceAddressPrefix": s, "sourcePortRange": "*",
                                                  "destinationAddressPrefix": t, "destinationPortRange": port}}
                       for n, p, d, a, s, t, port in [
                           ("deny-all-in", 100, "Inbound", "Deny", "*", "*", "*"),
                           ("allow-param", 200, "Inbound", "Allow", "[parameters('src')]", "*", "22"),
                           ("allow-port", 100, "Outbound", "Allow", "*", "*", "[parameters('port')]"),
                           ("allow-443", 200, "Outbound", "Allow", "*", "*", "443"),
                           ("deny-src", 300, "Outbound", "Deny", "*", "[parameters('src')]", "*"),
                           ("allow-wide", 100, "Inbound", "Allow", "*", "*", "*"),
                       ] if n != "allow-wide"]}}],
}


def _lint(tmp_path: Path, template: dict) -> list:
    from nsgsolve.analyses.lint import lint

    p = tmp_path / "l.json"
    p.write_text(json.dumps(template))
    return lint(resolve(load_policy([p]), symbolic_params=True))


def test_lint_reports_a_rule_shadowed_for_every_value_and_says_so(tmp_path: Path):
    found = _lint(tmp_path, LINT_TEMPLATE)
    shadowed = [f for f in found if f.rule == "allow-param"]
    assert [f.code for f in shadowed] == ["NSG001"] and shadowed[0].severity == "error"
    assert "for every value of parameters('src')" in shadowed[0].message
    assert shadowed[0].witness is not None and dict(shadowed[0].witness.params).keys() == {"src"}


def test_lint_says_nothing_of_a_rule_some_value_makes_live(tmp_path: Path):
    # allow-443 is shadowed when port is 443 or *, not otherwise: never call it dead.
    # deny-src decides traffic for most values of src.
    found = _lint(tmp_path, LINT_TEMPLATE)
    assert not [f for f in found if f.rule in ("allow-443", "deny-src", "allow-port")]


def test_lint_redundancy_for_every_value(tmp_path: Path):
    t = json.loads(json.dumps(LINT_TEMPLATE))
    rules = t["resources"][0]["properties"]["securityRules"]
    # A Deny from the parameter's addresses just above the default DenyAllInBound changes nothing... except
    # for VirtualNetwork and AzureLoadBalancer sources the defaults allow: not redundant for every value.
    # A deny of port 22 from the parameter after a deny of everything inbound on 22 is shadowed for every value.
    rules[:] = [r for r in rules if r["properties"]["direction"] == "Outbound"]
    rules.append({"name": "deny-22", "properties": {
        "priority": 100, "direction": "Inbound", "access": "Deny", "protocol": "Tcp", "sourceAddressPrefix": "*",
        "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22"}})
    rules.append({"name": "deny-param-22", "properties": {
        "priority": 200, "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
        "sourceAddressPrefix": "[parameters('src')]", "sourcePortRange": "*", "destinationAddressPrefix": "*",
        "destinationPortRange": "22"}})
    # Outbound: a deny of everything to the parameter's addresses at the end is redundant only if the default
    # rules deny it too, which they do not for VirtualNetwork and Internet: not for every value.
    found = {f.rule: f for f in _lint(tmp_path, t)}
    assert found["deny-param-22"].code == "NSG001" and found["deny-param-22"].severity == "warning"
    assert "deny-src" not in found


def test_lint_redundant_for_every_value(tmp_path: Path):
    t = json.loads(json.dumps(LINT_TEMPLATE))
    rules = t["resources"][0]["properties"]["securityRules"]
    rules[:] = [{"name": n, "properties": {
        "priority": p, "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": s,
        "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22"}}
        for n, p, s in [("allow-param-22", 200, "[parameters('src')]"), ("allow-all-22", 300, "*")]]
    found = {f.rule: f for f in _lint(tmp_path, t)}
    assert found["allow-param-22"].code == "NSG002"
    assert "redundant for every value of parameters('src')" in found["allow-param-22"].message
    assert "allow-all-22" not in found  # it decides what the parameter's value does not cover


def test_one_parameter_as_addresses_and_ports_is_an_error():
    text = "nsg n {\n inbound {\n 100 allow r tcp from `?param:p` to any port `?param:p`\n }\n}\n"
    with pytest.raises(InputError) as e:
        resolve(parse_policy(text, "t.nsg"), symbolic_params=True)
    assert e.value.diagnostics[0].code == "E308" and e.value.diagnostics[0].span.line == 3


def test_json_with_parameters_validates_against_the_schemas(template: Path, tmp_path: Path):
    from nsgsolve import cli
    import io

    from schemas import validate

    nsg = tmp_path / "c.nsg"
    nsg.write_text(print_policy(load_policy([template])) + "assert ssh: no Internet -> web-0 port 22\n")
    for argv, command in ((["query", "--json", str(template), "can Internet reach web-0 port 22"], "query"),
                          (["check", "--format", "json", str(nsg)], "check")):
        out, err = io.StringIO(), io.StringIO()
        status = cli.run(argv, out, err)
        assert status in (0, 1), err.getvalue()
        doc = json.loads(out.getvalue())
        validate(doc, command)
        assert '"parameters"' in out.getvalue()
