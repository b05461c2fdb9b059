"""The human report: one line per finding, the full story (witness, trace, responsible rules) for failures."""

from __future__ import annotations

from nsgsolve.reports.findings import Report, Status

_MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.UNKNOWN: "UNKNOWN"}


def render_text(report: Report) -> str:
    lines: list[str] = []
    for f in report.findings:
        where = str(f.location)
        lines.append(f"{_MARK[f.status]:<7} {f.name}  {where}")
        if f.status is not Status.PASS:
            lines.append(f"        {f.title}")
            for d in f.detail.splitlines():
                lines.append(f"        {d}" if d else "")
    c = report.counts
    lines.append(
        f"{report.plural(len(report.findings))}: {c['pass']} passed, {c['fail']} failed, {c['unknown']} undecided"
        f" ({len(report.files)} file{'s' if len(report.files) != 1 else ''}, {report.duration:.2f}s)"
    )
    return "\n".join(lines) + "\n"
