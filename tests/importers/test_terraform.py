"""Terraform: .tf files and directories, variables, modules, functions, plan/state JSON (docs/import.md "Terraform").

The corpus's real .tf files are read from ../shared/corpus/terraform (skipped with the reason when absent);
small configurations of our own are under tests/importers/tf/.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from nsgsolve import cli
from nsgsolve.errors import InputError, UsageError
from nsgsolve.importers.loader import load_policy
from nsgsolve.importers.terraform import load_root
from nsgsolve.importers.tfexpr import TfUnknown
from nsgsolve.lang.printer import print_policy
from nsgsolve.model import Cidr, PrefixSide, TagSide

from corpus import CANDIDATES, CORPUS

HERE = Path(__file__).parent / "tf"
BASIC = HERE / "basic"


def _skip_without_corpus() -> None:
    if CORPUS is None or not (CORPUS / "terraform").is_dir():
        pytest.skip(f"no Terraform corpus: looked in {', '.join(str(c / 'terraform') for c in CANDIDATES)}")


def tf_corpus() -> list[Path]:
    if CORPUS is None or not (CORPUS / "terraform").is_dir():
        return []
    return sorted((CORPUS / "terraform").glob("*.tf"))


def load(paths, **kw):
    warnings: list = []
    policy = load_policy([str(p) for p in (paths if isinstance(paths, list) else [paths])], warnings=warnings, **kw)
    return policy, warnings


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def rules_of(policy, nsg: str) -> dict:
    return {r.name: r for n in policy.nsgs if n.name == nsg for r in n.rules}


# ---------------------------------------------------------------------------------------------- the corpus

# What each real file holds once read on its own (their variables are declared in files the corpus does not
# have, so names are placeholders and address spaces unknown): NSG → number of rules, and the NIC count.
CORPUS_EXPECTED = {
    "azure-load-balancer-internal.tf": ({"network_security_group_name": 2}, 3),
    "azure-virtual-desktop-networking.tf": ({"prefix-NSG": 1}, 0),
    "dns-private-zone-standalone-rule.tf": ({"nsg-name": 1}, 0),
    "ml-hub-spoke-secure-bastion.tf": ({"nsg-bastion": 8}, 0),
    "ml-moderately-secure-network.tf": ({"nsg-training": 2, "nsg-aks": 0}, 0),
    "windows-vm-with-iis-server.tf": ({"prefix-nsg": 2}, 1),
}


@pytest.mark.parametrize("path", tf_corpus() or [None], ids=lambda p: p.name if p else "no-corpus")
def test_corpus_tf_file_imports_with_warnings_not_errors(path):
    _skip_without_corpus()
    policy, warnings = load(path)
    nsgs, nics = CORPUS_EXPECTED[path.name]
    assert {n.name: len(n.rules) for n in policy.nsgs} == nsgs
    assert len(policy.nics) == nics
    for w in warnings:
        # W606: a subnet whose VNet another file of the module defines (query and check place it anyway).
        assert w.code.startswith("W62") or w.code == "W606", w
        assert w.span.file == str(path) and w.span.line > 0, "every warning points into the file"
    # The printed policy loads back: an import never writes what nsgsolve itself rejects.
    text = print_policy(policy)
    assert text.strip()


def test_corpus_bastion_rules_read_exactly():
    _skip_without_corpus()
    policy, _ = load(CORPUS / "terraform" / "ml-hub-spoke-secure-bastion.tf")
    rules = rules_of(policy, "nsg-bastion")
    r = rules["AllowBastionHostCommunication"]
    assert r.priority == 400 and r.span.line == 47
    assert [(p.lo, p.hi) for p in r.destination_ports.items] == [(5701, 5701), (8080, 8080)]
    assert isinstance(r.source, TagSide) and r.source.tag.name == "VirtualNetwork"


def test_corpus_file_with_its_variables_is_placed_in_its_vnet():
    _skip_without_corpus()
    path = CORPUS / "terraform" / "ml-moderately-secure-network.tf"
    spaces = ["vnet_address_space=[\"10.0.0.0/16\"]", "training_subnet_address_space=[\"10.0.1.0/24\"]",
              "aks_subnet_address_space=[\"10.0.2.0/24\"]", "ml_subnet_address_space=[\"10.0.3.0/24\"]",
              "dsvm_subnet_address_space=[\"10.0.4.0/24\"]", "bastion_subnet_address_space=[\"10.0.5.0/24\"]",
              "name=ml", "environment=dev"]
    policy, warnings = load(path, tf_vars=spaces)
    assert not warnings
    (vnet,) = policy.vnets
    assert vnet.name == "vnet-ml-dev"
    subnets = {s.name: (s.prefix.lo, s.nsg.name if s.nsg else None) for s in vnet.subnets}
    assert subnets["snet-training"][1] == "nsg-training" and subnets["snet-aks"][1] == "nsg-aks"
    assert subnets["snet-dsvm"][1] is None


def test_corpus_unset_variable_is_warned_once_with_its_uses():
    _skip_without_corpus()
    _, warnings = load(CORPUS / "terraform" / "azure-load-balancer-internal.tf")
    w620 = [w for w in warnings if w.code == "W620"]
    names = [w.message.split("'")[1] for w in w620]
    assert len(names) == len(set(names)), "one warning per variable"
    nic = next(w for w in w620 if "'network_interface_name'" in w.message)
    assert "network_interface_name-0" in nic.message and "--var network_interface_name=" in nic.hint


# ---------------------------------------------------------------------------------------------- our configuration

BASIC_EXPECTED = """\
asg web-asg
asg db-asg

