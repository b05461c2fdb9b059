"""A query's answer for people: verdict, what it covers, witnesses with their traces, the exact set."""

from __future__ import annotations

from typing import Callable

from nsgsolve.analyses.query import ExactBox, Hosts, QueryResult, Verdict
from nsgsolve.analyses.results import Witness, describe_params
from nsgsolve.regions.box import describe_protocols
from nsgsolve.reports.trace import format_flow
from nsgsolve.semantics.addresses import (
    ALL_IPS, ALL_PORTS, ALL_V6, IntervalSet, describe_ips, describe_ports, int_to_ip, is_v6,
)

VERDICT_TEXT = {
    Verdict.ALL: "ALL of this traffic is allowed",
    Verdict.SOME: "SOME of this traffic is allowed, some is blocked",
    Verdict.NONE: "NONE of this traffic is allowed",
}


MORE = "more: --json lists every one"


def describe_hosts(h: Hosts) -> str:
    parts = []
    if h.addresses:
        nic_ips = IntervalSet([(ip, ip) for ip in h.nic_ips])
        if h.addresses == nic_ips:
            parts.append(", ".join(h.nics))
        else:
            parts.append(_describe_addresses(h.addresses, h.internet))
            if h.nics:
                parts[-1] += f" (NICs {', '.join(h.nics)} and outside hosts)"
    for name, where in h.dynamic:
        parts.append(name if where is None else f"{name} when its dynamic IP is in {describe_ips(where, 24, MORE)}")
    return ", ".join(parts)


def _describe_addresses(s: IntervalSet, internet: IntervalSet) -> str:
    """Addresses in the shortest of: a name (any, Internet), a list, "any except" / "Internet except" a list."""
    # A longer list says how many more there are and where they all are: the text stays readable and the
    # "nothing else is allowed" promise stays checkable.
    limit = 24
    # A box lies in one address family: "any" and "Internet" mean that family's (IPv6 ones say so).
    v6 = bool(s) and is_v6(s.min())
    family, any_, inet = (ALL_V6, "any IPv6", "IPv6 Internet") if v6 else (ALL_IPS, "any", "Internet")
    internet = internet.intersection(family)
    if s == family:
        return any_
    if internet and s == internet:
        return inet
    options: list[tuple[float, str]] = [(len(s), describe_ips(s, limit, MORE))]
    rest = family.difference(s)
    options.append((len(rest) + 0.5, f"{any_} except {describe_ips(rest, limit, MORE)}"))
    if internet and internet.issubset(s):
        more = s.difference(internet)
        options.append((len(more) + 0.5, f"{inet}, {describe_ips(more, limit, MORE)}"))
    elif internet and s.issubset(internet):
        less = internet.difference(s)
        options.append((len(less) + 0.5, f"{inet} except {describe_ips(less, limit, MORE)}"))
    return min(options)[1]


def describe_box(b: ExactBox, hosts: Callable[[Hosts], str] = describe_hosts) -> str:
    """``tcp port 443: Internet -> web1, web2``: one line of the exact allowed set (``hosts`` words each
    side; the report passes a memoised :func:`describe_hosts`, as the same sides recur in many cells)."""
    ports = ""
    if b.has_ports:
        ports = f" port {describe_ports(b.dports)}"
        if b.sports != ALL_PORTS:
            ports += f" from port {describe_ports(b.sports)}"
    return f"{describe_protocols(b.protocols)}{ports}: {hosts(b.src)} -> {hosts(b.dst)}"


def _indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def _witness(title: str, w: Witness) -> list[str]:
    assert w.flow is not None  # a query's witnesses are always replayed through the evaluator
    lines = [f"  {title}:", _indent(format_flow(w.flow))]
    for k, ip in w.dynamic_ips:
        if k in (w.src_nic, w.dst_nic):  # the others only had to be elsewhere
            lines.append(f"    (with dynamic NIC {k} at {int_to_ip(ip)})")
    if w.params:
        lines.append(f"    ({describe_params(w.params)})")
    return lines


def format_query(r: QueryResult, where: str = "") -> str:
    """The answer for people: verdict, what it covers, witnesses with their traces, the exact set."""
    head = r.query.text or "query"
    lines = [
        f"{head}" + (f"    ({where})" if where else ""),
        f"  verdict: {r.verdict.value} — {VERDICT_TEXT[r.verdict]}",
    ]
    lines += [f"  note: {n}" for n in r.notes]
    if r.coverage is not None and r.coverage.rows:
        lines.append(f"  covers {r.coverage.side}s:")
        for label, v in r.coverage.rows:
            lines.append(f"    {label}: {v.value}" if v is not None else f"    {label}")
    if r.allowed_witness is not None:
        lines += _witness("allowed, for example", r.allowed_witness)
    if r.blocked_witness is not None:
        lines += _witness("blocked, for example", r.blocked_witness)
    if r.exact is not None:
        if not r.exact:
            lines.append("  exact allowed set: empty")
        else:
            lines.append(f"  exact allowed set ({len(r.exact)} box{'es' if len(r.exact) != 1 else ''}; "
                         "every combination within a line is allowed, nothing else is):")
            lines += [f"    {describe_box(b)}" for b in r.exact]
    return "\n".join(lines)


__all__ = ["VERDICT_TEXT", "describe_box", "describe_hosts", "format_query"]
