"""The policy as one self-contained HTML page: topology, reachability matrix, findings and rule tables.

Everything is inline (CSS, a small script, SVG): the file opens from ``file://``, as a CI artifact, with no
network. The page is readable without JavaScript: the matrix is a real ``<table>`` whose cells carry
their verdict in words (colour is only a second cue), and the findings and rule tables are plain HTML.
The script adds what a static page cannot: a cell's detail (exact allowed set, witness packets, the rule
that decided at each layer, linked to the rule tables), collapsing a VNet's rows and columns, and a
filter. Cell details travel as one JSON block, so a 100 x 100 matrix is one table and one data block,
not ten thousand hidden panels.

This module only renders: it receives plain data (:class:`ReportData`) built by the command from the
analyses (:mod:`nsgsolve.analyses.matrix`, lint, contracts) and the ``show`` model view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from importlib import resources
from typing import Sequence

from nsgsolve.analyses.matrix import Cell, Matrix
from nsgsolve.analyses.query import Verdict
from nsgsolve.regions.box import describe_protocols
from nsgsolve.reports.findings import Finding, Status
from nsgsolve.reports.query import describe_box, describe_hosts
from nsgsolve.semantics.addresses import describe_ports

DIFF_WORDS = {"opened": "opens", "closed": "closes", "both": "opens and closes"}


@dataclass(frozen=True)
class ReportData:
    """What one report shows: the analyses' results, and the ``show --json`` view of the model."""

    title: str
    files: tuple[str, ...]
    version: str
    model: dict  # the ``show --json`` view: vnets, nics, asgs, nsgs (rules in evaluation order)
    matrix: Matrix
    findings: tuple[Finding, ...] = ()  # lint, contracts and baseline results, in the shared report shape
    hits: dict = field(default_factory=dict)  # (nsg, direction, rule) -> logged flows, when flow logs are given
    diff: dict | None = None  # :func:`nsgsolve.analyses.matrix.diff_cells`, for ``diff --format html``
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------- words for cells


def ports_text(ports) -> str:
    """``tcp 80,443; udp 53``: the (protocols, destination ports) pairs of
    :func:`~nsgsolve.analyses.matrix.project_ports`."""
    return "; ".join(describe_protocols(p) if d is None else f"{describe_protocols(p)} {describe_ports(d)}"
                     for p, d in ports)


def verdict_word(cell: Cell) -> str:
    return "n/a" if cell.verdict is None else cell.verdict.value


def cell_summary(cell: Cell) -> str:
    """What a cell shows under its verdict: the allowed protocols and ports, or the error code."""
    if cell.verdict is None:
        return cell.error[0] if cell.error else ""
    if cell.verdict is Verdict.ALL:
        return "everything"
    if cell.verdict is Verdict.NONE:
        return "nothing"
    return ports_text(cell.ports)


def _diff_entry(change: dict) -> dict:
    kind = "both" if len(change) == 2 else next(iter(change))
    return {"kind": kind, "opened": ports_text(change.get("opened", ())),
            "closed": ports_text(change.get("closed", ()))}


# ---------------------------------------------------------------- anchors


def rule_anchor(nsg: str, direction: str, rule: str) -> str:
    """The id of a rule's row in the rule tables (stable: names, not lines)."""
    return "rule-" + _slug(f"{nsg}-{direction}-{rule}")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else f"_{ord(c):x}_" for c in text)


def _rule_index(model: dict) -> dict[tuple[str, int], str]:
    """(file, line) of every user rule -> its anchor, so findings located by line link to the rule."""
    out = {}
    for nsg in model.get("nsgs", []):
        for ev in nsg.get("evaluations", []):
            for direction in ("inbound", "outbound"):
                for r in ev.get(direction, []):
                    loc = r.get("location") or {}
                    if loc.get("line"):
                        out[(loc["file"], loc["line"])] = rule_anchor(nsg["name"], direction.capitalize(), r["name"])
    for layer in model.get("admin_layers", []):
        for r in layer.get("rules", []):
            loc = r.get("location") or {}
            if loc.get("line"):
                out.setdefault((loc["file"], loc["line"]), _admin_anchor(r, layer["direction"]))
    return out


