import json

import pytest

from nsgsolve.errors import InputError
from nsgsolve.model import (Access, AnyAddress, AsgSide, Cidr, Direction, IpRange, PortRange, PortsRef,
                            PrefixSide, Protocol, TagSide)
from nsgsolve.semantics.addresses import ip_to_int

from fixtures_arm import load, nsg, rule, template

NSG_REF = "[resourceId('Microsoft.Network/networkSecurityGroups', 'web-nsg')]"
VNET = {
    "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "hub",
    "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16", "fd00::/48"]},
        "subnets": [
            {"name": "web", "properties": {"addressPrefix": "10.0.1.0/24",
                                           "networkSecurityGroup": {"id": NSG_REF}}},
            {"name": "db", "properties": {"addressPrefix": "10.0.2.0/24"}},
        ]}}


def only_nsg(policy, name=None):
    return policy.nsgs[0] if name is None else policy.nsg(name)


def test_inline_rules_with_case_variants_and_descriptions():
    t = template([nsg("web-nsg", [
        rule("allow-https", 100, direction="inbound", access="allow", protocol="TCP", src="INTERNET", dport="443",
             description="from anywhere"),
        rule("deny-rest", 4096, access="Deny", protocol="*", src="*", dport="*"),
        rule("udp-out", 200, direction="OUTBOUND", protocol="udp", dst="10.1.0.0/16", dport="53"),
    ])])
    n = only_nsg(load(t))
    r = {x.name: x for x in n.rules}
    https = r["allow-https"]
    assert (https.direction, https.access, https.protocol) == (Direction.INBOUND, Access.ALLOW, Protocol.TCP)
    assert isinstance(https.source, TagSide) and https.source.tag.name == "INTERNET"
    assert https.destination_ports.items == (PortRange(443, 443, https.destination_ports.items[0].span),)
    assert https.description == "from anywhere"
    assert r["deny-rest"].protocol is Protocol.ANY and r["deny-rest"].destination_ports.is_any
    assert isinstance(r["deny-rest"].source, AnyAddress)
    assert r["udp-out"].direction is Direction.OUTBOUND and r["udp-out"].protocol is Protocol.UDP
    # Spans point into the template at the rule object.
    assert https.span.file == "azuredeploy.json" and https.span.line > 1


def test_singular_and_plural_fields_are_united_and_lists_parsed():
    t = template([nsg("n", [rule("r", 100, src="10.0.0.5", dport="80",
                                 sourceAddressPrefixes=["10.0.0.5", "10.1.0.0/16", "10.2.0.1-10.2.0.9", "fd00::/64"],
                                 destinationPortRanges=["8080-8090", 22])])])
    r = only_nsg(load(t)).rules[0]
    assert isinstance(r.source, PrefixSide)
    items = r.source.items
    assert [type(i) for i in items] == [Cidr, Cidr, IpRange, Cidr]
    assert (items[0].network, items[0].length) == (ip_to_int("10.0.0.5"), 32)
    assert (items[2].lo, items[2].hi) == (ip_to_int("10.2.0.1"), ip_to_int("10.2.0.9"))
    assert (items[3].network, items[3].length, items[3].is_v6) == (ip_to_int("fd00::"), 64, True)
    assert [(p.lo, p.hi) for p in r.destination_ports.items] == [(80, 80), (8080, 8090), (22, 22)]


def test_empty_plural_arrays_next_to_singular_fields():
    t = template([nsg("n", [rule("r", 100, src="Internet", sourceAddressPrefixes=[], destinationPortRanges=[])])])
    r = only_nsg(load(t)).rules[0]
    assert isinstance(r.source, TagSide) and r.destination_ports.items[0].lo == 80


def test_host_bits_are_masked_with_a_note():
    r = only_nsg(load(template([nsg("n", [rule("r", 100, src="10.0.0.5/24")])]))).rules[0]
    assert (r.source.items[0].network, r.source.items[0].length) == (ip_to_int("10.0.0.0"), 24)
    assert any("host bits" in n for n in r.notes)


