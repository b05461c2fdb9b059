"""One meaning for traffic endpoints (nsgsolve/analyses/endpoints.py): an assertion and a query about the same
traffic give the same answer, on random policies and on the cases where the two used to differ."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nsgsolve import cli
from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.analyses.contracts import ContractChecker, check_policy
from nsgsolve.analyses.results import Status as Check
from nsgsolve.analyses.query import QueryEngine, Verdict, compile_query
from nsgsolve.lang.build import parse_policy, parse_query
from nsgsolve.analyses.endpoints import internet_hosts, resolve_side
from nsgsolve.errors import DiagnosticBag, InputError
from nsgsolve.model import Assertion, AssertionKind, Ref, SubnetAddr, SubnetRef, TagSide
from nsgsolve.semantics.resolve import IpcKey, resolve

from strategies import policies, queries

K = AssertionKind
HOST = ip_to_int("168.63.129.16")


# ---------------------------------------------------------------- the property


@st.composite
def policy_and_traffic(draw):
    policy = draw(policies(max_rules=5, max_nsgs=2))
    return policy, draw(queries(policy))


def holds(rp, kind: AssertionKind, q) -> tuple[Check, object]:
    r = ContractChecker(rp).check(Assertion(kind, q, name=f"{kind.value}-t", text=f"{kind.value} t"), f"{kind.value}-t")
    return r.verdict, r


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_and_traffic())
def test_assert_no_all_some_agree_with_the_query(case):
    """`assert no T` holds iff the query says none, `all T` iff all, `some T` iff some or all; an empty T
    (E802 for a query) makes no/all hold vacuously and some fail. With dynamic NICs `some T` asks more than
    the query (a packet allowed under *every* assignment, tests/test_contracts.py checks it by brute
    force): there it holds only if the query says some or all."""
    policy, q = case
    rp = resolve(policy)
    try:
        verdict = QueryEngine(rp).ask(q, coverage=False).verdict
    except InputError as e:
        assert e.diagnostics[0].code == "E802"
        verdict = None
    event(f"query {verdict.value if verdict else 'empty'}")
    expect = {
        K.NO: verdict in (Verdict.NONE, None),
        K.ALL: verdict in (Verdict.ALL, None),
        K.SOME: verdict in (Verdict.SOME, Verdict.ALL),
    }
    question = compile_query(rp, q)
    for kind, ok in expect.items():
        got, r = holds(rp, kind, q)
        assert got is not Check.UNKNOWN, r.reason
        # With dynamic NICs and some packet allowed, `some` may still fail (on an assignment that strands
        # the traffic); a pass where the query says none is caught either way.
        if not (kind is K.SOME and rp.dynamic_ipcs and ok):
            assert (got is Check.PASS) == ok, (kind, verdict, r.summary)
        if r.witness is not None:  # a counterexample (or example) is a packet the query asks about too
            w = r.witness
            assert question.contains(w.packet, w.src_endpoint, w.dst_endpoint), (kind, w.packet)


# ---------------------------------------------------------------- the cases that used to differ

SUBNETS = """\
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
  subnet db 10.0.2.0/24
}
asg WebServers
nic web1 in hub/web ip 10.0.1.4 asg WebServers
nic db1 in hub/db ip 10.0.2.4

nsg web-nsg {
  inbound {
    100 allow Allow-Web tcp from Internet to asg WebServers port 443
    200 deny  Deny-SSH  tcp from any to any port 22
  }
}
"""

# 198.51.100.0/24 is public space, but on-premises here: the VirtualNetwork tag holds it, so
# AllowVnetInBound admits it, as it admits 168.63.129.16.
DEFAULTS = """\
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
  onprem 198.51.100.0/24
}
asg WebServers
nic web1 in hub/web ip 10.0.1.4 asg WebServers
nic web2 in hub/web ip dynamic asg WebServers

nsg web-nsg {
  inbound {
    100 allow Allow-Web tcp from Internet to asg WebServers port 443
  }
}
"""


def _both(text: str, traffic: str, excepts: str = ""):
    """The query's verdict on ``traffic`` and the check verdicts of `assert no/all/some traffic ...`."""
    lines = [f"assert {k}: {k} {traffic}{excepts}" for k in ("no", "all", "some")]
    policy = parse_policy(text + "\n".join(lines) + "\n", "t.nsg")
    rp = resolve(policy)
    verdict = QueryEngine(rp).ask(parse_query(f"can {traffic.replace(' -> ', ' reach ')}", policy)).verdict
    results = {r.name: r for r in check_policy(policy, rp)}
    return verdict, results


