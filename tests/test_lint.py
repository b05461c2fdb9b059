"""`nsgsolve lint`: each finding on hand-built policies, witnesses replayed through the reference
evaluator, and properties on random policies: every rule reported as shadowed or redundant can be removed
without changing any decision (random packets, exact regions, Z3 equivalence), and every rule not
reported really is needed (exactness both ways)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.semantics.addresses import int_to_ip, ip_to_int, is_v6
from nsgsolve.analyses.lint import CODES, Finding, Linter, lint
from nsgsolve.regions.space import Space
from nsgsolve.reports.trace import trace_lines
from nsgsolve.lang.build import parse_policy
from nsgsolve.cli import run as cli_run
from nsgsolve.semantics.evaluate import Evaluator, Packet, first_match, platform_bypass, rule_matches
from nsgsolve.model import (
    Access, AnyAddress, Asg, AsgSide, Cidr, Direction, IpConfig, Nic, Nsg, Policy, PortRange, PortSpec,
    PrefixSide, Protocol, Ref, Rule, Subnet, SubnetRef, VNet,
)
from nsgsolve.regions.box import Splitter
from nsgsolve.semantics.resolve import IpcKey, ResolvedPolicy, resolve

from corpus import CANDIDATES, CORPUS, NEEDS
from strategies import addresses_of, cidr, dynamic_assignment, policies

IN, OUT = Direction.INBOUND, Direction.OUTBOUND
HEAD = """
vnet v 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg n
}
nic web1 in v/web ip 10.0.1.4
nic web2 in v/web ip 10.0.1.5
"""


def resolved(text: str) -> ResolvedPolicy:
    return resolve(parse_policy(text, "t.nsg"))


def by_rule(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f)
    return out


def replay(rp: ResolvedPolicy, f: Finding, vnet: str | None = "v"):
    """The rule that decides the finding's witness in its NSG, by the reference evaluator."""
    assert f.witness is not None
    rules = rp.nsg(f.nsg, vnet).rules(f.direction)
    w = f.witness
    return first_match(rules, w.packet, w.src_dynamic, w.dst_dynamic)


def replay_dead(rp: ResolvedPolicy, f: Finding):
    """An NSG004 witness through the reference evaluator (with the witness's own dynamic addresses): the
    rule decides it Allow at its layer, and a rule it names denies the flow on the same path."""
    assert f.code == "NSG004" and f.witness is not None
    flow = Evaluator(rp, f.witness.assignment).evaluate(f.witness.packet)
    assert any(s.nsg == f.nsg and s.direction is f.direction and s.rule == f.rule and s.access is Access.ALLOW
               for s in flow.trace), (f.message, trace_lines(flow))
    assert flow.decision is Access.DENY, (f.message, trace_lines(flow))
    named = {(c.nsg, c.name) for c in f.covered_by}
    deny = [(s.nsg or "platform", s.rule) for s in flow.trace if s.access is Access.DENY]
    assert any(d in named for d in deny), (f.message, trace_lines(flow))
    assert f.witness.note in {f"denied by {c}" for c in f.covered_by if (c.nsg, c.name) in deny}
    return flow


# ---------------------------------------------------------------- shadowing


def test_shadowed_only_by_the_union_of_two_rules_with_the_opposite_action():
    rp = resolved(HEAD + """
nsg n {
  inbound {
    100 deny  A tcp from any to any port 80-85
    110 allow B tcp from any to any port 86-90
    120 allow C tcp from any to 10.0.1.0/24 port 80-90
  }
}""")
    found = by_rule(lint(rp))
    assert set(found) == {"C"}, found
    (f,) = found["C"]
    assert (f.code, f.severity) == ("NSG001", "error")
    assert [c.name for c in f.covered_by] == ["A", "B"]
    assert "fully shadowed by A (priority 100, Deny) and B (priority 110, Allow)" in f.message
    assert f.span.line == 12
    # The witness is a packet C would allow that A denies, and the evaluator agrees.
    decided = replay(rp, f)
    assert decided.name == "A" and decided.access is Access.DENY
    assert f.witness.decided_by == "A"
    assert 80 <= f.witness.packet.dport <= 85
    # Neither rule alone covers C: each leaves packets that C decides (checked with the evaluator).
    rules = rp.nsg("n", "v").rules(IN)
    c = next(r for r in rules if r.name == "C")
    for dport, other in ((86, "B"), (80, "A")):
        p = Packet(6, ip_to_int("203.0.113.7"), 49152, ip_to_int("10.0.1.4"), dport)
        without_other = tuple(r for r in rules if r.name != other)
        assert first_match(without_other, p) is next(r for r in without_other if r.name == "C")
        assert first_match(rules, p) is not c


def test_shadowed_with_the_same_action_is_a_warning_without_witness():
    rp = resolved(HEAD + """
nsg n {
  inbound {
    100 allow A tcp from any to 10.0.0.0/16 port 443
    110 allow B tcp from 203.0.113.0/24 to web1 port 443
  }
}""")
    (f,) = lint(rp)
    assert (f.rule, f.code, f.severity) == ("B", "NSG001", "warning")
    assert [c.name for c in f.covered_by] == ["A"]
    assert f.witness is None
    assert "gets its own decision (Allow)" in f.message


