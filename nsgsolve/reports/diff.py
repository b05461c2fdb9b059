"""A policy diff for people (blocks of changed regions per endpoint pair) and as a JSON document.

The analysis names its selections by side (sources, destinations); the command passes the words its
user typed for them (``flags``, e.g. ``{"sources": "--from", "destinations": "--to"}``) so notes read
in the user's terms.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from nsgsolve.analyses.diff import DESTINATIONS, SOURCES, DiffResult, PairDiff, PartialItem, Region
from nsgsolve.model import PORTED_PROTOCOLS
from nsgsolve.regions.box import DPORT, DST, PROTO, SPORT, SRC, describe_protocols
from nsgsolve.reports.trace import short_step
from nsgsolve.semantics.addresses import ALL_PORTS, ALL_V6, IntervalSet, describe_ips, describe_ports, is_v6
from nsgsolve.semantics.evaluate import FlowResult, TraceStep

FLAGS = {SOURCES: "--from", DESTINATIONS: "--to"}
PORTED_SET = IntervalSet([(p, p) for p in PORTED_PROTOCOLS])


def note_text(n: str | PartialItem, flags: Mapping[str, str] = FLAGS) -> str:
    if isinstance(n, PartialItem):
        return f"{flags[n.side]} {n.item}: unknown in {n.missing_in}, resolved in {n.known_in} only"
    return n


def nothing_compared_text(r: DiffResult, flags: Mapping[str, str] = FLAGS) -> str:
    why = r.nothing_compared
    if why == "selection":
        return (f"the {flags[SOURCES]}/{flags[DESTINATIONS]} selection leaves no pair with a NIC of both versions "
                "at one end (traffic with no NIC at either end meets no NSG)")
    if why == "no-common-nic":
        return ("no NIC is in both versions at a common address, so no pair has an NSG of both versions "
                "on its path; the traffic of the NICs listed above (in one version only, or moved) was not compared")
    if why == "no-nic":
        return "neither version has a NIC, so no NSG decides any packet in either"
    return ""


def diff_dict(r: DiffResult, old_name: str, new_name: str, flags: Mapping[str, str] = FLAGS) -> dict[str, Any]:
    """The ``diff`` JSON document's payload (docs/json.md)."""
    return {
        "summary": {"opened": len(r.opened), "closed": len(r.closed), "pairs_changed": len(r.pairs),
                    "pairs_compared": r.pairs_compared, "nothing_compared": nothing_compared_text(r, flags) or None},
        "endpoints": [c.to_dict() for c in r.endpoint_changes],
        "notes": [note_text(n, flags) for n in r.notes],
        "pairs": [p.to_dict() for p in r.pairs],
        "old": old_name,
        "new": new_name,
    }


def format_diff(r: DiffResult, old_name: str, new_name: str, flags: Mapping[str, str] = FLAGS) -> str:
    lines = [f"diff {old_name} -> {new_name}: {len(r.opened)} opened, {len(r.closed)} closed region(s) in "
             f"{len(r.pairs)} endpoint pair(s); {r.pairs_compared} pair(s) compared"]
    lines += [f"  note: {note_text(n, flags)}" for n in r.notes]
    for c in r.endpoint_changes:
        if c.change == "readdressed":
            how = "compared on the addresses both allow" if c.compared else "not compared: no common address"
            lines.append(f"  readdressed: {c.name}: {c.old} -> {c.new} ({how})")
        else:
            lines.append(f"  {c.change}: {c.name} ({c.old or c.new}), not compared")
    if r.nothing_compared:
        lines.append(f"nothing compared: {nothing_compared_text(r, flags)}")
    elif r.is_empty:
        lines.append("no difference: OLD and NEW decide every packet alike between the endpoints compared")
    for block in group_pairs(r.pairs):
        lines.append("")
        lines += format_block(block)
    return "\n".join(lines) + "\n"


