"""Limits on what nsgsolve reads and computes, beyond Azure's own, in one place (docs/errors.md E01x, E69x).

nsgsolve reads untrusted files in CI. Each limit here stops an input that would otherwise exhaust memory,
the Python stack or the CI job's time, with an error saying which limit and where, *before* the work is
done. Azure's own limits (1,000 rules per NSG, copy count 800, 24,576 characters per template expression,
...) are enforced where the value is read (validate.py, importers/); the limits below are nsgsolve's, set
far above anything a real template or export needs (figures in tests/fuzz/README.md), and tested by
tests/fuzz/test_limits.py so that a later parser swap cannot lose them.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

# Azure's size limits that a *merged* view may exceed: a policy assembled from several NSGs, an AVNM
# configuration, a benchmark. By default such an NSG is refused (E410) as Azure would refuse it; the
# commands' --no-azure-limits option clears this for one run, and the finding becomes the warning W410
# (the analysis is still exact; only the deployability of that NSG is in question). A context variable,
# not a parameter threaded through every reader: it is one setting of the run, like the input size limit.
AZURE_LIMITS: ContextVar[bool] = ContextVar("AZURE_LIMITS", default=True)

# Input files. The largest real inputs are ServiceTags_Public (~5 MB) and 'az network nic list' of a large
# subscription (tens of MB); ARM refuses templates over 4 MB. Parsed JSON takes ~10-20x its size in memory.
MAX_INPUT_BYTES = 256 * 1024 * 1024


def max_input_bytes() -> int:
    """The input size limit, raised or lowered with $NSGSOLVE_MAX_INPUT_BYTES."""
    env = os.environ.get("NSGSOLVE_MAX_INPUT_BYTES", "")
    return int(env) if env.isdigit() else MAX_INPUT_BYTES


# JSON nesting (E011). Real templates nest < 30 levels (a nested deployment adds ~5); the readers and the
# template evaluator recurse once per level, and the limit keeps them far from Python's stack limit.
MAX_JSON_DEPTH = 128

# ARM template expressions. Azure's own limit is the length (E691); nesting (E690) is nsgsolve's: the
# deepest expression in the corpus nests 8 calls.
ARM_MAX_EXPRESSION_CHARS = 24_576  # Azure: "24,576 characters in a template expression"
MAX_EXPRESSION_DEPTH = 64

# ARM copy loops (E692): Azure refuses a count over 800 or below 0.
ARM_MAX_COPY_COUNT = 800

# Terraform count (E696): instances of one resource nsgsolve expands. Azure's own limits are 5,000 NSGs
# per subscription and 1,000 rules per NSG; for_each is bounded by its collection (range() stops at 100,000).
TF_MAX_COUNT = 10_000

# Values an expression computes (E693): ARM refuses templates over 4 MB after expansion, so no value of a
# deployable template is longer. Checked before range()/padLeft() build them and after every function.
MAX_VALUE_CHARS = 4 * 1024 * 1024
MAX_VALUE_ITEMS = 100_000

# Work per template (E694): JSON containers and expression nodes evaluated. The most any corpus template
# needs is 1,022; Azure refuses templates over 4 MB after expansion, which caps real ones far below this.
MAX_EVAL_STEPS = 250_000


# Numbers. int() refuses strings of more than 4,300 digits (ValueError, a traceback where a message was due)
# and is quadratic below that; no number nsgsolve reads (priority, port, octet, prefix length) needs more
# than a few digits.
MAX_NUMBER_DIGITS = 18


class HugeNumber(int):
    """A number written with more than MAX_NUMBER_DIGITS digits: compares as 10^18 (beyond every range
    nsgsolve checks, so it is reported as out of range) and prints as written, abbreviated."""

    text: str

    def __new__(cls, text: str) -> "HugeNumber":
        obj = super().__new__(cls, 10 ** MAX_NUMBER_DIGITS)
        obj.text = text
        return obj

    def __str__(self) -> str:
        t = self.text
        return t if len(t) <= 24 else f"{t[:10]}...{t[-10:]} ({len(t):,} digits)"

    __repr__ = __str__


def decimal(text: str) -> int:
    """``int(text)`` for a string of decimal digits (an optional sign, surrounding blanks) of any length."""
    if len(text) <= MAX_NUMBER_DIGITS:  # the common case, and int() of it is what the lines below give
        return int(text)
    t = text.strip()
    digits = t.lstrip("+-").lstrip("0")
    if len(digits) > MAX_NUMBER_DIGITS:
        if not digits.isdigit():
            raise ValueError(f"invalid literal for int(): {t[:30]!r}")
        return -HugeNumber(t) if t.startswith("-") else HugeNumber(t)
    return int(t)
