"""Lint and the security admin layer (AVNM): AVNM001 (NSG rules an admin Deny or AlwaysAllow makes dead),
AVNM002 (admin rules shadowed by admin rules), and NSG004 naming an admin denier as such. Witnesses are
replayed through the reference evaluator; on random policies with admin rules, every rule either finding
reports can be removed with no decision changing (the exact diff finds no region)."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nsgsolve.analyses.diff import diff_policies
from nsgsolve.analyses.lint import Linter, codes_help
from nsgsolve.cli import run
from nsgsolve.lang.build import parse_policy
from nsgsolve.model import Access, Direction
from nsgsolve.semantics.evaluate import Evaluator
from nsgsolve.semantics.resolve import resolve

from strategies import policies

POLICY = """
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
}
vnet spoke 10.1.0.0/16 {
  subnet app 10.1.1.0/24 nsg app-nsg
}
nic web1 in hub/web ip 10.0.1.4 nsg nic-nsg
nic app1 in spoke/app ip 10.1.1.4

nsg web-nsg {
  inbound {
    100 allow Ssh        tcp from 1.2.3.0/24 to any port 22
    110 deny  NoMon      tcp from 10.9.0.0/24 to any port 443
    120 allow Mon        tcp from 10.9.0.0/24 to any port 443
    130 allow Web        tcp from Internet to any port 80, 443
    140 allow Half       tcp from Internet to any port 22-23
  }
}
nsg nic-nsg {
  inbound {
    100 deny Telnet tcp from any to any port 23
  }
}
nsg app-nsg {
  inbound {
    100 deny NoMon tcp from 10.9.0.0/24 to any port 443
  }
}

group all = hub, spoke
group hubs = hub

admin Guard {
  collection Base for all {
    inbound {
      10 deny        Deny-SSH    tcp from Internet    to any port 22
      20 alwaysallow Monitoring  tcp from 10.9.0.0/24 to any port 443
      30 alwaysallow Monitoring2 tcp from 10.9.0.0/25 to any port 443
      40 deny        SshAgain    tcp from 8.8.8.8     to any port 22
      50 allow       Http        tcp from any         to any port 80
    }
  }
  collection HubOnly for hubs {
    inbound {
      60 deny Http-Deny tcp from any to any port 80
    }
  }
}
"""


def lint_of(text: str):
    rp = resolve(parse_policy(text, "t.nsg"))
    return rp, Linter(rp).lint()


def by_key(findings):
    return {(f.code, f.nsg, f.rule): f for f in findings}


def test_nsg_rules_the_admin_layer_decides_first():
    rp, found = lint_of(POLICY)
    got = by_key(found)
    # An Allow whose every packet an admin Deny drops: the author's intent is overridden, an error.
    ssh = got["AVNM001", "web-nsg", "Ssh"]
    assert ssh.severity == "error" and ssh.layer == "nsg"
    assert [(c.nsg, c.name) for c in ssh.covered_by] == [("admin Guard/Base", "Deny-SSH")]
    # A Deny that an AlwaysAllow lets past: error; in both VNets it is attached in (hub's web-nsg, spoke's app-nsg).
    assert got["AVNM001", "web-nsg", "NoMon"].severity == "error"
    assert got["AVNM001", "app-nsg", "NoMon"].severity == "error"
    # NoMon shadows Mon inside web-nsg: the NSG-level finding comes first and AVNM001 is not repeated.
    assert ("NSG001", "web-nsg", "Mon") in got and ("AVNM001", "web-nsg", "Mon") not in got
    # Web: port 80 goes on to the NSGs (admin Allow) in spoke but is denied by HubOnly in hub; 443 reaches
    # the NSG: not dead.
    assert not any(k[2] == "Web" and k[0] == "AVNM001" for k in got)
    # Half: port 22 dropped by the admin layer, port 23 reaches the NSG (denied at the NIC: NSG004, whose
    # deniers name the admin rule as an admin rule, never as "platform").
    half = got["NSG004", "web-nsg", "Half"]
    assert {(c.nsg, c.name) for c in half.covered_by} == {("admin Guard/Base", "Deny-SSH"), ("nic-nsg", "Telnet"),
                                                         ("nic-nsg", "DenyAllInBound")}
    assert "platform" not in half.message


def test_admin_dead_witness_replays_through_the_evaluator():
    rp, found = lint_of(POLICY)
    for f in found:
        if f.code != "AVNM001":
            continue
        flow = Evaluator(rp, f.witness.assignment).evaluate(f.witness.packet)
        admin = [s for s in flow.trace if s.layer == "admin" and s.direction is f.direction]
        assert admin and admin[0].evaluated and admin[0].rule == f.witness.decided_by, f.message
        assert admin[0].access in (Access.DENY, Access.ALWAYS_ALLOW)
        mine = [s for s in flow.trace if s.nsg == f.nsg and s.direction is f.direction]
        assert mine and not any(s.evaluated for s in mine), f.message
        assert mine[0].rule == f.rule  # the rule would decide it there, had Azure asked


def test_admin_rules_shadowed_by_admin_rules():
    _, found = lint_of(POLICY)
    got = by_key(found)
    mon2 = got["AVNM002", "admin Guard/Base", "Monitoring2"]
    assert mon2.severity == "warning" and mon2.layer == "admin" and mon2.to_dict()["layer"] == "admin"
    assert [c.name for c in mon2.covered_by] == ["Monitoring"]
    again = got["AVNM002", "admin Guard/Base", "SshAgain"]
    assert again.severity == "warning"
    # Http-Deny (HubOnly, hub only) comes after Base's Allow Http: shadowed with another action, an error.
    http = got["AVNM002", "admin Guard/HubOnly", "Http-Deny"]
    assert http.severity == "error" and http.witness is not None and http.witness.packet.dport == 80
    assert not any(k[0] == "AVNM002" and k[2] in ("Deny-SSH", "Monitoring", "Http") for k in got)


def test_a_shadowed_admin_rule_in_one_vnet_only_says_where():
    text = POLICY.replace("collection HubOnly for hubs", "collection HubOnly for all").replace(
        "50 allow       Http        tcp from any         to any port 80",
        "50 allow       Http        tcp from 10.0.0.0/8  to any port 80")
    text = text.replace("group hubs = hub\n", "group hubs = hub\n") + """