def test_cover_always_names_the_rule_that_overrides():
    # B alone covers C; A (opposite action) takes part of C's packets and must be in the cover too.
    rp = resolved(HEAD + """
nsg n {
  inbound {
    100 deny  A tcp from any to web1 port 22
    110 allow B tcp from any to any
    120 allow C tcp from 203.0.113.0/24 to web1 port 22-23
  }
}""")
    (f,) = [f for f in lint(rp) if f.rule == "C"]
    assert f.severity == "error"
    assert {c.name for c in f.covered_by} == {"A", "B"}
    assert replay(rp, f).name == "A"


# ---------------------------------------------------------------- redundancy


def assert_possible(w, f=None):
    """A witness is one assignment Azure could make: `verify --assume-ip` replays it."""
    p, sd, dd = w.packet, w.src_dynamic, w.dst_dynamic
    if sd is not None and sd == dd:
        assert p.src == p.dst, w
    elif sd is not None or dd is not None:
        assert p.src != p.dst, (w, f)


def test_witnesses_put_two_dynamic_nics_on_two_addresses(tmp_path):
    text = """
vnet v 10.0.0.0/16 { subnet s 10.0.1.0/24 nsg n }
nic d in v/s ip dynamic
nic f in v/s ip dynamic
nic e in v/s ip 10.0.1.10
nsg n {
  inbound {
    120 deny  D9 tcp from f to d
    130 allow A9 tcp from f to d
  }
}"""
    (f,) = [f for f in lint(resolved(text)) if f.rule == "A9"]
    assert f.code == "NSG001" and f.witness.src_dynamic.nic == "f" and f.witness.dst_dynamic.nic == "d"
    assert_possible(f.witness)
    pol = tmp_path / "d.nsg"
    pol.write_text(text)
    assume = [a for k, v in f.witness.assignment.items() for a in ("--assume-ip", f"{k.nic}={int_to_ip(v)}")]
    code, out, err = cli("verify", str(pol), "--src", "f", "--dst", "d", *assume, "--protocol", "tcp",
                         "--dport", str(f.witness.packet.dport))
    assert code == 0 and "D9" in out, err


def test_redundant_rule_that_is_not_shadowed():
    # B decides the packets from 203.0.113.0/24 on port 22, but DenyAllInBound would deny them too;
    # A is needed (it allows 443, which the defaults would deny).
    rp = resolved(HEAD + """
nsg n {
  inbound {
    100 allow A tcp from any to any port 443
    110 deny  B tcp from 203.0.113.0/24 to any port 22
  }
}""")
    (f,) = lint(rp)
    assert (f.rule, f.code, f.severity) == ("B", "NSG002", "warning")
    assert [c.name for c in f.covered_by] == ["DenyAllInBound"]
    assert f.covered_by[0].is_default
    assert replay(rp, f).name == "B"  # a packet it decides: not shadowed
    rules = rp.nsg("n", "v").rules(IN)
    without = tuple(r for r in rules if r.name != "B")
    assert first_match(without, f.witness.packet).access is Access.DENY


def test_redundant_by_the_vnet_default_and_needed_rules_are_quiet():
    rp = resolved(HEAD + """
nsg n {
  inbound {
    100 allow A tcp from 10.0.0.0/16 to web1 port 22
    110 deny  B tcp from 10.0.2.0/24 to any port 3389
  }
}""")
    found = by_rule(lint(rp))
    assert [f.code for f in found["A"]] == ["NSG002"]
    assert "AllowVnetInBound" in found["A"][0].message
    assert "B" not in found  # without B, AllowVnetInBound would allow 10.0.2.x on 3389


def test_the_only_rule_naming_a_platform_tag_is_never_called_removable():
    # Naming AzurePlatformDNS / AzurePlatformIMDS anywhere in an NSG makes it filter that platform traffic
    # (semantics.md), so these rules matter although NoHost / an impossible ICMP port decide their packets.
    text = HEAD + """
nsg n {
  outbound {
    100 deny NoHost any from any to 168.63.129.16
    110 deny DnsTag udp from any to AzurePlatformDNS port 53
    120 deny ImdsTag icmp from any to AzurePlatformIMDS port 1
  }
}"""
    rp = resolved(text)
    found = by_rule(lint(rp))
    assert "DnsTag" not in found
    (f,) = found["ImdsTag"]
    assert f.code == "NSG003" and "fix the rule rather than delete it" in f.message
    # And the reason it matters: without DnsTag, DNS to the host would pass n.
    ev = Evaluator(rp, {})
    dns = Packet(17, ip_to_int("10.0.1.4"), 49152, ip_to_int("168.63.129.16"), 53)
    assert not ev.evaluate(dns).allowed
    assert Evaluator(resolved(text.replace("    110 deny DnsTag udp from any to AzurePlatformDNS port 53\n", "")),
                     {}).evaluate(dns).allowed
    # Nor is it "outside every attachment" (NSG005): its presence still changes DNS decisions.
    inbound = resolved(HEAD + """
nsg n {
  inbound { 100 allow DnsIn udp from any to AzurePlatformDNS port 53 }
  outbound { 100 deny AllOut any from any to any }
}""")
    assert "DnsIn" not in by_rule(lint(inbound))
    # A second rule naming the tag makes each one removable again.
    found = by_rule(lint(resolved(text.replace("    100 deny NoHost any from any to 168.63.129.16",
                                               "    100 deny NoHost any from any to AzurePlatformDNS"))))
    assert [f.code for f in found["DnsTag"]] == ["NSG001"]
    # Shadowed with the opposite decision it is an error, which says to fix the rule rather than delete it.
    found = by_rule(lint(resolved(text.replace("110 deny DnsTag", "110 allow DnsTag"))))
    (f,) = found["DnsTag"]
    assert f.code == "NSG001" and f.severity == "error" and "fix the rule rather than delete it" in f.message