def _admin_anchor(r: dict, direction: str) -> str:
    """An admin rule's row, once per rule (the first VNet's table holds it)."""
    return "admin-" + _slug(f"{r.get('configuration', '')}-{r.get('collection', '')}-{direction}-{r['name']}")


# ---------------------------------------------------------------- the page


def render_html(data: ReportData) -> str:
    rules = _rule_index(data.model)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(data.title)}</title>",
        f"<style>{_asset('report.css')}</style></head><body>",
        f"<header><h1>{escape(data.title)}</h1>",
        f'<p class="meta">nsgsolve {escape(data.version)} &middot; {", ".join(escape(f) for f in data.files)}</p>',
        "<nav><a href=\"#topology\">Topology</a> <a href=\"#matrix\">Reachability</a> "
        "<a href=\"#findings\">Findings</a> <a href=\"#rules\">Rules</a></nav></header>",
        "<main>",
        _notes(data.notes),
        '<section id="topology"><h2>Topology</h2>',
        topology_svg(data.model),
        _topology_lists(data.model),
        "</section>",
        '<section id="matrix"><h2>Reachability</h2>',
        _matrix_intro(data),
        _matrix_table(data.matrix, data.diff),
        '<aside id="detail" aria-live="polite"><p class="hint">Select a cell to see its exact allowed set, a '
        "witness packet and the rule that decided at each layer.</p></aside>",
        "</section>",
        '<section id="findings"><h2>Findings</h2>',
        _findings(data.findings, rules),
        "</section>",
        '<section id="rules"><h2>Rules</h2>',
        _rule_tables(data.model, data.hits, data.findings, rules),
        "</section>",
        "</main>",
        f'<script type="application/json" id="cells-data">{_json_for_script(_cell_data(data))}</script>',
        f"<script>{_asset('report.js')}</script>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    """The page's stylesheet and script, kept as files of their own (package data) and inlined."""
    return resources.files("nsgsolve.reports").joinpath("assets", name).read_text(encoding="utf-8")


def _json_for_script(obj: object) -> str:
    # "</script>" inside the data would end the element; "<\/" is the same string to JSON.
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return '<section class="notes"><ul>' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul></section>"


# ---------------------------------------------------------------- topology


def _topology_lists(model: dict) -> str:
    """The topology as text, for readers without SVG (screen readers, text browsers) and for searching."""
    out = ['<details class="topology-text"><summary>Topology as a list</summary><ul>']
    nics = model.get("nics", [])
    for v in model.get("vnets", []):
        peer = f" &middot; peered with {escape(', '.join(v['peerings']))}" if v.get("peerings") else ""
        out.append(f"<li><strong>VNet {escape(v['name'])}</strong> {escape(', '.join(v['address_spaces']))}{peer}<ul>")
        for s in v.get("subnets", []):
            ref = f"{v['name']}/{s['name']}"
            nsg = f" &middot; NSG {escape(s['nsg'])}" if s.get("nsg") else " &middot; no NSG"
            members = [n for n in nics if n["subnet"] == ref]
            out.append(f"<li>subnet {escape(s['name'])} {escape(_prefixes(s))}{nsg}")
            if members:
                out.append("<ul>" + "".join(
                    f"<li>NIC {escape(n['name'])} {escape(_nic_ip(n))}"
                    f"{' &middot; NSG ' + escape(n['nsg']) if n.get('nsg') else ''}"
                    f"{' &middot; ASGs ' + escape(', '.join(n['asgs'])) if n.get('asgs') else ''}</li>"
                    for n in members) + "</ul>")
            out.append("</li>")
        out.append("</ul></li>")
    out.append("</ul></details>")
    return "".join(out)


