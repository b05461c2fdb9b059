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
    r = ctx.rule
    msg = f"{_subject(r)} can never match: {unmatchable_reason(ctx.linter.rp, r, ctx.la.boxes_of(ctx.i))}"
    ctx.add(UNMATCHABLE, msg + ctx.sole_tag_note())
    return True
