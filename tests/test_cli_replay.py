"""``nsgsolve replay`` end to end: outputs, exit statuses, bad records, the corpus samples."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from nsgsolve.cli import run

from corpus import CANDIDATES, CORPUS

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "tests" / "data" / "schemas"

POLICY = """vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
}
nic web1 in hub/web ip 10.0.1.4
nsg web-nsg {
  inbound {
    100 allow Allow-HTTPS tcp from Internet to any port 443
    200 allow Allow-Old tcp from 192.0.2.0/24 to any port 8080
  }
}
"""
NEW = POLICY.replace("from Internet to any port 443", "from 203.0.113.0/24 to any port 443")


def record(nsg: str, rule: str, tuples: list) -> dict:
    return {"time": "2026-12-05T10:00:00Z",
            "resourceId": f"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/{nsg}",
            "properties": {"Version": 2, "flows": [{"rule": rule, "flows": [{"mac": "00", "flowTuples": tuples}]}]}}


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "p.nsg").write_text(POLICY)
    (tmp_path / "new.nsg").write_text(NEW)
    logs = tmp_path / "logs" / "y=2026" / "m=12" / "d=05" / "h=10" / "m=00" / "macAddress=00"
    logs.mkdir(parents=True)
    tuples = ["1764928800,8.8.8.8,10.0.1.4,50000,443,T,I,A,B,,,,",
              "1764928801,8.8.4.4,10.0.1.4,50001,443,T,I,A,B,,,,",
              "1764928802,203.0.113.5,10.0.1.4,50002,443,T,I,A,B,,,,",
              "1764928803,8.8.8.8,10.0.1.4,50000,443,T,I,A,E,3,300,3,300"]
    (logs / "PT1H.json").write_text(json.dumps({"records": [record("WEB-NSG", "UserRule_Allow-HTTPS", tuples)]},
                                               indent=1))
    return tmp_path


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return run(list(argv), out, err), out.getvalue(), err.getvalue()


def test_json_has_the_documented_keys(setup):
    code, out, err = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--against",
                         str(setup / "new.nsg"), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert {"schema", "tuples", "rules", "unused", "mismatches", "changed"} <= set(d)
    assert d["schema"] == "nsgsolve/replay/1" and d["tuples"] == 4
    https = next(r for r in d["rules"] if r["rule"] == "Allow-HTTPS")
    assert {k: https[k] for k in ("nsg", "direction", "rule", "priority", "hits")} == {
        "nsg": "web-nsg", "direction": "Inbound", "rule": "Allow-HTTPS", "priority": 100, "hits": 4}
    assert [u["rule"] for u in d["unused"] if not u["default"]] == ["Allow-Old"]
    assert [
        {k: c[k] for k in ("src", "dst", "protocol", "dport", "before", "after", "count")} for c in d["changed"]
    ] == [
        {
            "src": "8.8.8.0/24",
            "dst": "10.0.1.4",
            "protocol": "Tcp",
            "dport": 443,
            "before": "Allow",
            "after": "Deny",
            "count": 2,
        },
        {
            "src": "8.8.4.0/24",
            "dst": "10.0.1.4",
            "protocol": "Tcp",
            "dport": 443,
            "before": "Allow",
            "after": "Deny",
            "count": 1,
        },
    ]
    assert "0 bad records skipped" in err


def test_fail_on_changed_exits_1_and_only_with_changes(setup):
    args = ["replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--fail-on", "changed"]
    assert cli(*args, "--against", str(setup / "new.nsg"))[0] == 1
    assert cli(*args, "--against", str(setup / "p.nsg"))[0] == 0
    code, _, err = cli(*args)
    assert code == 2 and "needs --against" in err


def test_text_output_reads_as_a_report(setup):
    code, out, err = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--against",
                         str(setup / "new.nsg"))
    assert code == 0
    assert "replayed 4 tuples (3 flows begun) from 1 file" in out
    assert "unused in the observed period (2025-12-05 10:00:00 .. 2025-12-05 10:00:03 UTC): 1 rule" in out
    assert "p.nsg:8:5" in out and "Allow-Old" in out
    assert "allowed -> denied (what the change breaks):" in out
    assert out.rstrip().endswith("0 bad records skipped")


def test_sarif_locates_unused_rules_and_breaking_changes_in_the_policy_files(setup):
    code, out, err = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--against",
                         str(setup / "new.nsg"), "--format", "sarif")
    log = json.loads(out)
    jsonschema.validate(log, json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")))
    results = log["runs"][0]["results"]
    unused = [r for r in results if r["ruleId"] == "replay/unused-rule"]
    breaking = [r for r in results if r["ruleId"] == "replay/breaking-change"]
    assert len(unused) == 1 and len(breaking) == 2
    loc = unused[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("p.nsg") and loc["region"]["startLine"] == 8
    # a denied flow is located at the new policy's rule that denies it: here the default rule, so the file
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("new.nsg") for r in breaking)


def test_bad_records_are_warned_with_position_and_summarised(setup):
    bad = setup / "logs" / "bad.json"
    good = json.dumps({"records": [record("WEB-NSG", "UserRule_Allow-HTTPS",
                                          ["1764928800,8.8.8.8,10.0.1.4,50000,443,T,I,A,B,,,,",
                                           "1764928800,8.8.8.8,10.0.1.4,50000,443,Q,I,A,B,,,,"])]}, indent=1)
    bad.write_text(good + "\n")
    (setup / "logs" / "cut.json").write_text(good[:-40])
    code, out, err = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"))
    assert code == 0
    assert f"{bad}:" in err and "warning[W902]: malformed tuple" in err and "protocol 'Q'" in err
    assert "warning[W900]: truncated JSON" in err
    assert "^" in err  # a caret under the spot in the log line
    assert "replayed 5 tuples" in out  # the cut record is lost whole; the malformed tuple is skipped
    assert "2 bad records skipped (listed above)" in out


def test_missing_paths_and_empty_directories_are_input_errors(setup, tmp_path):
    code, _, err = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(tmp_path / "nope"))
    assert code == 2 and "E910" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(tmp_path / "empty"))
    assert code == 2 and "E911" in err
    code, _, err = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--acl", "g=no-such")
    assert code == 2 and "no-such" in err


def test_workers_give_the_serial_output(setup):
    for k in range(3):
        d = setup / "logs" / f"h={k}"
        d.mkdir()
        (d / "PT1H.json").write_text(json.dumps({"records": [record("WEB-NSG", "UserRule_Allow-HTTPS", [
            f"17649288{k}{i},{i % 9}.8.8.8,10.0.1.4,50000,{(443, 8080)[i % 2]},T,I,A,B,,,," for i in range(10)])]}))
    one = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--json", "--workers", "1")
    two = cli("replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--json", "--workers", "2")
    assert one[0] == two[0] == 0 and one[1] == two[1]


@pytest.mark.skipif(CORPUS is None, reason=f"flow log corpus not found (looked in {', '.join(map(str, CANDIDATES))})")
def test_microsofts_samples_replay_against_the_example_policies():
    ex = ROOT / "examples" / "replay"
    code, out, err = cli("replay", str(ex / "fabrikam.nsg"), "--flow-logs",
                         str(CORPUS / "flowlogs" / "msdocs-nsg-flow-logs-overview-v2-sample.json"), "--json",
                         "--against", str(ex / "fabrikam-https.nsg"))
    d = json.loads(out)
    assert code == 0 and d["tuples"] == 11 and d["mismatches"] == []
    hits = {(r["direction"], r["rule"]): r["hits"] for r in d["rules"]}
    assert hits[("Inbound", "DenyAllInBound")] == 7 and hits[("Outbound", "AllowInternetOutBound")] == 4
    assert [(c["dst"], c["before"], c["after"]) for c in d["changed"]] == [("198.51.100.225", "Allow", "Deny")]
    code, out, err = cli("replay", str(ex / "myvnet.nsg"), "--flow-logs",
                         str(CORPUS / "flowlogs" / "msdocs-vnet-flow-logs-v4-sample.json"), "--json",
                         "--acl", "00000000-1234-abcd-ef00-c1c2c3c4c5c6=myVNet-nsg")
    d = json.loads(out)
    assert code == 0 and d["tuples"] == 19
    hits = {(r["direction"], r["rule"]): r["hits"] for r in d["rules"]}
    assert hits[("Outbound", "AllowInternetOutBound")] == 10 and hits[("Inbound", "DenyAllInBound")] == 9
    # the network manager's admin rules are not in this policy: the log says so, tuple by tuple
    assert sorted((m["kind"], m["logged"]["rule"], m["count"]) for m in d["mismatches"]) == [
        ("unknown-admin-rule", "BlockHighRiskTCPPortsFromInternet", 2), ("unknown-admin-rule", "Internet", 7)]
    # with the network manager's admin rules in the policy, those tuples are the admin layer's, and agree
    code, out, err = cli("replay", str(ex / "myvnet-avnm.nsg"), "--flow-logs",
                         str(CORPUS / "flowlogs" / "msdocs-vnet-flow-logs-v4-sample.json"), "--json",
                         "--acl", "00000000-1234-abcd-ef00-c1c2c3c4c5c6=myVNet-nsg")
    d = json.loads(out)
    assert code == 0 and d["tuples"] == 19 and d["mismatches"] == []
    assert {(r["collection"], r["rule"]): r["hits"] for r in d["admin_rules"]} == {
        ("myNetworkManager/Guardrails", "BlockHighRiskTCPPortsFromInternet"): 2,
        ("myNetworkManager/Guardrails", "Internet"): 7}
    assert {(r["direction"], r["rule"]): r["hits"] for r in d["rules"]}[("Inbound", "DenyAllInBound")] == 0


def test_lint_with_flow_logs_adds_unused_in_the_observed_period(setup):
    code, out, err = cli("lint", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"))
    assert code == 0, err  # a warning: clean-up, not a failure
    assert (
        "warning[NSG008/unused-in-observed-period]: web-nsg Inbound: no logged flow used it between "
        "2025-12-05 10:00:00 and"
        in out
    )
    assert "p.nsg:8:5" in out and "Allow-HTTPS" not in out.split("NSG008")[1].split("\n")[0]
    assert "flow logs: 4 tuples from 1 file; 0 bad records skipped" in err
    code, out, _ = cli("lint", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--format", "sarif")
    ids = [r["ruleId"] for r in json.loads(out)["runs"][0]["results"]]
    assert ids == ["NSG008/unused-in-observed-period"]
    code, out, _ = cli("lint", str(setup / "p.nsg"))
    assert "NSG008" not in out


def test_progress_bar_on_a_terminal_only(setup, monkeypatch):
    from nsgsolve.commands import replay as cmd

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(cmd._progress_bar, "MIN_BYTES", 0)
    ticks = []
    monkeypatch.setattr(cmd.time, "perf_counter", lambda: ticks.append(1) or float(len(ticks)))  # every call 1 s later
    out, err = io.StringIO(), Tty()
    assert run(["replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--workers", "1"], out, err) == 0
    assert "\rreplay [" in err.getvalue() and "MB/s" in err.getvalue()
    for k in range(3):  # several files over two processes: the bar sums what every process has read
        d = setup / "logs" / f"h={k}"
        d.mkdir()
        (d / "PT1H.json").write_text((setup / "logs" / "y=2026" / "m=12" / "d=05" / "h=10" / "m=00" / "macAddress=00"
                                      / "PT1H.json").read_text())
    out, err = io.StringIO(), Tty()
    assert run(["replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--workers", "2"], out, err) == 0
    assert "\rreplay [" in err.getvalue() and "100%" in err.getvalue()
    out, err = io.StringIO(), Tty()
    run(["replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--no-progress"], out, err)
    assert "\rreplay [" not in err.getvalue()
    out, err = io.StringIO(), io.StringIO()  # not a terminal: no bar
    run(["replay", str(setup / "p.nsg"), "--flow-logs", str(setup / "logs"), "--workers", "1"], out, err)
    assert "\rreplay [" not in err.getvalue()
