"""`nsgsolve show` and `nsgsolve fmt` through the CLI entry point (what users run)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nsgsolve.cli import run

EXAMPLES = Path(__file__).parent.parent / "examples"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_show_lists_topology_and_rules_in_evaluation_order_with_defaults():
    status, out, err = cli("show", str(EXAMPLES / "webservers.nsg"))
    assert status == 0 and err == ""
    assert "subnet myVirtualNetwork/mySubnet  10.0.1.0/24  nsg MyNSG" in out
    assert "nic web1  10.0.1.4  asg WebServers" in out and "nic web2  dynamic" in out
    assert "nsg MyNSG  attached to subnet myVirtualNetwork/mySubnet" in out
    inbound = out[out.index("  inbound"):out.index("  outbound")]
    names = [line.split()[2] for line in inbound.splitlines()[1:]]
    assert names == ["Allow-Web-All", "AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound"]
    assert "to WebServers = 10.0.1.4, web2 (dynamic) port 80,443" in out
    outbound = out[out.index("  outbound"):]
    for name in ("AllowVnetOutBound", "AllowInternetOutBound", "DenyAllOutBound"):
        assert name in outbound


def test_show_json_has_every_nsg_evaluation():
    status, out, _ = cli("show", str(EXAMPLES / "hub-spoke.nsg"), "--json")
    doc = json.loads(out)
    spoke = next(n for n in doc["nsgs"] if n["name"] == "spoke-nsg")
    assert spoke["attached_to"] == ["subnet spoke-a/workload", "subnet spoke-b/workload"]
    assert [e["vnet"] for e in spoke["evaluations"]] == ["spoke-a", "spoke-b"]
    assert [r["priority"] for r in spoke["evaluations"][0]["inbound"]][-3:] == [65000, 65001, 65500]
    assert doc["subscription"] == "enterprise-agreement" and doc["smtp_blocked"] is False


def test_show_service_tags_file_is_used(tmp_path):
    policy = tmp_path / "p.nsg"
    policy.write_text("vnet v 10.0.0.0/16 {\n subnet s 10.0.1.0/24 nsg n\n}\n"
                      "nsg n {\n outbound {\n  100 allow r tcp from any to Sql port 1433\n }\n}\n")
    status, _, err = cli("show", str(policy))
    assert status == 2 and "E301" in err and "Sql" in err
    tags = tmp_path / "tags.json"
    tags.write_text(json.dumps({"changeNumber": 1, "values": [
        {"name": "Sql", "properties": {"addressPrefixes": ["13.69.105.0/24"]}}]}))
    status, out, _ = cli("show", str(policy), "--service-tags", str(tags))
    assert status == 0 and "to Sql = 13.69.105.0/24 port 1433" in out


def test_show_reports_input_errors_with_status_2(tmp_path):
    bad = tmp_path / "bad.nsg"
    bad.write_text("nsg n {\n inbound {\n  100 allow tcp from any to any\n }\n}\n")
    status, out, err = cli("show", str(bad))
    assert status == 2 and out == ""
    assert f"{bad}:3:17: error[E101]" in err and "hint:" in err and "Traceback" not in err


def test_fmt_prints_check_and_write(tmp_path):
    messy = tmp_path / "messy.nsg"
    messy.write_text("asg A   # the web tier\nnsg n { inbound { 100 ALLOW web TCP from Internet to A port 443 } }\n")
    status, out, _ = cli("fmt", str(messy))
    assert status == 0
    assert out == ("asg A  # the web tier\n\nnsg n {\n  inbound {\n"
                   "    100 allow web tcp from Internet to A port 443\n  }\n}\n")
    status, out, _ = cli("fmt", "--check", str(messy))
    assert status == 1 and out == f"would reformat {messy}\n"
    status, _, err = cli("fmt", "--write", str(messy))
    assert status == 0 and "reformatted" in err
    status, out, _ = cli("fmt", "--check", str(messy))
    assert status == 0 and out == ""


def test_fmt_check_passes_on_the_examples(tmp_path):
    status, out, _ = cli("fmt", "--check", *(str(p) for p in sorted(EXAMPLES.glob("*.nsg"))))
    assert (status, out) == (0, "")


def test_fmt_write_leaves_every_file_alone_when_one_is_invalid(tmp_path):
    good = tmp_path / "good.nsg"
    good.write_text("asg   A\n")
    bad = tmp_path / "bad.nsg"
    bad.write_text("asg\n")
    status, _, err = cli("fmt", "--write", str(good), str(bad))
    assert status == 2 and "E102" in err
    assert good.read_text() == "asg   A\n"


def test_fmt_refuses_json(tmp_path):
    j = tmp_path / "t.json"
    j.write_text("{}")
    status, _, err = cli("fmt", str(j))
    assert status == 2 and "nsgsolve import" in err


@pytest.mark.parametrize("command", ["show", "fmt"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as e:
        run([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"nsgsolve {command} examples/" in text


def test_hub_spoke_virtual_network_is_as_the_example_comment_says():
    # examples/hub-spoke.nsg explains spoke-nsg's VirtualNetwork: the spoke, the hub and 168.63.129.16;
    # not the other spoke and not on-premises (declared on the hub only).
    status, out, _ = cli("show", str(EXAMPLES / "hub-spoke.nsg"))
    assert status == 0
    here, vnet = {}, None
    for line in out.splitlines():
        if line.startswith("vnet "):
            vnet = line.split()[1]
        elif line.startswith("  VirtualNetwork here = "):
            here[vnet] = line.strip()
    assert here["spoke-a"] == "VirtualNetwork here = 10.100.0.0/15, 168.63.129.16"
    assert here["spoke-b"] == "VirtualNetwork here = 10.100.0.0/16, 10.102.0.0/16, 168.63.129.16"
    assert "192.168.0.0/16" in here["hub"]