vnet app-vnet 10.10.0.0/16 {
  subnet web 10.10.1.0/24 nsg app-nsg
  subnet db 10.10.2.0/24 nsg app-nsg
}

nic app-web-0 in app-vnet/web {
  ipconfig ipconfig1 ip 10.10.1.10 asg web-asg
}

nic app-web-1 in app-vnet/web {
  ipconfig ipconfig1 ip dynamic asg web-asg
}

nsg app-nsg {
  inbound {
    100  allow allow-admin tcp from 203.0.113.0/24 to VirtualNetwork port 22
    210  allow allow-web   tcp from Internet       to web-asg port 80, 443
    220  allow allow-db    tcp from Internet       to db-asg port 1433
    4000 deny  deny-all-in any from any            to any
  }
}
"""


def test_module_locals_for_each_dynamic_count_and_functions():
    policy, warnings = load(BASIC, tf_vars=["admin_cidr=203.0.113.0/24"])
    assert not warnings
    assert print_policy(policy) == BASIC_EXPECTED


def test_unset_variable_leaves_the_address_open_not_empty():
    policy, warnings = load(BASIC)
    (w,) = warnings
    assert w.code == "W620" and "'admin_cidr'" in w.message and w.span.file.endswith("variables.tf")
    r = rules_of(policy, "app-nsg")["allow-admin"]
    assert isinstance(r.source, TagSide) and r.source.tag.name.startswith("?")  # symbolic, as ARM's --symbolic
    assert r.source.tag.span.file.endswith("main.tf") and r.source.tag.span.line == 29


def test_query_and_verify_read_a_directory():
    status, out, err = run_cli("query", str(BASIC), "--var", "admin_cidr=203.0.113.0/24",
                               "can 198.51.100.7 reach app-web-0 port 1433")
    assert status == 0, err
    assert "none" in out.split("verdict:")[1].split("\n")[0]
    status, out, err = run_cli("query", str(BASIC), "--var", "admin_cidr=203.0.113.0/24",
                               "can 203.0.113.9 reach app-web-0 port 22 tcp")
    assert status == 0, err
    assert "all" in out.split("verdict:")[1].split("\n")[0]


def test_var_precedence_default_tfvars_auto_var_file_var(tmp_path):
    cfg = write(tmp_path, {
        "main.tf": """
            variable "port" { default = "1" }
            resource "azurerm_network_security_group" "n" {
              name = "n"
              security_rule {
                name = "r"
                priority = 100
                direction = "Inbound"
                access = "Allow"
                protocol = "Tcp"
                source_port_range = "*"
                destination_port_range = var.port
                source_address_prefix = "*"
                destination_address_prefix = "*"
              }
            }
        """,
    })

    def port(**kw):
        policy, _ = load(cfg, **kw)
        return rules_of(policy, "n")["r"].destination_ports.items[0].lo

    assert port() == 1
    (cfg / "terraform.tfvars").write_text('port = "2"\n')
    assert port() == 2
    (cfg / "b.auto.tfvars").write_text('port = "3"\n')
    (cfg / "a.auto.tfvars").write_text('port = "9"\n')
    assert port() == 3, "auto.tfvars files apply in lexical order"
    (tmp_path / "x.tfvars").write_text('port = "4"\n')
    assert port(tf_var_files=[str(tmp_path / "x.tfvars")]) == 4
    assert port(tf_var_files=[str(tmp_path / "x.tfvars")], tf_vars=["port=5"]) == 5


def test_unknown_cli_var_is_a_usage_error():
    with pytest.raises(UsageError) as e:
        load(BASIC, tf_vars=["admin_cdir=1.2.3.4"])
    assert "admin_cidr" in e.value.hint


def test_blocks_of_a_dynamic_block_over_an_unknown_collection_are_unknown_not_a_crash(tmp_path):
    # Another resource's nested blocks read as a value: when a dynamic block generates them from a collection
    # not known offline, the value is unknown (E662 at the use), not an internal TypeError.
    rule = """
        name = "x"
        priority = PRIO
        direction = "Inbound"
        access = "Allow"
        protocol = "Tcp"
        source_port_range = "*"
        destination_port_range = "22"
        source_address_prefix = "*"
        destination_address_prefix = "*"
    """
    cfg = write(tmp_path, {"main.tf": """
        variable "rules" {}
        resource "azurerm_route_table" "a" {
          name = "a"
          dynamic "security_rule" {
            for_each = var.rules
            content {""" + rule.replace("PRIO", "100") + """}
          }
        }
        resource "azurerm_network_security_group" "b" {
          name = "b"
          security_rule {""" + rule.replace("PRIO", "100 + length(azurerm_route_table.a.security_rule)") + """}
        }
    """})
    status, _, err = run_cli("import", str(cfg / "main.tf"))
    assert status == 2, err
    assert "E662" in err and "internal error" not in err


def _eval(expr: str, tmp_path: Path | None = None, **files: str):
    text = f"locals {{\n  v = {expr}\n}}\n"
    _, env = load_root({"t.tf": text}, ".", [], [], [])
    return env.local("v", None, "")  # type: ignore[arg-type]


@pytest.mark.parametrize("expr,value", [
    # Terraform's documented examples (developer.hashicorp.com/terraform/language/functions).
    ('cidrsubnet("172.16.0.0/12", 4, 2)', "172.18.0.0/16"),
    ('cidrsubnet("10.1.2.0/24", 4, 15)', "10.1.2.240/28"),
    ('cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)', "fd00:fd12:3456:7800:a200::/72"),
    ('cidrhost("10.12.112.0/20", 16)', "10.12.112.16"),
    ('cidrhost("10.12.112.0/20", 268)', "10.12.113.12"),
    ('cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)', ["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20"]),
    ('cidrnetmask("172.16.0.0/12")', "255.240.0.0"),
    ('format("Hello, %s!", "Ander")', "Hello, Ander!"),
    ('format("There are %d lights", 4)', "There are 4 lights"),
    ('formatlist("%s-%s", ["a", "b"], ["x", "y"])', ["a-x", "b-y"]),
    ('lookup({a="ay", b="bee"}, "c", "what?")', "what?"),
    ('concat(["a", ""], ["b", "c"])', ["a", "", "b", "c"]),
    ('join(", ", ["foo", "bar", "baz"])', "foo, bar, baz"),
    ('element(["a", "b", "c"], 3)', "a"),
    ('flatten([["a", "b"], [], ["c"]])', ["a", "b", "c"]),
    ('merge({a="b", c="d"}, {e="f", c="z"})', {"a": "b", "c": "z", "e": "f"}),
    ('coalesce("", "b")', "b"),
    ('[for s in ["a", "b"] : upper(s) if s != "b"]', ["A"]),
    ('{for k, v in {a = 1, b = 2} : v => k}', {"1": "a", "2": "b"}),
    ('length([1, 2]) > 1 ? "many" : "one"', "many"),
    ('"x-${1 + 2 * 3}"', "x-7"),
    ('try(lookup({}, "k"), "fallback")', "fallback"),
    ('[{n = 1}, {n = 2}][*].n', [1, 2]),
    ('replace("1 + 2 + 3", "+", "-")', "1 - 2 - 3"),
    ('toset(["b", "a", "b"])', ["a", "b"]),
    ('zipmap(["a", "b"], [1, 2])', {"a": 1, "b": 2}),
])
def test_functions_agree_with_terraform(expr, value):
    assert _eval(expr) == value


def test_variable_values_take_their_declared_type(tmp_path):
    text = textwrap.dedent("""
        variable "rules" {
          type = list(object({ name = string, port = number, src = optional(string), dst = optional(string, "*") }))
          default = [{ name = "a", port = "22" }]
        }
        variable "n" { type = number }
        locals {
          v = var.rules
          n = var.n + 1
        }
    """)
    _, env = load_root({"t.tf": text}, ".", [], ["n=41"], [])
    assert env.local("v", None, "") == [{"name": "a", "port": 22, "src": None, "dst": "*"}]  # type: ignore[arg-type]
    assert env.local("n", None, "") == 42  # type: ignore[arg-type]


def test_unknown_spreads_and_keeps_a_name_placeholder():
    text = 'variable "env" {}\nlocals {\n  name = "nsg-${var.env}"\n  pfx = cidrsubnet(var.env, 8, 1)\n}\n'
    _, env = load_root({"t.tf": text}, ".", [], [], [])
    name = env.local("name", None, "")  # type: ignore[arg-type]
    pfx = env.local("pfx", None, "")  # type: ignore[arg-type]
    assert isinstance(name, TfUnknown) and name.placeholder == "nsg-env" and name.vars == ("env",)
    assert isinstance(pfx, TfUnknown) and pfx.placeholder is None and not pfx.error


# ---------------------------------------------------------------------------------------------- resources

RULE = """
    security_rule {{
      name                       = "{name}"
      priority                   = {priority}
      direction                  = "Inbound"
      access                     = "Allow"
      protocol                   = "Tcp"
      source_port_range          = "*"
      destination_port_range     = "443"
      source_address_prefix      = "*"
      destination_address_prefix = "*"
    }}
