"""Terraform's Azure Virtual Network Manager resources (docs/import.md, "Terraform"): network groups, static
members, security admin configurations, admin rule collections and admin rules go through the converter the
ARM importer uses; azurerm_network_manager_deployment decides which configurations are deployed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nsgsolve import cli
from nsgsolve.errors import InputError
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.build import parse_policy
from nsgsolve.lang.printer import print_policy
from nsgsolve.model import Access, Direction, Protocol
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.semantics.resolve import resolve

FIXTURE = Path(__file__).parent / "tf" / "avnm"
TEXT = (FIXTURE / "main.tf").read_text()


def load(tmp_path: Path, text: str):
    (tmp_path / "main.tf").write_text(text)
    warnings: list = []
    return load_policy([str(tmp_path)], warnings=warnings), warnings


def test_the_admin_resources_become_the_policy_the_language_would_write():
    warnings: list = []
    p = load_policy([str(FIXTURE)], warnings=warnings)
    assert [(g.name, [m.name for m in g.members]) for g in p.groups] == [("prod", ["hub"])]
    (cfg,) = p.admin_configs  # Draft is not deployed: the deployment lists Guardrails only
    assert cfg.name == "Guardrails" and [c.name for c in cfg.collections] == ["HighRisk"]
    deny, always = cfg.collections[0].rules
    assert (deny.name, deny.priority, deny.direction, deny.access, deny.protocol) == (
        "Deny-SSH-RDP", 10, Direction.INBOUND, Access.DENY, Protocol.TCP)
    assert [(r.lo, r.hi) for r in deny.destination_ports.items] == [(22, 22), (3389, 3389)]
    assert always.access is Access.ALWAYS_ALLOW and always.description == "central monitoring"
    assert always.source_ports.is_any  # 0-65535 is any port
    assert any("Draft" in n and "not deployed" in n for n in p.notes)
    # The same admin layer the language writes: printed, it reads back to what the .nsg example says.
    text = print_policy(p)
    assert "20 alwaysallow Monitoring   tcp from 10.9.0.0/24, AzureLoadBalancer to any port 443" in text
    again = parse_policy(text, "again.nsg")
    assert again.admin_configs[0].collections[0].rules[1].access is Access.ALWAYS_ALLOW
    # Spans point into the .tf file.
    assert deny.span.file.endswith("main.tf") and deny.span.line > 0


def test_the_admin_layer_decides_before_the_nsgs():
    p = load_policy([str(FIXTURE)])
    ev = Evaluator(resolve(p))
    ssh = ev.evaluate(Packet(6, ip_to_int("198.51.100.1"), 49152, ip_to_int("10.0.1.4"), 22))
    assert not ssh.allowed and ssh.trace[0].layer == "admin" and ssh.trace[0].rule == "Deny-SSH-RDP"
    mon = ev.evaluate(Packet(6, ip_to_int("10.9.0.7"), 49152, ip_to_int("10.0.1.4"), 443))
    assert mon.allowed  # NSG2's Deny-Monitoring is skipped by the AlwaysAllow
    assert [s.evaluated for s in mon.trace if s.layer == "nsg"] == [False, False]


def test_without_a_deployment_every_configuration_read_is_taken_as_deployed(tmp_path):
    cut = TEXT[:TEXT.index('resource "azurerm_network_manager_deployment"')]
    p, _ = load(tmp_path, cut)
    assert sorted(c.name for c in p.admin_configs) == ["Draft", "Guardrails"]


def test_a_manager_without_security_admin_access_deploys_nothing(tmp_path):
    text = TEXT.replace('scope_accesses = ["SecurityAdmin"]', 'scope_accesses = ["Connectivity"]')
    p, warnings = load(tmp_path, text)
    assert p.admin_configs == ()
    assert [w.code for w in warnings] == ["W670"]


def test_deployed_configurations_not_known_offline_are_all_taken(tmp_path):
    text = TEXT.replace(
        "configuration_ids  = [azurerm_network_manager_security_admin_configuration.guard.id]",
        "configuration_ids  = var.configs") + '\nvariable "configs" {}\n'
    p, warnings = load(tmp_path, text)
    assert sorted(c.name for c in p.admin_configs) == ["Draft", "Guardrails"]
    assert "W671" in [w.code for w in warnings]


def test_a_parent_id_of_the_wrong_type_is_a_located_error(tmp_path):
    text = TEXT.replace("admin_rule_collection_id = azurerm_network_manager_admin_rule_collection.high.id",
                        "admin_rule_collection_id = azurerm_virtual_network.hub.id", 1)
    with pytest.raises(InputError) as e:
        load(tmp_path, text)
    (d,) = e.value.diagnostics
    assert d.code == "E670" and d.span.line > 0 and "admin rule collection" in d.message


def test_an_admin_rule_value_not_known_offline_stops_with_its_place(tmp_path):
    text = TEXT.replace('action                   = "AlwaysAllow"', "action                   = var.act") + \
        '\nvariable "act" {}\n'
    with pytest.raises(InputError) as e:
        load(tmp_path, text)
    assert {d.code for d in e.value.diagnostics} == {"E662"}


def test_through_the_cli_with_and_without_the_admin_rules(tmp_path):
    def run(*argv):
        out, err = io.StringIO(), io.StringIO()
        return cli.run(list(argv), out, err), out.getvalue()

    status, out = run("verify", str(FIXTURE), "--src", "198.51.100.1", "--dst", "vm1", "--protocol", "tcp",
                      "--dport", "22")
    assert status == 0 and "Deny-SSH-RDP" in out and "Deny" in out
    status, out = run("lint", str(FIXTURE))
    assert status == 1 and "AVNM001/dead-by-admin-rule" in out and "Deny-Monitoring" in out
    status, out = run("lint", str(FIXTURE), "--ignore-admin-rules")
    assert "AVNM" not in out


def test_a_plan_takes_the_ids_of_network_manager_children_from_the_configuration():
    """In a plan every id is known only after apply: a child's id is its parent's (followed through the
    configuration's references) and its name, as Azure writes it; a list of ids is every id referenced."""
    p = load_policy([str(FIXTURE.parent / "show" / "avnm-plan.json")])
    assert [(g.name, [m.name for m in g.members]) for g in p.groups] == [("prod", ["hub"])]
    (cfg,) = p.admin_configs
    (coll,) = cfg.collections
    assert [g.name for g in coll.groups] == ["prod"] and [r.name for r in coll.rules] == ["Deny-SSH"]


def test_dynamic_source_blocks_of_an_admin_rule(tmp_path):
    text = TEXT.replace('''  source {
    address_prefix_type = "IPPrefix"
    address_prefix      = "10.9.0.0/24"
  }
  source {
    address_prefix_type = "ServiceTag"
    address_prefix      = "AzureLoadBalancer"
  }''', '''  dynamic "source" {
    for_each = var.monitors
    content {
      address_prefix_type = can(cidrhost(source.value, 0)) ? "IPPrefix" : "ServiceTag"
      address_prefix      = source.value
    }
  }''') + '\nvariable "monitors" { default = ["10.9.0.0/24", "10.8.0.0/24", "AzureLoadBalancer"] }\n'
    p, _ = load(tmp_path, text)
    always = p.admin_configs[0].collections[0].rules[1]
    assert "10.9.0.0/24, 10.8.0.0/24, AzureLoadBalancer" in print_policy(p) and always.name == "Monitoring"