def test_a_rule_removable_in_one_vnet_only_is_not_called_removable():
    # n is attached in a and b; 20.1.0.0/16 is b's on-premises space, so only in b does
    # AllowVnetInBound allow what R allows.
    rp = resolved("""
vnet a 10.0.0.0/16 { subnet s 10.0.1.0/24 nsg n }
vnet b 10.1.0.0/16 { subnet s 10.1.1.0/24 nsg n
  onprem 20.1.0.0/16 }
nic na in a/s ip 10.0.1.4
nic nb in b/s ip 10.1.1.4
nsg n { inbound { 100 allow R tcp from 20.1.0.0/16 to VirtualNetwork port 22 } }
""")
    (f,) = lint(rp)
    assert f.code == "NSG002" and f.vnets == ("b",)
    assert f.message.endswith("but only when evaluated in VNet b: in a the rule decides traffic, so keep it")
    assert f.to_dict()["vnets"] == ["b"]


# ---------------------------------------------------------------- unmatchable


def _model_policy(rules: tuple[Rule, ...], asgs=("Empty", "Used")) -> Policy:
    return Policy(
        vnets=(VNet("v", (cidr("10.0.0.0/16"),), (Subnet("web", cidr("10.0.1.0/24"), Ref("n")),)),),
        nics=(Nic("web1", SubnetRef("v", "web"), (IpConfig(ip_to_int("10.0.1.4"), (Ref("Used"),)),)),),
        asgs=tuple(Asg(a) for a in asgs),
        nsgs=(Nsg("n", rules),),
    )


ANY_PORT = PortSpec(None)


def _rule(name, prio, access=Access.ALLOW, proto=Protocol.TCP, src=None, dst=None, dports=ANY_PORT) -> Rule:
    return Rule(name, prio, IN, access, proto, src or AnyAddress(), ANY_PORT, dst or AnyAddress(), dports)


def test_unmatchable_rules_say_why():
    rp = resolve(_model_policy((
        _rule("EmptyAsg", 100, src=AsgSide((Ref("Empty"),))),
        _rule("IcmpPorts", 110, proto=Protocol.ICMP, dports=PortSpec((PortRange(80, 80),))),
        _rule("OnlyV6", 120, access=Access.DENY, src=PrefixSide((Cidr(ip_to_int("2001:db8::"), 32),))),
        _rule("UsedAsg", 130, dst=AsgSide((Ref("Used"),)), dports=PortSpec((PortRange(443, 443),))),
    )))
    found = by_rule(lint(rp))
    assert set(found) == {"EmptyAsg", "IcmpPorts", "OnlyV6"}
    for name, why in (("EmptyAsg", "application security group Empty has no members"),
                      ("IcmpPorts", "only Tcp and Udp packets carry ports")):
        (f,) = found[name]
        assert (f.code, f.severity, f.witness) == ("NSG003", "warning", None)
        assert why in f.message, f.message
    # IPv6 packets match OnlyV6: never called unmatchable (issue 15), but judged on them: the default
    # DenyAllInBound would deny every one of them too.
    (f,) = found["OnlyV6"]
    assert f.code == "NSG002" and f.witness is not None and is_v6(f.witness.packet.src), f.message


# ---------------------------------------------------------------- attachments


def test_rule_outside_every_attachment():
    rp = resolved(HEAD + """
nsg n {
  inbound {
    100 allow A tcp from any to 192.168.5.0/24 port 443
    110 deny  B tcp from any to 10.0.1.0/24, 192.168.5.0/24 port 443
  }
  outbound {
    100 deny C tcp from 10.0.2.0/24 to Internet port 25
  }
}""")
    found = by_rule(lint(rp))
    assert set(found) == {"A", "C"}
    (a,) = found["A"]
    assert a.code == "NSG005" and "destination (192.168.5.0/24)" in a.message and "subnet v/web" in a.message
    (c,) = found["C"]
    assert c.code == "NSG005" and c.direction is OUT and "source (10.0.2.0/24)" in c.message


