"""Contracts: every assertion kind passes and fails where it should, with witness, trace and responsible rules."""

from __future__ import annotations

import pytest

from contract_fixtures import (
    ANY, FILE, INTERNET, LINE, WEB, AssertExcept, AssertionKind, NicAddr, Protocol, assertion, cidr, ports,
    web_policy, with_assertions,
)
from nsgsolve.analyses.contracts import check_policy, unique_names
from nsgsolve.analyses.results import Status
from nsgsolve.errors import InputError
from nsgsolve.semantics.evaluate import Evaluator
from nsgsolve.model import Ref, TagSide
from nsgsolve.semantics.resolve import resolve

K = AssertionKind


def check_one(a, **kw):
    (r,) = check_policy(with_assertions(web_policy(**kw), a))
    return r


def test_no_fails_with_an_allowed_witness_and_the_allow_rule_responsible():
    r = check_one(assertion(K.NO, "no Internet -> WebServers port 22", dports=ports(22)))
    assert r.verdict is Status.FAIL
    w = r.witness
    assert w is not None and w.allowed and w.packet.dport == 22 and w.packet.protocol == 6
    assert str(w.dst_endpoint) == "web1"
    assert [s.rule for s in w.trace] == ["Allow-SSH"]
    (resp,) = r.responsible
    assert (resp.rule, resp.priority, resp.nsg) == ("Allow-SSH", 200, "web-nsg")
    assert (resp.span.file, resp.span.line) == (FILE, LINE["Allow-SSH"])
    # The witness is real: the reference evaluator, run independently, allows it.
    assert Evaluator(resolve(web_policy())).evaluate(w.packet).allowed


def test_no_passes_when_the_rule_is_gone():
    r = check_one(assertion(K.NO, "no Internet -> WebServers port 22", dports=ports(22)), ssh_open=False)
    assert r.verdict is Status.PASS and r.witness is None


def test_all_passes_and_fails_with_the_blocking_rule():
    ok = check_one(assertion(K.ALL, "all Internet -> WebServers port 443 tcp", dports=ports(443), proto=Protocol.TCP))
    assert ok.verdict is Status.PASS
    bad = check_one(assertion(K.ALL, "all Internet -> WebServers port 443", dports=ports(443)))  # udp is not open
    assert bad.verdict is Status.FAIL
    assert not bad.witness.allowed and bad.witness.packet.protocol == 17
    (resp,) = bad.responsible
    assert (resp.rule, resp.is_default) == ("DenyAllInBound", True)


def test_some_passes_with_an_example_and_fails_when_nothing_gets_through():
    vnet = (TagSide(Ref("VirtualNetwork")),)
    ok = check_one(assertion(K.SOME, "some VirtualNetwork -> web1 port 1433 tcp", src=vnet,
                             dst=(NicAddr(Ref("web1")),), dports=ports(1433), proto=Protocol.TCP))
    assert ok.verdict is Status.PASS and ok.witness.allowed
    bad = check_one(assertion(K.SOME, "some Internet -> web1 port 1433 tcp", dst=(NicAddr(Ref("web1")),),
                              dports=ports(1433), proto=Protocol.TCP))
    assert bad.verdict is Status.FAIL
    assert bad.witness is not None and not bad.witness.allowed  # an example of the blocking
    assert bad.responsible[0].rule == "DenyAllInBound"


def test_only_fails_on_a_port_outside_the_contract_and_passes_without_it():
    a = assertion(K.ONLY, "only Internet -> WebServers port 80,443 tcp", dports=ports(80, 443), proto=Protocol.TCP)
    bad = check_one(a)
    assert bad.verdict is Status.FAIL and bad.witness.allowed
    assert bad.witness.packet.dport == 22 and [r.rule for r in bad.responsible] == ["Allow-SSH"]
    assert check_one(a, ssh_open=False).verdict is Status.PASS


def test_internet_endpoint_leaves_out_the_azure_host_address():
    # 168.63.129.16 is public but Azure's own; AllowVnetInBound admits it. As an endpoint, Internet means
    # Internet hosts (docs/contracts.md), so this holds; naming the address shows the default rule.
    a = assertion(K.NO, "no Internet -> WebServers port 22", dports=ports(22))
    assert check_one(a, ssh_open=False).verdict is Status.PASS
    host = assertion(K.NO, "no 168.63.129.16/32 -> WebServers port 22", src=(cidr("168.63.129.16/32"),),
                     dports=ports(22))
    r = check_one(host, ssh_open=False)
    assert r.verdict is Status.FAIL and r.responsible[0].rule == "AllowVnetInBound"