admin Extra {
  collection E for hubs {
    inbound {
      5 deny Early tcp from any to any port 8080
      6 deny Late  tcp from any to any port 8080
    }
  }
}
"""
    _, found = lint_of(text)
    late = by_key(found)["AVNM002", "admin Extra/E", "Late"]
    assert late.vnets == ()  # E applies to hub only: shadowed everywhere it applies


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_lint_cli_text_json_sarif(tmp_path):
    p = tmp_path / "p.nsg"
    p.write_text(POLICY)
    status, out, _ = cli("lint", str(p))
    assert status == 1
    assert "error[AVNM001/dead-by-admin-rule]: web-nsg Inbound: rule Ssh" in out
    assert "warning[AVNM002/shadowed-admin-rule]: admin Guard/Base Inbound: admin rule Monitoring2" in out
    status, out, _ = cli("lint", str(p), "--json")
    codes = {f["code"] for f in json.loads(out)["findings"]}
    assert {"AVNM001", "AVNM002"} <= codes
    status, out, _ = cli("lint", str(p), "--format", "sarif")
    ids = {r["id"] for r in json.loads(out)["runs"][0]["tool"]["driver"]["rules"]}
    assert {"AVNM001/dead-by-admin-rule", "AVNM002/shadowed-admin-rule"} <= ids
    # --nsg narrows to one NSG: the admin rules are not that NSG's.
    status, out, _ = cli("lint", str(p), "--nsg", "app-nsg")
    assert "AVNM002" not in out and "AVNM001" in out
    assert "AVNM001 dead-by-admin-rule" in codes_help() and "AVNM002 shadowed-admin-rule" in codes_help()
    # --ignore-admin-rules: the NSGs as if no configuration were deployed.
    status, out, _ = cli("lint", str(p), "--ignore-admin-rules")
    assert "AVNM" not in out


def _without_nsg_rule(policy, nsg_name, rule, direction):
    nsgs = tuple(replace(n, rules=tuple(r for r in n.rules if not (r.name == rule and r.direction is direction)))
                 if n.name == nsg_name else n for n in policy.nsgs)
    return replace(policy, nsgs=nsgs)


def _without_admin_rule(policy, label, direction):
    configs = tuple(replace(c, collections=tuple(
        replace(rc, rules=tuple(r for r in rc.rules if not (r.label == label and r.direction is direction)))
        for rc in c.collections)) for c in policy.admin_configs)
    return replace(policy, admin_configs=configs)


# Drawn by CI (session 5): rO1 is the only rule of nsg1 naming AzurePlatformDNS, and a0O0 drops all of its ICMP
# packets first, so rO1 decides nothing; but its presence makes nsg1 filter DNS to 168.63.129.16, which rO0 then
# denies. Removing it opens Tcp 10.1.0.4 -> 168.63.129.16:53: lint called it dead without saying it must stay.
PLATFORM_TAG_DEAD = """
vnet vnet0 10.0.0.0/16 {
  subnet sub0 10.0.0.0/24
}
vnet vnet1 10.1.0.0/16 {
  subnet sub0 10.1.0.0/24
}
nic nic100 in vnet1/sub0 ip 10.1.0.4 nsg nsg1
nsg nsg1 {
  outbound {
    100 deny  rO0 tcp  from any to any
    101 allow rO1 icmp from any to AzurePlatformDNS
    102 allow rO2 tcp  from any to any
  }
}
group g0 = vnet0, vnet1
admin cfg {
  collection c0 for g0 {
    outbound {
      1 deny a0O0 icmp from any to any
    }
  }
}
"""


def _names_platform_tag_alone(policy, nsg_name: str, rule: str) -> bool:
    """Is ``rule`` the only rule of its NSG naming an AzurePlatform* tag it names (so its presence matters)?"""
    from nsgsolve.model import TagSide
    from nsgsolve.semantics.platform import platform_tag

    def tags(r):
        return {platform_tag(s.tag.name) for s in (r.source, r.destination) if isinstance(s, TagSide)} - {None}

    (nsg,) = [n for n in policy.nsgs if n.name == nsg_name]
    mine = set().union(*(tags(r) for r in nsg.rules if r.name == rule))
    return bool(mine - set().union(set(), *(tags(r) for r in nsg.rules if r.name != rule)))


def test_the_only_rule_naming_a_platform_tag_is_dead_but_not_removable():
    policy = parse_policy(PLATFORM_TAG_DEAD, "t.nsg")
    rp = resolve(policy)
    (f,) = [f for f in Linter(rp).lint() if f.rule == "rO1"]
    assert f.code == "AVNM001" and f.severity == "error"
    assert "fix the rule rather than delete it" in f.message and "can be removed" not in f.message
    # Why: without rO1, DNS to the host bypasses nsg1 (rO0 no longer denies it).
    changed = diff_policies(rp, resolve(_without_nsg_rule(policy, "nsg1", "rO1", Direction.OUTBOUND)))
    assert any(pair.regions for pair in changed.pairs)
    # Where the admin layer gives rO1's packets its own decision, rO1 is quiet rather than "removable".
    allowed = PLATFORM_TAG_DEAD.replace("1 deny a0O0 icmp", "1 alwaysallow a0O0 icmp")
    assert not [f for f in Linter(resolve(parse_policy(allowed, "t.nsg"))).lint() if f.rule == "rO1"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.booleans().flatmap(lambda v6: policies(max_rules=6, admin=True, ipv6=v6)))
@example(parse_policy(PLATFORM_TAG_DEAD, "t.nsg"))
def test_reported_rules_can_be_removed_with_no_decision_changing(policy):
    """(In dual-stack policies too: diff compares both families.) The one exception lint names: the only rule
    of an NSG naming an AzurePlatform* tag decides nothing yet cannot go, and its finding says so."""
    rp = resolve(policy)
    for f in Linter(rp).lint():
        if f.code not in ("AVNM001", "AVNM002") or f.vnets:
            continue
        if f.code == "AVNM001" and _names_platform_tag_alone(policy, f.nsg, f.rule):
            assert f.severity == "error" and "fix the rule rather than delete it" in f.message, f.message
            continue
        if f.code == "AVNM001":
            # The witness meets the admin rule it names first, in the finding's direction, and the NSG never
            # decides it there (whatever the other direction did before).
            flow = Evaluator(rp, f.witness.assignment).evaluate(f.witness.packet)
            admin = [s for s in flow.trace if s.layer == "admin" and s.direction is f.direction]
            assert admin and admin[0].rule == f.witness.decided_by, f.message
            assert not any(s.evaluated for s in flow.trace if s.nsg == f.nsg and s.direction is f.direction)
            changed = _without_nsg_rule(policy, f.nsg, f.rule, f.direction)
        else:
            label = f"{f.nsg.removeprefix('admin ')}/{f.rule}"
            changed = _without_admin_rule(policy, label, f.direction)
        result = diff_policies(rp, resolve(changed))
        assert not any(pair.regions for pair in result.pairs), f.message


def test_lint_rule_names_an_admin_rule(tmp_path):
    p = tmp_path / "p.nsg"
    p.write_text(POLICY)
    status, out, _ = cli("lint", str(p), "--rule", "Http-Deny")
    assert status == 1 and out.startswith("admin Guard/HubOnly: admin rule Http-Deny (priority 60, Deny) is fully "
                                          "shadowed by admin Guard/Base: Http")
    status, out, _ = cli("lint", str(p), "--rule", "Monitoring")
    assert status == 0 and "is shadowed by no admin rule where it applies" in out
    status, out, _ = cli("lint", str(p), "--rule", "Monitoring2", "--json")
    assert [f["code"] for f in json.loads(out)["findings"]] == ["AVNM002"]