def test_asg_sides_nics_and_asg_resources():
    asg_id = "[resourceId('Microsoft.Network/applicationSecurityGroups', 'web-asg')]"
    t = template([
        {"type": "Microsoft.Network/applicationSecurityGroups", "name": "web-asg", "properties": {}},
        nsg("web-nsg", [rule("to-web", 100, dst=None, destinationApplicationSecurityGroups=[{"id": asg_id}])]),
        VNET,
        {"type": "Microsoft.Network/networkInterfaces", "name": "web1-nic", "properties": {
            "networkSecurityGroup": {"id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'web-nsg')]"},
            "ipConfigurations": [
                {"name": "ipconfig1", "properties": {
                    "privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.1.10",
                    "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', 'web')]"},
                    "applicationSecurityGroups": [{"id": asg_id}]}},
                {"name": "ipconfig2", "properties": {
                    "privateIPAllocationMethod": "Dynamic",
                    "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', 'web')]"}}},
            ]}},
    ])
    p = load(t)
    r = p.nsgs[0].rules[0]
    assert isinstance(r.destination, AsgSide) and r.destination.asgs[0].name == "web-asg"
    assert [a.name for a in p.asgs] == ["web-asg"]
    nic = p.nic("web1-nic")
    assert (nic.subnet.vnet, nic.subnet.subnet, nic.nsg.name) == ("hub", "web", "web-nsg")
    assert nic.ip_configs[0].ip == ip_to_int("10.0.1.10") and nic.ip_configs[0].asgs[0].name == "web-asg"
    assert nic.ip_configs[1].ip is None and nic.ip_configs[1].name == "ipconfig2"
    vnet = p.vnet("hub")
    assert [(c.network, c.length) for c in vnet.address_spaces] == [(ip_to_int("10.0.0.0"), 16),
                                                                     (ip_to_int("fd00::"), 48)]  # dual stack
    assert {s.name: (s.nsg.name if s.nsg else None) for s in vnet.subnets} == {"web": "web-nsg", "db": None}


def test_child_rule_resources_top_level_and_nested():
    t = template([
        {"type": "Microsoft.Network/networkSecurityGroups", "name": "n", "properties": {"securityRules": [
            rule("inline", 100)]},
         "resources": [{"type": "securityRules", "name": "nested",
                        **{k: v for k, v in rule("x", 110).items() if k != "name"}}]},
        {"type": "Microsoft.Network/networkSecurityGroups/securityRules", "name": "n/child",
         "properties": rule("x", 120)["properties"]},
    ])
    assert sorted(r.name for r in only_nsg(load(t)).rules) == ["child", "inline", "nested"]


def test_resource_copy_and_property_copy_loops():
    t = template([
        {"type": "Microsoft.Network/networkSecurityGroups", "name": "[concat('nsg-', copyIndex())]",
         "copy": {"name": "nsgLoop", "count": 2},
         "properties": {"copy": [{
             "name": "securityRules", "count": "[length(parameters('ports'))]",
             "input": {"name": "[concat('allow-', parameters('ports')[copyIndex('securityRules')])]",
                       "properties": {"protocol": "Tcp", "sourcePortRange": "*", "sourceAddressPrefix": "*",
                                      "destinationAddressPrefix": "[concat('10.0.', copyIndex(), '.0/24')]",
                                      "destinationPortRange":
                                          "[string(parameters('ports')[copyIndex('securityRules')])]",
                                      "access": "Allow", "direction": "Inbound",
                                      "priority": "[add(100, copyIndex('securityRules'))]"}}}]}},
    ], parameters={"ports": {"type": "array", "defaultValue": [22, 443]}})
    p = load(t)
    assert [n.name for n in p.nsgs] == ["nsg-0", "nsg-1"]
    r1 = {r.name: r for r in p.nsg("nsg-1").rules}
    assert sorted(r1) == ["allow-22", "allow-443"]
    assert r1["allow-443"].priority == 101 and r1["allow-443"].destination_ports.items[0].lo == 443
    assert r1["allow-22"].destination.items[0].network == ip_to_int("10.0.1.0")


def test_variables_parameters_if_and_condition():
    t = template([
        nsg("[variables('nsgName')]", [rule("[format('{0}-in', parameters('env'))]", 100,
                                            src="[if(equals(parameters('env'), 'prod'), 'Internet', '10.0.0.0/8')]",
                                            dport="[string(variables('port'))]")]),
        {"condition": "[equals(parameters('env'), 'test')]", **nsg("skipped", [])},
    ], parameters={"env": {"type": "string", "defaultValue": "prod"}},
        variables={"nsgName": "[toLower(concat('WEB-', parameters('env')))]", "port": 8443})
    p = load(t)
    assert [n.name for n in p.nsgs] == ["web-prod"]
    r = p.nsgs[0].rules[0]
    assert r.name == "prod-in" and r.source.tag.name == "Internet" and r.destination_ports.items[0].lo == 8443
    p2 = load(t, params={"env": "test"})
    assert sorted(n.name for n in p2.nsgs) == ["skipped", "web-test"]
    assert isinstance(p2.nsg("web-test").rules[0].source, PrefixSide)


