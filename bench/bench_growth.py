"""Benchmark: how the analyses grow with the rules (issue 14: at most 2.2x the time per doubling).

In process, on generate.py's shape (two N-rule NSGs, subnet + NIC, 20 NICs), N = 500, 1,000, 2,000,
4,000 rules per NSG by default: the .nsg reader refuses more than 1,000 rules per NSG (E410, Azure's
limit), so the larger sizes (AVNM and merged views) are measured past the reader, on the model itself.
Each row is the median of ``--runs`` runs, as CPU seconds (``time.process_time``, the steadier figure
on a shared machine) and wall seconds, one process (NSGSOLVE_WORKERS=1) so CPU is the whole cost:

  * lint    every finding of both NSGs (Linter(rp).lint());
  * diff    diff_policies of the policy and a version with 10 rules changed (both resolved outside);
  * check   50 contracts (bench_check.make_assertions) with check_policy;
  * matrix  the report's reachability matrix (compute_matrix), the other half of `nsgsolve report`.

    python bench/bench_growth.py [--sizes 500,1000,2000,4000] [--runs 3] [--only lint,diff]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NSGSOLVE_WORKERS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_check import make_assertions  # noqa: E402
from generate import generate_policy  # noqa: E402

from nsgsolve.analyses.contracts import check_policy  # noqa: E402
from nsgsolve.analyses.diff import diff_policies  # noqa: E402
from nsgsolve.analyses.lint import Linter  # noqa: E402
from nsgsolve.analyses.matrix import compute_matrix  # noqa: E402
from nsgsolve.semantics.resolve import resolve  # noqa: E402


def measure(fn, runs: int) -> tuple[float, float]:
    """Median CPU seconds and median wall seconds of ``runs`` calls."""
    cpu, wall = [], []
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500,1000,2000,4000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="lint,diff,check,matrix")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [k.strip() for k in args.only.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} at start; median of {args.runs} runs; CPU / wall seconds",
          flush=True)
    figures: dict[str, list[tuple[int, float, float]]] = {k: [] for k in kinds}
    for n in sizes:
        base = generate_policy(n)
        rp = resolve(base)
        jobs = {
            "lint": lambda: Linter(rp).lint(),
            "diff": lambda: diff_policies(rp, resolve(generate_policy(n, changes=10))),
            "check": lambda: check_policy(dataclasses.replace(base, assertions=make_assertions(base, 50)), rp),
            "matrix": lambda: compute_matrix(rp),
        }
        if "diff" in kinds:
            rp2 = resolve(generate_policy(n, changes=10))
            jobs["diff"] = lambda: diff_policies(rp, rp2)
        if "check" in kinds:
            with_contracts = dataclasses.replace(base, assertions=make_assertions(base, 50))
            jobs["check"] = lambda: check_policy(with_contracts, rp)
        for k in kinds:
            cpu, wall = measure(jobs[k], args.runs)
            figures[k].append((n, cpu, wall))
            print(f"  {k:<7} {n:>5} rules/NSG  cpu {cpu:7.2f} s  wall {wall:7.2f} s", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(f"{'analysis':<8} " + " ".join(f"{n:>13}" for n in sizes) + "  worst doubling (CPU)  goal <= 2.2x")
    for k, series in figures.items():
        ratios = [b[1] / a[1] for a, b in zip(series, series[1:]) if a[1] > 0]
        cells = " ".join(f"{c:6.2f}/{w:6.2f}" for _, c, w in series)
        worst = max(ratios) if ratios else 0.0
        print(f"{k:<8} {cells}  {worst:.2f}x {'yes' if worst <= 2.2 else 'NO'}")


if __name__ == "__main__":
    main()
