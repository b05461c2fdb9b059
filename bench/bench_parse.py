"""Benchmark: loading a policy file (`nsgsolve.lang.build.parse_policy`) and the CLI's fixed costs.

Issue 4 wants `nsgsolve query POLICY "..."` under 1 s end to end on two 1,000-rule NSGs, and parsing is
most of that. Measured on generated policies (bench/generate.py, written as .nsg text by the printer),
median of several runs, CPU time of this process (the machine is shared, so wall time is noisy; the
subprocess figures are wall time):

  * parse      syntax.parse: Lark (lexer + LALR + tree with positions);
  * build      build.build_tree: tree → model, names resolved, addresses checked;
  * validate   validate.validate_into on the built model;
               (these three with the garbage collector off, as parse_policy runs them since it turns
               it off; on an older checkout they are lower than what parse_policy spent on them)
  * total      build.parse_policy, the real entry point (all three, plus evaluation order);
  * plain      the same grammar parsed by a stock Lark parser (propagate_positions=True, no fast
               positions, garbage collector on): what parse costs without this module's tuning;
  * parser     building the Lark parser in a fresh process: from the grammar, and from the cache;
  * cli        `python -m nsgsolve --help` and `python -m nsgsolve query FILE "..."`, wall time.

Cases: 100 and 1,000 rules per NSG (20 prefixes at most per side), and 100 rules with sides of up to
4,000 prefixes (Azure's limit per side).

    python bench/bench_parse.py [--runs 7] [--no-cli]

Run it with PYTHONPATH pointing at another checkout to compare before/after (same generated texts).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_policy  # noqa: E402

from lark import Lark  # noqa: E402

from nsgsolve.lang import build, syntax  # noqa: E402
from nsgsolve.lang.printer import print_policy  # noqa: E402
from nsgsolve.validate import validate_into  # noqa: E402

CASES = [
    ("100 rules", dict(n_rules=100)),
    ("1,000 rules", dict(n_rules=1000)),
    ("100 rules, 4,000-prefix sides", dict(n_rules=100, max_prefixes=4000)),
]
QUESTION = "can Internet reach vm-1-2 port 22"


def cpu_median(fn, runs: int, collect: bool = True) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        if not collect:
            gc.disable()
        try:
            t = time.process_time()
            fn()
            times.append(time.process_time() - t)
        finally:
            gc.enable()
    return statistics.median(times)


def wall_median(cmd: list[str], runs: int, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def plain_parser() -> Lark:
    """The grammar as stock Lark builds it: positions propagated by Lark itself."""
    return Lark(syntax.grammar_text(), parser="lalr", lexer="contextual", start=list(syntax.START_SYMBOLS),
                propagate_positions=True, maybe_placeholders=False, postlex=syntax._LineStartPostLex())


def in_process(text: str, runs: int, plain: Lark) -> dict[str, float]:
    name = "bench.nsg"
    tree = syntax.parse(text, name)
    policy, bag, poisoned = build.build_tree(tree, text, name)
    assert not bag.errors, bag.errors[:3]

    def validate() -> None:
        b = build.DiagnosticBag()
        validate_into(policy, b, skip=poisoned)
        assert not b.errors, b.errors[:3]

    return {
        "parse": cpu_median(lambda: syntax.parse(text, name), runs, collect=False),
        "build": cpu_median(lambda: build.build_tree(tree, text, name), runs, collect=False),
        "validate": cpu_median(validate, runs, collect=False),
        "total": cpu_median(lambda: build.parse_policy(text, name), runs),
        "plain": cpu_median(lambda: plain.parse(text, start="policy"), runs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-cli", action="store_true", help="in-process figures only")
    args = ap.parse_args()
    import nsgsolve

    print(f"nsgsolve from {Path(nsgsolve.__file__).parent}, median of {args.runs} runs")
    plain = plain_parser()
    tmp = Path(tempfile.mkdtemp(prefix="bench_parse_"))
    files = {}
    print(f"{'case':32} {'KB':>6} {'parse':>7} {'build':>7} {'valid.':>7} {'total':>7} {'plain':>7}")
    for label, kw in CASES:
        text = print_policy(generate_policy(**kw))
        path = tmp / f"{kw['n_rules']}-{kw.get('max_prefixes', 20)}.nsg"
        path.write_text(text)
        files[label] = path
        r = in_process(text, args.runs, plain)
        print(f"{label:32} {len(text) / 1024:6.0f} " + " ".join(f"{r[k]:7.3f}" for k in
                                                              ("parse", "build", "validate", "total", "plain")))
    if args.no_cli:
        return
    py = sys.executable
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
    probe = "import time; t = time.perf_counter(); from nsgsolve.lang import syntax; syntax.parser(); " \
            "print(time.perf_counter() - t)"

    def parser_build(cold: bool) -> float:
        times = []
        for _ in range(args.runs):
            if cold:
                subprocess.run(["rm", "-rf", str(tmp / "cache")], check=True)
            out = subprocess.run([py, "-c", probe], check=True, capture_output=True, text=True, env=env).stdout
            times.append(float(out))
        return statistics.median(times)

    print(f"parser in a fresh process (import syntax + build): from the grammar {parser_build(True):.3f} s, "
          f"from the cache {parser_build(False):.3f} s")
    print(f"cli --help: {wall_median([py, '-m', 'nsgsolve', '--help'], args.runs, env):.3f} s")
    for label in ("1,000 rules", "100 rules, 4,000-prefix sides"):
        t = wall_median([py, "-m", "nsgsolve", "query", str(files[label]), QUESTION], args.runs, env)
        print(f"cli query, {label}: {t:.3f} s")


if __name__ == "__main__":
    main()
