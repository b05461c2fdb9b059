"""Reachability queries: the issue's query forms, symbolic dynamic NICs, witnesses replayed through the
evaluator, exact sets checked packet by packet against the evaluator, and the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nsgsolve import cli
from nsgsolve.semantics.addresses import ip_to_int, is_v6
from nsgsolve.analyses.query import QueryEngine, Verdict, compile_query
from nsgsolve.reports.query import describe_box
from nsgsolve.lang.build import parse_policy, parse_query
from nsgsolve.errors import InputError, SolverUnknown
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.model import Access, NicAddr, PortRange, PortSpec, Protocol, Query, Ref, TagSide
from nsgsolve.semantics.resolve import IpcKey, resolve

from strategies import EXTERNAL, dynamic_assignment, packets, policies, queries

ROOT = Path(__file__).resolve().parent.parent

WEB = """\
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
  subnet db 10.0.2.0/24
}
asg WebServers
nic web1 in hub/web ip 10.0.1.4 asg WebServers
nic web2 in hub/web ip dynamic asg WebServers
nic db1 in hub/db ip 10.0.2.4

nsg web-nsg {
  inbound {
    100 allow Allow-Web tcp from Internet to asg WebServers port 80, 443
    200 deny  Deny-SSH  tcp from any to any port 22
  }
}
query can Internet reach WebServers port 22
query can Internet reach WebServers port 443 tcp
"""

THREE_TIER = """\
subscription pay-as-you-go
tag Storage = 20.38.96.0/19, 52.239.128.0/17

vnet prod 10.1.0.0/16 {
  subnet web-subnet 10.1.1.0/24 nsg web-nsg
  subnet app-subnet 10.1.2.0/24 nsg app-nsg
  subnet db-subnet 10.1.3.0/24 nsg db-nsg
}
asg WebServers, AppServers, DbServers
nic web1 in prod/web-subnet ip 10.1.1.4 asg WebServers
nic web2 in prod/web-subnet ip 10.1.1.5 asg WebServers
nic app1 in prod/app-subnet ip dynamic asg AppServers
nic db1 in prod/db-subnet ip 10.1.3.4 asg DbServers
nic db2 in prod/db-subnet ip 10.1.3.5 asg DbServers

