"""``replay`` output: the text a network team reads, the JSON object (docs/json.md), SARIF findings for
unused rules and breaking changes, and the bad-record warnings with a window of the log line."""

from __future__ import annotations

import time
from itertools import islice
from typing import Any, TextIO

from nsgsolve.analyses.replay import ALLOW, Change, Mismatch, ReplayResult, RuleStat
from nsgsolve.importers.flowlogs import BadRecord
from nsgsolve.reports import Finding, Location, Report, Status
from nsgsolve.reports.json import document

MAX_BAD_PRINTED = 20
WINDOW = 60  # characters of a log line shown on each side of a bad record (log lines can be megabytes)


def when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def span_text(r: ReplayResult) -> str:
    if r.first is None:
        return "no tuples"
    return f"{when(r.first)} .. {when(r.last)} UTC"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


# ---------------------------------------------------------------- JSON


def to_json(r: ReplayResult, against: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "tuples": r.tuples,
        "ipv6_tuples": r.ipv6,
        "flows": r.flows,
        "files": r.files,
        "period": {"first": r.first, "last": r.last},
        "rules": [s.to_dict() for s in r.rules],
        "unused": [s.to_dict() for s in r.unused],
        "unobserved_nsgs": list(r.unobserved),
        "mismatches": [m.to_dict() for m in r.mismatches],
        "admin_rules": [_admin_dict(s) for s in r.admin_rules],
        "platform": [{"rule": rule, "direction": d, "hits": hits, "flows": flows}
                     for rule, d, hits, flows in r.platform],
        "assumptions": [{"message": m, "tuples": n} for m, n in r.assumptions],
        # IPv6 tuples are replayed now; the key stays (always 0) for readers of nsgsolve/replay/1
        "skipped": {"bad_records": r.bad, "ipv6_tuples": 0,
                    "bad": [_bad_dict(b) for b in r.bad_records]},
    }
    if against:
        d["changed"] = [c.to_dict() for c in (r.changed or ())]
    return document("replay", d)


def _admin_dict(s: RuleStat) -> dict[str, Any]:
    d = s.to_dict()
    d["collection"] = d.pop("nsg")
    del d["default"]
    return d


def _bad_dict(b: BadRecord) -> dict[str, Any]:
    return {"file": b.file, "line": b.line, "column": b.column, "code": b.code, "what": b.what,
            "message": b.message}


# ---------------------------------------------------------------- text


