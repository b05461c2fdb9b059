"""Benchmark: `nsgsolve verify --flows` on a policy with security admin rules (AVNM), end to end.

Written when `verify --flows` fell back to the reference evaluator with admin rules; since the engine
compiles admin layers (semantics/flows.py) it measures the engine with them. The policy is
bench_flows.py's (two N-rule NSGs, subnet + NIC) with one admin configuration over its VNets
(a Deny, an AlwaysAllow and an Allow, inbound and outbound), against the same command with
`--ignore-admin-rules` (the numpy engine on the same NSGs). Each row is the whole command in a fresh
process, median of --runs runs: wall time, CPU time (user + system of the child, from wait4) and flows/s
by CPU time. The load average is printed: on a shared machine wall time says little.

    python bench/bench_flows_admin.py [--rules 1000] [--flows 100000] [--runs 3]
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

from nsgsolve.lang.printer import print_policy  # noqa: E402

ADMIN = """
group all-vnets = {vnets}

admin Guardrails {{
  collection Base for all-vnets {{
    inbound {{
      10 deny        Deny-Mgmt   tcp from Internet    to any port 22, 3389
      20 alwaysallow Monitoring  tcp from 10.9.0.0/24 to any port 443
      30 allow       Web         tcp from any         to any port 80, 443
    }}
    outbound {{
      10 deny        Deny-Smb    tcp from any to Internet port 445
      20 alwaysallow Backup      tcp from any to 10.8.0.0/16 port 8443
    }}
  }}
}}
"""


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``cmd`` in a child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=os.environ)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {status}")
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--flows", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    policy = generate_policy(args.rules)
    rows = random_flows(policy, args.flows)
    with tempfile.TemporaryDirectory() as tmp:
        pol = Path(tmp, "admin.nsg")
        pol.write_text(print_policy(policy) + ADMIN.format(vnets=", ".join(f"`{v.name}`" for v in policy.vnets)))
        flows = Path(tmp, "flows.csv")
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["src", "dst", "protocol", "sport", "dport"])
        for s, d, p, sp, dp in rows:
            w.writerow([s, d, p, "" if p == "icmp" else sp, "" if p == "icmp" else dp])
        flows.write_text(buf.getvalue())
        base = [sys.executable, "-m", "nsgsolve", "verify", str(pol), "--flows", str(flows), "--json"]
        print(f"policy: 2 NSGs x {args.rules} rules, {len(policy.nics)} NICs, 5 admin rules over "
              f"{len(policy.vnets)} VNet(s); {len(rows):,} flows; median of {args.runs} runs; "
              f"load average before: {open('/proc/loadavg').read().split()[:3]}")
        for label, cmd in (("admin rules (evaluator per flow)", base),
                           ("--ignore-admin-rules (numpy engine)", base + ["--ignore-admin-rules"])):
            runs = [run(cmd) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"  {label:<38} wall {wall:7.2f} s   CPU {cpu:7.2f} s   {len(rows) / cpu:>10,.0f} flows/s (CPU)")
        print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
