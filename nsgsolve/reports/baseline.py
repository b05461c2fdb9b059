"""A baseline result as a report finding: one SARIF rule per control (``baseline/<control id>``), the
Checkov and tfsec/Trivy ids of the same question in the rule's ``properties``, one test per control and
destination. An exposure control's story is an assertion's (:func:`nsgsolve.reports.contracts.detail`):
witness table, trace, the allow rule of every layer that let it through."""

from __future__ import annotations

from nsgsolve.analyses.baseline import BaselineResult, Control
from nsgsolve.analyses.results import Status
from nsgsolve.reports.contracts import describe_responsible, detail as contract_detail
from nsgsolve.reports.findings import Finding, Location
from nsgsolve.semantics.evaluate import FlowResult
from nsgsolve.model import Span
from nsgsolve.reports.trace import step_where

FIX = {
    "exposure": "Fix: remove or narrow the allow rule(s) listed as responsible (a source narrower than the "
                "Internet, or no such port), or add a deny rule before them; if the exposure is intended, waive "
                "it with a reason and an expiry date (--waivers, docs/baseline.md).",
    "any-to-any": "Fix: replace the rule with rules that name the sources, destinations, ports and protocol "
                  "that are needed.",
    "subnet-nsg": "Fix: associate an NSG with the subnet (hosts added to it later get no NIC NSG of yours).",
    "attached": "Fix: associate the NSG with the subnet or NIC it was written for, or delete it.",
}


def rule_id(c: Control) -> str:
    return f"baseline/{c.id}"


def rule_help(c: Control) -> str:
    lines = [c.title, f"Source: {c.benchmark}."]
    if c.kind == "exposure":
        lines.append(f"Proved: no packet from the Internet ({c.service}) is allowed to any NIC, any address of a "
                     "subnet behind its NSG, or a host behind an NSG attached to nothing, through every layer "
                     "(admin rules, subnet and NIC NSGs, default rules). Internet: public address space outside every "
                     "VNet's VirtualNetwork tag.")
    if c.checkov or c.tfsec:
        lines.append("Same question as: " + ", ".join(c.checkov + c.tfsec) + ".")
    lines.append(FIX[c.kind])
    return "\n".join(lines)


def detail(r: BaselineResult) -> str:
    lines = [f"control {r.control.id}: {r.control.title} [{r.control.benchmark}]"]
    if r.contract is not None and (r.status is not Status.PASS or r.waiver is not None):
        lines.append(contract_detail(r.contract))
    elif r.responsible:
        lines.append("responsible:")
        for x in r.responsible:
            loc = f"  {x.span}" if x.span is not None and x.span.line > 0 else ""
            lines.append(f"  {describe_responsible(x)}{loc}")
    lines += [f"note: {n}" for n in r.notes]
    if r.waiver is not None:
        w = r.waiver
        until = w.expires.isoformat() if w.expires else "no date"
        lines.append(f"waiver ({r.waiver_state}, {w.span}): {w.reason} (expires {until})")
    return "\n".join(lines)


def _flow(w: FlowResult) -> tuple[Location, ...]:
    return tuple(Location.from_span(s.rule_span if isinstance(s.rule_span, Span) else None,
                                    f"{s.direction.value} {step_where(s)}: {s.access.value} by {s.rule}"
                                    + ("" if s.evaluated else f" ({s.skipped})"))
                 for s in w.trace)


def baseline_finding(r: BaselineResult, file: str) -> Finding:
    """The result in the generic report shape; ``file`` is the POLICY argument it came from."""
    c = r.control
    related = tuple(Location.from_span(x.span, describe_responsible(x)) for x in r.responsible
                    if x.span is not None and x.span.line > 0)
    flow = _flow(r.contract.witness) if r.contract is not None and r.contract.witness is not None else ()
    span = r.span if r.span.line > 0 else Span(file, 0, 0)
    title = r.summary if r.status is Status.PASS else f"{c.title}: {r.target}: {r.summary}"
    return Finding(
        rule_id=rule_id(c), name=r.name, status=r.status, title=title,
        location=Location.from_span(span, r.target), rule_short=c.title,
        rule_full=f"{c.title} ({c.benchmark})", rule_help=rule_help(c), detail=detail(r), level="error",
        related=related, flow=flow, category="baseline", seconds=r.seconds,
        rule_properties={"checkov": list(c.checkov), "tfsec": list(c.tfsec), "benchmark": c.benchmark,
                         "set": c.set},
        rule_name=c.id,
        data={"file": file, **r.to_dict()},
    )


__all__ = ["baseline_finding", "detail", "rule_help", "rule_id"]
