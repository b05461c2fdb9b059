"""One private address held by NICs of two unpeered VNets (W501, legal in Azure): a NIC's name must keep
saying which NIC it is, and an address alone must not be decided with the wrong NIC's NSGs."""

from __future__ import annotations

import io
import json

import pytest

from nsgsolve.analyses.diff import diff_policies
from nsgsolve.lang.build import parse_policy
from nsgsolve.cli import run
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import IpcKey, resolve

POLICY = """\
vnet v1 10.0.0.0/16 { subnet s 10.0.1.0/24 nsg open }
vnet v2 10.0.0.0/16 { subnet s 10.0.1.0/24 nsg closed }
nic a in v1/s ip 10.0.1.4
nic b in v2/s ip 10.0.1.4
nic c in v1/s ip 10.0.1.5
nsg open { inbound { 100 allow all22 tcp from any to any port 22 } }
nsg closed { inbound { 100 deny no22 tcp from any to any port 22 } }
"""


@pytest.fixture
def policy_file(tmp_path):
    p = tmp_path / "w501.nsg"
    p.write_text(POLICY)
    return str(p)


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def _verify(path, src, dst):
    status, out, err = cli("verify", path, "--src", src, "--dst", dst, "--protocol", "tcp", "--dport", "22", "--json")
    assert status == 0, err
    return json.loads(out)


def test_verify_by_nic_name_uses_that_nic(policy_file):
    doc = _verify(policy_file, "c", "a")
    assert doc["decision"] == "Allow"
    assert doc["trace"][-1]["nsg"] == "open" and doc["trace"][-1]["rule"] == "all22"
    doc = _verify(policy_file, "c", "b")
    assert doc["decision"] == "Deny" and doc["trace"][-1]["nsg"] == "closed"


def test_bare_address_from_a_nic_is_the_nic_of_its_vnet(policy_file):
    doc = _verify(policy_file, "c", "10.0.1.4")
    assert doc["decision"] == "Allow" and doc["trace"][-1]["nsg"] == "open"


def test_bare_address_with_nothing_to_settle_it_is_an_error(policy_file):
    status, out, err = cli("verify", policy_file, "--src", "203.0.113.9", "--dst", "10.0.1.4",
                           "--protocol", "tcp", "--dport", "22")
    assert status == 2 and out == ""
    assert "10.0.1.4 belongs to several NICs (a in VNet v1, b in VNet v2)" in err
    assert "name the NIC" in err


def test_flow_file_keeps_the_named_nic(policy_file, tmp_path):
    flows = tmp_path / "f.csv"
    flows.write_text("src,dst,protocol,sport,dport\nc,a,tcp,,22\nc,b,tcp,,22\nc,10.0.1.4,tcp,,22\n")
    status, out, err = cli("verify", policy_file, "--flows", str(flows), "--json")
    assert status == 0, err
    docs = [json.loads(l) for l in out.splitlines()]
    assert [d["decision"] for d in docs] == ["Allow", "Deny", "Allow"]
    flows.write_text("src,dst,protocol,sport,dport\nc,a,tcp,,22\n203.0.113.9,10.0.1.4,tcp,,22\n")
    status, out, err = cli("verify", policy_file, "--flows", str(flows))
    assert status == 2 and "f.csv:3:1: error[E903]" in err and "several NICs" in err


def test_peering_makes_the_peered_nic_the_near_one():
    text = POLICY.replace("nsg open }", "nsg open\n  peer v3\n}") + (
        "vnet v3 10.9.0.0/16 { subnet s 10.9.1.0/24 }\nnic d in v3/s ip 10.9.1.4\n")
    rp = resolve(parse_policy(text, "t.nsg"))
    ev = Evaluator(rp)
    src_key, dst_key = ev.endpoints(Packet.parse("tcp", "10.9.1.4", 1000, "10.0.1.4", 22))
    assert (src_key, dst_key) == (IpcKey("d"), IpcKey("a"))
    with pytest.raises(ValueError):
        ev.evaluate(Packet.parse("tcp", "10.0.1.5", 1000, "10.0.1.4", 22), IpcKey("c"), IpcKey("d"))


def test_query_and_check_refuse_rather_than_pick_a_nic(policy_file, tmp_path):
    status, out, err = cli("query", policy_file, "can c reach a port 22 tcp")
    assert status == 2
    assert "E803" in err and "10.0.1.4" in err and "a in VNet v1, b in VNet v2" in err
    # Traffic that stays clear of the shared address is answered, and agrees with verify.
    status, out, err = cli("query", policy_file, "can 203.0.113.9 reach c port 22 tcp", "--json")
    assert status == 0, err
    assert json.loads(out)["verdict"] == "all"
    assert _verify(policy_file, "203.0.113.9", "c")["decision"] == "Allow"
    checked = tmp_path / "c.nsg"
    checked.write_text(POLICY + "assert no any -> a port 22 tcp\n")
    status, out, err = cli("check", str(checked))
    assert status == 2 and "c.nsg:8:" in err and "E803" in err


def test_diff_replays_with_the_pairs_nics():
    old = parse_policy(POLICY, "old.nsg")
    new = parse_policy(POLICY.replace("nsg closed }", "nsg open }"), "new.nsg")
    got = diff_policies(old, new)
    assert got.pairs and all(p.destination.name == "b" for p in got.pairs)
    assert not got.closed


def test_a_dynamic_nic_that_may_take_another_vnets_address_is_refused_not_answered(tmp_path):
    # Azure makes addresses unique only within a VNet: b may get 10.0.1.4, where only4 lets Internet in.
    # The encodings keep every NIC's address distinct, so they would answer "none": E803 instead.
    pol = tmp_path / "wd.nsg"
    pol.write_text("""
vnet v1 10.0.0.0/16 { subnet s 10.0.1.0/29 }
vnet v2 10.0.0.0/16 { subnet s 10.0.1.0/29 nsg n2 }
nic a in v1/s ip 10.0.1.4
nic b in v2/s ip dynamic
nsg n2 { inbound { 100 allow only4 tcp from any to 10.0.1.4 port 22
                   200 deny rest tcp from any to any port 22 } }
assert no Internet -> b port 22 tcp
""")
    status, _, err = cli("check", str(pol))
    assert status == 2 and "E803" in err and "dynamic NIC b" in err
    status, _, err = cli("query", str(pol), "can 203.0.113.9 reach 10.0.1.4 port 22 tcp")
    assert status == 2 and "E803" in err
