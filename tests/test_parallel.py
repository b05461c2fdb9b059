"""fork_map gives the serial answer, item for item, and a worker's failure reaches the caller."""

from __future__ import annotations

import os

import pytest

from nsgsolve import parallel
from nsgsolve.parallel import fork_map

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here: fork_map runs serially")


@needs_fork
@pytest.mark.parametrize("n_workers", [2, 3, 7])
def test_results_are_in_item_order_and_computed_in_several_processes(n_workers):
    items = list(range(200))
    got = fork_map(lambda x: (x * x, os.getpid()), items, n_workers)
    assert [v for v, _ in got] == [x * x for x in items]
    assert len({pid for _, pid in got}) == n_workers
    assert got[0][1] == os.getpid()  # the caller does a share itself


def test_few_items_or_one_worker_run_in_this_process(monkeypatch):
    assert {pid for pid in fork_map(lambda _: os.getpid(), range(parallel.MIN_ITEMS - 1), 4)} == {os.getpid()}
    monkeypatch.setenv("NSGSOLVE_WORKERS", "1")
    assert parallel.workers() == 1
    assert {pid for pid in fork_map(lambda _: os.getpid(), range(500))} == {os.getpid()}


@needs_fork
def test_a_workers_exception_is_raised_in_the_caller():
    def fn(x):
        if x == 101:  # dealt to a child with two workers
            raise ValueError("item 101 is bad")
        return x

    with pytest.raises(ValueError, match="item 101 is bad"):
        fork_map(fn, list(range(200)), 2)
