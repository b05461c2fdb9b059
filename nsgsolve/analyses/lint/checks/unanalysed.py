"""NSG009 ipv6-not-analysed: a rule that lists IPv6 prefixes is kept and not judged.

Runs before every other check. lint analyses the IPv4 packets of a rule list (its region arithmetic works
in one address family); an IPv6 packet matches the IPv6 prefixes of a rule, so the IPv4 analysis of such
a rule (empty, shadowed, redundant...) says nothing about the traffic it decides: a dual-stack rule
reported "can never match" would invite the deletion of a live rule. The rule gets this note instead of
any finding that suggests removing it.
"""

from __future__ import annotations

from dataclasses import replace

from nsgsolve.analyses.lint.context import RuleContext, _subject
from nsgsolve.analyses.lint.findings import CodeInfo, Finding
from nsgsolve.model import V6_BASE, AsgSide, Cidr, IpRange, PrefixSide, item_text
from nsgsolve.regions.box import DPORT, PROTO, SPORT

NOT_ANALYSED = CodeInfo(
    "NSG009", "ipv6-not-analysed", "info", "Rule with IPv6 prefixes kept but not analysed",
    "The rule lists IPv6 prefixes. IPv6 packets match it, and nsgsolve analyses IPv4 packets only, so no "
    "finding about the rule (unmatchable, shadowed, redundant, ...) is given: judge its IPv6 part yourself.",
    ("it lists IPv6 prefixes, which nsgsolve does not analyse: kept, not judged (info)",))


def ipv6_items(side: object) -> list[str]:
    if isinstance(side, PrefixSide):
        return [item_text(it) for it in side.items if isinstance(it, (Cidr, IpRange)) and it.lo >= V6_BASE]
    return []


def check(ctx: RuleContext) -> bool:
    rule = ctx.rule.nsg_rule
    v6 = ipv6_items(rule.source) + ipv6_items(rule.destination)
    if not v6:
        return False
    shown = ", ".join(v6[:3]) + (f" and {len(v6) - 3} more" if len(v6) > 3 else "")
    ctx.add(NOT_ANALYSED, f"{_subject(ctx.rule)} lists IPv6 prefixes ({shown}): IPv6 packets match it, and "
                          "nsgsolve analyses IPv4 only, so it is kept and not judged (no unmatchable, shadowed "
                          "or redundant finding is given for it)")
    ctx.decided = True
    return True


# The findings that invite removing or rewriting a rule: in a dual-stack policy they rest on IPv4 alone.
_REMOVAL = ("NSG001", "NSG002", "NSG003", "NSG004", "NSG005")


def _may_match_ipv6(ctx: RuleContext, side: object) -> bool:
    # `*`, service tags (Internet, VirtualNetwork and most tags have IPv6 prefixes) and ASGs with members
    # (who may have IPv6 configurations) may hold IPv6 addresses; IPv4 prefixes alone do not.
    if isinstance(side, AsgSide):
        used = {a for info in ctx.linter.rp.ipcs.values() for a in info.asgs}
        return any(a.name in used for a in side.asgs)
    return not isinstance(side, PrefixSide) or bool(ipv6_items(side))


def _empty_in_every_family(ctx: RuleContext) -> bool:
    # Ports on an Icmp rule, or an empty port list, empty the rule for IPv6 packets too.
    box = ctx.la.boxes[ctx.i]
    return not box[PROTO] or not box[SPORT] or not box[DPORT]


def qualify(ctx: RuleContext, dual: bool) -> list[Finding]:
    """The rule's findings, where a removal finding of a rule that also matches IPv6 packets (in a
    dual-stack policy) becomes NSG009 quoting the IPv4 verdict: true of IPv4 packets, unknown of IPv6 ones."""
    rule = ctx.rule.nsg_rule
    if not dual or rule.is_default or _empty_in_every_family(ctx) or \
            not (_may_match_ipv6(ctx, rule.source) and _may_match_ipv6(ctx, rule.destination)):
        return ctx.out
    out = []
    for f in ctx.out:
        if f.code in _REMOVAL:
            f = replace(f, code=NOT_ANALYSED.code, severity=NOT_ANALYSED.severity, covered_by=(), witness=None,
                        message=f"for IPv4 packets only ({f.code}): {f.message}; the rule also matches IPv6 "
                                "packets of this dual-stack policy, which nsgsolve does not analyse: judge its "
                                "IPv6 part before changing it")
        out.append(f)
    return out
