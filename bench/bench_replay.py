"""Benchmark: `nsgsolve replay` throughput (issue 17's goal: >= 200,000 tuples/s on one core).

Generates flow logs for a generated policy (bench/generate.py: a 1,000-rule NSG on every subnet and
another on every NIC), written as Azure writes them: one PT1H.json per NIC and hour, under
.../y=/m=/d=/h=/m=00/macAddress=/, half NSG flow logs version 2, half VNet flow logs version 4. Peers are
drawn from a few thousand Internet hosts (scanners and clients) and the other NICs; source ports are
ephemeral; every tuple is logged under the rule the policy decides, so the replay has no mismatches.

Measures, over several runs (median):
  * replay:  tuples/s of Replayer.replay_file over all files in this process (one core), policy resolved;
  * naive:   tuples/s of deciding every tuple on its own with the reference linear scan (no batches, no
             compiled tables), on a sample, for the ratio;
  * cli:     tuples/s of the whole command in a subprocess, with --workers 1, --workers 2 and --dask local,
             by wall time and by the CPU time of the child processes (the steadier figure on a shared machine).

    python bench/bench_replay.py [--rules 1000] [--tuples 1000000] [--runs 3] [--no-cli] [--no-dask]
"""

from __future__ import annotations

import argparse
import json
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

from nsgsolve.analyses.replay import Replayer, replay_files  # noqa: E402
from nsgsolve.lang.printer import print_policy  # noqa: E402
from nsgsolve.model import Direction  # noqa: E402
from nsgsolve.semantics.addresses import int_to_ip  # noqa: E402
from nsgsolve.semantics.classify import classifier  # noqa: E402
from nsgsolve.semantics.evaluate import Packet, first_match  # noqa: E402
from nsgsolve.semantics.resolve import resolve  # noqa: E402

PORTS = [22, 53, 80, 123, 443, 445, 1433, 3389, 5432, 6379, 8080, 8443]


def write_logs(rp, root: Path, n_tuples: int, per_record: int = 2000, seed: int = 3) -> list[tuple]:
    """Write the logs; return (packet, direction) for a sample of the tuples (for the naive rate)."""
    rng = random.Random(seed)
    nics = [(k, i.ip) for k, i in rp.ipcs.items() if i.ip is not None]
    internet = [rng.getrandbits(32) | (1 << 30) for _ in range(4000)]
    hot = internet[:200]  # most tuples are from a few peers; scanners add a long tail
    sample = []
    decided: dict = {}
    t0 = 1796464800
    written = 0
    file_no = 0
    while written < n_tuples:
        key, local = nics[file_no % len(nics)]
        version = 2 if file_no % 2 == 0 else 4
        hour = file_no // len(nics)
        groups: dict[tuple[str, str], list[str]] = {}
        n_here = min(per_record * 10, n_tuples - written)
        for i in range(n_here):
            d = Direction.INBOUND if rng.random() < 0.6 else Direction.OUTBOUND
            r = rng.random()
            other = (rng.choice(hot) if r < 0.7 else rng.choice(internet) if r < 0.9 else
                     rng.choice(nics)[1])
            proto = 6 if rng.random() < 0.85 else 17
            sport, dport = rng.randrange(1024, 65536), rng.choice(PORTS) if rng.random() < 0.9 else rng.randrange(65536)
            src, dst = (other, local) if d is Direction.INBOUND else (local, other)
            p = Packet(proto, src, sport, dst, dport)
            if len(sample) < 20000:
                sample.append((p, d))
            layers = rp.inbound_layers(key) if d is Direction.INBOUND else rp.outbound_layers(key)
            ck = (key, d, proto, src, dst, dport, sport)
            if ck not in decided:
                nsg, rule = None, None
                for layer in layers:
                    nsg, rule = layer.nsg, classifier(layer.nsg, d).first_match(p)
                    if rule.access.value == "Deny":
                        break
                decided[ck] = (nsg.name, rule) if nsg else (None, None)
            nsg_name, rule = decided[ck]
            if rule is None:
                continue
            ts = t0 + hour * 3600 + i * 3600 // n_here
            prefix = "DefaultRule_" if rule.rule.is_default else "UserRule_"
            allow = rule.access.value == "Allow"
            if version == 2:
                t = (f"{ts},{int_to_ip(src)},{int_to_ip(dst)},{sport},{dport},{'T' if proto == 6 else 'U'},"
                     f"{d.value[0]},{'A' if allow else 'D'},B,,,,")
            else:
                t = (f"{ts * 1000 + i % 1000},{int_to_ip(src)},{int_to_ip(dst)},{sport},{dport},{proto},{d.value[0]},"
                     f"{'B' if allow else 'D'},NX,0,0,0,0")
            groups.setdefault((nsg_name, prefix + rule.name), []).append(t)
        records = []
        for (nsg_name, rule), tuples in groups.items():
            for c in range(0, len(tuples), per_record):
                chunk = tuples[c:c + per_record]
                if version == 2:
                    records.append({"time": "2026-12-05T10:00:00Z", "category": "NetworkSecurityGroupFlowEvent",
                                    "resourceId": f"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/"
                                                  f"NETWORKSECURITYGROUPS/{nsg_name.upper()}",
                                    "properties": {"Version": 2, "flows": [{"rule": rule, "flows": [
                                        {"mac": "000D3A000000", "flowTuples": chunk}]}]}})
                else:
                    records.append({"time": "2026-12-05T10:00:00Z", "flowLogVersion": 4, "macAddress": "000D3A000000",
                                    "flowRecords": {"flows": [{"aclID": f"guid-{nsg_name}", "flowGroups": [
                                        {"rule": rule, "flowTuples": chunk}]}]}})
        d = root / f"y=2026/m=12/d=05/h={hour:02d}/m=00/macAddress={key.nic}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "PT1H.json").write_text(json.dumps({"records": records}))
        written += sum(len(g) for g in groups.values())
        file_no += 1
    return sample