def test_parameters_file_among_inputs_and_params_override(tmp_path):
    t = template([nsg("n", [rule("r", 100, src="[parameters('admin')]")])],
                 parameters={"admin": {"type": "string"}})
    pf = json.dumps({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
                     "parameters": {"admin": {"value": "192.0.2.0/24"}}})
    r = load({"t.json": t, "t.parameters.json": pf}).nsgs[0].rules[0]
    assert r.source.items[0].network == ip_to_int("192.0.2.0")
    r = load({"t.json": t, "t.parameters.json": pf}, params={"admin": "198.51.100.7"}).nsgs[0].rules[0]
    assert r.source.items[0].network == ip_to_int("198.51.100.7")
    f = tmp_path / "p.json"
    f.write_text(pf)
    assert load(t, params_file=str(f)).nsgs[0].rules[0].source.items[0].length == 24
    with pytest.raises(InputError) as e:
        load(t, params={"admn": "x"})
    assert e.value.diagnostics[0].code == "E604" and "admin" in e.value.diagnostics[0].hint


def test_unevaluable_expression_names_path_line_and_expression():
    t = template([{"type": "Microsoft.Network/networkSecurityGroups", "name": "n", "properties": {"securityRules": [
        rule("a", 100), rule("b", 110, src="[reference('someVnet').addressSpace.addressPrefixes[0]]")]}}])
    with pytest.raises(InputError) as e:
        load(t, strict=True)
    d = e.value.diagnostics[0]
    assert d.code == "E610"
    assert "resources[0].properties.securityRules[1].properties.sourceAddressPrefix" in d.message
    assert "[reference('someVnet').addressSpace.addressPrefixes[0]]" in d.message
    line = t.splitlines()[d.span.line - 1]
    assert "reference('someVnet')" in line and line[d.span.column - 1] == '"'
    assert "drop --strict" in d.hint
    # Without --strict the side is left open, with a W602 at the same place saying so.
    warnings: list = []
    p = load(t, warnings=warnings)
    side = {r.name: r for r in p.nsgs[0].rules}["b"].source
    assert isinstance(side, TagSide) and side.tag.name.startswith("?expr:")
    w = [x for x in warnings if x.code == "W602"]
    assert len(w) == 1 and w[0].span == d.span and "left open" in w[0].message and w[0].severity == "warning"


def test_e610_hint_does_not_suggest_symbolic_under_symbolic():
    t = template([nsg("n", [rule("r", 100, protocol="[reference('x').protocol]")])])
    for kw in ({"symbolic": True, "strict": True}, {}):
        with pytest.raises(InputError) as e:
            load(t, **kw)
        d = e.value.diagnostics[0]
        assert d.code == "E610" and "--symbolic" not in d.hint and "only a rule's addresses and ports" in d.hint


def test_parameter_without_default_is_an_error_not_an_empty_rule():
    t = template([nsg("n", [rule("r", 100, src="[parameters('allowedSource')]")])],
                 parameters={"allowedSource": {"type": "string"}})
    with pytest.raises(InputError) as e:
        load(t, strict=True)
    assert "--param allowedSource=" in e.value.diagnostics[0].message


