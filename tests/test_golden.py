"""Golden output: what every command prints on the examples and a few corpus files, pinned in tests/golden/.

A change in what users see fails here with a diff. When the change is intended, regenerate the files
and review them in the commit:

    pytest tests/test_golden.py --update-golden

Only what truly varies between runs is normalised before comparing: timings (check's seconds, JUnit's
times and timestamp), the host name in JUnit, and the absolute path of the shared corpus.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from corpus import CANDIDATES, CORPUS, ROOT
from golden_cases import CASES
from schemas import validate

GOLDEN = ROOT / "tests" / "golden"


def normalise(text: str) -> str:
    if CORPUS is not None:
        text = text.replace(str(CORPUS), "{corpus}")
    text = re.sub(r'"seconds": [0-9.e-]+', '"seconds": 0.0', text)
    text = re.sub(r"(\d+ files?), [0-9.]+s\)", r"\1, 0.00s)", text)
    text = re.sub(r'(time|timestamp|hostname)="[^"]*"', r'\1="*"', text)
    return text


def render_case(argv: list[str]) -> tuple[str, str, int]:
    """Run one command line as a user does: its own process. In one process, Z3's shared context keeps
    state between calls, so a witness could depend on which cases ran before; a fresh process gives
    exactly what the command prints (tested: the same bytes run after run)."""
    # -P: the nsgsolve these tests import (the installed one in CI), not the checkout the cwd holds.
    proc = subprocess.run([sys.executable, "-P", "-m", "nsgsolve", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    return proc.stdout, proc.stderr, proc.returncode


def golden_text(argv: list[str], stdout: str, stderr: str, status: int) -> str:
    shown = " ".join(a if a and not re.search(r"[\s\"']", a) else json.dumps(a) for a in argv)
    body = f"$ nsgsolve {shown}\n[exit {status}]\n--- stdout\n{stdout}"
    if stderr:
        body += f"--- stderr\n{stderr}"
    if any("{corpus}" in a for a in argv):
        # A finding's fingerprint hashes its file's repository-relative path; a corpus file lies outside the
        # repository, so the hash is of its absolute path, which differs from machine to machine. The
        # fingerprint's own tests (tests/reports) pin it on files inside the repository.
        body = re.sub(r'("fingerprint": "|"nsgsolveFinding/v1": "|"primaryLocationLineHash": ")[0-9a-f]{16,32}',
                      r"\1{fingerprint}", body)
    return normalise(body)


def _argv(argv: list[str]) -> list[str]:
    if any("{corpus}" in a for a in argv):
        if CORPUS is None:
            pytest.skip(f"shared corpus not found (looked in {', '.join(map(str, CANDIDATES))}; "
                        "set NSGSOLVE_SHARED)")
        return [a.replace("{corpus}", str(CORPUS)) for a in argv]
    return argv


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch):
    # Paths in the output are as given on the command line: relative to the root, like the docs.
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name,argv,schema", CASES, ids=[c[0] for c in CASES])
def test_output_matches_golden(name: str, argv: list[str], schema: str | None, request):
    stdout, stderr, status = render_case(_argv(argv))
    if schema is not None:  # every JSON document validates against its published schema (docs/json.md)
        docs = [json.loads(line) for line in stdout.splitlines()] if "--flows" in argv else [json.loads(stdout)]
        assert docs
        for doc in docs:
            validate(doc, schema)
    got = golden_text(argv, stdout, stderr, status)
    path = GOLDEN / f"{name}.txt"
    if request.config.getoption("--update-golden"):
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path.relative_to(ROOT)}: run pytest tests/test_golden.py --update-golden"
    want = path.read_text(encoding="utf-8")
    assert got == want, (f"output of 'nsgsolve {' '.join(argv)}' differs from {path.relative_to(ROOT)}; "
                         "if intended, run pytest tests/test_golden.py --update-golden and review the diff")


def test_every_golden_file_has_a_case():
    # A renamed or dropped case must not leave a stale file behind that nothing checks.
    names = {f"{c[0]}.txt" for c in CASES}
    stale = sorted(p.name for p in GOLDEN.glob("*.txt") if p.name not in names)
    assert not stale, f"golden files without a case in tests/golden_cases.py: {stale}"


def test_the_golden_diff_fails_on_a_changed_output():
    # The comparison is not vacuous: one changed character in real output is a difference.
    name, argv, _ = CASES[0]
    stdout, stderr, status = render_case(argv)
    assert golden_text(argv, stdout + "x", stderr, status) != (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")


def test_normalise_touches_only_what_varies():
    assert normalise('"seconds": 0.0199,') == '"seconds": 0.0,'
    assert normalise("3 assertions: 3 passed (1 file, 0.12s)") == "3 assertions: 3 passed (1 file, 0.00s)"
    assert normalise('<testsuite time="0.020" timestamp="2026-01-01T00:00:00" hostname="ci">') == \
        '<testsuite time="*" timestamp="*" hostname="*">'
    assert normalise("priority 100, 0.5 of it") == "priority 100, 0.5 of it"
