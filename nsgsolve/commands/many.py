"""One command over many policy files, each a policy of its own (``check``, ``lint`` of several .nsg files).

A pre-commit hook or a CI step hands over every policy of a repository: thousands of small files. Each file
is read and analysed on its own, the files spread over the cores by :func:`nsgsolve.parallel.fork_lanes` (the
lanes, a constant, decide which files share a process, so a Z3 witness never depends on the core count),
and the results come back in argument order, so the report is the one a serial run writes.

A file that cannot be read stops the run with exit status 2 and no report: a report that leaves a file out
could pass a CI gate that the file would fail. The other files are still read, so every bad file's located
errors are shown at once, in argument order, instead of one per run.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Sequence, TextIO, TypeVar

from nsgsolve.errors import InputError, UsageError

T = TypeVar("T")

# A directory argument stands for the policy files below it with this extension (lint, check).
POLICY_SUFFIX = ".nsg"


def policy_paths(paths: Sequence[str]) -> list[str]:
    """The arguments with each directory replaced by the ``.nsg`` files below it (sorted, recursively, hidden
    directories such as ``.git`` left out). A Terraform or Bicep directory is one policy and stays as given."""
    from nsgsolve.importers.loader import is_module_dir

    out: list[str] = []
    for p in paths:
        path = Path(p)
        if not path.is_dir() or is_module_dir(path):
            out.append(p)
            continue
        found = sorted(str(f) for f in path.rglob(f"*{POLICY_SUFFIX}")
                       if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts[:-1]))
        if not found:
            raise UsageError(f"{p} is a directory with no {POLICY_SUFFIX} files in it",
                             "give policy files, or a directory holding .nsg files (searched recursively), a "
                             "Terraform configuration (.tf files) or Bicep files")
        out += found
    return out


def each_its_own(paths: Sequence[str]) -> bool:
    """Several ``.nsg`` files, which are never one policy together (the language has no include): each is
    linted as a policy of its own. JSON files given together stay one policy (a template and its parameters)."""
    return len(paths) > 1 and all(p.lower().endswith(POLICY_SUFFIX) for p in paths)


@dataclass
class FileResult(Generic[T]):
    """What one file gave, picklable (a worker process sends it back)."""

    messages: str  # what it wrote to standard error (the loader's warnings), in order
    value: T | None
    error: Exception | None = None


class FileBar:
    """A bar of files done, drawn on a terminal only (a CI log gets no carriage returns), at most 5 times a
    second. Drawn by hand: a bar library's import costs more than most files' analysis."""

    def __init__(self, err: TextIO, total: int, verb: str):
        self.err, self.total, self.verb = err, total, verb
        self.on = hasattr(err, "isatty") and err.isatty()
        self.start = self.shown = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if not self.on or (now - self.shown < 0.2 and done < self.total):
            return
        self.shown = now
        width = 30
        full = width * done // max(self.total, 1)
        rate = done / max(now - self.start, 1e-6)
        self.err.write(f"\r{self.verb} [{'#' * full}{'.' * (width - full)}] {done:,}/{self.total:,} files "
                       f"{rate:,.0f}/s ")
        self.err.flush()

    def done(self) -> None:
        if self.on:
            self.err.write("\r" + " " * 79 + "\r")
            self.err.flush()


def _one(fn: Callable[[str, TextIO], T], path: str) -> FileResult[T]:
    """``fn(path, messages)`` as a pure result: a later file's error must not hide what earlier files said,
    so errors are returned, not raised."""
    from nsgsolve.parallel import portable

    messages = io.StringIO()
    try:
        value = fn(path, messages)
    except Exception as e:  # noqa: BLE001 - raised by the caller, in file order (the CLI reports it)
        return FileResult(messages.getvalue(), None, portable(e))
    return FileResult(messages.getvalue(), value)


def run_files(fn: Callable[[str, TextIO], T], paths: Sequence[str], err: TextIO, verb: str) -> list[T]:
    """``[fn(path, messages) for path in paths]``, the files spread over the cores, with a bar of files done
    on a terminal; each file's messages are written to ``err`` in argument order. The first file is done here
    first, so the workers inherit its warm state (imports, the parser, the tag data) instead of paying it.

    A file's error stops the run once every file is done: raised after the messages, with the located errors
    of every bad file when they are all input errors (else the first file's error, as a serial run)."""
    from nsgsolve.parallel import fork_lanes

    bar = FileBar(err, len(paths), verb)
    try:
        results = [_one(fn, paths[0])]
        bar(1)
        if len(paths) > 1:
            results += fork_lanes(lambda p: _one(fn, p), paths[1:], progress=lambda k: bar(k + 1))
    finally:
        bar.done()
    errors = []
    for r in results:
        err.write(r.messages)
        if r.error is not None:
            errors.append(r.error)
    if errors:
        if all(isinstance(e, InputError) for e in errors):
            raise InputError([d for e in errors for d in e.diagnostics])  # type: ignore[attr-defined]
        raise errors[0]
    return [r.value for r in results]  # type: ignore[misc]


__all__ = ["FileBar", "FileResult", "each_its_own", "policy_paths", "run_files"]
