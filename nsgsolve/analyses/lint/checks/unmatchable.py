"""NSG003 unmatchable-rule: the rule matches no packet at all, with the reason.

Runs first: a rule that matches nothing has no other finding. The only rule of an NSG naming an
AzurePlatform* tag still matters (it switches the platform bypass off), so its message says to fix it
rather than delete it.
"""

from __future__ import annotations

from nsgsolve.analyses.lint.context import RuleContext, _subject, unmatchable_reason
from nsgsolve.analyses.lint.findings import CodeInfo

UNMATCHABLE = CodeInfo(
    "NSG003", "unmatchable-rule", "warning", "Rule can match no packet",
    "The rule matches nothing at all: an application security group without members, "
    "an Icmp/Esp/Ah rule with ports, a service tag without addresses, a source of one address family and a "
    "destination of the other.",
    ("it matches no packet at all, with the reason (warning)",))


def check(ctx: RuleContext) -> bool:
    if not ctx.facts.empty:
        return False
    r, nsg = ctx.rule, ctx.nsg
    msg = f"{_subject(r)} can never match: {unmatchable_reason(ctx.linter.rp, r, ctx.la.boxes_of(ctx.i))}"
    if ctx.sole_tags:
        msg += (f"; but it is the only rule of {nsg.name} naming {', '.join(sorted(ctx.sole_tags))}, which makes "
                f"{nsg.name} filter that platform traffic: fix the rule rather than delete it")
    ctx.add(UNMATCHABLE, msg)
    return True
