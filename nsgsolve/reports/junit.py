"""JUnit XML as Jenkins, GitLab and Azure Pipelines read it (validated against the Ant JUnit XSD).

One ``<testsuite>`` per policy file, one ``<testcase>`` per finding, named by the finding's name (the
assertion's name, never its message, so history survives rewording) with the file as ``classname``.
A failure carries the first line as ``message`` and the witness table as its body; an undecided
assertion is an ``<error>``, because it was not shown to hold.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET

from nsgsolve.reports.findings import Report, Status, relative_uri


def render_junit(report: Report) -> str:
    root = ET.Element("testsuites")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    host = socket.gethostname() or "localhost"
    files = list(report.files) or sorted({f.location.file for f in report.findings})
    by_file: dict[str, list] = {}
    for f in report.findings:  # one pass: a run over 5,000 files has hundreds of thousands of findings
        by_file.setdefault(f.location.file, []).append(f)
    for i, path in enumerate(files):
        cases = by_file.get(path, [])
        c = {s: sum(1 for f in cases if f.status is s) for s in Status}
        spent = sum(f.seconds for f in cases)
        name = relative_uri(path) or "policy"
        suite = ET.SubElement(root, "testsuite", {
            "name": name, "package": name, "id": str(i), "timestamp": stamp, "hostname": host,
            "tests": str(len(cases)), "failures": str(c[Status.FAIL]), "errors": str(c[Status.UNKNOWN]),
            "skipped": "0", "time": f"{spent:.3f}",
        })
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", {"name": "command", "value": f"nsgsolve {report.command}"})
        if report.tool_version:
            ET.SubElement(props, "property", {"name": "nsgsolve.version", "value": report.tool_version})
        for f in cases:
            case = ET.SubElement(suite, "testcase", {
                "name": f.name, "classname": name,
                "time": f"{f.seconds:.3f}",
            })
            body = f"{f.location}: {f.title}" + ("\n" + f.detail if f.detail else "")
            if f.status is Status.FAIL:
                el = ET.SubElement(case, "failure", {"message": f.title, "type": f.category or f.rule_id})
                el.text = body
            elif f.status is Status.UNKNOWN:
                el = ET.SubElement(case, "error", {"message": f.title, "type": "undecided"})
                el.text = body
        ET.SubElement(suite, "system-out").text = ""
        ET.SubElement(suite, "system-err").text = ""
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