def test_unattached_nsg_gets_no_attachment_findings():
    rp = resolved("""
vnet v 10.0.0.0/16 {
  subnet web 10.0.1.0/24
}
nsg n {
  inbound {
    100 allow A tcp from any to 192.168.5.0/24 port 443
  }
}""")
    assert lint(rp) == []


# ---------------------------------------------------------------- across layers


DEAD = """
subscription %s
vnet v 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg sub
}
nic web1 in v/web ip 10.0.1.4 nsg nicnsg
nic web2 in v/web ip dynamic nsg nicnsg
%s
nsg sub {
  inbound {
    100 allow Ssh tcp from Internet to any port 22
    110 allow Web tcp from Internet to any port 443
  }
  outbound {
    100 allow Smtp tcp from any to Internet port 25
    110 deny  Rest any from any to Internet
  }
}
nsg nicnsg {
  inbound {
    100 deny  NoSsh tcp from any to any port 22
    110 allow Web   tcp from any to any port 443
  }
}
"""


def test_allow_rules_another_layer_always_denies():
    rp = resolved(DEAD % ("pay-as-you-go", ""))
    found = by_rule(lint(rp))
    assert set(found) == {"Ssh", "Smtp"}
    (ssh,) = found["Ssh"]
    assert ssh.code == "NSG004" and ssh.direction is IN
    assert [(c.nsg, c.name) for c in ssh.covered_by] == [("nicnsg", "NoSsh")]
    assert "every packet it allows to nic web1, nic web2 is denied at another layer" in ssh.message
    # The witness: a packet Ssh allows at the subnet that nicnsg's NoSsh denies at the NIC.
    assert ssh.witness is not None and ssh.witness.decided_by == "Ssh"
    assert (ssh.witness.packet.protocol, ssh.witness.packet.dport) == (6, 22)
    assert "denied by nicnsg: NoSsh (priority 100, Deny)" in ssh.message
    flow = replay_dead(rp, ssh)
    assert [(s.nsg, s.rule) for s in flow.trace] == [("sub", "Ssh"), ("nicnsg", "NoSsh")]
    assert ssh.to_dict()["witness"]["decided_by"] == "Ssh"
    (smtp,) = found["Smtp"]  # the platform's outbound TCP 25 block is a layer too
    assert smtp.code == "NSG004" and smtp.direction is OUT
    assert [(c.nsg, c.name) for c in smtp.covered_by] == [("platform", "PlatformBlockOutboundSmtp")]
    assert smtp.witness is not None and smtp.witness.packet.dport == 25
    flow = replay_dead(rp, smtp)
    assert flow.trace[-1].rule == "PlatformBlockOutboundSmtp"


def test_dead_witness_on_a_dynamic_nic_carries_its_address():
    # Only the dynamic web2 sits behind the denying NIC NSG: the witness must be its packet.
    rp = resolved(DEAD.replace("nic web1 in v/web ip 10.0.1.4 nsg nicnsg\n", "") % ("pay-as-you-go", ""))
    (ssh,) = by_rule(lint(rp))["Ssh"]
    assert ssh.code == "NSG004" and ssh.witness is not None
    assert ssh.witness.dst_dynamic == IpcKey("web2") and ssh.witness.src_dynamic is None
    assert ssh.witness.to_dict()["dynamic_ips"] == {"web2": int_to_ip(ssh.witness.packet.dst)}
    replay_dead(rp, ssh)


def test_one_nic_without_the_denying_layer_keeps_the_rule_alive():
    rp = resolved(DEAD % ("enterprise-agreement", "nic web3 in v/web ip 10.0.1.6"))
    assert lint(rp) == []


# ---------------------------------------------------------------- correlation, generalization


def test_correlated_and_generalizes_are_informational_and_off_by_default():
    text = HEAD + """
nsg n {
  inbound {
    100 deny  A tcp from 203.0.113.0/24 to any port 22
    110 allow B tcp from 203.0.113.0/25 to any port 20-30
    120 allow C tcp from any to any port 22
  }
}"""
    rp = resolved(text)
    assert lint(rp) == []
    found = by_rule(lint(rp, include_info=True))
    assert [f.code for f in found["B"]] == ["NSG006"]
    assert [f.code for f in found["C"]] == ["NSG007"]
    for f in found["B"] + found["C"]:
        assert f.severity == "info" and [c.name for c in f.covered_by] == ["A"]
        assert replay(rp, f).name == f.rule  # a packet the rule still decides


# ---------------------------------------------------------------- VNets and dynamic addresses