def _prefixes(subnet: dict) -> str:
    p = subnet.get("prefixes") or subnet.get("prefix") or ""
    return ", ".join(p) if isinstance(p, list) else str(p)


def _nic_ip(nic: dict) -> str:
    ip = nic.get("ip")
    if ip is None and nic.get("ips"):
        ip = ", ".join(str(x) for x in nic["ips"])
    return str(ip) if ip else "dynamic"


def topology_svg(model: dict) -> str:
    """VNets side by side, their subnets stacked, NICs inside; NSG badges where NSGs attach; peerings as arcs."""
    vnets = model.get("vnets", [])
    nics = model.get("nics", [])
    pad, line = 16, 18
    longest = max([len(_nic_text(n)) for n in nics] + [len(f"{s['name']}  {_prefixes(s)}") + 4 for v in vnets
                                                        for s in v.get("subnets", [])] + [30])
    col_w = 40 + 7 * longest
    boxes = []
    heights = []
    for v in vnets:
        h = 2 * line + pad
        for s in v.get("subnets", []):
            members = [n for n in nics if n["subnet"] == f"{v['name']}/{s['name']}"]
            h += line * (2 + len(members)) + pad
        heights.append(h + pad)
    top: float = 40 if any(v.get("peerings") for v in vnets) else 10
    height = top + (max(heights) if heights else 40) + 10
    width = max(1, len(vnets)) * (col_w + 2 * pad) + pad
    x_of = {}
    for i, v in enumerate(vnets):
        x = pad + i * (col_w + 2 * pad)
        x_of[v["name"]] = x + col_w / 2
        y = top
        boxes.append(f'<g class="vnet"><rect x="{x}" y="{y}" width="{col_w}" height="{heights[i]}" rx="10"/>')
        boxes.append(_svg_text(x + 10, y + line, f"VNet {v['name']}", "vnet-name"))
        boxes.append(_svg_text(x + 10, y + 2 * line, ", ".join(v.get("address_spaces", [])), "small"))
        y += 2 * line + pad / 2
        for s in v.get("subnets", []):
            members = [n for n in nics if n["subnet"] == f"{v['name']}/{s['name']}"]
            sh = line * (2 + len(members))
            cls = "subnet" if s.get("nsg") else "subnet unprotected"
            boxes.append(f'<g class="{cls}"><rect x="{x + 10}" y="{y}" width="{col_w - 20}" height="{sh}" rx="6"/>')
            boxes.append(_svg_text(x + 18, y + line - 4, f"{s['name']}  {_prefixes(s)}", "subnet-name"))
            boxes.append(_svg_text(x + 18, y + 2 * line - 4, f"NSG {s['nsg']}" if s.get("nsg") else "no NSG",
                                   "badge" if s.get("nsg") else "badge none"))
            for k, n in enumerate(members):
                boxes.append(_svg_text(x + 26, y + (3 + k) * line - 4, _nic_text(n), "nic"))
            boxes.append("</g>")
            y += sh + pad / 2
        boxes.append("</g>")
    arcs = []
    seen = set()
    for v in vnets:
        for p in v.get("peerings", []):
            key = tuple(sorted((v["name"], p)))
            if key in seen or p not in x_of:
                continue
            seen.add(key)
            x1, x2 = x_of[v["name"]], x_of[p]
            arcs.append(f'<path class="peering" d="M{x1},{top} C{x1},{top - 30} {x2},{top - 30} {x2},{top}">'
                        f"<title>peering {escape(key[0])} \u2194 {escape(key[1])}</title></path>")
    return (f'<svg class="topology" role="img" aria-label="Topology: VNets, subnets, NICs and NSG attachments" '
            f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            + "".join(arcs) + "".join(boxes) + "</svg>")


def _nic_text(n: dict) -> str:
    extra = []
    if n.get("nsg"):
        extra.append(f"NSG {n['nsg']}")
    if n.get("asgs"):
        extra.append("ASG " + ", ".join(n["asgs"]))
    return f"\u25a3 {n['name']} {_nic_ip(n)}" + (f"  [{'; '.join(extra)}]" if extra else "")


