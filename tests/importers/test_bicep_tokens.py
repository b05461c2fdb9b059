"""Property: the tokenizer's pattern, written with possessive repeats for speed, matches exactly what the same
pattern with plain repeats matches, on any text (Bicep-like or not) and on every Bicep file of the corpus."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings, strategies as st

from nsgsolve.importers import bicepsyntax

# bicepsyntax._TOKEN with every possessive repeat ('*+', '++') written as the plain one.
PLAIN = re.compile(bicepsyntax._TOKEN.pattern.replace("*+", "*").replace("++", "+"), re.X)

PIECES = st.sampled_from(["a", "b1", "_x", "'", "''", "'''", "\\", "$", "${", "{", "}", "[", "]", "(", ")", " ",
                          "\t", "\n", "\r\n", "/", "//", "/*", "*/", "*", "**", "=", "==", "!", "?", "??", ":",
                          "::", ".", "..", ",", "-", "+", "0", "42", "@", "|", "&&", "#", "é"])


def test_the_plain_pattern_differs_only_in_its_repeats():
    assert "]*+" not in PLAIN.pattern and ")*+" not in PLAIN.pattern and "\\d+" in PLAIN.pattern
    assert PLAIN.pattern != bicepsyntax._TOKEN.pattern


@settings(max_examples=500, deadline=None)
@given(st.lists(PIECES, max_size=40).map("".join))
def test_possessive_repeats_match_what_plain_ones_do(text):
    assert bicepsyntax._TOKEN.findall(text) == PLAIN.findall(text)
    for pos in range(len(text)):
        a, b = bicepsyntax._TOKEN.match(text, pos), PLAIN.match(text, pos)
        assert (a.span(), a.lastindex) == (b.span(), b.lastindex)


def test_possessive_repeats_match_what_plain_ones_do_on_the_corpus():
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "../shared/corpus/bicep").glob("**/*.bicep")) + sorted(root.glob("tests/**/*.bicep"))
    assert files
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert bicepsyntax._TOKEN.findall(text) == PLAIN.findall(text), f
