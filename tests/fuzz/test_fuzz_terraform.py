"""Terraform (.tf) files, mutated: tokens deleted, duplicated, swapped; hostile literals (priorities 99/4097,
ports "80-70"/"65536", /33, 300.1.1.1, IPv6); unterminated strings and heredocs; interpolation, brackets and
function calls thousands deep; count/for_each of 10^9; huge numbers. Every command runs on each."""

from __future__ import annotations

import re

from hypothesis import given, strategies as st

from fuzz_harness import ROOT, fuzz_settings, mutate_tokens, policy_commands, run_cli

SEED = '''
variable "prefix" {
  type    = string
  default = "10.0.1.0/24"
}
locals {
  ports = ["22", "443"]
}
resource "azurerm_virtual_network" "v" {
  name          = "v"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "s" {
  name                 = "s"
  virtual_network_name = azurerm_virtual_network.v.name
  address_prefixes     = [var.prefix]
}
resource "azurerm_application_security_group" "web" {
  name = "web"
}
resource "azurerm_network_security_group" "n" {
  name = "n"
  dynamic "security_rule" {
    for_each = local.ports
    content {
      name                       = "allow-${security_rule.value}"
      priority                   = 100 + security_rule.key
      direction                  = "Inbound"
      access                     = "Allow"
      protocol                   = "Tcp"
      source_port_range          = "*"
      destination_port_range     = security_rule.value
      source_address_prefix      = "Internet"
      destination_address_prefix = "*"
    }
  }
}
resource "azurerm_subnet_network_security_group_association" "a" {
  subnet_id                 = azurerm_subnet.s.id
  network_security_group_id = azurerm_network_security_group.n.id
}
resource "azurerm_network_interface" "nic" {
  count = 2
  name  = "web${count.index}"
  ip_configuration {
    name                          = "ipconfig1"
    subnet_id                     = azurerm_subnet.s.id
    private_ip_address_allocation = "Static"
    private_ip_address            = cidrhost(var.prefix, 4 + count.index)
  }
}
'''

CORPUS_DIR = ROOT.parent / "shared" / "corpus" / "terraform"
SEEDS = {"seed.tf": SEED}
if CORPUS_DIR.is_dir():
    SEEDS.update({p.name: p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.tf"))[:3]})

_TOKEN = re.compile(r'\s+|"(?:[^"\\\n]|\\.)*"|[A-Za-z_][\w.\-]*|\d+|\$\{|.', re.S)
HOSTILE = ['"99"', "4097", "99", '"80-70"', '"65536"', '"0"', '"10.0.0.0/33"', '"300.1.1.1"', '"2001:db8::/32"',
           "9" * 5000, "1000000000", '"', "<<EOT", "${", "${" * 2000, "[" * 5000, "(" * 5000, "{" * 5000,
           "max(" * 3000, "\x00", "\ufeff", "null", "true", "[]", "{}", "-1", "1e400", '"*"', '"Internet"',
           "count = 1000000000", "for_each = range(1000000000)", 'module "m" { source = "./nowhere" }',
           'module "r" { source = "hashicorp/x/azurerm" }', 'source = "https://example.com/m.zip"']


def mutate(data, text: str) -> str:
    return mutate_tokens(data, text, _TOKEN, HOSTILE)


@fuzz_settings(15)
@given(data=st.data())
def test_terraform_files(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tf")
    seed = data.draw(st.sampled_from(sorted(SEEDS)), label="seed")
    path = tmp / "main.tf"
    path.write_text(mutate(data, SEEDS[seed]), encoding="utf-8", errors="surrogatepass")
    for argv in policy_commands(str(path), tmp):
        run_cli("terraform", argv)
