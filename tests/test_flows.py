"""The vectorised flow engine (semantics/flows.py) against the reference evaluator, which is the spec."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgsolve.errors import UsageError
from nsgsolve.reports.flows import json_lines
from nsgsolve.reports.json import dumps
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.flows import FlowEngine
from nsgsolve.semantics.resolve import resolve

from strategies import dynamic_assignment, packets, policies


def _arrays(pkts: list[Packet]):
    return (np.array([p.protocol for p in pkts]), np.array([p.src for p in pkts]),
            np.array([p.sport or 0 for p in pkts]), np.array([p.dst for p in pkts]),
            np.array([p.dport or 0 for p in pkts]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_engine_agrees_with_reference_evaluator(data):
    # Security admin rules (AVNM) in a third of the policies: the engine decides their layer too.
    policy = data.draw(policies(max_rules=12, admin=data.draw(st.integers(0, 2)) == 0))
    rp = resolve(policy)
    assignment = dynamic_assignment(policy)
    ev = Evaluator(rp, assignment, fast=False)  # the linear scan, not the bitset classifier
    pkts, expected = [], []
    for _ in range(30):
        p = data.draw(packets(policy))
        try:
            expected.append(ev.evaluate(p))
        except UsageError:  # an address NICs of several VNets share: the engine must refuse it too
            with pytest.raises(UsageError):
                FlowEngine(rp, assignment).decide(*_arrays([p]))
            continue
        pkts.append(p)
    if not pkts:
        return
    d = FlowEngine(rp, assignment).decide(*_arrays(pkts))
    lines = json_lines(d)
    for i, want in enumerate(expected):
        got = d.result(i)
        assert got == want, pkts[i]
        assert bool(d.allowed[i]) is want.allowed
        assert lines[i] == dumps("verify", want.to_dict(), indent=None)
        assert [(l.nsg.name, l.direction, r.name) for l, r in d.layer_rules(i)] == [
            (s.nsg, s.direction, s.rule) for s in want.trace if s.nsg is not None]


def test_many_rules_across_word_boundaries():
    """Rules past bit 64 and 128 live in later uint64 words; a 200-rule NSG exercises them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from generate import generate_policy, random_flows

    policy = generate_policy(200)
    rp = resolve(policy)
    ev = Evaluator(rp, fast=False)
    rows = random_flows(policy, 3000)
    pkts = [Packet.parse(p, s, sp, d, dp) for s, d, p, sp, dp in rows]
    wanted = []
    for p in pkts:
        wanted.append(ev.evaluate(p))
    d = FlowEngine(rp).decide(*_arrays(pkts))
    decided_late = 0
    for i, want in enumerate(wanted):
        assert d.result(i) == want
        decided_late += any(r >= 64 for l, r in ((l, l.nsg.rules(l.direction).index(rr)) for l, rr in d.layer_rules(i)))
    assert decided_late > 0, "no flow was decided by a rule past the first word"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5), st.integers(0, (1 << 40) - 1)), max_size=40),
       st.booleans())
def test_distinct_rows_are_numpys_unique_rows(rows, wide):
    """_distinct packs the columns into one key, compacting only before the key would overflow int64 (the wide
    case: three 2^40 radices); a radix of 1 (a constant column) adds nothing to the key."""
    from nsgsolve.semantics.flows import _distinct

    cols = [np.array([r[j] for r in rows], dtype=np.int64) for j in range(3)]
    radices = [3, 6, 1 << 40]
    if wide:
        cols.append(cols[2][::-1].copy())
        radices.append(1 << 40)
    cols.append(np.zeros(len(rows), dtype=np.int64))
    radices.append(1)
    first, inverse = _distinct(cols, radices)
    table = np.stack(cols, axis=1) if rows else np.zeros((0, len(cols)), dtype=np.int64)
    assert len(first) == len(np.unique(table, axis=0))
    for i in range(len(rows)):  # same row <=> same id, and the representative is such a row
        assert (table[first[inverse[i]]] == table[i]).all()
    assert len(set(inverse.tolist())) == len(first)