def test_a_finding_that_holds_in_one_vnet_only_says_where():
    rp = resolved("""
vnet a 10.0.0.0/16 {
  subnet s 10.0.1.0/24 nsg n
}
vnet b 10.1.0.0/16 {
  subnet s 10.1.1.0/24 nsg n
}
nsg n {
  inbound {
    100 deny  A any from 10.0.0.0/16, 168.63.129.16 to any
    110 allow B tcp from VirtualNetwork to any port 443
  }
}""")
    (f,) = [f for f in lint(rp) if f.rule == "B"]
    assert f.code == "NSG001" and f.vnets == ("a",)
    assert "when evaluated in VNet a; not in b" in f.message
    a, b = Linter(rp).status("n", "B")
    assert a.startswith("in VNet a: rule B (priority 110, Allow) is fully shadowed by A")
    assert b.startswith("in VNet b: rule B (priority 110, Allow) decides traffic")


def test_dynamic_members_are_covered_for_every_address_azure_may_pick():
    text = """
vnet v 10.0.0.0/16 {
  subnet app 10.0.2.0/24 nsg n
}
asg App
nic app1 in v/app ip dynamic asg App
nsg n {
  inbound {
    100 deny  A tcp from %s to any port 22
    110 allow B tcp from App to any port 22
  }
}"""
    # Every usable address of the subnet is denied first: B is shadowed whatever Azure picks.
    (f,) = lint(resolved(text % "10.0.2.0/24"))
    assert (f.rule, f.code) == ("B", "NSG001")
    # Half the subnet: B still decides app1 when it sits in the other half, and says so.
    rp = resolved(text % "10.0.2.0/25")
    linter = Linter(rp)
    assert linter.lint() == []
    (sentence,) = linter.status("n", "B")
    assert "decides traffic" in sentence and "app1 at 10.0.2." in sentence
    nsg = rp.nsg("n", "v")
    facts = linter.facts(linter.analysis(nsg, IN), 1)
    w = linter.witness(facts.live, "B")
    assert w.src_dynamic == IpcKey("app1") and w.packet.src >= ip_to_int("10.0.2.128")
    assert first_match(nsg.inbound, w.packet, w.src_dynamic, w.dst_dynamic).name == "B"


# ---------------------------------------------------------------- command line


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli_run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


SHADOW = HEAD + """
nsg n {
  inbound {
    100 deny  A tcp from any to any port 80-85
    110 allow B tcp from any to any port 86-90
    120 allow C tcp from any to 10.0.1.0/24 port 80-90
    130 allow D tcp from any to any port 443
  }
}
"""


def test_cli_text_json_rule_and_exit_status(tmp_path: Path):
    pol = tmp_path / "p.nsg"
    pol.write_text(SHADOW)
    status, out, _ = cli("lint", str(pol))
    assert status == 1
    assert f"{pol}:12:5: error[NSG001/shadowed-rule]: n Inbound: rule C" in out
    assert out.strip().endswith("1 finding in 1 NSG: 1 error")
    status, out, _ = cli("lint", str(pol), "--json")
    doc = json.loads(out)
    assert doc["schema"] == "nsgsolve/lint/1"
    (d,) = doc["findings"]
    assert status == 1
    assert list(d) == ["code", "severity", "nsg", "direction", "rule", "location", "covered_by", "witness", "message",
                       "vnets"]
    assert (d["code"], d["severity"], d["nsg"], d["direction"], d["rule"], d["location"]["line"]) == \
        ("NSG001", "error", "n", "Inbound", "C", 12)
    assert [c["rule"] for c in d["covered_by"]] == ["A", "B"]
    assert d["witness"]["decided_by"] == "A" and d["witness"]["protocol"] == "Tcp"
    status, out, _ = cli("lint", str(pol), "--rule", "C")
    assert status == 1 and out.startswith("n: rule C (priority 120, Allow) is fully shadowed by A (priority 100, "
                                          "Deny) and B (priority 110, Allow)")
    status, out, _ = cli("lint", str(pol), "--rule", "D")
    assert status == 0 and "rule D (priority 130, Allow) decides traffic in n (Inbound)" in out
    assert "DenyAllInBound (priority 65500) would deny without it" in out


def test_cli_clean_policy_and_usage_errors(tmp_path: Path):
    pol = tmp_path / "p.nsg"
    pol.write_text(HEAD + "nsg n {\n  inbound {\n    100 allow A tcp from any to any port 443\n  }\n}\n")
    assert cli("lint", str(pol)) == (0, "no findings in 1 NSG\n", "")
    status, _, err = cli("lint", str(pol), "--nsg", "m")
    assert status == 2 and "no NSG named 'm'" in err
    status, _, err = cli("lint", str(pol), "--rule", "B")
    assert status == 2 and "no rule named 'B'" in err and "hint: rules: A" in err
    bad = tmp_path / "bad.nsg"
    bad.write_text("nsg {")
    assert cli("lint", str(bad))[0] == 2


def test_cli_rule_that_is_a_default_rule_says_why_and_lists_the_rules():
    tier = str(Path(__file__).parent.parent / "examples" / "three-tier.nsg")
    status, out, err = cli("lint", tier, "--nsg", "web-nsg", "--rule", "DenyAllInBound")
    assert status == 2 and out == ""
    assert "'DenyAllInBound' is one of Azure's default rules, which lint does not analyse" in err
    assert "cannot be removed" in err
    assert "rules: Allow-App, Allow-Lb-Probe, Allow-SSH, Allow-Web, Deny-Db, Deny-Vnet" in err
    status, _, err = cli("lint", tier, "--rule", "Allow-Ap")
    assert status == 2 and "did you mean 'Allow-App'" in err


