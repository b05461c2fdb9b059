"""What a file is, from its name and content: a kind nsgsolve does not read is named as such (E004-E009)
with what nsgsolve does read, never answered with the policy grammar's E101."""

from __future__ import annotations

import pytest

from nsgsolve.errors import InputError
from nsgsolve.importers.loader import INPUT_KINDS, detect, load_policy, what_nsgsolve_reads

from corpus import CORPUS

BICEP = """param location string = resourceGroup().location
resource nsg 'Microsoft.Network/networkSecurityGroups@2023-04-01' = {
  name: 'web'
}
"""
HCL = """# network
resource "azurerm_network_security_group" "web" {
  name = "web"
}
"""
YAML = """# pipeline
trigger:
  - main
"""
XML = """<?xml version="1.0"?>
<policy/>
"""
SCRIPT = """#!/bin/bash
az network nsg create -g rg -n web
"""
PWSH = """$rg = "rg"
New-AzNetworkSecurityGroup -Name web -ResourceGroupName $rg
"""


@pytest.mark.parametrize("name,text,code", [
    ("azure-pipelines.yml", "x\n", "E007"), ("x", YAML, "E007"),
    ("a.xml", "", "E008"), ("x", XML, "E008"),
    ("deploy.sh", "", "E009"), ("x", SCRIPT, "E009"), ("deploy.ps1", "x", "E009"), ("x", PWSH, "E009"),
])
def test_a_file_of_another_language_is_named_with_what_nsgsolve_reads(tmp_path, name, text, code):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(InputError) as e:
        load_policy(f)
    d = e.value.diagnostics[0]
    assert d.code == code and "does not read" in d.message and str(f) in d.message
    assert "nsgsolve reads:" in d.hint and "ARM template" in d.hint and ".nsg" not in d.message


def test_terraform_is_read_by_name_and_by_content(tmp_path):
    for name in ("main.tf", "x.txt"):
        f = tmp_path / name
        f.write_text(HCL)
        assert [n.name for n in load_policy(f).nsgs] == ["web"]
        f.unlink()
    assert detect("vars.tfvars", "").name == "terraform" and detect("x", HCL).name == "terraform"


@pytest.mark.parametrize("data", [b"PK\x03\x04rest", b"\x1f\x8b\x08\x00", b"abc\0def", b"\x7fELF\x02"])
def test_a_binary_file_is_e004(tmp_path, data):
    f = tmp_path / "policy.bin"
    f.write_bytes(data)
    with pytest.raises(InputError) as e:
        load_policy(f)
    assert e.value.diagnostics[0].code == "E004" and "binary" in e.value.diagnostics[0].message


def test_the_policy_language_and_json_are_still_read_by_content(tmp_path):
    nsg = tmp_path / "policy.txt"
    nsg.write_text("# a policy\nasg web\n")
    assert [a.name for a in load_policy(nsg).asgs] == ["web"]
    assert detect("x", '{"resources": []}').name == "json"
    assert detect("x.nsg", "asg a\n").name == "nsg" and detect("x", "asg a\n").name == "nsg"
    # A policy line is never mistaken for YAML or Bicep: statements start with a keyword and no colon.
    for line in ("tag Storage = 10.0.0.0/8", "assert no-ssh: no any -> web port 22",
                 "vnet hub 10.0.0.0/16 { subnet a 10.0.1.0/24 }", "define ports web = 80, 443"):
        assert detect("x", line + "\n").name == "nsg", line


def test_a_syntax_error_in_a_policy_is_still_the_grammar_error(tmp_path):
    f = tmp_path / "bad.nsg"
    f.write_text("vnet\n")
    with pytest.raises(InputError) as e:
        load_policy(f)
    assert e.value.diagnostics[0].code.startswith("E1")


def test_the_list_of_what_is_read_comes_from_the_table():
    readable = [k for k in INPUT_KINDS if k.reader is not None]
    assert readable and all(k.what in what_nsgsolve_reads() for k in readable)
    refused = [k for k in INPUT_KINDS if k.reader is None]
    assert all(k.code and k.hint for k in refused)
    assert len({k.code for k in refused}) == len(refused)


def test_corpus_bicep_files_are_detected_as_bicep():
    if CORPUS is None or not list((CORPUS / "bicep").rglob("*.bicep")):
        pytest.skip("no corpus bicep files")
    for f in sorted((CORPUS / "bicep").rglob("*.bicep")):
        assert detect(str(f), f.read_text()).name == "bicep", f
        assert detect("noext", f.read_text()).name == "bicep", f
    for f in sorted((CORPUS / "terraform").rglob("*.tf"))[:5]:
        assert detect(str(f), f.read_text()).name == "terraform", f
