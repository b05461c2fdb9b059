"""Errors and diagnostics, rendered in one place.

Every problem a user can cause is a :class:`Diagnostic` carrying a :class:`~nsgsolve.model.Span`.
Passes collect diagnostics and raise one :class:`InputError` holding all of them, so a file's mistakes
are reported in a single run (the sqlglot way). :func:`render` turns them into
``file:line:col: error[CODE]: message`` with the source line, a caret and a hint.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from nsgsolve.model import NOSPAN, Span

# Exit statuses, everywhere (CLI, CI): see README "Exit status".
EXIT_OK = 0
EXIT_FINDING = 1
EXIT_INPUT = 2
EXIT_UNKNOWN = 3


@dataclass(frozen=True)
class Diagnostic:
    code: str  # stable, e.g. "E101"; documented in docs/errors.md
    message: str  # what is wrong
    span: Span = NOSPAN
    hint: str = ""  # how to fix it
    severity: str = "error"  # "error" | "warning" | "note"


class NsgsolveError(Exception):
    """Base of every error nsgsolve raises on purpose."""

    exit_status = EXIT_INPUT

    def __reduce__(self):
        # A worker process sends it back (nsgsolve.parallel): rebuilt with its attributes but without
        # ``__init__``, whose arguments differ per class (the default pickling would call it with the message).
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type, args: tuple, state: dict) -> NsgsolveError:
    e = cls.__new__(cls, *args)
    e.args = args
    e.__dict__.update(state)
    return e


class InputError(NsgsolveError):
    """Invalid input (a policy file, a template, a flow list, a query): exit status 2."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else Diagnostic("E000", "invalid input")
        more = f" (and {len(self.diagnostics) - 1} more)" if len(self.diagnostics) > 1 else ""
        super().__init__(f"{first.span.file}:{first.span.line}:{first.span.column}: {first.message}{more}")

    @classmethod
    def single(cls, code: str, message: str, span: Span = NOSPAN, hint: str = "") -> "InputError":
        return cls([Diagnostic(code, message, span, hint)])


class UsageError(NsgsolveError):
    """The command line itself is wrong (unknown NIC name on --src, bad --dport, ...): exit status 2."""

    def __init__(self, message: str, hint: str = ""):
        self.hint = hint
        super().__init__(message)


class SolverUnknown(NsgsolveError):
    """Z3 gave up (resource limit): the answer is inconclusive, exit status 3, never a pass."""

    exit_status = EXIT_UNKNOWN

    def __init__(self, what: str, reason: str, rlimit: int | None = None):
        self.what = what
        self.reason = reason  # Z3's own words
        self.rlimit = rlimit  # the resource limit the solver ran with, when known
        super().__init__(f"solver could not decide {what}: {self.explanation}")

    @property
    def hit_limit(self) -> bool:
        """Z3 stopped at its resource limit (it reports that as either phrase, depending on where it stopped)."""
        return "resource limit" in self.reason or self.reason == "canceled"

    @property
    def explanation(self) -> str:
        """Why, and what to do: which limit was hit and how to raise it."""
        if not self.hit_limit:
            return self.reason
        if self.rlimit:
            steps = f"{self.rlimit:,} step{'s' if self.rlimit != 1 else ''}"
            return (f"the solver gave up at its resource limit of {steps} per question ({self.reason}); raise it "
                    f"with --solver-limit N, e.g. --solver-limit {self.rlimit * 10} (abstract steps, the same on "
                    f"every machine)")
        return f"the solver gave up at its resource limit ({self.reason}); raise it with --solver-limit N"


