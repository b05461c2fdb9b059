"""Benchmark: `nsgsolve query` on generated policies with N-rule NSGs on every subnet and every NIC.

Issue 4's goals: a reachability query with witness answers in under 1 s end to end (including
parsing), `--exact` in under 5 s, on 1,000-rule NSGs. Measured for 100 / 250 / 500 / 1,000 rules, median
of several runs:

  * parse     reading the generated policy as .nsg text (the printer writes it) and resolving it;
  * query     QueryEngine.ask for each question (encoding built lazily, one solver shared), in process;
  * exact     the same with --exact (region arithmetic; verdict and witnesses from Z3 as well);
  * cli       the whole command `python -m nsgsolve query FILE "QUESTION" [--exact]` in a subprocess
              (interpreter start, imports, parsing, resolution, solving, printing);
  * naive     the same questions with the whole policy's decision (every NIC, every rule) checked by a
              fresh solver per check, i.e. rebuilding the solver per question and not narrowing it.

The solver modes of PolicySolver (assumptions / push / fresh) are compared on the narrowed encoding too.

    python bench/bench_query.py [--rules 100,250,500,1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_policy  # noqa: E402

from nsgsolve.analyses.query import QueryEngine, compile_query  # noqa: E402
from nsgsolve.lang.build import parse_policy, parse_query  # noqa: E402
from nsgsolve.smt.encode import PolicySolver  # noqa: E402
from nsgsolve.lang.printer import print_policy  # noqa: E402
from nsgsolve.semantics.resolve import resolve  # noqa: E402

QUESTIONS = [
    "can Internet reach asg-1 port 22",
    "can Internet reach snet-1 port 443 tcp",
    "can any reach vm-2-3 port 3389 tcp",
    "can snet-0 reach Internet port 25 tcp",
    "can VirtualNetwork reach Storage port 443",
]
EXACT_QUESTIONS = QUESTIONS[:2] + ["can any reach vm-2-3"]


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def naive_ask(rp, policy, text: str) -> str:
    """The verdict with a fresh solver per check and the unnarrowed decision of the whole policy."""
    engine = QueryEngine(rp, mode="fresh")
    q = compile_query(rp, parse_query(text, policy))
    srcs, dsts = engine._candidates(q.src), engine._candidates(q.dst)
    packets, _ = engine._terms(q, srcs, dsts)
    a = engine.solver.find(packets, True, text) is not None  # decision=None: the full path_allows()
    b = engine.solver.find(packets, False, text) is not None
    return "some" if a and b else "all" if a else "none"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", default="100,250,500,1000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-cli", action="store_true", help="skip the subprocess measurements")
    args = ap.parse_args()
    sizes = [int(x) for x in args.rules.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            text = print_policy(generate_policy(n))
            path = Path(tmp, f"bench-{n}.nsg")
            path.write_text(text)

            def parse():
                pol = parse_policy(text, str(path))
                return pol, resolve(pol)

            t_parse = median_time(parse, args.runs)
            policy, rp = parse()
            queries = [parse_query(q, policy) for q in QUESTIONS]

            # one question on a fresh engine (what one CLI call does), per question, median over runs
            per_q = [median_time(lambda q=q: QueryEngine(rp).ask(q), args.runs) for q in queries]
            exq = [parse_query(q, policy) for q in EXACT_QUESTIONS]
            per_x = [median_time(lambda q=q: QueryEngine(rp).ask(q, exact=True), args.runs) for q in exq]
            # all questions on one engine: the encoding and solver are shared
            t_all = median_time(lambda: [QueryEngine(rp).ask(q) for q in queries[:1]] and
                                [e.ask(q) for e in [QueryEngine(rp)] for q in queries], args.runs)
            modes = {}
            for mode in PolicySolver.MODES:
                modes[mode] = median_time(lambda m=mode: [e.ask(q) for e in [QueryEngine(rp, mode=m)]
                                                          for q in queries], args.runs)
            verdicts = [QueryEngine(rp).ask(q).verdict.value for q in queries]
            naive_runs = max(1, args.runs // 2)
            t_naive = [median_time(lambda t=t: naive_ask(rp, policy, t), naive_runs) for t in QUESTIONS]
            naive_verdicts = [naive_ask(rp, policy, t) for t in QUESTIONS]
            assert naive_verdicts == verdicts, (naive_verdicts, verdicts)

            cli_q = cli_x = None
            if not args.no_cli:
                base = [sys.executable, "-m", "nsgsolve", "query", str(path)]

                def cli(extra):
                    subprocess.run(base + extra, check=True, stdout=subprocess.DEVNULL, env=os.environ)

                cli_q = max(median_time(lambda q=q: cli([q]), args.runs) for q in QUESTIONS[:2])
                cli_x = max(median_time(lambda q=q: cli([q, "--exact"]), args.runs) for q in EXACT_QUESTIONS)
            rows.append((n, t_parse, max(per_q), statistics.median(per_q), max(per_x), t_all, modes,
                         max(t_naive), statistics.median(t_naive), cli_q, cli_x, verdicts))

    print(f"generated policies: 4 subnets x 5 NICs, an N-rule NSG on every subnet and on every NIC "
          f"(2 NSGs x N rules); median of {args.runs} runs; seconds")
    print(f"questions: {'; '.join(QUESTIONS)}")
    print()
    print(f"{'rules':>6} {'parse':>7} {'query max':>9} {'query med':>9} {'exact max':>9} {'5 q shared':>10} "
          f"{'naive max':>9} {'naive med':>9} {'ratio':>6} {'cli query':>9} {'cli exact':>9}")
    for n, tp, qmax, qmed, xmax, tall, _modes, nmax, nmed, cq, cx, _ in rows:
        def fmt(v):
            return f"{v:9.3f}" if v is not None else f"{'-':>9}"

        print(f"{n:>6} {tp:7.3f} {qmax:9.3f} {qmed:9.3f} {xmax:9.3f} {tall:10.3f} {nmax:9.3f} {nmed:9.3f} "
              f"{nmed / qmed:5.1f}x {fmt(cq)} {fmt(cx)}")
    print()
    print("solver modes, the 5 questions on one engine (narrowed encoding):")
    for n, *_, modes, _nm, _nd, _cq, _cx, verdicts in [(r[0], r[6], r[7], r[8], r[9], r[10], r[11]) for r in rows]:
        print(f"  {n:>5} rules: " + "  ".join(f"{m} {t:.3f}" for m, t in modes.items()) + f"   verdicts {verdicts}")


if __name__ == "__main__":
    main()
