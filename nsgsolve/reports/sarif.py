"""SARIF 2.1.0 that GitHub code scanning accepts (engineering-notes §A3).

* one run (GitHub rejects several runs of one tool in one category), ``runAutomationDetails.id`` =
  ``<category>/`` so each workflow keeps its own alerts;
* ``driver.rules[]``: one descriptor per finding id with ``shortDescription``, ``fullDescription`` and
  ``help`` (all required by GitHub); findings that share an id share its descriptor, so an id must name
  one claim (an assertion's id names its file: ``assert/<file>/<name>``);
* a result per failing (or undecided) finding, its first location a full region at the claim, related
  locations at the rules responsible, the witness path as a ``codeFlow``;
* ``partialFingerprints`` from a hash of (ruleId, name, file), not of the line, so moving an assertion or
  editing lines above it does not close one alert and open another, and two files' findings never merge;
* ``invocations[].exitCode`` with its description, as conftest does.
"""

from __future__ import annotations

import json
from typing import Any

from nsgsolve.reports.findings import Finding, Location, Report, Status, relative_uri

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
MAX_LOCATIONS = 10  # GitHub keeps at most 10 related locations per result usefully; more is noise
MAX_TEXT = 1000  # GitHub truncates shortDescription above 1024 characters


def _physical(loc: Location) -> dict[str, Any]:
    line, col, end_line, end_col = loc.region
    return {"artifactLocation": {"uri": relative_uri(loc.file)},
            "region": {"startLine": line, "startColumn": col, "endLine": end_line, "endColumn": end_col}}


def _location(loc: Location, ident: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"physicalLocation": _physical(loc)}
    if ident is not None:
        d["id"] = ident
    if loc.label:
        d["message"] = {"text": loc.label}
    return d


def _rule(f: Finding) -> dict[str, Any]:
    short = (f.rule_short or f.title)[:MAX_TEXT]
    return {
        "id": f.rule_id,
        "name": f.rule_name or f.name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": (f.rule_full or short)[:MAX_TEXT * 4]},
        "help": {"text": f.rule_help or f.rule_full or short},
        "defaultConfiguration": {"level": f.level},
        "properties": {"tags": [t for t in ("nsgsolve", f.category) if t], **f.rule_properties},
    }


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    message = f.title if f.title.endswith(".") else f.title + "."
    if f.detail:
        message += "\n" + f.detail
    res: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": f.level if f.status is Status.FAIL else "warning",
        "kind": "fail" if f.status is Status.FAIL else "open",
        "message": {"text": message},
        "locations": [_location(f.location)],
        "partialFingerprints": {"primaryLocationLineHash": f"{f.fingerprint[:16]}:1",
                                "nsgsolveFinding/v1": f.fingerprint},
        "properties": {"status": f.status.value, "name": f.name},
    }
    related = [r for r in f.related if r.has_source][:MAX_LOCATIONS]
    if related:
        res["relatedLocations"] = [_location(r, i) for i, r in enumerate(related)]
    flow = [s for s in f.flow if s.has_source]
    if flow:
        res["codeFlows"] = [{"threadFlows": [{"locations": [
            {"location": _location(s), "executionOrder": i} for i, s in enumerate(flow)]}]}]
    return res


def sarif_log(report: Report) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for f in report.findings:
        if f.rule_id not in index:
            index[f.rule_id] = len(rules)
            rules.append(_rule(f))
    results = [_result(f, index[f.rule_id]) for f in report.findings if f.status is not Status.PASS]
    driver: dict[str, Any] = {"name": "nsgsolve", "rules": rules}
    if report.tool_version:
        driver["version"] = report.tool_version
        driver["semanticVersion"] = report.tool_version
    category = report.category.strip("/") or "nsgsolve"
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "automationDetails": {"id": f"{category}/"},
            "invocations": [{
                "executionSuccessful": report.exit_code in (0, 1),
                "exitCode": report.exit_code,
                "exitCodeDescription": report.exit_description,
                "commandLine": f"nsgsolve {report.command} " + " ".join(relative_uri(p) for p in report.files),
            }],
            "artifacts": [{"location": {"uri": relative_uri(p)}} for p in report.files],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def render_sarif(report: Report) -> str:
    return json.dumps(sarif_log(report), indent=2) + "\n"
