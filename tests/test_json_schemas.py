"""The JSON schemas nsgsolve ships: well-formed, one per command, and strict enough to catch a broken document.

Every command's real output is validated in tests/test_golden.py (the cases with a schema)."""

from __future__ import annotations

import copy
import json

import pytest

from golden_cases import CASES
from nsgsolve.reports.json import SCHEMA_VERSIONS, document, schema_id, schema_text
from schemas import NAMES, validate, validator


@pytest.mark.parametrize("name", NAMES)
def test_schema_files_are_valid_json_schema(name):
    schema = json.loads(schema_text(name))
    assert schema["$id"] == f"urn:nsgsolve:schema:{name}"
    if name != "common":
        validator(name)  # checks the schema against its metaschema and resolves every $ref on use
        assert schema["properties"]["schema"] == {"const": schema_id(name)}


def test_every_json_command_has_golden_output_validated():
    validated = {c[2] for c in CASES if c[2]}
    assert validated == set(SCHEMA_VERSIONS)


def test_document_puts_the_schema_first():
    assert list(document("lint", {"findings": []})) == ["schema", "findings"]
    assert document("verify", {})["schema"] == "nsgsolve/verify/1"


def _verify_doc():
    from nsgsolve.semantics.evaluate import Evaluator, Packet
    from nsgsolve.semantics.resolve import resolve
    from nsgsolve import load_policy

    rp = resolve(load_policy("examples/webservers.nsg"))
    return document("verify", Evaluator(rp).evaluate(Packet.parse("tcp", "203.0.113.7", 50000, "10.0.1.4", 443))
                    .to_dict())


@pytest.mark.parametrize("breaks", [
    lambda d: d.pop("schema"),
    lambda d: d.update(schema="nsgsolve/verify/0"),
    lambda d: d.update(decision="allow"),
    lambda d: d["trace"][0].pop("rule"),
    lambda d: d.update(dport=70000),
    lambda d: d.pop("notes"),
])
def test_a_broken_document_fails_validation(breaks, monkeypatch):
    from corpus import ROOT

    monkeypatch.chdir(ROOT)
    doc = _verify_doc()
    validate(doc, "verify")
    bad = copy.deepcopy(doc)
    breaks(bad)
    with pytest.raises(AssertionError):
        validate(bad, "verify")
