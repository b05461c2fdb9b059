"""Security admin rules (Azure Virtual Network Manager) and the trace's "evaluated" marks, as a user
meets them: the language, verify's text and JSON, show, query, check, --ignore-admin-rules, W510.

The property tests that hold evaluator == Z3 == regions with admin rules live beside the ones without:
tests/test_encode.py, tests/test_query.py, tests/test_paths.py and tests/test_diff.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

from nsgsolve.cli import run
from nsgsolve.lang.build import parse_policy
from nsgsolve.model import Access
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import resolve

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "avnm.nsg")


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def verify_json(src, dst, dport, *extra):
    status, out, err = cli("verify", EXAMPLE, "--src", src, "--dst", dst, "--protocol", "tcp", "--dport",
                           str(dport), "--json", *extra)
    assert status == 0, err
    return json.loads(out)


def test_microsofts_worked_example_marks_the_nic_nsg_not_evaluated():
    """Internet -> VM1 port 80: NSG1 on the subnet denies (DenyAllInBound), so Azure never consults NSG2
    on the NIC; the trace keeps NSG2 (its allow rule is what would decide) but marks it."""
    doc = verify_json("198.51.100.1", "vm1", 80)
    assert doc["decision"] == "Deny"
    nsg = [t for t in doc["trace"] if t["layer"] == "nsg"]
    assert [(t["nsg"], t["rule"], t["evaluated"]) for t in nsg] == [
        ("NSG1", "DenyAllInBound", True), ("NSG2", "Allow-Http", False)]
    assert nsg[1]["skipped"] == "not evaluated: an earlier layer denied"
    assert all("evaluated" in t for t in doc["trace"])
    status, out, _ = cli("verify", EXAMPLE, "--src", "198.51.100.1", "--dst", "vm1", "--protocol", "tcp",
                         "--dport", "80")
    line = next(ln for ln in out.splitlines() if "NSG2" in ln)
    assert line.endswith("(not evaluated: an earlier layer denied)")


def test_admin_deny_drops_before_any_nsg():
    doc = verify_json("198.51.100.1", "vm1", 22)
    assert doc["decision"] == "Deny"
    first = doc["trace"][0]
    assert (first["layer"], first["rule"], first["access"], first["priority"], first["evaluated"]) == (
        "admin", "Deny-SSH-RDP", "Deny", 10, True)
    assert first["admin_collection"] == "Guardrails/HighRisk"
    assert all(not t["evaluated"] for t in doc["trace"][1:])


def test_always_allow_skips_the_nsgs_of_that_direction_only():
    # app-nsg denies 10.9.0.0/24 on 443, but the admin AlwaysAllow lets it past.
    doc = verify_json("10.9.0.7", "app1", 443)
    assert doc["decision"] == "Allow"
    assert [(t["layer"], t["access"], t["evaluated"]) for t in doc["trace"]] == [
        ("admin", "AlwaysAllow", True), ("nsg", "Deny", False)]
    assert doc["trace"][1]["skipped"] == "skipped: AlwaysAllow by admin rule Monitoring"
    status, out, _ = cli("verify", EXAMPLE, "--src", "10.9.0.7", "--dst", "app1", "--protocol", "tcp",
                         "--dport", "443")
    assert "(skipped: AlwaysAllow by admin rule Monitoring)" in out


def test_admin_allow_and_no_match_leave_the_decision_to_the_nsgs():
    # vm1 -> app1:8080: VirtualNetwork (peered) matches the admin Allow; app-nsg's defaults allow VNet traffic.
    doc = verify_json("vm1", "app1", 8080)
    admin = [t for t in doc["trace"] if t["layer"] == "admin"]
    assert [(t["rule"], t["access"]) for t in admin] == [("App", "Allow")]
    assert doc["decision"] == "Allow"
    assert doc["trace"][-1]["rule"] == "AllowVnetInBound" and doc["trace"][-1]["evaluated"]
    # No admin rule matches port 9000: the step says so and the NSGs decide.
    doc = verify_json("vm1", "app1", 9000)
    admin = [t for t in doc["trace"] if t["layer"] == "admin"]
    assert [(t["rule"], t["priority"], t["evaluated"]) for t in admin] == [("(no admin rule matched)", None, True)]


def test_ignore_admin_rules_leaves_them_out():
    doc = verify_json("10.9.0.7", "app1", 443, "--ignore-admin-rules")
    assert doc["decision"] == "Deny"
    assert all(t["layer"] != "admin" for t in doc["trace"])


def test_admin_rule_without_nsgs_and_on_the_outbound_side():
    text = """
