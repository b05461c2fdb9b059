"""Service tags named with a region nobody gave (docs/import.md, "Service tags named with the region").

``[format('Storage.{0}', parameters('location'))]`` with ``location`` unset (or defaulting to the resource
group's), and Terraform's ``"Storage.${var.location}"``, is one of the regional tags ``Storage.<Region>``
whatever the value: a parameter ranging over those of the tag data. With the region given it is the tag
Azure names (``--param location=westeurope`` is ``Storage.WestEurope``). Without tag data a question that
meets it stops with a located E301, never an empty set.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nsgsolve.analyses.query import QueryEngine, Verdict
from nsgsolve.errors import InputError
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.build import parse_policy, parse_query
from nsgsolve.lang.printer import print_policy
from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import bind_params, resolve
from nsgsolve.semantics.servicetags import ServiceTagDb
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.smt.z3util import mk_and

from corpus import CORPUS

TAGS = {"values": [
    {"name": "Storage", "properties": {"addressPrefixes": ["20.0.0.0/14"]}},
    {"name": "Storage.WestEurope", "properties": {"addressPrefixes": ["20.0.0.0/16"]}},
    {"name": "Storage.EastUS", "properties": {"addressPrefixes": ["20.1.0.0/16"]}},
    {"name": "Storage.NorthEurope", "properties": {"addressPrefixes": ["20.2.0.0/16"]}},
    {"name": "Sql.WestEurope", "properties": {"addressPrefixes": ["30.0.0.0/16"]}},
]}
REGIONS = ["WestEurope", "EastUS", "NorthEurope"]


def _rule(name: str, priority: int, access: str, dst: str, protocol: str = "Tcp") -> dict:
    return {"name": name, "properties": {
        "priority": priority, "direction": "Outbound", "access": access, "protocol": protocol,
        "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": dst,
        "destinationPortRange": "443"}}


def template(location: dict) -> dict:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"location": location},
        "resources": [
            {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "nsg",
             "properties": {"securityRules": [
                 _rule("storage", 100, "Allow", "[format('Storage.{0}', parameters('location'))]"),
                 _rule("deny-all", 4000, "Deny", "*", "*")]}},
            {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "vnet",
             "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [
                 {"name": "web", "properties": {"addressPrefix": "10.1.0.0/24", "networkSecurityGroup": {
                     "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'nsg')]"}}}]}},
            {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": "web-0",
             "properties": {"ipConfigurations": [{"name": "ipc", "properties": {
                 "privateIPAllocationMethod": "Static", "privateIPAddress": "10.1.0.4",
                 "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'web')]"}}}]}},
        ],
    }


# The region as templates leave it: no default, or the resource group's (unknown offline).
LOCATIONS = [{"type": "string"}, {"type": "string", "defaultValue": "[resourceGroup().location]"}]


@pytest.fixture
def db(tmp_path: Path) -> ServiceTagDb:
    p = tmp_path / "tags.json"
    p.write_text(json.dumps(TAGS))
    return ServiceTagDb.from_json_file(p)


def _write(tmp_path: Path, location: dict) -> Path:
    p = tmp_path / "t.json"
    p.write_text(json.dumps(template(location), indent=1))
    return p


def _ask(policy, db, text: str):
    return QueryEngine(resolve(policy, db, symbolic_params=True)).ask(parse_query(text, policy))


@pytest.mark.parametrize("location", LOCATIONS)
def test_the_tag_is_any_regional_tag_of_the_family(tmp_path: Path, db: ServiceTagDb, location: dict):
    warnings: list = []
    policy = load_policy([_write(tmp_path, location)], warnings=warnings)
    (decl,) = policy.params
    assert decl.name == "Storage.location" and decl.allowed == ("Storage.*",)
    assert decl.span.line > 0  # where the tag is written: E301 without tag data points there
    assert any("regional" in w.message and "Storage.<Region>" in w.message for w in warnings)
    rp = resolve(policy, db, symbolic_params=True)
    assert rp.param_values("Storage.location") == ("Storage.EastUS", "Storage.NorthEurope", "Storage.WestEurope")
    r = _ask(policy, db, "can web-0 reach 20.0.0.7 port 443")  # in Storage.WestEurope only
    assert r.verdict is Verdict.SOME
    assert dict(r.allowed_witness.params) == {"Storage.location": "Storage.WestEurope"}
    assert "Storage.location = Storage.WestEurope" in str(r.allowed_witness)
    # No region's Storage tag holds 30.0.0.7 (Sql's): blocked for every region.
    assert _ask(policy, db, "can web-0 reach 30.0.0.7 port 443").verdict is Verdict.NONE


def test_the_region_given_is_azures_tag_spelling(tmp_path: Path, db: ServiceTagDb):
    for given in ("westeurope", "WestEurope", "WESTEUROPE"):  # tag names are case-insensitive
        policy = load_policy([_write(tmp_path, LOCATIONS[0])], params={"location": given})
        assert policy.params == ()
        assert _ask(policy, db, "can web-0 reach 20.0.0.7 port 443 tcp").verdict is Verdict.ALL
        assert _ask(policy, db, "can web-0 reach 20.1.0.7 port 443").verdict is Verdict.NONE


@pytest.mark.parametrize("region", REGIONS)
def test_symbolic_answer_agrees_with_the_evaluator_for_each_region(tmp_path: Path, db: ServiceTagDb, region: str):
    path = _write(tmp_path, LOCATIONS[1])
    symbolic = load_policy([path])
    concrete = load_policy([path], params={"location": region.lower()})
    ev = Evaluator(resolve(concrete, db))
    ev_bound = Evaluator(resolve(bind_params(symbolic, {"Storage.location": f"Storage.{region}"}), db))
    enc = Encoding(resolve(symbolic, db, symbolic_params=True))
    ps = PolicySolver(enc)
    decision = ps.full_decision()
    pinned = enc.pin_params({"Storage.location": f"Storage.{region}"})
    for dst in ("20.0.0.7", "20.1.0.7", "20.2.0.7", "20.3.0.7", "30.0.0.7"):
        p = Packet(6, ip_to_int("10.1.0.4"), 40000, ip_to_int(dst), 443)
        allowed = ps.find(mk_and([enc.is_packet(p), pinned]), True, "t", decision) is not None
        assert allowed == ev.evaluate(p).allowed == ev_bound.evaluate(p).allowed, (region, dst)


def test_without_tag_data_a_question_meeting_it_is_a_located_e301(tmp_path: Path):
    policy = load_policy([_write(tmp_path, LOCATIONS[0])])
    rp = resolve(policy, ServiceTagDb(), symbolic_params=True)
    with pytest.raises(InputError) as e:
        QueryEngine(rp).ask(parse_query("can web-0 reach 20.0.0.7 port 443", policy))
    d = e.value.diagnostics[0]
    assert d.code == "E301" and "Storage.<Region>" in d.message and "--service-tags" in d.hint
    assert d.span.line > 0


def test_the_param_statement_round_trips(tmp_path: Path):
    policy = load_policy([_write(tmp_path, LOCATIONS[0])])
    text = print_policy(policy)
    assert 'param Storage.location in "Storage.*"' in text
    again = parse_policy(text, "t.nsg")
    assert [(d.name, d.allowed) for d in again.params] == [("Storage.location", ("Storage.*",))]


def test_terraform_region_named_tag(tmp_path: Path, db: ServiceTagDb):
    (tmp_path / "main.tf").write_text(textwrap.dedent("""
        variable "location" {}
        resource "azurerm_network_security_group" "n" {
          name = "nsg"
          security_rule {
            name = "storage"
            priority = 100
            direction = "Outbound"
            access = "Allow"
            protocol = "Tcp"
            source_port_range = "*"
            destination_port_range = "443"
            source_address_prefix = "*"
            destination_address_prefix = "Storage.${var.location}"
          }
        }
    """))
    warnings: list = []
    policy = load_policy([str(tmp_path)], warnings=warnings)
    (decl,) = policy.params
    assert decl.name == "Storage.var.location" and decl.allowed == ("Storage.*",)
    w620 = next(w for w in warnings if w.code == "W620")
    assert "Storage.<Region>" in w620.message and "--var location=" in w620.hint
    pinned = load_policy([str(tmp_path)], tf_vars=["location=westeurope"])
    assert pinned.params == () and pinned.nsgs[0].rules[0].destination.tag.name == "Storage.westeurope"


def test_corpus_template_with_regional_tags_answers_with_tag_data():
    if CORPUS is None:
        pytest.skip("no shared corpus (../shared/corpus) to read")
    tags = sorted((CORPUS / "servicetags").glob("ServiceTags_Public*.json"))
    if not tags:
        pytest.skip("no ServiceTags file in the corpus")
    db = ServiceTagDb.from_json_file(tags[-1])
    policy = load_policy([CORPUS / "arm" / "machine-learning-end-to-end-secure.json"])
    assert {d.name for d in policy.params} == {"Storage.location", "AzureContainerRegistry.location"}
    rp = resolve(policy, db, symbolic_params=True)
    assert "Storage.WestEurope" in rp.param_values("Storage.location")
    QueryEngine(rp).ask(parse_query("can Internet reach any", policy))
    pinned = load_policy([CORPUS / "arm" / "machine-learning-end-to-end-secure.json"],
                         params={"location": "westeurope"})
    assert pinned.params == ()
    resolve(pinned, db)  # Storage.westeurope is the tag data's Storage.WestEurope


def test_an_analysis_that_needs_the_region_says_which_parameter_gives_it(tmp_path: Path, db: ServiceTagDb):
    rp = resolve(load_policy([_write(tmp_path, LOCATIONS[0])]), db)  # verify, show, diff: concrete rules only
    (d,) = rp.open_nsgs["nsg"]
    assert d.code == "E301" and "Storage.location (named with a region nobody gave)" in d.message
    assert "--param location=REGION" in d.hint


def test_bicep_interpolated_regional_tags(tmp_path: Path):
    (tmp_path / "main.bicep").write_text(textwrap.dedent("""
        param location string = resourceGroup().location
        param region string
        resource nsg 'Microsoft.Network/networkSecurityGroups@2023-04-01' = {
          name: 'nsg'
          location: location
          properties: {
            securityRules: [
              {
                name: 'st'
                properties: {
                  priority: 100
                  direction: 'Outbound'
                  access: 'Allow'
                  protocol: 'Tcp'
                  sourceAddressPrefix: '*'
                  sourcePortRange: '*'
                  destinationAddressPrefix: 'Storage.${location}'
                  destinationPortRange: '443'
                }
              }
              {
                name: 'sql'
                properties: {
                  priority: 110
                  direction: 'Outbound'
                  access: 'Allow'
                  protocol: 'Tcp'
                  sourceAddressPrefix: '*'
                  sourcePortRange: '*'
                  destinationAddressPrefix: 'Sql.${region}'
                  destinationPortRange: '1433'
                }
              }
            ]
          }
        }
    """))
    policy = load_policy([tmp_path / "main.bicep"])
    assert {(d.name, d.allowed) for d in policy.params} == {("Storage.location", ("Storage.*",)),
                                                             ("Sql.region", ("Sql.*",))}
