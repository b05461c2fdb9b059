"""Property: a network written in Terraform and the same network written as an ARM template import to the same
policy. Both go through the one converter (PolicyBuilder), so this holds the Terraform layer (HCL evaluation,
attribute names, blocks, references, ids) to the ARM layer that the rest of the test suite already checks."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.printer import print_policy

CIDRS = st.builds(lambda a, b, n: f"10.{a}.{b}.0/{n}", st.integers(0, 255), st.integers(0, 255), st.integers(16, 28))
ADDR = st.one_of(st.sampled_from(["*", "Internet", "VirtualNetwork", "AzureLoadBalancer"]),
                 st.lists(CIDRS, min_size=1, max_size=3, unique=True))
PORT = st.one_of(st.just("*"), st.integers(0, 65535).map(str),
                 st.tuples(st.integers(0, 65000), st.integers(0, 535)).map(lambda t: f"{t[0]}-{t[0] + t[1]}"))
PORTS = st.one_of(PORT, st.lists(st.integers(1, 65535).map(str), min_size=2, max_size=3, unique=True))
RULE = st.fixed_dictionaries({
    "direction": st.sampled_from(["Inbound", "Outbound"]), "access": st.sampled_from(["Allow", "Deny"]),
    "protocol": st.sampled_from(["Tcp", "Udp", "Icmp", "*"]), "src": ADDR, "dst": ADDR, "sport": PORTS,
    "dport": PORTS})


def _tf_side(key: str, v) -> str:
    if isinstance(v, list):
        return f"      {key}_prefixes = {json.dumps(v)}\n"
    return f"      {key}_prefix = {json.dumps(v)}\n"


def _tf_ports(key: str, v) -> str:
    if isinstance(v, list):
        return f"      {key}_port_ranges = {json.dumps(v)}\n"
    return f"      {key}_port_range = {json.dumps(v)}\n"


def as_terraform(rules: list[dict], nic_host: int) -> str:
    out = ['locals {\n  base = "10.40.0.0/16"\n}\n',
           'resource "azurerm_virtual_network" "v" {\n  name = "vnet"\n  address_space = [local.base]\n}\n',
           'resource "azurerm_subnet" "s" {\n  name = "web"\n  virtual_network_name = azurerm_virtual_network.v.name\n'
           '  address_prefixes = [cidrsubnet(local.base, 8, 1)]\n}\n',
           'resource "azurerm_subnet_network_security_group_association" "a" {\n'
           '  subnet_id = azurerm_subnet.s.id\n  network_security_group_id = azurerm_network_security_group.n.id\n}\n',
           'resource "azurerm_network_interface" "nic" {\n  name = "nic1"\n  ip_configuration {\n    name = "c"\n'
           '    subnet_id = azurerm_subnet.s.id\n    private_ip_address_allocation = "Static"\n'
           f'    private_ip_address = cidrhost(cidrsubnet(local.base, 8, 1), {nic_host})\n  }}\n}}\n']
    nsg = ['resource "azurerm_network_security_group" "n" {\n  name = "nsg"\n']
    for i, r in enumerate(rules):
        nsg.append("    security_rule {\n"
                   f'      name = "r{i}"\n      priority = {100 + i}\n      direction = "{r["direction"]}"\n'
                   f'      access = "{r["access"]}"\n      protocol = "{r["protocol"]}"\n'
                   + _tf_side("source_address", r["src"]) + _tf_side("destination_address", r["dst"])
                   + _tf_ports("source", r["sport"]) + _tf_ports("destination", r["dport"]) + "    }\n")
    nsg.append("}\n")
    return "\n".join(out) + "".join(nsg)


def _arm_side(key: str, v) -> dict:
    return {f"{key}AddressPrefixes": v} if isinstance(v, list) else {f"{key}AddressPrefix": v}


def _arm_ports(key: str, v) -> dict:
    return {f"{key}PortRanges": v} if isinstance(v, list) else {f"{key}PortRange": v}


def as_arm(rules: list[dict], nic_host: int) -> str:
    sec = [{"name": f"r{i}", "properties": {
        "priority": 100 + i, "direction": r["direction"], "access": r["access"], "protocol": r["protocol"],
        **_arm_side("source", r["src"]), **_arm_side("destination", r["dst"]),
        **_arm_ports("source", r["sport"]), **_arm_ports("destination", r["dport"])}} for i, r in enumerate(rules)]
    subnet_id = "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'web')]"
    doc = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
           "contentVersion": "1.0.0.0", "resources": [
               {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "nsg",
                "properties": {"securityRules": sec}},
               {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "vnet",
                "properties": {"addressSpace": {"addressPrefixes": ["10.40.0.0/16"]}, "subnets": [
                    {"name": "web", "properties": {"addressPrefix": "10.40.1.0/24", "networkSecurityGroup": {
                        "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'nsg')]"}}}]}},
               {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": "nic1",
                "properties": {"ipConfigurations": [{"name": "c", "properties": {
                    "privateIPAllocationMethod": "Static", "privateIPAddress": f"10.40.1.{nic_host}",
                    "subnet": {"id": subnet_id}}}]}}]}
    return json.dumps(doc, indent=1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.lists(RULE, min_size=1, max_size=6), nic_host=st.integers(4, 254))
def test_terraform_and_arm_import_to_the_same_policy(tmp_path_factory, rules, nic_host):
    d = tmp_path_factory.mktemp("tfarm")
    (d / "main.tf").write_text(as_terraform(rules, nic_host))
    (d / "t.json").write_text(as_arm(rules, nic_host))
    tf = load_policy(str(d / "main.tf"), warnings=[])
    arm = load_policy(str(d / "t.json"), warnings=[])
    assert print_policy(tf) == print_policy(arm)