def test_codes_are_documented():
    doc = Path(__file__).resolve().parent.parent / "docs" / "lint.md"
    text = doc.read_text()
    for c in CODES:
        assert c.code in text and c.slug in text


# ---------------------------------------------------------------- properties on random policies


def _spaces(rp: ResolvedPolicy) -> list[Space]:
    """One extended space per address family of the policy (a packet is IPv4 or IPv6)."""
    return [Space(rp)] + ([Space(rp, v6=True)] if rp.has_ipv6 else [])


def _all_rules_space(rp: ResolvedPolicy):
    spaces = _spaces(rp)
    for nsg in rp.policy.nsgs:
        for vnet in rp.attachment_vnets(nsg.name) or [None]:
            yield spaces, rp.nsg(nsg.name, vnet)


def _decisions_differ(spaces: list[Space], a, b) -> tuple | None:
    """A point of the extended spaces where two rule lists decide differently, or None (exact)."""
    acc_a = [r.access for r in a]
    acc_b = [r.access for r in b]

    def differ(m):
        fa, fb = m
        return acc_a[(fa & -fa).bit_length() - 1] is not acc_b[(fb & -fb).bit_length() - 1]

    for space in spaces:
        sp = Splitter([[space.box(r) for r in a], [space.box(r) for r in b]], universe=space.universe)
        got = sp.find(differ)
        if got:
            return got[0]
    return None


def _packets_for(policy: Policy, assignment: dict, draw_ints) -> list[tuple[Packet, IpcKey | None, IpcKey | None]]:
    from nsgsolve.semantics.addresses import int_to_ip

    pool = addresses_of(policy) + [int_to_ip(ip) for ip in assignment.values()]
    by_ip = {ip: k for k, ip in assignment.items()}
    out = []
    for proto, s, sp, d, dp in draw_ints:
        src, dst = ip_to_int(pool[s % len(pool)]), ip_to_int(pool[d % len(pool)])
        if (":" in pool[s % len(pool)]) != (":" in pool[d % len(pool)]):
            continue  # a packet is IPv4 or IPv6
        if proto in (6, 17):
            p = Packet(proto, src, sp, dst, dp)
        else:
            p = Packet(proto, src, None, dst, None)
        out.append((p, by_ip.get(src), by_ip.get(dst)))
    return out


packet_ints = st.lists(st.tuples(st.sampled_from([6, 17, 1, 50, 47]), st.integers(0, 99),
                                 st.sampled_from([0, 22, 53, 80, 443, 1500, 49152, 65535]), st.integers(0, 99),
                                 st.sampled_from([0, 22, 25, 53, 80, 443, 1433, 3389, 65535])),
                       min_size=40, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies(max_rules=7), packet_ints)
def test_reported_rules_can_be_removed_and_unreported_rules_cannot(policy, ints):
    _removable_exactly(policy, ints)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies(max_rules=6, ipv6=True), packet_ints)
def test_dual_stack_reported_rules_can_be_removed_and_unreported_rules_cannot(policy, ints):
    """The same, in dual-stack policies: lint decides both address families (issue 15)."""
    _removable_exactly(policy, ints)


