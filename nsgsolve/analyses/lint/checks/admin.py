"""AVNM001 dead-by-admin-rule and AVNM002 shadowed-admin-rule: the security admin layer (Azure Virtual
Network Manager) seen from lint.

Azure evaluates a VNet's admin rules before the NSGs of its NICs (docs/semantics.md, "Security admin
rules"): where the first admin match is Deny the packet is dropped and where it is AlwaysAllow the NSGs
of that direction are not consulted. An NSG rule whose every packet (that it decides in its NSG, at a
NIC the NSG guards in that VNet) meets such an admin rule first never decides anything Azure evaluates:
AVNM001. It is an error when an admin rule gives some of those packets the opposite decision (the NSG
author's Allow is dropped, or their Deny is let through), a warning when the outcome is the rule's own.
As with NSG001, the only rule of an NSG naming an AzurePlatform* tag is never called removable: its presence
makes the NSG filter platform DNS/IMDS traffic, so deleting it changes decisions it never makes itself.

AVNM002 is NSG001 on each VNet's admin list: an admin rule every packet of which earlier admin rules
decide (error when one of them decides some of its packets with another action).
"""

from __future__ import annotations

from nsgsolve.analyses.lint.context import REMOVABLE, RuleContext, _names, _subject
from typing import Literal

from nsgsolve.analyses.lint.engine import ListAnalysis, _bits, _first, pick
from nsgsolve.analyses.lint.findings import CodeInfo, RuleRef, _ref, admin_owner
from nsgsolve.model import Access, Direction
from nsgsolve.regions.box import DST, SRC, Box, Splitter, box_intersection, box_is_empty
from nsgsolve.semantics.addresses import IntervalSet

# A packet the rule decides that the admin layer decides first, the admin rule deciding it, and every admin
# rule that decides some such packet (indices into the admin list).
_Dead = tuple[tuple[int, ...], int, list[int]]

DEAD_BY_ADMIN = CodeInfo(
    "AVNM001", "dead-by-admin-rule", "error", "NSG rule never decides: security admin rules decide its traffic first",
    "Every packet the NSG rule would decide, at the NICs its NSG guards, is first matched by a security admin "
    "rule (Azure Virtual Network Manager) that denies it or always allows it, so Azure never consults the NSG "
    "for it. Error when an admin rule gives some of those packets the opposite decision (an Allow whose "
    "traffic is dropped, a Deny whose traffic is let through), warning when they all get the rule's own.",
    ("an admin Deny or AlwaysAllow decides every packet it would decide",
     "(error when some get the opposite decision, else warning)"))
SHADOWED_ADMIN = CodeInfo(
    "AVNM002", "shadowed-admin-rule", "error", "Security admin rule is fully shadowed by higher-priority admin rules",
    "Every packet the security admin rule matches is decided by admin rules of higher priority applied to the "
    "same VNet. Error when some of its packets get another action (Deny, Allow or AlwaysAllow), warning when "
    "they all get its own.",
    ("an admin rule every packet of which earlier admin rules decide",
     "(error when some get another action, else warning)"))


def _opposes(nsg_access: Access, admin_access: Access) -> bool:
    """An admin decision that overrides the NSG rule's intent: its Allow dropped, its Deny let through."""
    if nsg_access is Access.ALLOW:
        return admin_access is Access.DENY
    return admin_access is Access.ALWAYS_ALLOW


def _admin_ref(r) -> RuleRef:
    return _ref(r, admin_owner(r.admin_rule))


