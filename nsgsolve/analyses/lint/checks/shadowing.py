"""NSG001 shadowed-rule and NSG002 redundant-rule: rules whose removal changes nothing, or that never decide.

Shadowed: every packet the rule matches is decided by higher-priority rules (error when some get the
opposite decision, with a witness; warning when all get the rule's own). Redundant: the rule decides
packets, but the rules below it would decide each the same way. Both come from the list analysis
(:mod:`nsgsolve.analyses.lint.engine`). The only rule of an NSG naming an AzurePlatform* tag is never
removable (removing it lets platform DNS/IMDS traffic past the NSG), so it gets neither warning, and an
error about it says to fix it rather than delete it.
"""

from __future__ import annotations

from nsgsolve.analyses.lint.context import REMOVABLE, RuleContext, _names, _subject
from nsgsolve.analyses.lint.findings import CodeInfo, _ref

SHADOWED = CodeInfo(
    "NSG001", "shadowed-rule", "error", "Rule is fully shadowed by higher-priority rules",
    "Every packet the rule matches is decided by rules of higher priority, so it never decides anything. "
    "Error when some of its packets get the opposite decision (the rule's intent is overridden), warning "
    "when they all get the decision it would give (it can simply be removed).",
    ("every packet it matches is decided by higher-priority rules",
     "(error when some of them get the opposite decision, else warning)"))
REDUNDANT = CodeInfo(
    "NSG002", "redundant-rule", "warning", "Rule is redundant",
    "The rule decides some packets, but without it the rules below (default rules included) would decide "
    "every one of them the same way. Removing it alone changes no decision of the NSG.",
    ("removing it alone changes no decision (warning)",))


def check(ctx: RuleContext) -> bool:
    f, r, rules = ctx.facts, ctx.rule, ctx.rules
    if ctx.sole_tags and ((f.shadowed and f.conflict is None) or (not f.shadowed and f.redundant)):
        return True  # not removable, and nothing else is wrong with it
    if f.shadowed:
        cover = [_ref(rules[j]) for j in f.cover]
        msg = f"{_subject(r)} is fully shadowed by {_names(cover)}"
        if f.conflict is not None:
            point, j = f.conflict
            w = ctx.linter.witness(point, rules[j].name, ctx.la)
            msg += (f"; {rules[j].name} gives some of its packets the opposite decision "
                    f"({rules[j].access.value}), e.g. {w}{ctx.sole_tag_note()}")
            ctx.add(SHADOWED, msg, cover, w, "error")
        else:
            msg += f"; every packet it matches gets its own decision ({r.access.value}){REMOVABLE}"
            ctx.add(SHADOWED, msg, cover, None, "warning")
        return True
    if f.redundant:
        live = ctx.live
        take = [_ref(rules[j]) for j in f.takeover]
        ctx.add(REDUNDANT, f"{_subject(r)} is redundant: the packets it decides (e.g. {live}) would get the same "
                           f"decision ({r.access.value}) without it, from {_names(take)}", take, live)
        ctx.decided = True
    return False
