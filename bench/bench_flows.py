"""Benchmark: `nsgsolve verify --flows` throughput on 1,000-rule NSGs (issue 14's goal: >= 200,000 flows/s
end to end on 400,000 flows).

Measures, over several runs (median):
  * vector:   flows/s of the numpy engine (semantics/flows.py: decide + JSON lines), policy already resolved;
  * evaluate: flows/s of the scalar Evaluator with the bitset classifier (the previous --flows path);
  * naive:    flows/s of the same Evaluator with the linear first-match scan (the reference), for the ratio;
  * cli:      flows/s of the whole command `nsgsolve verify POLICY.nsg --flows FLOWS.csv --json`, including
              process start, parsing, resolution, CSV reading and JSON output.

    python bench/bench_flows.py [--rules 1000] [--flows 400000] [--runs 5]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_policy, random_flows  # noqa: E402

from nsgsolve.semantics.evaluate import Evaluator, Packet  # noqa: E402
from nsgsolve.semantics.resolve import IpcKey, resolve  # noqa: E402


def median_rate(fn, n: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--flows", type=int, default=400000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    policy = generate_policy(args.rules)
    rp = resolve(policy)
    assignment = {IpcKey("vm-0-0"): (10 << 24) + 100}
    rows = random_flows(policy, args.flows)
    packets = [Packet.parse(p, s, sp, d, dp) for s, d, p, sp, dp in rows]

    import numpy as np

    from nsgsolve.semantics.flows import FlowEngine

    cols = [np.array([getattr(p, f) or 0 for p in packets]) for f in ("protocol", "src", "sport", "dst", "dport")]
    engine = FlowEngine(rp, assignment)
    engine.decide(*(c[:10] for c in cols))  # compile the layers outside the timing, as a long run amortises them
    from nsgsolve.reports.flows import json_lines

    rate_vec = median_rate(lambda: json_lines(engine.decide(*cols)), len(packets), args.runs)
    c0 = time.process_time()
    json_lines(engine.decide(*cols))
    rate_vec_cpu = len(packets) / (time.process_time() - c0)
    d = engine.decide(*cols)
    fast = Evaluator(rp, assignment)
    fast.evaluate(packets[0])  # build the classifiers outside the timing, as a long run amortises them
    fast_n = min(len(packets), 50000)
    rate_fast = median_rate(lambda: [fast.evaluate(p) for p in packets[:fast_n]], fast_n, max(1, args.runs // 2))
    step = max(1, len(packets) // 5000)
    vec_agree = all(d.result(i) == fast.evaluate(packets[i]) for i in range(0, len(packets), step))
    slow = Evaluator(rp, assignment, fast=False)
    naive_n = min(len(packets), 5000)
    rate_naive = median_rate(lambda: [slow.evaluate(p) for p in packets[:naive_n]], naive_n, max(1, args.runs // 2))
    agree = all(fast.evaluate(p) == slow.evaluate(p) for p in packets[:2000])

    rate_cli = None
    try:
        from nsgsolve.lang.printer import print_policy
    except ImportError:
        print_policy = None
    if print_policy is not None:
        with tempfile.TemporaryDirectory() as tmp:
            pol = Path(tmp, "big.nsg")
            pol.write_text(print_policy(policy))
            flows = Path(tmp, "flows.csv")
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["src", "dst", "protocol", "sport", "dport"])
            for s, d, p, sp, dp in rows:
                w.writerow([s, d, p, "" if p == "icmp" else sp, "" if p == "icmp" else dp])
            flows.write_text(buf.getvalue())
            cmd = [sys.executable, "-m", "nsgsolve", "verify", str(pol), "--flows", str(flows), "--json"]

            def cli():
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=os.environ)

            import resource

            cpu_times = []

            def cli_timed():
                u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cli()
                u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu_times.append(u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime)

            rate_cli = median_rate(cli_timed, len(rows), args.runs)
            rate_cli_cpu = len(rows) / statistics.median(cpu_times)

            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"policy: 2 NSGs x {args.rules} rules (subnet + NIC), {len(policy.nics)} NICs; {len(packets)} flows; "
          f"median of {args.runs} runs")
    print(f"  vector engine (+ JSON lines): {rate_vec:>10,.0f} flows/s   {rate_vec / rate_fast:.1f}x the classifier; "
          f"{rate_vec_cpu:,.0f} flows/s by CPU time (one run)")
    print(f"  vector == evaluator on {len(range(0, len(packets), step)):,} flows: {vec_agree}")
    print(f"  evaluate (bitset classifier): {rate_fast:>10,.0f} flows/s   (on {fast_n:,} flows)")
    print(f"  naive (linear first match):   {rate_naive:>10,.0f} flows/s   ratio {rate_fast / rate_naive:.1f}x")
    print(f"  classifier == linear on 2,000 flows: {agree}")
    if rate_cli is not None:
        print(f"  cli end to end (--json):      {rate_cli:>10,.0f} flows/s   (includes start-up and parsing); "
              f"{rate_cli_cpu:,.0f} flows/s by CPU time; peak RSS {peak_mb:,.0f} MB; load average "
              f"{os.getloadavg()[0]:.1f}")
    else:
        print("  cli end to end: skipped (nsgsolve.lang.printer not available to write the .nsg file)")


if __name__ == "__main__":
    main()