nsg web-nsg {
  inbound {
    100 allow https tcp from Internet to asg WebServers port 443
    110 allow ssh-admin tcp from 203.0.113.0/24 to asg WebServers port 22
  }
  outbound {
    100 allow to-app tcp from asg WebServers to asg AppServers port 8080
    110 deny to-storage * from any to Storage
  }
}
nsg app-nsg {
  inbound {
    100 allow from-web tcp from asg WebServers to asg AppServers port 8080
    4000 deny vnet-in * from VirtualNetwork to VirtualNetwork
  }
}
nsg db-nsg {
  inbound {
    100 allow sql tcp from asg AppServers to asg DbServers port 1433
    4000 deny rest * from any to any
  }
}
"""


def _ask(text: str, query: str, exact: bool = True):
    policy = parse_policy(text, "test.nsg")
    rp = resolve(policy)
    return rp, QueryEngine(rp).ask(parse_query(query, policy), exact=exact)


def _replays(rp, w, decision: Access) -> None:
    """A witness must be decided by the evaluator as claimed, under the addresses it assumed."""
    flow = Evaluator(rp, dict(w.assignment)).evaluate(w.packet)
    assert flow.decision is decision and flow == w.flow


# ---------------------------------------------------------------- the issue's query forms


def test_webservers_port_22_is_none_and_443_tcp_is_all():
    rp, r = _ask(WEB, "can Internet reach WebServers port 22")
    assert r.verdict is Verdict.NONE and r.allowed_witness is None and r.exact == ()
    _replays(rp, r.blocked_witness, Access.DENY)
    assert [s.rule for s in r.blocked_witness.flow.trace] in (["Deny-SSH"], ["Deny-SSH"])
    rp, r = _ask(WEB, "can Internet reach WebServers port 443 tcp")
    assert r.verdict is Verdict.ALL and r.blocked_witness is None
    _replays(rp, r.allowed_witness, Access.ALLOW)
    # the answer covers both members of the ASG, the dynamic one too, and says so
    assert [label.split()[0] for label, _ in r.coverage.rows] == ["web1", "web2"]
    assert [v for _, v in r.coverage.rows] == [Verdict.ALL, Verdict.ALL]
    assert [describe_box(b) for b in r.exact] == ["tcp port 443: Internet -> web1, web2"]


def test_cidr_to_nic_with_protocol():
    rp, r = _ask(THREE_TIER, "can 203.0.113.0/24 reach web1 port 443 tcp")
    assert r.verdict is Verdict.ALL
    assert r.allowed_witness.nic == IpcKey("web1")
    assert ip_to_int("203.0.113.0") <= r.allowed_witness.packet.src <= ip_to_int("203.0.113.255")
    assert r.allowed_witness.packet.protocol == 6 and r.allowed_witness.packet.dport == 443


def test_any_to_subnet_reaches_only_from_the_app_tier():
    rp, r = _ask(THREE_TIER, "can any reach db-subnet port 1433 tcp")
    assert r.verdict is Verdict.SOME
    assert r.allowed_witness.flow.src_endpoint == IpcKey("app1")  # the only allowed source is app1
    assert r.blocked_witness.flow.trace[-1].rule == "rest"
    assert [describe_box(b) for b in r.exact] == ["tcp port 1433: app1 -> db1, db2"]
    assert {label.split()[0] for label, _ in r.coverage.rows} == {"db1", "db2"}


def test_subnet_to_internet_port_25_is_blocked_by_the_platform():
    rp, r = _ask(THREE_TIER, "can web-subnet reach Internet port 25 tcp")
    assert r.verdict is Verdict.NONE
    assert r.blocked_witness.flow.trace[-1].rule == "PlatformBlockOutboundSmtp"
    assert r.coverage.side == "source"
    ea = THREE_TIER.replace("pay-as-you-go", "enterprise-agreement")
    _, r = _ask(ea, "can web-subnet reach Internet port 25 tcp")
    # without the platform block only web-nsg's own rule (no Storage) still blocks some of it
    assert r.verdict is Verdict.SOME and r.blocked_witness.flow.trace[0].rule == "to-storage"


def test_virtual_network_to_a_service_tag():
    rp, r = _ask(THREE_TIER, "can VirtualNetwork reach Storage port 443")
    assert r.verdict is Verdict.SOME
    assert r.blocked_witness.flow.trace[0].rule == "to-storage"
    rows = dict((label.split()[0], v) for label, v in r.coverage.rows)
    assert rows == {"web1": Verdict.NONE, "web2": Verdict.NONE, "db1": Verdict.ALL, "db2": Verdict.ALL,
                    "app1": Verdict.ALL}
    assert [describe_box(b) for b in r.exact] == ["tcp,udp port 443: db1, db2, app1 -> 20.38.96.0/19, 52.239.128.0/17"]


def test_lists_ranges_and_named_endpoints():
    rp, r = _ask(THREE_TIER, "can 203.0.113.7, 198.51.100.0/24 reach nic web1, nic web2 port 20-25 tcp")
    assert r.verdict is Verdict.SOME  # only 203.0.113.7 on port 22
    assert [describe_box(b) for b in r.exact] == ["tcp port 22: 203.0.113.7 -> web1, web2"]
    rp, r = _ask(THREE_TIER, "can vnet prod reach 8.8.8.8 icmp")
    assert r.verdict is Verdict.ALL and r.allowed_witness.packet.dport is None


def test_queries_written_in_the_policy_file_are_answerable():
    policy = parse_policy(WEB, "web.nsg")
    engine = QueryEngine(resolve(policy))
    assert [engine.ask(q).verdict for q in policy.queries] == [Verdict.NONE, Verdict.ALL]


# ---------------------------------------------------------------- dynamic NICs


def test_dynamic_nic_is_covered_wherever_azure_puts_it():
    # web2 is dynamic in 10.0.1.0/24; a /28 covers it only when its address lands there
    rp, r = _ask(WEB, "can Internet reach 10.0.1.0/28 port 443 tcp")
    # web1, and web2 when inside, are allowed; the /28's other addresses hold no NIC, so traffic from the
    # Internet to them meets no NSG and is not part of the question
    assert r.verdict is Verdict.ALL
    boxes = [b for b in r.exact]
    assert len(boxes) == 1
    (name, where), = boxes[0].dst.dynamic
    assert name == "web2" and list(where) == [(ip_to_int("10.0.1.5"), ip_to_int("10.0.1.15"))]
    assert boxes[0].dst.nics == ("web1",)


def test_rule_on_a_dynamic_member_follows_it_in_witnesses():
    text = WEB.replace("200 deny  Deny-SSH  tcp from any to any port 22",
                       "200 allow ssh-web2 tcp from 203.0.113.0/24 to nic web2 port 22")
    rp, r = _ask(text, "can 203.0.113.0/24 reach WebServers port 22 tcp")
    assert r.verdict is Verdict.SOME
    assert r.allowed_witness.nic == IpcKey("web2")
    _replays(rp, r.allowed_witness, Access.ALLOW)
    assert r.blocked_witness.nic == IpcKey("web1")
    rows = dict((label.split()[0], v) for label, v in r.coverage.rows)
    assert rows == {"web1": Verdict.NONE, "web2": Verdict.ALL}


# ---------------------------------------------------------------- errors and limits


def test_ports_with_a_portless_protocol_is_invalid():
    policy = parse_policy(WEB, "web.nsg")
    q = Query((TagSide(Ref("Internet")),), (NicAddr(Ref("web1")),), PortSpec((PortRange(22, 22),)), Protocol.ICMP)
    with pytest.raises(InputError) as e:
        QueryEngine(resolve(policy)).ask(q)
    assert e.value.diagnostics[0].code == "E801"


def test_a_query_without_any_nic_on_the_path_is_an_error_not_a_verdict():
    policy = parse_policy(WEB, "web.nsg")
    with pytest.raises(InputError) as e:
        QueryEngine(resolve(policy)).ask(parse_query("can Internet reach 8.8.8.8", policy))
    assert e.value.diagnostics[0].code == "E802"


def test_solver_giving_up_raises_unknown_never_a_verdict():
    policy = parse_policy(THREE_TIER, "t.nsg")
    engine = QueryEngine(resolve(policy), rlimit=1)
    with pytest.raises(SolverUnknown):
        engine.ask(parse_query("can any reach db-subnet port 1433 tcp", policy))


# ---------------------------------------------------------------- JSON and CLI


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.run(list(argv), out, err), out.getvalue(), err.getvalue()


@pytest.fixture
def web_file(tmp_path):
    p = tmp_path / "web.nsg"
    p.write_text(WEB)
    return str(p)


def test_json_has_exactly_the_documented_shape(web_file):
    rc, out, _ = _run("query", web_file, "can any reach WebServers port 22, 443 tcp", "--json", "--exact")
    assert rc == 0
    d = json.loads(out)
    assert set(d) == {"schema", "verdict", "allowed_witness", "blocked_witness", "exact"}
    assert d["schema"] == "nsgsolve/query/1"
    assert d["verdict"] == "some"
    for w in (d["allowed_witness"], d["blocked_witness"]):
        assert {"src", "dst", "protocol", "sport", "dport", "trace", "src_nic", "dst_nic", "dynamic_ips"} <= set(w)
        assert all({"nsg", "rule", "access", "direction"} <= set(s) for s in w["trace"])
    assert d["allowed_witness"]["dport"] == 443 and d["blocked_witness"]["trace"][-1]["access"] == "Deny"
    assert d["exact"] and all({"sources", "destinations", "protocols", "destination_ports"} <= set(b)
                              for b in d["exact"])


def test_cli_text_answers_every_query_of_the_file(web_file):
    rc, out, _ = _run("query", web_file)
    assert rc == 0
    assert "verdict: none" in out and "verdict: all" in out and "Deny-SSH" in out and "Allow-Web" in out
    rc, out, _ = _run("query", web_file, "--json")
    assert [e["result"]["verdict"] for e in json.loads(out)["queries"]] == ["none", "all"]


def test_cli_exit_statuses(web_file, tmp_path):
    assert _run("query", web_file, "can Internet reach Nope port 22")[0] == 2
    assert _run("query", web_file, "can Internet reach web1 port 22 icmp")[0] == 2
    rc, _, err = _run("query", web_file, "can any reach WebServers", "--rlimit", "1")
    assert rc == 3 and "inconclusive" in err
    assert "resource limit of 1 step" in err and "--solver-limit 10" in err  # which limit, and how to raise it
    empty = tmp_path / "empty.nsg"
    empty.write_text(WEB.split("query")[0])
    rc, _, err = _run("query", str(empty))
    assert rc == 2 and "no query" in err


@pytest.mark.parametrize("example,query,verdict", [
    ("webservers.nsg", "can Internet reach WebServers port 22", "none"),
    ("webservers.nsg", "can Internet reach WebServers port 443 tcp", "all"),
    ("webservers.nsg", "can 203.0.113.0/24 reach web1 port 443 tcp", "all"),
    # pay-as-you-go: the platform blocks outbound TCP 25 to the Internet whatever the NSGs say
    ("webservers.nsg", "can myVirtualNetwork/mySubnet reach Internet port 25 tcp", "none"),
    # only the app tier may reach the database, and only on 1433
    ("three-tier.nsg", "can any reach prod/db port 1433 tcp", "some"),
    # enterprise agreement: no platform block, and web-nsg denies only the db subnet outbound
    ("three-tier.nsg", "can prod/web reach Internet port 25 tcp", "all"),
    # spokes allow Storage on tcp 443 only (udp 443 meets Deny-Internet)
    ("hub-spoke.nsg", "can VirtualNetwork reach Storage.WestEurope port 443", "some"),
])
def test_issue_query_forms_on_the_shipped_examples(example, query, verdict):
    path = ROOT / "examples" / example
    if not path.exists():
        pytest.skip(f"examples/{example} is not in this checkout")
    rc, out, _ = _run("query", str(path), query, "--json", "--exact")
    assert rc == 0
    d = json.loads(out)
    assert d["verdict"] == verdict
    assert (d["exact"] == []) == (verdict == "none")


def test_exact_answer_on_the_three_tier_example_names_the_app_tier():
    path = ROOT / "examples" / "three-tier.nsg"
    if not path.exists():
        pytest.skip("examples/three-tier.nsg is not in this checkout")
    rc, out, _ = _run("query", str(path), "can any reach prod/db port 1433 tcp", "--exact")
    assert rc == 0
    assert out.splitlines()[-1].strip() == "tcp port 1433: app1, app2 -> db1, db2"


# ---------------------------------------------------------------- properties on random policies


@st.composite
def policy_query_packets(draw, admin: bool = False):
    policy = draw(policies(max_rules=5, max_nsgs=2, admin=admin))
    q = draw(queries(policy))
    assignment = dynamic_assignment(policy)
    pkts = draw(st.lists(packets(policy), min_size=10, max_size=25))
    for ip in assignment.values():  # packets to and from the dynamic NICs where they sit in this run
        base = draw(packets(policy))
        pkts += [Packet(base.protocol, ip, base.sport, base.dst, base.dport),
                 Packet(base.protocol, base.src, base.sport, ip, base.dport)]
    return policy, q, assignment, pkts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_query_packets())
def test_witnesses_replay_and_exact_sets_match_the_evaluator(case):
    _witnesses_replay_and_exact_sets_match(case)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_query_packets(admin=True))
def test_with_security_admin_rules_evaluator_z3_and_regions_agree(case):
    """Admin Deny / AlwaysAllow / Allow over network groups: Z3's witnesses replay through the evaluator,
    and the region engine's exact set holds exactly the packets the evaluator allows."""
    _witnesses_replay_and_exact_sets_match(case)