def naive_rate(rp, sample) -> float:
    t = time.perf_counter()
    for p, d in sample:
        key = rp.static_ip_index[p.dst if d is Direction.INBOUND else p.src]
        for layer in (rp.inbound_layers(key) if d is Direction.INBOUND else rp.outbound_layers(key)):
            if first_match(layer.nsg.rules(d), p).access.value == "Deny":
                break
    return len(sample) / (time.perf_counter() - t)


def median(xs):
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--tuples", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()

    policy = generate_policy(args.rules)
    rp = resolve(policy)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "logs"
        t = time.perf_counter()
        sample = write_logs(rp, root, args.tuples)
        files = sorted(str(p) for p in root.rglob("PT1H.json"))
        size = sum(os.path.getsize(f) for f in files)
        print(f"{args.rules}-rule NSGs, {args.tuples:,} tuples in {len(files)} files, {size / 1e6:.0f} MB "
              f"(generated in {time.perf_counter() - t:.0f} s)")
        guids = {f"guid-{n.name}": n.name for n in policy.nsgs}
        rates, cpu_rates = [], []
        result = None
        for _ in range(args.runs):
            r = Replayer(rp, None, guids)  # a fresh replayer each run: no distinct key carried over
            t, c = time.perf_counter(), time.process_time()
            part = replay_files(r, files)
            rates.append(part.tuples / (time.perf_counter() - t))
            cpu_rates.append(part.tuples / (time.process_time() - c))
            result = r.result(part)
        assert result.tuples == args.tuples, result.tuples
        assert not result.mismatches, [m.message for m in result.mismatches[:3]]
        naive = naive_rate(rp, sample[:3000])
        print(f"replay (in process, one core): {median(rates):,.0f} tuples/s wall, {median(cpu_rates):,.0f} tuples/s "
              f"of CPU time  (runs: {', '.join(f'{x:,.0f}' for x in rates)}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"naive (linear scan per tuple): {naive:,.0f} tuples/s  -> ratio {median(rates) / naive:,.0f}x")
        if args.no_cli:
            return
        pol = Path(tmp) / "policy.nsg"
        pol.write_text(print_policy(policy))
        acl = [a for g, n in guids.items() for a in ("--acl", f"{g}={n}")]
        modes = [("--workers 1", ["--workers", "1"]), ("--workers 2", ["--workers", "2"])]
        if not args.no_dask:
            try:
                import dask.distributed  # noqa: F401

                modes.append(("--dask local (2 workers)", ["--dask", "local", "--workers", "2"]))
            except ImportError:
                print("dask not installed: no --dask figure (pip install \"nsgsolve[dask]\")")
        import resource

        for label, extra in modes:
            times, cpus = [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([sys.executable, "-m", "nsgsolve", "replay", str(pol), "--flow-logs", str(root),
                                "--json", "--no-progress", *acl, *extra], check=True, stdout=subprocess.DEVNULL)
                u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                times.append(time.perf_counter() - t)
                cpus.append(u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime)
            print(f"cli {label}: {median(times):.2f} s wall, {median(cpus):.2f} s CPU; "
                  f"{args.tuples / median(times):,.0f} tuples/s wall, {args.tuples / median(cpus):,.0f} by CPU "
                  f"(runs: {', '.join(f'{x:.2f}' for x in times)}; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
