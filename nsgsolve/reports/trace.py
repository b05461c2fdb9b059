"""A decided flow for people: the decision, one line per NSG layer met, the notes.

``verify`` prints it, ``query`` indents it under each witness, ``check`` puts it in a failing
assertion's story: one renderer, so a flow reads the same wherever it appears.
"""

from __future__ import annotations

from nsgsolve.model import Access
from nsgsolve.semantics.addresses import int_to_ip
from nsgsolve.semantics.evaluate import FlowResult, TraceStep
from nsgsolve.semantics.resolve import IpcKey


def step_where(s: TraceStep) -> str:
    """The layer of a step: ``MyNSG on subnet v/s``, ``admin rules of vnet hub`` or ``platform``."""
    if s.layer == "admin":
        return f"admin rules of {s.attached_to}"
    return f"{s.nsg} on {s.attached_to}" if s.nsg else "platform"


def step_line(s: TraceStep) -> str:
    """``Inbound  MyNSG on subnet v/s: Allow by web (priority 100)  file.nsg:21:5``; a layer Azure never
    consulted ends with why: ``(not evaluated: an earlier layer denied)``."""
    prio = f" (priority {s.priority})" if s.priority is not None else ""
    default = " [default rule]" if s.is_default else ""
    span = s.rule_span
    loc = f"  {span}" if span is not None and getattr(span, "line", 0) > 0 else ""
    if s.layer == "admin" and s.priority is None:
        what = "no admin rule matches: the NSGs decide"
    else:
        what = f"{s.access.value} by {s.rule}{prio}{default}"
        if s.admin_collection:
            what += f" in {s.admin_collection}"
        if s.layer == "admin" and s.access is Access.ALLOW:
            what += ": the NSGs decide"
    skipped = f"  ({s.skipped})" if not s.evaluated else ""
    return f"{s.direction.value:<8} {step_where(s)}: {what}{loc}{skipped}"


def trace_lines(r: FlowResult) -> list[str]:
    return [step_line(s) for s in r.trace] or ["(no NSG on the path)"]


def short_step(s: TraceStep | None) -> str:
    """One layer's decision in a few words, for side-by-side comparisons (``diff``)."""
    if s is None:
        return "(no NSG)"
    prio = f" ({s.priority})" if s.priority is not None else ""
    text = f"{s.access.value} {s.rule}{prio}" + (f" of {s.nsg}" if s.nsg else "")
    return text if s.evaluated else f"{text}, {s.skipped or 'not evaluated'}"


def endpoint_text(ip: int, key: IpcKey | None) -> str:
    return f"{int_to_ip(ip)} (nic {key})" if key else int_to_ip(ip)


def format_flow(r: FlowResult) -> str:
    """The human trace: decision, then one line per layer, then notes."""
    p = r.packet
    ports = f" sport {p.sport} dport {p.dport}" if p.has_ports else ""
    lines = [f"{r.decision.value.upper()}  {p.protocol_name} {endpoint_text(p.src, r.src_endpoint)} -> "
             f"{endpoint_text(p.dst, r.dst_endpoint)}{ports}"]
    lines += [f"  {t}" for t in trace_lines(r)]
    for n in r.notes:
        lines.append(f"  note: {n}")
    return "\n".join(lines)


__all__ = ["endpoint_text", "format_flow", "short_step", "step_line", "step_where", "trace_lines"]
