"""`nsgsolve check` end to end: parsed assertions, exit statuses, --format/--output, the shipped examples."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nsgsolve.cli import run
from nsgsolve.importers.loader import load_policy

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.nsg"))

POLICY = """\
vnet hub 10.0.0.0/16 {
  subnet web 10.0.1.0/24 nsg web-nsg
}
asg WebServers
nic web1 in hub/web ip 10.0.1.4 asg WebServers
nsg web-nsg {
  inbound {
    100 allow Allow-Web tcp from Internet to WebServers port 80, 443
    200 allow Allow-SSH tcp from Internet to any port 22
  }
}
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, body: str, name: str = "p.nsg") -> str:
    p = tmp_path / name
    p.write_text(POLICY + body, encoding="utf-8")
    return str(p)


def test_the_issue_examples_parse_as_written(tmp_path):
    f = write(tmp_path, """\
assert no Internet -> WebServers port 22
assert all Internet -> WebServers port 443 tcp
assert some VirtualNetwork -> web1 port 1433 tcp
assert only Internet -> WebServers port 80,443 tcp
assert clean
assert no shadowed
assert no-ssh: no Internet -> WebServers port 22 "SSH must never be open from the Internet"
assert no any -> any port 3389 except from 10.1.0.0/24
""")
    p = load_policy(f)
    kinds = [a.kind.value for a in p.assertions]
    assert kinds == ["no", "all", "some", "only", "clean", "no shadowed", "no", "no"]
    named = p.assertions[6]
    assert (named.name, named.explicit_name, named.message) == (
        "no-ssh",
        True,
        "SSH must never be open from the Internet",
    )
    assert named.span.line == len(POLICY.splitlines()) + 7
    assert p.assertions[7].excepts[0].sources is not None and p.assertions[7].excepts[0].destinations is None
    assert not p.assertions[0].explicit_name and p.assertions[0].name == "no-internet-asg-webservers-port-22"


def test_derived_names_survive_reformatting(tmp_path):
    a = load_policy(write(tmp_path, "assert no * -> WebServers port 22,80 TCP\n", "a.nsg"))
    b = load_policy(write(tmp_path, "assert   no any ->  WebServers  port 22, 80 tcp  # same claim\n", "b.nsg"))
    assert a.assertions[0].name == b.assertions[0].name


def test_exit_0_when_all_hold(tmp_path):
    code, out, _ = cli("check", write(tmp_path, "assert all Internet -> WebServers port 443 tcp\n"))
    assert code == 0 and "1 passed, 0 failed" in out


def test_exit_1_with_witness_trace_and_responsible_rule(tmp_path):
    f = write(tmp_path, 'assert no-ssh: no Internet -> WebServers port 22 "no SSH from outside"\n')
    code, out, _ = cli("check", f)
    assert code == 1
    line = len(POLICY.splitlines()) + 1
    assert f"FAIL    no-ssh  {f}:{line}:1" in out
    assert "witness (allowed): Tcp" in out and "-> 10.0.1.4:22" in out
    assert "Allow by Allow-SSH (priority 200)" in out  # the trace
    assert f"allow rule Allow-SSH (priority 200) in nsg web-nsg on subnet hub/web  {f}:9:" in out


def test_exit_2_for_invalid_input(tmp_path):
    code, _, err = cli("check", write(tmp_path, "assert no Internet -> NoSuchThing port 22\n"))
    assert code == 2 and "NoSuchThing" in err
    code, _, err = cli("check", write(tmp_path, "assert no Internet -> WebServers except\n"))
    assert code == 2 and "E704" in err
    code, _, err = cli(
        "check", write(tmp_path, "assert a: no Internet -> WebServers\nassert a: all Internet -> WebServers\n")
    )
    assert code == 2 and "E701" in err


def test_exit_2_when_there_is_nothing_to_check(tmp_path):
    code, _, err = cli("check", write(tmp_path, ""))
    assert code == 2 and "E703" in err and "has no assertions" in err


def test_allow_empty_for_pre_commit(tmp_path):
    code, out, _ = cli("check", "--allow-empty", write(tmp_path, ""))
    assert code == 0 and "no assertions" in out


def test_output_creates_the_report_folder(tmp_path):
    target = tmp_path / "CodeAnalysisLogs" / "nsgsolve.sarif"
    code, _, _ = cli("check", write(tmp_path, "assert all Internet -> WebServers port 443 tcp\n"), "--format", "sarif",
                     "--output", str(target))
    assert code == 0 and target.exists()