def test_except_removes_the_documented_exception():
    admins = (cidr("203.0.113.0/24"),)
    base = dict(src=ANY, dst=WEB, dports=ports(22))
    bad = check_one(assertion(K.NO, "no any -> WebServers port 22", **base))
    assert bad.verdict is Status.FAIL
    # Allow-SSH admits every Internet source: excepting one /24 is not enough; excepting Internet and the
    # VNet (AllowVnetInBound) is.
    partial = check_one(assertion(K.NO, "no any -> WebServers port 22 except from 203.0.113.0/24",
                                  excepts=(AssertExcept(sources=admins),), **base))
    assert partial.verdict is Status.FAIL
    assert not (0xCB007100 <= partial.witness.packet.src <= 0xCB0071FF)
    vnet = TagSide(Ref("VirtualNetwork"))
    full = check_one(assertion(K.NO, "no any -> WebServers port 22 except from Internet, VirtualNetwork",
                               excepts=(AssertExcept(sources=INTERNET + (vnet,)),), **base))
    assert full.verdict is Status.PASS
    # An except on the port instead of the source: nothing of port 22 is left to examine.
    by_port = check_one(assertion(K.NO, "no any -> WebServers port 22 except port 22",
                                  excepts=(AssertExcept(ports=ports(22)),), **base))
    assert by_port.verdict is Status.PASS


def test_traffic_between_outside_addresses_is_not_the_policys():
    # Neither end is a NIC: nothing filters it, and it is no contract's business (docs/contracts.md).
    r = check_one(assertion(K.NO, "no 198.51.100.0/24 -> 192.0.2.0/24", src=(cidr("198.51.100.0/24"),),
                            dst=(cidr("192.0.2.0/24"),)))
    assert r.verdict is Status.PASS


def test_clean_and_no_shadowed_follow_the_anomaly_analysis():
    import dataclasses

    from nsgsolve.model import ANY_PORTS, Access, Direction, Protocol as P, Rule, Span

    ok = web_policy()
    for kind, text in ((K.CLEAN, "clean"), (K.NO_SHADOWED, "no shadowed")):
        (r,) = check_policy(with_assertions(ok, assertion(kind, text)))
        assert r.verdict is Status.PASS, r.summary
    # A deny under Allow-Web for the same traffic never decides anything, against its author's intent:
    # NSG001 at error severity, so both contracts fail and name the rule.
    nsg = ok.nsgs[0]
    dead = Rule("Deny-Web", 300, Direction.INBOUND, Access.DENY, P.TCP, INTERNET[0], ANY_PORTS, WEB[0], ports(443),
                span=Span(FILE, 12, 5, 12, 60))
    bad = dataclasses.replace(ok, nsgs=(dataclasses.replace(nsg, rules=nsg.rules + (dead,)),))
    for kind, text in ((K.CLEAN, "clean"), (K.NO_SHADOWED, "no shadowed")):
        (r,) = check_policy(with_assertions(bad, assertion(kind, text)))
        assert r.verdict is Status.FAIL
        assert [(x.rule, x.span.line) for x in r.responsible] == [("Deny-Web", 12)]
        assert r.findings and r.findings[0].startswith("NSG001/shadowed-rule")


def test_solver_giving_up_is_unknown_not_pass():
    p = with_assertions(web_policy(ssh_open=False),
                        assertion(K.NO, "no Internet -> WebServers port 22", dports=ports(22)))
    # With assumption literals Z3 cannot settle even this small question in one step of work.
    (r,) = check_policy(p, rlimit=1, solver_mode="assumptions")
    assert r.verdict is Status.UNKNOWN and "gave up" in r.summary
    # It says which limit stopped it and how to raise it, not just Z3's "canceled".
    assert "resource limit of 1 step per question" in r.summary and "--solver-limit 10" in r.summary


def test_names_explicit_unique_derived_numbered():
    a = assertion(K.NO, "no Internet -> WebServers port 22", dports=ports(22))
    assert unique_names([a, a]) == ["no-internet-webservers-port-22", "no-internet-webservers-port-22-2"]
    n = assertion(K.NO, "no Internet -> WebServers port 22", dports=ports(22), name="no-ssh")
    with pytest.raises(InputError) as e:
        unique_names([n, n])
    assert e.value.diagnostics[0].code == "E701"


