"""The policy language, mutated from the examples: deleted, duplicated, swapped and foreign tokens, random
bytes, a BOM, CRLF line ends, NUL, huge numbers, 1 MB lines and deep nesting. Every command runs on each."""

from __future__ import annotations

import re

import pytest

from hypothesis import given, strategies as st

from fuzz_harness import LONG, EXAMPLES, fuzz_settings, policy_commands, run_cli

SEEDS = {p.name: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.nsg"))}
_TOKEN = re.compile(r"\s+|[A-Za-z_][\w.\-]*|\d[\d./\-]*|\"[^\"\n]*\"|#[^\n]*|.", re.S)
VOCAB = sorted({t for text in SEEDS.values() for t in _TOKEN.findall(text) if not t.isspace()})

HOSTILE_TOKENS = ["99999999999999999999999999999", "4097", "99", "0", "-1", "65536", "80-70", "10.0.0.0/33",
                  "300.1.1.1", "2001:db8::/32", "\x00", "\ufeff", "\r", "`", "``", "`any`", "\"", "{", "}", "{" * 5000,
                  "(" * 3000, "," * 1000, "x" * (1 << 20), "# " + "y" * (1 << 20), "\"" + "z" * (1 << 20) + "\"",
                  "include", "any", "nsg", "é", "\u202e", "\udcff"]


def mutate(data, text: str) -> str:
    toks = _TOKEN.findall(text)
    for _ in range(data.draw(st.integers(1, 5), label="mutations")):
        if not toks:
            toks = [""]
        i = data.draw(st.integers(0, len(toks) - 1), label="at")
        op = data.draw(st.sampled_from(["delete", "duplicate", "swap", "vocab", "hostile", "bytes"]), label="op")
        if op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks.insert(i, toks[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(toks) - 1), label="with")
            toks[i], toks[j] = toks[j], toks[i]
        elif op == "vocab":
            toks.insert(i, " " + data.draw(st.sampled_from(VOCAB), label="token") + " ")
        elif op == "hostile":
            toks[i] = data.draw(st.sampled_from(HOSTILE_TOKENS), label="hostile")
        else:
            toks.insert(i, data.draw(st.text(max_size=20), label="text"))
    return "".join(toks)


def encode(data, text: str) -> bytes:
    """The file as bytes, sometimes with a BOM, CRLF line ends or bytes that are not UTF-8."""
    style = data.draw(st.sampled_from(["utf8", "utf8", "bom", "crlf", "cr", "latin1", "utf16", "raw"]), label="enc")
    if style == "raw":
        return data.draw(st.binary(max_size=200), label="bytes")
    safe = text.encode("utf-8", "surrogatepass")
    return {"utf8": safe, "bom": b"\xef\xbb\xbf" + safe, "crlf": safe.replace(b"\n", b"\r\n"),
            "cr": safe.replace(b"\n", b"\r"), "latin1": text.encode("latin-1", "replace"),
            "utf16": text.encode("utf-16", "surrogatepass")}[style]


@fuzz_settings(25)
@given(data=st.data())
def test_policy_language(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nsg")
    seed = data.draw(st.sampled_from(sorted(SEEDS)), label="seed")
    path = tmp / "policy.nsg"
    path.write_bytes(encode(data, mutate(data, SEEDS[seed])))
    for argv in policy_commands(str(path), tmp):
        run_cli("grammar", argv)


SHAPES = {
    "braces": lambda n: "nsg a " + "{" * n + "}" * n,
    "parens": lambda n: "nsg a { inbound { 100 allow r tcp from " + "(" * n + "any" + ")" * n + " to any port 22 } }",
    "define": lambda n: "define network N = " + ", ".join(f"10.{i >> 8 & 255}.{i & 255}.0/24" for i in range(n)),
    "rules": lambda n: (
        "nsg a { inbound { "
        + " ".join(f"{100 + i} allow r{i} tcp from any to any port {i % 65536}" for i in range(n))
        + " } }"
    ),
    "long-name": lambda n: "nsg " + "a" * (1 << 20) + " { }",
    "long-comment": lambda n: "# " + "c" * (1 << 20) + "\nnsg a { }",
    "huge-priority": lambda n: "nsg a { inbound { " + "9" * n + " allow r tcp from any to any port 22 } }",
    "huge-port": lambda n: "nsg a { inbound { 100 allow r tcp from any to any port " + "9" * n + " } }",
    "huge-prefix-length": lambda n: (
        "nsg a { inbound { 100 allow r tcp from 10.0.0.0/" + "9" * n + " to any port 22 } }"
    ),
    "huge-octet": lambda n: "nsg a { inbound { 100 allow r tcp from 10.0.0." + "9" * n + " to any port 22 } }",
    "vnets": lambda n: "vnet v 10.0.0.0/8 { subnet s 10.0.0.0/24 }\n" * n,
}
# CI sizes stay cheap (20,000 rules take ~15 s per command on a loaded 2-core machine: linear, but slow);
# the long profile goes to 20,000 of everything.
SIZES = [100, 1000, 20000] if LONG else [100, 5000]


@fuzz_settings(8, 200)
@given(data=st.data())
def test_deep_nesting_and_huge_lines(data, tmp_path_factory):
    """Structure pushed to extremes: braces and parentheses thousands deep, a 1 MB line, huge numbers."""
    tmp = tmp_path_factory.mktemp("deep")
    shape = data.draw(st.sampled_from(sorted(SHAPES)), label="shape")
    n = data.draw(st.sampled_from(SIZES), label="n")
    if shape in ("rules", "vnets", "define") and not LONG:
        n = min(n, 300)
    path = tmp / "deep.nsg"
    path.write_text(SHAPES[shape](n), encoding="utf-8")
    for argv in policy_commands(str(path), tmp):
        run_cli("grammar-extremes", argv)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_extreme_shape_once(shape, tmp_path):
    """Every shape at a size where it used to break (20,000-digit numbers: int()'s ValueError), one command."""
    path = tmp_path / "x.nsg"
    path.write_text(SHAPES[shape](300 if shape in ("rules", "vnets", "define") else 20000), encoding="utf-8")
    status, _, err = run_cli("grammar-extremes", ["show", str(path)])
    assert status in (0, 2)