vnet v 10.0.0.0/16 {
  subnet s 10.0.1.0/24
}
nic a in v/s ip 10.0.1.4
nic b in v/s ip 10.0.1.5
group g = v
admin c {
  collection x for g {
    outbound {
      100 deny No-Smb tcp from any to 10.0.0.0/16 port 445
    }
  }
}
"""
    rp = resolve(parse_policy(text, "t.nsg"))
    ev = Evaluator(rp)
    r = ev.evaluate(Packet.parse("tcp", "10.0.1.4", 5000, "10.0.1.5", 445))
    assert r.decision is Access.DENY
    assert [(s.layer, s.direction.value, s.rule) for s in r.trace] == [("admin", "Outbound", "No-Smb")]
    assert ev.evaluate(Packet.parse("tcp", "10.0.1.4", 5000, "10.0.1.5", 443)).decision is Access.ALLOW


def test_show_prints_the_admin_layer_per_vnet():
    status, out, err = cli("show", EXAMPLE)
    assert status == 0, err
    assert "security admin rules" in out
    assert "group prod: hub, spoke" in out
    assert "vnet spoke inbound" in out
    assert "AlwaysAllow" in out and "(Guardrails/HighRisk)" in out
    status, out, err = cli("show", EXAMPLE, "--json")
    doc = json.loads(out)
    layers = {(x["vnet"], x["direction"]): x for x in doc["admin_layers"]}
    assert [r["name"] for r in layers[("hub", "Inbound")]["rules"]] == ["Deny-SSH-RDP", "Monitoring", "App"]


def test_query_honours_admin_rules(tmp_path):
    def verdict(*argv):
        status, out, err = cli("query", EXAMPLE, *argv, "--json")
        assert status == 0, err
        return json.loads(out)["verdict"]

    assert verdict("can Internet reach vm1 port 22 tcp") == "none"  # NSG2 alone would allow nothing either
    assert verdict("can Internet reach vm1 port 80 tcp") == "none"  # NSG1 denies before NSG2's allow
    assert verdict("can 10.9.0.0/24 reach app1 port 443 tcp", "--exact") == "all"  # AlwaysAllow over app-nsg
    assert verdict("can 10.9.0.0/24 reach app1 port 443 tcp", "--ignore-admin-rules") == "none"


def test_check_proves_a_contract_over_admin_rules(tmp_path):
    p = tmp_path / "c.nsg"
    p.write_text(Path(EXAMPLE).read_text())  # its assertions rely on the admin rules
    status, out, err = cli("check", str(p))
    assert status == 0, out + err
    status, out, err = cli("check", str(p), "--ignore-admin-rules")
    assert status == 1 and "monitoring" in out, out + err


def test_equal_priorities_from_two_collections_warn_w510(tmp_path):
    text = """
