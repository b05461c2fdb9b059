import json

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.importers import jsonpos
from nsgsolve.importers.effective import compare_expansions, parse_effective
from nsgsolve.semantics.servicetags import ServiceTagDb

EFFECTIVE = {"value": [{
    "networkSecurityGroup": {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"},
    "association": {"networkInterface": {"id": "x"}},
    "effectiveSecurityRules": [
        {"name": "securityRules/to-storage", "protocol": "Tcp", "sourcePortRange": "0-65535",
         "destinationPortRange": "443-443", "sourceAddressPrefix": "0.0.0.0/0", "destinationAddressPrefix": "Storage",
         "expandedDestinationAddressPrefix": ["20.38.96.0/19", "2603:1000::/40"], "access": "Allow",
         "priority": 100, "direction": "Outbound"},
        {"name": "securityRules/to-sql", "protocol": "Tcp", "sourcePortRange": "0-65535",
         "destinationPortRange": "1433-1433", "sourceAddressPrefix": "0.0.0.0/0", "destinationAddressPrefix": "Sql",
         "expandedDestinationAddressPrefix": ["40.78.0.0/16"], "access": "Allow", "priority": 110,
         "direction": "Outbound"},
        {"name": "defaultSecurityRules/AllowAzureLoadBalancerInBound", "protocol": "All",
         "sourceAddressPrefix": "AzureLoadBalancer", "expandedSourceAddressPrefix": ["168.63.129.16/32"],
         "destinationAddressPrefix": "0.0.0.0/0", "access": "Allow", "priority": 65001, "direction": "Inbound"},
    ]}]}


def test_parse_keeps_nsg_names_expansions_and_positions():
    doc = jsonpos.parse(json.dumps(EFFECTIVE, indent=1), "eff.json")
    rules = parse_effective(doc, "eff.json")
    assert [r.name for r in rules][0] == "securityRules/to-storage" and rules[0].nsg == "n"
    assert rules[0].destination.expanded == ("20.38.96.0/19", "2603:1000::/40")
    assert rules[0].span.file == "eff.json" and rules[0].span.line > 1


def test_compare_reports_agreement_differences_and_missing_data():
    db = ServiceTagDb.from_document({"values": [
        {"name": "Storage", "properties": {"addressPrefixes": ["20.38.96.0/19"]}},
        {"name": "Sql", "properties": {"addressPrefixes": ["40.78.0.0/17"]}}]}, "test")
    res = {c.tag: c for c in compare_expansions(parse_effective(EFFECTIVE), db)}
    assert res["Storage"].agrees and res["Storage"].azure_ipv6 == 1
    assert not res["Sql"].agrees
    assert list(res["Sql"].missing) == [(ip_to_int("40.78.128.0"), ip_to_int("40.78.255.255"))]
    assert res["AzureLoadBalancer"].agrees  # built in


def test_compare_without_data_says_so():
    res = compare_expansions(parse_effective(EFFECTIVE), ServiceTagDb())
    assert next(c for c in res if c.tag == "Storage").ours is None
