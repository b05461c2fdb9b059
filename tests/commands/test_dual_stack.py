"""IPv6 and dual stack end to end through the CLI (issue 15): the language, import, verify (one flow and
--flows), query (witnesses, --exact per family), check, show, lint and diff, on a hand-written dual-stack
policy and on the corpus's dual-stack ARM template."""

from __future__ import annotations

import io
import json

import pytest

from nsgsolve.cli import run as cli_run

from corpus import CORPUS

POLICY = """
vnet v 10.0.0.0/16, ace:cab:deca::/48 {
  subnet web 10.0.1.0/24, ace:cab:deca:deed::/64 nsg n
}
nic web1 in v/web {
  ipconfig v4 ip 10.0.1.4
  ipconfig v6 ip ace:cab:deca:deed::4
}
nic web2 in v/web {
  ipconfig v4 ip dynamic
  ipconfig v6 ip dynamic6
}
nsg n {
  inbound {
    100 allow http   tcp from any           to any port 80
    110 deny  v6only tcp from 2001:db8::/32 to any port 22
    120 allow ssh    tcp from any           to any port 22
  }
}
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli_run(list(argv), out, err), out.getvalue(), err.getvalue()


@pytest.fixture()
def policy(tmp_path):
    p = tmp_path / "ds.nsg"
    p.write_text(POLICY)
    return str(p)


def test_fmt_prints_ipv6_back(policy):
    status, out, err = cli("fmt", policy, "--check")
    assert status in (0, 1), err
    status, out, _ = cli("fmt", policy)
    assert "ace:cab:deca:deed::/64" in out and "ip dynamic6" in out and "from 2001:db8::/32" in out


def test_verify_decides_each_family_and_refuses_a_mixed_packet(policy):
    base = ("verify", policy, "--protocol", "tcp", "--dport", "22")
    status, out, _ = cli(*base, "--src", "2001:db8::1", "--dst", "ace:cab:deca:deed::4")
    assert status == 0 and out.startswith("DENY") and "v6only" in out and "[2001:db8::1]" not in out
    status, out, _ = cli(*base, "--src", "2001:db9::1", "--dst", "ace:cab:deca:deed::4")
    assert out.startswith("ALLOW") and "ssh" in out
    status, out, _ = cli(*base, "--src", "2001:db8::1", "--dst", "web1")  # web1: its IPv4 configuration
    assert status == 2 and "different families" in _


def test_verify_flows_with_ipv6_rows(policy, tmp_path):
    flows = tmp_path / "f.csv"
    flows.write_text("src,dst,protocol,sport,dport\n2001:db8::1,ace:cab:deca:deed::4,tcp,1000,22\n"
                     "203.0.113.7,10.0.1.4,tcp,1000,22\n")
    status, out, err = cli("verify", policy, "--flows", str(flows), "--json")
    assert status == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["decision"] for d in docs] == ["Deny", "Allow"]
    flows.write_text("src,dst,protocol,sport,dport\n2001:db8::1,10.0.1.4,tcp,1000,22\n")
    status, _, err = cli("verify", policy, "--flows", str(flows))
    assert status == 2 and "E903" in err and "different families" in err


def test_query_covers_both_families_with_exact_boxes_per_family(policy):
    status, out, err = cli("query", policy, "can Internet reach web1 port 22 tcp", "--exact")
    assert status == 0, err
    assert "verdict: some" in out
    assert "tcp port 22: IPv6 Internet except 2001:db8::/32 -> web1#2" in out
    assert "tcp port 22: Internet -> web1#1" in out
    status, out, _ = cli("query", policy, "can 2001:db8::/32 reach web1 port 22 tcp", "--json")
    d = json.loads(out)
    assert d["verdict"] == "none" and d["blocked_witness"]["dst"] == "ace:cab:deca:deed::4"


def test_check_and_show(policy, tmp_path):
    p = tmp_path / "c.nsg"
    p.write_text(POLICY + "assert no 2001:db8::/32 -> web1 port 22 tcp\nassert some Internet -> web1 port 22 tcp\n")
    status, out, err = cli("check", str(p))
    assert status == 0, out + err
    status, out, _ = cli("show", policy)
    assert "10.0.1.0/24, ace:cab:deca:deed::/64" in out and "web1#2  ace:cab:deca:deed::4" in out


def test_lint_judges_both_families(policy):
    # v6only denies IPv6 packets that ssh would allow: live, so no finding (it was NSG009, unjudged).
    status, out, _ = cli("lint", policy)
    assert status == 0 and out.lower().startswith("no findings"), out


def test_diff_compares_both_families(policy, tmp_path):
    new = tmp_path / "new.nsg"
    new.write_text(POLICY.replace("120 allow ssh", "120 deny  ssh"))
    status, out, _ = cli("diff", policy, str(new), "--json")
    assert status == 0
    regions = [(p["source"]["name"], p["destination"]["name"], r) for p in json.loads(out)["pairs"]
               for r in p["closed"]]
    # Closed per family: IPv4 packets to the IPv4 configurations, IPv6 packets (but 2001:db8::/32's, which
    # v6only already denied) to the IPv6 ones; each region and witness lies in one family.
    v6 = [(s, d, r) for s, d, r in regions if ":" in r["witness"]["dst"]]
    v4 = [(s, d, r) for s, d, r in regions if ":" not in r["witness"]["dst"]]
    assert v4 and v6 and {d for _, d, _ in v6} == {"web1#2", "web2#2"} and {d for _, d, _ in v4} == {"web1", "web2"}
    for _, _, r in v6:
        assert ":" in r["witness"]["src"] and all(":" in c for c in r["sources"] + r["destinations"])
        assert not any(c.startswith("2001:db8:") for c in r["sources"])
    status, out, _ = cli("diff", policy, str(new))
    assert "CLOSED  tcp ::/0 except 2001:db8::/32 -> ace:cab:deca:deed::4 dport 22" in out, out
    assert "CLOSED  tcp 0.0.0.0/0 -> 10.0.1.4 dport 22" in out
    # No exit 3 any more: a gate on opened traffic passes (nothing opened in either family) ...
    status, _, err = cli("diff", policy, str(new), "--fail-on", "opened")
    assert status == 0, err
    # ... and one on closed traffic fails.
    status, _, _ = cli("diff", policy, str(new), "--fail-on", "closed")
    assert status == 1
    # An IPv6-only change is found too: the gate fails on it.
    v6new = tmp_path / "v6new.nsg"
    v6new.write_text(POLICY.replace("110 deny  v6only", "110 allow v6only"))
    status, out, _ = cli("diff", policy, str(v6new), "--fail-on", "opened")
    assert status == 1 and "OPENED  tcp 2001:db8::/32 -> " in out, out


def test_corpus_dual_stack_template():
    if CORPUS is None:
        pytest.skip("the shared corpus (../shared/corpus) is absent")
    path = str(CORPUS / "arm" / "ipv6-in-vnet-stdlb.json")
    status, out, err = cli("import", path)
    assert status == 0, err
    assert "ace:cab:deca:deed::/64" in out and "ip dynamic6" in out and "allow-MyIpv6App-out" in out
    assert "not modelled" not in out and "left out" not in out
    status, out, err = cli("lint", path)
    assert "NSG003" not in out and "can never match" not in out and "NSG009" not in out
    # The template's VMs reach the IPv6 application: a dual-stack question through its NICs.
    status, out, err = cli("query", path, "can DsVM0 reach cab:cab:aaaa:bbbb::/64 port 5000 tcp", "--json")
    assert status == 0, err
    d = json.loads(out)
    assert d["verdict"] in ("all", "some")
    assert ":" in d["allowed_witness"]["src"]
