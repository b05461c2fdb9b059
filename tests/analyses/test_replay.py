"""The replay against the reference evaluator: hits are what first_match decides at each layer met, the
log's own claims are checked (mismatches), --against finds the changed flows, and a run split over
processes (or Dask workers) merges to the serial answer."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nsgsolve.analyses.replay import ALLOW, DENY, Partial, Replayer, replay_files
from nsgsolve.importers.loader import load_policy
from nsgsolve.lang.build import parse_policy
from nsgsolve.model import Access, Direction
from nsgsolve.semantics.addresses import int_to_ip, ip_to_int, is_v6
from nsgsolve.semantics.evaluate import NOT_EVALUATED_DENIED, Evaluator, Packet, mark_not_evaluated
from nsgsolve.semantics.resolve import resolve

from strategies import EXTERNAL, EXTERNAL_V6, PORTS, policies

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])

POLICY = """
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
  subnet db 10.0.2.0/24
}
nic web1 in hub/web ip 10.0.1.4 nsg nic-nsg
nic db1 in hub/db ip 10.0.2.4 nsg db-nsg
nsg web-nsg {
  inbound {
    100 allow Allow-HTTPS tcp from Internet to any port 443
    200 allow Allow-SSH-Admin tcp from 198.51.100.0/24 to any port 22
    300 allow Allow-Old tcp from 192.0.2.0/24 to any port 8080
  }
}
nsg nic-nsg {
  inbound {
    100 deny Deny-SSH tcp from any to any port 22
  }
}
nsg db-nsg {
  inbound {
    100 allow Allow-SQL tcp from 10.0.1.0/24 to any port 1433
  }
}
"""

NEW = POLICY.replace("100 allow Allow-HTTPS tcp from Internet to any port 443",
                     "100 allow Allow-HTTPS tcp from 203.0.113.0/24 to any port 443")


def rp_of(text: str, name: str = "p.nsg"):
    return resolve(parse_policy(text, name))


def v2(nsg: str, groups: dict[str, list[str]]) -> dict:
    return {"time": "2026-12-05T10:00:00Z", "resourceId": f"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/"
            f"MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/{nsg.upper()}",
            "properties": {"Version": 2, "flows": [{"rule": r, "flows": [{"mac": "000D3A000001", "flowTuples": ts}]}
                                                   for r, ts in groups.items()]}}


def write(path, records) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"records": records}, indent=1))
    return str(path)


def stat(result, nsg, direction, rule):
    return next(s for s in result.rules if (s.nsg, s.direction, s.rule) == (nsg, direction, rule))


def test_hits_count_every_layer_met_and_unused_rules_are_listed(tmp_path):
    rp = rp_of(POLICY)
    f = write(tmp_path / "PT1H.json", [
        # HTTPS from the Internet: subnet web-nsg Allow-HTTPS, then the NIC's nic-nsg, where it is logged
        v2("nic-nsg", {"DefaultRule_AllowInternetOutBound": [],
                       "DefaultRule_DenyAllInBound": [],
                       "UserRule_Deny-SSH": ["1764928800,198.51.100.7,10.0.1.4,50000,22,T,I,D,B,,,,"]}),
        v2("nic-nsg", {"DefaultRule_AllowVnetInBound": [
            "1764928801,203.0.113.9,10.0.1.4,50001,443,T,I,A,B,,,,",
            "1764928802,203.0.113.9,10.0.1.4,50001,443,T,I,A,C,5,500,5,500",
            "1764928803,8.8.8.8,10.0.1.4,50002,443,T,I,A,B,,,,"]}),
    ])
    r = Replayer(rp)
    res = r.result(replay_files(r, [f]))
    assert res.tuples == 4 and res.flows == 3
    assert stat(res, "web-nsg", "Inbound", "Allow-HTTPS").hits == 3
    assert stat(res, "web-nsg", "Inbound", "Allow-SSH-Admin").hits == 1  # then the NIC NSG denies it
    assert stat(res, "nic-nsg", "Inbound", "Deny-SSH").hits == 1
    # the internet flows are allowed at the NIC NSG by its defaults? no: Internet is not VirtualNetwork
    assert stat(res, "nic-nsg", "Inbound", "DenyAllInBound").hits == 3
    unused = {(s.nsg, s.direction, s.rule) for s in res.unused}
    assert ("web-nsg", "Inbound", "Allow-Old") in unused
    assert not any(s.nsg == "db-nsg" for s in res.unused) and res.unobserved == ("db-nsg",)
    assert stat(res, "web-nsg", "Inbound", "Allow-HTTPS").last == 1764928803
    # the log's claims: web1's NIC NSG allowed 443 by AllowVnetInBound, but the policy denies it there
    kinds = Counter(m.kind for m in res.mismatches for _ in range(m.count))
    assert kinds == {"decision": 3}
    m = res.mismatches[0]
    assert (m.nsg, m.logged_rule, m.logged_decision, m.model_rule, m.model_decision) == (
        "nic-nsg", "DefaultRule_AllowVnetInBound", ALLOW, "DenyAllInBound", DENY)
    ex = m.examples[0]
    line = open(f).read().splitlines()[ex.line - 1]
    assert line[ex.column - 1:].startswith(ex.tuple) and ex.tuple.startswith("1764928801,")


def test_ipv6_tuples_are_replayed_in_a_policy_without_ipv6_too(tmp_path):
    """A policy that writes no IPv6 address reads `*` as IPv4 alone (has_ipv6), but a logged IPv6 tuple is
    IPv6: it is decided in the policy read for both families, where `*` and the default rules cover it."""
    from nsgsolve.reports.replay import render_text, summary_line, to_json

    rp = rp_of(POLICY)
    f = write(tmp_path / "PT1H.json", [
        v2("nic-nsg", {"UserRule_Deny-SSH": ["1764928800,198.51.100.7,10.0.1.4,50000,22,T,I,D,B,,,,",
                                             "1764928801,2001:db8::7,ace:cab::4,50000,22,T,I,D,B,,,,",
                                             "1764928802,2001:db8::7,ace:cab::4,50001,22,T,I,D,B,,,,"]}),
        # the NIC NSG alone (the address is no NIC of the policy): AllowVnetInBound's VirtualNetwork has no
        # IPv6 here, AllowAzureLoadBalancerInBound neither, so DenyAllInBound decides -- the log says Allow
        v2("nic-nsg", {"DefaultRule_AllowVnetInBound": ["1764928803,2001:db8::7,ace:cab::4,50000,80,T,I,A,B,,,,"]}),
        v2("nic-nsg", {"UserRule_Deny-SSH": ["1764928804,10.0.0.9,ace:cab::4,50000,22,T,I,D,B,,,,"]}),
    ])
    r = Replayer(rp)
    res = r.result(replay_files(r, [f]))
    assert res.ipv6 == 3 and res.tuples == 4 and res.bad == 1
    assert "different families" in res.bad_records[0].message
    assert stat(res, "nic-nsg", "Inbound", "Deny-SSH").hits == 3
    assert stat(res, "nic-nsg", "Inbound", "DenyAllInBound").hits == 1
    (m,) = res.mismatches
    assert (m.kind, m.logged_rule, m.model_rule, m.model_decision) == (
        "decision", "DefaultRule_AllowVnetInBound", "DenyAllInBound", DENY)
    assert m.examples[0].tuple.startswith("1764928803,2001:db8::7,")
    assert "4 tuples (4 flows begun, 3 of them IPv6)" in render_text(res, None, 5)
    assert "IPv6" not in summary_line(res)
    doc = to_json(res, False)
    assert doc["ipv6_tuples"] == 3 and doc["skipped"]["ipv6_tuples"] == 0


# a dual-stack subnet and NIC, shared with tests/test_cli_verify.py
DUAL = (Path(__file__).resolve().parents[1] / "data" / "dual-stack-web.nsg").read_text()


def test_ipv6_tuples_of_a_dual_stack_nic_and_against(tmp_path):
    """A dual-stack NIC: its IPv6 tuples meet its NSGs like its IPv4 ones; --against groups the IPv6
    sources by /64 (the size of an IPv6 subnet)."""
    rp = rp_of(DUAL)
    new = rp_of(DUAL.replace("from Internet to any port 443", "from 203.0.113.0/24 to any port 443"), "new.nsg")
    tuples = [f"17649288{i:02d},2606:4700::{i},fd00:0:0:1::4,5{i:04d},443,T,I,A,B,,,," for i in range(4)]
    tuples += ["1764928810,2001:db8::1,fd00:0:0:1::4,50000,443,T,I,A,B,,,,"]  # Internet first: 443 allowed
    tuples += ["1764928811,2001:db8::1,fd00:0:0:1::4,50000,80,T,I,D,B,,,,"]
    f = write(tmp_path / "PT1H.json", [v2("web-nsg", {"UserRule_Allow-HTTPS": tuples[:5]}),
                                       v2("web-nsg", {"UserRule_Deny-Doc": tuples[5:]})])
    r = Replayer(rp, new)
    res = r.result(replay_files(r, [f]))
    assert res.ipv6 == 6 and res.mismatches == ()
    assert stat(res, "web-nsg", "Inbound", "Allow-HTTPS").hits == 5
    assert stat(res, "web-nsg", "Inbound", "Deny-Doc").hits == 1
    by_src = {c.src: c for c in res.changed}
    assert by_src["2606:4700::/64"].count == 4 and by_src["2606:4700::/64"].dst == "fd00:0:0:1::4"
    assert by_src["2001:db8::/64"].count == 1 and by_src["2001:db8::/64"].after == DENY


def test_rule_mismatch_unknown_nsg_and_not_on_path(tmp_path):
    rp = rp_of(POLICY)
    f = write(tmp_path / "PT1H.json", [
        v2("web-nsg", {"UserRule_Allow-Old": ["1764928800,203.0.113.9,10.0.1.4,50001,443,T,I,A,B,,,,"]}),
        v2("gone-nsg", {"UserRule_x": ["1764928800,203.0.113.9,10.0.1.4,50001,443,T,I,A,B,,,,"]}),
        v2("db-nsg", {"UserRule_Allow-SQL": ["1764928800,10.0.2.4,10.0.1.4,50001,1433,T,I,A,B,,,,"]}),
        v2("web-nsg", {"UserRule_No-Such": ["1764928800,203.0.113.9,10.0.1.4,50001,443,T,I,A,B,,,,"]}),
    ])
    r = Replayer(rp)
    res = r.result(replay_files(r, [f]))
    by_kind = {m.kind: m for m in res.mismatches}
    assert set(by_kind) == {"rule", "unknown-nsg", "nsg-not-on-path", "unknown-rule"}
    assert by_kind["rule"].model_rule == "Allow-HTTPS" and by_kind["rule"].logged_rule == "UserRule_Allow-Old"
    assert by_kind["unknown-nsg"].nsg == "GONE-NSG"
    assert by_kind["nsg-not-on-path"].nsg == "db-nsg"


def test_an_address_no_nic_has_is_decided_by_the_logging_nsg_alone(tmp_path):
    rp = rp_of(POLICY)
    f = write(tmp_path / "PT1H.json", [
        v2("web-nsg", {"UserRule_Allow-HTTPS": ["1764928800,203.0.113.9,10.0.1.99,50001,443,T,I,A,B,,,,"]})])
    r = Replayer(rp)
    res = r.result(replay_files(r, [f]))
    assert res.mismatches == () and stat(res, "web-nsg", "Inbound", "Allow-HTTPS").hits == 1


def test_against_groups_changed_flows_breaking_first(tmp_path):
    rp, new = rp_of(POLICY), rp_of(NEW, "new.nsg")
    tuples = [f"17649288{i:02d},8.8.{i % 2}.{i},10.0.1.4,5{i:04d},443,T,I,A,B,,,," for i in range(10)]
    tuples += ["1764928900,203.0.113.5,10.0.1.4,50000,443,T,I,A,B,,,,",  # still allowed
               "1764928901,192.0.2.1,10.0.1.4,50000,8080,T,I,A,B,,,,"]
    f = write(tmp_path / "PT1H.json", [v2("nic-nsg", {"DefaultRule_DenyAllInBound": tuples})])
    r = Replayer(rp, new)
    res = r.result(replay_files(r, [f]))
    assert [(c.src, c.dst, c.protocol, c.dport, c.before, c.after, c.count) for c in res.changed] == []
    # the NIC NSG denies Internet traffic before and after: nothing changes. Open it, then compare again.
    opened = POLICY.replace("100 deny Deny-SSH tcp from any to any port 22",
                            "100 deny Deny-SSH tcp from any to any port 22\n    200 allow All tcp from any to any")
    rp, new = rp_of(opened), rp_of(opened.replace("from Internet to any port 443", "from 203.0.113.0/24 to any "
                                                                                    "port 443"), "new.nsg")
    r = Replayer(rp, new)
    res = r.result(replay_files(r, [f]))
    assert [(c.src, c.dst, c.protocol, c.dport, c.before, c.after, c.count) for c in res.changed] == [
        ("8.8.0.0/24", "10.0.1.4", "Tcp", 443, ALLOW, DENY, 5), ("8.8.1.0/24", "10.0.1.4", "Tcp", 443, ALLOW, DENY, 5)]
    assert res.changed[0].rule == ("web-nsg", "Inbound", "DenyAllInBound")


def test_malformed_tuples_are_counted_with_position_and_the_rest_is_replayed(tmp_path):
    rp = rp_of(POLICY)
    good = "1764928800,203.0.113.9,10.0.1.4,50001,443,T,I,A,B,,,,"
    bad = ["1764928800,203.0.113.9,10.0.1.4,50001,443,X,I,A,B,,,,", "1764928800,203.0.113.9",
           "1764928800,203.0.113.999,10.0.1.4,1,443,T,I,A,B,,,,", "x,203.0.113.9,10.0.1.4,1,443,T,I,A,B,,,,",
           "1764928800,203.0.113.9,10.0.1.4,50001,99999,T,I,A,B,,,,", 42]
    f = write(tmp_path / "PT1H.json", [v2("web-nsg", {"UserRule_Allow-HTTPS": [good] + bad + [good]})])
    r = Replayer(rp)
    res = r.result(replay_files(r, [f]))
    assert res.tuples == 2 and res.bad == 6
    lines = open(f).read().splitlines()
    for b in res.bad_records[:-1]:  # each string tuple is found where it is written
        assert b.code == "W902" and b.what == "malformed tuple"
        assert lines[b.line - 1][b.column - 2:].startswith(('"1764928800', '"x'))
    assert lines[res.bad_records[-1].line - 1].strip() == "{"  # a tuple that is no string: at its record
    assert "protocol 'X'" in res.bad_records[0].message


# ---------------------------------------------------------------- against the reference evaluator


def _reference_walk(rp, p: Packet, d: Direction) -> list:
    """What the specification says happens at the local NIC: the reference evaluator's trace, the steps of
    that direction only (admin layer, NSGs, platform), walked on their own -- the tuple was logged there,
    so it got there -- stopping at the first Deny as Azure does."""
    ev = Evaluator(rp)
    result = ev.evaluate(p)
    steps = [replace(s, evaluated=True, skipped="") if s.skipped == NOT_EVALUATED_DENIED else s
             for s in result.trace if s.direction is d]
    return [s for s in mark_not_evaluated(steps) if s.evaluated]


def _hits_of(steps) -> Counter:
    hits: Counter = Counter()
    for s in steps:
        if s.layer == "nsg":
            hits[("nsg", s.nsg, s.direction.value, s.rule)] += 1
        elif s.layer == "admin" and s.priority is not None:
            hits[("admin", s.admin_collection, s.direction.value, s.rule)] += 1
        elif s.layer == "platform":
            hits[("platform", s.rule, s.direction.value)] += 1
    return hits


@st.composite
def logged(draw):
    # dual-stack policies in half the cases: their NICs log IPv6 tuples too (decided by the scalar classifier)
    policy = draw(policies(max_rules=6, ipv6=draw(st.booleans())))
    statics = [c.ip for n in policy.nics for c in n.ip_configs if c.ip is not None]
    if not statics:
        return policy, []
    rp = resolve(policy)
    pool = [ip_to_int(a) for a in EXTERNAL + EXTERNAL_V6] + statics
    out = []
    for _ in range(draw(st.integers(1, 25))):
        d = draw(st.sampled_from(list(Direction)))
        local = draw(st.sampled_from([s for s in statics if s not in rp.shared_ips] or statics))
        other = draw(st.sampled_from([a for a in pool if is_v6(a) == is_v6(local)]))  # a packet has one family
        proto = draw(st.sampled_from([6, 17, 1, 50]))
        sp, dp = (draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))) if proto in (6, 17) else (None, None)
        src, dst = (other, local) if d is Direction.INBOUND else (local, other)
        out.append((Packet(proto, src, sp, dst, dp), d))
    return policy, out


@SETTINGS
@given(logged())
def test_vnet_flow_log_replay_agrees_with_the_reference_evaluator(tmp_path_factory, case):
    policy, tuples = case
    rp = resolve(policy)
    shared = rp.shared_ips
    tuples = [(p, d) for p, d in tuples if p.src not in shared and p.dst not in shared]
    # Log each tuple as Azure would: under the rule of the layer that logs (the first Deny, else the last NSG
    # or admin rule met), with the flow's outcome; a tuple no rule decided (no NSG, the platform) is not logged.
    records = []
    expected: Counter = Counter()
    n_logged = 0
    for i, (p, d) in enumerate(tuples):
        steps = _reference_walk(rp, p, d)
        deciders = [s for s in steps if s.layer == "nsg" or (s.layer == "admin" and s.priority is not None)]
        if not deciders:
            continue
        decided = next((s for s in steps if s.access is Access.DENY), deciders[-1])
        if decided.layer == "platform":
            decided = deciders[-1]
        state = "D" if any(s.access is Access.DENY for s in steps) else "B"
        t = (f"{1764928800000 + i},{int_to_ip(p.src)},{int_to_ip(p.dst)},{p.sport or 0},{p.dport or 0},{p.protocol},"
             f"{d.value[0]},{state},NX,0,0,0,0")
        name = decided.rule if decided.layer == "admin" else (
            ("DefaultRule_" if decided.is_default else "UserRule_") + decided.rule)
        records.append({"flowLogVersion": 4, "macAddress": "00", "flowRecords": {"flows": [
            {"aclID": "unknown-guid", "flowGroups": [{"rule": name, "flowTuples": [t]}]}]}})
        expected += _hits_of(steps)
        n_logged += 1
    path = tmp_path_factory.mktemp("logs") / "PT1H.json"
    path.write_text(json.dumps({"records": records}))
    r = Replayer(rp)
    part = replay_files(r, [str(path)])
    res = r.result(part)
    got = Counter({("nsg",) + k: v[0] for k, v in part.hits.items()})
    got += Counter({("admin",) + k: v[0] for k, v in part.admin_hits.items()})
    got += Counter({("platform",) + k: v[0] for k, v in part.platform_hits.items()})
    assert got == expected
    assert res.tuples == n_logged
    # the log was written from the model, so the model reproduces every claim
    assert res.mismatches == (), [m.message for m in res.mismatches]


# ---------------------------------------------------------------- splitting the work


def _many_logs(tmp_path, n_files: int = 6) -> list[str]:
    files = []
    for k in range(n_files):
        tuples = [f"17649{k}{i:04d},{8 + i % 3}.8.{i % 5}.{i % 7},10.0.1.4,5{i % 999},{(443, 22, 8080)[i % 3]},T,I,A,"
                  f"{'BCE'[i % 3]},,,," for i in range(300)]
        bad = ["garbage"] if k % 2 else []
        files.append(write(tmp_path / f"h={k:02d}" / "PT1H.json",
                           [v2("nic-nsg", {"DefaultRule_AllowVnetInBound": tuples + bad})]))
    return files


def _canon(res) -> str:
    return json.dumps({"rules": [s.to_dict() for s in res.rules], "mism": [m.to_dict() for m in res.mismatches],
                       "changed": [c.to_dict() for c in res.changed or ()], "bad": [str(b) for b in res.bad_records],
                       "n": [res.tuples, res.flows, res.first, res.last, res.bad]}, sort_keys=True)


def test_forked_workers_give_the_serial_answer(tmp_path):
    from nsgsolve.parallel import fork_map

    files = _many_logs(tmp_path)
    r = Replayer(rp_of(POLICY), rp_of(NEW, "new.nsg"))
    serial = r.result(replay_files(r, files))
    total = Partial()
    for p in fork_map(r.replay_file, files, 2, min_items=2):
        total.merge(p)
    assert _canon(r.result(total)) == _canon(serial)
    assert serial.bad == 3 and serial.tuples == 1800


def test_dask_local_cluster_gives_the_serial_answer(tmp_path):
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        pytest.skip('dask is not installed (pip install "nsgsolve[dask]")')
    from nsgsolve.analyses.replay_dask import replay_dask

    files = _many_logs(tmp_path)
    pol, new = tmp_path / "p.nsg", tmp_path / "new.nsg"
    pol.write_text(POLICY)
    new.write_text(NEW)
    r = Replayer(resolve(load_policy(str(pol))), resolve(load_policy(str(new))))
    serial = r.result(replay_files(r, files))
    spec = {"policy": [str(pol)], "against": [str(new)], "param": [], "params_file": None, "symbolic": False,
            "service_tags": None, "guids": {}, "group_prefix": 24}
    distributed = r.result(replay_dask(spec, files, "local", 2))
    assert _canon(distributed) == _canon(serial)


# ---------------------------------------------------------------- admin rules, platform rules, dynamic IPs

AVNM = """
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
  subnet dyn 10.0.3.0/24
  subnet two 10.0.4.0/24
}
nic web1 in hub/web ip 10.0.1.4
nic app1 in hub/dyn ip dynamic nsg web-nsg
nic app2 in hub/two ip dynamic nsg web-nsg
nic app3 in hub/two ip dynamic nsg nic-nsg
nsg web-nsg {
  inbound {
    100 allow Allow-HTTPS tcp from Internet to any port 443
  }
}
nsg nic-nsg {
  inbound {
    100 deny Deny-All * from any to any
  }
}
group g = hub
admin mgr {
  collection guard for g {
    inbound {
      10 deny Block-SSH tcp from Internet to any port 22
      20 alwaysallow Monitor tcp from 198.51.100.0/24 to any port 443
    }
  }
}
"""


def v4(acl: str, groups: dict[str, list[str]]) -> dict:
    return {"flowLogVersion": 4, "macAddress": "000D3A000002", "flowRecords": {"flows": [
        {"aclID": acl, "flowGroups": [{"rule": r, "flowTuples": ts} for r, ts in groups.items()]}]}}


def test_admin_rules_decide_first_and_are_counted_where_the_log_names_them(tmp_path):
    rp = rp_of(AVNM)
    f = write(tmp_path / "PT1H.json", [
        v4("manager-guid", {"Block-SSH": ["1764928800000,203.0.113.9,10.0.1.4,50000,22,6,I,D,NX,0,0,0,0"]}),
        # AlwaysAllow: the NSGs of this direction are not consulted, so web-nsg counts no hit
        v4("manager-guid", {"Monitor": ["1764928801000,198.51.100.7,10.0.1.4,50000,443,6,I,B,NX,0,0,0,0"]}),
        v4("nsg-guid", {"UserRule_Allow-HTTPS": ["1764928802000,203.0.113.9,10.0.1.4,50001,443,6,I,B,NX,0,0,0,0"]}),
        # a bare rule name is an admin rule in a VNet flow log; this one the policy does not have
        v4("manager-guid", {"Block-RDP": ["1764928803000,203.0.113.9,10.0.1.4,50000,3389,6,I,D,NX,0,0,0,0"]}),
    ])
    r = Replayer(rp)
    part = replay_files(r, [f])
    res = r.result(part)
    admin = {(s.nsg, s.rule): s.hits for s in res.admin_rules}
    assert admin == {("mgr/guard", "Block-SSH"): 1, ("mgr/guard", "Monitor"): 1}
    assert stat(res, "web-nsg", "Inbound", "Allow-HTTPS").hits == 1
    assert [(m.kind, m.logged_rule, m.count) for m in res.mismatches] == [("unknown-admin-rule", "Block-RDP", 1)]


def test_platform_rules_decide_host_services_and_the_smtp_block(tmp_path):
    rp = rp_of(POLICY.replace("nic web1 in hub/web ip 10.0.1.4 nsg nic-nsg", "nic web1 in hub/web ip 10.0.1.4"))
    f = write(tmp_path / "PT1H.json", [
        v2("web-nsg", {"DefaultRule_AllowInternetOutBound": [
            "1764928800,10.0.1.4,169.254.169.254,50000,80,T,O,A,B,,,,",  # IMDS: no NSG rule filters it
            "1764928801,10.0.1.4,203.0.113.9,50000,25,T,O,A,B,,,,"]}),  # SMTP out: the platform denies it
    ])
    r = Replayer(rp)
    part = replay_files(r, [f])
    res = r.result(part)
    assert {(rule, hits) for rule, _d, hits, _f in res.platform} == {
        ("AllowAzurePlatformIMDS", 1), ("PlatformBlockOutboundSmtp", 1)}
    assert stat(res, "web-nsg", "Outbound", "AllowInternetOutBound").hits == 1  # the SMTP tuple, before the block
    assert sorted(m.kind for m in res.mismatches) == ["platform"]


def test_dynamic_ip_nics_are_found_by_their_subnet_and_the_assumption_is_reported(tmp_path):
    rp = rp_of(AVNM)
    f = write(tmp_path / "PT1H.json", [
        v2("web-nsg", {"UserRule_Allow-HTTPS": ["1764928800,203.0.113.9,10.0.3.7,50000,443,T,I,A,B,,,,"]}),
        # subnet two: app2 and app3 have different NSGs, so the address does not say which NSGs apply
        v2("web-nsg", {"UserRule_Allow-HTTPS": ["1764928800,203.0.113.9,10.0.4.7,50000,443,T,I,A,B,,,,"]}),
    ])
    r = Replayer(rp)
    res = r.result(replay_files(r, [f]))
    assert stat(res, "web-nsg", "Inbound", "Allow-HTTPS").hits == 1
    assert len(res.assumptions) == 1 and "app1" in res.assumptions[0][0] and res.assumptions[0][1] == 1
    assert [m.kind for m in res.mismatches] == ["ambiguous-nic"]
