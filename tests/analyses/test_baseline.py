"""The built-in baseline (nsgsolve.analyses.baseline): real verdicts on real inputs, every witness replayed
through the reference evaluator, the one-question-for-all-destinations shortcut against one question per
destination, waivers, open template values, and every template of the shared corpus."""

from __future__ import annotations

import datetime
import io
import json
import sys
from pathlib import Path

import pytest

from nsgsolve.analyses.baseline import (
    CONTROLS, Baseline, Control, SelectionError, Waiver, apply_waivers, check_baseline, parse_waivers, select,
)
from nsgsolve.analyses.endpoints import internet_hosts
from nsgsolve.analyses.results import Status
from nsgsolve.cli import run
from nsgsolve.errors import InputError
from nsgsolve.importers.loader import load_policy
from nsgsolve.model import Protocol, Span
from nsgsolve.semantics.evaluate import Evaluator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from corpus import CORPUS, SHARED  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "inputs" / "baseline.nsg"

POLICY = """\
vnet hub 10.1.0.0/16 {
  subnet web 10.1.1.0/24 nsg web-subnet
  subnet app 10.1.2.0/24
  subnet GatewaySubnet 10.1.255.0/27
}
nic web1 in hub/web ip 10.1.1.4 nsg web-nic
nic web2 in hub/web ip dynamic
nic app1 in hub/app ip 10.1.2.4 nsg app-nic
nsg web-subnet {
  inbound {
    100 deny No-SSH tcp from Internet to any port 22
    200 allow Admin-Range tcp from * to any port 20-25
    300 allow Web tcp from Internet to any port 80, 443
  }
}
nsg web-nic {
  inbound {
    100 allow Rdp tcp from * to any port 3389
  }
}
nsg app-nic {
  inbound {
    100 allow Rdp * from 0.0.0.0/0 to any port 3389
  }
}
nsg spare {
  inbound {
    100 allow Anything * from 0.0.0.0/0 to * port *
  }
}
"""


def policy_of(tmp_path: Path, text: str = POLICY):
    p = tmp_path / "p.nsg"
    p.write_text(text, encoding="utf-8")
    return load_policy(str(p))


def verdicts(results, control: str) -> dict[str, Status]:
    return {r.target: r.status for r in results if r.control.id == control}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------- the catalogue


def test_catalogue_ids_are_unique_and_cited():
    ids = [c.id for c in CONTROLS]
    assert len(ids) == len(set(ids))
    cis = {c.id: c for c in CONTROLS if c.set == "cis"}
    assert set(cis) == {"cis-7.1", "cis-7.2", "cis-7.3", "cis-7.4"}
    assert all("v3.0.0" in c.benchmark and "v2.1.0" in c.benchmark for c in cis.values())
    assert cis["cis-7.1"].checkov == ("CKV_AZURE_9",) and cis["cis-7.2"].tfsec == ("AVD-AZU-0050",)
    assert cis["cis-7.3"].ports is None and cis["cis-7.3"].protocol is Protocol.UDP


def test_high_risk_ports_hold_the_avnm_table_and_the_database_ports():
    ports = {p for c in CONTROLS if c.set == "high-risk-ports" for lo, hi in (c.ports or ()) for p in range(lo, hi + 1)}
    avnm = {20, 21, 22, 23, 69, 111, 119, 135, 161, 162, 445, 512, 514, 593, 873, 2049, 3389, 5800, 5900, 11211}
    issue = {1433, 3306, 5432, 6379, 27017, 5985, 5986, 445, 23, 21}
    assert avnm | issue == ports


def test_select_sets():
    assert {c.set for c in select(["all"])} == {"cis", "high-risk-ports", "hygiene"}
    assert [c.id for c in select(["hygiene"])] == ["hyg-any-to-any", "hyg-subnet-nsg", "hyg-nsg-attached"]
    with pytest.raises(SelectionError):
        select(["pci"])


# ---------------------------------------------------------------- verdicts on a policy written for them


