"""An assertion's result as a report finding: its identity, its one-line title and its story.

The story (claim, witness table, trace, responsible rules, notes) is what the text report, JUnit
failure bodies, GitHub annotations and SARIF messages show for a failing or undecided assertion.
"""

from __future__ import annotations

from nsgsolve.analyses.contracts import ContractResult, Responsible
from nsgsolve.analyses.results import Status
from nsgsolve.model import AssertionKind, Span, param_label
from nsgsolve.reports.findings import Finding, Location, relative_uri
from nsgsolve.reports.trace import endpoint_text, step_where, trace_lines
from nsgsolve.semantics.addresses import int_to_ip
from nsgsolve.analyses.endpoints import endpoint_notes

KIND_MEANING = {
    AssertionKind.NO: "no packet of this traffic may be allowed",
    AssertionKind.ALL: "every packet of this traffic must be allowed",
    AssertionKind.SOME: "at least one packet of this traffic must be allowed",
    AssertionKind.ONLY: "between these endpoints, nothing but this traffic may be allowed",
    AssertionKind.CLEAN: "the anomaly analysis must report nothing at error severity",
    AssertionKind.NO_SHADOWED: "no rule may be shadowed by a higher-priority rule",
}
KIND_FIX = {
    AssertionKind.NO: "Fix: remove or narrow the allow rule(s) listed as responsible, or add a deny rule with a "
                      "lower priority number; if the traffic is a documented exception, add an except clause.",
    AssertionKind.ALL: "Fix: the rule listed as responsible blocks the witness; allow the traffic before it "
                       "(a lower priority number) or narrow it.",
    AssertionKind.SOME: "Fix: no packet of the traffic gets through; add an allow rule on every NSG layer of the path.",
    AssertionKind.ONLY: "Fix: the responsible allow rule(s) open more than the contract names; narrow their "
                        "ports or protocol, or extend the contract.",
    AssertionKind.CLEAN: "Fix: address the anomalies `nsgsolve lint` reports.",
    AssertionKind.NO_SHADOWED: "Fix: remove or reorder the shadowed rules `nsgsolve lint` reports.",
}


def describe_responsible(r: Responsible) -> str:
    prio = f" (priority {r.priority})" if r.priority is not None else ""
    where = f"in nsg {r.nsg} on {r.attached_to}" if r.nsg else "(platform rule)"
    default = " [Azure default rule]" if r.is_default else ""
    return f"{r.access.value.lower()} rule {r.rule}{prio} {where}{default}"


def rule_id(r: ContractResult) -> str:
    """``assert/<file>/<name>``: an assertion is its own rule (its descriptor shows its claim), and two
    files may both have a ``no-ssh``, so the id names the file (repository-relative) too."""
    return f"assert/{relative_uri(r.file)}/{r.name}"


def detail(r: ContractResult) -> str:
    """The multi-line story: claim, witness table, trace, responsible rules, notes."""
    a = r.assertion
    lines = [f"{r.claim()}   ({a.span})"]
    if a.message:
        lines.append(f"message: {a.message}")
    w = r.witness
    if w is not None:
        p = w.packet
        lines.append(f"witness ({r.witness_role}): {p}")
        rows = [("protocol", p.protocol_name), ("source", endpoint_text(p.src, w.src_endpoint)),
                ("source port", "-" if p.sport is None else str(p.sport)),
                ("destination", endpoint_text(p.dst, w.dst_endpoint)),
                ("destination port", "-" if p.dport is None else str(p.dport)),
                ("decision", w.decision.value)]
        for k, v in sorted(r.assignment.items()):
            rows.append((f"assumed ip of {k}", int_to_ip(v)))
        for name, value in sorted(r.params.items()):
            rows.append((param_label(name), value))
        width = max(len(row[0]) for row in rows)
        lines += [f"  {k:<{width}}  {v}" for k, v in rows]
        lines.append("trace:")
        lines += [f"  {t}" for t in trace_lines(w)]
    for f in r.findings:
        lines.append(f"finding: {f}")
    if r.responsible:
        lines.append("responsible:")
        for rr in r.responsible:
            loc = f"  {rr.span}" if rr.span is not None and rr.span.line > 0 else ""
            lines.append(f"  {describe_responsible(rr)}{loc}")
    if w is not None:
        for n in w.notes:
            lines.append(f"note: {n}")
    if a.traffic is not None:  # what Internet / VirtualNetwork mean here (not the per-VNet tag of a rule)
        named = list(a.traffic.sources) + list(a.traffic.destinations)
        named += [x for e in a.excepts for x in (e.sources or ()) + (e.destinations or ())]
        lines += [f"note: {n}" for n in endpoint_notes(named)]
    if r.reason:
        lines.append(f"reason: {r.reason}")
    return "\n".join(lines)


def contract_finding(r: ContractResult) -> Finding:
    """The result in the generic report shape (:mod:`nsgsolve.reports`)."""
    a = r.assertion
    title = r.summary if not a.message or r.verdict is Status.PASS else f"{a.message}: {r.summary}"
    related = tuple(Location.from_span(x.span, describe_responsible(x)) for x in r.responsible
                    if x.span is not None and x.span.line > 0)
    flow: tuple[Location, ...] = ()
    if r.witness is not None:
        flow = tuple(Location.from_span(s.rule_span if isinstance(s.rule_span, Span) else None,
                                        f"{s.direction.value} {step_where(s)}: {s.access.value} by {s.rule}"
                                        + ("" if s.evaluated else f" ({s.skipped})"))
                     for s in r.witness.trace)
    return Finding(
        rule_id=rule_id(r), name=r.name, status=r.verdict, title=title,
        location=Location.from_span(a.span, r.claim()),
        rule_short=a.message or r.claim(),
        rule_full=f"{r.claim()}: {KIND_MEANING[a.kind]}",
        rule_help=f"{r.claim()}\n{KIND_MEANING[a.kind]}\n{KIND_FIX[a.kind]}",
        detail=detail(r), level="error", related=related, flow=flow, category=f"assert/{a.kind.value}",
        seconds=r.seconds, data={"file": r.file, **r.to_dict()},
    )


__all__ = ["KIND_FIX", "KIND_MEANING", "contract_finding", "describe_responsible", "detail", "rule_id"]
