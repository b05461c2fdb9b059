"""Benchmark: `nsgsolve diff` of two versions of a policy with 1,000-rule NSGs differing in 10 rules
(issue 7's goal: under 2 s end to end).

Measures, over several runs (median):
  * api:   resolve both versions + diff_policies (grouping, changed-rule filter, regions, witness replay);
  * cli:   the whole command `nsgsolve diff OLD.nsg NEW.nsg --json` in a fresh process (start-up, parsing,
           resolution, diff, JSON), when the printer is available to write the .nsg files;
  * naive partition: the same diff with changed_rule_filter=False (every rule, whole universe per group);
  * naive points: FirewallChecker-style point-by-point comparison with the reference evaluator for a fixed
           budget of random packets between the same endpoint pairs: its speed, and how many of the
           diff's regions it happens to hit (it cannot prove the rest of the space unchanged).

    python bench/bench_diff.py [--rules 1000] [--changes 10] [--runs 5] [--points 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_policy  # noqa: E402

from nsgsolve.analyses.diff import diff_policies  # noqa: E402
from nsgsolve.semantics.evaluate import Evaluator, Packet  # noqa: E402
from nsgsolve.semantics.resolve import resolve  # noqa: E402


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def point_by_point(rp_old, rp_new, result, n: int, seed: int = 3) -> tuple[float, int, int]:
    """Evaluate ``n`` random packets between compared endpoints on both versions: (seconds, packets that
    differ, regions hit)."""
    rng = random.Random(seed)
    dyn = {k: i.usable.min() + 50 for k, i in rp_old.ipcs.items() if i.ip is None}
    ev_old, ev_new = Evaluator(rp_old, dyn), Evaluator(rp_new, dyn)
    statics = [i.ip for i in rp_old.ipcs.values() if i.ip is not None] + list(dyn.values())
    outside = ["203.0.113.7", "198.51.100.20", "8.8.8.8", "52.1.2.3", "20.38.100.1", "10.3.176.9", "192.168.1.1"]
    from nsgsolve.semantics.addresses import ip_to_int

    outside_ips = [ip_to_int(a) for a in outside]
    regions = [g for p in result.pairs for g in p.regions]
    packets = []
    for _ in range(n):
        kind = rng.random()
        src = rng.choice(statics) if kind < 0.6 else rng.choice(outside_ips)
        dst = rng.choice(statics) if kind >= 0.3 else rng.choice(outside_ips)
        proto = rng.choice([6, 6, 17, 1])
        if proto in (6, 17):
            packets.append(Packet(proto, src, rng.randrange(65536), dst, rng.randrange(65536)))
        else:
            packets.append(Packet(proto, src, None, dst, None))
    ev_old.evaluate(packets[0]), ev_new.evaluate(packets[0])  # classifiers built outside the timing
    t = time.perf_counter()
    differ = [p for p in packets if ev_old.evaluate(p).decision is not ev_new.evaluate(p).decision]
    elapsed = time.perf_counter() - t
    hit = sum(1 for g in regions if any(g.contains(p) for p in differ))
    return elapsed, len(differ), hit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    old = generate_policy(args.rules, seed=args.seed)
    new = generate_policy(args.rules, seed=args.seed, changes=args.changes)

    def api():
        return diff_policies(resolve(old), resolve(new))

    result = api()
    t_api = median_time(api, args.runs)
    rp_old, rp_new = resolve(old), resolve(new)
    t_diff = median_time(lambda: diff_policies(rp_old, rp_new), args.runs)
    naive_runs = max(1, args.runs // 2)
    naive = diff_policies(rp_old, rp_new, changed_rule_filter=False)
    agree = {(p.source.name, p.destination.name, g.kind, g.witness) for p in naive.pairs for g in p.regions}
    same = len(naive.opened) + len(naive.closed) == len(result.opened) + len(result.closed)
    t_naive = median_time(lambda: diff_policies(rp_old, rp_new, changed_rule_filter=False), naive_runs)
    t_points, n_differ, n_hit = point_by_point(rp_old, rp_new, result, args.points)

    t_cli = None
    try:
        from nsgsolve.lang.printer import print_policy
    except ImportError:
        print_policy = None
    if print_policy is not None:
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Path(tmp, "old.nsg"), Path(tmp, "new.nsg")
            a.write_text(print_policy(old))
            b.write_text(print_policy(new))
            cmd = [sys.executable, "-m", "nsgsolve", "diff", str(a), str(b), "--json"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=os.environ)

            def cli():
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=os.environ)

            t_cli = median_time(cli, args.runs)

    n_regions = len(result.opened) + len(result.closed)
    print(f"policy: 2 NSGs x {args.rules} rules (subnet + NIC), {len(old.nics)} NICs; NEW = {args.changes} rule "
          f"edits; median of {args.runs} runs")
    print(f"  diff: {len(result.opened)} opened, {len(result.closed)} closed regions in {len(result.pairs)} of "
          f"{result.pairs_compared} endpoint pairs; {result.groups} partitions")
    print(f"  api (resolve both + diff):        {t_api:7.3f} s")
    print(f"  diff only (resolved):             {t_diff:7.3f} s")
    if t_cli is not None:
        print(f"  cli end to end (.nsg, --json):    {t_cli:7.3f} s   (process start, parse, resolve, diff)")
    else:
        print("  cli end to end: skipped (nsgsolve.lang.printer not available to write the .nsg files)")
    print(f"  naive global partition:           {t_naive:7.3f} s   ratio {t_naive / t_diff:.1f}x "
          f"(same regions: {same and len(agree) == n_regions})")
    rate = args.points / t_points
    print(f"  naive point by point:             {rate:9,.0f} packets/s on both versions; {args.points:,} random "
          f"packets found {n_differ} differing, hitting {n_hit} of {n_regions} regions in {t_points:.2f} s "
          f"(and prove nothing about the rest of 2^104 packets per pair)")


if __name__ == "__main__":
    main()