def test_exposure_verdicts_follow_priorities_layers_ranges_and_protocols(tmp_path):
    b = Baseline(policy_of(tmp_path))
    res = b.run(select(["all"]))
    # A deny above the allow closes SSH on the web subnet; app1's NSG names no port 22: closed there too.
    # Only the NSG attached to nothing, checked on its own, lets SSH through.
    ssh = verdicts(res, "cis-7.2")
    assert {t for t, s in ssh.items() if s is Status.FAIL} == {"nsg spare"}
    # ... but the range 20-25 opens Telnet and FTP (a string match on "22" would not see 23).
    telnet = verdicts(res, "hrp-telnet")
    assert telnet["subnet hub/web"] is Status.FAIL and telnet["nic web2"] is Status.FAIL
    assert telnet["nic web1"] is Status.PASS  # its NIC NSG blocks what the subnet NSG lets in
    # RDP: web1's NIC NSG allows it from anywhere, but the subnet NSG in front of it does not.
    rdp = verdicts(res, "cis-7.1")
    assert rdp["nic web1"] is Status.PASS and rdp["nic app1"] is Status.FAIL
    # '*' protocol: UDP 3389 is open on app1, so CIS "UDP" fails there and only there (and on the lonely NSG).
    udp = verdicts(res, "cis-7.3")
    assert {t for t, s in udp.items() if s is Status.FAIL} == {"nic app1", "nsg spare"}


def test_every_failure_is_a_replayed_packet_from_the_internet_to_its_destination(tmp_path):
    b = Baseline(policy_of(tmp_path))
    internet = internet_hosts(b.rp)
    fails = [r for r in b.run(select(["cis", "high-risk-ports"])) if r.status is Status.FAIL]
    assert fails
    for r in fails:
        w = r.contract.witness
        assert w is not None and r.destination is not None
        assert w.dst_endpoint in r.destination.keys
        assert w.packet.src in internet
        flow = Evaluator(b.rp, r.contract.assignment, fast=False).evaluate(w.packet)
        assert flow.allowed and flow.dst_endpoint in r.destination.keys
        lo_hi = r.control.ports
        assert lo_hi is None or any(lo <= w.packet.dport <= hi for lo, hi in lo_hi)
        assert r.responsible and all(x.access.value == "Allow" for x in r.responsible)


def test_one_question_for_all_destinations_agrees_with_one_per_destination(tmp_path):
    """The shortcut (ask for every destination at once, peel off the one each witness reaches) against the
    plain way: one assertion per destination and control."""
    b = Baseline(policy_of(tmp_path))
    for c in select(["cis", "high-risk-ports"]):
        fast = verdicts(b.run([c]), c.id)
        for d in b.destinations:
            one = b.checker.check(b._assertion(c, [d]), c.id)
            assert one.verdict is fast[d.label], (c.id, d.label)


def test_destinations_cover_nics_subnets_and_lonely_nsgs(tmp_path):
    b = Baseline(policy_of(tmp_path))
    labels = {d.label: d for d in b.destinations}
    assert set(labels) == {"nic web1", "nic web2", "nic app1", "subnet hub/web", "nsg spare"}
    assert "attached to nothing" in labels["nsg spare"].note
    assert "a host added later" in labels["subnet hub/web"].note


def test_hygiene(tmp_path):
    res = Baseline(policy_of(tmp_path)).run(select(["hygiene"]))
    v = {r.name: r.status for r in res}
    assert v["hyg-any-to-any/rule Anything in nsg spare"] is Status.FAIL  # 0.0.0.0/0 is every address too
    assert v["hyg-any-to-any/nsg web-subnet"] is Status.PASS
    assert v["hyg-subnet-nsg/subnet hub/app"] is Status.FAIL
    assert v["hyg-subnet-nsg/subnet hub/GatewaySubnet"] is Status.PASS
    assert v["hyg-nsg-attached/nsg spare"] is Status.FAIL
    assert v["hyg-nsg-attached/nsg web-nic"] is Status.PASS


def test_a_closed_policy_passes_everything(tmp_path):
    text = """\
vnet v 10.0.0.0/16 {
  subnet s 10.0.1.0/24 nsg n
}
nic a in v/s ip 10.0.1.4
nsg n {
  inbound {
    100 allow Https tcp from VirtualNetwork to any port 443
  }
}
"""
    res = Baseline(policy_of(tmp_path, text)).run(select(["all"]))
    assert res and all(r.status is Status.PASS for r in res)


