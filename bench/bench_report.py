"""Benchmark: `nsgsolve report` on the generated policy with two N-rule NSGs (one on every subnet, one on
every NIC), the shape of issue 9's benchmark. Goal (issue 16): the report of the 1,000-rule policy in < 5 s.

  * matrix   compute_matrix in process: one exact region computation of "can any reach any", cut per cell;
  * cli      the whole `python -m nsgsolve report FILE -o OUT` in a subprocess (matrix, lint, rendering);
  * naive    every cell asked separately with QueryEngine.ask(..., exact=True) (Z3 verdict and witnesses,
             exact set per question), in one process: what the matrix would cost as a loop of queries.

    python bench/bench_report.py [--rules 250,1000] [--runs 3] [--naive-runs 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_policy  # noqa: E402

from nsgsolve.analyses.matrix import compute_matrix, endpoints  # noqa: E402
from nsgsolve.analyses.query import QueryEngine  # noqa: E402
from nsgsolve.errors import InputError  # noqa: E402
from nsgsolve.lang.printer import print_policy  # noqa: E402
from nsgsolve.model import Query  # noqa: E402
from nsgsolve.semantics.resolve import resolve  # noqa: E402


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def naive(rp) -> None:
    rows, cols = endpoints(rp.policy)
    engine = QueryEngine(rp)
    for r in rows:
        for c in cols:
            try:
                engine.ask(Query((r.item,), (c.item,), text=f"can {r.name} reach {c.name}"), exact=True, coverage=False)
            except InputError:
                pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", default="250,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--naive-runs", type=int, default=1)
    args = ap.parse_args()
    print(f"{'rules':>6} {'cells':>6} {'matrix s':>9} {'cli s':>7} {'naive s':>8} {'naive/matrix':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.rules.split(",")]:
            policy = generate_policy(n)
            path = Path(tmp) / f"p{n}.nsg"
            path.write_text(print_policy(policy))
            rp = resolve(policy)
            rows, cols = endpoints(policy)
            t_matrix = median_time(lambda: compute_matrix(rp), args.runs)
            out = Path(tmp) / "r.html"
            t_cli = median_time(lambda: subprocess.run([sys.executable, "-m", "nsgsolve", "report", str(path), "-o",
                                                        str(out)], check=True), args.runs)
            t_naive = median_time(lambda: naive(rp), args.naive_runs) if args.naive_runs else float("nan")
            print(f"{n:>6} {len(rows) * len(cols):>6} {t_matrix:>9.2f} {t_cli:>7.2f} {t_naive:>8.2f} "
                  f"{t_naive / t_matrix:>11.1f}x")


if __name__ == "__main__":
    main()
