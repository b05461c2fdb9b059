"""A rule side that is a list of prefixes split from an unset parameter (``split(replace(parameters('p'),
' ', ''), ',')``) is the parameter itself, a symbolic variable (docs/import.md, "Unset parameters").

Why that is sound: a question about one packet reads of a list only whether the packet's source and
destination lie in it, and one prefix realises each of those membership patterns, so the symbolic answer
over single prefixes covers every list. The tests hold that against the evaluator on pinned values, given
as the template reads them (a comma-separated --param, split by the template itself)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.analyses.query import QueryEngine, Verdict
from nsgsolve import cli
from nsgsolve.errors import InputError
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.build import parse_query
from nsgsolve.model import Ref, TagSide
from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import resolve
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.smt.z3util import mk_and

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
TAGS = CORPUS / "servicetags" / "ServiceTags_Public_20251028.json"
LIST = "[variables('mgmtList')]"


def _rule(name: str, priority: int, direction: str, access: str, src, dst, port: str = "*") -> dict:
    props = {"priority": priority, "direction": direction, "access": access, "protocol": "Tcp",
             "sourcePortRange": "*", "destinationPortRange": port}
    for side, v in (("source", src), ("destination", dst)):
        props[f"{side}AddressPrefix" + ("es" if v == LIST else "")] = v
    return {"name": name, "properties": props}


def _template(rules: list[dict], variables: dict | None = None) -> dict:
    nsg_id = "[resourceId('Microsoft.Network/networkSecurityGroups', 'nsg')]"
    subnet_id = "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'web')]"
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"mgmt": {"type": "string"}},
        "variables": variables if variables is not None else {
            "clean": "[replace(parameters('mgmt'), ' ', '')]", "mgmtList": "[split(variables('clean'), ',')]"},
        "resources": [
            {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "nsg",
             "properties": {"securityRules": rules}},
            {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "vnet",
             "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [
                 {"name": "web", "properties": {"addressPrefix": "10.1.0.0/24",
                                                "networkSecurityGroup": {"id": nsg_id}}}]}},
        ] + [
            {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": f"web-{i}",
             "properties": {"ipConfigurations": [{"name": "ipc", "properties": {
                 "privateIPAllocationMethod": "Static", "privateIPAddress": f"10.1.0.{4 + i}",
                 "subnet": {"id": subnet_id}}}]}}
            for i in range(2)],
    }


# web-1 -> web-0 port 22 passes iff the source lies in the list and the destination does not: a pattern
# only a list (or a /32 of the source) gives, which the symbolic variable must find.
RULES = [
    _rule("allow-mgmt", 100, "Inbound", "Allow", LIST, "*", "22"),
    _rule("deny-10", 200, "Inbound", "Deny", "10.0.0.0/8", "*"),
    _rule("deny-rest", 300, "Inbound", "Deny", "*", "*"),
    _rule("deny-to-mgmt", 100, "Outbound", "Deny", "*", LIST),
]


@pytest.fixture
def template(tmp_path: Path) -> Path:
    p = tmp_path / "t.json"
    p.write_text(json.dumps(_template(RULES), indent=1))
    return p


def _ask(policy, text: str):
    return QueryEngine(resolve(policy, symbolic_params=True)).ask(parse_query(text, policy))


def test_a_split_list_is_the_parameter_and_w601_says_how_to_pin_it(template: Path):
    warnings: list = []
    policy = load_policy([template], warnings=warnings)
    assert [d.name for d in policy.params] == ["mgmt"]  # the source and the destination use: one variable
    rules = {r.name: r for r in policy.nsgs[0].rules}
    assert rules["allow-mgmt"].source == TagSide(Ref("?param:mgmt", rules["allow-mgmt"].source.span),
                                                 rules["allow-mgmt"].source.span)
    assert rules["deny-to-mgmt"].destination.tag.name == "?param:mgmt"
    (w601,) = [d.message for d in warnings if d.code == "W601"]
    assert "list of prefixes" in w601 and "every list" in w601 and "--param mgmt=10.1.0.0/24,192.0.2.7" in w601


def test_a_pinned_list_answers_as_the_symbolic_one_where_it_holds_for_every_value(template: Path):
    policy = load_policy([template])
    # deny-10 blocks 10/8 after allow-mgmt: some value lets 10.9.0.1 in on port 22 (not every one), no
    # value lets it in on port 80.
    assert _ask(policy, "can 10.9.0.1 reach web-0 port 22").verdict is Verdict.SOME
    assert _ask(policy, "can 10.9.0.1 reach web-0 port 80").verdict is Verdict.NONE
    pinned = load_policy([template], params={"mgmt": "203.0.113.0/24, 10.9.0.1"})  # split as the template does
    rules = {r.name: r for r in pinned.nsgs[0].rules}
    assert [(x.network, x.length) for x in rules["allow-mgmt"].source.items] == [
        (ip_to_int("203.0.113.0"), 24), (ip_to_int("10.9.0.1"), 32)]
    assert _ask(pinned, "can 10.9.0.1 reach web-0 port 80").verdict is Verdict.NONE
    assert _ask(pinned, "can 10.9.0.1 reach web-0 port 22").allowed_witness is not None  # Tcp: the rule's
    # The witness of the symbolic answer names a value that reproduces it when pinned.
    r = _ask(policy, "can web-1 reach web-0 port 22")
    assert r.allowed_witness is not None
    value = dict(r.allowed_witness.params)["mgmt"]
    again = _ask(load_policy([template], params={"mgmt": value}), "can web-1 reach web-0 port 22")
    assert again.allowed_witness is not None


PREFIXES = ["10.1.0.4/32", "10.1.0.5", "10.1.0.0/24", "10.0.0.0/8", "203.0.113.0/24", "0.0.0.0/0", "192.0.2.7"]
ADDRESSES = ["10.1.0.4", "10.1.0.5", "10.1.0.200", "10.2.0.1", "203.0.113.9", "192.0.2.7", "8.8.8.8"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=3, unique=True),
       st.lists(st.tuples(st.sampled_from(ADDRESSES), st.sampled_from(ADDRESSES), st.sampled_from([22, 80])),
                min_size=1, max_size=5))
def test_the_symbolic_variable_covers_every_pinned_list_as_the_evaluator_decides(template: Path, values, pkts):
    """For every packet: the decision the evaluator makes with a pinned list (one or several prefixes)
    is one the symbolic policy can make for some single prefix; a pinned single prefix decides exactly so."""
    symbolic = resolve(load_policy([template]), symbolic_params=True)
    enc = Encoding(symbolic)
    ps = PolicySolver(enc)
    decision = ps.full_decision()
    ev = Evaluator(resolve(load_policy([template], params={"mgmt": " , ".join(values)})))
    pinned = enc.pin_params({"mgmt": values[0]}) if len(values) == 1 else None
    for src, dst, port in pkts:
        p = Packet(6, ip_to_int(src), 49152, ip_to_int(dst), port)
        allowed = ev.evaluate(p).allowed
        fixed = enc.is_packet(p)
        assert ps.find(fixed, allowed, "t", decision) is not None, (values, src, dst, port)
        if pinned is not None:
            assert ps.find(mk_and([fixed, pinned]), not allowed, "t", decision) is None, (values, src, dst, port)


def test_a_bare_use_and_a_list_use_are_one_variable(tmp_path: Path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps(_template([_rule("allow-list", 100, "Inbound", "Allow", LIST, "*", "22"),
                                      _rule("allow-bare", 110, "Inbound", "Allow", "[parameters('mgmt')]", "*",
                                            "80")])))
    policy = load_policy([p])
    assert [d.name for d in policy.params] == ["mgmt"]
    assert {r.source.tag.name for r in policy.nsgs[0].rules} == {"?param:mgmt"}


def test_a_split_list_of_ports_stays_open(tmp_path: Path):
    p = tmp_path / "p.json"
    rule = _rule("allow-ports", 100, "Inbound", "Allow", "*", "*")
    del rule["properties"]["destinationPortRange"]
    rule["properties"]["destinationPortRanges"] = LIST
    p.write_text(json.dumps(_template([rule])))
    policy = load_policy([p])
    assert policy.params == ()
    assert policy.nsgs[0].rules[0].destination_ports.items[0].define.name.startswith("?expr:")


@pytest.mark.parametrize("expr", [
    "[split(parameters('mgmt'), '.')]",                        # a separator inside a prefix: not every list
    "[concat(split(parameters('mgmt'), ','), createArray('192.0.2.1'))]",   # more than the list
    "[split(concat(parameters('mgmt'), '/24'), ',')]",         # computed text, not the parameter's
    "[split(replace(parameters('mgmt'), '0', ''), ',')]",      # a replace that changes prefixes
])
def test_anything_else_computed_stays_open_with_its_located_error(tmp_path: Path, expr: str):
    p = tmp_path / "o.json"
    p.write_text(json.dumps(_template([_rule("allow-list", 100, "Inbound", "Allow", LIST, "*", "22")],
                                      {"mgmtList": expr}), indent=1))
    policy = load_policy([p])
    assert policy.params == ()
    assert policy.nsgs[0].rules[0].source.tag.name.startswith("?expr:")
    with pytest.raises(InputError) as e:
        load_policy([p], strict=True)
    d = e.value.diagnostics[0]
    assert d.code == "E610" and d.span.line > 1


@pytest.mark.parametrize("name", ["darktrace-vsensor-autoscaling", "darktrace-vsensor-standalone"])
def test_the_darktrace_templates_answer(name: str):
    path = CORPUS / "arm" / f"{name}.json"
    if not path.exists() or not TAGS.exists():
        pytest.skip(f"corpus absent: {path} or {TAGS} not found")
    rc, out, err = _cli("query", str(path), "can Internet reach any", "--service-tags", str(TAGS))
    assert rc == 0, err
    assert "E301" not in err and "verdict: some" in out
    # Port 22 from one address opens only through the list: the witness names the value that opens it.
    rc, out, err = _cli("query", str(path), "can 203.0.113.9 reach any port 22", "--service-tags", str(TAGS))
    assert rc == 0 and "parameters('MgmtSourceAddressOrRange') = 203.0.113.9/32" in out, err
    rc, out, err = _cli("query", str(path), "can 203.0.113.9 reach any port 22", "--service-tags", str(TAGS),
                        "--param", "MgmtSourceAddressOrRange=10.1.0.0/24,192.0.2.7")
    assert rc == 0 and "verdict: none" in out, err  # a list not holding the source: no value of it opens
    rc, out, err = _cli("query", str(path), "can 203.0.113.9 reach any port 22", "--service-tags", str(TAGS),
                        "--param", "MgmtSourceAddressOrRange=10.1.0.0/24, 203.0.113.0/24")
    assert rc == 0 and "Allow by AllowMgmtInPorts22" in out, err  # the second item of the list lets it in


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.run(list(argv), out, err), out.getvalue(), err.getvalue()


def test_assert_some_over_a_list_needs_one_packet_allowed_for_every_value(tmp_path: Path):
    """`some` is about several packets under one value: a list may block them all where no prefix does.
    Here web-0 -> A/C pass only when outside the list, -> B only when inside: the list A,C (no prefix
    holds .1 and .3 without .2) blocks all three, while every single prefix lets one through."""
    import dataclasses

    from nsgsolve.analyses.contracts import check_policy
    from nsgsolve.analyses.results import Status
    from nsgsolve.lang.build import parse_policy
    from nsgsolve.lang.printer import print_policy

    a, b, c = "203.0.113.1", "203.0.113.2", "203.0.113.3"
    nic = [_rule("n-allow-b", 100, "Outbound", "Allow", "*", b), _rule("n-deny-s", 110, "Outbound", "Deny", "*", LIST),
           _rule("n-allow", 120, "Outbound", "Allow", "*", "*")]
    sub = [_rule("s-allow-s", 100, "Outbound", "Allow", "*", LIST), _rule("s-deny-b", 110, "Outbound", "Deny", "*", b),
           _rule("s-allow", 120, "Outbound", "Allow", "*", "*")]
    for r in nic + sub:
        r["properties"]["protocol"] = "*"
    t = _template(sub)
    t["resources"].append({"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01",
                           "name": "nicnsg", "properties": {"securityRules": nic}})
    t["resources"][2]["properties"]["networkSecurityGroup"] = {
        "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'nicnsg')]"}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(t))

    def verdict(params=None):
        policy = load_policy([p], params=params)
        text = print_policy(policy) + f"assert reach: some web-0 -> {a}, {b}, {c} port 22\n"
        policy = dataclasses.replace(policy, assertions=parse_policy(text, "t.nsg").assertions)
        (r,) = check_policy(policy, resolve(policy, symbolic_params=True))
        return r.verdict

    assert verdict({"mgmt": f"{a},{c}"}) is Status.FAIL
    assert verdict() is Status.UNKNOWN  # never PASS
    assert verdict({"mgmt": a}) is Status.PASS