def test_hygiene_any_to_any_in_a_dual_stack_policy(tmp_path):
    # `*` is both families there: still "every packet"; 0.0.0.0/0 opens every IPv4 packet and ::/0 every IPv6
    # one, each its own failure (the check compared with the IPv4 space alone and missed `*`).
    text = """\
vnet v 10.0.0.0/16, fd00::/48 {
  subnet s 10.0.1.0/24, fd00:0:0:1::/64 nsg n
}
nic a in v/s ip 10.0.1.4
nsg n {
  inbound {
    100 allow All   any from any to any
    110 allow All4  any from 0.0.0.0/0 to 0.0.0.0/0
    120 allow All6  any from ::/0 to ::/0
    130 allow Https tcp from any to any port 443
  }
}
"""
    res = [r for r in Baseline(policy_of(tmp_path, text)).run(select(["hygiene"])) if r.control.id == "hyg-any-to-any"]
    by = {r.target: r.summary for r in res if r.status is Status.FAIL}
    assert set(by) == {"rule All in nsg n", "rule All4 in nsg n", "rule All6 in nsg n"}
    assert "matches every packet:" in by["rule All in nsg n"]
    assert "matches every IPv4 packet" in by["rule All4 in nsg n"]
    assert "matches every IPv6 packet" in by["rule All6 in nsg n"]


# ---------------------------------------------------------------- waivers


def _w(control: str, dest: str, expires: datetime.date) -> Waiver:
    return Waiver(control, dest, "because", expires, Span("w.toml", 1, 1))


def test_waivers_pass_until_they_expire(tmp_path):
    res = Baseline(policy_of(tmp_path)).run(select(["cis"]))
    today = datetime.date(2026, 12, 7)
    waived, unused = apply_waivers(res, [_w("cis-7.1", "nic app1", datetime.date(2027, 1, 1)),
                                         _w("cis-7.3", "nsg spare", datetime.date(2026, 12, 6)),
                                         _w("cis-7.2", "nic nowhere", datetime.date(2027, 1, 1))], today)
    by = {r.name: r for r in waived}
    assert by["cis-7.1/nic app1"].status is Status.PASS and by["cis-7.1/nic app1"].waiver_state == "active"
    assert "waived until 2027-01-01" in by["cis-7.1/nic app1"].summary
    assert by["cis-7.3/nsg spare"].status is Status.FAIL and "expired on 2026-12-06" in by["cis-7.3/nsg spare"].summary
    assert [w.destination for w in unused] == ["nic nowhere"]


def test_waivers_file_parses_and_errors_are_located():
    ws = parse_waivers('[[waiver]]\ncontrol = "cis-7.2"\ndestination = "nic web1"\nreason = "r"\n'
                       'expires = 2027-01-31\n', "w.toml")
    assert ws[0].expires == datetime.date(2027, 1, 31) and ws[0].span.line == 1
    for text, code in [("[[waiver]\n", "E770"), ('[[waiver]]\ncontrol = "cis-7.2"\n', "E771"),
                       ('[[waiver]]\ncontrol = "cis-9"\ndestination = "*"\nreason = "r"\nexpires = 2027-01-01\n',
                        "E772"),
                       ('[[waiver]]\ncontrol = "cis"\ndestination = "*"\nreason = "r"\n', "E773")]:
        with pytest.raises(InputError) as e:
            parse_waivers(text, "w.toml")
        assert e.value.diagnostics[0].code == code
        assert e.value.diagnostics[0].span.file == "w.toml" and e.value.diagnostics[0].span.line >= 1


# ---------------------------------------------------------------- the command


def test_check_baseline_exit_statuses_and_formats(tmp_path):
    p = tmp_path / "p.nsg"
    p.write_text(POLICY, encoding="utf-8")
    code, out, _ = cli("check", str(p), "--baseline", "cis")
    assert code == 1 and "FAIL    cis-7.1/nic app1" in out
    code, out, _ = cli("check", str(p), "--baseline", "cis", "--format", "sarif")
    run_ = json.loads(out)["runs"][0]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert set(rules) == {"baseline/cis-7.1", "baseline/cis-7.2", "baseline/cis-7.3", "baseline/cis-7.4"}
    assert rules["baseline/cis-7.1"]["properties"]["checkov"] == ["CKV_AZURE_9"]
    assert rules["baseline/cis-7.2"]["properties"]["tfsec"] == ["AVD-AZU-0050"]
    assert {r["ruleId"] for r in run_["results"]} <= set(rules)
    code, _, err = cli("check", str(p), "--waivers", str(p))
    assert code == 2 and "--baseline" in err


def test_check_baseline_passes_with_exit_0(tmp_path):
    p = tmp_path / "p.nsg"
    p.write_text("vnet v 10.0.0.0/16 {\n  subnet s 10.0.1.0/24 nsg n\n}\nnic a in v/s ip 10.0.1.4\n"
                 "nsg n {\n}\n", encoding="utf-8")
    code, out, _ = cli("check", str(p), "--baseline", "all")
    assert code == 0 and "0 failed" in out