def _witnesses_replay_and_exact_sets_match(case):
    policy, q, assignment, pkts = case
    rp = resolve(policy)
    engine = QueryEngine(rp)
    question = compile_query(rp, q)
    ev = Evaluator(rp, assignment)
    try:
        r = engine.ask(q, exact=True)
    except InputError as e:
        event("query covers no traffic")
        assert e.diagnostics[0].code == "E802"
        for p in pkts:  # "covers no traffic" must be true of every packet we can think of
            if is_v6(p.src) != is_v6(p.dst):
                continue
            f = ev.evaluate(p)
            assert not question.contains(p, f.src_endpoint, f.dst_endpoint), p
        return
    if r.allowed_witness:
        _replays(rp, r.allowed_witness, Access.ALLOW)
        w = r.allowed_witness
        assert question.contains(w.packet, w.flow.src_endpoint, w.flow.dst_endpoint)
    if r.blocked_witness:
        _replays(rp, r.blocked_witness, Access.DENY)
    assert (r.allowed_witness is not None) == (r.verdict is not Verdict.NONE)
    assert (r.blocked_witness is not None) == (r.verdict is not Verdict.ALL)
    event(f"verdict {r.verdict.value}")
    # Packets next to the witnesses: likely in the question, and near the edges of the exact set.
    pool = [ip_to_int(a) for a in EXTERNAL] + [ip for ip in assignment.values()]
    for w in (r.allowed_witness, r.blocked_witness):
        if w is None or dict(w.assignment) != assignment and any(
                k in (w.flow.src_endpoint, w.flow.dst_endpoint) for k in assignment):
            continue  # it sat a dynamic NIC elsewhere than this run's assignment does
        p = w.packet
        pkts.append(p)
        for v in pool[:6]:
            pkts.append(Packet(p.protocol, v, p.sport, p.dst, p.dport))
        if p.has_ports:
            pkts += [Packet(p.protocol, p.src, p.sport, p.dst, d) for d in (22, 25, 53, 80, 443, 1500)]
    for p in pkts:
        if is_v6(p.src) != is_v6(p.dst):
            continue  # no such packet: the pool mixes the families of a dual-stack policy
        f = ev.evaluate(p)
        if not question.contains(p, f.src_endpoint, f.dst_endpoint):
            continue
        event("a sampled packet is in the question")
        point = engine.point(p, assignment)
        inside = any(all(v in s for v, s in zip(point, b.region)) for b in r.exact)
        assert inside == f.allowed, (p, f.decision, [describe_box(b) for b in r.exact])
        if r.verdict is Verdict.ALL:
            assert f.allowed, p
        if r.verdict is Verdict.NONE:
            assert not f.allowed, p


