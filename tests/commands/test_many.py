"""Many policy files in one call (nsgsolve/commands/many.py): ``lint`` of several .nsg files and of directories,
each file a policy of its own, spread over forked lanes, one report in argument order; and ``check`` of a
directory. The report must be the one a file-by-file run gives, whatever the number of cores."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from nsgsolve.cli import run as cli_run

from schemas import validate

HEAD = """
vnet v 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg n
}
nic web1 in v/web ip 10.0.1.4
"""
# NSG001 error: C's packets are partly decided the other way by A.
SHADOWED = HEAD + """
nsg n {
  inbound {
    100 deny  A tcp from any to any port 80-85
    110 allow B tcp from any to any port 86-90
    120 allow C tcp from any to 10.0.1.0/24 port 80-90
  }
}
assert no Internet -> web1 port 86
"""
# NSG002 warning only: exit status 0.
REDUNDANT = HEAD + """
nsg n {
  inbound {
    100 deny  A tcp from any to any port 80
    110 deny  B tcp from any to any port 80
  }
}
"""
CLEAN = HEAD + """
nsg n {
  inbound {
    100 allow A tcp from any to any port 443
  }
}
assert no Internet -> web1 port 22
"""


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def cli(*argv: str, err: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), err if err is not None else io.StringIO()
    return cli_run(list(argv), out, err), out.getvalue(), err.getvalue()


@pytest.fixture()
def files(tmp_path: Path) -> list[str]:
    """Five policies in a directory tree (one of them in a subdirectory, one in a hidden one, never read)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.nsg").write_text("nsg {\n")
    (tmp_path / "notes.txt").write_text("not a policy")
    out = []
    for name, text in (("a.nsg", SHADOWED), ("b.nsg", REDUNDANT), ("c.nsg", CLEAN), ("sub/d.nsg", SHADOWED),
                       ("sub/e.nsg", REDUNDANT)):
        (tmp_path / name).write_text(text)
        out.append(str(tmp_path / name))
    return out


def _body(text: str) -> list[str]:
    return text.splitlines()[:-1]


def test_lint_of_several_files_is_each_file_linted_on_its_own_in_argument_order(files):
    status, out, err = cli("lint", *files)
    assert status == 1 and err == ""
    alone = [cli("lint", f) for f in files]
    assert _body(out) == [line for _, o, _ in alone for line in _body(o)]
    assert out.splitlines()[-1] == "6 findings in 5 NSGs of 5 files: 2 errors, 4 warnings"
    assert f"{files[3]}:11:5: error[NSG001/shadowed-rule]" in out
    # Warnings only: 0, as for one file.
    assert cli("lint", files[1], files[2])[0] == 0
    assert cli("lint", files[2], files[2])[1].splitlines()[-1] == "no findings in 2 NSGs of 2 files"


def test_a_directory_stands_for_the_nsg_files_below_it(files, tmp_path):
    status, out, _ = cli("lint", str(tmp_path))
    assert (status, out) == cli("lint", *sorted(files))[:2]
    status, out, _ = cli("check", str(tmp_path / "sub"), files[2])
    assert status == 1 and "2 assertions: 1 passed, 1 failed" in out
    (tmp_path / "empty").mkdir()
    status, _, err = cli("lint", str(tmp_path / "empty"))
    assert status == 2 and "no .nsg files" in err


def test_the_same_report_whatever_the_number_of_workers(files, monkeypatch):
    reports = []
    for n in ("1", "2", "3"):
        monkeypatch.setenv("NSGSOLVE_WORKERS", n)
        reports.append(cli("lint", *files, "--format", "json"))
    assert reports[0] == reports[1] == reports[2]


def test_json_sarif_junit_and_github_name_each_finding_s_file(files):
    status, out, _ = cli("lint", *files, "--json")
    doc = json.loads(out)
    validate(doc, "lint")
    assert status == 1
    assert [f["location"]["file"] for f in doc["findings"]] == [files[i] for i in (0, 1, 1, 3, 4, 4)]
    run = json.loads(cli("lint", *files, "--format", "sarif")[1])["runs"][0]
    assert len(run["artifacts"]) == 5
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]]
    assert {Path(u).name for u in uris} == {"a.nsg", "b.nsg", "d.nsg", "e.nsg"}
    # a.nsg and sub/d.nsg (b.nsg and sub/e.nsg) hold the same NSG and rules: the file keeps their alerts apart.
    assert len({r["partialFingerprints"]["nsgsolveFinding/v1"] for r in run["results"]}) == 6
    junit = cli("lint", *files, "--format", "junit")[1]
    assert junit.count("<testsuite ") == 5 and junit.count("<failure") == 6
    github = cli("lint", *files, "--format", "github")[1]
    assert "file=" in github and "a.nsg" in github and "e.nsg" in github


def test_bad_files_stop_the_run_with_every_bad_file_located_and_no_report(files, tmp_path):
    bad1, bad2 = tmp_path / "bad1.nsg", tmp_path / "bad2.nsg"
    bad1.write_text("nsg {\n")
    bad2.write_text(HEAD + "nsg n {\n  inbound {\n    100 allow A tcp from nowhere to any\n  }\n}\n"
                    "assert no any -> web1 port 22\n")
    for command in ("lint", "check"):
        status, out, err = cli(command, files[0], str(bad1), files[1], str(bad2))
        assert status == 2 and out == "", command
        assert f"{bad1}:1:5: error[E101]" in err and f"{bad2}:8:26: error[E301]" in err and "Traceback" not in err


def test_one_policy_options_are_refused_with_several_files(files, tmp_path):
    for option in (("--nsg", "n"), ("--rule", "C"), ("--flow-logs", "logs")):
        status, _, err = cli("lint", *files[:2], *option)
        assert status == 2 and f"{option[0]} applies to one policy" in err
    # JSON files given together stay one policy; a .nsg file among them is still the mixing error.
    (tmp_path / "t.json").write_text("{}")
    status, _, err = cli("lint", files[0], str(tmp_path / "t.json"))
    assert status == 2 and "error[E003]: cannot mix" in err


def test_a_bar_of_files_on_a_terminal_only(files):
    err = Tty()
    cli("lint", *files, err=err)
    assert "lint [" in err.getvalue() and "5/5 files" in err.getvalue()
    assert cli("lint", *files)[2] == ""


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: (st.lists(inner, max_size=3)
                                    | st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=10)


@given(st.lists(_JSON, max_size=4))
def test_json_items_written_apart_join_into_the_document_written_at_once(items):
    # Each worker writes its findings' JSON items (reports.json.item_text); the caller joins them.
    from nsgsolve.reports.json import dumps, dumps_items, item_text

    assert "".join(dumps_items("lint", "findings", [item_text(x) for x in items])) == dumps("lint", {"findings": items})
