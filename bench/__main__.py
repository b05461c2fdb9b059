"""Every figure of issue 14 in one table: ``python -m bench`` from the repository root.

Each command runs end to end through the CLI, in a fresh process, as a CI step would, on generated
inputs of the issue's shape (bench/generate.py: two N-rule NSGs, subnet + NIC, 20 NICs), written once as
.nsg text and once as an ARM template. Figures are medians of ``--runs`` runs of wall time; "peak MB"
is the largest resident set of any run of that row (from wait4). The machine is shared, so a "ratio"
column compares against the previous approach measured in the same run where there is one.

    python -m bench                      # everything (several minutes on 2 cores)
    python -m bench --runs 5 --no-growth --no-many
    python -m bench --only help,show     # rows whose name starts with these words
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from generate import generate_policy, policy_to_arm, policy_to_bicep, random_flows  # noqa: E402

QUESTION = "can Internet reach vm-1-2 port 443 tcp"


@dataclasses.dataclass
class Row:
    name: str
    seconds: float | None
    goal: str
    peak_mb: float
    cpu: float | None = None
    note: str = ""
    ok: bool | None = None


def run_once(argv: list[str], ok_status=(0, 1)) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds) of one CLI run. CPU time (user + system) is the steadier
    figure on a loaded machine: wall time there includes waiting for a core."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "nsgsolve", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in ok_status:
        raise SystemExit(f"nsgsolve {' '.join(argv)} exited {code}:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def timed(argv: list[str], runs: int, ok_status=(0, 1)) -> tuple[float, float, float]:
    """Median wall seconds, largest peak MB, median CPU seconds (each command is echoed as it ends, since
    the whole table takes minutes)."""
    results = [run_once(argv, ok_status) for _ in range(runs)]
    wall, mb, cpu = (statistics.median(w for w, _, _ in results), max(m for _, m, _ in results),
                     statistics.median(c for _, _, c in results))
    shown = " ".join(Path(a).name if "/" in a else a for a in argv)
    print(f"  {shown[:70]:<70} wall {wall:7.3f} s  cpu {cpu:7.3f} s  {mb:5.0f} MB", file=sys.stderr, flush=True)
    return wall, mb, cpu


def write_inputs(tmp: Path, n_rules: int, with_contracts: bool = True) -> dict[str, Path]:
    """The policy of ``n_rules`` per NSG as .nsg and ARM, a 10-rule change of it, and 50 contracts."""
    from nsgsolve.lang.printer import print_policy

    base = generate_policy(n_rules)
    changed = generate_policy(n_rules, changes=10)
    out = {"nsg": tmp / f"p{n_rules}.nsg", "arm": tmp / f"p{n_rules}.json",
           "nsg2": tmp / f"p{n_rules}-changed.nsg", "arm2": tmp / f"p{n_rules}-changed.json"}
    out["nsg"].write_text(print_policy(base))
    out["nsg2"].write_text(print_policy(changed))
    out["arm"].write_text(policy_to_arm(base))
    out["arm2"].write_text(policy_to_arm(changed))
    out["bicep"] = tmp / f"p{n_rules}.bicep"
    out["bicep"].write_text(policy_to_bicep(base))
    out["bicep2"] = tmp / f"p{n_rules}-changed.bicep"
    out["bicep2"].write_text(policy_to_bicep(changed))
    if with_contracts:
        from bench_check import make_assertions

        out["contracts"] = tmp / f"p{n_rules}-contracts.nsg"
        out["contracts"].write_text(print_policy(dataclasses.replace(base, assertions=make_assertions(base, 50))))
    return out


def command_rows(files: dict[str, Path], runs: int, only) -> list[Row]:
    rows = []
    cases = [
        ("show", ["show", "{p}"], "< 0.5 s", 0.5),
        ("import", ["import", "{p}"], "< 0.5 s", 0.5),
        ("query", ["query", "{p}", QUESTION, "--json"], "< 0.5 s", 0.5),
        ("lint", ["lint", "{p}"], "< 1 s", 1.0),
        ("diff", ["diff", "{p}", "{p2}"], "< 1 s", 1.0),
    ]
    kinds = {"nsg": ".nsg", "arm": "ARM JSON", "bicep": "Bicep"}
    for kind in ("nsg", "arm", "bicep"):
        for name, argv, goal, limit in cases:
            label = f"{name} ({kinds[kind]})"
            # Bicep: the reading is what differs from ARM; what follows loading is the same code.
            if not only(label) or (name == "import" and kind == "nsg") or \
                    (kind == "bicep" and name in ("lint", "diff")):
                continue
            args = [a.format(p=files[kind], p2=files[kind + "2"]) for a in argv]
            sec, mb, cpu = timed(args, runs)
            rows.append(Row(label, sec, goal, mb, cpu, ok=sec < limit))
    if "contracts" in files and only("check"):
        sec, mb, cpu = timed(["check", str(files["contracts"])], runs)
        rows.append(Row("check, 50 contracts (.nsg)", sec, "< 2 s", mb, cpu, ok=sec < 2))
    if only("report"):
        # The self-contained HTML page (issue 21): matrix, lint findings, rule tables.
        out_html = files["nsg"].parent / "report.html"
        sec, mb, cpu = timed(["report", str(files["nsg"]), "-o", str(out_html)], runs)
        rows.append(Row("report -o report.html (.nsg)", sec, "< 5 s", mb, cpu, ok=sec < 5))
    if only("check --baseline"):
        # Every built-in control over every destination (issue 20); exit 1 is expected (the rules are random).
        sec, mb, cpu = timed(["check", str(files["nsg"]), "--baseline", "all"], runs)
        rows.append(Row("check --baseline all (.nsg)", sec, "< 2 s", mb, cpu, ok=sec < 2))
    return rows


def flows_row(files: dict[str, Path], tmp: Path, n_flows: int, runs: int) -> Row:
    from nsgsolve.lang.build import parse_policy

    policy = parse_policy(files["nsg"].read_text(), str(files["nsg"]))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["src", "dst", "protocol", "sport", "dport"])
    for s, d, p, sp, dp in random_flows(policy, n_flows):
        w.writerow([s, d, p, "" if p == "icmp" else sp, "" if p == "icmp" else dp])
    path = tmp / "flows.csv"
    path.write_text(buf.getvalue())
    sec, mb, cpu = timed(["verify", str(files["nsg"]), "--flows", str(path), "--json"], runs)
    rate = n_flows / sec
    return Row(f"verify --flows {n_flows:,} (.nsg, CSV in, JSON lines out)", sec, ">= 200,000 flows/s", mb, cpu,
               note=f"{rate:,.0f} flows/s wall, {n_flows / cpu:,.0f} by CPU time", ok=rate >= 200_000)


def replay_row(files: dict[str, Path], tmp: Path, n_tuples: int, runs: int) -> Row:
    """``replay`` over generated flow logs (bench_replay.write_logs: an hour per NIC, half NSG flow logs v2,
    half VNet flow logs v4, every tuple logged under the rule the policy decides), one process."""
    from bench_replay import write_logs
    from nsgsolve.lang.build import parse_policy
    from nsgsolve.semantics.resolve import resolve

    policy = parse_policy(files["nsg"].read_text(), str(files["nsg"]))
    root = tmp / "logs"
    write_logs(resolve(policy), root, n_tuples)
    acl = [a for n in policy.nsgs for a in ("--acl", f"guid-{n.name}={n.name}")]
    sec, mb, cpu = timed(["replay", str(files["nsg"]), "--flow-logs", str(root), "--json", "--no-progress",
                          "--workers", "1", *acl], runs)
    rate = n_tuples / sec
    return Row(f"replay {n_tuples:,} tuples, --workers 1 (.nsg, flow logs)", sec, ">= 200,000 tuples/s", mb, cpu,
               note=f"{rate:,.0f} tuples/s wall, {n_tuples / cpu:,.0f} by CPU time", ok=rate >= 200_000)


def growth_rows(tmp: Path, sizes: list[int], runs: int, only) -> list[Row]:
    """Each command at each size; the ratio per doubling is taken on CPU time (wall time on a shared machine
    says more about the other processes than about the command). Sizes past Azure's 1,000 rules per NSG
    (AVNM and merged views) run with --no-azure-limits."""
    rows = []
    cmds = [("show", ["show", "{p}"]), ("query", ["query", "{p}", QUESTION, "--json"]), ("lint", ["lint", "{p}"]),
            ("diff", ["diff", "{p}", "{p2}"]), ("check", ["check", "{c}"]),
            ("check --baseline", ["check", "{p}", "--baseline", "all"])]
    figures: dict[str, list[tuple[int, float, float, float]]] = {}
    for n in sizes:
        files = write_inputs(tmp, n)
        for name, argv in cmds:
            if not only(f"growth {name}"):
                continue
            args = [a.format(p=files["nsg"], p2=files["nsg2"], c=files["contracts"]) for a in argv]
            if n > 1000:
                args.append("--no-azure-limits")
            sec, mb, cpu = timed(args, runs)
            figures.setdefault(name, []).append((n, sec, mb, cpu))
    for name, series in figures.items():
        worst = 0.0
        parts = []
        for (n0, _, _, c0), (n1, _, _, c1) in zip(series, series[1:]):
            worst = max(worst, (c1 / c0) ** (1 / max(math.log2(n1 / n0), 1e-9)))  # per doubling
        for n, _, _, c in series:
            parts.append(f"{n}: {c:.2f}")
        rows.append(
            Row(
                f"growth {name} (.nsg, rules per NSG)",
                series[-1][1],
                "<= 2.2x per doubling",
                max(m for _, _, m, _ in series),
                series[-1][3],
                note=f"cpu {'; '.join(parts)} s; worst doubling {worst:.2f}x (cpu)",
                ok=worst <= 2.2,
            )
        )
    return rows


def many_rows(tmp: Path, n_files: int, runs: int) -> list[Row]:
    """``check`` and ``lint`` over many small policy files in one call (each file its own policy), as a CI step
    over a repository of policies runs them: the issue's 5,000 files of 50-rule NSGs in < 30 s on all cores."""
    from bench_check import make_assertions
    from nsgsolve.lang.printer import print_policy
    from nsgsolve.parallel import workers

    d = tmp / "many"
    d.mkdir(exist_ok=True)
    paths = []
    for i in range(n_files):
        p = generate_policy(50, seed=100 + i, nics_per_subnet=1, n_subnets=2, max_prefixes=5)
        p = dataclasses.replace(p, assertions=make_assertions(p, 3, seed=i))
        path = d / f"nsg-{i:05d}.nsg"
        path.write_text(print_policy(p))
        paths.append(str(path))
    rows = []
    for command in ("check", "lint"):
        load = os.getloadavg()[0]
        sec, mb, cpu = timed([command, *paths], runs)
        rows.append(Row(f"many files: {command} {n_files:,} files of 2 x 50 rules, one call", sec,
                        "< 30 s (5,000 files)", mb, cpu,
                        note=f"{workers()} workers; {1000 * cpu / n_files:.1f} ms CPU per file; load {load:.1f} "
                             "at start", ok=sec < 30 if n_files >= 5000 else None))
    return rows


