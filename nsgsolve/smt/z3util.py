"""Low-level Z3 helpers, in one place (the CrossHair way): solver settings, set membership, checks.

Everything nsgsolve asks Z3 goes through here, so three rules hold everywhere:

* Results are deterministic: every solver pins ``random_seed``/``smt.random_seed`` and bounds its work
  with ``rlimit`` (abstract steps, the same on every machine) instead of a wall-clock timeout.
* Bit-vector comparisons are unsigned (``ULE``/``UGE``): z3py's ``<=`` on bit-vectors is *signed*, which
  would make 200.0.0.0 "smaller" than 10.0.0.0 and fail open.
* ``unknown`` is never an answer: :func:`check` raises :class:`~nsgsolve.errors.SolverUnknown` with Z3's
  reason, which the CLI turns into exit status 3.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import z3

from nsgsolve.semantics.addresses import IntervalSet
from nsgsolve.errors import SolverUnknown

# Large enough that a 1,000-rule policy's queries finish far below it (they use well under 10^6 steps:
# see bench/bench_query.py), small enough that a runaway query stops in tens of seconds.
DEFAULT_RLIMIT = 50_000_000
DEFAULT_SEED = 0

TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)

# The constructors below call the C API directly: z3py's ``And``/``Or``/``==`` coerce and type-check every
# argument, which dominated building a 1,000-rule policy (Z3Prover/z3#4993, #2689). They keep the
# singletons TRUE/FALSE for constant results, so "is this trivially true" is an identity test.
_CTX = z3.main_ctx()
_REF = _CTX.ref()


def _bool(ast) -> z3.BoolRef:
    return z3.BoolRef(ast, _CTX)


def _array(args: Sequence[z3.ExprRef]):
    arr = (z3.Ast * len(args))()
    for i, a in enumerate(args):
        arr[i] = a.as_ast()
    return arr


def make_solver(rlimit: int | None = DEFAULT_RLIMIT, seed: int = DEFAULT_SEED) -> z3.Solver:
    """An incremental solver with fixed seeds and a resource limit (``None``: unlimited).

    The limit applies to each ``check`` separately: Z3 re-arms it from the steps already spent.
    """
    s = z3.Solver()
    s.set("random_seed", seed)
    s.set("smt.random_seed", seed)
    if rlimit is not None:
        s.set("rlimit", rlimit)
    return s


def check(solver: z3.Solver, what: str, assumptions: Sequence[z3.BoolRef] = (), rlimit: int | None = None) -> bool:
    """``True`` for sat, ``False`` for unsat; ``unknown`` raises SolverUnknown naming ``what`` (and
    ``rlimit``, the limit the solver was made with, so the message can say how to raise it)."""
    r = solver.check(*assumptions)
    if r == z3.sat:
        return True
    if r == z3.unsat:
        return False
    raise SolverUnknown(what, solver.reason_unknown() or "unknown", rlimit)


def value(model: z3.ModelRef, term: z3.BitVecRef) -> int:
    """A bit-vector's value in a model; unconstrained terms get a value too (model completion)."""
    return model.eval(term, model_completion=True).as_long()