@dataclass
class DiagnosticBag:
    """Collects diagnostics during a pass; ``raise_if_errors`` ends the pass with all of them."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span = NOSPAN, hint: str = "") -> None:
        self.items.append(Diagnostic(code, message, span, hint))

    def warning(self, code: str, message: str, span: Span = NOSPAN, hint: str = "") -> None:
        self.items.append(Diagnostic(code, message, span, hint, "warning"))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity != "error"]

    def raise_if_errors(self) -> None:
        errs = self.errors
        if errs:
            errs.sort(key=lambda d: (d.span.file, d.span.line, d.span.column))
            raise InputError(errs)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A hint naming the closest candidate(s), or "" when nothing is close."""
    cands = list(candidates)
    lower = {c.lower(): c for c in cands}
    if name.lower() in lower and lower[name.lower()] != name:
        return f"did you mean '{lower[name.lower()]}'? (names are case-sensitive)"
    close = difflib.get_close_matches(name, cands, n=3, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def _source_lines(file: str, sources: Mapping[str, str] | None, cache: dict | None) -> list[str] | None:
    if cache is not None and file in cache:
        return cache[file]
    text = sources.get(file) if sources is not None else None
    if text is None:
        from nsgsolve.limits import max_input_bytes

        try:  # bounded: never reads more of a file than nsgsolve would have read as input
            with open(file, "rb") as f:
                data = f.read(max_input_bytes() + 1)
            text = data.decode("utf-8-sig") if len(data) <= max_input_bytes() else None
        except (OSError, UnicodeDecodeError):
            text = None
    lines = text.splitlines() if text is not None else None
    if cache is not None:
        cache[file] = lines
    return lines


def _source_line(span: Span, sources: Mapping[str, str] | None, cache: dict | None = None) -> str | None:
    if span.line <= 0:
        return None
    lines = _source_lines(span.file, sources, cache)
    if lines is None or span.line > len(lines):
        return None
    return lines[span.line - 1]


# Longer source lines are quoted as a window around the column.
MAX_QUOTED_LINE = 400  # longer than any line a person writes; minified JSON is windowed
# A file with thousands of mistakes (a generated one, usually) shows the first ones and a count.
MAX_RENDERED = 100


def render(diag: Diagnostic, sources: Mapping[str, str] | None = None, _cache: dict | None = None) -> str:
    """One diagnostic as text: location, message, source line with caret, hint."""
    s = diag.span
    loc = f"{s.file}:{s.line}:{s.column}" if s.line > 0 else s.file
    out = [f"{loc}: {diag.severity}[{diag.code}]: {diag.message}"]
    line = _source_line(s, sources, _cache)
    if line is not None:
        col = max(s.column, 1)
        width = 1
        if s.end_line == s.line and s.end_column > col:
            width = s.end_column - col
        width = max(1, min(width, len(line) - col + 1)) if len(line) >= col else 1
        if len(line) > MAX_QUOTED_LINE:
            # A minified template is one line of megabytes: quote a window around the column instead.
            start = max(0, min(col - 1 - MAX_QUOTED_LINE // 3, len(line) - MAX_QUOTED_LINE))
            window = line[start:start + MAX_QUOTED_LINE]
            lead = "..." if start > 0 else ""
            tail = "..." if start + MAX_QUOTED_LINE < len(line) else ""
            line = lead + window + tail
            col = col - start + len(lead)
            width = max(1, min(width, MAX_QUOTED_LINE - (col - 1 - len(lead))))
        gutter = f"{s.line:>5} | "
        out.append(gutter + line.expandtabs(1))
        out.append(" " * (len(gutter) + col - 1) + "^" * width)
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)


def render_all(diags: Iterable[Diagnostic], sources: Mapping[str, str] | None = None) -> str:
    diags = list(diags)
    cache: dict = {}  # each file is read and split once, however many diagnostics point into it
    shown = diags[:MAX_RENDERED]
    body = "\n".join(render(d, sources, cache) for d in shown)
    if len(diags) > len(shown):
        body += f"\n... and {len(diags) - len(shown)} more not shown"
    n_err = sum(1 for d in diags if d.severity == "error")
    if n_err > 1:
        body += f"\n{n_err} errors"
    return body
