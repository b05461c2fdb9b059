"""lint in dual-stack policies (issue 15): every rule is judged on its IPv4 *and* its IPv6 packets, each
family in its own space, so a live IPv6 rule is never called unmatchable, shadowed or redundant, and a
rule dead in both families is reported as in an IPv4 policy."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings

from nsgsolve.analyses.lint import lint
from nsgsolve.cli import run as cli_run
from nsgsolve.lang.build import parse_policy
from nsgsolve.model import (
    Access, AnyAddress, Cidr, Direction, Nsg, Policy, PortSpec, PrefixSide, Protocol, Rule,
)
from nsgsolve.semantics.addresses import ip_to_int, is_v6
from nsgsolve.semantics.evaluate import Evaluator
from nsgsolve.semantics.resolve import resolve

from corpus import CORPUS
from strategies import policies
from test_lint import _allows  # the list's decision as a Z3 term

OUT = Direction.OUTBOUND


def _rule(name: str, prio: int, access: Access, src, dst) -> Rule:
    return Rule(name, prio, OUT, access, Protocol.ANY, src, PortSpec(), dst, PortSpec())


def _findings(policy: Policy) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in lint(resolve(policy)):
        out.setdefault(f.rule, []).append(f)
    return out


V6 = PrefixSide((Cidr(ip_to_int("ace:cab:deca:deed::"), 64),))
V4 = PrefixSide((Cidr(0x0A000000, 8),))
ALL4 = PrefixSide((Cidr(0, 0),))
ALL6 = PrefixSide((Cidr(ip_to_int("::"), 0),))


def test_ipv6_only_rule_is_judged_on_its_ipv6_packets():
    # Live: it denies IPv6 packets the default AllowInternetOutBound would allow ...
    nsg = Nsg("n", (_rule("v6", 100, Access.DENY, V6, V6),))
    assert _findings(Policy(nsgs=(nsg,))) == {}
    # ... and an Allow of the same packets is redundant, with an IPv6 witness.
    nsg = Nsg("n", (_rule("v6", 100, Access.ALLOW, V6, V6),))
    (f,) = _findings(Policy(nsgs=(nsg,)))["v6"]
    assert f.code == "NSG002" and is_v6(f.witness.packet.src)
    assert [c.name for c in f.covered_by] == ["AllowInternetOutBound"]
    # Shadowed by an earlier IPv6 rule, with its own decision.
    nsg = Nsg("n", (_rule("all6", 100, Access.ALLOW, ALL6, ALL6), _rule("v6", 200, Access.ALLOW, V6, V6)))
    (f,) = _findings(Policy(nsgs=(nsg,)))["v6"]
    assert (f.code, f.severity, [c.name for c in f.covered_by]) == ("NSG001", "warning", ["all6"])


def test_mixed_rule_shadowed_for_ipv4_only_is_live():
    # The IPv4 part of "mixed" is shadowed by "first"; its IPv6 part decides packets no rule above matches.
    mixed = PrefixSide(V4.items + V6.items)
    nsg = Nsg("n", (_rule("first", 100, Access.ALLOW, AnyAddress(), V4), _rule("mixed", 200, Access.DENY,
                                                                                    AnyAddress(), mixed)))
    assert "mixed" not in _findings(Policy(nsgs=(nsg,)))


def test_any_rule_shadowed_in_each_family_by_another_rule():
    # "all" is shadowed for IPv4 packets by "v4all" and for IPv6 packets by "v6all": the cover names both,
    # and the conflict's witness (an IPv6 packet "v6all" allows) replays.
    nsg = Nsg("n", (_rule("v4all", 100, Access.DENY, ALL4, ALL4), _rule("v6all", 110, Access.ALLOW, ALL6, ALL6),
                    _rule("all", 200, Access.DENY, AnyAddress(), AnyAddress())))
    (f,) = _findings(Policy(nsgs=(nsg,)))["all"]
    assert f.code == "NSG001" and f.severity == "error"
    assert sorted(c.name for c in f.covered_by) == ["v4all", "v6all"]
    assert f.witness is not None and is_v6(f.witness.packet.src) and f.witness.decided_by == "v6all"
    # With IPv6 left to it, "all" decides IPv6 packets: live (a policy with an IPv6 prefix somewhere).
    nsg = Nsg("n", (_rule("v4all", 100, Access.DENY, ALL4, ALL4),
                    _rule("all", 200, Access.DENY, AnyAddress(), AnyAddress()), _rule("v6", 300, Access.ALLOW, V6, V6)))
    assert "all" not in _findings(Policy(nsgs=(nsg,)))


def test_a_source_of_one_family_and_a_destination_of_the_other_never_match():
    nsg = Nsg("n", (_rule("cross", 100, Access.ALLOW, V4, V6),))
    (f,) = _findings(Policy(nsgs=(nsg,)))["cross"]
    assert f.code == "NSG003"
    assert "its source has IPv4 addresses only and its destination IPv6 addresses only" in f.message


def test_ipv4_only_policy_unchanged():
    nsg = Nsg("n", (_rule("v4all", 100, Access.ALLOW, ALL4, ALL4),
                    _rule("all", 200, Access.DENY, AnyAddress(), AnyAddress())))
    (f,) = _findings(Policy(nsgs=(nsg,)))["all"]
    assert f.code == "NSG001" and not is_v6(f.witness.packet.src)


DEAD6 = """
vnet v 10.0.0.0/16, ace:cab:deca::/48 {
  subnet web 10.0.1.0/24, ace:cab:deca:deed::/64 nsg sub
}
nic web1 in v/web {
  ipconfig v4 ip 10.0.1.4
  ipconfig v6 ip ace:cab:deca:deed::4
  nsg nicnsg
}
nsg sub {
  inbound {
    100 allow web6 tcp from any to ace:cab:deca:deed::/64 port 443
    110 allow web  tcp from any to any port 8080
  }
}
nsg nicnsg {
  inbound {
    100 deny  no6  any from any to ace:cab:deca::/48
    200 allow all  tcp from any to any port 8080
  }
}
"""


def test_dead_across_layers_for_ipv6_packets():
    rp = resolve(parse_policy(DEAD6, "d.nsg"))
    found = {f.rule: f for f in lint(rp) if f.nsg == "sub"}
    # web6 allows IPv6 packets to web1 that the NIC's NSG denies; web decides IPv4 ones it lets through.
    f = found["web6"]
    assert f.code == "NSG004" and f.witness is not None
    flow = Evaluator(rp).evaluate(f.witness.packet)
    assert not flow.allowed and is_v6(f.witness.packet.src)
    assert "web" not in found


def test_corpus_dual_stack_template_end_to_end():
    if CORPUS is None:
        pytest.skip("the shared corpus (../shared/corpus) is absent")
    path = CORPUS / "arm" / "ipv6-in-vnet-stdlb.json"
    out, err = io.StringIO(), io.StringIO()
    status = cli_run(["lint", str(path)], out, err)
    text = out.getvalue()
    assert status == 0, err.getvalue()
    # The IPv6 application rule is live for no packet: allow-all-out allows all of them first (both families).
    assert "NSG003" not in text and "can never match" not in text
    assert "NSG001/shadowed-rule" in text and "allow-MyIpv6App-out" in text and "allow-all-out" in text


# ---------------------------------------------------------------- dual-stack property (Z3, 129-bit addresses)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies(max_rules=6, ipv6=True))
def test_dual_stack_removal_findings_hold_for_both_families(policy):
    """Every rule lint calls unmatchable, shadowed or redundant in a dual-stack policy can be removed without
    changing any decision of its list, for IPv4 *and* IPv6 packets (Z3 with 129-bit addresses, independent
    of the region arithmetic)."""
    import z3

    from nsgsolve.smt.encode import Encoding
    from nsgsolve.smt.z3util import make_solver

    rp = resolve(policy)
    enc = Encoding(rp)
    assert enc.addr_bits == 129
    for f in lint(rp):
        if f.code not in ("NSG001", "NSG002", "NSG003"):
            continue
        for vnet in f.vnets or rp.evaluation_vnets(f.nsg):
            rules = rp.nsg(f.nsg, vnet).rules(f.direction)
            (i,) = [k for k, r in enumerate(rules) if r.name == f.rule and not r.rule.is_default]
            s = make_solver()
            s.add(*enc.domain())
            s.add(_allows(enc, rules) != _allows(enc, rules[:i] + rules[i + 1:]))
            assert s.check() == z3.unsat, (f.nsg, vnet, f.rule, f.code, f.message)


def test_one_list_has_one_analysis_object():
    # Facts are cached by the analysis's id: a fresh object per call could take a freed one's id and
    # be answered with another list's facts.
    from nsgsolve.analyses.lint import Linter

    rp = resolve(parse_policy(DEAD6, "d.nsg"))
    linter = Linter(rp)
    nsg = rp.nsg("sub", "v")
    assert linter.analysis(nsg, Direction.INBOUND) is linter.analysis(nsg, Direction.INBOUND)