def test_errors_in_a_command_line_query_quote_it_with_a_caret():
    code, _, err = _run("query", str(ROOT / "examples" / "three-tier.nsg"), "can Internet reach prod/web port 22 tpc")
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith("<query>:1:37: error[E101]") and lines[0].endswith("the end of the query")
    assert lines[1] == "    1 | can Internet reach prod/web port 22 tpc"
    assert lines[2] == " " * 44 + "^^^" and "did you mean 'tcp'" in err


def test_options_may_stand_between_policy_and_query():
    code, out, err = _run("query", str(ROOT / "examples" / "webservers.nsg"), "--json",
                          "can Internet reach WebServers port 22")
    assert code == 0 and json.loads(out)["verdict"] == "none", err


# ---------------------------------------------------------------- hosts the policy implies

IMPLIED = """
vnet hub 10.0.0.0/16 {
  subnet app 10.0.1.0/24 nsg app-nsg
  subnet open 10.0.2.0/24
}
nic jump in hub/open ip 10.0.2.4
nsg app-nsg {
  inbound {
    100 allow https tcp from Internet to any port 443
  }
}
"""


def test_a_subnet_behind_an_nsg_without_nics_is_a_host_of_its_range():
    rp, ans = _ask(IMPLIED, "can Internet reach subnet hub/app port 443 tcp")
    assert ans.verdict is Verdict.ALL
    rp, ans = _ask(IMPLIED, "can Internet reach 10.0.1.0/24 port 22 tcp")
    assert ans.verdict is Verdict.NONE
    _replays(rp, ans.blocked_witness, Access.DENY)
    (key,) = [k for k, i in rp.ipcs.items() if i.implied]
    info = rp.ipcs[key]
    assert (info.vnet, info.subnet, info.ip, info.subnet_nsg, info.nic_nsg) == ("hub", "app", None, "app-nsg", None)
    # Only behind an NSG and only without NICs: the open subnet and a subnet with a NIC imply nothing.
    assert [i.subnet for i in rp.ipcs.values() if i.implied] == ["app"]
    with pytest.raises(InputError) as e:
        _ask(IMPLIED.replace("nsg app-nsg\n", "\n", 1), "can Internet reach 10.0.1.0/24 port 22 tcp")
    assert e.value.diagnostics[0].code == "E802"