def test_clean_and_no_shadowed(tmp_path):
    code, out, _ = cli("check", write(tmp_path, "assert clean\nassert no shadowed\n"))
    assert code == 0 and "2 passed" in out
    shadowed = POLICY.replace(
        "    200 allow Allow-SSH",
        "    150 deny Deny-Web tcp from Internet to WebServers port 443\n    200 allow Allow-SSH",
    )
    p = tmp_path / "s.nsg"
    p.write_text(shadowed + "assert clean\n", encoding="utf-8")
    code, out, _ = cli("check", str(p))
    assert code == 1 and "NSG001/shadowed-rule" in out and "Deny-Web" in out


def test_exit_3_when_undecided_and_nothing_fails(tmp_path, monkeypatch):
    # The solver giving up is undecided, never a pass (this stands in for Z3 by raising what z3util.check raises).
    from nsgsolve.smt.encode import PolicySolver
    from nsgsolve.errors import SolverUnknown

    def give_up(self, constraint, allowed=None, what="a question", decision=None):
        raise SolverUnknown(what, "max. resource limit exceeded")

    with monkeypatch.context() as m:
        m.setattr(PolicySolver, "find", give_up)
        code, out, _ = cli("check", write(tmp_path, "assert no Internet -> WebServers port 25\n"))
    assert code == 3 and "gave up" in out and "resource limit" in out
    # A failure outranks an undecided assertion: the build is red for a definite reason.
    calls = []

    def first_gives_up(self, constraint, allowed=None, what="a question", decision=None):
        calls.append(what)
        if len(calls) == 1:
            raise SolverUnknown(what, "max. resource limit exceeded")
        return original(self, constraint, allowed, what, decision)

    original = PolicySolver.find
    with monkeypatch.context() as m:
        m.setattr(PolicySolver, "find", first_gives_up)
        code, out, _ = cli("check", write(tmp_path, "assert no Internet -> WebServers port 25\n"
                                                    "assert no Internet -> WebServers port 22\n"))
    assert code == 1 and "UNKNOWN" in out and "FAIL" in out


@pytest.mark.parametrize("fmt", ["json", "junit", "sarif", "github"])
def test_formats_to_output_file_keep_text_on_stdout(tmp_path, fmt):
    f = write(tmp_path, "assert no Internet -> WebServers port 22\n")
    target = tmp_path / f"report.{fmt}"
    code, out, _ = cli("check", f, "--format", fmt, "--output", str(target))
    assert code == 1
    body = target.read_text(encoding="utf-8")
    assert "FAIL" in out  # the log still says what failed
    if fmt in ("json", "sarif"):
        json.loads(body)
    elif fmt == "junit":
        assert body.startswith("<?xml") and "<testsuites>" in body
    else:
        assert body.startswith("::error file=")


def test_sarif_category_option(tmp_path):
    f = write(tmp_path, "assert no Internet -> WebServers port 22\n")
    code, out, _ = cli("check", f, "--format", "sarif", "--category", "nsg/prod")
    assert json.loads(out)["runs"][0]["automationDetails"]["id"] == "nsg/prod/"


def test_progress_only_on_a_terminal(tmp_path):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    f = write(tmp_path, "assert no Internet -> WebServers port 22\nassert all Internet -> WebServers port 443 tcp\n")
    err = Tty()
    run(["check", f], io.StringIO(), err)
    assert "[2/2]" in err.getvalue()
    _, _, plain = cli("check", f)
    assert "[1/2]" not in plain


