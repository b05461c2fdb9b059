"""Keep the user's service tag cache out of every test: a cached ServiceTags file must not change results."""

from __future__ import annotations

import pytest
from hypothesis import settings

# `pytest --hypothesis-profile=fuzz` (or NSGSOLVE_FUZZ=long): the long fuzz campaign of tests/fuzz/, whose
# targets take 50x their CI examples; other property tests get more examples too.
settings.register_profile("fuzz", max_examples=1000, deadline=None)


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.txt from the current output instead of comparing (review the diff)")


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    # A ServiceTags file cached by a developer must not change what these tests see.
    monkeypatch.setenv("NSGSOLVE_DATA_DIR", str(tmp_path / "nsgsolve-data"))
