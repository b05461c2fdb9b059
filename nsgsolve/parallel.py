"""Spread independent pieces of one analysis over the machine's cores, with results in serial order.

The analyses hold large in-memory state (resolved policy, rule indexes) that is expensive to send to
worker processes and cheap to share: a forked child sees the parent's memory as it was at the fork, so
each worker computes its share of the items on that state and sends back only the (small, picklable)
results. Items are dealt round-robin, so neighbouring items, which tend to cost alike, land on
different workers. The answer is the one a serial run gives, item for item: only the wall time changes.

Without ``os.fork`` (Windows), with one core, with few items, or with ``NSGSOLVE_WORKERS=1``, it runs
serially in the calling process.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many items a fork (a few milliseconds, plus the child's cold caches) does not pay.
MIN_ITEMS = 64


def workers() -> int:
    """How many processes to use: ``NSGSOLVE_WORKERS`` if set, else the cores this process may run on."""
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


def fork_map(fn: Callable[[T], R], items: Sequence[T], n_workers: int | None = None,
             min_items: int = MIN_ITEMS) -> list[R]:
    """``[fn(x) for x in items]``, computed by up to ``n_workers`` processes; fewer than ``min_items`` items
    run serially (a caller whose items are big, such as whole log files, lowers it)."""
    n = workers() if n_workers is None else n_workers
    n = min(n, len(items))
    if n <= 1 or len(items) < min_items or not hasattr(os, "fork"):
        return [fn(x) for x in items]
    children = []
    for w in range(1, n):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its share, then out without running the parent's cleanup
            os.close(read)
            code = 0
            try:
                payload = pickle.dumps((True, [fn(x) for x in items[w::n]]), pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
                code = 1
                try:
                    payload = pickle.dumps((False, e), pickle.HIGHEST_PROTOCOL)
                except Exception:  # noqa: BLE001 - an exception that does not pickle
                    payload = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
            with os.fdopen(write, "wb") as f:
                f.write(payload)
            sys.stdout.flush()
            os._exit(code)
        os.close(write)
        children.append((w, pid, read))
    shares: dict[int, list[R]] = {0: [fn(x) for x in items[0::n]]}
    error: BaseException | None = None
    for w, pid, read in children:
        with os.fdopen(read, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        try:
            ok, value = pickle.loads(data)
        except Exception:  # noqa: BLE001 - nothing sent (the worker died) or an exception that does not unpickle
            ok, value = False, RuntimeError("a worker process failed without a readable result")
        if ok:
            shares[w] = value
        elif error is None:
            error = value
    if error is not None:
        raise error
    out: list[R] = [None] * len(items)  # type: ignore[list-item]
    for w, share in shares.items():
        out[w::n] = share
    return out
