"""`nsgsolve report` without a browser: hit counts from flow logs are replay's, rule for rule."""

from __future__ import annotations

import io
import json
import re

from nsgsolve.cli import run


def test_rule_hits_in_the_report_are_replays(tmp_path):
    policy, logs = "examples/replay/fabrikam.nsg", "examples/replay/logs"
    out = io.StringIO()
    assert run(["replay", policy, "--flow-logs", logs, "--json"], out, io.StringIO()) == 0
    replayed = {(r["nsg"], r["direction"], r["rule"]): r["hits"] for r in json.loads(out.getvalue())["rules"]}
    assert sum(replayed.values()) > 0
    page = tmp_path / "r.html"
    assert run(["report", policy, "--flow-logs", logs, "-o", str(page)], io.StringIO(), io.StringIO()) == 0
    text = page.read_text()
    shown = {}
    for m in re.finditer(r'<tr id="rule-([^"]*)"[^>]*>(.*?)</tr>', text):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", m.group(2))
        shown[m.group(1)] = int(cells[-2])  # the Hits column, before Findings
    from nsgsolve.reports.html import rule_anchor

    for (nsg, direction, rule), hits in replayed.items():
        assert shown[rule_anchor(nsg, direction, rule).removeprefix("rule-")] == hits, (nsg, direction, rule)
    assert "logged flow tuples" in text  # the page says what the counts cover


def test_without_flow_logs_there_is_no_hits_column(tmp_path):
    page = tmp_path / "r.html"
    assert run(["report", "examples/webservers.nsg", "-o", str(page)], io.StringIO(), io.StringIO()) == 0
    assert "<th scope=\"col\">Hits</th>" not in page.read_text()


def test_report_shows_baseline_results(tmp_path):
    """The page's findings section renders baseline results beside lint and contracts: a failing control
    with its id, the destination and the witness story."""
    out = tmp_path / "r.html"
    code = run(["report", "tests/golden/inputs/baseline.nsg", "--baseline", "cis", "--no-lint", "-o", str(out)],
               io.StringIO(), io.StringIO())
    assert code == 0
    html = out.read_text()
    assert "<h3>Baseline</h3>" in html
    rows = re.findall(r'<tr class="s-error"><td>error</td><td>baseline/cis-7\.1</td><td>([^<]*)', html)
    assert any(": nic app1: a packet of the traffic is allowed" in r for r in rows)
    assert "witness (allowed)" in html


def test_the_report_lists_the_admin_rules_before_the_nsgs_and_links_their_findings(tmp_path):
    page = tmp_path / "r.html"
    assert run(["report", "tests/golden/inputs/avnm-lint.nsg", "-o", str(page)], io.StringIO(), io.StringIO()) == 0
    text = page.read_text()
    assert text.index("Admin rules of vnet hub") < text.index('id="nsg-web-nsg"')
    row = re.search(r'<tr id="(admin-[^"]*Monitoring2)"[^>]*>(.*?)</tr>', text)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(2))
    assert cells[2] == "AlwaysAllow" and cells[-2] == "Guard/Base" and cells[-1] == "AVNM002"
    assert f'href="#{row.group(1)}"' in text  # the finding links to the row
    # An NSG rule an admin rule makes dead is flagged in its NSG's table.
    ssh = re.search(r'<tr id="rule-web-nsg-Inbound-Ssh"[^>]*>(.*?)</tr>', text)
    assert ssh is not None and re.findall(r"<td[^>]*>(.*?)</td>", ssh.group(1))[-1] == "AVNM001"