def test_solver_modes_agree():
    asserts = [
        assertion(K.NO, "no Internet -> WebServers port 22", dports=ports(22), line=20),
        assertion(K.ALL, "all Internet -> WebServers port 443 tcp", dports=ports(443), proto=Protocol.TCP, line=21),
        assertion(
            K.ONLY,
            "only Internet -> WebServers port 80,443,22 tcp",
            dports=ports(80, 443, 22),
            proto=Protocol.TCP,
            line=22,
        ),
    ]
    p = with_assertions(web_policy(), *asserts)
    by_mode = {m: [r.verdict for r in check_policy(p, solver_mode=m)] for m in ("assumptions", "push", "fresh")}
    assert by_mode["assumptions"] == [Status.FAIL, Status.PASS, Status.PASS]
    assert by_mode["push"] == by_mode["fresh"] == by_mode["assumptions"]


def test_narrowed_questions_agree_with_the_whole_policy():
    # check asks each question against only the rules that can match the assertion's traffic; on random
    # policies and assertions that must decide exactly as the whole-policy decision does.
    import dataclasses
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_check import make_assertions
    from generate import generate_policy

    for seed in (1, 2):
        base = generate_policy(40, seed=seed, n_subnets=2, nics_per_subnet=3)
        p = dataclasses.replace(base, assertions=make_assertions(base, 15, seed=seed))
        rp = resolve(p)
        narrowed = check_policy(p, rp)
        whole = check_policy(p, rp, narrow=False)
        assert [r.verdict for r in narrowed] == [r.verdict for r in whole]
        assert {r.verdict for r in narrowed} >= {Status.PASS, Status.FAIL}  # both outcomes exercised
        for r in narrowed:  # every counterexample is confirmed by the evaluator
            if r.verdict is Status.FAIL and r.witness is not None:
                expect = r.assertion.kind is not AssertionKind.ALL and r.witness_role != "example blocked"
                assert r.witness.allowed is expect


# ---------------------------------------------------------------- `some` with dynamic addresses

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nsgsolve.semantics.addresses import int_to_ip, ip_to_int  # noqa: E402
from nsgsolve.lang.build import parse_policy  # noqa: E402
from nsgsolve.semantics.evaluate import Packet  # noqa: E402
from nsgsolve.semantics.resolve import IpcKey  # noqa: E402


def _policy(subnet: str, rules: str, asserts: str, nics: str = "nic web2 in v/s ip dynamic"):
    return parse_policy(f"vnet v 10.0.0.0/16 {{\n  subnet s {subnet} nsg n\n}}\n{nics}\n"
                        f"nsg n {{\n  inbound {{\n{rules}\n  }}\n}}\n{asserts}\n", "dyn.nsg")


def _check_text(subnet: str, rules: str, claim: str, **kw):
    (r,) = check_policy(_policy(subnet, rules, f"assert {claim}", **kw))
    return r


def test_some_fails_when_one_address_azure_may_assign_gets_nothing():
    # Only 10.0.1.10 is open, but web2's address is Azure's choice: the claim must fail with the address.
    pinned = "100 allow Pinned tcp from Internet to 10.0.1.10 port 443"
    r = _check_text("10.0.1.0/24", pinned, "web2-reachable: some Internet -> web2 port 443 tcp")
    assert r.verdict is Status.FAIL
    web2 = IpcKey("web2")
    at = r.assignment[web2]
    assert at != ip_to_int("10.0.1.10")
    assert f"with web2 at {int_to_ip(at)} nothing of this traffic is allowed" in r.summary
    assert r.witness is not None and not r.witness.allowed and r.witness.packet.dst == at
    # The evaluator agrees: with web2 there, no Internet source reaches it on 443.
    ev = Evaluator(resolve(_policy("10.0.1.0/24", pinned, "")), {web2: at})
    assert not ev.evaluate(Packet(6, ip_to_int("203.0.113.7"), 49152, at, 443)).allowed


def test_some_passes_when_every_address_is_open():
    r = _check_text("10.0.1.0/24", "100 allow Whole tcp from Internet to 10.0.1.0/24 port 443",
                    "some Internet -> web2 port 443 tcp")
    assert r.verdict is Status.PASS and "whatever addresses" in r.summary and r.witness.allowed


# In the /29 Azure may give web2 10.0.1.4, .5 or .6; each address is open to a different source only, so no
# one packet (even generalised to "to web2") works everywhere and the check needs a round per address.
PER_ADDRESS = ["100 allow A tcp from 203.0.113.1 to 10.0.1.4 port 443",
               "110 allow B tcp from 203.0.113.2 to 10.0.1.5 port 443",
               "120 allow C tcp from 203.0.113.3 to 10.0.1.6 port 443"]