def test_unset_parameter_names_become_its_name_and_addresses_open_with_one_warning():
    params = {"cluster": {"type": "string"}, "src": {"type": "string"}, "net": {"type": "object"}}
    res = [nsg("[concat(parameters('cluster'), '-nsg')]",
               [rule("r", 100, src="[parameters('src')]"), rule("s", 110, src="[toLower(parameters('src'))]")]),
           nsg("[parameters('net').beNsg]", [rule("t", 100)])]
    t = template(res, parameters=params)
    warnings: list = []
    p = load(t, warnings=warnings)
    assert sorted(n.name for n in p.nsgs) == ["cluster-nsg", "net.beNsg"]
    rules = {r.name: r for r in p.nsg("cluster-nsg").rules}
    # The bare parameter is a variable (answered for every value), a function of it is left open; neither is
    # ever read as a tag.
    assert isinstance(rules["r"].source, TagSide) and rules["r"].source.tag.name == "?param:src"
    assert isinstance(rules["s"].source, TagSide) and rules["s"].source.tag.name.startswith("?expr:")
    w = {x.message.split("'")[1]: x for x in warnings if x.code == "W601"}
    assert sorted(w) == ["cluster", "net", "src"]  # once per parameter, though 'src' is used twice
    assert "source addresses" in w["src"].message and "--param src=VALUE" in w["src"].hint
    assert "--strict" in w["cluster"].hint
    assert t.splitlines()[w["cluster"].span.line - 1].strip().startswith('"cluster"')
    with pytest.raises(InputError) as e:
        load(t, strict=True)
    assert {d.code for d in e.value.diagnostics} == {"E610"}


def test_unset_parameter_never_decides_a_condition_a_count_or_a_protocol():
    params = {"mode": {"type": "string"}, "proto": {"type": "string"}}
    cond = {**nsg("a", [rule("r", 100)]), "condition": "[equals(parameters('mode'), 'new')]"}
    with pytest.raises(InputError) as e:
        load(template([cond], parameters=params))
    assert e.value.diagnostics[0].code == "E610" and "'mode'" in e.value.diagnostics[0].message
    with pytest.raises(InputError) as e:
        load(template([nsg("b", [rule("r", 100, protocol="[parameters('proto')]")])], parameters=params))
    assert e.value.diagnostics[0].code == "E610" and "protocol" in e.value.diagnostics[0].message


def test_an_address_space_that_is_a_parameter_is_an_open_vnet_with_the_warning():
    params = {"space": {"type": "string"}, "ip": {"type": "string"}}
    vn = {"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
        "addressSpace": {"addressPrefixes": ["[parameters('space')]"]},
        "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}
    warnings: list = []
    p = load(template([vn, nsg("n", [rule("r", 100)])], parameters=params), warnings=warnings)
    # Commands that need concrete addresses see no VNet; query and check place it for every value.
    assert not p.vnets and p.nsgs
    assert [(o.name, o.param, [s.name for s in o.subnets]) for o in p.open_vnets] == [("v", "space", ["s"])]
    assert any("VNet v" in x.message and "private prefix" in x.message for x in warnings if x.code == "W601")
    assert any("VNet v:" in n and "parameter space" in n for n in p.notes)


def test_unset_address_space_computed_from_a_parameter_leaves_the_vnet_out_with_the_warning():
    params = {"net": {"type": "string"}}
    vn = {"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
        "addressSpace": {"addressPrefixes": ["[concat(parameters('net'), '.0.0/16')]"]},
        "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}
    warnings: list = []
    p = load(template([vn, nsg("n", [rule("r", 100)])], parameters=params), warnings=warnings)
    assert not p.vnets and not p.open_vnets and p.nsgs
    assert any("VNet v" in x.message for x in warnings if x.code == "W601")
    assert any("VNet v not modelled" in n for n in p.notes)


def test_symbolic_leaves_a_side_open_and_resolution_stops_on_it():
    from nsgsolve.semantics.resolve import resolve

    # Values computed from parameters (a bare parameter is a variable instead: tests/analyses/test_params.py).
    t = template([nsg("n", [rule("r", 100, src="[toLower(parameters('allowedSource'))]",
                                 dport="[toLower(parameters('p'))]"), rule("ok", 110)])],
                 parameters={"allowedSource": {"type": "string"}, "p": {"type": "string"}})
    p = load(t, symbolic=True)
    r = {x.name: x for x in p.nsgs[0].rules}["r"]
    assert isinstance(r.source, TagSide) and r.source.tag.name.startswith("?expr:")
    assert isinstance(r.destination_ports.items[0], PortsRef)
    assert any("allowedSource" in n for n in r.notes)
    # The NSG is open: loading goes on, and whatever needs it stops on the open values.
    rp = resolve(p)
    assert set(rp.open_nsgs) == {"n"}
    with pytest.raises(InputError) as e:
        rp.nsg("n", None)
    assert {d.code for d in e.value.diagnostics} >= {"E301"}


def test_symbolic_does_not_open_priorities_or_names():
    t = template([nsg("n", [rule("r", "[parameters('prio')]")])], parameters={"prio": {"type": "int"}})
    with pytest.raises(InputError) as e:
        load(t, symbolic=True)
    assert "priority" in e.value.diagnostics[0].message


def test_nested_deployment_inner_scope_and_outputs():
    inner = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
             "contentVersion": "1.0.0.0",
             "parameters": {"nsgName": {"type": "string"}},
             "resources": [nsg("[parameters('nsgName')]", [rule("r", 100)])],
             "outputs": {"id": {"type": "string",
                                "value":
                                    "[resourceId('Microsoft.Network/networkSecurityGroups', parameters('nsgName'))]"}}}
    t = template([
        {"type": "Microsoft.Resources/deployments", "name": "nsgDeploy",
         "properties": {"expressionEvaluationOptions": {"scope": "inner"}, "mode": "Incremental",
                        "parameters": {"nsgName": {"value": "[concat(parameters('prefix'), '-nsg')]"}},
                        "template": inner}},
        {"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24", "networkSecurityGroup": {
                "id": "[reference(resourceId('Microsoft.Resources/deployments', 'nsgDeploy')).outputs.id.value]"}}}]}},
    ], parameters={"prefix": {"type": "string", "defaultValue": "app"}})
    p = load(t)
    assert [n.name for n in p.nsgs] == ["app-nsg"]
    assert p.vnet("v").subnets[0].nsg.name == "app-nsg"


