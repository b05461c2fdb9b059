"""The cyclic garbage collector paused while a policy is read.

Reading builds a large model of long-lived objects and frees little: the collector's passes over that
growing heap found almost nothing. Pausing alone only moves the work: the first allocation after the pause
collects everything read in one pass (0.1-0.25 s for a 2 x 1,000-rule template). A process that reads its
inputs once and keeps them to the end (the CLI: :func:`keep_what_is_read`) also freezes what it read, so no
collection scans it again; a long-running caller (tests, a library user) keeps the default, in which what it
drops is collected as usual.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

_freeze = False


def keep_what_is_read() -> None:
    """For a process that runs one command: objects that exist when the first reading ends are moved out of
    the collector's sight (``gc.freeze``); any cycles among them live until the process ends. Once only: a
    command reading many files one after another (check, lint) would otherwise freeze each file's
    garbage with the next file, and grow."""
    global _freeze
    _freeze = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """No collection inside the block (or the decorated function); the previous state after it."""
    global _freeze
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _freeze and was_enabled:  # the outermost block only
            gc.freeze()
            _freeze = False
        if was_enabled:
            gc.enable()
