"""Unset Terraform variables as symbolic parameters (docs/import.md, "Unset parameters" and "Terraform").

A rule address or port that is exactly ``var.x`` (or ``"${var.x}"``, ``[var.x]``, a local that is just it)
is carried into Z3 as a variable, exactly as an unset ARM parameter: the answers of query, check and lint
hold for every value, and pinning the variable (``--var``) gives the answer of the concrete configuration.
The agreement test loads the configuration twice: pinned by ``--var`` (the evaluator's concrete policy),
and unpinned with the encoding's parameter variables pinned to the same values.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nsgsolve.analyses.query import QueryEngine, Verdict
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.build import parse_query
from nsgsolve.model import ParamDecl, PortsRef, TagSide
from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import resolve
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.smt.z3util import mk_and

MAIN = """
variable "admin_cidr" {
  type        = string
  description = "who may ssh"
}
variable "app_port" {
  type = string
  validation {
    condition     = contains(["80", "443", "8080-8090"], var.app_port)
    error_message = "one of the published ports"
  }
}
variable "blocked" {
  type = list(string)
}
variable "net" {
  type = string
}
locals {
  admin = var.admin_cidr
}
resource "azurerm_virtual_network" "v" {
  name                = "vnet1"
  address_space       = ["10.0.0.0/16"]
  location            = "westeurope"
  resource_group_name = "rg"
}
resource "azurerm_subnet" "web" {
  name                 = "web"
  virtual_network_name = azurerm_virtual_network.v.name
  resource_group_name  = "rg"
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_network_interface" "web0" {
  name                = "web-0"
  location            = "westeurope"
  resource_group_name = "rg"
  ip_configuration {
    name                          = "ipc"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Static"
    private_ip_address            = "10.0.1.4"
  }
}
resource "azurerm_network_security_group" "n" {
  name                = "web-nsg"
  location            = "westeurope"
  resource_group_name = "rg"
  security_rule {
    name                       = "deny-blocked"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefixes    = var.blocked
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "ssh"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = local.admin
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "app"
    priority                   = 120
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = var.app_port
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
# Not attached: its open rules (computed from variables) stop nothing the questions below ask.
resource "azurerm_network_security_group" "other" {
  name                = "other-nsg"
  location            = "westeurope"
  resource_group_name = "rg"
  security_rule {
    name                       = "cond"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "*"
    destination_address_prefix = "${var.admin_cidr == "" ? "*" : "VirtualNetwork"}"
  }
  security_rule {
    name                       = "computed"
    priority                   = 130
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Udp"
    source_port_range          = "*"
    destination_port_range     = "53"
    source_address_prefix      = "${var.net}/24"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "a" {
  subnet_id                 = azurerm_subnet.web.id
  network_security_group_id = azurerm_network_security_group.n.id
}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "main.tf").write_text(textwrap.dedent(MAIN))
    return tmp_path


def _load(path: Path, **kw):
    warnings: list = []
    return load_policy([str(path)], warnings=warnings, **kw), warnings


def _rules(policy) -> dict:
    return {r.name: r for n in policy.nsgs for r in n.rules}


def test_a_bare_variable_is_a_parameter_with_the_values_its_validation_allows(config: Path):
    policy, warnings = _load(config)
    decls = {d.name: d for d in policy.params}
    assert set(decls) == {"var.admin_cidr", "var.app_port", "var.blocked"}
    assert decls["var.app_port"].allowed == ("80", "443", "8080-8090")
    assert decls["var.admin_cidr"].allowed == () and decls["var.admin_cidr"].span.line == 2  # the declaration
    rules = _rules(policy)
    assert isinstance(rules["ssh"].source, TagSide) and rules["ssh"].source.tag.name == "?param:var.admin_cidr"
    assert rules["deny-blocked"].source.tag.name == "?param:var.blocked"  # a list variable: one value too
    # ... read as a list: `assert some` over it needs one packet allowed for every value (model.ParamDecl.lists)
    assert decls["var.blocked"].lists and not decls["var.admin_cidr"].lists
    (port,) = rules["app"].destination_ports.items
    assert isinstance(port, PortsRef) and port.define.name == "?param:var.app_port"
    # Computed from a variable: open (?expr:), never a parameter it is not, never empty.
    assert rules["computed"].source.tag.name.startswith("?expr:")
    assert rules["cond"].destination.tag.name.startswith("?expr:")
    w620 = {w.message.split("'")[1]: w for w in warnings if w.code == "W620"}
    assert "symbolic: query, check and lint answer for every value" in w620["admin_cidr"].message
    assert "(80, 443, 8080-8090)" in w620["app_port"].message
    assert "--var admin_cidr=VALUE" in w620["admin_cidr"].hint
    assert w620["admin_cidr"].span.line == 2 and w620["admin_cidr"].span.file.endswith("main.tf")


def test_the_query_answers_for_every_value_and_names_the_variable(config: Path):
    policy, _ = _load(config)
    rp = resolve(policy, symbolic_params=True)
    r = QueryEngine(rp).ask(parse_query("can Internet reach web-0 port 22", policy))
    assert r.allowed_witness is not None and r.verdict is Verdict.SOME
    assert "var.admin_cidr = " in str(r.allowed_witness)
    # validation allows 80, 443 and 8080-8090 only: no value opens 3389
    r = QueryEngine(rp).ask(parse_query("can Internet reach web-0 port 3389", policy))
    assert r.verdict is Verdict.NONE


def test_pinned_with_var_it_is_concrete(config: Path):
    policy, warnings = _load(config, tf_vars=["admin_cidr=203.0.113.0/24", "app_port=443",
                                              'blocked=["198.51.100.0/24"]', "net=192.0.2.0"])
    assert policy.params == () and not warnings
    rules = _rules(policy)
    (c,) = rules["ssh"].source.items
    assert (c.lo, c.length) == (ip_to_int("203.0.113.0"), 24)


PINS = [
    ("203.0.113.0/24", "443", '["198.51.100.0/24"]', "198.51.100.0/24"),
    ("0.0.0.0/0", "80", '["203.0.113.7/32"]', "203.0.113.7/32"),
    ("10.0.0.0/8", "8080-8090", '["10.0.0.0/8"]', "10.0.0.0/8"),
    ("*", "443", '["0.0.0.0/0"]', "0.0.0.0/0"),
]
PACKETS = [
    Packet(6, ip_to_int(src), 40000, ip_to_int("10.0.1.4"), dport)
    for src in ("203.0.113.7", "198.51.100.9", "10.2.3.4", "8.8.8.8")
    for dport in (22, 80, 443, 8085, 3389)
] + [Packet(1, ip_to_int("203.0.113.7"), None, ip_to_int("10.0.1.4"), None)]


@pytest.mark.parametrize("admin,port,blocked,blocked_value", PINS)
def test_symbolic_answer_agrees_with_the_evaluator_on_the_pinned_configuration(
        config: Path, admin: str, port: str, blocked: str, blocked_value: str):
    # 'net' (computed into an open rule) is pinned in both: only the parameters differ.
    concrete, _ = _load(config, tf_vars=[f"admin_cidr={admin}", f"app_port={port}", f"blocked={blocked}",
                                         "net=192.0.2.0"])
    ev = Evaluator(resolve(concrete))
    symbolic, _ = _load(config, tf_vars=["net=192.0.2.0"])
    assert {d.name for d in symbolic.params} == {"var.admin_cidr", "var.app_port", "var.blocked"}
    rp = resolve(symbolic, symbolic_params=True)
    enc = Encoding(rp)
    ps = PolicySolver(enc)
    decision = ps.full_decision()
    pinned = enc.pin_params({"var.admin_cidr": admin, "var.app_port": port, "var.blocked": blocked_value})
    for p in PACKETS:
        fixed = mk_and([enc.is_packet(p), pinned])
        allowed = ps.find(fixed, True, "t", decision) is not None
        assert allowed != (ps.find(fixed, False, "t", decision) is not None), p
        assert allowed == ev.evaluate(p).allowed, (p, admin, port, blocked)


def test_a_module_variable_is_named_with_its_module(tmp_path: Path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "main.tf").write_text(textwrap.dedent("""
        variable "src" {}
        resource "azurerm_network_security_group" "n" {
          name = "mod-nsg"
          security_rule {
            name = "r"
            priority = 100
            direction = "Inbound"
            access = "Allow"
            protocol = "Tcp"
            source_port_range = "*"
            destination_port_range = "22"
            source_address_prefix = var.src
            destination_address_prefix = "*"
          }
        }
    """))
    (tmp_path / "main.tf").write_text('module "net" {\n  source = "./net"\n}\n')
    policy, _ = _load(tmp_path)
    assert [d.name for d in policy.params] == ["module.net.var.src"]
    assert isinstance(policy.params[0], ParamDecl)


def test_an_analysis_that_needs_the_value_names_the_variable_and_how_to_pin_it(config: Path):
    policy, _ = _load(config, tf_vars=["net=192.0.2.0"])
    rp = resolve(policy)  # no symbolic parameters: the NSG is open, what meets it stops
    (d,) = [d for d in rp.open_nsgs["web-nsg"] if "admin_cidr" in d.message]
    assert d.code == "E301" and "Terraform variable var.admin_cidr" in d.message
    assert "--var admin_cidr=VALUE" in d.hint and "--param" not in d.hint
