"""NSG009 ipv6-not-analysed: a rule that matches IPv6 packets is never judged on its IPv4 packets alone.

lint analyses the IPv4 packets of a rule list (its region arithmetic works in one address family). In a
policy with IPv6 addresses (``ResolvedPolicy.has_ipv6``), a rule whose two sides hold IPv6 addresses
(IPv6 prefixes, ``*``, a tag's IPv6 part, a NIC's IPv6 configuration) decides IPv6 packets the IPv4
analysis does not see: a dual-stack rule reported "can never match" (NSG003) invited the deletion of a
live rule (issue 15). So :func:`check`, first, keeps a rule that matches IPv6 packets only, and
:func:`qualify`, last, turns a removal finding (NSG001-NSG005) of a rule that also matches IPv6 packets
into this note, quoting the IPv4 verdict.
"""

from __future__ import annotations

from dataclasses import replace

from nsgsolve.analyses.lint.context import RuleContext, _subject
from nsgsolve.analyses.lint.findings import CodeInfo, Finding
from nsgsolve.model import V6_BASE, Cidr, IpRange, PrefixSide, item_text
from nsgsolve.semantics.addresses import ALL_V6, is_v6
from nsgsolve.semantics.resolve import AddrSet, ResolvedPolicy
from nsgsolve.regions.box import DPORT, PROTO, SPORT

NOT_ANALYSED = CodeInfo(
    "NSG009", "ipv6-not-analysed", "info", "Rule matching IPv6 packets kept but not judged",
    "The rule matches IPv6 packets, and lint analyses IPv4 packets, so no removal finding (unmatchable, "
    "shadowed, redundant, outside attachment, dead across layers) is given on its IPv4 packets alone: the "
    "message quotes the IPv4 verdict; judge the IPv6 part (query and check decide both families).",
    ("it matches IPv6 packets, which lint does not analyse: kept, not judged (info)",))


def ipv6_items(side: object) -> list[str]:
    if isinstance(side, PrefixSide):
        return [item_text(it) for it in side.items if isinstance(it, (Cidr, IpRange)) and it.lo >= V6_BASE]
    return []


def _has_ipv6(rp: ResolvedPolicy, side: AddrSet) -> bool:
    """The resolved side holds an IPv6 address: a prefix, a tag's IPv6 part, a NIC's IPv6 configuration."""
    if side.intervals.meets(ALL_V6):
        return True
    for k in side.members:
        info = rp.ipcs[k]
        if (info.ip is not None and is_v6(info.ip)) or (info.ip is None and info.usable.meets(ALL_V6)):
            return True
    return False


def may_match_ipv6(ctx: RuleContext) -> bool:
    r = ctx.rule
    return _has_ipv6(ctx.linter.rp, r.src) and _has_ipv6(ctx.linter.rp, r.dst) and not _empty_in_every_family(ctx)


def check(ctx: RuleContext) -> bool:
    """A rule that matches no IPv4 packet but IPv6 ones: kept, never called unmatchable."""
    if not (ctx.linter.dual_stack and ctx.facts.empty and may_match_ipv6(ctx)):
        return False
    rule = ctx.rule.nsg_rule
    v6 = ipv6_items(rule.source) + ipv6_items(rule.destination)
    shown = f" ({', '.join(v6[:3])}{f' and {len(v6) - 3} more' if len(v6) > 3 else ''})" if v6 else ""
    ctx.add(NOT_ANALYSED, f"{_subject(ctx.rule)} matches IPv6 packets only{shown}: nsgsolve's lint analyses "
                          "IPv4 packets, so it is kept and not judged (no unmatchable, shadowed or redundant "
                          "finding is given for it)")
    ctx.decided = True
    return True


# The findings that invite removing or rewriting a rule: in a dual-stack policy they rest on IPv4 alone.
_REMOVAL = ("NSG001", "NSG002", "NSG003", "NSG004", "NSG005", "AVNM001")


def _empty_in_every_family(ctx: RuleContext) -> bool:
    # Ports on an Icmp rule, or an empty port list, empty the rule for IPv6 packets too.
    box = ctx.la.boxes[ctx.i]
    return not box[PROTO] or not box[SPORT] or not box[DPORT]


def qualify(ctx: RuleContext, dual: bool) -> list[Finding]:
    """The rule's findings, where a removal finding of a rule that also matches IPv6 packets (in a
    dual-stack policy) becomes NSG009 quoting the IPv4 verdict: true of IPv4 packets, unknown of IPv6 ones."""
    if not dual or ctx.rule.nsg_rule.is_default or not may_match_ipv6(ctx):
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
