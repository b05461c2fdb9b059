"""Benchmark: `nsgsolve lint` (issue 5's goals: one 1,000-rule NSG < 2 s; 50 NSGs of 200 rules < 10 s).

Measures, over several runs (median), on policies from generate.py (resolution done once, outside):
  * one NSG:   every finding for subnet-nsg, then for nic-nsg, of generate_policy(1000): 669 inbound and
               331 outbound rules each, 20 NICs (one with a dynamic IP) behind both, so the cross-layer pass
               has real work;
  * 50 NSGs:   every finding for generate_policy(200, n_nsgs=50);
  * naive:     one Z3 call per rule with all earlier rules ("does rule i match a packet no earlier rule
               matches?", on nsgsolve.smt.encode's terms, one incremental solver with the earlier rules'
               disjunction built as a chain): the shadowing question only, for the ratio; its answers are
               compared with lint's (shadowed or unmatchable);
  * serial:    the same with nsgsolve.parallel off (NSGSOLVE_WORKERS=1: one process, as the naive run);
  * CLI:       `python -m nsgsolve lint FILE --nsg NAME` in a subprocess: start-up, parse, resolve, lint, print.

    python bench/bench_lint.py [--runs 5] [--naive-runs 1] [--skip-naive]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_policy  # noqa: E402

from nsgsolve.analyses.lint import Linter  # noqa: E402
from nsgsolve.model import Direction  # noqa: E402
from nsgsolve.parallel import workers  # noqa: E402
from nsgsolve.lang.printer import print_policy  # noqa: E402
from nsgsolve.semantics.resolve import resolve  # noqa: E402


def median_time(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def naive_shadowed(rp, name: str) -> tuple[set[tuple[str, str]], int]:
    """One solver call per rule: is there a packet it matches that no earlier rule matches?"""
    import z3

    from nsgsolve.smt.encode import Encoding
    from nsgsolve.smt.z3util import make_solver

    enc = Encoding(rp)
    nsg = rp.nsg(name, (rp.attachment_vnets(name) or [None])[0])
    shadowed: set[tuple[str, str]] = set()
    calls = 0
    for d in (Direction.INBOUND, Direction.OUTBOUND):
        s = make_solver(rlimit=None)
        s.add(*enc.domain())
        earlier = z3.BoolVal(False)
        for i, r in enumerate(nsg.rules(d)):
            m = enc.rule_match(nsg, d, i)
            if not r.rule.is_default:
                calls += 1
                if s.check(m, z3.Not(earlier)) == z3.unsat:
                    shadowed.add((d.value, r.name))
            earlier = z3.Or(earlier, m)
    return shadowed, calls


@contextlib.contextmanager
def serial():
    """nsgsolve.parallel's workers off, for the one-process figure."""
    old = os.environ.get("NSGSOLVE_WORKERS")
    os.environ["NSGSOLVE_WORKERS"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["NSGSOLVE_WORKERS"]
        else:
            os.environ["NSGSOLVE_WORKERS"] = old


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--naive-runs", type=int, default=1)
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()

    rows = []
    policy = generate_policy(1000)
    big = resolve(policy)
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name, "lint-1000.nsg")
    path.write_text(print_policy(policy))
    for name in ("subnet-nsg", "nic-nsg"):
        t, findings = median_time(lambda: Linter(big).lint([name]), args.runs)
        rows.append((f"one NSG of 1,000 rules ({name})", t, 2.0, f"{len(findings)} findings, {workers()} workers"))
        with serial():
            t1, again = median_time(lambda: Linter(big).lint([name]), args.runs)
        assert again == findings
        rows.append((f"  the same, one process ({name})", t1, None, f"{t1 / t:.1f}x the time"))
        cmd = [sys.executable, "-m", "nsgsolve", "lint", str(path), "--nsg", name]
        t_cli, _ = median_time(lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, env=os.environ), args.runs)
        rows.append((f"  nsgsolve lint FILE --nsg {name} (CLI)", t_cli, None, "start-up, parse, resolve, lint, print"))
        if not args.skip_naive:
            t_naive, (naive, calls) = median_time(lambda: naive_shadowed(big, name), args.naive_runs)
            ours = {(f.direction.value, f.rule) for f in findings if f.code in ("NSG001", "NSG003")}
            rows.append(
                (
                    f"  naive Z3, {calls} calls ({name})",
                    t_naive,
                    None,
                    f"{len(naive)} shadowed; agree: {naive == ours}; ratio {t_naive / t1:.0f}x against one process",
                )
            )
    many = resolve(generate_policy(200, n_nsgs=50))
    t, findings = median_time(lambda: Linter(many).lint(), max(1, args.runs // 2))
    rows.append(("50 NSGs of 200 rules", t, 10.0, f"{len(findings)} findings"))
    with serial():
        t1, _ = median_time(lambda: Linter(many).lint(), max(1, args.runs // 2))
    rows.append(("  the same, one process", t1, None, f"{t1 / t:.1f}x the time"))
    tmp.cleanup()

    print(f"{'case':<44} {'median s':>9} {'goal s':>7}  findings / notes")
    for case, t, goal, note in rows:
        g = f"{goal:>7.1f}" if goal else f"{'':>7}"
        print(f"{case:<44} {t:>9.2f} {g}  {note}")


if __name__ == "__main__":
    main()
