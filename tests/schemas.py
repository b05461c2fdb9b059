"""Validate nsgsolve's JSON documents against the schemas it ships (nsgsolve/reports/schemas/)."""

from __future__ import annotations

import json
from functools import lru_cache

import pytest

from nsgsolve.reports.json import SCHEMA_VERSIONS, schema_text

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the [test] extra")
referencing = pytest.importorskip("referencing", reason="referencing comes with jsonschema")

NAMES = ("common", *SCHEMA_VERSIONS)


@lru_cache(maxsize=None)
def registry():
    from referencing import Registry, Resource

    resources = [(f"urn:nsgsolve:schema:{n}", Resource.from_contents(json.loads(schema_text(n)))) for n in NAMES]
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def validator(command: str):
    schema = json.loads(schema_text(command))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=registry())


def validate(doc: object, command: str) -> None:
    errors = sorted(validator(command).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])