def _svg_text(x: float, y: float, text: str, cls: str) -> str:
    return f'<text x="{x}" y="{y}" class="{cls}">{escape(text)}</text>'


# ---------------------------------------------------------------- the matrix


def _matrix_intro(data: ReportData) -> str:
    counts: dict[str, int] = {}
    for c in data.matrix.cells:
        counts[verdict_word(c)] = counts.get(verdict_word(c), 0) + 1
    summary = ", ".join(f"{n} {w}" for w, n in counts.items())
    what = ("Each cell compares the old and the new policy: what the change opens and closes." if data.diff else
            "Each cell answers <code>nsgsolve query \"can ROW reach COLUMN\" --exact</code>: whether all, some "
            "or none of the traffic is allowed, and the allowed protocols and ports.")
    legend = ('<p class="legend"><span class="d-opened">opens</span> traffic denied before is allowed now (+) '
              '<span class="d-closed">closes</span> traffic allowed before is denied now (\u2212) '
              '<span class="d-same">no change</span></p>' if data.diff is not None else
              '<p class="legend"><span class="v-all">all</span> every packet allowed '
              '<span class="v-some">some</span> part allowed <span class="v-none">none</span> nothing allowed '
              '<span class="v-na">n/a</span> no traffic nsgsolve can decide</p>')
    return (f"<p>{what} Rows are sources, columns destinations. Cells: {escape(summary)}.</p>" + legend +
            '<p class="controls"><label>Filter rows and columns <input id="filter" type="search" '
            'placeholder="name"></label></p>')


def _groups(endpoints) -> list[tuple[str, list[int]]]:
    out: list[tuple[str, list[int]]] = []
    for i, e in enumerate(endpoints):
        if out and out[-1][0] == e.group:
            out[-1][1].append(i)
        else:
            out.append((e.group, [i]))
    return out


def _cell_text(cell: Cell, diff: dict | None) -> tuple[str, str]:
    """(css class, inner html) of one cell."""
    if diff is not None:
        change = diff.get((cell.row, cell.col))
        if change is None:
            return "d-same", '<span class="verdict">no change</span>'
        d = _diff_entry(change)
        texts = []
        if d["opened"]:
            texts.append(f'<span class="opened">+ {escape(d["opened"])}</span>')
        if d["closed"]:
            texts.append(f'<span class="closed">\u2212 {escape(d["closed"])}</span>')
        return "d-" + d["kind"], '<span class="verdict">' + escape(DIFF_WORDS[d["kind"]]) + "</span>" + "".join(texts)
    word = verdict_word(cell)
    summary = cell_summary(cell)
    cls = "v-na" if cell.verdict is None else f"v-{word}"
    return cls, (f'<span class="verdict">{escape(word)}</span>'
                 + (f'<span class="ports">{escape(summary)}</span>' if summary and summary != "nothing" else ""))


def _matrix_table(matrix: Matrix, diff: dict | None) -> str:
    rows, cols, cells = matrix.rows, matrix.cols, matrix.cells
    n = len(cols)
    col_groups = _groups(cols)
    out = ['<div class="matrix-wrap"><table class="matrix"><caption>Sources (rows) and destinations (columns)'
           "</caption><thead><tr><td rowspan=\"2\" class=\"corner\">from \\ to</td>"]
    for g, idx in col_groups:
        out.append(f'<th scope="colgroup" colspan="{len(idx)}" class="group" data-group="{escape(g)}">'
                   f'{escape(g)}</th>')
    out.append("</tr><tr>")
    for j, c in enumerate(cols):
        out.append(f'<th scope="col" class="col" data-col="{j}" data-group="{escape(c.group)}" '
                   f'title="{escape(c.kind)} {escape(c.name)}"><span>{escape(c.name)}</span></th>')
    out.append("</tr></thead>")
    for g, idx in _groups(rows):
        out.append(f'<tbody data-group="{escape(g)}"><tr class="group-row"><th scope="rowgroup" colspan="{n + 1}">'
                   f'<button type="button" class="toggle" aria-expanded="true">{escape(g)}</button></th></tr>')
        for i in idx:
            r = rows[i]
            out.append(f'<tr data-row="{i}"><th scope="row" title="{escape(r.kind)} {escape(r.name)}">'
                       f'{escape(r.name)}</th>')
            for j in range(n):
                cls, inner = _cell_text(cells[i * n + j], diff)
                out.append(f'<td class="{cls}" data-cell="{i * n + j}" data-col="{j}" tabindex="0">{inner}</td>')
            out.append("</tr>")
        out.append("</tbody>")
    out.append("</table></div>")
    return "".join(out)


