"""JSON: a list of results, one per finding, carrying everything the text report shows."""

from __future__ import annotations

import json

from nsgsolve.reports import Report


def render_json(report: Report) -> str:
    out = []
    for f in report.findings:
        d = {
            "rule_id": f.rule_id,
            "name": f.name,
            "status": f.status.value,
            "title": f.title,
            "location": f.location.to_dict(),
            "related": [r.to_dict() for r in f.related],
            "fingerprint": f.fingerprint,
        }
        d.update(f.data)
        out.append(d)
    return json.dumps(out, indent=2) + "\n"