def test_standalone_subnet_and_peering_resources():
    t = template([
        {"type": "Microsoft.Network/virtualNetworks", "name": "a",
         "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}},
        {"type": "Microsoft.Network/virtualNetworks", "name": "b",
         "properties": {"addressSpace": {"addressPrefixes": ["10.2.0.0/16"]}}},
        {"type": "Microsoft.Network/virtualNetworks/subnets", "name": "a/s1",
         "properties": {"addressPrefix": "10.1.1.0/24"}},
        {"type": "Microsoft.Network/virtualNetworks/virtualNetworkPeerings", "name": "a/a-to-b",
         "properties": {"remoteVirtualNetwork": {"id": "[resourceId('Microsoft.Network/virtualNetworks', 'b')]"}}},
    ])
    p = load(t)
    assert [s.name for s in p.vnet("a").subnets] == ["s1"]
    assert [r.name for r in p.vnet("a").peerings] == ["b"]


def test_peering_to_a_vnet_outside_the_inputs_is_an_error():
    t = template([
        {"type": "Microsoft.Network/virtualNetworks", "name": "a", "properties": {
            "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
            "virtualNetworkPeerings": [{"name": "p", "properties": {"remoteVirtualNetwork": {
                "id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/virtualNetworks/elsewhere"}}}]}}])
    with pytest.raises(InputError) as e:
        load(t)
    assert e.value.diagnostics[0].code == "E622" and "elsewhere" in e.value.diagnostics[0].message


def test_association_with_an_nsg_not_in_the_inputs_is_an_error():
    t = template([VNET])
    with pytest.raises(InputError) as e:
        load(t)
    assert e.value.diagnostics[0].code == "E624" and "web-nsg" in e.value.diagnostics[0].message


@pytest.mark.parametrize("field,value,code", [
    ("protocol", "Gre", "E612"),
    ("access", "Maybe", "E612"),
    ("priority", 50, "E613"),
    ("destinationPortRange", "70000", "E618"),
    ("sourceAddressPrefix", "10.0.0.0/33", "E617"),
])
def test_invalid_rule_values(field, value, code):
    r = rule("r", 100)
    r["properties"][field] = value
    with pytest.raises(InputError) as e:
        load(template([nsg("n", [r])]))
    assert e.value.diagnostics[0].code == code


def test_tag_in_a_list_is_rejected_as_azure_does():
    with pytest.raises(InputError) as e:
        load(template([nsg("n", [rule("r", 100, src=None, sourceAddressPrefixes=["10.0.0.0/8", "Internet"])])]))
    assert e.value.diagnostics[0].code == "E617"


def test_crlf_and_bom_template():
    t = "\ufeff" + template([nsg("n", [rule("r", 100)])]).replace("\n", "\r\n")
    assert load(t).nsgs[0].rules[0].name == "r"


def test_imported_template_resolves_and_evaluates():
    from nsgsolve.semantics.evaluate import Packet, evaluate
    from nsgsolve.semantics.resolve import resolve

    t = template([
        nsg("web-nsg", [rule("https", 100, src="Internet", dport="443"),
                        rule("deny-ssh", 110, access="Deny", src="VirtualNetwork", dport="22")]),
        VNET,
        {"type": "Microsoft.Network/networkInterfaces", "name": "web1", "properties": {"ipConfigurations": [
            {"name": "c", "properties": {"privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.1.4",
                                         "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', "
                                                          "'hub', 'web')]"}}}]}},
    ])
    rp = resolve(load(t))
    assert evaluate(rp, Packet.parse("tcp", "203.0.113.9", 50000, "10.0.1.4", 443)).allowed
    assert not evaluate(rp, Packet.parse("tcp", "203.0.113.9", 50000, "10.0.1.4", 80)).allowed
    assert not evaluate(rp, Packet.parse("tcp", "10.0.2.9", 50000, "10.0.1.4", 22)).allowed


