"""Fuzz targets run serially in-process: one worker (no forks per input) and counts written at the end."""

from __future__ import annotations

import os

import pytest

from fuzz_harness import CODES, RUNS, SECONDS, STATUSES


@pytest.fixture(autouse=True)
def _serial(monkeypatch):
    monkeypatch.setenv("NSGSOLVE_WORKERS", "1")


def pytest_sessionfinish(session, exitstatus):
    # NSGSOLVE_FUZZ_REPORT=FILE writes the per-target figures that tests/fuzz/README.md reports.
    out = os.environ.get("NSGSOLVE_FUZZ_REPORT")
    if out and RUNS:
        with open(out, "w", encoding="utf-8") as f:
            for target in sorted(RUNS):
                by_status = {s: n for (t, s), n in STATUSES.items() if t == target}
                secs = {c: round(v, 2) for (t, c), v in SECONDS.items() if t == target}
                f.write(f"{target}\t{RUNS[target]}\t{dict(sorted(by_status.items()))}\t{secs}\t"
                        f"{' '.join(sorted(CODES[target]))}\n")
