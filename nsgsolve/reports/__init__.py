"""Reports CI systems read: text, JSON, JUnit XML, SARIF 2.1.0 and GitHub workflow annotations.

Every writer takes a :class:`Report`, a list of :class:`Finding` plus how the run ended. A finding is
the generic shape of "one check about one place in a policy": a contract assertion (``check``) is one,
and so is an anomaly of the lint analysis. Analyses convert their own results into findings; the
writers know nothing about assertions, so a new analysis gets every format by producing findings.

Only this package turns results into text: commands call an analysis, then a renderer here (text,
JSON, SARIF, ...). Analyses return data and never import this package.

Identity matters more than wording here: ``rule_id`` and ``name`` are what CI systems key history on
(JUnit test names, SARIF ``ruleId`` and fingerprints), so they must survive edits elsewhere in the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsgsolve.analyses.results import Status
    from nsgsolve.reports.findings import Finding, Location, Report, relative_uri

FORMATS = ("text", "json", "junit", "sarif", "github")


def render(report: Report, fmt: str) -> str:
    """The report in one of :data:`FORMATS`."""
    if fmt == "text":
        from nsgsolve.reports.text import render_text

        return render_text(report)
    if fmt == "json":
        from nsgsolve.reports.json import render_json

        return render_json(report)
    if fmt == "junit":
        from nsgsolve.reports.junit import render_junit

        return render_junit(report)
    if fmt == "sarif":
        from nsgsolve.reports.sarif import render_sarif

        return render_sarif(report)
    if fmt == "github":
        from nsgsolve.reports.github import render_github

        return render_github(report)
    raise ValueError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")


# Imported on first use: every report module imports this package, and `show` and `query` (which need
# none of these) paid for the analyses' results and the finding model at start-up.
_LAZY = {"Status": "nsgsolve.analyses.results", "Finding": "nsgsolve.reports.findings",
         "Location": "nsgsolve.reports.findings", "Report": "nsgsolve.reports.findings",
         "relative_uri": "nsgsolve.reports.findings"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FORMATS", "Finding", "Location", "Report", "Status", "relative_uri", "render"]