"""

NET = """
resource "azurerm_virtual_network" "v" {
  name          = "v"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "s" {
  name                 = "s"
  virtual_network_name = azurerm_virtual_network.v.name
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_network_security_group" "n" {
  name = "n"
""" + RULE.format(name="https", priority=100) + "}\n"


def test_scale_set_network_interface_is_a_dynamic_nic_with_nsg_and_asgs(tmp_path):
    cfg = write(tmp_path, {"main.tf": NET + """
        resource "azurerm_application_security_group" "web" { name = "web" }
        resource "azurerm_linux_virtual_machine_scale_set" "ss" {
          name = "ss"
          network_interface {
            name                      = "nic"
            primary                   = true
            network_security_group_id = azurerm_network_security_group.n.id
            ip_configuration {
              name                           = "internal"
              primary                        = true
              subnet_id                      = azurerm_subnet.s.id
              application_security_group_ids = [azurerm_application_security_group.web.id]
            }
          }
        }
    """})
    policy, _ = load(cfg)
    assert [n.name for n in policy.nics] == ["ss.nic.0", "ss.nic.1"]  # the ARM importer's names, two instances
    for nic in policy.nics:
        assert nic.nsg.name == "n" and (nic.subnet.vnet, nic.subnet.subnet) == ("v", "s")
        (ipc,) = nic.ip_configs
        assert ipc.ip is None and [a.name for a in ipc.asgs] == ["web"]


def test_peering_and_nic_nsg_association(tmp_path):
    cfg = write(tmp_path, {"main.tf": NET + """
        resource "azurerm_virtual_network" "hub" {
          name          = "hub"
          address_space = ["10.1.0.0/16"]
        }
        resource "azurerm_virtual_network_peering" "p" {
          name                      = "p"
          virtual_network_name      = azurerm_virtual_network.v.name
          remote_virtual_network_id = azurerm_virtual_network.hub.id
        }
        resource "azurerm_network_interface" "nic" {
          name = "nic"
          ip_configuration {
            name                          = "c"
            subnet_id                     = azurerm_subnet.s.id
            private_ip_address_allocation = "Static"
            private_ip_address            = "10.0.1.5"
          }
        }
        resource "azurerm_network_interface_security_group_association" "a" {
          network_interface_id      = azurerm_network_interface.nic.id
          network_security_group_id = azurerm_network_security_group.n.id
        }
    """})
    policy, _ = load(cfg)
    v = next(v for v in policy.vnets if v.name == "v")
    assert [p.name for p in v.peerings] == ["hub"]
    (nic,) = policy.nics
    assert nic.nsg.name == "n" and nic.ip_configs[0].ip == (10 << 24) + (1 << 8) + 5


def test_inline_vnet_subnet_blocks(tmp_path):
    cfg = write(tmp_path, {"main.tf": """
        resource "azurerm_network_security_group" "n" { name = "n" }
        resource "azurerm_virtual_network" "v" {
          name          = "v"
          address_space = ["10.0.0.0/16"]
          subnet {
            name             = "a"
            address_prefixes = ["10.0.1.0/24"]
            security_group   = azurerm_network_security_group.n.id
          }
        }
    """})
    policy, _ = load(cfg)
    (s,) = policy.vnets[0].subnets
    assert s.name == "a" and s.nsg.name == "n" and isinstance(s.prefix, Cidr)


def test_registry_module_is_a_warning_naming_it(tmp_path):
    cfg = write(tmp_path, {"main.tf": NET + """
        module "vnet" {
          source  = "Azure/vnet/azurerm"
          version = "4.1.0"
        }
    """})
    policy, warnings = load(cfg)
    (w,) = [w for w in warnings if w.code == "W621"]
    line = next(i for i, t in enumerate((cfg / "main.tf").read_text().split("\n"), 1) if "module \"vnet\"" in t)
    assert "Azure/vnet/azurerm" in w.message and w.span.line == line
    assert policy.nsgs


def test_missing_module_directory_is_located(tmp_path):
    cfg = write(tmp_path, {"main.tf": 'module "m" {\n  source = "./nope"\n}\n' + NET})
    with pytest.raises(InputError) as e:
        load(cfg)
    (d,) = e.value.diagnostics
    assert d.code == "E667" and d.span.line == 1


ERRORS = [
    # (configuration, code, line, column)
    ('resource "azurerm_network_security_group" "n" {\n  name = "n"\n  security_rule {\n    name = \n  }\n}\n',
     "E660", 5, 3),  # the '}' where the value of 'name' should be
    (NET.replace('priority                   = 100', 'priority                   = "high" + 1'), "E661", 16, 36),
    ('variable "p" {}\n' + NET.replace('priority                   = 100', 'priority                   = var.p'),
     "E662", 17, 36),
    ('variable "n" {}\n' + NET.replace('resource "azurerm_subnet" "s" {', 'resource "azurerm_subnet" "s" {\n'
                                       '  count = var.n'), "E664", 8, 11),
]


def test_subnet_with_several_prefixes_keeps_them_all(tmp_path):
    f = tmp_path / "main.tf"
    f.write_text(NET.replace('address_prefixes     = ["10.0.1.0/24"]',
                             'address_prefixes = ["10.0.1.0/24", "10.0.2.0/24"]'))
    (s,) = load(f)[0].vnets[0].subnets
    assert [(c.length, c.span.line) for c in s.prefixes] == [(24, 9), (24, 9)]


@pytest.mark.parametrize("text,code,line,column", ERRORS, ids=[e[1] for e in ERRORS])
def test_bad_configuration_is_a_located_error(tmp_path, text, code, line, column):
    f = tmp_path / "main.tf"
    f.write_text(text)
    with pytest.raises(InputError) as e:
        load(f)
    d = e.value.diagnostics[0]
    assert (d.code, d.span.file, d.span.line, d.span.column) == (code, str(f), line, column), d
    status, out, err = run_cli("lint", str(f))
    assert status == 2 and f"error[{code}]" in err and "Traceback" not in err and "^" in err


def test_terraform_and_other_inputs_do_not_mix(tmp_path):
    f = tmp_path / "main.tf"
    f.write_text(NET)
    j = tmp_path / "x.json"
    j.write_text("{}")
    with pytest.raises(InputError) as e:
        load([f, j])
    assert e.value.diagnostics[0].code == "E003"


# ---------------------------------------------------------------------------------------------- show -json

def test_state_json_reads_exact_values():
    policy, warnings = load(HERE / "show" / "state.json")
    assert not warnings
    (nic,) = policy.nics
    assert nic.ip_configs[0].ip == (10 << 24) + (1 << 16) + (1 << 8) + 4, "a state's dynamic address is Azure's"
    r = rules_of(policy, "web-nsg")["no-admin"]
    assert isinstance(r.destination, PrefixSide) and len(r.destination.items) == 2
    assert policy.vnets[0].subnets[0].nsg.name == "web-nsg"


def test_plan_json_takes_unknown_ids_from_the_configuration_references():
    policy, _ = load(HERE / "show" / "plan.json")
    (vnet,) = policy.vnets
    assert vnet.subnets[0].nsg.name == "app-nsg", "association ids followed through module.net's var.nsg_id"
    (nic,) = policy.nics
    assert nic.subnet.subnet == "app" and nic.ip_configs[0].ip is None


def test_plan_json_is_detected_by_content(tmp_path):
    doc = json.loads((HERE / "show" / "state.json").read_text())
    f = tmp_path / "whatever.json"
    f.write_text(json.dumps(doc))
    policy, _ = load(f)
    assert policy.nsgs[0].name == "web-nsg"


def test_tfvars_value_must_be_literal(tmp_path):
    cfg = write(tmp_path, {"main.tf": NET, "terraform.tfvars": 'x = var.y\n'})
    with pytest.raises(InputError) as e:
        load(cfg)
    (d,) = e.value.diagnostics
    assert (d.code, d.span.file, d.span.line) == ("E663", str(cfg / "terraform.tfvars"), 1)


def test_terraform_json_without_values_is_refused(tmp_path):
    f = tmp_path / "plan.json"
    f.write_text('{"format_version": "1.2", "terraform_version": "1.7.5", "resource_changes": []}')
    with pytest.raises(InputError) as e:
        load(f)
    assert e.value.diagnostics[0].code == "E666"


def test_names_known_after_apply_and_missing_objects_are_warnings(tmp_path):
    cfg = write(tmp_path, {"main.tf": """
        resource "random_pet" "p" {}
        resource "azurerm_network_security_group" "n" {
          name = "${random_pet.p.id}-nsg"
        }
        resource "azurerm_subnet_network_security_group_association" "a" {
          subnet_id                 = azurerm_subnet.elsewhere.id
          network_security_group_id = azurerm_network_security_group.n.id
        }
        resource "azurerm_virtual_network" "v" {
          name          = "v"
          address_space = data.azurerm_virtual_network.hub.address_space
        }
        data "azurerm_virtual_network" "hub" {
          name = "hub"
        }
    """})
    policy, warnings = load(cfg)
    codes = {w.code: w for w in warnings}
    assert set(codes) == {"W622", "W623", "W624"}
    assert "'p-nsg'" in codes["W622"].message and codes["W622"].span.line == 4
    assert "azurerm_subnet.elsewhere" in codes["W624"].message and codes["W624"].span.line == 7
    assert codes["W623"].span.line == 12
    assert [n.name for n in policy.nsgs] == ["p-nsg"] and not policy.vnets


def test_strict_makes_the_assumptions_errors():
    with pytest.raises(InputError) as e:
        load(BASIC, strict=True)
    assert {d.code for d in e.value.diagnostics} == {"E662"}
    assert any("admin_cidr" in d.message for d in e.value.diagnostics)
    policy, _ = load(BASIC, strict=True, tf_vars=["admin_cidr=203.0.113.0/24"])
    assert print_policy(policy) == BASIC_EXPECTED


# ---------------------------------------------------------------------------------------------- templates

TEMPLATED = NET.replace('  name = "n"\n', '''  name = "n"
  security_rule {
    name                       = "%{ if var.strict }deny%{ else }allow%{ endif }-mgmt"
    priority                   = 200
    direction                  = "Inbound"
    access                     = "%{ if var.strict ~} Deny %{~ else }Allow%{ endif }"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = split(",", "%{ for i, p in var.ports }%{ if i > 0 },%{ endif }${p}%{ endfor }")
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
    description                = "ports %{ for i, p in var.ports }${i}:${p} %{ endfor }"
  }
''')


def test_template_directives_if_and_for_are_evaluated(tmp_path):
    cfg = write(tmp_path, {"main.tf": TEMPLATED + """
        variable "strict" { default = true }
        variable "ports" { default = [22, 3389] }
    """})
    policy, warnings = load(cfg)
    r = rules_of(policy, "n")["deny-mgmt"]
    assert r.access.value == "Deny"  # the ~ strip markers trim the spaces around Deny
    assert [(p.lo, p.hi) for p in r.destination_ports.items] == [(22, 22), (3389, 3389)]
    assert r.description == "ports 0:22 1:3389 "
    cfg2 = write(tmp_path / "b", {"main.tf": TEMPLATED + """
        variable "strict" { default = false }
        variable "ports" { default = [443] }
    """})
    policy, _ = load(cfg2)
    r = rules_of(policy, "n")["allow-mgmt"]
    assert r.access.value == "Allow" and [(p.lo, p.hi) for p in r.destination_ports.items] == [(443, 443)]


def test_a_template_condition_not_known_offline_is_unknown_never_a_branch(tmp_path):
    cfg = write(tmp_path, {"main.tf": TEMPLATED + """
        variable "strict" {}
        variable "ports" { default = [22] }
    """})
    with pytest.raises(InputError) as e:
        load(cfg)
    # access has no symbolic form: E662 at the template, naming the variable (never a guessed branch).
    assert any(d.code == "E662" and "strict" in d.message for d in e.value.diagnostics)


def test_an_unclosed_directive_is_a_located_error(tmp_path):
    cfg = write(tmp_path, {"main.tf": NET.replace('  name = "n"\n', '  name = "n-%{ if true }x"\n')})
    with pytest.raises(InputError) as e:
        load(cfg)
    d = e.value.diagnostics[0]
    assert d.code in ("E660", "E661") and d.span.line > 0


def test_traffic_between_two_scale_set_instances_is_a_pair_of_nics(tmp_path):
    """issue 15 item 5: instances of one scale set talk to each other through its NSG; one NIC standing for
    all of them could not carry that traffic (a NIC's traffic to itself meets no NSG)."""
    cfg = write(tmp_path, {"main.tf": NET.replace(RULE.format(name="https", priority=100), """
    security_rule {
      name                       = "no-ssh-between-instances"
      priority                   = 100
      direction                  = "Inbound"
      access                     = "Deny"
      protocol                   = "Tcp"
      source_port_range          = "*"
      destination_port_range     = "22"
      source_address_prefix      = "10.0.1.0/24"
      destination_address_prefix = "*"
    }
""") + """
        resource "azurerm_windows_virtual_machine_scale_set" "ss" {
          name      = "ss"
          instances = 4
          network_interface {
            name                      = "nic"
            network_security_group_id = azurerm_network_security_group.n.id
            ip_configuration {
              name      = "internal"
              subnet_id = azurerm_subnet.s.id
            }
          }
        }
    """})
    policy, _ = load(cfg)
    assert any("4 instance(s) written" in n for n in policy.notes)
    status, out, err = run_cli("query", str(cfg), "can ss.nic.0 reach ss.nic.1 port 22 tcp", "--json")
    assert status == 0, err
    assert json.loads(out)["verdict"] == "none"
    status, out, err = run_cli("query", str(cfg), "can ss.nic.0 reach ss.nic.1 port 443 tcp", "--json")
    assert json.loads(out)["verdict"] == "all"


def test_a_scale_set_nic_that_cannot_be_placed_costs_its_hosts_not_the_import(tmp_path):
    cfg = write(tmp_path, {"main.tf": NET + """
        resource "azurerm_linux_virtual_machine_scale_set" "ss" {
          name = "ss"
          network_interface {
            name = "nic"
            ip_configuration {
              name      = "internal"
              subnet_id = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/nope"
            }
          }
        }
    """})
    policy, warnings = load(cfg)
    assert policy.nics == () and [w.code for w in warnings] == ["W604"] and warnings[0].span.line > 0


def test_a_heredoc_is_a_template_too(tmp_path):
    cfg = write(tmp_path, {"main.tf": TEMPLATED.replace(
        '    description                = "ports %{ for i, p in var.ports }${i}:${p} %{ endfor }"',
        '    description                = <<-EOT\n      ports %{ for p in var.ports }${p} %{ endfor }\n      EOT') + """
        variable "strict" { default = true }
        variable "ports" { default = [22, 3389] }
    """})
    policy, _ = load(cfg)
    assert rules_of(policy, "n")["deny-mgmt"].description == "ports 22 3389 \n"
