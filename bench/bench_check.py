"""Benchmark: 50 contract assertions on a policy with two 1,000-rule NSGs (target: under 10 seconds).

    python bench/bench_check.py [--rules 1000] [--assertions 50] [--runs 3] [--naive-sample 10]

Compares, on the same generated policy (bench/generate.py) and the same assertions:

* ``check``: what ``nsgsolve check`` does — one encoding and one solver for the file; each question is
  asked between push and pop against the decision *narrowed* to the assertion's traffic (only the
  rules whose match box meets the traffic's box, and only the NICs that can be its endpoints);
* ``narrowed, assumptions`` and ``narrowed, fresh solver``: the same terms, other ways to retract a
  question (assumption literals; a new solver per question);
* ``whole policy``: one solver, every question against the decision for every packet (all 2,000 rules);
* ``naive``: everything rebuilt per assertion (resolution, encoding, solver) and the whole-policy
  decision, as a script calling a one-shot checker 50 times would; timed on ``--naive-sample``
  assertions and scaled to all of them.

Each figure is the median of ``--runs`` runs, wall-clock, including encoding; verdicts of all approaches
must agree or the benchmark stops.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import COMMON_PORTS, generate_policy  # noqa: E402

from nsgsolve.analyses.contracts import ContractChecker, check_policy  # noqa: E402
from nsgsolve.analyses.results import Status  # noqa: E402
from nsgsolve.model import (  # noqa: E402
    AnyAddress, AsgSide, AssertExcept, Assertion, AssertionKind, Cidr, NicAddr, Policy, PortRange, PortSpec,
    Protocol, Query, Ref, Span, TagSide, assertion_name, claim_text,
)
from nsgsolve.semantics.addresses import ip_to_int  # noqa: E402
from nsgsolve.semantics.resolve import resolve  # noqa: E402


def make_assertions(policy: Policy, n: int, seed: int = 5) -> tuple[Assertion, ...]:
    """A realistic mix: `no` from the Internet on admin ports, `all`/`some` on service ports, `only`
    contracts per ASG, with and without except clauses, over NICs, ASGs, tags and prefixes."""
    rng = random.Random(seed)
    nics = [n.name for n in policy.nics]
    asgs = [a.name for a in policy.asgs]
    kinds = [AssertionKind.NO, AssertionKind.NO, AssertionKind.ALL, AssertionKind.SOME, AssertionKind.ONLY]

    def endpoint():
        r = rng.random()
        if r < 0.3:
            return NicAddr(Ref(rng.choice(nics)))
        if r < 0.55:
            return AsgSide((Ref(rng.choice(asgs)),))
        if r < 0.8:
            return TagSide(Ref(rng.choice(["Internet", "VirtualNetwork"])))
        return Cidr(ip_to_int("203.0.113.0"), 24)

    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        src = (endpoint(),) if rng.random() < 0.85 else (AnyAddress(),)
        dst = (NicAddr(Ref(rng.choice(nics))),) if rng.random() < 0.5 else (AsgSide((Ref(rng.choice(asgs)),)),)
        ports = PortSpec(tuple(PortRange(p, p) for p in rng.sample(COMMON_PORTS, rng.choice([1, 1, 2, 3]))))
        proto = rng.choice([Protocol.TCP, Protocol.TCP, Protocol.ANY, Protocol.UDP])
        excepts = ()
        if rng.random() < 0.3:
            excepts = (AssertExcept(sources=(Cidr(ip_to_int("10.0.0.0"), 24),)),)
        q = Query(src, dst, ports, proto)
        text = claim_text(kind, q, excepts)
        out.append(Assertion(kind, q, excepts, assertion_name(text), "", Span("bench.nsg", i + 1, 1), text))
    return tuple(out)


def run_mode(policy: Policy, mode: str, narrow: bool = True) -> tuple[float, list[Status]]:
    start = time.perf_counter()
    results = check_policy(policy, resolve(policy), solver_mode=mode, narrow=narrow)
    return time.perf_counter() - start, [r.verdict for r in results]


def run_naive(policy: Policy, sample: int) -> tuple[float, list[Status]]:
    """A new resolution, encoding and solver for every assertion, each question against the whole
    policy's decision; timed on ``sample`` assertions and scaled to all of them."""
    asserts = list(policy.assertions)[:sample]
    start = time.perf_counter()
    verdicts = []
    for a in asserts:
        checker = ContractChecker(resolve(policy), "fresh", narrow=False)
        verdicts.append(checker.check(a, a.name).verdict)
    spent = time.perf_counter() - start
    return spent * len(policy.assertions) / max(len(asserts), 1), verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--assertions", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--naive-sample", type=int, default=10)
    args = ap.parse_args()

    base = generate_policy(args.rules, seed=1)
    policy = dataclasses.replace(base, assertions=make_assertions(base, args.assertions))
    n_rules = sum(len(n.rules) for n in policy.nsgs)
    print(f"policy: {len(policy.nsgs)} NSGs, {n_rules} rules, {len(policy.nics)} NICs; "
          f"{len(policy.assertions)} assertions; median of {args.runs} runs")

    rows = []
    reference = None
    approaches = (("check: narrowed, push/pop", "push", True), ("narrowed, assumptions", "assumptions", True),
                  ("narrowed, fresh solver", "fresh", True), ("whole policy, assumptions", "assumptions", False))
    for label, mode, narrow in approaches:
        times, verdicts = [], None
        for _ in range(args.runs):
            t, verdicts = run_mode(policy, mode, narrow)
            times.append(t)
        if reference is None:
            reference = verdicts
        if verdicts != reference:
            raise SystemExit(f"{label} disagrees with the incremental verdicts")
        rows.append((label, statistics.median(times)))
    times = []
    for _ in range(args.runs):
        t, verdicts = run_naive(policy, args.naive_sample)
        times.append(t)
        if verdicts != reference[:len(verdicts)]:
            raise SystemExit("naive disagrees with the incremental verdicts")
    rows.append((f"naive (scaled from {args.naive_sample})", statistics.median(times)))

    counts = {v: reference.count(v) for v in Status}
    print(f"verdicts: {counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, {counts[Status.UNKNOWN]} unknown")
    fastest = rows[0][1]
    print(f"{'approach':<28} {'seconds':>9} {'per assertion':>14} {'vs check':>9}")
    for label, t in rows:
        print(f"{label:<28} {t:>9.2f} {t / len(policy.assertions) * 1000:>11.0f} ms {t / fastest:>8.1f}x")
    verdict = "OK" if fastest < 10 else "SLOW"
    print(f"target: {len(policy.assertions)} assertions under 10 s -> {verdict} ({fastest:.2f} s)")


if __name__ == "__main__":
    main()