def test_a_subnet_is_its_nics_in_both_commands():
    # Deny-SSH protects web1, the only NIC of hub/web. Its address range also holds addresses no NIC has:
    # db1 -> 10.0.1.50:22 meets only db1's (absent) outbound NSGs and is allowed. As an endpoint the subnet
    # means its NICs, so neither command counts those addresses; the CIDR does, in both.
    verdict, r = _both(SUBNETS, "any -> hub/web port 22 tcp")
    assert verdict is Verdict.NONE
    assert [r[k].verdict for k in ("no", "all", "some")] == [Check.PASS, Check.FAIL, Check.FAIL]
    assert r["all"].witness.dst_endpoint == IpcKey("web1") and r["all"].responsible[0].rule == "Deny-SSH"

    verdict, r = _both(SUBNETS, "any -> 10.0.1.0/24 port 22 tcp")
    assert verdict is Verdict.SOME
    assert [r[k].verdict for k in ("no", "all", "some")] == [Check.FAIL, Check.FAIL, Check.PASS]
    w = r["no"].witness
    assert w.dst_endpoint is None and w.src_endpoint is not None  # a NIC to an outside host of the range


def test_except_clauses_read_endpoints_the_same_way():
    # Excepting the subnet excepts web1 only: the rest of 10.0.1.0/24 (outside hosts) is still examined.
    policy = parse_policy(SUBNETS + "assert a: no any -> 10.0.1.0/24 port 22 tcp except to hub/web\n"
                          "assert b: no any -> 10.0.1.0/24 port 22 tcp except to 10.0.1.0/25, 10.0.1.128/25\n", "t.nsg")
    a, b = check_policy(policy)
    assert a.verdict is Check.FAIL and a.witness.dst_endpoint is None
    assert b.verdict is Check.PASS


def test_internet_leaves_out_168_63_129_16_and_on_premises_space_in_both_commands():
    rp = resolve(parse_policy(DEFAULTS, "t.nsg"))
    internet = internet_hosts(rp)
    assert HOST not in internet and ip_to_int("198.51.100.7") not in internet and ip_to_int("8.8.8.8") in internet
    # The default AllowVnetInBound admits both; as "an Internet host" neither counts.
    verdict, r = _both(DEFAULTS, "Internet -> WebServers port 22 tcp")
    assert verdict is Verdict.NONE
    assert [r[k].verdict for k in ("no", "all", "some")] == [Check.PASS, Check.FAIL, Check.FAIL]
    assert r["all"].responsible[0].rule == "DenyAllInBound"
    for source in ("168.63.129.16", "198.51.100.0/24"):  # named, they are asked about, and allowed
        verdict, r = _both(DEFAULTS, f"{source} -> WebServers port 22 tcp")
        assert verdict is Verdict.ALL
        assert [r[k].verdict for k in ("no", "all", "some")] == [Check.FAIL, Check.PASS, Check.PASS]
        assert r["no"].responsible[0].rule == "AllowVnetInBound"


def test_virtual_network_is_the_union_of_the_tag_over_every_vnet():
    rp = resolve(parse_policy(DEFAULTS, "t.nsg"))
    side = resolve_side(rp, (TagSide(Ref("VirtualNetwork")),), DiagnosticBag())
    for ip in ("10.0.9.9", "198.51.100.7", "168.63.129.16"):
        assert ip_to_int(ip) in side.addresses
    assert ip_to_int("8.8.8.8") not in side.addresses
    subnet = resolve_side(rp, (SubnetAddr(SubnetRef("hub", "web")),), DiagnosticBag())
    assert subnet.nics == {IpcKey("web1"), IpcKey("web2")} and not subnet.addresses


def test_ports_on_a_portless_protocol_are_e801_in_both_commands():
    policy = parse_policy(SUBNETS + "assert no any -> web1 port 22 icmp\n", "t.nsg")
    with pytest.raises(InputError) as e:
        check_policy(policy)
    assert e.value.diagnostics[0].code == "E801"
    with pytest.raises(InputError) as e:
        QueryEngine(resolve(policy)).ask(parse_query("can any reach web1 port 22 icmp", policy))
    assert e.value.diagnostics[0].code == "E801"


def _run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.run(list(argv), out, err), out.getvalue()


def test_text_output_says_what_internet_means(tmp_path):
    path = tmp_path / "t.nsg"
    path.write_text(DEFAULTS + "assert all Internet -> WebServers port 22\n")
    rc, out = _run("query", str(path), "can Internet reach WebServers port 22")
    assert rc == 0 and "note: Internet here is public address space outside every VNet's VirtualNetwork tag" in out
    assert "168.63.129.16" in out
    rc, out = _run("check", str(path))
    assert rc == 1 and "note: Internet here is public address space" in out