def help_rows(runs: int) -> list[Row]:
    sec, mb, cpu = timed(["--help"], max(runs, 5), ok_status=(0,))
    return [Row("nsgsolve --help", sec, "< 0.15 s", mb, cpu, ok=sec < 0.15)]


def print_table(rows: list[Row]) -> None:
    print(f"{'figure':<58} {'wall':>9} {'cpu':>8} {'goal':>22} {'peak MB':>8}  met  note")
    for r in rows:
        sec = f"{r.seconds:.3f} s" if r.seconds is not None else "-"
        cpu = f"{r.cpu:.3f} s" if r.cpu is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[r.ok]
        print(f"{r.name:<58} {sec:>9} {cpu:>8} {r.goal:>22} {r.peak_mb:>8.0f}  {met:<4} {r.note}")
    mem = max((r.peak_mb for r in rows), default=0)
    print(f"{'largest resident set of any run':<58} {'':>9} {'':>8} {'< 500 MB':>22} {mem:>8.0f}  "
          f"{'yes' if mem < 500 else 'NO'}")


def compile_bytecode() -> None:
    """Write nsgsolve's bytecode first, as ``pip install`` does for a user. An editable checkout run with
    PYTHONDONTWRITEBYTECODE set (as on our CI machines) would otherwise compile every module in every timed
    process (0.2-0.8 s each), a cost no installed user pays."""
    import compileall

    import nsgsolve

    compileall.compile_dir(str(Path(nsgsolve.__file__).parent), quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--flows", type=int, default=400_000)
    ap.add_argument("--tuples", type=int, default=1_000_000, help="flow log tuples for the replay row")
    ap.add_argument("--sizes", default="500,1000,2000,4000",
                    help="rules per NSG for the growth series (past 1,000 with --no-azure-limits)")
    ap.add_argument("--many", type=int, default=5000, help="files for the many-files row")
    ap.add_argument("--no-growth", action="store_true")
    ap.add_argument("--no-many", action="store_true")
    ap.add_argument("--no-flows", action="store_true", help="skip the verify --flows and replay rows")
    ap.add_argument("--only", default="", help="comma-separated prefixes of row names to run")
    args = ap.parse_args()
    prefixes = [p.strip() for p in args.only.split(",") if p.strip()]

    def only(label: str) -> bool:
        return not prefixes or any(label.startswith(p) for p in prefixes)

    compile_bytecode()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"median of {args.runs} runs", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if only("nsgsolve --help"):
            rows += help_rows(args.runs)
        files = write_inputs(tmp, args.rules)
        rows += command_rows(files, args.runs, only)
        if not args.no_flows and only("verify"):
            rows.append(flows_row(files, tmp, args.flows, args.runs))
        if not args.no_flows and only("replay"):
            rows.append(replay_row(files, tmp, args.tuples, args.runs))
        if not args.no_growth:
            rows += growth_rows(tmp, [int(s) for s in args.sizes.split(",")], max(1, args.runs // 2 or 1), only)
        if not args.no_many and only("many"):
            rows += many_rows(tmp, args.many, 1)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print_table(rows)


if __name__ == "__main__":
    main()