def test_some_refines_over_several_assignments():
    r = _check_text("10.0.1.0/29", "\n".join(PER_ADDRESS), "some Internet -> web2 port 443 tcp")
    assert r.verdict is Status.PASS and "(in 3 rounds)" in r.summary
    bad = _check_text("10.0.1.0/29", "\n".join(PER_ADDRESS[:2]), "some Internet -> web2 port 443 tcp")
    assert bad.verdict is Status.FAIL and "with web2 at 10.0.1.6 nothing" in bad.summary


def test_some_out_of_rounds_is_undecided_never_pass(monkeypatch):
    from nsgsolve.analyses import contracts

    monkeypatch.setattr(contracts, "SOME_ROUNDS", 2)
    r = _check_text("10.0.1.0/29", "\n".join(PER_ADDRESS), "some Internet -> web2 port 443 tcp")
    assert r.verdict is Status.UNKNOWN and "2 rounds" in r.summary


def test_some_with_an_address_endpoint_only_a_dynamic_nic_can_hold():
    # 10.0.1.5 is a NIC only when Azure puts web2 there; otherwise the traffic is empty, and fails.
    r = _check_text("10.0.1.0/29", "100 allow Range tcp from Internet to 10.0.1.0/29 port 443",
                    "some Internet -> 10.0.1.5 port 443 tcp")
    assert r.verdict is Status.FAIL and "the traffic is empty" in r.summary
    assert r.assignment[IpcKey("web2")] != ip_to_int("10.0.1.5")
    assert r.to_dict()["dynamic_ips"] == {"web2": int_to_ip(r.assignment[IpcKey("web2")])}  # no witness to carry it


SRC_RULE = ["203.0.113.0/30", "203.0.113.1", "203.0.113.2/31", "Internet", "any", "10.0.1.4", "10.0.1.5",
            "10.0.1.6", "nic web1", "nic web2", "Front"]
DST_RULE = ["10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.1.0/29", "10.0.1.4/31", "nic web1", "nic web2", "Front", "any"]
PORTS_RULE = ["443", "22", "*"]
SRC_CLAIM = ["203.0.113.0/30", "web1", "Front"]
DST_CLAIM = ["web2", "10.0.1.0/29", "Front", "10.0.1.5"]
TINY = [ip_to_int("203.0.113.0") + i for i in range(4)] + [ip_to_int("10.0.1.0") + i for i in range(8)]


@st.composite
def tiny_some(draw):
    rules = [f"{100 + 10 * i} {draw(st.sampled_from(['allow', 'deny']))} r{i} tcp from "
             f"{draw(st.sampled_from(SRC_RULE))} to {draw(st.sampled_from(DST_RULE))} port "
             f"{draw(st.sampled_from(PORTS_RULE))}" for i in range(draw(st.integers(1, 5)))]
    claim = f"some {draw(st.sampled_from(SRC_CLAIM))} -> {draw(st.sampled_from(DST_CLAIM))} port 443 tcp"
    return "\n".join(rules), claim


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_some())
def test_some_agrees_with_every_assignment_brute_force(case):
    # Two dynamic NICs in a /29 (three usable addresses): enumerate all six assignments and every packet the
    # claim can name (its addresses all lie in TINY) with the reference evaluator.
    import itertools

    from nsgsolve.analyses.contracts import ContractChecker

    rules, claim = case
    nics = "asg Front\nnic web1 in v/s ip dynamic asg Front\nnic web2 in v/s ip dynamic"
    policy = _policy("10.0.1.0/29", rules, f"assert {claim}", nics=nics)
    rp = resolve(policy)
    (a,) = policy.assertions
    (r,) = check_policy(policy, rp)
    traffic, _ = ContractChecker(rp).resolve(a)
    keys = (IpcKey("web1"), IpcKey("web2"))
    usable = [ip_to_int("10.0.1.4") + i for i in range(3)]

    def some_allowed(assignment):
        ev = Evaluator(rp, assignment, fast=False)
        for src, dst in itertools.product(TINY, TINY):
            f = ev.evaluate(Packet(6, src, 49152, dst, 443))
            if f.allowed and traffic.contains(f.packet, f.src_endpoint, f.dst_endpoint):
                return True
        return False

    holds = all(some_allowed(dict(zip(keys, ips))) for ips in itertools.permutations(usable, 2))
    assert r.verdict is (Status.PASS if holds else Status.FAIL), (rules, claim, r.summary)
    if r.verdict is Status.FAIL and r.assignment:  # the counterexample assignment really strands the traffic
        assert not some_allowed(r.assignment)
