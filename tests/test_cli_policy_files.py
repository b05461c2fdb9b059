"""How every command reads its POLICY: one .nsg file, or several JSON files that make one policy; and the
warnings (W codes) that loading prints on stderr without changing the exit status."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nsgsolve.cli import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network"

# `az network nsg list`, `az network vnet list`, `az network nic list`: one estate over three files.
NSGS = [{
    "name": "web-nsg", "id": f"{SUB}/networkSecurityGroups/web-nsg", "type": "Microsoft.Network/networkSecurityGroups",
    "securityRules": [
        {"name": "ssh-from-office", "protocol": "Tcp", "access": "Allow", "direction": "Inbound", "priority": 100,
         "sourceAddressPrefix": "203.0.113.0/24", "sourcePortRange": "*",
         "destinationAddressPrefix": "*", "destinationPortRange": "22"},
    ],
    "subnets": [{"id": f"{SUB}/virtualNetworks/hub/subnets/web"}],
}]
VNETS = [{
    "name": "hub", "id": f"{SUB}/virtualNetworks/hub", "type": "Microsoft.Network/virtualNetworks",
    "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
    "subnets": [{"name": "web", "id": f"{SUB}/virtualNetworks/hub/subnets/web", "addressPrefix": "10.0.1.0/24"}],
}]
NICS = [{
    "name": "web1", "id": f"{SUB}/networkInterfaces/web1", "type": "Microsoft.Network/networkInterfaces",
    "ipConfigurations": [{"name": "ipconfig1", "privateIPAddress": "10.0.1.4", "privateIPAllocationMethod": "Static",
                          "subnet": {"id": f"{SUB}/virtualNetworks/hub/subnets/web"}}],
}]


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = run([str(a) for a in argv], out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def az(tmp_path):
    paths = []
    for name, doc in (("az-nsg", NSGS), ("az-vnet", VNETS), ("az-nic", NICS)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(doc, indent=2))
        paths.append(str(p))
    return paths


def test_verify_reads_three_az_files_as_one_policy(az):
    status, out, err = cli("verify", *az, "--src", "203.0.113.7", "--dst", "web1", "--protocol", "tcp",
                           "--dport", "22")
    assert status == 0, err
    assert out.startswith("ALLOW")
    assert "web-nsg on subnet hub/web: Allow by ssh-from-office (priority 100)" in out


def test_show_reads_three_az_files_as_one_policy(az):
    status, out, err = cli("show", *az, "--json")
    assert status == 0, err
    doc = json.loads(out)
    assert [n["name"] for n in doc["nics"]] == ["web1"]
    assert doc["nsgs"][0]["attached_to"] == ["subnet hub/web"]


def test_lint_reads_three_az_files_as_one_policy(az):
    status, out, err = cli("lint", *az, "--rule", "ssh-from-office")
    assert status == 0, err
    assert out.startswith("web-nsg: ")


@pytest.mark.parametrize("json_flag", [False, True])
def test_query_takes_several_files_then_the_question(az, json_flag):
    argv = ["query", *az, "can 203.0.113.0/24 reach web1 port 22 tcp"] + (["--json"] if json_flag else [])
    status, out, err = cli(*argv)
    assert status == 0, err
    if json_flag:
        assert json.loads(out)["verdict"] == "all"
    else:
        assert "verdict: all" in out


def test_query_with_several_files_and_no_question_asks_the_policy_for_its_queries(az):
    status, _, err = cli("query", *az)
    assert status == 2
    assert "has no query statements and no QUERY was given" in err


def test_query_last_argument_that_is_a_file_is_a_policy_file(az):
    # The last argument names an existing file: it is read as a policy file, never as the question.
    status, _, err = cli("query", az[0], az[1])
    assert status == 2 and "has no query statements" in err


def test_query_missing_policy_file_is_reported_as_a_file(az):
    status, _, err = cli("query", az[0], "missing.json")
    assert status == 2 and "E001" in err and "no such file: missing.json" in err


def test_several_nsg_files_are_one_error_without_pointing_at_include(tmp_path):
    status, _, err = cli("show", EXAMPLES / "webservers.nsg", EXAMPLES / "three-tier.nsg")
    assert status == 2
    assert "error[E003]" in err and "include" in err and "no 'include'" in err
    assert "Traceback" not in err


def test_mixing_nsg_and_json_is_an_error(az):
    status, _, err = cli("verify", EXAMPLES / "webservers.nsg", az[0], "--src", "web1", "--dst", "web1",
                         "--protocol", "icmp")
    assert status == 2 and "error[E003]: cannot mix an nsgsolve policy file" in err and "JSON" in err


def test_check_still_reads_each_file_as_its_own_policy(tmp_path):
    a = tmp_path / "a.nsg"
    b = tmp_path / "b.nsg"
    a.write_text((EXAMPLES / "webservers.nsg").read_text())
    b.write_text((EXAMPLES / "three-tier.nsg").read_text())
    status, out, err = cli("check", a, b)
    assert status == 0, err + out


# ---------------------------------------------------------------- warnings

ICMP_WITH_PORTS = """\
vnet v 10.0.0.0/16 {
  subnet s 10.0.1.0/24 nsg n
}
nic a in v/s ip 10.0.1.4
nsg n {
  inbound {
    100 allow Ping icmp from any to any port 7
  }
}
"""


@pytest.fixture
def icmp_policy(tmp_path):
    p = tmp_path / "icmp.nsg"
    p.write_text(ICMP_WITH_PORTS)
    return str(p)


def _assert_w401(err: str, path: str):
    assert f"{path}:7:5: warning[W401]: rule 'Ping' is Icmp with ports: it matches nothing" in err, err
    assert "    7 |     100 allow Ping icmp from any to any port 7" in err
    assert "\n" + " " * 12 + "^^^^" in err  # under the rule: gutter "    7 | " and column 5


@pytest.mark.parametrize("argv", [
    ["show"], ["show", "--json"], ["lint"], ["lint", "--json"], ["query", "can any reach a"],
    ["query", "can any reach a", "--json"], ["verify", "--src", "10.0.1.4", "--dst", "10.0.1.4", "--protocol", "tcp",
                                             "--dport", "1", "--json"],
])
def test_warnings_are_printed_on_stderr_and_json_stays_pure(icmp_policy, argv):
    cmd, *rest = argv
    argv = [cmd, icmp_policy, *rest]
    status, out, err = cli(*argv)
    assert status == 0, err
    _assert_w401(err, icmp_policy)
    if "--json" in argv:
        json.loads(out)


def test_warnings_in_check_import_and_diff(icmp_policy, tmp_path):
    assert_policy = tmp_path / "asserting.nsg"
    assert_policy.write_text(ICMP_WITH_PORTS + "assert no any -> a port 22 tcp\n")
    status, _, err = cli("check", assert_policy)
    assert status == 1 and "warning[W401]" in err
    status, _, err = cli("diff", icmp_policy, icmp_policy)
    assert status == 0 and err.count("warning[W401]") == 2


def test_warnings_do_not_change_the_exit_status_of_a_failing_load(tmp_path):
    p = tmp_path / "bad.nsg"
    p.write_text(ICMP_WITH_PORTS + "nic b in v/nope ip 10.0.1.5\n")
    status, _, err = cli("show", p)
    assert status == 2
    assert "warning[W401]" in err and "error[E201]" in err


def test_w501_from_json_inputs_points_into_the_json(tmp_path):
    other = [{**VNETS[0], "name": "other", "id": f"{SUB}/virtualNetworks/other",
              "subnets": [{"name": "web", "id": f"{SUB}/virtualNetworks/other/subnets/web",
                           "addressPrefix": "10.0.1.0/24"}]}]
    nics = NICS + [{**NICS[0], "name": "web2", "id": f"{SUB}/networkInterfaces/web2",
                    "ipConfigurations": [{**NICS[0]["ipConfigurations"][0],
                                          "subnet": {"id": f"{SUB}/virtualNetworks/other/subnets/web"}}]}]
    paths = []
    for name, doc in (("vnets", VNETS + other), ("nics", nics)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(doc, indent=2))
        paths.append(str(p))
    status, _, err = cli("show", *paths)
    assert status == 0, err
    assert "warning[W501]" in err and "nics.json:" in err


def test_a_policy_that_is_not_utf8_is_e002(tmp_path):
    p = tmp_path / "utf16.nsg"
    p.write_bytes(ICMP_WITH_PORTS.encode("utf-16"))
    status, _, err = cli("show", p)
    assert status == 2 and f"{p}: error[E002]: {p} is not UTF-8 text" in err and "save the file as UTF-8" in err


def test_no_azure_limits_analyses_an_nsg_over_1000_rules_with_w410_and_only_for_that_run(tmp_path):
    """E410 by default (Azure rejects the NSG); --no-azure-limits: W410 on stderr and the analysis runs, on
    .nsg and ARM inputs alike; the next run without the option refuses again."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from generate import generate_policy, policy_to_arm

    from nsgsolve.lang.printer import print_policy

    policy = generate_policy(1001, n_subnets=1, nics_per_subnet=1, max_prefixes=3)
    nsg, arm = tmp_path / "big.nsg", tmp_path / "big.json"
    nsg.write_text(print_policy(policy))
    arm.write_text(policy_to_arm(policy))
    for path in (nsg, arm):
        out, err = io.StringIO(), io.StringIO()
        assert run(["show", str(path)], out, err) == 2
        assert "error[E410]" in err.getvalue() and "1001 rules" in err.getvalue()
        out, err = io.StringIO(), io.StringIO()
        assert run(["show", str(path), "--no-azure-limits"], out, err) == 0
        assert "warning[W410]" in err.getvalue() and "E410" not in err.getvalue()
        assert "rule-1000" in out.getvalue()
        assert run(["show", str(path)], io.StringIO(), io.StringIO()) == 2
    # Every command that reads a policy takes the option (diff and import did not: the growth bench's diff at
    # 2,000 rules was a usage error).
    for argv in (["diff", str(nsg), str(nsg)], ["import", str(arm)]):
        assert run(argv, io.StringIO(), err := io.StringIO()) == 2 and "error[E410]" in err.getvalue()
        assert run(argv + ["--no-azure-limits"], io.StringIO(), err := io.StringIO()) == 0, err.getvalue()
        assert "warning[W410]" in err.getvalue()
