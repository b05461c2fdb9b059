"""Spread independent pieces of one analysis over the machine's cores, with results in serial order.

The analyses hold large in-memory state (resolved policy, rule indexes) that is expensive to send to
worker processes and cheap to share: a forked child sees the parent's memory as it was at the fork, so
each worker computes its share of the items on that state and sends back only the (small, picklable)
results. Items are dealt round-robin, so neighbouring items, which tend to cost alike, land on
different workers. The answer is the one a serial run gives, item for item: only the wall time changes.
When items fail, the exception raised is the one of the first failing item, as in a serial run.

Without ``os.fork`` (Windows), with one core, with few items, or with ``NSGSOLVE_WORKERS=1``, it runs
serially in the calling process.

A caller drawing a progress bar passes ``progress``: it is called in the calling process with the number of
items done in all processes (each process counts its own in one slot of a shared anonymous mapping, so no
locking), after each item of the caller's own share and every 0.2 s while it waits for the workers.

:func:`fork_lanes` is for items that leave state behind them in the process that computes them (Z3's
context, whose history changes which model a query gets): its results depend on the number of lanes, a
constant, and never on the number of cores.
"""

from __future__ import annotations

import mmap
import os
import pickle
import select
import sys
from typing import Callable, Generic, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many items a fork (a few milliseconds, plus the child's cold caches) does not pay.
MIN_ITEMS = 64
# fork_lanes: enough lanes to keep every core of a large machine busy, few enough that forking each costs
# little beside thousands of items.
LANES = 16
_TICK = 0.2  # seconds between progress calls while waiting for workers


_busy = [False]  # this process is a worker, or the caller computing its own share: nested calls run serially


def workers() -> int:
    """How many processes to use: ``NSGSOLVE_WORKERS`` if set, else the cores this process may run on (1
    inside a worker: the cores are taken)."""
    if _busy[0]:
        return 1
    env = os.environ.get("NSGSOLVE_WORKERS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class _Counts:
    """Items done per process (one slot each, in a shared anonymous mapping), for a progress callback."""

    def __init__(self, slots: int, progress: Callable[[int], None] | None):
        self.progress = progress
        self.shared = mmap.mmap(-1, 8 * max(slots, 1)) if progress is not None else None
        self.view = memoryview(self.shared).cast("q") if self.shared is not None else None

    def add(self, slot: int) -> None:
        if self.view is not None:
            self.view[slot] += 1

    def tick(self) -> None:
        if self.progress is not None and self.view is not None:
            self.progress(sum(self.view))

    def close(self) -> None:
        if self.view is not None and self.shared is not None:
            self.view.release()
            self.shared.close()


def _serial(fn: Callable[[T], R], items: Sequence[T], progress: Callable[[int], None] | None) -> list[R]:
    out: list[R] = []
    for x in items:
        out.append(fn(x))
        if progress is not None:
            progress(len(out))
    return out


def _fork(fn: Callable[[T], R], share: Sequence[T], positions: Sequence[int], counts: _Counts, slot: int
          ) -> tuple[int, int]:
    """A child computing ``share``; returns (pid, read end of its pipe). It sends ``(True, results)`` or
    ``(False, (position of the failing item, exception))``, then exits without the parent's cleanup."""
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    code = 1
    try:  # whatever happens here (Ctrl-C, the parent gone), the child must never return into the caller's code
        os.close(read)
        _busy[0] = True  # the cores are taken: a fork_map inside a worker (lint under check's lanes) runs serially
        done: list[R] = []
        try:
            for x in share:
                done.append(fn(x))
                counts.add(slot)
            payload = pickle.dumps((True, done), pickle.HIGHEST_PROTOCOL)
            code = 0
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
            # The failing item; all of them done means the results themselves did not pickle.
            at = positions[min(len(done), len(positions) - 1)]
            try:
                payload = pickle.dumps((False, (at, portable(e))), pickle.HIGHEST_PROTOCOL)
            except BaseException:  # noqa: BLE001 - an exception that does not pickle
                payload = pickle.dumps((False, (at, RuntimeError(f"{type(e).__name__}: {e}"))))
        # Straight to the descriptor: no file object, whose layer a caller may have replaced (a test's full
        # disk on os.fdopen made every report's matrix child fail).
        view = memoryview(payload)
        while view:
            view = view[os.write(write, view):]
        os.close(write)
        sys.stdout.flush()
    finally:
        os._exit(code)


E = TypeVar("E", bound=BaseException)


def portable(e: E) -> E:
    """``e`` without the exceptions it was raised during and its traceback, which the parent does not show.

    Pickled as is, they can drag anything along: once Dask is imported, tblib pickles exceptions with their
    ``__context__``, and an InputError raised ``from None`` over a Lark syntax error still has that error as
    its context, holding the whole parser (which does not pickle). A worker then failed on a bad file with
    "Can't pickle local object" instead of the file's located message."""
    e.__context__ = e.__cause__ = None
    return e.with_traceback(None)


def _result(pid: int, data: bytes, first: int) -> tuple[bool, object]:
    """What a child sent, once it has exited (``first``: the position reported if it sent nothing)."""
    os.waitpid(pid, 0)
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 - nothing sent (the worker died) or an exception that does not unpickle
        return False, (first, RuntimeError("a worker process failed without a readable result"))


def fork_map(fn: Callable[[T], R], items: Sequence[T], n_workers: int | None = None,
             min_items: int = MIN_ITEMS, progress: Callable[[int], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, computed by up to ``n_workers`` processes; fewer than ``min_items`` items
    run serially (a caller whose items are big, such as whole log files, lowers it)."""
    n = 1 if _busy[0] else workers() if n_workers is None else n_workers
    n = min(n, len(items))
    if n <= 1 or len(items) < min_items or not hasattr(os, "fork"):
        return _serial(fn, items, progress)
    counts = _Counts(n, progress)
    positions = range(len(items))
    children = [(w,) + _fork(fn, items[w::n], positions[w::n], counts, w) for w in range(1, n)]
    errors: list[tuple[int, BaseException]] = []
    try:
        mine: list[R] = []
        _busy[0] = True
        try:
            for x in items[0::n]:
                mine.append(fn(x))
                counts.add(0)
                counts.tick()
        except Exception as e:  # noqa: BLE001 - raised below, once the workers are collected
            errors.append((n * len(mine), e))
        finally:
            _busy[0] = False
        shares: dict[int, list[R]] = {0: mine}
        data = _collect([read for _, _, read in children], counts.tick if progress is not None else None)
    finally:
        counts.close()
    for w, pid, read in children:
        ok, value = _result(pid, data[read], w)
        if ok:
            shares[w] = value  # type: ignore[assignment]
        else:
            errors.append(value)  # type: ignore[arg-type]
    return _in_order(shares, n, len(items), errors)


def fork_lanes(fn: Callable[[T], R], items: Sequence[T], n_workers: int | None = None, lanes: int = LANES,
               progress: Callable[[int], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]`` with the items dealt round-robin into ``lanes`` lanes, each computed in
    order by a fresh child forked from the caller, up to ``n_workers`` at a time. An item's result may
    depend on the caller's state and on the items before it in its lane, and on nothing else: so on the
    same items it is the same whatever the number of cores (``NSGSOLVE_WORKERS=1`` still forks, one lane
    after another). Without ``os.fork`` the items run serially here."""
    if not items:
        return []
    if not hasattr(os, "fork"):
        return _serial(fn, items, progress)
    n = max(1, workers() if n_workers is None else n_workers)
    k = min(lanes, len(items))
    counts = _Counts(k, progress)
    positions = range(len(items))
    waiting = list(range(k))
    running: dict[int, tuple[int, int]] = {}  # read fd -> (lane, pid)
    chunks: dict[int, list[bytes]] = {}
    shares: dict[int, list[R]] = {}
    errors: list[tuple[int, BaseException]] = []
    try:
        while waiting or running:
            while waiting and len(running) < n:
                lane = waiting.pop(0)
                pid, read = _fork(fn, items[lane::k], positions[lane::k], counts, lane)
                running[read] = (lane, pid)
                chunks[read] = []
            ready, _, _ = select.select(list(running), [], [], _TICK if progress is not None else None)
            for fd in ready:
                chunk = os.read(fd, 1 << 20)
                if chunk:
                    chunks[fd].append(chunk)
                    continue
                os.close(fd)
                lane, pid = running.pop(fd)
                ok, value = _result(pid, b"".join(chunks.pop(fd)), lane)
                if ok:
                    shares[lane] = value  # type: ignore[assignment]
                else:
                    errors.append(value)  # type: ignore[arg-type]
            counts.tick()
    finally:
        counts.close()
    return _in_order(shares, k, len(items), errors)


class Background(Generic[R]):
    """``fn()`` computed by a forked child while the caller goes on (see :func:`fork_call`)."""

    def __init__(self, fn: Callable[[], R]):
        self.fn = fn
        self.child: tuple[int, int] | None = None
        if workers() > 1 and hasattr(os, "fork"):
            self.child = _fork(lambda _: fn(), [None], [0], _Counts(1, None), 0)

    def result(self) -> R:
        """The child's result (waiting for it), or ``fn()`` computed here when there was no child; the
        child's exception is raised here, as a serial call would raise it."""
        if self.child is None:
            return self.fn()
        pid, read = self.child
        self.child = None
        ok, value = _result(pid, _collect([read], None)[read], 0)
        if not ok:
            raise value[1]  # type: ignore[index]
        return value[0]  # type: ignore[index]


def fork_call(fn: Callable[[], R]) -> Background[R]:
    """Start ``fn()`` in a forked child, for two analyses of one state that are each cheaper than the
    forks of a :func:`fork_map` over their parts would make them: the caller computes the other one
    meanwhile (its own fork_maps still fork: the child is one more process, not a core taken). The child
    runs its own fork_maps serially. With one core, ``NSGSOLVE_WORKERS=1`` or inside a worker, ``fn`` runs
    when :meth:`Background.result` is called."""
    return Background(fn)


def _in_order(shares: dict[int, list[R]], n: int, total: int, errors: list[tuple[int, BaseException]]) -> list[R]:
    """The results of shares dealt round-robin over ``n``, in item order; or the exception of the first
    failing item, the one a serial run would have stopped at."""
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    out: list[R] = [None] * total  # type: ignore[list-item]
    for w, share in shares.items():
        out[w::n] = share
    return out


def _collect(fds: list[int], tick: Callable[[], None] | None) -> dict[int, bytes]:
    """Everything the workers write on ``fds``, read as it comes (a worker blocks on a full pipe until it is
    read), calling ``tick`` every 0.2 s meanwhile."""
    chunks: dict[int, list[bytes]] = {fd: [] for fd in fds}
    open_fds = list(fds)
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], _TICK if tick is not None else None)
        for fd in ready:
            chunk = os.read(fd, 1 << 20)
            if chunk:
                chunks[fd].append(chunk)
            else:
                os.close(fd)
                open_fds.remove(fd)
        if tick is not None:
            tick()
    return {fd: b"".join(c) for fd, c in chunks.items()}


def write_in_turn(chunks: Callable[[int, int], Iterator[bytes]], fd: int, n_workers: int | None = None) -> None:
    """Write to ``fd`` the chunks 0, 1, 2, ... of an output, chunk ``k`` made by worker ``k % n``:
    ``chunks(w, n)`` yields worker ``w``'s chunks (``w``, ``w + n``, ...) in order. Worker 0 is the caller,
    the others forked children; each makes its next chunk while the others write theirs, and writes it
    when the worker of the chunk before hands it the turn (one byte on a pipe, in a ring). So an output
    too large to hold (verify --flows: 300 MB of JSON lines) streams out in serial order, its making
    spread over the cores, without passing through the caller. A child that fails breaks the ring: the
    next worker reads end of file and raises (what was written stays written, as in a serial run that
    fails half way). One worker (one core, ``NSGSOLVE_WORKERS=1``, no ``os.fork``): all chunks here."""
    n = 1 if _busy[0] else workers() if n_workers is None else n_workers
    if n <= 1 or not hasattr(os, "fork"):
        for chunk in chunks(0, 1):
            _write_all(fd, chunk)
        return
    turns = [os.pipe() for _ in range(n)]  # turns[w]: worker w reads its turn here
    pids = []
    for w in range(1, n):
        pid = os.fork()
        if pid:
            pids.append(pid)
            continue
        code = 1
        try:  # the child must never return into the caller's code
            _busy[0] = True
            _keep_turn_ends(turns, w, n)
            _take_turns(chunks(w, n), fd, turns[w][0], turns[(w + 1) % n][1], first=False)
            code = 0
        except _RingBroken:
            pass  # another worker failed first and reports why (the caller: a full disk, say)
        except BaseException as e:  # noqa: BLE001 - reported here; the ring tells the other workers
            print(f"nsgsolve: worker {w} failed: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            os._exit(code)
    _keep_turn_ends(turns, 0, n)
    try:
        _busy[0] = True
        try:
            _take_turns(chunks(0, n), fd, turns[0][0], turns[1 % n][1], first=True)
        finally:
            _busy[0] = False
            os.close(turns[0][0])
            os.close(turns[1 % n][1])
    finally:
        failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise _RingBroken("a worker process failed while writing the output")


class _RingBroken(RuntimeError):
    """The worker before this one in the ring is gone: it failed, and said why itself."""


def _keep_turn_ends(turns: list[tuple[int, int]], w: int, n: int) -> None:
    """Close every pipe end worker ``w`` does not use, so that a worker gone makes its successor read EOF."""
    keep = {turns[w][0], turns[(w + 1) % n][1]}
    for r, wr in turns:
        for end in (r, wr):
            if end not in keep:
                os.close(end)


def _take_turns(mine: Iterator[bytes], fd: int, wait: int, hand: int, first: bool) -> None:
    for i, chunk in enumerate(mine):
        if i or not first:
            if not os.read(wait, 1):
                raise _RingBroken("a worker process failed while writing the output")
        _write_all(fd, chunk)
        try:
            os.write(hand, b"t")
        except BrokenPipeError:  # the next worker had no chunk left: the output is complete
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
