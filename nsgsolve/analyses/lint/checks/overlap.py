"""NSG006 correlated-rule and NSG007 generalizes-rule (informational, ``lint --all``): Al-Shaer's
correlation (partial overlap with a higher-priority rule of the opposite action) and generalization (a
superset of such a rule), for rules that still decide something."""

from __future__ import annotations

from nsgsolve.analyses.lint.context import RuleContext, _names, _subject
from nsgsolve.analyses.lint.findings import CodeInfo, _ref

CORRELATED = CodeInfo(
    "NSG006", "correlated-rule", "info", "Rule partially overlaps a higher-priority rule of the opposite action",
    "Some packets the rule matches are decided the other way by a higher-priority rule, others by this "
    "rule. Informational (shown with --all).",
    ("partial overlap with an earlier rule of the opposite action (info, --all)",))
GENERALIZES = CodeInfo(
    "NSG007", "generalizes-rule", "info", "Rule is a superset of a higher-priority rule of the opposite action",
    "The rule matches everything a higher-priority rule of the opposite action matches, and more: the "
    "usual exception-then-general pattern. Informational (shown with --all).",
    ("superset of an earlier rule of the opposite action (info, --all)",))


def check(ctx: RuleContext) -> bool:
    f, r, rules = ctx.facts, ctx.rule, ctx.rules
    if f.correlated:
        refs = [_ref(rules[j]) for j in f.correlated]
        ctx.add(CORRELATED, f"{_subject(r)} partially overlaps {_names(refs)} with the opposite action; "
                            f"it still decides e.g. {ctx.live}", refs, ctx.live)
    if f.generalizes:
        refs = [_ref(rules[j]) for j in f.generalizes]
        ctx.add(GENERALIZES, f"{_subject(r)} generalizes {_names(refs)}: it matches all of "
                             f"{'its' if len(refs) == 1 else 'their'} packets and more, with the opposite "
                             f"action; it still decides e.g. {ctx.live}", refs, ctx.live)
    return False
