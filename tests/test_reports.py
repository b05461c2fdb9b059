"""Reports: each format validated against its published schema, and the identities CI keys history on."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from contract_fixtures import AssertionKind, Protocol, assertion, ports, span, web_policy, with_assertions
from nsgsolve.analyses.contracts import check_policy
from nsgsolve.reports import Report, Status, render
from nsgsolve.reports.contracts import contract_finding
from nsgsolve.reports.sarif import sarif_log

SCHEMAS = Path(__file__).parent / "data" / "schemas"
K = AssertionKind


def _assertions(shift: int = 0):
    return (
        assertion(
            K.NO,
            "no Internet -> WebServers port 22",
            dports=ports(22),
            line=20 + shift,
            name="no-ssh",
            message="SSH must never be open from the Internet",
        ),
        assertion(
            K.ALL, "all Internet -> WebServers port 443 tcp", dports=ports(443), proto=Protocol.TCP, line=21 + shift
        ),
        assertion(
            K.ALL, "all Internet -> WebServers port 8443 tcp", dports=ports(8443), proto=Protocol.TCP, line=22 + shift
        ),
    )


def _undecided(shift: int = 0):
    """A real UNKNOWN: Z3 stopped by a one-step resource limit."""
    a = assertion(K.NO, "no Internet -> WebServers port 25", dports=ports(25), line=23 + shift, name="no-smtp")
    (r,) = check_policy(with_assertions(web_policy(), a), rlimit=1, solver_mode="assumptions")
    return r


def _report(shift: int = 0) -> Report:
    results = check_policy(with_assertions(web_policy(), *_assertions(shift))) + [_undecided(shift)]
    return Report(tuple(contract_finding(r) for r in results), ("web.nsg",), 1, tool_version="0.1.0")


@pytest.fixture(scope="module")
def report() -> Report:
    return _report()


def test_statuses(report):
    assert [f.status for f in report.findings] == [Status.FAIL, Status.PASS, Status.FAIL, Status.UNKNOWN]


def test_sarif_validates_against_the_2_1_0_schema(report):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the [test] extra")
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    log = json.loads(render(report, "sarif"))
    jsonschema.Draft4Validator(schema).validate(log)
    # The schema is permissive; a deliberately broken log must be rejected, or the check above proves nothing.
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)


def test_sarif_has_every_field_github_needs(report):
    log = sarif_log(report)
    assert log["$schema"] and log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "nsgsolve"
    for rule in driver["rules"]:
        assert (
            rule["id"] and rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        )
        assert len(rule["shortDescription"]["text"]) <= 1024
    assert run["automationDetails"]["id"] == "nsgsolve/check/"
    assert run["invocations"][0]["exitCode"] == 1
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["assert/web.nsg/no-ssh",
                                              "assert/web.nsg/all-internet-webservers-port-8443-tcp",
                                              "assert/web.nsg/no-smtp"]
    first = results[0]
    assert first["message"]["text"].startswith("SSH must never be open from the Internet")
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "web.nsg"
    assert loc["region"] == {"startLine": 20, "startColumn": 1, "endLine": 20, "endColumn": 40}
    related = first["relatedLocations"]
    assert [r["physicalLocation"]["region"]["startLine"] for r in related] == [11]  # Allow-SSH
    assert "Allow-SSH" in related[0]["message"]["text"]
    assert "primaryLocationLineHash" in first["partialFingerprints"]
    assert results[2]["level"] == "warning"  # undecided: shown, never silently passed


def test_fingerprints_and_rule_ids_survive_moving_the_assertions():
    a, b = sarif_log(_report()), sarif_log(_report(shift=7))
    ra, rb = a["runs"][0]["results"], b["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in rb] == [27, 29, 30]
    assert [r["ruleId"] for r in ra] == [r["ruleId"] for r in rb]
    assert [r["partialFingerprints"] for r in ra] == [r["partialFingerprints"] for r in rb]
    # ... and a different assertion gets a different fingerprint.
    assert len({json.dumps(r["partialFingerprints"]) for r in ra}) == len(ra)


def test_junit_validates_against_the_xsd(report):
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is in the [test] extra")
    schema = xmlschema.XMLSchema(str(SCHEMAS / "JUnit.xsd"))
    text = render(report, "junit")
    schema.validate(text)
    root = ET.fromstring(text)
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["no-ssh", "all-internet-webservers-port-443-tcp",
                                              "all-internet-webservers-port-8443-tcp", "no-smtp"]
    assert {c.get("classname") for c in cases} == {"web.nsg"}
    failure = cases[0].find("failure")
    assert failure.get("message").startswith("SSH must never be open from the Internet")
    assert "\n" not in failure.get("message")
    assert "destination port  22" in failure.text and "Allow-SSH" in failure.text  # the witness table
    assert cases[1].find("failure") is None and cases[3].find("error") is not None
    # A schema violation is caught (so the validation above is a real check).
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(text.replace(' classname="web.nsg"', "", 1))


def test_junit_names_by_name_not_message():
    base = _assertions()
    reworded = (dataclasses.replace(base[0], message="No SSH from outside, ever"),) + base[1:]
    results = check_policy(with_assertions(web_policy(), *reworded))
    text = render(Report(tuple(contract_finding(r) for r in results), ("web.nsg",), 1), "junit")
    assert 'name="no-ssh"' in text


def test_github_annotations_always_carry_a_line(report):
    lines = render(report, "github").splitlines()
    ann = [l for l in lines if l.startswith("::")]
    assert len(ann) == 3
    pat = re.compile(r"^::(error|warning) file=([^,]+),line=(\d+),endLine=(\d+),col=(\d+),title=([^:]*)::(.*)$")
    parsed = [pat.match(l) for l in ann]
    assert all(parsed), ann
    assert [(m.group(1), m.group(2), m.group(3)) for m in parsed] == [
        ("error", "web.nsg", "20"), ("error", "web.nsg", "22"), ("warning", "web.nsg", "23")]
    assert parsed[0].group(6).startswith("no-ssh%3A ")  # ':' and ',' escaped in properties
    assert "%0A" in parsed[0].group(7) and "\n" not in parsed[0].group(7)


def test_json_lists_results_with_the_same_information(report):
    doc = json.loads(render(report, "json"))
    assert doc["schema"] == "nsgsolve/check/1"
    data = doc["results"]
    assert isinstance(data, list) and len(data) == 4
    first = data[0]
    assert (first["name"], first["status"]) == ("no-ssh", "fail") and "verdict" not in first
    assert first["location"]["line"] == 20 and first["file"] == "web.nsg"
    assert first["witness"]["dport"] == 22 and first["witness"]["decision"] == "Allow"
    assert [s["rule"] for s in first["witness"]["trace"]] == ["Allow-SSH"]
    assert first["responsible"][0]["location"]["line"] == 11
    assert data[3]["status"] == "unknown" and "gave up" in data[3]["summary"] and data[3]["reason"]


def test_text_report(report):
    text = render(report, "text")
    assert text.splitlines()[0].startswith("FAIL    no-ssh  web.nsg:20:1")
    assert "responsible:" in text and "4 assertions: 1 passed, 2 failed, 1 undecided" in text


def test_location_region_fills_gaps():
    from nsgsolve.reports import Location

    assert Location.from_span(span(5, 0)).region == (5, 1, 5, 2)
    assert Location("f", 0).region == (1, 1, 1, 2)


def test_summaries_name_what_was_checked(report):
    lint_run = dataclasses.replace(report, command="lint", exit_code=1)
    assert "findings" in render(lint_run, "github").splitlines()[-1]
    assert "assertion" not in render(lint_run, "text").splitlines()[-1]
    desc = sarif_log(lint_run)["runs"][0]["invocations"][0]["exitCodeDescription"]
    assert desc == "at least one finding failed"
    check_ok = dataclasses.replace(report, exit_code=0)
    assert sarif_log(check_ok)["runs"][0]["invocations"][0]["exitCodeDescription"] == "no assertion failed"


def test_baseline_reports_validate_against_sarif_and_junit_schemas():
    """The baseline goes through the same writers: its SARIF (one rule per control, Checkov and tfsec ids in
    the rule's properties) and JUnit (one test per control and destination) validate as the contracts' do."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the [test] extra")
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is in the [test] extra")
    from nsgsolve.analyses.baseline import check_baseline
    from nsgsolve.importers.loader import load_policy
    from nsgsolve.reports.baseline import baseline_finding

    path = str(SCHEMAS.parents[1] / "golden" / "inputs" / "baseline.nsg")
    results, _ = check_baseline(load_policy(path), ["all"])
    report = Report(tuple(baseline_finding(r, path) for r in results), (path,), 1, tool_version="0.1.0")
    log = json.loads(render(report, "sarif"))
    jsonschema.Draft4Validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())).validate(log)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert len(rules) == len({r.control.id for r in results})
    rdp = next(r for r in rules if r["id"] == "baseline/cis-7.1")
    assert rdp["name"] == "cis-7.1" and rdp["properties"]["checkov"] == ["CKV_AZURE_9"]
    assert all(res["locations"][0]["physicalLocation"]["region"]["startLine"] > 0 for res in log["runs"][0]["results"])
    xmlschema.XMLSchema(str(SCHEMAS / "JUnit.xsd")).validate(render(report, "junit"))