def test_check_baseline_bad_waivers_file_is_a_located_error(tmp_path):
    w = tmp_path / "w.toml"
    w.write_text('[[waiver]]\ncontrol = "cis-7.2"\nreason = "r"\nexpires = 2027-01-01\n', encoding="utf-8")
    code, _, err = cli("check", str(GOLDEN), "--baseline", "cis", "--waivers", str(w))
    assert code == 2 and "E771" in err and f"{w}:1:1" in err


# ---------------------------------------------------------------- the shared corpus

needs_corpus = pytest.mark.skipif(CORPUS is None, reason="the shared corpus (../shared/corpus) is not here")


def _corpus_files() -> list[Path]:
    if CORPUS is None:
        return []
    return [f for f in sorted((CORPUS / "arm").glob("*.json")) + sorted((CORPUS / "terraform").glob("*.tf"))
            if not f.name.endswith(".parameters.json")]


def _tags():
    from nsgsolve.semantics.servicetags import default_tag_db

    assert CORPUS is not None
    return default_tag_db(str(next((CORPUS / "servicetags").glob("*.json"))))


@needs_corpus
def test_every_corpus_template_gets_a_verdict_for_every_control():
    """Templates that declare NSGs and subnets but no NIC (scale sets, AKS, App Gateway, API Management,
    managed instances, bare NSGs) gave E802 to a query: the baseline answers for them."""
    if SHARED is None:
        pytest.skip("no shared folder")
    db = _tags()
    without_nics = 0
    for f in _corpus_files():
        policy = load_policy(str(f), warnings=[])
        res, _ = check_baseline(policy, ["all"], db)
        controls = {r.control.id for r in res}
        exposure = {c.id for c in CONTROLS if c.kind == "exposure"}
        assert exposure <= controls, f.name
        assert all(r.status is not Status.UNKNOWN for r in res), f.name
        if not policy.nics:
            without_nics += 1
            assert any(r.destination is not None for r in res), f.name
    assert without_nics >= 20


@needs_corpus
def test_corpus_template_with_open_source_fails_for_some_value_and_names_it():
    f = CORPUS / "arm" / "darktrace-vsensor-standalone.json"
    res, _ = check_baseline(load_policy(str(f), warnings=[]), ["cis"])
    ssh = next(r for r in res if r.control.id == "cis-7.2")
    assert ssh.status is Status.FAIL and ssh.open_values
    assert ssh.open_values[0].source == "[variables('nsgSourceAddressPrefix')]"
    assert any("nsgSourceAddressPrefix" in n and "holding" in n for n in ssh.notes)
    # With the value given, the same rule is judged on it: a private range closes SSH from the Internet.
    given = load_policy(str(f), params={"MgmtSourceAddressOrRange": "10.0.0.0/8"}, warnings=[])
    res, _ = check_baseline(given, ["cis"])
    assert next(r for r in res if r.control.id == "cis-7.2").status is Status.PASS


@needs_corpus
def test_corpus_scale_set_subnet_is_a_destination():
    f = CORPUS / "arm" / "vmss-win-iis-app-ssl.json"
    res, _ = check_baseline(load_policy(str(f), warnings=[]), ["cis"])
    rdp = verdicts(res, "cis-7.1")
    assert rdp.get("subnet appVnet/FrontEndSubNet") is Status.FAIL


def test_custom_control_is_data(tmp_path):
    """A control is data: a script can ask its own question through the same prover (bench/baseline_vs_checkov)."""
    c = Control("x-8080", "cis", "8080 from the Internet", "test", ((8080, 8080),), Protocol.TCP)
    res = Baseline(policy_of(tmp_path)).run([c])
    assert verdicts(res, "x-8080")["nsg spare"] is Status.FAIL
    assert verdicts(res, "x-8080")["nic web1"] is Status.PASS


OPEN = ROOT / "tests" / "golden" / "inputs" / "baseline-open-values.json"


