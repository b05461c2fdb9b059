"""`nsgsolve verify` as a user runs it: examples, JSON shape, flow files, and every usage error."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nsgsolve.cli import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WEB = str(EXAMPLES / "webservers.nsg")
TIER = str(EXAMPLES / "three-tier.nsg")


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_readme_command_allows_https_from_internet():
    status, out, err = cli("verify", WEB, "--src", "203.0.113.7", "--dst", "web1", "--protocol", "tcp",
                           "--dport", "443")
    assert status == 0, err
    assert out.startswith("ALLOW")
    assert "MyNSG on subnet myVirtualNetwork/mySubnet: Allow by Allow-Web-All (priority 100)" in out


def test_json_shape_and_default_rule_names():
    status, out, _ = cli("verify", WEB, "--src", "203.0.113.7", "--dst", "10.0.1.4", "--protocol", "tcp",
                         "--dport", "22", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["decision"] == "Deny"
    assert doc["trace"] == [{"layer": "nsg", "nsg": "MyNSG", "attached_to": "subnet myVirtualNetwork/mySubnet",
                             "direction": "Inbound", "rule": "DenyAllInBound", "priority": 65500,
                             "access": "Deny", "evaluated": True}]


def test_east_west_trace_names_every_layer(tmp_path):
    status, out, _ = cli("verify", TIER, "--src", "web1", "--dst", "db1", "--protocol", "tcp", "--dport", "1433",
                         "--json")
    assert status == 0
    trace = json.loads(out)["trace"]
    # web1 has no NIC NSG: web subnet out, db subnet in, db1's NIC NSG in
    assert [t["attached_to"] for t in trace][-1] == "nic db1"
    base = {"layer", "nsg", "attached_to", "direction", "rule", "priority", "access", "evaluated"}
    assert all(set(t) == (base if t["evaluated"] else base | {"skipped"}) for t in trace)
    # The web subnet's NSG denies on the way out, so Azure never consults the destination's layers.
    assert [t["evaluated"] for t in trace] == [True, False, False]
    assert trace[1]["skipped"] == "not evaluated: an earlier layer denied"


def test_flows_file_gives_one_json_line_per_row_in_order(tmp_path):
    flows = tmp_path / "flows.csv"
    flows.write_text("src,dst,protocol,sport,dport\r\n203.0.113.7,web1,tcp,50000,443\r\n"
                     "203.0.113.7,web1,TCP,50000,22\r\n10.0.1.4,8.8.8.8,icmp,,\r\n10.0.1.4,198.51.100.1,tcp,1,25\r\n")
    status, out, err = cli("verify", WEB, "--flows", str(flows), "--json")
    assert status == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["decision"] for r in rows] == ["Allow", "Deny", "Allow", "Deny"]
    assert rows[3]["trace"][-1]["rule"] == "PlatformBlockOutboundSmtp"


def test_dynamic_nic_needs_assume_ip_and_then_matches_its_asg():
    status, _, err = cli("verify", WEB, "--src", "203.0.113.7", "--dst", "web2", "--protocol", "tcp", "--dport", "80")
    assert status == 2 and "dynamic IP" in err and "--assume-ip web2=" in err
    status, out, err = cli("verify", WEB, "--src", "203.0.113.7", "--dst", "web2", "--protocol", "tcp",
                           "--dport", "80", "--assume-ip", "web2=10.0.1.50")
    assert status == 0 and out.startswith("ALLOW"), err


@pytest.mark.parametrize("argv, expected", [
    (["--src", "203.0.113.7", "--dst", "web3", "--protocol", "tcp", "--dport", "80"], "did you mean 'web2' or 'web1'?"),
    (["--src", "203.0.113.7", "--dst", "web1", "--protocol", "tcp"], "--dport is required"),
    (["--src", "203.0.113.7", "--dst", "web1", "--protocol", "icmp", "--dport", "1"], "icmp has no ports"),
    (["--src", "203.0.113.7", "--dst", "web1"], "missing --protocol"),
    (["--src", "203.0.113.7", "--dst", "web1", "--protocol", "tcp", "--dport", "80", "--assume-ip", "web2=10.0.1.1"],
     "not a usable address"),
])
def test_usage_errors_exit_2_with_a_hint(argv, expected):
    status, out, err = cli("verify", WEB, *argv)
    assert status == 2 and expected in err and "Traceback" not in err


def test_port_out_of_range_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        run(["verify", WEB, "--src", "1.2.3.4", "--dst", "web1", "--protocol", "tcp", "--dport", "70000"])
    assert e.value.code == 2 and "outside 0-65535" in capsys.readouterr().err


def test_bad_flow_rows_are_all_reported_with_file_and_line(tmp_path):
    flows = tmp_path / "flows.csv"
    flows.write_text("src,dst,protocol,sport,dport\n203.0.113.7,web1,tcp,1,443\n203.0.113.7,nope,tcp,1,443\n"
                     "203.0.113.7,web1,tcp,1,99999\n")
    status, _, err = cli("verify", WEB, "--flows", str(flows))
    assert status == 2
    assert "error[E903]" in err and "2 errors" in err
    # The caret is under the cell to blame: the unknown NIC, the port.
    assert f"{flows}:3:13: error[E903]: flow row 3: dst: 'nope' is neither an IPv4 or IPv6 address nor a NIC" in err
    assert "    3 | 203.0.113.7,nope,tcp,1,443\n" + " " * 20 + "^^^^\n" in err
    assert f"{flows}:4:24: error[E903]: flow row 4: dport 99999 is outside 0-65535" in err
    assert "    4 | 203.0.113.7,web1,tcp,1,99999\n" + " " * 31 + "^^^^^\n" in err


def test_bad_flow_cells_name_the_cell(tmp_path):
    flows = tmp_path / "flows.csv"
    flows.write_text("src,dst,protocol,sport,dport\n1.2.3.4,web1,tpc,,\n1.2.3.4,web1,tcp,x,1\n1.2.3.4,web1\n"
                     "1.2.3.4,web1,icmp\n")
    status, _, err = cli("verify", WEB, "--flows", str(flows))
    assert status == 2
    assert f"{flows}:2:14: error[E903]: flow row 2: unknown protocol 'tpc'" in err
    assert f"{flows}:3:18: error[E903]: flow row 3: sport 'x' is not a port number (0-65535)" in err
    assert f"{flows}:4:1: error[E903]: flow row 4: 2 cells, the header has 5" in err
    assert "row 5" not in err  # icmp needs no port cells
    assert "3 errors" in err


def test_empty_flow_file(tmp_path):
    flows = tmp_path / "flows.csv"
    flows.write_text("")
    status, _, err = cli("verify", WEB, "--flows", str(flows))
    assert status == 2 and f"{flows}:1:1: error[E901]: the flow file is empty" in err


def test_bad_flow_header(tmp_path):
    flows = tmp_path / "flows.csv"
    flows.write_text("source,destination\n1.2.3.4,web1\n")
    status, _, err = cli("verify", WEB, "--flows", str(flows))
    assert status == 2 and f"{flows}:1:1: error[E902]: flow file header is 'source,destination'" in err
    assert "src,dst,protocol,sport,dport" in err


def test_policy_errors_are_rendered_not_raised(tmp_path):
    bad = tmp_path / "bad.nsg"
    bad.write_text("nsg x {\n  inbound {\n    5000 allow r tcp from any to any\n  }\n}\n")
    status, _, err = cli("verify", str(bad), "--src", "1.2.3.4", "--dst", "5.6.7.8", "--protocol", "tcp",
                         "--dport", "1")
    assert status == 2 and f"{bad}:3:" in err and "^" in err and "Traceback" not in err


def test_column_reading_gives_the_row_by_row_columns(tmp_path):
    """The column-wise reader (importers/columns.py) and the csv module row by row agree on every column,
    and a padded file (which only the row-by-row reading takes) decides the same flows."""
    import csv

    import numpy as np

    from nsgsolve.commands import verify as cmd
    from nsgsolve.importers.loader import load_policy
    from nsgsolve.semantics.evaluate import Evaluator
    from nsgsolve.semantics.flows import FlowEngine
    from nsgsolve.semantics.resolve import resolve

    rp = resolve(load_policy(WEB))
    engine = FlowEngine(rp)
    body = ("203.0.113.7,web1,tcp,50000,443\n10.0.1.4,8.8.8.8,icmp,,\n10.0.1.4,198.51.100.1,udp,,53\n"
            "0.0.0.0,255.255.255.255,TCP,0,65535\n10.0.1.4,10.0.1.4,esp,,\n")
    col = {h: i for i, h in enumerate(["src", "dst", "protocol", "sport", "dport"])}

    def read(data: bytes):
        parsed = cmd._parse_columns(data, 5, col)
        return None if parsed is None else cmd._fast_columns(rp, engine, parsed, col, {})

    fast = read(body.encode())
    lines = ["src,dst,protocol,sport,dport"] + body.splitlines()
    slow = cmd._flow_columns(engine, cmd._slow_flows(rp, Evaluator(rp), "f.csv", lines, list(csv.reader(lines)),
                                                     list(col), col, {}))
    assert fast is not None
    for a, b, name in zip(fast, slow, ["proto", "src", "sport", "dst", "dport", "src_key", "dst_key"]):
        ported = np.isin(slow[0], (6, 17))
        if name in ("sport", "dport"):
            a, b = a[ported], b[ported]
        assert a.tolist() == b.tolist(), name
    for bad in ("1.2.3.4,web1,tcp,x,443\n", "1.2.3.4,web1,tcp,1,65536\n", "01.2.3.4,web1,tcp,1,1\n",
                "1.2.3.4,web1,tcp,1\n", "1.2.3.4,web1,tcp,1,2,3\n", "1.2.3.4,web1,ipx,1,2\n", "1.2.3.4,web1,tcp,1,\n"):
        assert read(bad.encode()) is None, bad
    padded = tmp_path / "padded.csv"
    padded.write_text("src,dst,protocol,sport,dport\n" + body.replace(",", ", "))
    plain = tmp_path / "plain.csv"
    plain.write_text("src,dst,protocol,sport,dport\n" + body)
    assert cli("verify", WEB, "--flows", str(padded), "--json")[1] == cli("verify", WEB, "--flows", str(plain),
                                                                          "--json")[1]


# a dual-stack subnet and NIC, shared with tests/analyses/test_replay.py
DUAL = (Path(__file__).resolve().parent / "data" / "dual-stack-web.nsg").read_text()


def test_ipv6_flows_repeated_in_a_file_are_what_the_evaluator_says_of_each(tmp_path):
    """A file with IPv6 flows goes through the reference evaluator, once per distinct flow: a repeated flow
    (and the IPv4 flows of the same file) print what evaluating it on its own prints."""
    from nsgsolve.lang.build import parse_policy
    from nsgsolve.reports.json import dumps
    from nsgsolve.semantics.evaluate import Evaluator, Packet
    from nsgsolve.semantics.resolve import resolve

    policy = tmp_path / "dual.nsg"
    policy.write_text(DUAL)
    rows = [("2001:db8::7", "fd00:0:0:1::4", "tcp", 50000, 22), ("2606:4700::1", "fd00:0:0:1::4", "tcp", 50000, 443),
            ("2001:db8::7", "fd00:0:0:1::4", "tcp", 50000, 22), ("203.0.113.9", "10.0.1.4", "tcp", 50001, 443),
            ("2606:4700::1", "fd00:0:0:1::4", "udp", 53, 53), ("2606:4700::1", "fd00:0:0:1::4", "tcp", 50000, 443)]
    flows = tmp_path / "flows.csv"
    flows.write_text("src,dst,protocol,sport,dport\n" + "".join(f"{a},{b},{p},{s},{d}\n" for a, b, p, s, d in rows))
    status, out, err = cli("verify", str(policy), "--flows", str(flows), "--json")
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == len(rows) and lines[0] == lines[2] and lines[1] == lines[5]
    rp = resolve(parse_policy(DUAL, str(policy)))
    ev = Evaluator(rp)
    for (a, b, p, s, d), line in zip(rows, lines):
        want = ev.evaluate(Packet.parse(p, a, s, b, d))
        assert line + "\n" == dumps("verify", want.to_dict(), indent=None)
    assert json.loads(lines[0])["decision"] == "Deny" and json.loads(lines[1])["decision"] == "Allow"