def _witness_data(w, steps: dict) -> dict | None:
    """A witness for the page's script: its JSON form with each trace step as an index into one shared
    table (``steps``; a few hundred distinct steps recur in thousands of cells), linked to its rule's row."""
    if w is None:
        return None
    d = w.to_dict()
    trace = []
    for step in d.get("trace", []):
        if step.get("nsg"):
            step["anchor"] = rule_anchor(step["nsg"], step["direction"], step["rule"])
        key = tuple(sorted((k, str(v)) for k, v in step.items()))
        if key not in steps:
            steps[key] = (len(steps), step)
        trace.append(steps[key][0])
    d["trace"] = trace
    return d


def _cell_data(data: ReportData) -> dict:
    m = data.matrix
    hosts: dict = {}  # the same source and destination sets recur in many cells: describe each once

    def described(h) -> str:
        got = hosts.get(h)
        if got is None:
            got = hosts[h] = describe_hosts(h)
        return got

    steps: dict = {}
    cells = []
    for c in m.cells:
        cells.append({"row": c.row, "col": c.col, "verdict": verdict_word(c) if c.verdict else None,
                      "summary": cell_summary(c), "allowed": [describe_box(b, described) for b in c.exact],
                      "more": c.more,
                      "allowed_witness": _witness_data(c.allowed_witness, steps),
                      "blocked_witness": _witness_data(c.blocked_witness, steps),
                      "error": {"code": c.error[0], "message": c.error[1]} if c.error else None})
    diff = None if data.diff is None else {f"{i},{j}": _diff_entry(ch) for (i, j), ch in data.diff.items()}
    return {"rows": [e.to_dict() for e in m.rows], "columns": [e.to_dict() for e in m.cols], "cells": cells,
            "steps": [s for _, s in sorted(steps.values(), key=lambda x: x[0])], "diff": diff}


# ---------------------------------------------------------------- findings


def _findings(findings: Sequence[Finding], rules: dict[tuple[str, int], str]) -> str:
    if not findings:
        return "<p>No lint findings, contracts or baseline results for this policy.</p>"
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.category or "check", []).append(f)
    out = []
    for category, fs in groups.items():
        title = {"lint": "Lint findings", "contract": "Contracts", "check": "Contracts",
                 "baseline": "Baseline"}.get(category, category.capitalize())
        out.append(f"<h3>{escape(title)}</h3><table class=\"findings\"><thead><tr><th scope=\"col\">Status</th>"
                   "<th scope=\"col\">Id</th><th scope=\"col\">What</th><th scope=\"col\">Where</th></tr></thead>"
                   "<tbody>")
        for f in fs:
            status = "pass" if f.status is Status.PASS else "unknown" if f.status is Status.UNKNOWN else f.level
            anchor = rules.get((f.location.file, f.location.line))
            where = escape(f.location.label or f"{f.location.file}:{f.location.line}")
            if anchor:
                where = f'<a href="#{anchor}">{where}</a>'
            elif f.location.line:
                where += f" <small>{escape(f.location.file)}:{f.location.line}</small>"
            detail = f"<pre>{escape(f.detail)}</pre>" if f.detail else ""
            out.append(f'<tr class="s-{escape(status)}"><td>{escape(status)}</td><td>{escape(f.rule_id)}</td>'
                       f"<td>{escape(f.title)}{detail}</td><td>{where}</td></tr>")
        out.append("</tbody></table>")
    return "".join(out)