def test_open_port_and_source_fail_for_some_value_and_say_which():
    """adminPort (an allow rule's destination port) and adminSource (an allow rule's source) have no value:
    read at their worst, RDP and SSH are open for some value, and the notes name the parameter and the
    value the witness needs."""
    res, _ = check_baseline(load_policy(str(OPEN), warnings=[]), ["cis"])
    by = {r.control.id: r for r in res}
    rdp = by["cis-7.1"]
    assert rdp.status is Status.FAIL
    assert [o.source for o in rdp.open_values] == ["[parameters('adminPort')]"]
    assert any("destination ports value [parameters('adminPort')]" in n and "holding 3389" in n for n in rdp.notes)
    # Given a value, the same template is decided on it: port 8443 opens neither RDP nor SSH; a private
    # source closes SSH.
    given = load_policy(str(OPEN), params={"adminPort": "8443", "adminSource": "10.0.0.0/8"}, warnings=[])
    res, _ = check_baseline(given, ["cis"])
    assert {r.control.id: r.status for r in res}["cis-7.1"] is Status.PASS
    assert {r.control.id: r.status for r in res}["cis-7.2"] is Status.PASS
    assert not any(r.open_values for r in res)


def test_a_deny_with_an_open_value_is_read_as_matching_nothing(tmp_path):
    doc = json.loads(OPEN.read_text())
    rules = doc["resources"][0]["properties"]["securityRules"]
    rules[0]["properties"].update(access="Deny", destinationPortRange="22",
                                  sourceAddressPrefix="[parameters('adminSource')]")
    rules[1]["properties"].update(sourceAddressPrefix="*")
    f = tmp_path / "t.json"
    f.write_text(json.dumps(doc))
    res, _ = check_baseline(load_policy(str(f), warnings=[]), ["cis"])
    ssh = next(r for r in res if r.control.id == "cis-7.2")
    # The deny might hold every Internet address, or none: at its worst it blocks nothing, so SSH fails.
    assert ssh.status is Status.FAIL
    # With the deny's value given as '*', SSH is closed.
    res, _ = check_baseline(load_policy(str(f), params={"adminSource": "*", "adminPort": "1"}, warnings=[]), ["cis"])
    assert next(r for r in res if r.control.id == "cis-7.2").status is Status.PASS


def test_an_nsg_left_unresolved_is_undecided_never_a_pass(tmp_path):
    from nsgsolve.errors import Diagnostic

    b = Baseline(policy_of(tmp_path))
    b.rp.open_nsgs["web-subnet"] = (Diagnostic("E301", "'?expr:x' has no address data", Span("t.json", 3, 4)),)
    res = b.run(select(["cis"]))
    v = verdicts(res, "cis-7.2")
    assert v["subnet hub/web"] is Status.UNKNOWN and v["nic web1"] is Status.UNKNOWN
    assert v["nic app1"] is Status.PASS  # not behind it
    assert "t.json:3:4" in next(r.summary for r in res if r.target == "nic web1" and r.control.id == "cis-7.2")


def test_check_exit_3_when_undecided(tmp_path, monkeypatch):
    """Nothing fails and an NSG could not be resolved: exit 3, never 0."""
    import nsgsolve.analyses.baseline as mod
    from nsgsolve.errors import Diagnostic

    orig_init = mod.Baseline.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        self.rp.open_nsgs["n"] = (Diagnostic("E301", "open", Span("t.json", 3, 4)),)

    monkeypatch.setattr(mod.Baseline, "__init__", init)
    p = tmp_path / "p.nsg"
    p.write_text("vnet v 10.0.0.0/16 {\n  subnet s 10.0.1.0/24 nsg n\n}\nnic a in v/s ip 10.0.1.4\nnsg n {\n}\n",
                 encoding="utf-8")
    code, out, _ = cli("check", str(p), "--baseline", "cis")
    assert code == 3 and "UNKNOWN cis-7.2/nic a" in out and "0 failed" in out


def test_overlapping_unpeered_vnets_are_undecided_not_an_error(tmp_path):
    """Two unpeered VNets with one address space: a destination's address may belong to a NIC of either, which
    questions refuse (E803). The baseline reports those destinations undecided, with the reason."""
    text = """\
vnet a 10.0.0.0/16 {
  subnet s 10.0.1.0/24 nsg n
}
vnet b 10.0.0.0/16 {
  subnet s 10.0.1.0/24 nsg n
}
nic x in a/s ip dynamic
nsg n {
  inbound {
    100 allow Ssh tcp from * to any port 22
  }
}
"""
    res = Baseline(policy_of(tmp_path, text)).run(select(["cis"]))
    assert res and all(r.status is Status.UNKNOWN for r in res)
    assert all("E803" in r.contract.reason for r in res if r.contract is not None)