def test_examples_carry_assertions_that_pass():
    assert EXAMPLES, "examples/*.nsg are missing"
    for path in EXAMPLES:
        assert load_policy(path).assertions, f"{path} has no assertions"
    code, out, err = cli("check", *EXAMPLES)
    assert code == 0, out + err
    assert " 0 failed, 0 undecided" in out


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        run(["check", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--format sarif" in text and "exit status" in text


@pytest.mark.parametrize("body, says", [
    ('assert no Internet -> web1 tcp except port 70000\n', "port 70000 is outside 0-65535"),
    ('assert no Internet -> web1 port 99999\n', "port 99999 is outside 0-65535"),
    ('assert only Internet -> web1 port 444-443 tcp\n', "port range 444-443 is reversed"),
])
def test_assertion_ports_are_validated_like_a_rules(tmp_path, body, says):
    # Z3 ports are 16-bit: an unchecked 70000 wrapped to 4464, so `except port 70000` excepted port 4464.
    code, out, err = cli("check", write(tmp_path, body))
    assert code == 2 and "E403" in err and says in err, (code, out, err)


def test_sarif_keeps_equally_named_assertions_of_two_files_apart(tmp_path, monkeypatch):
    # Both files have a `no-ssh` and a derived `clean`: GitHub keys alerts on ruleId + fingerprints, so the
    # two files' results must differ in both, and each result's rule must describe its own file's claim.
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the [test] extra")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shadowed = "    150 deny Deny-Web tcp from Internet to WebServers port 443\n    200 allow Allow-SSH"
    (tmp_path / "a" / "p.nsg").write_text(POLICY.replace("    200 allow Allow-SSH", shadowed)
                                          + 'assert no-ssh: no Internet -> web1 port 22 "A: no SSH to web1"\n'
                                          "assert clean\n", encoding="utf-8")
    (tmp_path / "b" / "p.nsg").write_text(POLICY.replace("    200 allow Allow-SSH", shadowed)
                                          + 'assert no-ssh: no Internet -> any port 22 "B: no SSH anywhere"\n'
                                          "assert clean\n", encoding="utf-8")
    code, out, _ = cli("check", "a/p.nsg", "./b/p.nsg", "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    schema = json.loads((ROOT / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)
    (run,) = log["runs"]
    rules, results = run["tool"]["driver"]["rules"], run["results"]
    assert [r["ruleId"] for r in results] == ["assert/a/p.nsg/no-ssh", "assert/a/p.nsg/clean",
                                              "assert/b/p.nsg/no-ssh", "assert/b/p.nsg/clean"]
    assert len({r["id"] for r in rules}) == len(rules) == 4
    for res in results:
        rule = rules[res["ruleIndex"]]
        assert rule["id"] == res["ruleId"]
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert res["ruleId"].startswith(f"assert/{uri}/")
    descriptions = {r["id"]: r["shortDescription"]["text"] for r in rules}
    assert descriptions["assert/a/p.nsg/no-ssh"] == "A: no SSH to web1"
    assert descriptions["assert/b/p.nsg/no-ssh"] == "B: no SSH anywhere"
    prints = [json.dumps(r["partialFingerprints"], sort_keys=True) for r in results]
    assert len(set(prints)) == 4


def test_derived_names_ignore_list_order_but_explicit_names_stay(tmp_path):
    body = ("assert no Internet -> WebServers, web1 port 443,80,81 tcp except from 203.0.113.0/24 except port 22\n"
            "assert no Internet -> web1, WebServers port 80-81, 443 tcp except port 22 except from 203.0.113.0/24\n"
            "assert only Internet -> WebServers port 80, 443\n"
            "assert only Internet -> WebServers port 443,80\n"
            'assert keep-443-80: only Internet -> WebServers port 443,80\n')
    p = load_policy(write(tmp_path, body))
    names = [a.name for a in p.assertions]
    assert names[0] == names[1]
    assert names[0].startswith("no-internet-asg-webservers-web1-port-80-81-443-tcp")  # long: shortened, hashed
    assert names[2] == names[3] == "only-internet-asg-webservers-port-80-443"
    assert names[4] == "keep-443-80"


def test_undecided_names_the_limit_and_the_option(tmp_path):
    f = write(tmp_path, "assert no Internet -> WebServers port 22\n")
    code, out, _ = cli("check", f, "--rlimit", "1")
    assert code == 3
    assert (
        "resource limit of 1 step per question" in out
        and "raise it with --solver-limit N, e.g. --solver-limit 10" in out
    )


def test_many_files_give_one_report_whatever_the_number_of_workers(tmp_path):
    # Files after the first are checked in forked lanes (nsgsolve.parallel.fork_lanes): the report, witnesses
    # included, must not depend on how many cores there are. Fresh processes, as the solver's context keeps
    # the history a witness depends on.
    import os
    import re
    import subprocess
    import sys

    paths = [write(tmp_path, f"assert no Internet -> web1 port {17 + k}-22\nassert all Internet -> web1 port 443 tcp\n",
                   name=f"p{k}.nsg") for k in range(5)]
    reports = []
    for n in ("1", "2", "3"):
        proc = subprocess.run([sys.executable, "-m", "nsgsolve", "check", *paths, "--format", "json"],
                              capture_output=True, text=True, env={**os.environ, "NSGSOLVE_WORKERS": n})
        reports.append((proc.returncode, re.sub(r'"(seconds|elapsed)": [0-9.]+', "", proc.stdout)))
    assert reports[0][0] == 1 and reports[0] == reports[1] == reports[2]
    assert reports[0][1].count('"status": "fail"') == 5


def test_many_files_show_a_bar_of_files_on_a_terminal_and_stop_at_the_first_bad_file(tmp_path):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    good = [write(tmp_path, "assert no Internet -> web1 port 22\n", name=f"g{k}.nsg") for k in range(3)]
    err = Tty()
    run(["check", *good], io.StringIO(), err)
    assert "3/3 files" in err.getvalue()
    bad = tmp_path / "bad.nsg"
    bad.write_text("nsg {\n", encoding="utf-8")
    code, out, err2 = cli("check", good[0], str(bad), good[1])
    assert code == 2 and "bad.nsg:" in err2 and out == ""
