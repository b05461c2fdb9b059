"""What a check sees of one rule, and the wording helpers the checks share.

The linter (:mod:`nsgsolve.analyses.lint.linter`) builds one :class:`RuleContext` per rule, in one VNet's
resolution of the NSG and one direction, and runs the registered checks on it in order
(:mod:`nsgsolve.analyses.lint.registry`). A check adds findings through :meth:`RuleContext.add`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

from nsgsolve.analyses.lint.engine import RuleFacts
from nsgsolve.analyses.lint.families import Families
from nsgsolve.analyses.lint.findings import CodeInfo, Finding, RuleRef, admin_owner
from nsgsolve.analyses.results import Witness
from nsgsolve.model import AnyAddress, AsgSide, Direction, PrefixSide, Rule, TagSide, item_text
from nsgsolve.regions.box import DPORT, DST, PROTO, SPORT, SRC, Box
from nsgsolve.semantics.platform import platform_tag
from nsgsolve.semantics.resolve import ResolvedNsg, ResolvedPolicy, ResolvedRule

REMOVABLE = ", so it can be removed"


@dataclass
class RuleContext:
    """One rule under lint. ``decided``: a finding that excludes the other exclusive checks was added."""

    linter: Any  # the Linter running the checks (witnesses, attachments, other layers); it sits above them
    nsg: ResolvedNsg
    direction: Direction
    la: Families  # the rule list in each address family of the policy
    i: int
    facts: RuleFacts
    sole_tags: set[str]  # AzurePlatform* tags only this rule of the NSG names
    out: list[Finding] = field(default_factory=list)
    decided: bool = False

    def sole_tag_note(self) -> str:
        """What to add to a finding that could read as "delete it" when the rule is the only one of its NSG
        naming an AzurePlatform* tag: its mere presence makes the NSG filter that platform traffic, so removing
        it changes decisions although the rule itself decides nothing."""
        if not self.sole_tags:
            return ""
        name = self.nsg.name
        return (f"; but it is the only rule of {name} naming {', '.join(sorted(self.sole_tags))}, which makes "
                f"{name} filter that platform traffic: fix the rule rather than delete it")

    @property
    def rules(self) -> tuple[ResolvedRule, ...]:
        return self.nsg.rules(self.direction)

    @property
    def rule(self) -> ResolvedRule:
        return self.rules[self.i]

    @cached_property
    def live(self) -> Witness:
        """A packet the rule decides (only for a rule that is neither unmatchable nor shadowed)."""
        assert self.facts.live is not None
        return self.linter.witness(self.facts.live, self.rule.name, self.la)

    def add(self, code: CodeInfo, message: str, covered: Sequence[RuleRef] = (), witness: Witness | None = None,
            severity: str | None = None) -> None:
        r = self.rule
        # An admin rule's finding is placed by its collection (admin rule names are unique only there).
        where, layer = ((self.nsg.name, "nsg") if isinstance(r.rule, Rule)
                        else (admin_owner(r.admin_rule), "admin"))
        self.out.append(Finding(code.code, severity or code.severity, where, self.direction, r.name,
                                r.priority, r.access, r.rule.span, tuple(covered), witness, message, layer=layer))


def _names(refs: Sequence[RuleRef], limit: int = 6) -> str:
    parts = [str(r) for r in refs[:limit]]
    if len(refs) > limit:
        parts.append(f"{len(refs) - limit} more")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _subject(r: ResolvedRule) -> str:
    kind = "rule" if isinstance(r.rule, Rule) else "admin rule"
    return f"{kind} {r.name} (priority {r.priority}, {r.access.value})"


def _rule_platform_tags(rule) -> set[str]:
    tags = (platform_tag(side.tag.name) for side in (rule.source, rule.destination) if isinstance(side, TagSide))
    return {t for t in tags if t is not None}


def _sole_platform_tags(nsg: ResolvedNsg, r: ResolvedRule) -> set[str]:
    """The AzurePlatform* tags that ``r`` alone names in its NSG (either direction)."""
    mine = _rule_platform_tags(r.rule)
    if not mine:
        return set()
    for other in nsg.inbound + nsg.outbound:
        if other.rule is not r.rule:
            mine -= _rule_platform_tags(other.rule)
    return mine


def side_text(side: object, limit: int = 4) -> str:
    """A rule side as the policy wrote it, shortened."""
    if isinstance(side, AnyAddress):
        return "*"
    if isinstance(side, TagSide):
        return side.tag.name
    if isinstance(side, AsgSide):
        return ", ".join(a.name for a in side.asgs)
    if isinstance(side, PrefixSide):
        items = [item_text(it, bare_hosts=True) for it in side.items]
        return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
    return str(side)


def unmatchable_reason(rp: ResolvedPolicy, r: ResolvedRule, boxes: Sequence[Box]) -> str:
    """Why a rule matches nothing, from its box in each address family of the policy (all empty)."""
    rule = r.nsg_rule
    box = boxes[0]  # protocol and ports are the same in every family
    reasons = []
    if not box[PROTO]:
        reasons.append(f"it is an {rule.protocol.value} rule with ports, and only Tcp and Udp packets carry ports")
    for label, side, d in (("source", rule.source, SRC), ("destination", rule.destination, DST)):
        if not any(b[d] for b in boxes):
            reasons.append(f"its {label} {_why_empty(rp, side)}")
    for label, d in (("source ports", SPORT), ("destination ports", DPORT)):
        if not box[d]:
            reasons.append(f"its {label} list is empty")
    if not reasons and len(boxes) > 1:
        # Each side has addresses, but of two families (empty in one family each): no packet has both.
        src, dst = ("IPv4", "IPv6") if boxes[0][SRC] else ("IPv6", "IPv4")
        reasons.append(f"its source has {src} addresses only and its destination {dst} addresses only, and a "
                       "packet is IPv4 or IPv6")
    return "; ".join(reasons) or "its match set is empty"


def _why_empty(rp: ResolvedPolicy, side: object) -> str:
    if isinstance(side, AsgSide):
        names = [a.name for a in side.asgs]
        used = {a for info in rp.ipcs.values() for a in info.asgs}
        if not any(n in used for n in names):
            which = (f"application security group {names[0]} has" if len(names) == 1
                     else f"application security groups {', '.join(names)} have")
            return f"{which} no members"
        return "names only application security groups whose members have no usable address"
    if isinstance(side, PrefixSide):
        return "resolves to no address" if rp.has_ipv6 else "resolves to no IPv4 address"
    if isinstance(side, TagSide):
        return f"is service tag {side.tag.name}, which has no {'' if rp.has_ipv6 else 'IPv4 '}addresses here"
    return "matches no address"