def test_an_implied_host_is_a_source_too():
    rp, ans = _ask(IMPLIED, "can subnet hub/app reach jump port 22 tcp")
    assert ans.verdict is Verdict.ALL  # AllowVnetOutBound, and the open subnet filters nothing


def test_e804_says_at_the_nsg_that_the_inputs_hold_no_subnet_and_no_nic():
    # An NSG only: another template attaches it (an NSG-only nested template), which is not in the inputs.
    policy = parse_policy("nsg n {\n inbound {\n 100 allow r tcp from any to any port 22\n }\n}\n", "t.nsg")
    with pytest.raises(InputError) as e:
        QueryEngine(resolve(policy)).ask(parse_query("can Internet reach any", policy))
    d = e.value.diagnostics[0]
    assert d.code == "E804" and "no subnet and no NIC" in d.message and "NSG n" in d.message
    assert (d.span.file, d.span.line) == ("t.nsg", 1) and "template that attaches" in d.hint


def test_e802_says_when_the_nsgs_sit_on_a_network_the_inputs_do_not_define():
    # A VNet, but the NSG is on none of its subnets (they are attached in Azure to what the inputs lack).
    policy = parse_policy("vnet v 10.0.0.0/16 {\n subnet s 10.0.1.0/24\n}\n"
                          "nsg n {\n inbound {\n 100 allow r tcp from any to any port 22\n }\n}\n", "t.nsg")
    with pytest.raises(InputError) as e:
        QueryEngine(resolve(policy)).ask(parse_query("can Internet reach any", policy))
    d = e.value.diagnostics[0]
    assert d.code == "E802" and "n is attached to subnets or NICs nsgsolve could not place" in d.hint