def _removable_exactly(policy: Policy, ints) -> None:
    rp = resolve(policy)
    linter = Linter(rp, include_info=True)
    assignment = dynamic_assignment(policy)
    pkts = _packets_for(policy, assignment, ints)
    for spaces, nsg in _all_rules_space(rp):
        for direction in (IN, OUT):
            rules = nsg.rules(direction)
            la = linter.analysis(nsg, direction)
            for i, r in enumerate(rules):
                if r.rule.is_default:
                    continue
                f = linter.facts(la, i)
                without = rules[:i] + rules[i + 1:]
                removable = f.empty or f.shadowed or f.redundant
                differ = _decisions_differ(spaces, rules, without)
                assert (differ is None) == removable, (nsg.name, nsg.vnet, r.name, f)
                if removable:
                    for p, sd, dd in pkts:
                        assert first_match(rules, p, sd, dd).access is first_match(without, p, sd, dd).access
                if f.shadowed:
                    # Every packet of the rule has an earlier match, and the cover alone covers it.
                    for p, sd, dd in pkts:
                        if rule_matches(r, p, sd, dd):
                            assert first_match(rules, p, sd, dd).index < i
                    def uncovered(space: Space, cover: list[int]) -> bool:
                        box = space.box(r)
                        if any(not x for x in box):
                            return False
                        boxes = [space.box(rules[k]) for k in cover]
                        return not boxes or Splitter([boxes], universe=box).find(lambda m: m[0] == 0) is not None

                    assert not any(uncovered(space, list(f.cover)) for space in spaces)
                    forced = f.conflict[1] if f.conflict else None
                    for j in f.cover:  # and no member is unneeded, but the overriding rule is always named
                        if j == forced:
                            continue
                        rest = [k for k in f.cover if k != j]
                        assert not rest or any(uncovered(space, rest) for space in spaces)
                    if f.conflict is not None:
                        point, j = f.conflict
                        w = linter.witness(point, rules[j].name)
                        decided = first_match(rules, w.packet, w.src_dynamic, w.dst_dynamic)
                        assert decided is rules[j] and decided.access is not r.access
                        assert rule_matches(r, w.packet, w.src_dynamic, w.dst_dynamic)
                if f.live is not None:
                    w = linter.witness(f.live, r.name)
                    assert first_match(rules, w.packet, w.src_dynamic, w.dst_dynamic) is r
                    if not f.redundant:
                        after = first_match(without, w.packet, w.src_dynamic, w.dst_dynamic)
                        assert after is rules[f.live_next] and after.access is not r.access
    # Every finding replays: its witness is decided as the finding says.
    ev = Evaluator(rp, assignment)
    for f in linter.lint():
        if f.witness is not None:
            vnet = (f.vnets or (rp.attachment_vnets(f.nsg) or [None]))[0]
            assert replay(rp, f, vnet).name == f.witness.decided_by
            assert_possible(f.witness, f)
        if f.code == "NSG004":
            if f.witness is not None:
                assert f.witness.decided_by == f.rule
                replay_dead(rp, f)
            # Every packet the Allow rule decides for a NIC behind it is denied on that NIC's path.
            for p, sd, dd in pkts:
                key = dd if f.direction is IN else sd
                key = key or (ev.endpoint(p.dst) if f.direction is IN else ev.endpoint(p.src))
                if key is None or (f.direction is OUT and platform_bypass(p) is not None):
                    continue
                info = rp.ipcs[key]
                if f.nsg not in (info.subnet_nsg, info.nic_nsg) or (f.vnets and info.vnet not in f.vnets):
                    continue  # (a finding that holds in some VNets says which: nothing is claimed elsewhere)
                rules = rp.nsg(f.nsg, info.vnet).rules(f.direction)
                src_dyn = sd if f.direction is IN else (key if rp.ipcs[key].ip is None else None)
                dst_dyn = (key if rp.ipcs[key].ip is None else None) if f.direction is IN else dd
                if first_match(rules, p, src_dyn, dst_dyn).name == f.rule:
                    assert not ev.evaluate(p).allowed, (f.message, p)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.booleans().flatmap(lambda v6: policies(max_rules=6, ipv6=v6)))
def test_removable_rules_are_equivalent_under_z3(policy):
    z3 = pytest.importorskip("z3")
    from nsgsolve.smt.encode import Encoding
    from nsgsolve.smt.z3util import make_solver

    rp = resolve(policy)
    enc = Encoding(rp)
    linter = Linter(rp)
    for _, nsg in _all_rules_space(rp):
        for direction in (IN, OUT):
            rules = nsg.rules(direction)
            la = linter.analysis(nsg, direction)
            for i, r in enumerate(rules):
                if r.rule.is_default:
                    continue
                f = linter.facts(la, i)
                if not (f.empty or f.shadowed or f.redundant):
                    continue
                s = make_solver()
                s.add(*enc.domain())
                s.add(_allows(enc, rules) != _allows(enc, rules[:i] + rules[i + 1:]))
                assert s.check() == z3.unsat, (nsg.name, r.name)


def _allows(enc, rules):
    import z3

    acc = z3.BoolVal(False)
    for r in reversed(rules):
        m = enc.match(r)
        acc = z3.Or(m, acc) if r.access is Access.ALLOW else z3.And(z3.Not(m), acc)
    return acc


def test_sarif_and_github_reports_through_the_shared_writers(tmp_path: Path):
    pol = tmp_path / "p.nsg"
    pol.write_text(SHADOW)
    status, out, _ = cli("lint", str(pol), "--format", "sarif")
    assert status == 1
    run = json.loads(out)["runs"][0]
    (res,) = run["results"]
    assert (res["ruleId"], res["level"]) == ("NSG001/shadowed-rule", "error")
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 12
    assert [r["physicalLocation"]["region"]["startLine"] for r in res["relatedLocations"]] == [10, 11]
    # The fingerprint names the rule and the file, not the line: moving the rule within the file keeps it.
    pol.write_text("# a comment that moves every line\n" + SHADOW)
    res2 = json.loads(cli("lint", str(pol), "--format", "sarif")[1])["runs"][0]["results"][0]
    assert res2["locations"][0]["physicalLocation"]["region"]["startLine"] == 13
    assert res2["partialFingerprints"] == res["partialFingerprints"]
    pol.write_text(SHADOW)
    status, out, _ = cli("lint", str(pol), "--format", "github")
    assert status == 1 and out.startswith("::error file=") and ",line=12," in out


# ---------------------------------------------------------------- real templates

def _corpus_files() -> list[Path]:
    return sorted((CORPUS / "arm").glob("*.json")) if CORPUS else []


