"""NSG004 dead-across-layers: an Allow rule whose every decided packet another layer of the same NIC's
path denies (the NIC NSG behind a subnet NSG, the subnet NSG behind a NIC NSG, the platform's outbound
TCP 25 block). The path analysis is :mod:`nsgsolve.analyses.lint.layers`."""

from __future__ import annotations

from nsgsolve.analyses.lint.context import RuleContext, _names, _subject
from nsgsolve.analyses.lint.findings import CodeInfo
from nsgsolve.analyses.results import Witness
from nsgsolve.model import Access, Direction

DEAD_ACROSS_LAYERS = CodeInfo(
    "NSG004", "dead-across-layers", "warning", "Allow rule is always overridden by another layer",
    "Every packet the Allow rule decides for a NIC is denied at another layer of that NIC's path (its NIC "
    "NSG or subnet NSG in the same direction, or the platform's outbound TCP 25 block).",
    ("an Allow whose packets another layer of every NIC path denies (warning)",))


def check(ctx: RuleContext) -> bool:
    r, linter = ctx.rule, ctx.linter
    if not linter.cross_layer or r.access is not Access.ALLOW:
        return False
    cross = linter.layers(ctx.nsg, ctx.direction)
    dead = cross.dead(ctx.i) if cross is not None else None
    if dead is None:
        return False
    nics, deniers = dead.nics, dead.deniers
    shown = ", ".join(nics[:4]) + (f" and {len(nics) - 4} more" if len(nics) > 4 else "")
    to = "to" if ctx.direction is Direction.INBOUND else "from"
    msg = (f"{_subject(r)} never lets anything through: every packet it allows "
           f"{to} {shown} is denied at another layer, by {_names(deniers)}")
    w = None
    if dead.point is not None and dead.denied_by is not None:
        packet = linter.space_for(dead.point).packet(dead.point)[0]  # plain addresses: decoding is the identity
        w = Witness.at(packet, dead.src_dynamic, dead.dst_dynamic, r.name, f"denied by {dead.denied_by}")
        msg += f"; e.g. {w} is allowed here and denied by {dead.denied_by}"
    ctx.add(DEAD_ACROSS_LAYERS, msg, deniers, w)
    ctx.decided = True
    return False
