"""The wheel must carry every subpackage and the grammar: a checkout can hide what an install lacks."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"nsgsolve." + ".".join(p.parent.relative_to(ROOT / "nsgsolve").parts)
               for p in (ROOT / "nsgsolve").rglob("*.py") if p.parent != ROOT / "nsgsolve"}
    on_disk = {p.rstrip(".") for p in on_disk} | {"nsgsolve", "nsgsolve.grammar"}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_grammar_is_package_data():
    names = {p.name for p in resources.files("nsgsolve.grammar").iterdir()}
    assert "nsg.lark" in names
