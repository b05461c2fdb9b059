"""The low-level Z3 helpers: set membership is exact and unsigned, unknown is never an answer."""

from __future__ import annotations

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from nsgsolve.semantics.addresses import IntervalSet
from nsgsolve.errors import EXIT_UNKNOWN, SolverUnknown
from nsgsolve.smt.z3util import FALSE, TRUE, Consts, check, in_set, interval, make_solver, mk_and, mk_not, mk_or

W = 8  # 8-bit fields keep exhaustive checks cheap; the code is width-generic
intervals = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)).map(lambda t: (min(t), max(t))), max_size=5)


def _members(term: z3.BoolRef, x: z3.BitVecRef) -> set[int]:
    """Every value of ``x`` satisfying ``term``, by substitution (no solver involved)."""
    return {v for v in range(256) if z3.is_true(z3.simplify(z3.substitute(term, (x, z3.BitVecVal(v, W)))))}


@settings(max_examples=150, deadline=None)
@given(intervals)
def test_in_set_holds_exactly_for_the_members(ivs):
    s = IntervalSet(ivs)
    x = z3.BitVec("x", W)
    assert _members(in_set(x, s, W, Consts()), x) == {v for v in range(256) if v in s}


def test_high_values_are_compared_unsigned():
    # As signed 8-bit numbers 200 < 10; as addresses or ports it is above every value of [10, 150].
    x = z3.BitVec("x", W)
    assert 200 not in _members(interval(x, 10, 150, W, Consts()), x)
    assert _members(interval(x, 100, 255, W, Consts()), x) == set(range(100, 256))


def test_aligned_blocks_use_high_bit_equality():
    x = z3.BitVec("x", W)
    t = interval(x, 64, 127, W, Consts())
    assert z3.is_eq(t) and z3.is_app_of(t.arg(0), z3.Z3_OP_EXTRACT)
    assert _members(t, x) == set(range(64, 128))


def test_trivial_cases_fold_to_the_constants():
    x = z3.BitVec("x", W)
    assert in_set(x, IntervalSet([(0, 255)]), W, Consts()) is TRUE
    assert in_set(x, IntervalSet(), W, Consts()) is FALSE
    p = z3.Bool("p")
    assert mk_and([TRUE, p]) is p and mk_and([p, FALSE]) is FALSE and mk_and([]) is TRUE
    assert mk_or([FALSE, p]) is p and mk_or([p, TRUE]) is TRUE and mk_or([]) is FALSE
    assert mk_not(TRUE) is FALSE


def test_check_maps_sat_unsat_and_raises_on_unknown():
    s = make_solver()
    x = z3.BitVec("x", 32)
    assert check(s, "sat", [x == 5]) is True
    assert check(s, "unsat", [x == 5, x == 6]) is False
    # A resource limit far too small for a non-linear problem: Z3 answers unknown, which must not pass.
    tiny = make_solver(rlimit=50)
    y = z3.BitVec("y", 32)
    tiny.add(x * x * y == 12345677, y * y * x == 7654321)
    with pytest.raises(SolverUnknown) as e:
        check(tiny, "a non-linear puzzle")
    assert e.value.exit_status == EXIT_UNKNOWN
    assert "a non-linear puzzle" in str(e.value) and e.value.reason


def test_fixed_seeds_give_the_same_model_every_time():
    def model():
        s = make_solver()
        a, b = z3.BitVecs("a b", 32)
        s.add(z3.UGT(a, 1000), z3.ULT(b, a), a & b == 0x10)
        assert s.check() == z3.sat
        m = s.model()
        return m.eval(a).as_long(), m.eval(b).as_long()

    assert len({model() for _ in range(3)}) == 1


def test_every_solver_is_made_by_make_solver():
    """Static: no module creates a Z3 solver, optimizer or tactic itself, so every check has the fixed seed
    and the rlimit of make_solver (the rule in smt/z3util.py's docstring)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "nsgsolve"
    pattern = re.compile(r"\b(z3\.)?(Solver|SolverFor|SimpleSolver|Optimize|Tactic|Then|prove|solve)\(")
    found = [f"{p.relative_to(root)}: {m.group()}" for p in root.rglob("*.py") if p.name != "z3util.py"
             for m in pattern.finditer(p.read_text(encoding="utf-8"))
             if m.group(1) or m.group(2) in ("SolverFor", "SimpleSolver", "Optimize", "Tactic")]
    assert found == []


def test_make_solvers_limit_stops_a_hard_question_as_unknown():
    """The rlimit of make_solver is in force (the seeds: test_fixed_seeds_give_the_same_model_every_time)."""
    x = z3.BitVec("x", 64)
    hard = make_solver(rlimit=1)
    hard.add(x * x * x == 1234567891234567)
    with pytest.raises(SolverUnknown) as e:
        check(hard, "a cubic equation", rlimit=1)
    assert e.value.hit_limit and "--solver-limit" in str(e.value)


def test_solver_limit_option_and_its_alias(tmp_path):
    import io
    from pathlib import Path

    from nsgsolve.cli import run

    web = str(Path(__file__).resolve().parents[1] / "examples" / "webservers.nsg")

    def cli(*argv):
        out, err = io.StringIO(), io.StringIO()
        return run(list(argv), out, err), out.getvalue() + err.getvalue()

    for opt in ("--solver-limit", "--rlimit"):
        status, text = cli("query", web, "can any reach WebServers", opt, "1")
        assert status == EXIT_UNKNOWN and "--solver-limit" in text, text  # never a verdict
        status, text = cli("check", web, opt, "1")
        assert status == EXIT_UNKNOWN, text
    with pytest.raises(SystemExit) as e:  # Z3 reads 0 as "no limit": refused as a usage error
        cli("query", web, "can any reach WebServers", "--solver-limit", "0")
    assert e.value.code == 2
    status, _ = cli("query", web, "can any reach WebServers", "--solver-limit", "1_000_000_000")
    assert status == 0
