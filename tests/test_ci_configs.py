"""The CI examples and pre-commit hooks reference real nsgsolve commands with real options.

Every `nsgsolve ...` command line in them is parsed by nsgsolve's own argparse parser (unknown
subcommands, options or --format values exit with status 2). The YAML is loaded with PyYAML when it is
installed; otherwise a careful text check stands in (the test dependencies do not include PyYAML).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nsgsolve.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "github": ROOT / "examples" / "ci" / "github-actions.yml",
    "azure": ROOT / "examples" / "ci" / "azure-pipelines.yml",
    "pre-commit": ROOT / ".pre-commit-hooks.yaml",
}
# Keys whose value is a shell command line (GitHub `run`, Azure `script`, pre-commit `entry`).
COMMAND_KEYS = ("run", "script", "entry")


def _commands(text: str) -> list[str]:
    """The nsgsolve invocations of every command value, split at shell operators."""
    out = []
    for m in re.finditer(rf"^\s*-?\s*(?:{'|'.join(COMMAND_KEYS)}):\s*(.+)$", text, re.M):
        for part in re.split(r"\|\||&&|;|\|", m.group(1)):
            part = part.split(" #")[0].strip()
            if part.startswith("nsgsolve "):
                out.append(part)
    return out


def _load_yaml(text: str):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; the text checks still ran")
    return yaml.safe_load(text)


def _text_check(text: str) -> None:
    """What YAML would reject or misread, checked without a YAML parser."""
    for n, line in enumerate(text.splitlines(), 1):
        assert "\t" not in line, f"line {n}: tab in YAML"
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        assert (len(line) - len(stripped)) % 2 == 0, f"line {n}: odd indentation"
        key = re.match(r"(?:- )?([A-Za-z_][\w.-]*):(\s|$)", stripped)
        value = stripped[key.end():].strip() if key else ""
        # A plain scalar holding ': ' or starting with a YAML indicator must be quoted.
        if value and not value.startswith(("'", '"', "[", "{", "|", ">", "#")):
            assert ": " not in value.split(" #")[0], f"line {n}: unquoted ': ' in {value!r}"
            assert not value.startswith(("*", "&", "!", "%", "@", "`")), f"line {n}: unquoted indicator"


@pytest.mark.parametrize("which", sorted(FILES))
def test_yaml_is_well_formed(which):
    text = FILES[which].read_text(encoding="utf-8")
    _text_check(text)
    try:
        import yaml  # noqa: F401
    except ImportError:
        return
    data = _load_yaml(text)
    if which == "github":
        steps = data["jobs"]["contracts"]["steps"]
        assert any("upload-sarif" in s.get("uses", "") for s in steps)
    elif which == "azure":
        assert any(s.get("task") == "PublishTestResults@2" for s in data["steps"])
    else:
        assert {h["id"] for h in data} == {"nsgsolve-check", "nsgsolve-fmt"}


@pytest.mark.parametrize("which", sorted(FILES))
def test_every_nsgsolve_command_is_real(which):
    text = FILES[which].read_text(encoding="utf-8")
    commands = _commands(text)
    assert commands, f"{FILES[which].name} runs no nsgsolve command"
    parser = build_parser()
    for cmd in commands:
        argv = shlex.split(cmd)[1:]
        if which == "pre-commit":
            argv.append("network/web.nsg")  # pre-commit appends the changed files
        args = parser.parse_args(argv)  # SystemExit(2) on an unknown command, option or value
        assert callable(args.func), cmd


def test_the_ci_examples_use_the_report_formats_they_publish():
    gh = FILES["github"].read_text(encoding="utf-8")
    az = FILES["azure"].read_text(encoding="utf-8")
    assert "--format sarif" in gh and "upload-sarif" in gh and "--format github" in gh
    assert "--format junit" in az and "testResultsFormat: JUnit" in az
    hooks = FILES["pre-commit"].read_text(encoding="utf-8")
    assert "entry: nsgsolve check" in hooks and "entry: nsgsolve fmt --check" in hooks
    assert hooks.count(r"files: \.nsg$") == 2


def test_a_bad_command_would_be_caught():
    # The check above is only worth something if argparse rejects what is not real.
    parser = build_parser()
    for argv in (["chek", "a.nsg"], ["check", "a.nsg", "--format", "xml"], ["check", "a.nsg", "--no-such-option"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
