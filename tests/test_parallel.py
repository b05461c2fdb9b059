"""fork_map gives the serial answer, item for item, and a worker's failure reaches the caller."""

from __future__ import annotations

import copyreg
import os
import pickle

import pytest

from nsgsolve import parallel
from nsgsolve.parallel import fork_map

class _ContextualError(Exception):
    pass


def _with_context(args, context):
    e = _ContextualError(*args)
    e.__context__ = context
    return e


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


@needs_fork
def test_the_first_failing_item_is_raised_as_a_serial_run_would():
    def fn(x):
        if x in (7, 12, 40):  # 12 in the caller's share, 7 and 40 in workers' with three processes
            raise ValueError(f"item {x} is bad")
        return x

    with pytest.raises(ValueError, match="item 7 is bad"):
        fork_map(fn, list(range(90)), 3, min_items=2)


@needs_fork
def test_progress_counts_every_processes_items_in_the_caller():
    seen = []
    got = fork_map(lambda x: (x, os.getpid()), list(range(100)), 2, min_items=2, progress=seen.append)
    assert [v for v, _ in got] == list(range(100))
    assert seen and seen == sorted(seen) and seen[-1] == 100 and {p for _, p in got} != {os.getpid()}
    assert all(isinstance(k, int) for k in seen)
    serial = []
    fork_map(lambda x: x, list(range(5)), 1, progress=serial.append)
    assert serial == [1, 2, 3, 4, 5]


@needs_fork
@pytest.mark.parametrize("n_workers", [1, 2, 5])
def test_lanes_give_the_same_results_whatever_the_number_of_workers(n_workers):
    # Each result records what its process computed before it: the state an item may depend on.
    history: list[int] = []

    def fn(x):
        history.append(x)
        return tuple(history)

    items = list(range(40))
    got = parallel.fork_lanes(fn, items, n_workers, lanes=6)
    assert got == [tuple(range(x % 6, x + 1, 6)) for x in items]
    assert history == []  # every lane ran in a child


@needs_fork
def test_lanes_raise_the_first_failing_item_and_count_progress():
    seen = []

    def fn(x):
        if x in (9, 14):
            raise ValueError(f"item {x} is bad")
        return x

    with pytest.raises(ValueError, match="item 9 is bad"):
        parallel.fork_lanes(fn, list(range(30)), 2, lanes=4)
    assert parallel.fork_lanes(lambda x: x, list(range(30)), 2, lanes=4, progress=seen.append) == list(range(30))
    assert seen[-1] == 30 and seen == sorted(seen)


@needs_fork
def test_a_workers_own_fork_map_runs_serially_in_it():
    def fn(x):
        return {pid for pid in fork_map(lambda _: os.getpid(), list(range(100)), 2)}

    assert all(len(pids) == 1 for pids in parallel.fork_lanes(fn, list(range(4)), 2, lanes=2))
    assert all(len(pids) == 1 for pids in fork_map(fn, list(range(4)), 2, min_items=2))


@needs_fork
@pytest.mark.parametrize("mapper", [fork_map, parallel.fork_lanes])
def test_a_child_whose_results_do_not_pickle_fails_in_the_caller_and_never_runs_on(tmp_path, mapper):
    # Results that cannot be sent back fail the child after its last item; it must still end there. A child
    # that let that error escape carried on running the caller's program: here, this test after the call.
    parent, escaped = os.getpid(), tmp_path / "escaped"
    with pytest.raises((RuntimeError, pickle.PicklingError, AttributeError)):
        mapper(lambda x: (lambda: x), list(range(4)), 2, min_items=1) if mapper is fork_map else \
            mapper(lambda x: (lambda: x), list(range(4)), 2)
    if os.getpid() != parent:  # pragma: no cover - only in an escaped child
        escaped.write_text("a child ran on past its work")
        os._exit(0)
    assert not escaped.exists()


def test_a_background_call_runs_in_a_child_and_its_result_or_exception_comes_back(monkeypatch):
    monkeypatch.setenv("NSGSOLVE_WORKERS", "2")
    # The child's own fork_map runs serially (it is a worker), and the caller's fork_map still forks.
    job = parallel.fork_call(lambda: (os.getpid(), fork_map(lambda x: os.getpid(), range(100))))
    theirs = fork_map(lambda x: os.getpid(), range(100))
    pid, inner = job.result()
    assert pid != os.getpid() and set(inner) == {pid}
    assert len(set(theirs)) == 2

    def fails():
        raise ValueError("from the child")

    with pytest.raises(ValueError, match="from the child"):
        parallel.fork_call(fails).result()


def test_a_background_call_with_one_worker_runs_here_when_asked(monkeypatch):
    monkeypatch.setenv("NSGSOLVE_WORKERS", "1")
    job = parallel.fork_call(lambda: os.getpid())
    assert job.child is None and job.result() == os.getpid()


@needs_fork
def test_an_error_raised_during_an_unpicklable_one_reaches_the_caller_as_itself():
    # Dask's tblib pickles an exception with its __context__; an InputError raised over a Lark error has
    # the parser there. The caller needs the error itself (its located message), not what it was raised in.
    copyreg.pickle(_ContextualError, lambda e: (_with_context, (e.args, e.__context__)))
    try:
        def fn(x):
            if x == 3:  # dealt to the child
                try:
                    raise ValueError(lambda: x)  # does not pickle
                except ValueError:
                    raise _ContextualError("item 3 is bad") from None
            return x

        with pytest.raises(_ContextualError, match="item 3 is bad"):
            fork_map(fn, list(range(4)), 2, min_items=1)
    finally:
        copyreg.dispatch_table.pop(_ContextualError, None)


@needs_fork
@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_write_in_turn_writes_every_workers_chunks_in_order(tmp_path, n_workers):
    from nsgsolve.parallel import write_in_turn

    def chunks(w, n):
        for k in range(w, 10, n):
            yield f"{k}:{os.getpid()}\n".encode()

    with open(tmp_path / "out", "wb") as f:
        write_in_turn(chunks, f.fileno(), n_workers)
    lines = (tmp_path / "out").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == [str(k) for k in range(10)]
    assert len({line.split(":")[1] for line in lines}) == n_workers


@needs_fork
def test_write_in_turn_raises_when_a_worker_fails(tmp_path):
    from nsgsolve.parallel import write_in_turn

    def chunks(w, n):
        for k in range(w, 10, n):
            if k == 5:
                raise ValueError("chunk 5")
            yield f"{k}\n".encode()

    with open(tmp_path / "out", "wb") as f, pytest.raises(RuntimeError):
        write_in_turn(chunks, f.fileno(), 2)
    assert (tmp_path / "out").read_text() == "0\n1\n2\n3\n4\n"
