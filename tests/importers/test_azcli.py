import json

import pytest

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.errors import InputError
from nsgsolve.model import AsgSide, PrefixSide, TagSide

from fixtures_arm import load

SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network"

# `az network nsg list` as older az versions print it: flattened, singular and plural fields both present.
FLAT_NSG_LIST = [{
    "name": "web-nsg", "id": f"{SUB}/networkSecurityGroups/web-nsg", "resourceGroup": "rg",
    "type": "Microsoft.Network/networkSecurityGroups",
    "securityRules": [
        {"name": "ssh", "protocol": "TCP", "access": "Allow", "direction": "Inbound", "priority": 100,
         "sourceAddressPrefix": None, "sourceAddressPrefixes": ["203.0.113.0/24", "198.51.100.7"],
         "sourcePortRange": "*", "sourcePortRanges": [],
         "destinationAddressPrefix": "*", "destinationAddressPrefixes": [],
         "destinationPortRange": None, "destinationPortRanges": ["22", "2222-2223"],
         "sourceApplicationSecurityGroups": None, "destinationApplicationSecurityGroups": None},
        {"name": "to-app", "protocol": "Tcp", "access": "Allow", "direction": "Inbound", "priority": 110,
         "sourceAddressPrefix": "VirtualNetwork", "sourceAddressPrefixes": [], "sourcePortRange": "*",
         "destinationAddressPrefix": None, "destinationAddressPrefixes": [],
         "destinationApplicationSecurityGroups": [{"id": f"{SUB}/applicationSecurityGroups/app-asg"}],
         "destinationPortRange": "8080", "destinationPortRanges": []},
    ],
    "defaultSecurityRules": [{"name": "AllowVnetInBound", "priority": 65000}],
    "subnets": [{"id": f"{SUB}/virtualNetworks/hub/subnets/web"}],
}]

VNET_LIST = [{
    "name": "hub", "id": f"{SUB}/virtualNetworks/hub", "type": "Microsoft.Network/virtualNetworks",
    "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
    "subnets": [{"name": "web", "id": f"{SUB}/virtualNetworks/hub/subnets/web", "addressPrefix": "10.0.1.0/24",
                 "networkSecurityGroup": None}],
    "virtualNetworkPeerings": [{"name": "to-spoke", "remoteVirtualNetwork": {"id": f"{SUB}/virtualNetworks/spoke"},
                                "remoteAddressSpace": {"addressPrefixes": ["10.9.0.0/16"]}}],
}]

NIC_LIST = [{
    "name": "web1", "id": f"{SUB}/networkInterfaces/web1", "type": "Microsoft.Network/networkInterfaces",
    "networkSecurityGroup": None,
    "ipConfigurations": [{"name": "ipconfig1", "privateIPAddress": "10.0.1.4", "privateIPAllocationMethod": "Dynamic",
                          "subnet": {"id": f"{SUB}/virtualNetworks/hub/subnets/web"},
                          "applicationSecurityGroups": [{"id": f"{SUB}/applicationSecurityGroups/app-asg"}]}],
}]


def files(**docs):
    return {f"{k}.json": json.dumps(v) for k, v in docs.items()}


def test_flattened_nsg_list_unites_singular_and_plural():
    p = load(files(nsgs=FLAT_NSG_LIST))
    r = {x.name: x for x in p.nsg("web-nsg").rules}
    assert isinstance(r["ssh"].source, PrefixSide) and len(r["ssh"].source.items) == 2
    assert [(x.lo, x.hi) for x in r["ssh"].destination_ports.items] == [(22, 22), (2222, 2223)]
    assert isinstance(r["to-app"].destination, AsgSide)
    assert [a.name for a in p.asgs] == ["app-asg"]
    assert any("app-asg" in n for n in p.notes)


def test_several_az_files_make_one_policy_with_associations_from_either_side():
    p = load(files(nsgs=FLAT_NSG_LIST, vnets=VNET_LIST, nics=NIC_LIST))
    web = p.vnet("hub").subnets[0]
    assert web.nsg.name == "web-nsg"  # the association is written on the NSG side (its 'subnets')
    nic = p.nic("web1")
    # Dynamic allocation: az prints the address Azure assigned, which is the NIC's until it is deleted.
    assert nic.ip_configs[0].ip == ip_to_int("10.0.1.4") and nic.ip_configs[0].asgs[0].name == "app-asg"
    # The peered VNet is not in the inputs; az printed its address space, which joins the VirtualNetwork tag.
    assert [(c.network, c.length) for c in p.vnet("hub").onprem] == [(ip_to_int("10.9.0.0"), 16)]


