"""Coverage-guided fuzzing with atheris, for long local campaigns (not run in CI; see README.md).

    pip install atheris            # needs a Python with libFuzzer support (Linux, CPython 3.8-3.11)
    python tests/fuzz/atheris_harness.py --target=json -max_total_time=3600 corpus-json/

``--target`` picks the input kind (nsg, json, query, flows, servicetags, terraform); the remaining arguments
go to libFuzzer (-max_total_time, -jobs, a corpus directory to grow; seed it with examples/ and
../shared/corpus/). Each input is written to a temporary file and run through the commands of the
in-process harness; a broken promise (exit status outside 0-3, a traceback, E012/E013, an undocumented code,
no answer within NSGSOLVE_FUZZ_TIME_LIMIT seconds) raises, which libFuzzer records as a crash with the input.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("NSGSOLVE_WORKERS", "1")
os.environ.setdefault("NSGSOLVE_DATA_DIR", tempfile.mkdtemp(prefix="nsgsolve-atheris-"))

TARGET = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--target=")), "nsg")
SUFFIX = {"nsg": ".nsg", "json": ".json", "servicetags": ".json", "flows": ".csv", "terraform": ".tf",
          "query": ".txt"}[TARGET]
WORK = Path(tempfile.mkdtemp(prefix="nsgsolve-atheris-in-"))
POLICY = str(Path(__file__).resolve().parents[2] / "examples" / "webservers.nsg")


def test_one_input(data: bytes) -> None:
    from fuzz_harness import policy_commands, run_cli

    path = WORK / f"input{SUFFIX}"
    path.write_bytes(data)
    if TARGET in ("nsg", "json", "terraform"):
        runs = policy_commands(str(path), WORK)
    elif TARGET == "servicetags":
        runs = [["tags", "show", "Storage", "--service-tags", str(path)], ["show", POLICY, "--service-tags", str(path)]]
    elif TARGET == "flows":
        runs = [["verify", POLICY, "--flows", str(path)]]
    else:
        runs = [["query", POLICY, data.decode("utf-8", "replace")]]
    for argv in runs:
        run_cli(f"atheris-{TARGET}", argv)


def main() -> None:
    import atheris

    with atheris.instrument_imports():
        import nsgsolve.cli  # noqa: F401  (instrumented: coverage guides the mutations)
    atheris.Setup([a for a in sys.argv if not a.startswith("--target=")], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