# ---------------------------------------------------------------- rule tables


def _rule_tables(model: dict, hits: dict, findings: Sequence[Finding], rules: dict[tuple[str, int], str]) -> str:
    flagged: dict[str, list[str]] = {}
    for f in findings:
        anchor = rules.get((f.location.file, f.location.line))
        if anchor and f.status is not Status.PASS:
            flagged.setdefault(anchor, []).append(f.rule_id.split("/")[0])
    out = _admin_tables(model, flagged)
    with_hits = bool(hits)
    for nsg in model.get("nsgs", []):
        where = ", ".join(nsg.get("attached_to", [])) or "attached to nothing"
        out.append(f'<h3 id="nsg-{_slug(nsg["name"])}">NSG {escape(nsg["name"])} <small>{escape(where)}</small></h3>')
        evaluations = nsg.get("evaluations", [])[:1]  # the rules are the same in every VNet; addresses differ
        for ev in evaluations:
            for direction in ("inbound", "outbound"):
                rs = ev.get(direction, [])
                out.append(f'<table class="rules"><caption>{direction.capitalize()}</caption><thead><tr>'
                           '<th scope="col">Priority</th><th scope="col">Name</th><th scope="col">Access</th>'
                           '<th scope="col">Protocol</th><th scope="col">Source</th><th scope="col">Source ports</th>'
                           '<th scope="col">Destination</th><th scope="col">Destination ports</th>'
                           + ('<th scope="col">Hits</th>' if with_hits else "")
                           + '<th scope="col">Findings</th></tr></thead><tbody>')
                for r in rs:
                    anchor = rule_anchor(nsg["name"], direction.capitalize(), r["name"])
                    cls = "default" if r.get("default") else ""
                    marks = " ".join(sorted(set(flagged.get(anchor, []))))
                    hit = ""
                    if with_hits:
                        hit = f"<td>{hits.get((nsg['name'], direction.capitalize(), r['name']), 0)}</td>"
                    out.append(
                        f'<tr id="{anchor}" class="{cls} a-{escape(r["access"].lower())}"><td>{r["priority"]}</td>'
                        f'<td>{escape(r["name"])}{" <small>(default)</small>" if r.get("default") else ""}</td>'
                        f'<td>{escape(r["access"])}</td><td>{escape(r["protocol"])}</td>'
                        f'<td title="{escape(r.get("source_addresses", ""))}">{escape(r["source"])}</td>'
                        f'<td>{escape(r["source_ports"])}</td>'
                        f'<td title="{escape(r.get("destination_addresses", ""))}">{escape(r["destination"])}</td>'
                        f'<td>{escape(r["destination_ports"])}</td>{hit}<td>{escape(marks)}</td></tr>')
                out.append("</tbody></table>")
    return "".join(out) or "<p>The policy has no NSGs.</p>"