class Consts:
    """Bit-vector constants created once per width and value: z3py's coercion of Python ints is slow
    when repeated for every comparison of thousands of rules."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], z3.BitVecNumRef] = {}

    def __call__(self, v: int, width: int) -> z3.BitVecNumRef:
        key = (width, v)
        c = self._cache.get(key)
        if c is None:
            c = self._cache[key] = z3.BitVecVal(v, width)
        return c


def mk_and(args: Sequence[z3.BoolRef]) -> z3.BoolRef:
    """``z3.And`` with TRUE/FALSE folded away."""
    out = []
    for a in args:
        if a is FALSE:
            return FALSE
        if a is not TRUE:
            out.append(a)
    if not out:
        return TRUE
    if len(out) == 1:
        return out[0]
    return _bool(z3.Z3_mk_and(_REF, len(out), _array(out)))


def mk_or(args: Sequence[z3.BoolRef]) -> z3.BoolRef:
    """``z3.Or`` with TRUE/FALSE folded away."""
    out = []
    for a in args:
        if a is TRUE:
            return TRUE
        if a is not FALSE:
            out.append(a)
    if not out:
        return FALSE
    if len(out) == 1:
        return out[0]
    return _bool(z3.Z3_mk_or(_REF, len(out), _array(out)))


def mk_not(a: z3.BoolRef) -> z3.BoolRef:
    if a is TRUE:
        return FALSE
    if a is FALSE:
        return TRUE
    return _bool(z3.Z3_mk_not(_REF, a.as_ast()))


def mk_implies(a: z3.BoolRef, b: z3.BoolRef) -> z3.BoolRef:
    if a is FALSE or b is TRUE:
        return TRUE
    if a is TRUE:
        return b
    return _bool(z3.Z3_mk_implies(_REF, a.as_ast(), b.as_ast()))


def mk_ite(c: z3.BoolRef, a: z3.BoolRef, b: z3.BoolRef) -> z3.BoolRef:
    """If-then-else over Booleans."""
    if c is TRUE:
        return a
    if c is FALSE:
        return b
    if a is b:
        return a
    return _bool(z3.Z3_mk_ite(_REF, c.as_ast(), a.as_ast(), b.as_ast()))


def mk_eq(x: z3.ExprRef, y: z3.ExprRef) -> z3.BoolRef:
    return _bool(z3.Z3_mk_eq(_REF, x.as_ast(), y.as_ast()))


def mk_ule(x: z3.BitVecRef, y: z3.BitVecRef) -> z3.BoolRef:
    """Unsigned ``x <= y`` (``z3.ULE``; never ``<=``, which is signed)."""
    return _bool(z3.Z3_mk_bvule(_REF, x.as_ast(), y.as_ast()))


def mk_uge(x: z3.BitVecRef, y: z3.BitVecRef) -> z3.BoolRef:
    """Unsigned ``x >= y`` (``z3.UGE``)."""
    return _bool(z3.Z3_mk_bvuge(_REF, x.as_ast(), y.as_ast()))


def mk_extract(hi: int, lo: int, x: z3.BitVecRef) -> z3.BitVecRef:
    return z3.BitVecRef(z3.Z3_mk_extract(_REF, hi, lo, x.as_ast()), _CTX)


def _aligned_prefix(lo: int, hi: int) -> int | None:
    """The number of low bits the interval spans when it is one aligned block (a CIDR), else None."""
    size = hi - lo + 1
    if size & (size - 1) or lo & (size - 1):
        return None
    return size.bit_length() - 1


def interval(x: z3.BitVecRef, lo: int, hi: int, width: int, consts: Consts) -> z3.BoolRef:
    """``lo <= x <= hi`` (unsigned). An aligned block is an equality of the high bits, which Z3 blasts into
    fewer clauses than two comparators."""
    top = (1 << width) - 1
    if lo <= 0 and hi >= top:
        return TRUE
    if lo == hi:
        return mk_eq(x, consts(lo, width))
    k = _aligned_prefix(lo, hi)
    if k is not None:
        return mk_eq(mk_extract(width - 1, k, x), consts(lo >> k, width - k))
    if lo == 0:
        return mk_ule(x, consts(hi, width))
    if hi == top:
        return mk_uge(x, consts(lo, width))
    return mk_and([mk_uge(x, consts(lo, width)), mk_ule(x, consts(hi, width))])


def in_set(x: z3.BitVecRef, s: IntervalSet, width: int, consts: Consts) -> z3.BoolRef:
    """Membership of ``x`` in an interval set (already merged), encoded through its complement when that
    has fewer intervals (the Internet tag is the complement of a handful of blocks)."""
    top = (1 << width) - 1
    comp = s.complement(top)
    if len(comp) < len(s):
        return mk_not(mk_or([interval(x, lo, hi, width, consts) for lo, hi in comp]))
    return mk_or([interval(x, lo, hi, width, consts) for lo, hi in s])


def distinct(terms: Iterable[z3.ExprRef]) -> z3.BoolRef:
    ts = list(terms)
    return _bool(z3.Z3_mk_distinct(_REF, len(ts), _array(ts))) if len(ts) > 1 else TRUE
