"""The CI examples, pre-commit hooks, --help examples and documented commands are real and work.

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


# ---------------------------------------------------------------- --help examples and documented commands


def _help_texts() -> dict[str, str]:
    """Every command's --help, the tags actions' included."""
    import argparse

    parser = build_parser()
    texts = {}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        texts[f"nsgsolve {name} --help"] = p.format_help()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for action, q in a.choices.items():
                    texts[f"nsgsolve {name} {action} --help"] = q.format_help()
    return texts


def _documented_command_lines() -> list[tuple[str, str]]:
    """(where, command line) for every nsgsolve command in --help texts, the README and docs/."""
    sources = dict(_help_texts())
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        # Only code blocks: prose may start a line with "nsgsolve ".
        blocks = re.findall(r"^```[^\n]*\n(.*?)^```", md.read_text(encoding="utf-8"), re.M | re.S)
        sources[str(md.relative_to(ROOT))] = "\n".join(blocks)
    for nsg in sorted((ROOT / "examples").glob("*.nsg")):  # the commands in their header comments
        sources[str(nsg.relative_to(ROOT))] = "\n".join(
            line.lstrip("# ") for line in nsg.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    found = []
    for where, text in sources.items():
        for line in text.splitlines():
            line = line.strip().removeprefix("$ ")
            if not line.startswith("nsgsolve "):
                continue
            line = line.split(" # ")[0].split(" | ")[0].split(" > ")[0].strip()
            if "[" in line or "..." in line or "`" in line:  # a synopsis or prose, not a command
                continue
            found.append((where, line))
    return found


SHIPPED = re.compile(r"^examples/")
OUTPUT_OPTIONS = ("-o", "--output")


def _argv(line: str) -> list[str]:
    import glob

    argv = []
    for tok in shlex.split(line)[1:]:
        matches = sorted(glob.glob(str(ROOT / tok))) if "*" in tok else []
        argv += [str(Path(m).relative_to(ROOT)) for m in matches] or [tok]  # as the shell does
    return argv


def _runs_on_shipped_files(argv: list[str]) -> bool:
    """True when every file argument is a shipped example (placeholders such as policy.nsg are not)."""
    prev = ""
    for tok in argv:
        looks_like_file = re.search(r"\.(nsg|json|csv)$", tok) and prev not in OUTPUT_OPTIONS
        if looks_like_file and not (SHIPPED.match(tok) and (ROOT / tok).exists()):
            return False
        prev = tok
    return any(SHIPPED.match(t) for t in argv)


DOCUMENTED = _documented_command_lines()


def test_the_documented_commands_were_found():
    lines = {line for _, line in DOCUMENTED}
    assert "nsgsolve query examples/three-tier.nsg \"can any reach prod/db port 1433 tcp\" --exact" in lines
    assert any(where == "nsgsolve tags show --help" for where, _ in DOCUMENTED)
    assert sum(_runs_on_shipped_files(_argv(line)) for _, line in DOCUMENTED) >= 20


def _run_in(tmp_path, monkeypatch, argv: list[str]) -> tuple[int, str]:
    import io

    from nsgsolve.cli import run

    monkeypatch.chdir(tmp_path)  # --output files land here, not in the repository
    if not (tmp_path / "examples").exists():
        (tmp_path / "examples").symlink_to(ROOT / "examples")
    out, err = io.StringIO(), io.StringIO()
    return run(argv, out, err), err.getvalue()


@pytest.mark.parametrize("where,line", DOCUMENTED, ids=[f"{w}: {l}" for w, l in DOCUMENTED])
def test_every_documented_command_parses_and_runs_on_the_shipped_examples(where, line, tmp_path, monkeypatch):
    argv = _argv(line)
    args = build_parser().parse_args(argv)  # SystemExit(2) on an unknown command, option or value
    assert callable(getattr(args, "func", None)), line
    if not _runs_on_shipped_files(argv):
        return  # placeholders (policy.nsg, azuredeploy.json, REV:PATH): parsing is all that can be checked
    status, err = _run_in(tmp_path, monkeypatch, argv)
    # 1 is a finding (lint, check, diff --fail-on); 2 and 3 mean the example does not work as written.
    assert status in (0, 1), f"{where}: {line}\n{err}"
    assert "error" not in err, f"{where}: {line}\n{err}"


def test_an_example_naming_what_the_policy_lacks_would_be_caught(tmp_path, monkeypatch):
    # query --help once asked about 'db-subnet', which examples/three-tier.nsg does not have.
    argv = _argv('nsgsolve query examples/three-tier.nsg "can any reach db-subnet port 1433 tcp"')
    assert _runs_on_shipped_files(argv)
    status, err = _run_in(tmp_path, monkeypatch, argv)
    assert status == 2 and "db-subnet" in err