def check_dead(ctx: RuleContext) -> bool:
    """AVNM001 for an NSG rule; ends the rule when it holds (its NSG-level findings would mislead)."""
    nsg, linter = ctx.nsg, ctx.linter
    if nsg.vnet is None or ctx.facts.empty or ctx.facts.shadowed:
        return False
    admin = linter.admin_analysis(nsg.vnet, ctx.direction)
    if admin is None:
        return False
    layer, afam = admin
    nics = linter.nic_endpoints(nsg, ctx.direction)
    r = ctx.rule
    # Per address family (each its own space): dead only when no packet of either reaches the rule.
    found: list[_Dead] = []
    for la, ala in zip(ctx.la.parts, afam.parts):
        got = _decided_by_admin(ctx, la, ala, nics)
        if got is False:
            return False  # some packet it decides goes on to the NSGs
        if got is not None:
            found.append(got)
    if not found:
        return False  # it decides nothing at these NICs (NSG005 or the list analysis says why)
    # Prefer a packet whose admin decision overrides the rule's intent: that is the finding's point.
    point, j, _ = next((g for g in found if _opposes(r.access, afam.access[g[1]])), found[0])
    deciders = [layer.rules[k] for k in sorted({k for g in found for k in g[2]})]
    by = layer.rules[j]
    conflict = _opposes(r.access, by.access)
    if ctx.sole_tags and not conflict:
        return True  # not removable (it switches the platform bypass off), and nothing else is wrong with it
    what = "drops it" if by.access is Access.DENY else "allows it past the NSGs"
    w = linter.witness(point, by.name)
    to = "to" if ctx.direction is Direction.INBOUND else "from"
    msg = (f"{_subject(r)} never decides anything: every packet it would decide {to} the NICs "
           f"{nsg.name} guards in VNet {nsg.vnet} is decided first by security admin rules "
           f"({_names([_admin_ref(x) for x in deciders])}); e.g. {w}: admin rule {by.name} {what}")
    if not conflict:
        msg += f", as the rule itself would decide{REMOVABLE}"
    msg += ctx.sole_tag_note()
    ctx.add(DEAD_BY_ADMIN, msg, [_admin_ref(x) for x in deciders], w, "error" if conflict else "warning")
    return True


def _decided_by_admin(ctx: RuleContext, la: ListAnalysis, ala: ListAnalysis, nics: IntervalSet
                      ) -> _Dead | Literal[False] | None:
    """In one address family: False when a packet the rule decides at the NICs its NSG guards reaches the
    NSGs; None when it decides no packet there; else a packet it decides (one an admin rule decides against
    its intent when there is one), the admin rule deciding it, and every admin rule deciding some."""
    inbound = ctx.direction is Direction.INBOUND
    field = DST if inbound else SRC
    b = la.boxes[ctx.i]
    u = Box(*(b[d].intersection(nics) if d == field else b[d] for d in range(5)))
    if box_is_empty(u):
        return None
    earlier = _bits(la.meeting(ctx.i) & ((1 << ctx.i) - 1))
    ameet = [j for j in range(ala.n) if not box_is_empty(box_intersection(ala.boxes[j], u))]
    if not ameet:  # nothing of the admin layer here: whatever the rule decides reaches the NSGs
        return False if Splitter([[la.boxes[j] for j in earlier]], universe=u).find(lambda ms: ms[0] == 0) else None
    sp = Splitter([[la.boxes[j] for j in earlier], [ala.boxes[j] for j in ameet]], universe=u)

    def admin_first(m: int) -> int | None:
        return ameet[_first(m)] if m else None

    def reaches_rule(ms: tuple[int, ...]) -> bool:
        j = admin_first(ms[1])
        return ms[0] == 0 and (j is None or ala.access[j] is Access.ALLOW)

    if sp.find(reaches_rule) is not None:
        return False
    r = ctx.rule
    got = (sp.find(lambda ms: ms[0] == 0 and _opposes(r.access, ala.access[ameet[_first(ms[1])]]), pick)
           or sp.find(lambda ms: ms[0] == 0, pick))
    if got is None:
        return None
    mask0 = sp.list_masks[0]

    def leaf(c: int) -> int:
        if c & mask0:
            return 0
        m = c & sp.list_masks[1]
        return m & -m

    firsts = _bits((sp.fold(leaf) & sp.list_masks[1]) >> sp.offsets[1])
    point, ms = got
    j = admin_first(ms[1])
    assert j is not None
    return point, j, [ameet[k] for k in firsts]


def check_shadowed(ctx: RuleContext) -> bool:
    """AVNM002 for an admin rule (``ctx`` is over one VNet's admin list)."""
    f, r, rules = ctx.facts, ctx.rule, ctx.rules
    if not f.shadowed:
        return False
    cover = [_admin_ref(rules[j]) for j in f.cover]
    msg = f"{_subject(r)} is fully shadowed by {_names(cover)}"
    if f.conflict is not None:
        point, j = f.conflict
        w = ctx.linter.witness(point, rules[j].name, ctx.la)
        msg += f"; {rules[j].name} gives some of its packets another action ({rules[j].access.value}), e.g. {w}"
        ctx.add(SHADOWED_ADMIN, msg, cover, w, "error")
    else:
        msg += f"; every packet it matches gets its own action ({r.access.value}){REMOVABLE}"
        ctx.add(SHADOWED_ADMIN, msg, cover, None, "warning")
    return True
