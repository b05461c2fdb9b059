"""The generic shape of a result every report writer reads: :class:`Finding`, :class:`Report`, :class:`Location`.

A finding is "one checked claim about one place in a policy" (a contract assertion, a lint anomaly);
analyses' results are turned into findings by their renderers (:mod:`nsgsolve.reports.contracts`,
:mod:`nsgsolve.reports.lint`), and every format writer (text, JSON, JUnit, SARIF, GitHub) reads only
these types. They live apart from the package's ``__init__`` so the writers import them without a
circle through the format dispatch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from nsgsolve.analyses.results import Status
from nsgsolve.model import Span


@dataclass(frozen=True)
class Location:
    """A place in a source file, 1-based; ``line == 0`` when the place has no source (an Azure default rule)."""

    file: str
    line: int
    column: int = 1
    end_line: int = 0
    end_column: int = 0
    label: str = ""  # what is there, e.g. "allow rule Allow-SSH (priority 100) in nsg web-nsg"

    @classmethod
    def from_span(cls, span: Span | None, label: str = "") -> "Location":
        if span is None:
            return cls("", 0, 0, 0, 0, label)
        return cls(span.file, span.line, span.column, span.end_line, span.end_column, label)

    @property
    def has_source(self) -> bool:
        return self.line > 0 and bool(self.file) and not self.file.startswith("<")

    @property
    def region(self) -> tuple[int, int, int, int]:
        """(start line, start column, end line, end column) with the gaps filled, for formats that need all four."""
        line = max(self.line, 1)
        col = max(self.column, 1)
        end_line = self.end_line if self.end_line >= line else line
        end_col = self.end_column if (self.end_column > 0 and (end_line > line or self.end_column > col)) else col + 1
        return line, col, end_line, end_col

    def __str__(self) -> str:
        if not self.has_source:
            return self.file or "(no source)"
        return f"{self.file}:{self.line}:{self.column}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": self.file, "line": self.line, "column": self.column,
                             "end_line": self.end_line, "end_column": self.end_column}
        if self.label:
            d["label"] = self.label
        return d


@dataclass(frozen=True)
class Finding:
    """One checked claim about one place, in the shape every writer reads.

    ``title`` is the one line a summary shows (JUnit ``message``, the annotation title, SARIF's first
    sentence); ``detail`` is the multi-line body (witness table, trace). ``data`` is the structured
    payload the JSON writer emits as is (it must be JSON-serialisable)."""

    rule_id: str  # stable: "assert/<file>/<name>", "NSG001/shadowed-rule"; one id, one descriptor
    name: str  # stable test name within its file: the assertion's name, the rule's name
    status: Status
    title: str
    location: Location
    rule_short: str = ""  # SARIF rule shortDescription
    rule_full: str = ""  # SARIF rule fullDescription
    rule_help: str = ""  # SARIF rule help
    detail: str = ""
    level: str = "error"  # SARIF level of a failing finding: "error" | "warning" | "note"
    related: tuple[Location, ...] = ()
    flow: tuple[Location, ...] = ()  # the witness path, for SARIF codeFlows
    category: str = ""  # e.g. "assert/no"; JUnit failure type, SARIF tag
    seconds: float = 0.0  # time spent deciding it (JUnit testcase time)
    # Extra properties of the finding's rule (SARIF rule ``properties``), e.g. the Checkov and tfsec ids of
    # a baseline control
    rule_properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    rule_name: str = ""  # the rule's name when many findings share it (a baseline control); else ``name``
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fingerprint(self) -> str:
        """Hash of (rule id, name, file): never of the line, so moving a claim does not make a new alert,
        but with the file, so equally named claims of two files stay two alerts. The file is the
        repository-relative path (:func:`relative_uri`), the one the SARIF location shows."""
        key = f"{self.rule_id}\x00{self.name}\x00{relative_uri(self.location.file)}".encode()
        return hashlib.sha256(key).hexdigest()[:32]


@dataclass(frozen=True)
class Report:
    """Findings of one run, with what the run was and how it ended."""

    findings: tuple[Finding, ...]
    files: tuple[str, ...]
    exit_code: int
    command: str = "check"
    tool_version: str = ""
    category: str = "nsgsolve/check"  # SARIF runAutomationDetails.id prefix; GitHub keeps alerts per category
    duration: float = 0.0  # seconds, whole run

    @property
    def noun(self) -> str:
        """What one finding is called in summaries: an assertion for ``check`` of contracts, a check when
        baseline controls are among them (a control is not an assertion the user wrote), a finding otherwise."""
        if self.command != "check":
            return "finding"
        return "check" if any(f.rule_id.startswith("baseline/") for f in self.findings) else "assertion"

    def plural(self, n: int) -> str:
        return f"{n} {self.noun}{'' if n == 1 else 's'}"

    @property
    def exit_description(self) -> str:
        return {
            0: f"no {self.noun} failed",
            1: f"at least one {self.noun} failed",
            2: "invalid input or usage",
            3: f"the solver could not decide at least one {self.noun}",
        }.get(self.exit_code, "unexpected")

    @property
    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for f in self.findings:
            out[f.status.value] += 1
        return out


def relative_uri(path: str, root: str | None = None) -> str:
    """A repository-relative, forward-slash path (what SARIF viewers and GitHub annotations resolve)."""
    if not path or path.startswith("<"):
        return path
    root = root or os.getcwd()
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    except ValueError:  # another drive on Windows
        rel = path
    if rel.startswith(".."):
        rel = path
    return rel.replace(os.sep, "/")
