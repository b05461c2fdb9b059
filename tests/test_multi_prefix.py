"""Subnets with several address prefixes (Azure's ``addressPrefixes``): in the language, the model, every
importer and the analyses; a NIC may sit in any of the prefixes."""

from __future__ import annotations

import json

import pytest

from nsgsolve.analyses.query import QueryEngine, Verdict
from nsgsolve.errors import InputError
from nsgsolve.importers import load_json_policy
from nsgsolve.lang.build import parse_policy, parse_query
from nsgsolve.lang.printer import print_policy, without_spans
from nsgsolve.semantics.addresses import IntervalSet, ip_to_int
from nsgsolve.semantics.resolve import IpcKey, resolve

POLICY = """
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24, 10.0.9.0/24 nsg web-nsg
}
nic a in hub/web ip 10.0.9.4
nic d in hub/web ip dynamic
nsg web-nsg {
  inbound {
    100 allow https tcp from any to subnet hub/web port 443
  }
}
"""


def _ip(t: str) -> int:
    return ip_to_int(t)


def test_language_reads_and_prints_every_prefix():
    p = parse_policy(POLICY, "t.nsg")
    (s,) = p.vnets[0].subnets
    assert [c.network for c in s.prefixes] == [_ip("10.0.1.0"), _ip("10.0.9.0")] and s.nsg.name == "web-nsg"
    text = print_policy(p)
    assert "subnet web 10.0.1.0/24, 10.0.9.0/24 nsg web-nsg" in text
    assert without_spans(parse_policy(text, "t.nsg")) == without_spans(p)


def test_a_nic_may_sit_in_any_prefix_and_a_dynamic_one_anywhere_usable():
    rp = resolve(parse_policy(POLICY, "t.nsg"))
    assert rp.ipcs[IpcKey("a")].ip == _ip("10.0.9.4")
    usable = rp.ipcs[IpcKey("d")].usable
    assert usable == IntervalSet([(_ip("10.0.1.4"), _ip("10.0.1.254")), (_ip("10.0.9.4"), _ip("10.0.9.254"))])


def test_rule_and_query_sides_naming_the_subnet_cover_every_prefix():
    p = parse_policy(POLICY, "t.nsg")
    rp = resolve(p)
    (rule,) = rp.nsg("web-nsg", "hub").inbound[:1]
    assert _ip("10.0.9.77") in rule.dst.intervals and _ip("10.0.1.77") in rule.dst.intervals
    ans = QueryEngine(rp).ask(parse_query("can Internet reach 10.0.9.0/24 port 443 tcp", p))
    assert ans.verdict is Verdict.ALL


@pytest.mark.parametrize("text,code", [
    ("vnet hub 10.0.0.0/16 {\n  subnet web 10.0.1.0/24, 10.1.9.0/24\n}\n", "E506"),
    ("vnet hub 10.0.0.0/16 {\n  subnet web 10.0.1.0/24, 10.0.1.128/25\n}\n", "E507"),
    ("vnet hub 10.0.0.0/16 {\n  subnet web 10.0.1.0/24, 10.0.9.0/24\n  subnet db 10.0.9.128/25\n}\n", "E507"),
    ("vnet hub 10.0.0.0/16 {\n  subnet web 10.0.1.0/24, 10.0.9.0/24\n}\nnic a in hub/web ip 10.0.5.4\n", "E503"),
    ("vnet hub 10.0.0.0/16 {\n  subnet web 10.0.1.0/24, 10.0.9.0/24\n}\nnic a in hub/web ip 10.0.9.255\n", "E504"),
])
def test_every_prefix_is_validated(text, code):
    with pytest.raises(InputError) as e:
        parse_policy(text, "t.nsg")
    d = e.value.diagnostics[0]
    assert d.code == code and d.span.line > 0, d


def test_own_overlap_says_so():
    with pytest.raises(InputError) as e:
        parse_policy("vnet hub 10.0.0.0/16 {\n  subnet web 10.0.1.0/24, 10.0.1.128/25\n}\n", "t.nsg")
    assert "its own prefix" in e.value.diagnostics[0].message


def _template(prefixes, nic_ip=None):
    ipc = {"name": "ipc", "properties": {
        "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v', 's')]"},
        "privateIPAllocationMethod": "Static" if nic_ip else "Dynamic",
        **({"privateIPAddress": nic_ip} if nic_ip else {})}}
    return json.dumps({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0", "resources": [
            {"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16", "fd00::/48"]},
                "subnets": [{"name": "s", "properties": {"addressPrefixes": prefixes}}]}},
            {"type": "Microsoft.Network/networkInterfaces", "name": "n", "properties": {"ipConfigurations": [ipc]}}]})


def test_arm_subnet_with_several_prefixes_imports_and_prints():
    p = load_json_policy({"t.json": _template(["10.0.1.0/24", "10.0.2.0/24", "fd00::/64"], "10.0.2.5")})
    (s,) = p.vnets[0].subnets
    assert [c.network for c in s.prefixes] == [_ip("10.0.1.0"), _ip("10.0.2.0"), _ip("fd00::")]  # dual stack
    assert "subnet s 10.0.1.0/24, 10.0.2.0/24, fd00::/64" in print_policy(p)
    assert resolve(p).ipcs[IpcKey("n")].ip == _ip("10.0.2.5")


def test_az_subnet_with_several_prefixes_imports():
    vnet = {"name": "v", "id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
            "type": "Microsoft.Network/virtualNetworks", "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "s", "id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/"
                                            "virtualNetworks/v/subnets/s",
                         "addressPrefixes": ["10.0.1.0/24", "10.0.2.0/24"]}]}
    p = load_json_policy({"vnets.json": json.dumps([vnet])})
    assert len(p.vnets[0].subnets[0].prefixes) == 2
