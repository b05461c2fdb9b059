"""Lint findings for people (one line each, then a count) and in the shared report shape (SARIF, ...)."""

from __future__ import annotations

from nsgsolve.analyses.lint import Finding
from nsgsolve.analyses.results import Status
from nsgsolve.reports.findings import Finding as ReportFinding, Location


def finding_line(f: Finding) -> str:
    """One finding for people, its file:line:column first (the count line, :func:`count_line`, ends the list)."""
    return f"{f.span}: {f.severity}[{f.rule_id}]: {f.nsg} {f.direction.value}: {f.message}\n"


def severities(findings: list[Finding]) -> dict[str, int]:
    """How many findings of each severity (the count line's figures, added up over files)."""
    return {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}


SEVERITIES = ("error", "warning", "info")


def count_line(counts: dict[str, int], n_nsgs: int, n_files: int = 1) -> str:
    """The last line: findings per severity over ``n_nsgs`` NSGs (of ``n_files`` policy files, when several)."""
    total = sum(counts.values())
    where = f"{n_nsgs} NSG{'' if n_nsgs == 1 else 's'}" + (f" of {n_files} files" if n_files > 1 else "")
    if not total:
        return f"no findings in {where}\n"
    parts = [f"{counts[s]} {s}{'' if counts[s] == 1 or s == 'info' else 's'}" for s in SEVERITIES if counts[s]]
    return f"{total} finding{'' if total == 1 else 's'} in {where}: {', '.join(parts)}\n"


def lint_finding(f: Finding) -> ReportFinding:
    """The finding in the shared report shape (:mod:`nsgsolve.reports`), so SARIF, GitHub annotations
    and JUnit come from the same writers as ``check``'s. Identity is (code, NSG, direction, rule name):
    never the line, so moving a rule does not open a new alert."""
    info = f.info
    level = {"error": "error", "warning": "warning", "info": "note"}[f.severity]
    related = tuple(Location.from_span(c.span, str(c)) for c in f.covered_by if c.span.line)
    detail = f"witness: {f.witness}" if f.witness else ""
    return ReportFinding(
        rule_id=info.rule_id, name=f"{f.nsg}/{f.direction.value}/{f.rule}", status=Status.FAIL, title=f.message,
        location=Location.from_span(f.span, f"{f.access.value.lower()} rule {f.rule} (priority {f.priority}) "
                                            f"in {f.nsg if f.layer == 'admin' else 'nsg ' + f.nsg}"),
        rule_short=info.title, rule_full=info.help, rule_help=info.help, detail=detail, level=level,
        related=related, category="lint", data=f.to_dict())


__all__ = ["count_line", "finding_line", "lint_finding", "severities"]
