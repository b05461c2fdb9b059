"""NSG005 outside-attachment: a rule whose destination (inbound) or source (outbound) lies outside every
subnet and NIC the NSG is attached to in this VNet, so no traffic it matches ever meets the NSG."""

from __future__ import annotations

from nsgsolve.analyses.lint.context import RuleContext, _subject, side_text
from nsgsolve.analyses.lint.findings import CodeInfo
from nsgsolve.model import Direction
from nsgsolve.regions.box import DST, SRC

OUTSIDE_ATTACHMENT = CodeInfo(
    "NSG005", "outside-attachment", "warning", "Rule targets addresses the NSG never guards",
    "The rule's destination (inbound) or source (outbound) lies outside every subnet and NIC the NSG is "
    "attached to, so no traffic it matches ever meets this NSG.",
    ("its destination (inbound) / source (outbound) is outside every",
     "subnet and NIC the NSG is attached to (warning)"))


def check(ctx: RuleContext) -> bool:
    r, nsg = ctx.rule, ctx.nsg
    guarded, labels = ctx.linter.guarded(nsg.name, nsg.vnet)
    field, what = (DST, "destination") if ctx.direction is Direction.INBOUND else (SRC, "source")
    if labels and not any(b[field].intersection(guarded) for b in ctx.la.boxes_of(ctx.i)) and not ctx.sole_tags:
        side = r.nsg_rule.destination if ctx.direction is Direction.INBOUND else r.nsg_rule.source
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        ctx.add(OUTSIDE_ATTACHMENT, f"{_subject(r)} can never see traffic: its {what} ({side_text(side)}) "
                                    f"lies outside every subnet and NIC {nsg.name} is attached to ({shown})")
        ctx.decided = True
    return False