def test_nested_rest_shape_and_rest_example_file():
    body = {"name": "testnsg", "id": f"{SUB}/networkSecurityGroups/testnsg",
            "type": "Microsoft.Network/networkSecurityGroups",
            "properties": {"securityRules": [{"name": "rule1", "properties": {
                "protocol": "*", "sourcePortRange": "*", "destinationPortRange": "80", "sourceAddressPrefix": "*",
                "destinationAddressPrefix": "*", "access": "Allow", "priority": 130, "direction": "Inbound"}}]}}
    example = {"parameters": {"api-version": "2023-09-01"}, "responses": {"200": {"body": body}}}
    p = load(files(example=example))
    assert p.nsg("testnsg").rules[0].priority == 130
    listed = {"value": [body, {**body, "name": "other"}]}
    assert sorted(n.name for n in load(files(listed=listed)).nsgs) == ["other", "testnsg"]


def test_rule_list_names_its_nsg_by_id():
    rules = [{"name": "r", "id": f"{SUB}/networkSecurityGroups/n/securityRules/r",
              "type": "Microsoft.Network/networkSecurityGroups/securityRules", "protocol": "Udp",
              "access": "Deny", "direction": "Outbound", "priority": 300, "sourceAddressPrefix": "*",
              "destinationAddressPrefix": "Storage", "sourcePortRange": "*", "destinationPortRange": "*"}]
    p = load(files(rules=rules))
    assert p.nsg("n").rules[0].destination == TagSide(p.nsg("n").rules[0].destination.tag,
                                                     p.nsg("n").rules[0].destination.span)
    assert any("not defined in the inputs" in n for n in p.notes)


def test_effective_rules_are_not_a_policy():
    eff = {"value": [{"networkSecurityGroup": {"id": f"{SUB}/networkSecurityGroups/n"},
                      "effectiveSecurityRules": []}]}
    with pytest.raises(InputError) as e:
        load(files(eff=eff))
    assert e.value.diagnostics[0].code == "E640"


def test_unrecognised_json_is_a_precise_error():
    with pytest.raises(InputError) as e:
        load(files(other={"hello": "world"}))
    assert e.value.diagnostics[0].code == "E603"


def test_same_nsg_in_two_exports_is_merged():
    p = load(files(a=FLAT_NSG_LIST, b=FLAT_NSG_LIST))
    assert len(p.nsgs) == 1 and len(p.nsgs[0].rules) == 2


def test_live_dynamic_address_is_the_nics_address_for_verify(tmp_path):
    """az output of a NIC with a Dynamic allocation: the reported address is where its NSGs apply (it was
    thrown away, and verify said no NSG is on the path)."""
    import io

    from nsgsolve.cli import run

    nsg = {**FLAT_NSG_LIST[0], "securityRules": [
        {"name": "no-ssh", "protocol": "Tcp", "access": "Deny", "direction": "Inbound", "priority": 100,
         "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "sourcePortRange": "*",
         "destinationPortRange": "22"}]}
    path = tmp_path / "az.json"
    path.write_text(json.dumps([nsg] + VNET_LIST + NIC_LIST))
    out, err = io.StringIO(), io.StringIO()
    status = run(["verify", str(path), "--src", "10.9.0.1", "--dst", "10.0.1.4", "--protocol", "tcp",
                  "--dport", "22"], out, err)
    assert status == 0, err.getvalue()
    assert out.getvalue().startswith("DENY") and "(nic web1)" in out.getvalue()
    assert "Deny by no-ssh" in out.getvalue()


def test_template_dynamic_address_stays_dynamic():
    from fixtures_arm import template

    nic = {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-09-01", "name": "web1",
           "properties": {"ipConfigurations": [{"name": "c", "properties": {
               "privateIPAllocationMethod": "Dynamic", "privateIPAddress": "10.0.1.4",
               "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', 'web')]"}}}]}}
    vnet = {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-09-01", "name": "hub",
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                           "subnets": [{"name": "web", "properties": {"addressPrefix": "10.0.1.0/24"}}]}}
    assert load(template([vnet, nic])).nic("web1").ip_configs[0].ip is None


def _vnet_with_prefixes(prefixes):
    return [{**VNET_LIST[0], "subnets": [{**VNET_LIST[0]["subnets"][0], "addressPrefix": None,
                                          "addressPrefixes": prefixes}]}]


def test_subnet_with_several_prefixes_keeps_each_with_its_position():
    text = json.dumps(_vnet_with_prefixes(["10.0.1.0/24", "10.0.2.0/24"]), indent=1)
    (s,) = load({"vnets.json": text}).vnet("hub").subnets
    assert [(c.network, c.length) for c in s.prefixes] == [(ip_to_int("10.0.1.0"), 24), (ip_to_int("10.0.2.0"), 24)]
    second = s.prefixes[1].span
    assert text.splitlines()[second.line - 1][second.column - 1:].startswith('"10.0.2.0/24"')


def test_subnet_with_one_prefix_in_a_list_is_that_prefix():
    p = load(files(vnets=_vnet_with_prefixes(["10.0.1.0/24"])))
    pfx = p.vnet("hub").subnets[0].prefix
    assert (pfx.network, pfx.length) == (ip_to_int("10.0.1.0"), 24)