@pytest.mark.skipif(CORPUS is None, reason=f"corpus of real templates not found (looked in {CANDIDATES})")
def test_lint_every_importable_template_in_the_corpus(capsys):
    from nsgsolve.errors import InputError
    from nsgsolve.importers.loader import load_policy

    from nsgsolve.semantics.servicetags import ServiceTagDb

    tags = sorted((CORPUS / "servicetags").glob("ServiceTags_Public*.json"))
    db = ServiceTagDb.from_json_file(str(tags[-1])) if tags else None
    linted, skipped = 0, []
    for path in _corpus_files():
        try:
            # the parameter values test_corpus proves each template needs (docs/import.md)
            _, params, symbolic = NEEDS.get(path.name, ("", {}, False))
            rp = resolve(load_policy(path, params=params, symbolic=symbolic), db)
        except InputError as e:
            skipped.append(f"{path.name}: {str(e)[:120]}")
            continue
        linter = Linter(rp, include_info=True)
        findings = linter.lint()
        linted += 1
        for f in findings:
            assert f.code in {c.code for c in CODES} and f.severity in ("error", "warning", "info")
            json.dumps(f.to_dict())
            if f.witness is not None:
                vnet = (f.vnets or (rp.attachment_vnets(f.nsg) or [None]))[0]
                assert replay(rp, f, vnet).name == f.witness.decided_by, (path.name, f.message)
    with capsys.disabled():
        print(f"\nlinted {linted} corpus templates; skipped {len(skipped)}:")
        for s in skipped:
            print(f"  skipped {s}")
    assert linted > 0


def test_parallel_lint_gives_the_serial_findings(monkeypatch):
    # Enough rules for nsgsolve.parallel to fork; overlapping ports and prefixes, both actions, so every
    # kind of finding (and its witness and cover) must come back from the workers unchanged.
    rules = "\n".join(f"    {100 + k} {'deny' if k % 3 else 'allow'} R{k} tcp from 10.{k % 7}.0.0/16 to any "
                      f"port {1000 + (k * 37) % 200}-{1200 + (k * 53) % 300}" for k in range(120))
    rp = resolved(HEAD + "nsg n {\n  inbound {\n" + rules + "\n  }\n}\n")
    monkeypatch.setenv("NSGSOLVE_WORKERS", "1")
    serial = Linter(rp, include_info=True).lint()
    monkeypatch.setenv("NSGSOLVE_WORKERS", "2")
    assert Linter(rp, include_info=True).lint() == serial
    assert {f.code for f in serial} >= {"NSG001", "NSG002"}


# ---------------------------------------------------------------- values an import left open

def _open_template() -> str:
    import json as _json

    def rule(name, prio, src):
        return {"name": name, "properties": {"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "22",
                                             "sourceAddressPrefix": src, "destinationAddressPrefix": "*",
                                             "access": "Allow", "priority": prio, "direction": "Inbound"}}

    def nsg(name, rules):
        return {"type": "Microsoft.Network/networkSecurityGroups", "name": name, "properties": {"securityRules": rules}}

    subnet_id = "[resourceId('Microsoft.Network/networkSecurityGroups', '{}')]"
    vnet = {"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": n, "properties": {"addressPrefix": p, "networkSecurityGroup": {"id": subnet_id.format(g)}}}
                    for n, p, g in (("a", "10.0.1.0/24", "open"), ("b", "10.0.2.0/24", "known"))]}}
    return _json.dumps({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                        "contentVersion": "1.0.0.0", "parameters": {"admin": {"type": "string"}},
                        # Text computed from the parameter stays open (a bare parameter is a variable:
                        # tests/analyses/test_params.py).
                        "resources": [nsg("open", [rule("r", 100, "[concat(parameters('admin'), '/24')]")]),
                                      nsg("known", [rule("wide", 100, "*"), rule("narrow", 110, "10.9.0.0/16")]),
                                      vnet]})


def test_an_nsg_with_an_open_value_is_left_out_and_the_others_are_linted(tmp_path):
    from nsgsolve.analyses.query import QueryEngine
    from nsgsolve.errors import InputError
    from nsgsolve.importers import load_json_policy
    from nsgsolve.lang.build import parse_query

    policy = load_json_policy({"t.json": _open_template()})
    rp = resolve(policy)
    assert set(rp.open_nsgs) == {"open"}
    assert {f.rule for f in lint(rp)} == {"narrow"}  # 'known' is judged; 'open' is not
    QueryEngine(rp).ask(parse_query("can 203.0.113.0/24 reach subnet v/b port 22 tcp", policy))  # never meets open
    with pytest.raises(InputError) as e:
        QueryEngine(rp).ask(parse_query("can any reach subnet v/a port 22 tcp", policy))
    assert e.value.diagnostics[0].code == "E301" and "?expr:" in e.value.diagnostics[0].message
    f = tmp_path / "t.json"
    f.write_text(_open_template())
    status, out, err = cli("lint", str(f))
    assert status == 0 and "warning[W605]: NSG open is not linted" in err and "narrow" in out