def render_text(r: ReplayResult, against: str | None, top: int = 20) -> str:
    out: list[str] = []
    w = out.append
    v6 = f", {r.ipv6:,} of them IPv6" if r.ipv6 else ""
    w(f"replayed {_plural(r.tuples, 'tuple')} ({_plural(r.flows, 'flow')} begun{v6}) from {_plural(r.files, 'file')}, "
      f"{span_text(r)}")
    w("")
    w("rules (hits = logged tuples the policy says the rule decides):")
    nsg = None
    for s in r.rules:
        if (s.nsg, s.direction) != nsg:
            nsg = (s.nsg, s.direction)
            w(f"  {s.nsg} {s.direction}")
        tag = " [default]" if s.is_default else ""
        last = f"  last {when(s.last)}" if s.last is not None else ""
        w(f"    {s.priority:>5} {s.access:<5} {s.rule + tag:<40} {s.hits:>10,} hits {s.flows:>9,} flows{last}")
    if r.admin_rules:
        w("")
        w("security admin rules (AVNM; hits = logged tuples they decide):")
        coll = None
        for s in r.admin_rules:
            if (s.nsg, s.direction) != coll:
                coll = (s.nsg, s.direction)
                w(f"  {s.nsg} {s.direction}")
            last = f"  last {when(s.last)}" if s.last is not None else ""
            w(f"    {s.priority:>5} {s.access:<11} {s.rule:<34} {s.hits:>10,} hits {s.flows:>9,} flows{last}")
    if r.platform:
        w("")
        w("decided by the platform, not by rules (docs/semantics.md):")
        for rule, d, hits, flows in r.platform:
            w(f"    {rule} {d}: {hits:,} hits, {flows:,} flows")
    if r.assumptions:
        w("")
        w("assumed (W904):")
        for what, n in r.assumptions:
            w(f"  {what} ({_plural(n, 'tuple')})")
    w("")
    user_unused = [s for s in r.unused if not s.is_default]
    w(f"unused in the observed period ({span_text(r)}): {_plural(len(user_unused), 'rule')}"
      + (f" (and {_plural(len(r.unused) - len(user_unused), 'default rule')})" if len(r.unused) > len(user_unused)
         else ""))
    for s in user_unused[:top * 5]:
        loc = f"{s.span}  " if s.span is not None and s.span.line else ""
        w(f"  {loc}{s.nsg} {s.direction} {s.priority} {s.rule} ({s.access})")
    if len(user_unused) > top * 5:
        w(f"  ... {len(user_unused) - top * 5} more (--json lists all)")
    if r.unobserved:
        w(f"not judged, no logged flow met them: {', '.join(r.unobserved[:top])}"
          + (" ..." if len(r.unobserved) > top else ""))
    w("")
    n_mis = sum(m.count for m in r.mismatches)
    w(f"mismatches (log vs policy): {_plural(n_mis, 'tuple')} in {_plural(len(r.mismatches), 'group')}")
    for m in r.mismatches[:top]:
        w(f"  {m.count:>8,}  [{m.kind}] {m.message}")
        for e in m.examples[:1]:
            w(f"            e.g. {e}")
    if len(r.mismatches) > top:
        w(f"  ... {len(r.mismatches) - top} more groups (--json lists all)")
    if r.changed is not None:
        w("")
        breaking = [c for c in r.changed if c.before == ALLOW]
        opening = [c for c in r.changed if c.before != ALLOW]
        n_b = sum(c.count for c in breaking)
        n_o = sum(c.count for c in opening)
        w(f"changed by {against}: {_plural(n_b, 'tuple')} allowed -> denied, {_plural(n_o, 'tuple')} denied -> allowed")
        for title, group in (("allowed -> denied (what the change breaks)", breaking),
                             ("denied -> allowed", opening)):
            if not group:
                continue
            w(f"  {title}:")
            for c in group[:top]:
                w(f"    {c.count:>8,}  {_change_text(c)}")
            if len(group) > top:
                w(f"    ... {len(group) - top} more groups (--json lists all)")
    w("")
    w(summary_line(r))
    return "\n".join(out) + "\n"


def _change_text(c: Change) -> str:
    port = f" port {c.dport}" if c.dport is not None else ""
    by = f"  (now {c.after} by {c.rule[0]}/{c.rule[2]})" if c.rule else f"  (now {c.after}: no NSG on the path)"
    return f"{c.protocol} {c.src} -> {c.dst}{port}{by}"


def summary_line(r: ReplayResult) -> str:
    return f"{_plural(r.bad, 'bad record')} skipped" + (" (listed above)" if r.bad else "")


def render_bad(records: tuple[BadRecord, ...], total: int, err: TextIO) -> None:
    """Each bad record as a warning with a window of its log line and a caret (only the first few)."""
    shown = list(records[:MAX_BAD_PRINTED])
    lines = _lines_wanted(shown)
    for b in shown:
        err.write(f"{b.file}:{b.line}:{b.column}: warning[{b.code}]: {b.what}: {b.message}\n")
        text = lines.get((b.file, b.line))
        if text is not None:
            col = max(b.column, 1) - 1
            lo = max(0, col - WINDOW)
            piece = text[lo:col + WINDOW].rstrip("\r\n")
            gutter = f"{b.line:>5} | " + ("..." if lo else "")
            err.write(gutter + piece + ("..." if col + WINDOW < len(text.rstrip()) else "") + "\n")
            err.write(" " * (len(gutter) + col - lo) + "^\n")
    if total > len(shown):
        err.write(f"... and {total - len(shown):,} more bad records (--json lists the first {len(records)})\n")


def _lines_wanted(records: list[BadRecord]) -> dict[tuple[str, int], str]:
    """The log lines the shown warnings point at, reading each file once as a stream."""
    want: dict[str, set[int]] = {}
    for b in records:
        if b.line > 0:
            want.setdefault(b.file, set()).add(b.line)
    out: dict[tuple[str, int], str] = {}
    for f, nums in want.items():
        try:
            with open(f, encoding="utf-8-sig", errors="replace", newline="") as fh:
                last = max(nums)
                for i, line in enumerate(islice(fh, last), start=1):
                    if i in nums:
                        out[(f, i)] = line
        except OSError:
            continue
    return out