def test_duplicate_priority_in_one_direction_is_rejected_as_azure_does():
    t = template([nsg("n", [rule("a", 100), rule("b", 100), rule("c", 100, direction="Outbound")])])
    with pytest.raises(InputError) as e:
        load(t)
    assert [d.code for d in e.value.diagnostics] == ["E613"] and "'a' and 'b'" in e.value.diagnostics[0].message


def test_imported_policies_get_the_checks_a_policy_file_gets(tmp_path):
    # Two NICs on one address, a reserved address, a NIC outside its subnet: a .nsg file stops on each, so
    # the same estate as a template must too (and `import` must never write a file that does not load).
    def nic(name, ip):
        return {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2022-07-01", "name": name,
                "properties": {"ipConfigurations": [{"name": "i", "properties": {
                    "privateIPAllocationMethod": "Static", "privateIPAddress": ip,
                    "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', 'web')]"}}}]}}

    t = template([VNET, nsg("web-nsg", [rule("r", 100)]), nic("a", "10.0.1.4"), nic("b", "10.0.1.4"),
                  nic("c", "10.0.1.1"), nic("d", "10.0.9.4")])
    with pytest.raises(InputError) as e:
        load(t)
    codes = sorted(d.code for d in e.value.diagnostics)
    assert codes == ["E503", "E504", "E505"], e.value.diagnostics
    assert all(d.span.line > 0 for d in e.value.diagnostics)


def _storage_rule_template(parameters, dst):
    nsg = {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-09-01", "name": "n",
           "location": "[resourceGroup().location]",
           "properties": {"securityRules": [rule("st", 100, direction="Outbound", dst=dst, dport="443")]}}
    return template([nsg], parameters)


def test_tag_named_with_the_resource_group_region_says_it_is_a_placeholder():
    params = {"location": {"type": "string", "defaultValue": "[resourceGroup().location]"}}
    text = _storage_rule_template(params, "[concat('Storage.', parameters('location'))]")
    warnings: list = []
    side = load(text, warnings=warnings).nsg("n").rules[0].destination
    # any regional Storage tag (tests/importers/test_regional_tags.py), never a guessed region
    assert isinstance(side, TagSide) and side.tag.name == "?param:Storage.location"
    assert [w.code for w in warnings] == ["W603"] and "--param location=westeurope" in warnings[0].hint
    with pytest.raises(InputError) as e:
        load(text, strict=True)
    d = e.value.diagnostics[0]
    assert d.code == "E628" and "'Storage.location'" in d.message and "placeholder" in d.message
    assert "--param location=eastus" in d.hint and d.span.line > 0
    p = load(text, params={"location": "eastus"})
    assert p.nsg("n").rules[0].destination.tag.name == "Storage.eastus"
    # Read directly, the region cannot be overridden: the hint says how to make it a parameter.
    with pytest.raises(InputError) as e:
        load(_storage_rule_template({}, "[concat('Storage.', resourceGroup().location)]"), strict=True)
    assert e.value.diagnostics[0].code == "E628" and "add a 'location' parameter" in e.value.diagnostics[0].hint


def test_resource_location_alone_adds_no_placeholder_note():
    p = load(_storage_rule_template({}, "Storage"))
    assert not any("placeholder" in n for n in p.notes)


