"""Keep the user's service tag cache out of every test: a cached ServiceTags file must not change results."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    # A ServiceTags file cached by a developer must not change what these tests see.
    monkeypatch.setenv("NSGSOLVE_DATA_DIR", str(tmp_path / "nsgsolve-data"))