# ---------------------------------------------------------------- SARIF (and every shared report format)

UNUSED_SHORT = "Rule decided no logged flow in the observed period"
UNUSED_HELP = ("Replaying the flow logs against the policy, no logged flow was decided by this rule while the "
               "NSG did see traffic. It is a candidate for removal: check the period covers the traffic it exists "
               "for (monthly jobs, failover paths) before removing it.")
BREAK_SHORT = "The change denies logged flows the current policy allows"
BREAK_HELP = ("Logged flows that the current policy allows are denied by the new policy, at the rule shown. The "
              "flows are grouped by source prefix, destination, protocol and port, with counts.")
OPEN_SHORT = "The change allows logged flows the current policy denies"


def findings(r: ReplayResult, policy_files: list[str], new_files: list[str] | None, new_policy=None
             ) -> list[Finding]:
    """Unused rules (at the rule in POLICY) and changed flows (at the deciding rule in NEW_POLICY)."""
    out: list[Finding] = []
    for s in r.unused:
        if s.is_default or s.span is None:
            continue  # Azure's default rules cannot be removed: nothing to annotate
        out.append(Finding(
            rule_id="replay/unused-rule", name=f"{s.nsg}/{s.direction}/{s.rule}", status=Status.FAIL,
            title=f"{s.access} rule {s.rule} (priority {s.priority}) of {s.nsg} decided no logged flow "
                  f"between {when(r.first)} and {when(r.last)} UTC",
            location=Location.from_span(s.span, f"{s.access.lower()} rule {s.rule} (priority {s.priority}) in nsg "
                                                f"{s.nsg}"),
            rule_short=UNUSED_SHORT, rule_full=UNUSED_HELP, rule_help=UNUSED_HELP, level="warning",
            category="replay", data=s.to_dict()))
    spans = _rule_spans(new_policy) if r.changed else {}
    fallback = new_files[0] if new_files else (policy_files[0] if policy_files else "")
    for c in r.changed or ():
        breaking = c.before == ALLOW
        span = spans.get(c.rule) if c.rule else None
        loc = Location.from_span(span, f"{c.rule[2]} in nsg {c.rule[0]}" if c.rule else "") if span is not None \
            else Location(fallback, 1, 1, label="no rule of the new policy decides (NSG removed, or default rule)")
        out.append(Finding(
            rule_id="replay/breaking-change" if breaking else "replay/opened-flow",
            name=f"{c.protocol}/{c.src}/{c.dst}/{c.dport}", status=Status.FAIL,
            title=f"{c.count:,} logged tuple{'s' if c.count != 1 else ''} {c.protocol} {c.src} -> {c.dst}"
                  f"{' port ' + str(c.dport) if c.dport is not None else ''}: {c.before} before, {c.after} after",
            location=loc, rule_short=BREAK_SHORT if breaking else OPEN_SHORT, rule_full=BREAK_HELP,
            rule_help=BREAK_HELP, level="error" if breaking else "note",
            detail=f"e.g. {c.example}" if c.example else "", category="replay", data=c.to_dict()))
    return out


def _rule_spans(policy) -> dict[tuple[str, str, str], Any]:
    """(nsg, direction, rule) -> the rule's span in ``policy``, for locating a changed flow."""
    if policy is None:
        return {}
    return {(n.name, r.direction.value, r.name): r.span for n in policy.nsgs for r in n.rules}


def report(r: ReplayResult, policy_files: list[str], new_files: list[str] | None, exit_code: int,
           new_policy=None) -> Report:
    from nsgsolve.version import __version__

    return Report(
        tuple(findings(r, policy_files, new_files, new_policy)),
        tuple(policy_files + (new_files or [])),
        exit_code,
        command="replay",
        tool_version=__version__,
        category="nsgsolve/replay",
    )


__all__ = ["to_json", "render_text", "render_bad", "summary_line", "findings", "report", "Mismatch",
           "RuleStat"]