vnet v 10.0.0.0/16
group g = v
admin c {
  collection x for g {
    inbound {
      10 deny A tcp from any to any port 22
    }
  }
  collection y for g {
    inbound {
      10 allow B tcp from any to any port 22
    }
  }
}
"""
    warnings = []
    parse_policy(text, "t.nsg", warnings)
    assert [w.code for w in warnings] == ["W510"]
    assert (warnings[0].span.line, warnings[0].span.column) == (12, 7)


def test_verify_flows_decides_admin_rules_like_single_verify(tmp_path):
    """The vectorised engine has no admin layer; with admin rules verify --flows uses the evaluator per flow
    and prints what verify prints for each flow."""
    rows = [("198.51.100.1", "vm1", "tcp", "50000", "80"), ("198.51.100.1", "vm1", "tcp", "50000", "22"),
            ("10.9.0.7", "app1", "tcp", "50000", "443"), ("vm1", "app1", "tcp", "50000", "8080")]
    f = tmp_path / "flows.csv"
    f.write_text("src,dst,protocol,sport,dport\n" + "".join(",".join(r) + "\n" for r in rows))
    status, out, err = cli("verify", EXAMPLE, "--flows", str(f), "--json")
    assert status == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    for r, doc in zip(rows, got):
        s, one, e = cli("verify", EXAMPLE, "--src", r[0], "--dst", r[1], "--protocol", r[2], "--sport", r[3],
                        "--dport", r[4], "--json")
        assert doc == json.loads(one), r
    assert [d["decision"] for d in got] == ["Deny", "Deny", "Allow", "Allow"]


def _changed(tmp_path, old: str, new: str, name: str = "changed.nsg") -> str:
    text = Path(EXAMPLE).read_text()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new))
    return str(p)


def _diff(old: str, new: str) -> dict:
    status, out, err = cli("diff", old, new, "--json", "--fail-on", "any")
    doc = json.loads(out)
    assert status == (1 if doc["summary"]["opened"] or doc["summary"]["closed"] else 0), err
    return doc


def test_diff_and_check_see_an_admin_rule_change_through_the_cli(tmp_path):
    """Monitoring's AlwaysAllow turned into a plain Allow: app-nsg's Deny-Monitoring decides again, so diff
    reports the monitoring traffic to app1 closed (naming the admin rule and the NSG rule on each side),
    and check fails the contract that relied on the guardrail."""
    changed = _changed(tmp_path, "20 alwaysallow Monitoring", "20 allow       Monitoring")
    doc = _diff(EXAMPLE, changed)
    closed = [p["destination"]["name"] for p in doc["pairs"] if p["closed"]]
    assert sorted(closed) == ["app1", "vm1"] and not any(p["opened"] for p in doc["pairs"]), doc["pairs"]
    status, out, err = cli("diff", EXAMPLE, changed)
    assert status == 0 and "CLOSED" in out and "Monitoring" in out and "Deny-Monitoring" in out, out + err
    status, out, err = cli("check", changed)
    assert status == 1 and "FAIL" in out and "monitoring" in out, out + err


def test_diff_sees_an_admin_rule_removed_and_a_group_member_dropped(tmp_path):
    # The SSH guardrail gone: what the NSGs allow on port 22 from the Internet tag opens (Azure's
    # 168.63.129.16 is in it and AllowVnetInBound allows it), nothing closes.
    ssh = "      10 deny        Deny-SSH-RDP tcp from Internet                       to any port 22, 3389\n"
    dropped = _changed(tmp_path, ssh, "", "dropped.nsg")
    doc = _diff(EXAMPLE, dropped)
    opened = [r for p in doc["pairs"] for r in p["opened"]]
    assert opened and not any(p["closed"] for p in doc["pairs"])
    assert {r["destination_ports"] for r in opened} <= {"22", "3389", "22,3389"}
    # spoke out of the group: app1 loses the AlwaysAllow for monitoring (closed).
    ungrouped = _changed(tmp_path, "group prod = hub, spoke", "group prod = hub", "ungrouped.nsg")
    doc = _diff(EXAMPLE, ungrouped)
    assert [p["destination"]["name"] for p in doc["pairs"] if p["closed"]] == ["app1"]
    # Unchanged admin rules: no difference at all.
    assert _diff(EXAMPLE, EXAMPLE)["summary"]["opened"] == 0
