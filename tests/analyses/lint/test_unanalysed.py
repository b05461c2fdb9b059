"""NSG009: a rule of a dual-stack policy is never called unmatchable, shadowed or redundant on the strength
of its IPv4 packets alone (issue 15: lint invited the deletion of live IPv6 rules)."""

from __future__ import annotations

import io

import pytest

from nsgsolve.analyses.lint import lint
from nsgsolve.cli import run as cli_run
from nsgsolve.model import (
    Access, AnyAddress, Cidr, Direction, Nsg, Policy, PortSpec, PrefixSide, Protocol, Rule,
)
from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.semantics.resolve import resolve

from corpus import CORPUS

OUT = Direction.OUTBOUND


def _rule(name: str, prio: int, access: Access, src, dst) -> Rule:
    return Rule(name, prio, OUT, access, Protocol.ANY, src, PortSpec(), dst, PortSpec())


def _codes(policy: Policy) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in lint(resolve(policy)):
        out.setdefault(f.rule, []).append(f.code)
    return out


V6 = PrefixSide((Cidr(ip_to_int("ace:cab:deca:deed::"), 64),))
V4 = PrefixSide((Cidr(0x0A000000, 8),))


def test_ipv6_only_rule_is_not_unmatchable():
    nsg = Nsg("n", (_rule("v6", 100, Access.ALLOW, V6, V6),))
    assert _codes(Policy(nsgs=(nsg,))) == {"v6": ["NSG009"]}


def test_mixed_rule_is_not_shadowed():
    # The IPv4 part of "mixed" is shadowed by "first"; its IPv6 part decides packets no rule above matches.
    mixed = PrefixSide(V4.items + V6.items)
    nsg = Nsg("n", (_rule("first", 100, Access.DENY, AnyAddress(), V4), _rule("mixed", 200, Access.ALLOW,
                                                                                   AnyAddress(), mixed)))
    assert _codes(Policy(nsgs=(nsg,)))["mixed"] == ["NSG009"]


def test_any_rule_in_dual_stack_policy_keeps_ipv4_verdict_as_note():
    # "all" is shadowed for IPv4 packets by "v4all", but it decides every IPv6 packet.
    nsg = Nsg("n", (_rule("v4all", 100, Access.ALLOW, PrefixSide((Cidr(0, 0),)), PrefixSide((Cidr(0, 0),))),
                    _rule("all", 200, Access.DENY, AnyAddress(), AnyAddress()),
                    _rule("v6", 300, Access.ALLOW, V6, V6)))
    findings = [f for f in lint(resolve(Policy(nsgs=(nsg,)))) if f.rule == "all"]
    assert [f.code for f in findings] == ["NSG009"]
    assert "for IPv4 packets only (NSG001)" in findings[0].message and findings[0].witness is None


def test_ipv4_only_policy_unchanged():
    nsg = Nsg("n", (_rule("v4all", 100, Access.ALLOW, PrefixSide((Cidr(0, 0),)), PrefixSide((Cidr(0, 0),))),
                    _rule("all", 200, Access.DENY, AnyAddress(), AnyAddress())))
    assert _codes(Policy(nsgs=(nsg,)))["all"] == ["NSG001"]


def test_corpus_dual_stack_template_end_to_end():
    if CORPUS is None:
        pytest.skip("the shared corpus (../shared/corpus) is absent")
    path = CORPUS / "arm" / "ipv6-in-vnet-stdlb.json"
    out, err = io.StringIO(), io.StringIO()
    status = cli_run(["lint", str(path)], out, err)
    text = out.getvalue()
    assert status == 0, err.getvalue()
    assert "NSG003" not in text and "can never match" not in text
    assert "NSG009/ipv6-not-analysed" in text and "allow-MyIpv6App-out" in text


# ---------------------------------------------------------------- dual-stack property

from hypothesis import HealthCheck, given, settings  # noqa: E402

from strategies import policies  # noqa: E402


def _list_allows(enc, rules):
    import z3

    acc = z3.BoolVal(False)
    for r in reversed(rules):
        m = enc.match(r)
        acc = z3.Or(m, acc) if r.access is Access.ALLOW else z3.And(z3.Not(m), acc)
    return acc


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies(max_rules=6, ipv6=True))
def test_dual_stack_removal_findings_hold_for_both_families(policy):
    """Every rule lint still calls unmatchable, shadowed or redundant in a dual-stack policy can be removed
    without changing any decision of its list, for IPv4 *and* IPv6 packets (Z3 with 129-bit addresses)."""
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
            s.add(_list_allows(enc, rules) != _list_allows(enc, rules[:i] + rules[i + 1:]))
            assert s.check() == z3.unsat, (f.nsg, vnet, f.rule, f.code, f.message)