def _admin_tables(model: dict, flagged: dict[str, list[str]]) -> list[str]:
    """The security admin rules of each VNet and direction, in evaluation order, before the NSGs (as Azure
    evaluates them); a rule applied to several VNets has its anchor in the first VNet's table."""
    out: list[str] = []
    seen: set[str] = set()
    for layer in model.get("admin_layers", []):
        if not out:
            out.append("<p>Security admin rules (Azure Virtual Network Manager) are evaluated before the NSGs: "
                       "Deny drops, AlwaysAllow skips the NSGs of that direction, Allow leaves the decision to "
                       "them; every configuration in the input is taken as deployed.</p>")
        out.append(f'<h3>Admin rules of vnet {escape(layer["vnet"])} <small>{escape(layer["direction"])}</small></h3>'
                   '<table class="rules"><thead><tr><th scope="col">Priority</th><th scope="col">Name</th>'
                   '<th scope="col">Access</th><th scope="col">Protocol</th><th scope="col">Source</th>'
                   '<th scope="col">Source ports</th><th scope="col">Destination</th>'
                   '<th scope="col">Destination ports</th><th scope="col">Configuration / collection</th>'
                   '<th scope="col">Findings</th></tr></thead><tbody>')
        for r in layer.get("rules", []):
            anchor = _admin_anchor(r, layer["direction"])
            ident = f' id="{anchor}"' if anchor not in seen else ""
            seen.add(anchor)
            marks = " ".join(sorted(set(flagged.get(anchor, []))))
            out.append(
                f'<tr{ident} class="a-{escape(r["access"].lower())}"><td>{r["priority"]}</td>'
                f'<td>{escape(r["name"])}</td><td>{escape(r["access"])}</td><td>{escape(r["protocol"])}</td>'
                f'<td title="{escape(r.get("source_addresses", ""))}">{escape(r["source"])}</td>'
                f'<td>{escape(r["source_ports"])}</td>'
                f'<td title="{escape(r.get("destination_addresses", ""))}">{escape(r["destination"])}</td>'
                f'<td>{escape(r["destination_ports"])}</td>'
                f'<td>{escape(r.get("configuration", ""))}/{escape(r.get("collection", ""))}</td>'
                f'<td>{escape(marks)}</td></tr>')
        out.append("</tbody></table>")
    return out


# ---------------------------------------------------------------- the matrix alone, as SVG


def matrix_svg(matrix: Matrix, diff: dict | None = None) -> str:
    """The matrix as one SVG image (documentation, pull-request comments): names, and each cell's verdict
    in words and colour, its allowed ports as a tooltip."""
    rows, cols = matrix.rows, matrix.cols
    cw, ch = 64, 22
    left = 12 + 7 * max([len(r.name) for r in rows] + [8])
    head = 12 + 7 * max([len(c.name) for c in cols] + [8])
    width, height = left + cw * len(cols) + 10, head + ch * len(rows) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Reachability matrix" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f"<style>{SVG_CSS}</style>"]
    for j, c in enumerate(cols):
        x = left + j * cw + cw / 2
        out.append(f'<text x="{x}" y="{head - 6}" transform="rotate(-45 {x} {head - 6})">{escape(c.name)}</text>')
    for i, r in enumerate(rows):
        y = head + i * ch
        out.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(r.name)}</text>')
        for j in range(len(cols)):
            cell = matrix.cell(i, j)
            if diff is not None:
                change = diff.get((i, j))
                d = _diff_entry(change) if change else None
                cls, word = ("d-same", "=") if d is None else ("d-" + d["kind"], DIFF_WORDS[d["kind"]])
                title = "" if d is None else f"+ {d['opened']} \u2212 {d['closed']}"
            else:
                word = verdict_word(cell)
                cls, title = ("v-na" if cell.verdict is None else f"v-{word}"), cell_summary(cell)
            x = left + j * cw
            out.append(f'<g class="{cls}"><rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}"/>'
                       f'<text x="{x + cw / 2 - 1}" y="{y + 15}" text-anchor="middle">{escape(word)}</text>'
                       f"<title>{escape(r.name)} \u2192 {escape(cols[j].name)}: {escape(word)} "
                       f"{escape(title)}</title></g>")
    out.append("</svg>")
    return "".join(out) + "\n"



SVG_CSS = (".v-all rect{fill:#c8e6c9}.v-some rect{fill:#fff3bf}.v-none rect{fill:#eceff1}.v-na rect,.v-unknown rect"
           "{fill:#f3e5f5}.d-opened rect{fill:#ffcdd2}.d-closed rect{fill:#bbdefb}.d-both rect{fill:#e1bee7}"
           ".d-same rect{fill:#fff}rect{stroke:#bbb}")



__all__ = ["ReportData", "cell_summary", "matrix_svg", "ports_text", "render_html", "rule_anchor", "topology_svg"]
