"""Terraform's JSON syntax (.tf.json): the same configuration as HCL, read through the same evaluator.
Every value's tree carries the value's place in the JSON file, so errors point there."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nsgsolve.errors import InputError
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.printer import print_policy
from nsgsolve.semantics.addresses import ip_to_int

HERE = Path(__file__).parent / "tf"


def load(paths, **kw):
    warnings: list = []
    return load_policy([str(p) for p in paths], warnings=warnings, **kw), warnings


def test_a_tf_json_module_reads_like_its_hcl_twin():
    # avnm-json/main.tf.json is avnm/main.tf written in Terraform's JSON syntax.
    hcl, _ = load([HERE / "avnm"])
    js, _ = load([HERE / "avnm-json"])
    assert print_policy(js) == print_policy(hcl)
    assert js.nsgs[1].rules[0].span.file.endswith("main.tf.json") and js.nsgs[1].rules[0].span.line > 1
    # One file given by name works too, and is detected by its double extension, not read as a template.
    one, _ = load([HERE / "avnm-json" / "main.tf.json"])
    assert print_policy(one) == print_policy(hcl)


DOC = {
    "variable": {"prefix": {"type": "string", "default": "app"},
                 "ports": {"type": "list(number)", "default": [22, 3389]},
                 "open": {"type": "bool"}},
    "locals": {"space": "10.1.0.0/16", "nsg_name": "${var.prefix}-nsg"},
    "resource": {
        "azurerm_virtual_network": {"v": {"name": "${var.prefix}-vnet", "address_space": ["${local.space}"],
                                          "resource_group_name": "rg", "location": "x"}},
        "azurerm_subnet": {"s": {"name": "web", "virtual_network_name": "${azurerm_virtual_network.v.name}",
                                 "resource_group_name": "rg",
                                 "address_prefixes": ["${cidrsubnet(local.space, 8, 1)}"]}},
        "azurerm_network_security_group": {"n": {
            "name": "${local.nsg_name}", "resource_group_name": "rg", "location": "x",
            "dynamic": {"security_rule": {
                "for_each": "${var.ports}",
                "content": {"name": "deny-${security_rule.value}", "priority": "${100 + security_rule.key}",
                            "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
                            "source_port_range": "*", "destination_port_range": "${security_rule.value}",
                            "source_address_prefix": "Internet", "destination_address_prefix": "*"}}}}},
        "azurerm_subnet_network_security_group_association": {"a": {
            "subnet_id": "${azurerm_subnet.s.id}",
            "network_security_group_id": "${azurerm_network_security_group.n.id}"}},
        "azurerm_network_interface": {"nic": {
            "count": 2, "name": "nic-${count.index}", "resource_group_name": "rg", "location": "x",
            "ip_configuration": {"name": "ip", "subnet_id": "${azurerm_subnet.s.id}",
                                 "private_ip_address_allocation": "Static",
                                 "private_ip_address":
                                     "${cidrhost(azurerm_subnet.s.address_prefixes[0], 4 + count.index)}"}}},
    },
}


def test_variables_locals_count_dynamic_blocks_and_templates(tmp_path):
    f = tmp_path / "main.tf.json"
    f.write_text(json.dumps(DOC, indent=2))
    p, warnings = load([tmp_path])
    assert [v.name for v in p.vnets] == ["app-vnet"]
    pfx = p.vnets[0].subnets[0].prefix
    assert (pfx.network, pfx.length) == (ip_to_int("10.1.1.0"), 24)  # cidrsubnet(local.space, 8, 1)
    assert sorted(ip.ip for n in p.nics for ip in n.ip_configs) == [ip_to_int("10.1.1.4"), ip_to_int("10.1.1.5")]
    (nsg,) = p.nsgs
    assert nsg.name == "app-nsg"
    assert [(r.name, r.priority) for r in nsg.rules] == [("deny-22", 100), ("deny-3389", 101)]
    assert sorted(n.name for n in p.nics) == ["nic-0", "nic-1"]
    assert p.vnets[0].subnets[0].nsg.name == "app-nsg"
    assert not [w for w in warnings if w.code == "W620"]  # 'open' is declared but feeds nothing


def test_json_syntax_errors_are_located(tmp_path):
    f = tmp_path / "bad.tf.json"
    f.write_text('{"resource": {"azurerm_network_security_group": {"n": {"name": "x",}}}}')
    with pytest.raises(InputError) as e:
        load([f])
    d = e.value.diagnostics[0]
    assert d.code == "E660" and d.span.line == 1 and d.span.column > 1
    f.write_text(textwrap.dedent('''\
        {
          "resourse": {}
        }
        '''))
    with pytest.raises(InputError) as e:
        load([f])
    d = e.value.diagnostics[0]
    assert d.code == "E660" and "resourse" in d.message and d.span.line == 2


def test_an_expression_error_points_at_the_json_value(tmp_path):
    doc = json.loads(json.dumps(DOC))
    doc["resource"]["azurerm_network_security_group"]["n"]["dynamic"]["security_rule"]["content"]["priority"] = \
        "${100 + \"x\"}"
    f = tmp_path / "main.tf.json"
    text = json.dumps(doc, indent=2)
    f.write_text(text)
    with pytest.raises(InputError) as e:
        load([tmp_path])
    d = next(d for d in e.value.diagnostics if d.code == "E661")
    line = next(i for i, l in enumerate(text.splitlines(), 1) if '"priority"' in l)
    assert d.span.line == line
