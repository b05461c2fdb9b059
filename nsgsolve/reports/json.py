"""JSON output: every command's document carries ``"schema": "nsgsolve/<command>/<version>"``.

The version is bumped when a key is removed or changes meaning (adding keys keeps it); docs/json.md
describes every document and nsgsolve/reports/schemas/ holds a JSON Schema for each, which the tests
validate every command's output against. ``check``'s report (the shared :class:`Report`) is one such
document: ``{"schema", "results": [...]}``, one result per finding.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # only named: `show --json` and `query --json` need no finding model
    from nsgsolve.reports.findings import Report

# One version per command; other modules name their schema through this table, never a literal.
SCHEMA_VERSIONS = {"verify": 1, "query": 1, "lint": 1, "check": 1, "diff": 1, "show": 1, "replay": 1}


def schema_id(command: str) -> str:
    return f"nsgsolve/{command}/{SCHEMA_VERSIONS[command]}"


def document(command: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as ``command``'s JSON document: the schema first, so a reader sees it at once."""
    return {"schema": schema_id(command), **payload}


def dumps(command: str, payload: dict[str, Any], indent: int | None = 2) -> str:
    return json.dumps(document(command, payload), indent=indent) + "\n"


def item_text(obj: Any) -> str:
    """``obj`` as :func:`dumps` writes an item of a document's top-level list, so that processes can each write
    their part of one document and the caller join them (:func:`dumps_items`): the indented encoder is pure
    Python, the costliest part of a report of many files' findings."""
    return "    " + json.dumps(obj, indent=2).replace("\n", "\n    ")


def dumps_items(command: str, key: str, items: list[str]) -> Iterator[str]:
    """``dumps(command, {key: [...]})`` of list items already written by :func:`item_text`, in pieces to write one
    after another (5,000 files' findings joined in one string would double the report in memory)."""
    if not items:
        yield dumps(command, {key: []})
        return
    head, tail = dumps(command, {key: [None]}).rsplit("null", 1)
    yield head.rstrip(" ")
    for i, item in enumerate(items):
        yield item if i == 0 else ",\n" + item
    yield tail


def result_dict(f) -> dict[str, Any]:
    d = {
        "rule_id": f.rule_id,
        "name": f.name,
        "status": f.status.value,
        "title": f.title,
        "location": f.location.to_dict(),
        "related": [r.to_dict() for r in f.related],
        "fingerprint": f.fingerprint,
    }
    d.update(f.data)
    return d


def render_json(report: Report) -> str:
    key = "results" if report.command == "check" else "findings"
    return dumps(report.command, {key: [result_dict(f) for f in report.findings]})


def schema_text(name: str) -> str:
    """The JSON Schema of ``name`` (a command, or ``common`` for the shapes they share), shipped as package
    data in nsgsolve/reports/schemas/."""
    from importlib.resources import files

    return (files("nsgsolve.reports") / "schemas" / f"{name}.json").read_text(encoding="utf-8")
