"""GitHub Actions workflow commands: ``::error file=...,line=...,endLine=...,title=...::message``.

Every annotation carries a line: without one GitHub shows it only in the Checks tab, not beside the
diff. Failing findings are errors, undecided ones warnings; passes print nothing but the summary.
"""

from __future__ import annotations

from nsgsolve.reports.findings import Report, Status, relative_uri


def _data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(s: str) -> str:
    return _data(s).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines: list[str] = []
    for f in report.findings:
        if f.status is Status.PASS:
            continue
        cmd = "error" if f.status is Status.FAIL and f.level == "error" else "warning"
        line, col, end_line, end_col = f.location.region
        props = [f"file={_prop(relative_uri(f.location.file))}", f"line={line}", f"endLine={end_line}",
                 f"col={col}", f"title={_prop(f.name + ': ' + f.title)}"]
        message = f.title + ("\n" + f.detail if f.detail else "")
        lines.append(f"::{cmd} {','.join(props)}::{_data(message)}")
    c = report.counts
    lines.append(f"nsgsolve {report.command}: {report.plural(len(report.findings))}, {c['pass']} passed, "
                 f"{c['fail']} failed, {c['unknown']} undecided")
    return "\n".join(lines) + "\n"