def group_pairs(pairs: tuple[PairDiff, ...]) -> list[list[PairDiff]]:
    """Pairs whose regions differ only in one endpoint's own addresses (19 NICs behind one NSG losing
    the same port) print as one block; JSON keeps every pair with its own witness."""
    def shape(p: PairDiff, vary: int) -> tuple:
        fixed = p.destination.name if vary == SRC else p.source.name
        return (vary, fixed, tuple((g.kind, *(g.box[f] for f in range(5) if f != vary)) for g in p.regions))

    blocks: dict[tuple, list[PairDiff]] = {}
    for p in pairs:
        blocks.setdefault(shape(p, SRC), []).append(p)
    out: list[list[PairDiff]] = []
    singles: dict[tuple, list[PairDiff]] = {}
    for block in blocks.values():
        if len(block) > 1:
            out.append(block)
        else:
            singles.setdefault(shape(block[0], DST), []).append(block[0])
    out += list(singles.values())
    order = {id(p): i for i, p in enumerate(pairs)}
    return sorted(out, key=lambda b: order[id(b[0])])


def format_block(block: list[PairDiff]) -> list[str]:
    first = block[0]
    if len(block) == 1:
        lines = [f"{first.source.label} -> {first.destination.label}"]
    elif len({p.source.name for p in block}) > 1:
        lines = [f"{_names([p.source.name for p in block])} -> {first.destination.label}"]
    else:
        lines = [f"{first.source.label} -> {_names([p.destination.name for p in block])}"]
    for i, g in enumerate(first.regions):
        box = list(g.box)
        for f in (SRC, DST):
            box[f] = IntervalSet([iv for p in block for iv in p.regions[i].box[f]])
        lines += format_region(g, tuple(box))
    if len(block) > 1:
        lines.append(f"  (witness and rules shown for {first.source.name} -> {first.destination.name}; "
                     f"--json gives one per pair)")
    return lines


def _names(names: list[str], limit: int = 8) -> str:
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more + f" [{len(names)}]"


def format_pair(p: PairDiff) -> list[str]:
    lines = [f"{p.source.label} -> {p.destination.label}"]
    for g in p.regions:
        lines += format_region(g)
    return lines


def _addresses(s: IntervalSet) -> str:
    """A region's address side. An IPv6 side that is most of the IPv6 space reads as "::/0 except ..."
    (ranges such as ``::-2001:db7:ffff:...`` say little); IPv4 sides print as they always have."""
    if s and is_v6(s.min()):
        rest = ALL_V6.difference(s)
        if rest and len(rest) < len(s):
            return f"::/0 except {describe_ips(rest)}"
    return describe_ips(s)


def describe_region(g: Region) -> str:
    """``Tcp 203.0.113.0/24 -> 10.0.1.4 dport 22`` (source ports only when not ``*``)."""
    b = g.box
    ported = bool(b[PROTO].intersection(PORTED_SET))
    text = f"{describe_protocols(b[PROTO])} {_addresses(b[SRC])} -> {_addresses(b[DST])}"
    if ported:
        if b[SPORT] != ALL_PORTS:
            text += f" sport {describe_ports(b[SPORT])}"
        text += f" dport {describe_ports(b[DPORT])}"
    return text


def format_region(g: Region, box=None) -> list[str]:
    shown = g if box is None else replace(g, box=box)
    lines = [f"  {g.kind.upper():<7} {describe_region(shown)}",
             f"    witness {g.witness}: OLD {g.old.decision.value.lower()}, NEW {g.new.decision.value.lower()}"]
    for where, before, after in changed_steps(g.old, g.new):
        lines.append(f"    {where}: {before} -> {after}")
    return lines


def changed_steps(old: FlowResult, new: FlowResult) -> list[tuple[str, str, str]]:
    """Layers whose deciding rule differs between the versions, as (where, OLD step, NEW step)."""
    def key(s: TraceStep) -> tuple:
        return (s.attached_to, s.direction)

    o = {key(s): s for s in old.trace}
    n = {key(s): s for s in new.trace}
    out = []
    for k in list(o) + [k for k in n if k not in o]:
        a, b = o.get(k), n.get(k)
        # A layer Azure skipped on one side and consulted on the other changed too (an admin AlwaysAllow
        # gone makes an NSG's rule decide again), even with the same rule in both traces.
        if a is None or b is None or (a.nsg, a.rule, a.access, a.evaluated) != (b.nsg, b.rule, b.access, b.evaluated):
            out.append((f"{k[0]} {k[1].value.lower()}", short_step(a), short_step(b)))
    return out


__all__ = [
    "FLAGS",
    "changed_steps",
    "describe_region",
    "diff_dict",
    "format_diff",
    "format_pair",
    "format_region",
    "group_pairs",
    "note_text",
    "nothing_compared_text",
]