def test_symbolic_value_without_data_says_how_to_supply_it():
    from nsgsolve.semantics.resolve import resolve

    text = _storage_rule_template({"t": {"type": "string"}}, "[toLower(parameters('t'))]")
    p = load(text, symbolic=True)
    with pytest.raises(InputError) as e:
        resolve(p).nsg(p.nsgs[0].name, None)
    d = e.value.diagnostics[0]
    assert d.code == "E301" and "left this template value open" in d.message
    assert "--param NAME=VALUE" in d.hint and "ServiceTags_Public" not in d.hint
    # A bare parameter, in an analysis that does not answer for every value, says that and how to give it.
    p = load(_storage_rule_template({"t": {"type": "string"}}, "[parameters('t')]"))
    with pytest.raises(InputError) as e:
        resolve(p).nsg(p.nsgs[0].name, None)
    d = e.value.diagnostics[0]
    assert d.code == "E301" and "template parameter 't', which has no value" in d.message
    assert "--param t=VALUE" in d.hint and "query, check and lint answer for every value" in d.hint


def test_copy_index_in_the_parameters_of_a_nested_deployment_with_its_own_loop():
    inner = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
             "contentVersion": "1.0.0.0", "parameters": {"n": {"type": "string"}, "port": {"type": "int"}},
             "resources": [nsg("[parameters('n')]", [rule("r", 100, dport="[string(parameters('port'))]")])]}
    dep = {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01",
           "name": "[concat('d', copyIndex())]", "copy": {"name": "deps", "count": 2},
           "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
                          "parameters": {"n": {"value": "[concat('nsg-', copyIndex())]"},
                                         "port": {"value": "[add(8080, copyIndex('deps'))]"}},
                          "template": inner}}
    p = load(template([dep]))
    assert sorted(n.name for n in p.nsgs) == ["nsg-0", "nsg-1"]
    assert p.nsg("nsg-1").rules[0].destination_ports.items[0].lo == 8081
    # Outer scope: the nested template's own expressions see the deployment's index.
    outer = {**dep, "properties": {"mode": "Incremental", "template": {
        **inner, "parameters": {}, "resources": [nsg("[concat('o-', copyIndex())]", [rule("r", 100)])]}}}
    assert sorted(n.name for n in load(template([outer])).nsgs) == ["o-0", "o-1"]


def test_scale_set_nic_configurations_are_dynamic_nics_in_their_subnet():
    vn = {"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.1.0/24"}}]}}
    ipc = {"name": "ipc", "properties": {
        "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v', 's')]"},
        "privateIPAddress": "10.0.1.9",  # ignored: instances always get addresses from Azure
        "applicationSecurityGroups": [{"id": "[resourceId('Microsoft.Network/applicationSecurityGroups', 'web')]"}]}}
    vmss = {"type": "Microsoft.Compute/virtualMachineScaleSets", "name": "[concat('web', '-vmss')]",
            "sku": {"capacity": 3}, "properties": {"virtualMachineProfile": {
                "osProfile": {"adminPassword": "[reference('kv').secret]"},  # never evaluated
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                    "primary": True, "ipConfigurations": [ipc],
                    "networkSecurityGroup": {
                        "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'n')]"}}}]}}}}
    asg = {"type": "Microsoft.Network/applicationSecurityGroups", "name": "web"}
    p = load(template([vn, nsg("n", [rule("r", 100)]), asg, vmss]))
    # Two instances stand for the three (any two behave alike), so traffic between instances has a pair.
    assert [n.name for n in p.nics] == ["web-vmss.nic.0", "web-vmss.nic.1"]
    for nic in p.nics:
        assert (nic.subnet.vnet, nic.subnet.subnet) == ("v", "s")
        assert nic.nsg.name == "n" and [i.ip for i in nic.ip_configs] == [None]
        assert [a.name for a in nic.ip_configs[0].asgs] == ["web"]
    assert any("web-vmss" in n and "3 instance(s) written" in n for n in p.notes)


def test_scale_set_with_a_bad_subnet_id_is_located():
    vmss = {"type": "Microsoft.Compute/virtualMachineScaleSets", "name": "ss", "properties": {"virtualMachineProfile": {
        "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
            "ipConfigurations": [{"name": "ipc", "properties": {"subnet": {"id": "not-an-id"}}}]}}]}}}}
    # Scale sets were not read before: one nsgsolve cannot place costs its hosts, not the import (even
    # under --strict), and the warning points at the value.
    t = template([vmss])
    for strict in (False, True):
        warnings: list = []
        assert not load(t, warnings=warnings, strict=strict).nics
        (w,) = warnings
        assert w.code == "W604" and w.span.line > 0 and "not a subnet id" in w.message