def test_no_flows():
    from pathlib import Path

    from nsgsolve.lang.build import parse_policy

    path = Path(__file__).resolve().parents[1] / "examples" / "webservers.nsg"
    rp = resolve(parse_policy(path.read_text(), str(path)))
    d = FlowEngine(rp).decide(*(np.zeros(0, dtype=np.int64) for _ in range(5)))
    assert len(d) == 0 and json_lines(d) == []


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_flows_match_the_scalar_evaluator(tmp_path, as_json):
    """The whole `verify --flows` path (CSV read column-wise, engine, output) against the evaluator, with
    NIC names, addresses, a dynamic NIC, icmp rows without ports and a row without a source port."""
    import io
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from generate import generate_policy, random_flows

    from nsgsolve.cli import run
    from nsgsolve.reports.trace import format_flow
    from nsgsolve.lang.build import parse_policy
    from nsgsolve.lang.printer import print_policy
    from nsgsolve.semantics.evaluate import resolve_endpoint
    from nsgsolve.semantics.resolve import IpcKey

    policy = generate_policy(150)
    pol = tmp_path / "p.nsg"
    pol.write_text(print_policy(policy))
    rows = [list(r) for r in random_flows(policy, 1500)]
    rows[0][0] = "vm-1-1"          # a NIC name
    rows[1][1] = "vm-0-0"          # the dynamic NIC, pinned below
    rows[2][3] = ""                # no source port: the default one
    csv_lines = ["src,dst,protocol,sport,dport"]
    for s, d, p, sp, dp in rows:
        csv_lines.append(",".join([s, d, p, "" if p == "icmp" else str(sp), "" if p == "icmp" else str(dp)]))
    flows = tmp_path / "f.csv"
    flows.write_text("\n".join(csv_lines) + "\n")
    out, err = io.StringIO(), io.StringIO()
    argv = ["verify", str(pol), "--flows", str(flows), "--assume-ip", "vm-0-0=10.0.0.100"] + (
        ["--json"] if as_json else []
    )
    assert run(argv, out, err) == 0, err.getvalue()

    rp = resolve(parse_policy(pol.read_text(), str(pol)))
    assignment = {IpcKey("vm-0-0"): (10 << 24) + 100}
    ev = Evaluator(rp, assignment)
    expected = []
    for line in csv_lines[1:]:
        s, d, p, sp, dp = line.split(",")
        src, sk = resolve_endpoint(rp, s, assignment)
        dst, dk = resolve_endpoint(rp, d, assignment)
        pkt = Packet.parse(p, src, int(sp) if sp else (49152 if p != "icmp" else None), dst, int(dp) if dp else None)
        r = ev.evaluate(pkt, sk, dk)
        expected.append(dumps("verify", r.to_dict(), indent=None) if as_json else format_flow(r) + "\n")
    assert out.getvalue() == "".join(expected)


def test_cli_flows_with_admin_rules_match_the_scalar_evaluator(tmp_path):
    """examples/avnm.nsg: Deny, AlwaysAllow and Allow admin rules, decided by the engine's admin layers."""
    import io
    from pathlib import Path

    from nsgsolve.cli import run
    from nsgsolve.importers.loader import load_policy
    from nsgsolve.semantics.evaluate import resolve_endpoint

    pol = str(Path(__file__).resolve().parents[1] / "examples" / "avnm.nsg")
    rows = [("203.0.113.7", "vm1", "tcp", 5000, 22), ("10.9.0.5", "app1", "tcp", 5000, 443),
            ("10.9.0.5", "vm1", "tcp", 5000, 443), ("10.0.1.4", "app1", "tcp", 5000, 8080),
            ("203.0.113.7", "vm1", "tcp", 5000, 80), ("vm1", "8.8.8.8", "tcp", 5000, 25),
            ("vm1", "169.254.169.254", "tcp", 5000, 80), ("app1", "vm1", "icmp", None, None)]
    flows = tmp_path / "f.csv"
    flows.write_text("src,dst,protocol,sport,dport\n" + "".join(
        f"{s},{d},{p},{'' if sp is None else sp},{'' if dp is None else dp}\n" for s, d, p, sp, dp in rows))
    out, err = io.StringIO(), io.StringIO()
    assert run(["verify", pol, "--flows", str(flows), "--json"], out, err) == 0, err.getvalue()
    rp = resolve(load_policy(pol))
    ev = Evaluator(rp)
    want = []
    for s, d, p, sp, dp in rows:
        (src, sk), (dst, dk) = resolve_endpoint(rp, s), resolve_endpoint(rp, d)
        want.append(dumps("verify", ev.evaluate(Packet.parse(p, src, sp, dst, dp), sk, dk).to_dict(), indent=None))
    assert out.getvalue().splitlines(keepends=True) == want
    assert any('"skipped": "skipped: AlwaysAllow' in line for line in want)
    assert any('"layer": "admin"' in line and '"access": "Deny"' in line for line in want)


def test_cli_flows_parallel_output_is_the_serial_bytes(tmp_path, monkeypatch):
    """The JSON lines decided and written by two processes in turn (commands/verify._write_parallel, forced on
    a small input with small chunks) are byte for byte the serial path's."""
    import io
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from generate import generate_policy, random_flows

    from nsgsolve.cli import run
    from nsgsolve.commands import verify
    from nsgsolve.lang.printer import print_policy

    policy = generate_policy(100)
    pol = tmp_path / "p.nsg"
    pol.write_text(print_policy(policy))
    flows = tmp_path / "f.csv"
    flows.write_text("src,dst,protocol,sport,dport\n" + "".join(
        f"{s},{d},{p},{'' if p == 'icmp' else sp},{'' if p == 'icmp' else dp}\n"
        for s, d, p, sp, dp in random_flows(policy, 2000)))
    argv = ["verify", str(pol), "--flows", str(flows), "--json"]
    serial, err = io.StringIO(), io.StringIO()
    assert run(argv, serial, err) == 0, err.getvalue()
    monkeypatch.setattr(verify, "PARALLEL_FLOWS", 0)
    monkeypatch.setattr(verify, "CHUNK_FLOWS", 150)  # 14 chunks, the last one short
    monkeypatch.setenv("NSGSOLVE_WORKERS", "2")
    called = []
    real = verify._write_parallel
    monkeypatch.setattr(verify, "_write_parallel", lambda *a: called.append(1) or real(*a))
    with open(tmp_path / "out.jsonl", "w") as out:
        out.write("")
        assert run(argv, out, err) == 0, err.getvalue()
    assert called
    assert (tmp_path / "out.jsonl").read_bytes() == serial.getvalue().encode()
