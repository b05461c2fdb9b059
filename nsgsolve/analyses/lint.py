"""Rule anomaly analysis (``nsgsolve lint``): which rules of an NSG still matter, and why not.

For every NSG, in every VNet where it is evaluated (``VirtualNetwork`` and ``Internet`` differ per VNet),
and for each direction, every user rule gets at most one of these findings, the first that applies:

* **NSG003 unmatchable-rule**: the rule matches no packet at all (an ASG without members, only IPv6
  prefixes, an Icmp rule with ports, a service tag without IPv4 data), with the reason.
* **NSG001 shadowed-rule**: every packet it matches is decided by higher-priority rules. The finding
  names a small covering set (greedy by overlap, then minimised; a rule that decides some of its packets
  the other way is always in it). *Error* when some of its packets get the opposite decision (the
  author's intent is overridden, with a witness packet), *warning* when they all get its own.
* **NSG002 redundant-rule**: it decides some packets, but the rules below it (defaults included) would
  decide every one of them the same way, so removing it changes nothing.
* **NSG005 outside-attachment**: its destination (inbound) or source (outbound) lies outside every
  subnet and NIC the NSG is attached to, so it can never see traffic.
* **NSG004 dead-across-layers**: an Allow rule that decides traffic for NICs, but every such packet is
  denied at another layer of the same NIC's path (the NIC NSG behind a subnet NSG, the subnet NSG behind
  a NIC NSG, the platform's outbound TCP 25 block).

With ``include_info`` two informational findings are added for rules that still decide something:
**NSG006 correlated-rule** (partial overlap with a higher-priority rule of the opposite action) and
**NSG007 generalizes-rule** (a superset of such a rule): Al-Shaer's correlation and generalization.

Everything is exact region arithmetic (:mod:`nsgsolve.regions.box`) in the extended space of
:mod:`nsgsolve.regions.space`, so answers cover every address Azure may give a dynamic NIC. Per rule
the question is asked only inside the rule's own box, against the rules whose boxes meet it (found with
per-field bitsets), after cheap attempts that settle most rules: a greedy search for a packet no earlier
rule matches, and single-rule containment.

Redundancy is a property of one rule at a time: two identical rules are each redundant, but not both
removable together. Default rules are never reported (they cannot be removed) but take part as the
rules below every user rule.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from nsgsolve.semantics.addresses import ALL_IPS, MAX_IP, IntervalSet, ip_to_int
from nsgsolve.parallel import fork_map
from nsgsolve.model import (
    span_dict,
    Access,
    AnyAddress,
    AsgSide,
    Direction,
    Ipv6Prefix,
    PrefixSide,
    Span,
    TagSide,
    item_text,
)
from nsgsolve.regions.box import DPORT, DST, PROTO, SPORT, SRC, Box, Splitter, box_intersection, box_subset
from nsgsolve.semantics.resolve import IpcKey, ResolvedNsg, ResolvedPolicy, ResolvedRule
from nsgsolve.semantics.platform import platform_tag
from nsgsolve.regions.space import Space
from nsgsolve.analyses.results import Witness

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class CodeInfo:
    """A finding kind: its stable code and slug (SARIF ruleId ``NSG001/shadowed-rule``) and texts."""

    code: str
    slug: str
    severity: str  # the highest severity a finding of this kind can have
    title: str
    help: str

    @property
    def rule_id(self) -> str:
        return f"{self.code}/{self.slug}"


SHADOWED = CodeInfo(
    "NSG001", "shadowed-rule", "error", "Rule is fully shadowed by higher-priority rules",
    "Every packet the rule matches is decided by rules of higher priority, so it never decides anything. "
    "Error when some of its packets get the opposite decision (the rule's intent is overridden), warning "
    "when they all get the decision it would give (it can simply be removed).")
REDUNDANT = CodeInfo(
    "NSG002", "redundant-rule", "warning", "Rule is redundant",
    "The rule decides some packets, but without it the rules below (default rules included) would decide "
    "every one of them the same way. Removing it alone changes no decision of the NSG.")
UNMATCHABLE = CodeInfo(
    "NSG003", "unmatchable-rule", "warning", "Rule can match no packet",
    "The rule matches nothing at all: an application security group without members, only IPv6 prefixes, "
    "an Icmp/Esp/Ah rule with ports, a service tag without IPv4 addresses.")
DEAD_ACROSS_LAYERS = CodeInfo(
    "NSG004", "dead-across-layers", "warning", "Allow rule is always overridden by another layer",
    "Every packet the Allow rule decides for a NIC is denied at another layer of that NIC's path (its NIC "
    "NSG or subnet NSG in the same direction, or the platform's outbound TCP 25 block).")
OUTSIDE_ATTACHMENT = CodeInfo(
    "NSG005", "outside-attachment", "warning", "Rule targets addresses the NSG never guards",
    "The rule's destination (inbound) or source (outbound) lies outside every subnet and NIC the NSG is "
    "attached to, so no traffic it matches ever meets this NSG.")
CORRELATED = CodeInfo(
    "NSG006", "correlated-rule", "info", "Rule partially overlaps a higher-priority rule of the opposite action",
    "Some packets the rule matches are decided the other way by a higher-priority rule, others by this "
    "rule. Informational (shown with --all).")
GENERALIZES = CodeInfo(
    "NSG007", "generalizes-rule", "info", "Rule is a superset of a higher-priority rule of the opposite action",
    "The rule matches everything a higher-priority rule of the opposite action matches, and more: the "
    "usual exception-then-general pattern. Informational (shown with --all).")

UNUSED_OBSERVED = CodeInfo(
    "NSG008", "unused-in-observed-period", "warning", "Rule decided no logged flow in the observed period",
    "With --flow-logs: replaying the flow logs (nsgsolve replay), no logged flow was decided by the rule while "
    "its NSG saw traffic. A candidate for removal once the period is known to cover what the rule is for.")

CODES: tuple[CodeInfo, ...] = (SHADOWED, REDUNDANT, UNMATCHABLE, DEAD_ACROSS_LAYERS, OUTSIDE_ATTACHMENT,
                               CORRELATED, GENERALIZES, UNUSED_OBSERVED)
CODE_BY_ID = {c.code: c for c in CODES}


# ---------------------------------------------------------------- findings


@dataclass(frozen=True)
class RuleRef:
    """A rule named in a finding (a covering rule, a rule that decides instead)."""

    name: str
    priority: int | None  # None for the platform's rules
    access: Access
    span: Span
    is_default: bool = False
    nsg: str | None = None  # set when the rule is in another NSG than the finding's ("platform" for Azure's)

    def to_dict(self) -> dict:
        d = {"rule": self.name, "priority": self.priority, "access": self.access.value,
             "location": span_dict(self.span)}
        if self.nsg is not None:
            d["nsg"] = self.nsg
        return d

    def __str__(self) -> str:
        where = f"{self.nsg}: " if self.nsg else ""
        prio = f"priority {self.priority}, " if self.priority is not None else ""
        return f"{where}{self.name} ({prio}{self.access.value})"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    nsg: str
    direction: Direction
    rule: str
    priority: int
    access: Access
    span: Span
    covered_by: tuple[RuleRef, ...]
    witness: Witness | None
    message: str
    vnets: tuple[str, ...] = ()  # VNets where it holds, when not in every VNet the NSG is evaluated in

    @property
    def info(self) -> CodeInfo:
        return CODE_BY_ID[self.code]

    @property
    def rule_id(self) -> str:
        return self.info.rule_id

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "nsg": self.nsg, "direction": self.direction.value,
                "rule": self.rule, "location": span_dict(self.span),
                "covered_by": [c.to_dict() for c in self.covered_by],
                "witness": self.witness.to_dict() if self.witness else None, "message": self.message,
                "vnets": list(self.vnets) or None}


# ---------------------------------------------------------------- per-field candidate bitsets


class _FieldIndex:
    """One field of one rule list: elementary segments, the rules covering each (bitset), and a segment
    tree of ORs, so "which rules meet this set" costs O(log n) big-int ORs per interval."""

    __slots__ = ("starts", "masks", "tree", "size")

    def __init__(self, sets: Sequence[IntervalSet]):
        events: dict[int, int] = {0: 0}
        for i, s in enumerate(sets):
            bit = 1 << i
            for lo, hi in s:
                events[lo] = events.get(lo, 0) ^ bit
                events[hi + 1] = events.get(hi + 1, 0) ^ bit
        self.starts = sorted(events)
        masks, cur = [], 0
        for p in self.starts:
            cur ^= events[p]
            masks.append(cur)
        self.masks = masks
        size = 1
        while size < len(masks):
            size *= 2
        tree = [0] * (2 * size)
        tree[size:size + len(masks)] = masks
        for k in range(size - 1, 0, -1):
            tree[k] = tree[2 * k] | tree[2 * k + 1]
        self.tree, self.size = tree, size

    def seg(self, v: int) -> int:
        return bisect_right(self.starts, v) - 1

    def lookup(self, v: int) -> int:
        return self.masks[bisect_right(self.starts, v) - 1]

    def meeting(self, s: IntervalSet) -> int:
        acc = 0
        tree = self.tree
        for lo, hi in s:
            l, r = self.seg(lo) + self.size, self.seg(hi) + self.size + 1
            while l < r:
                if l & 1:
                    acc |= tree[l]
                    l += 1
                if r & 1:
                    r -= 1
                    acc |= tree[r]
                l >>= 1
                r >>= 1
        return acc

    def segments_within(self, s: IntervalSet, limit: int) -> list[int]:
        """Indices of the segments inside ``s`` (``s`` is one of the indexed sets, so segments never
        straddle its bounds), evenly thinned to at most ``limit``."""
        ranges = [(self.seg(lo), self.seg(hi)) for lo, hi in s]
        total = sum(r - l + 1 for l, r in ranges)
        out: list[int] = []
        if total <= limit:
            for l, r in ranges:
                out.extend(range(l, r + 1))
            return out
        step = total / limit
        flat_pos = [int(k * step) for k in range(limit)]
        base, it = 0, iter(flat_pos)
        want = next(it, None)
        for l, r in ranges:
            n = r - l + 1
            while want is not None and want < base + n:
                out.append(l + want - base)
                want = next(it, None)
            base += n
        return out

    def segment_set(self, k: int, within: IntervalSet) -> IntervalSet:
        hi = self.starts[k + 1] - 1 if k + 1 < len(self.starts) else max(h for _, h in within)
        return within.intersection(IntervalSet([(self.starts[k], hi)]))


# ---------------------------------------------------------------- readable witness values

_ADDR_PREFS = [ip_to_int("203.0.113.7")]
_PREFS = {PROTO: [6, 17, 1], DPORT: [443, 80, 22, 3389, 53, 25], SPORT: [49152]}


def pick(d: int, s: IntervalSet) -> int:
    """A readable value of ``s`` for field ``d``: Tcp, well-known ports, a documentation address, or an
    address past the network's first four (Azure's reserved ones) rather than x.y.z.0."""
    for v in _PREFS.get(d, _ADDR_PREFS if d in (SRC, DST) else ()):
        if v in s:
            return v
    x = s.min()
    if d in (SRC, DST) and x & 0xFF == 0:
        for lo, hi in s:
            if lo == x and hi >= x + 4:
                return x + 4
    return x


# ---------------------------------------------------------------- one rule list


def _greedy(index: Sequence[_FieldIndex], within: Box, avoid: int) -> tuple[int, ...] | None:
    """Field by field, the value inside ``within`` that the fewest ``avoid`` rules match (sampling at most
    ESCAPE_SAMPLES segments a field): a point no ``avoid`` rule matches, or None when this greedy choice
    does not find one (which proves nothing)."""
    values = [0] * 5
    rem = avoid
    for d in (PROTO, DPORT, SPORT, SRC, DST):
        ix = index[d]
        if not rem:
            values[d] = pick(d, within[d])
            continue
        best = None
        for k in ix.segments_within(within[d], ESCAPE_SAMPLES):
            left = rem & ix.masks[k]
            score = left.bit_count()
            if best is None or score < best[0]:
                best = (score, k, left)
                if score == 0:
                    break
        assert best is not None
        rem = best[2]
        values[d] = pick(d, ix.segment_set(best[1], within[d]))
    return tuple(values) if not rem else None


def _bits(m: int) -> list[int]:
    out = []
    while m:
        low = m & -m
        out.append(low.bit_length() - 1)
        m ^= low
    return out


def _volume(b: Box) -> int:
    v = 1
    for s in b:
        v *= s.size()
    return v


@dataclass(frozen=True)
class RuleFacts:
    """Everything the list analysis knows about one rule (indices are positions in the list)."""

    index: int
    empty: bool = False
    shadowed: bool = False
    cover: tuple[int, ...] = ()
    conflict: tuple[tuple[int, ...], int] | None = None  # a packet decided the other way, and by which rule
    live: tuple[int, ...] | None = None  # a packet the rule decides
    live_next: int | None = None  # the rule that would decide ``live`` without it
    redundant: bool = False
    takeover: tuple[int, ...] = ()  # rules that decide its packets when it is removed
    correlated: tuple[int, ...] = ()
    generalizes: tuple[int, ...] = ()


# Ends the message of a rule whose packets all get its own decision earlier (_merge_vnets takes it back
# when that holds in only some of the NSG's VNets).
REMOVABLE = ", so it can be removed"

ESCAPE_SAMPLES = 48
SUBSUME_AGAINST = 64  # rules with the largest overlap that every other candidate is checked against


class ListAnalysis:
    """Shadowing, redundancy and overlap facts for one first-match list of boxes."""

    def __init__(self, boxes: Sequence[Box], access: Sequence[Access]):
        self.boxes = list(boxes)
        self.access = list(access)
        self.n = len(boxes)
        self.index = [_FieldIndex([b[d] for b in boxes]) for d in range(5)]
        self.allow = sum(1 << i for i, a in enumerate(access) if a is Access.ALLOW)
        self.full = (1 << self.n) - 1

    def meeting(self, i: int) -> int:
        b = self.boxes[i]
        m = self.full
        for d in (PROTO, DPORT, SPORT, SRC, DST):
            m &= self.index[d].meeting(b[d])
            if not m:
                break
        return m & ~(1 << i)

    def matching(self, point: Sequence[int]) -> int:
        m = self.full
        for d in range(5):
            m &= self.index[d].lookup(point[d])
        return m

    def opposite(self, i: int) -> int:
        return self.full & ~self.allow if self.access[i] is Access.ALLOW else self.allow

    def _escape(self, i: int, avoid: int, within: Box | None = None) -> tuple[int, ...] | None:
        return _greedy(self.index, self.boxes[i] if within is None else within, avoid)

    def _split(self, b: Box, rules: Iterable[int], first_match: bool) -> tuple[Splitter, list[int]]:
        """A partition of box ``b`` (a rule's box or part of it) by ``rules`` (kept in evaluation order), after
        dropping every rule whose part of the box lies inside another's: inside an earlier one it never decides there,
        and for a plain union question (``first_match`` False) inside any other it adds nothing. Fields
        are split in order of how many cuts the rules make in them, fewest first, so the wide address
        lists come last where each state holds few rules."""
        order = sorted(rules)
        clipped = [box_intersection(self.boxes[j], b) for j in order]
        if len(order) > 8:
            vol = [_volume(c) for c in clipped]
            big = sorted(range(len(order)), key=lambda k: -vol[k])[:SUBSUME_AGAINST]

            def dropped(k: int) -> bool:
                for k2 in big:
                    if vol[k2] < vol[k]:
                        return False  # ``big`` is by volume, largest first: nothing further can hold it
                    if k2 == k or (first_match and k2 > k):
                        continue
                    if box_subset(clipped[k], clipped[k2]) and (k2 < k or clipped[k] != clipped[k2]):
                        return True
                return False

            kept = [k for k in range(len(order)) if not dropped(k)]
            order = [order[k] for k in kept]
            clipped = [clipped[k] for k in kept]
        cuts = [sum(len(c[d]) for c in clipped) for d in range(5)]
        fields = sorted(range(5), key=lambda d: (cuts[d], d))
        return Splitter([[self.boxes[j] for j in order]], universe=b, order=fields), order

    def _covers(self, i: int, rules: Iterable[int]) -> bool:
        split, _ = self._split(self.boxes[i], rules, first_match=False)
        return split.find(lambda m: m[0] == 0) is None

    def analyze(self, i: int, info: bool = False) -> RuleFacts:
        b = self.boxes[i]
        if any(not s for s in b):
            return RuleFacts(i, empty=True)
        meet = self.meeting(i)
        earlier = meet & ((1 << i) - 1)
        later = meet & ~((1 << (i + 1)) - 1)
        elist = _bits(earlier)
        live = self._escape(i, earlier)
        if live is None:
            contained = next((j for j in elist if box_subset(b, self.boxes[j])), None)
            if contained is None:
                split, _ = self._split(b, elist, first_match=False)
                got = split.find(lambda m: m[0] == 0, pick)
                if got is not None:
                    live = got[0]
            if live is None:
                return self._shadowed(i, elist, contained)
        return self._live(i, live, elist, later, info)

    def _shadowed(self, i: int, elist: list[int], contained: int | None) -> RuleFacts:
        b = self.boxes[i]
        conflict = self._overridden(i, elist)
        forced = [conflict[1]] if conflict else []
        if contained is not None:
            # One rule covers it; keep the overriding one too, so the cover shows the dangerous rule.
            one = forced[0] if forced and box_subset(b, self.boxes[forced[0]]) else contained
            return RuleFacts(i, shadowed=True, cover=tuple(sorted(set(forced) | {one})), conflict=conflict)
        # Greedy by witness: while some packet of the rule escapes the cover, add the earlier rule that
        # matches it with the largest overlap; then drop every member the others make unneeded.
        earlier = sum(1 << j for j in elist)
        overlap: dict[int, int] = {}

        def ov(j: int) -> int:
            if j not in overlap:
                overlap[j] = _volume(box_intersection(b, self.boxes[j]))
            return overlap[j]

        cover = list(forced)
        while True:
            got = self._split(b, cover, first_match=False)[0].find(lambda m: m[0] == 0) if cover else None
            if cover and got is None:
                break
            point = got[0] if got else tuple(pick(d, b[d]) for d in range(5))
            cover.append(max(_bits(self.matching(point) & earlier), key=lambda j: (ov(j), -j)))
        for j in sorted((x for x in cover if x not in forced), key=lambda j: (ov(j), -j)):
            rest = [x for x in cover if x != j]
            part = box_intersection(b, self.boxes[j])
            if rest and self._split(part, rest, first_match=False)[0].find(lambda m: m[0] == 0) is None:
                cover = rest
        return RuleFacts(i, shadowed=True, cover=tuple(sorted(cover)), conflict=conflict)

    def _overridden(self, i: int, elist: list[int]) -> tuple[tuple[int, ...], int] | None:
        """A packet of rule ``i`` that an earlier rule of the other action decides, and that rule."""
        acc = self.access[i]
        b = self.boxes[i]
        opposite = [j for j in elist if self.access[j] is not acc]
        if not opposite:
            return None
        # Cheap first: aim at each opposite rule in turn, avoiding the earlier rules before it.
        for j in opposite[:4]:
            within = box_intersection(b, self.boxes[j])
            before = sum(1 << k for k in elist if k < j)
            point = self._escape(i, before, within)
            if point is not None:
                return point, j
        split, flist = self._split(b, elist, first_match=True)

        def first(m: int) -> int:
            return flist[(m & -m).bit_length() - 1]

        got = split.find(lambda m: m[0] != 0 and self.access[first(m[0])] is not acc, pick)
        return (got[0], first(got[1][0])) if got else None

    def _change(
        self, i: int, elist: list[int], later: int
    ) -> tuple[tuple[int, ...], int] | tuple[None, tuple[int, ...]]:
        """``(packet, rule)``: a packet rule ``i`` decides whose decision changes without it, and the rule
        that would decide it then; or ``(None, takeover)`` when there is none (the rule is redundant),
        with the rules that decide its packets in its place."""
        acc = self.access[i]
        b = self.boxes[i]
        earlier = sum(1 << j for j in elist)
        flist = _bits(later)
        # Cheap first: aim at a few later rules of the other action, avoiding every rule before each.
        for j in [j for j in flist if self.access[j] is not acc][:4]:
            within = box_intersection(b, self.boxes[j])
            point = self._escape(i, earlier | (later & ((1 << j) - 1)), within)
            if point is not None:
                return point, j
        split, rules = self._split(b, elist + flist, first_match=True)

        def first(m: int) -> int:
            return rules[(m & -m).bit_length() - 1]

        got = split.find(lambda m: m[0] != 0 and first(m[0]) > i and self.access[first(m[0])] is not acc, pick)
        if got is not None:
            return got[0], first(got[1][0])
        deciders = [rules[k] for k in _bits(split.fold(lambda c: c & -c))]
        return None, tuple(j for j in deciders if j > i)

    def _live(self, i: int, live: tuple[int, ...], elist: list[int], later: int, info: bool) -> RuleFacts:
        b = self.boxes[i]
        acc = self.access[i]
        rest = self.matching(live) & ~((1 << (i + 1)) - 1)
        nxt = (rest & -rest).bit_length() - 1 if rest else None
        redundant, takeover = False, ()
        if nxt is None or self.access[nxt] is acc:
            point, other = self._change(i, elist, later)
            if point is not None:
                live, nxt = point, other  # type: ignore[assignment]
            else:
                redundant, takeover = True, other  # type: ignore[assignment]
        correlated: list[int] = []
        generalizes: list[int] = []
        if info and not redundant:
            for j in elist:
                if self.access[j] is not acc:
                    (generalizes if box_subset(self.boxes[j], b) else correlated).append(j)
        return RuleFacts(i, live=live, live_next=nxt, redundant=redundant, takeover=takeover,
                         correlated=tuple(correlated), generalizes=tuple(generalizes))


# ---------------------------------------------------------------- NSGs, VNets, findings


def _ref(r: ResolvedRule, nsg: str | None = None) -> RuleRef:
    return RuleRef(r.name, r.priority, r.access, r.rule.span, r.rule.is_default, nsg)


def _names(refs: Sequence[RuleRef], limit: int = 6) -> str:
    parts = [str(r) for r in refs[:limit]]
    if len(refs) > limit:
        parts.append(f"{len(refs) - limit} more")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _subject(r: ResolvedRule) -> str:
    return f"rule {r.name} (priority {r.priority}, {r.access.value})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Linter:
    """Lints the NSGs of one resolved policy; analyses are cached per distinct rule list, so an NSG that
    resolves the same way in several VNets is analysed once."""

    def __init__(self, rp: ResolvedPolicy, include_info: bool = False, cross_layer: bool = True):
        self.rp = rp
        self.space = Space(rp)
        self.include_info = include_info
        self.cross_layer = cross_layer
        self._lists: dict[tuple, ListAnalysis] = {}
        self._facts: dict[tuple[int, int], RuleFacts] = {}
        self._cross: dict[tuple, CrossLayer] = {}

    # -- one list
    def analysis(self, nsg: ResolvedNsg, direction: Direction) -> ListAnalysis:
        rules = nsg.rules(direction)
        boxes = tuple(self.space.box(r) for r in rules)
        access = tuple(r.access for r in rules)
        key = (boxes, access)
        la = self._lists.get(key)
        if la is None:
            la = self._lists[key] = ListAnalysis(boxes, access)
        return la

    def facts(self, la: ListAnalysis, i: int) -> RuleFacts:
        key = (id(la), i)
        f = self._facts.get(key)
        if f is None:
            f = self._facts[key] = la.analyze(i, self.include_info)
        return f

    def layers(self, nsg: ResolvedNsg, direction: Direction) -> "CrossLayer":
        key = (nsg.name, nsg.vnet, direction)
        got = self._cross.get(key)
        if got is None:
            got = self._cross[key] = CrossLayer(self.rp, nsg, direction)
        return got

    # -- attachments
    def guarded(self, nsg: str, vnet: str | None) -> tuple[IntervalSet, list[str]]:
        """Every address (in the extended space) of the subnets and NICs the NSG is attached to in this
        VNet, and their names."""
        parts: list[tuple[int, int]] = []
        labels: list[str] = []
        for v, s in self.rp.policy.subnets():
            if v.name == vnet and s.nsg is not None and s.nsg.name == nsg:
                labels.append(f"subnet {v.name}/{s.name}")
                parts.append((s.prefix.lo, s.prefix.hi))
                for k, info in self.rp.ipcs.items():
                    if info.vnet == v.name and info.subnet == s.name and info.ip is None:
                        parts += list(self.space.endpoint_set(k))
        nics: list[str] = []
        for k, info in self.rp.ipcs.items():
            if info.nic_nsg == nsg and info.vnet == vnet:
                parts += list(self.space.endpoint_set(k))
                if k.nic not in nics:
                    nics.append(k.nic)
        labels += [f"nic {n}" for n in nics]
        return IntervalSet(parts), labels

    # -- findings
    def witness(self, point: tuple[int, ...], decided_by: str | None, la: ListAnalysis | None = None) -> Witness:
        if la is not None:
            point = self.consistent(point, la)
        packet, s, d = self.space.packet(point)
        return Witness.at(packet, s.dynamic, d.dynamic, decided_by)

    def consistent(self, point: tuple[int, ...], la: ListAnalysis) -> tuple[int, ...]:
        """``point`` with its two addresses made one possible assignment, when that changes no rule's match.

        The analysed space lets each side's dynamic NIC sit anywhere in its range independently, so a point
        may put two dynamic NICs on one address, a plain address on a dynamic NIC's, or one NIC at two
        addresses: sound for findings (they claim some set is empty), but such a witness cannot be replayed
        (``verify --assume-ip`` refuses it). Moving one side within its segment of the list's field index
        keeps every rule's match on that field, so the witness still shows what the finding says."""
        s, d = self.space.decode(point[SRC]), self.space.decode(point[DST])

        def ok(sv: int, dv: int) -> bool:
            a, b = self.space.decode(sv), self.space.decode(dv)
            if a.dynamic is not None and a.dynamic == b.dynamic:
                return a.ip == b.ip
            return a.ip != b.ip or (a.dynamic is None and b.dynamic is None)

        if ok(point[SRC], point[DST]):
            return point
        for field in (DST, SRC):
            v = point[field]
            ix = la.index[field]
            mask = ix.lookup(v)
            dyn = self.space.decode(v).dynamic  # a dynamic NIC's slot exactly when v > MAX_IP
            kind = self.space.ranges[dyn] if dyn is not None else ALL_IPS
            mine, theirs = (s, d) if field == SRC else (d, s)
            if mine.dynamic is not None and mine.dynamic == theirs.dynamic:
                candidates: Iterable[int] = [v - mine.ip + theirs.ip]  # the same NIC: the other side's address
            else:
                candidates = self._equivalents(ix, v, mask)
            for c in candidates:
                if c in kind and ix.lookup(c) == mask:
                    q = list(point)
                    q[field] = c
                    if ok(q[SRC], q[DST]):
                        return tuple(q)
        return point

    @staticmethod
    def _equivalents(ix: _FieldIndex, v: int, mask: int, limit: int = 64) -> Iterator[int]:
        """Values the same rules match as ``v`` does in this field: its neighbours, then the first few
        values of every other segment with the same rules (a /32 rule makes a one-value segment)."""
        for n in range(1, 5):
            yield v + n
            yield v - n
        tried = 0
        for j, m in enumerate(ix.masks):
            if m == mask:
                end = ix.starts[j + 1] if j + 1 < len(ix.starts) else ix.starts[j] + 4
                for c in range(ix.starts[j], min(end, ix.starts[j] + 4)):
                    yield c
                tried += 1
                if tried >= limit:
                    return

    def rule_findings(self, nsg: ResolvedNsg, direction: Direction, la: ListAnalysis, i: int) -> list[Finding]:
        """This rule's findings in one VNet's resolution of the NSG."""
        rules = nsg.rules(direction)
        r = rules[i]
        f = self.facts(la, i)
        out: list[Finding] = []

        def add(code: CodeInfo, message: str, covered: Sequence[RuleRef] = (), witness: Witness | None = None,
                severity: str | None = None) -> None:
            out.append(Finding(code.code, severity or code.severity, nsg.name, direction, r.name, r.priority,
                               r.access, r.rule.span, tuple(covered), witness, message))

        # The only rule of the NSG naming an AzurePlatform* tag switches the platform bypass off for that
        # service (semantics.md): removing it lets DNS / IMDS traffic past this NSG, so it is never removable,
        # whatever its own matches.
        sole_tags = _sole_platform_tags(nsg, r)
        if f.empty:
            msg = f"{_subject(r)} can never match: {unmatchable_reason(self.rp, r, la.boxes[i])}"
            if sole_tags:
                msg += (f"; but it is the only rule of {nsg.name} naming {', '.join(sorted(sole_tags))}, which makes "
                        f"{nsg.name} filter that platform traffic: fix the rule rather than delete it")
            add(UNMATCHABLE, msg)
            return out
        if sole_tags and ((f.shadowed and f.conflict is None) or (not f.shadowed and f.redundant)):
            return out  # not removable, and nothing else is wrong with it
        if f.shadowed:
            cover = [_ref(rules[j]) for j in f.cover]
            msg = f"{_subject(r)} is fully shadowed by {_names(cover)}"
            if f.conflict is not None:
                point, j = f.conflict
                w = self.witness(point, rules[j].name, la)
                msg += (f"; {rules[j].name} gives some of its packets the opposite decision "
                        f"({rules[j].access.value}), e.g. {w}")
                add(SHADOWED, msg, cover, w, "error")
            else:
                msg += f"; every packet it matches gets its own decision ({r.access.value}){REMOVABLE}"
                add(SHADOWED, msg, cover, None, "warning")
            return out
        assert f.live is not None
        live = self.witness(f.live, r.name, la)
        if f.redundant:
            take = [_ref(rules[j]) for j in f.takeover]
            add(REDUNDANT, f"{_subject(r)} is redundant: the packets it decides (e.g. {live}) would get the same "
                           f"decision ({r.access.value}) without it, from {_names(take)}", take, live)
        else:
            guarded, labels = self.guarded(nsg.name, nsg.vnet)
            field, what = (DST, "destination") if direction is Direction.INBOUND else (SRC, "source")
            if labels and not la.boxes[i][field].intersection(guarded) and not sole_tags:
                side = r.rule.destination if direction is Direction.INBOUND else r.rule.source
                shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
                add(OUTSIDE_ATTACHMENT, f"{_subject(r)} can never see traffic: its {what} ({side_text(side)}) "
                                        f"lies outside every subnet and NIC {nsg.name} is attached to ({shown})")
            elif self.cross_layer and r.access is Access.ALLOW:
                dead = self.layers(nsg, direction).dead(i, la.boxes[i])
                if dead is not None:
                    nics, deniers = dead.nics, dead.deniers
                    shown = ", ".join(nics[:4]) + (f" and {len(nics) - 4} more" if len(nics) > 4 else "")
                    to = "to" if direction is Direction.INBOUND else "from"
                    msg = (f"{_subject(r)} never lets anything through: every packet it allows "
                           f"{to} {shown} is denied at another layer, by {_names(deniers)}")
                    example: Witness | None = None
                    if dead.point is not None and dead.denied_by is not None:
                        packet = self.space.packet(dead.point)[0]  # plain addresses: decoding is the identity
                        example = Witness.at(packet, dead.src_dynamic, dead.dst_dynamic, r.name,
                                             f"denied by {dead.denied_by}")
                        msg += f"; e.g. {example} is allowed here and denied by {dead.denied_by}"
                    add(DEAD_ACROSS_LAYERS, msg, deniers, example)
        if self.include_info:
            if f.correlated:
                refs = [_ref(rules[j]) for j in f.correlated]
                add(CORRELATED, f"{_subject(r)} partially overlaps {_names(refs)} with the opposite action; "
                                f"it still decides e.g. {live}", refs, live)
            if f.generalizes:
                refs = [_ref(rules[j]) for j in f.generalizes]
                add(GENERALIZES, f"{_subject(r)} generalizes {_names(refs)}: it matches all of "
                                 f"{'its' if len(refs) == 1 else 'their'} packets and more, with the opposite "
                                 f"action; it still decides e.g. {live}", refs, live)
        return out

    def nsg_findings(self, name: str, rule: str | None = None) -> list[Finding]:
        return self.lint([name], rule)

    def status(self, name: str, rule: str) -> list[str]:
        """One sentence per VNet resolution (deduplicated) saying what the rule does: its findings, or a
        packet it decides and what would decide that packet without it."""
        per_vnet: list[tuple[str | None, str]] = []
        vnets = self.rp.evaluation_vnets(name)
        for vnet in vnets:
            nsg = self.rp.nsg(name, vnet)
            for direction in (Direction.INBOUND, Direction.OUTBOUND):
                rules = nsg.rules(direction)
                la = self.analysis(nsg, direction)
                for i, r in enumerate(rules):
                    if r.name != rule:
                        continue
                    found = self.rule_findings(nsg, direction, la, i)
                    if found:
                        text = "; ".join(f.message for f in found)
                    elif _sole_platform_tags(nsg, r):
                        tags = ", ".join(sorted(_sole_platform_tags(nsg, r)))
                        text = (f"{_subject(r)} is the only rule of {name} naming {tags}: it makes {name} filter "
                                f"that platform traffic, which otherwise bypasses the NSG, so it cannot be removed")
                    else:
                        f = self.facts(la, i)
                        assert f.live is not None and f.live_next is not None
                        nxt = rules[f.live_next]
                        text = (f"{_subject(r)} decides traffic in {name} ({direction.value}), e.g. "
                                f"{self.witness(f.live, r.name, la)}, which {nxt.name} (priority {nxt.priority}) would "
                                f"{'allow' if nxt.access is Access.ALLOW else 'deny'} without it")
                    per_vnet.append((vnet, text))
        if len({t for _, t in per_vnet}) <= 1:
            return [t for _, t in per_vnet[:1]]
        return [f"in VNet {v}: {t}" for v, t in per_vnet]

    def lint(self, nsgs: Sequence[str] | None = None, rule: str | None = None) -> list[Finding]:
        names = list(nsgs) if nsgs is not None else [n.name for n in self.rp.policy.nsgs]
        # Every rule of every NSG, VNet and direction is one independent task; the list analyses are built
        # first, so forked workers share them (nsgsolve.parallel).
        tasks: list[tuple[str, str | None, Direction, int]] = []
        lists: dict[tuple[str, str | None, Direction], tuple[ResolvedNsg, ListAnalysis]] = {}
        for name in names:
            for vnet in self.rp.evaluation_vnets(name):
                nsg = self.rp.nsg(name, vnet)
                for direction in (Direction.INBOUND, Direction.OUTBOUND):
                    lists[name, vnet, direction] = nsg, self.analysis(nsg, direction)
                    for i, r in enumerate(nsg.rules(direction)):
                        if not r.rule.is_default and (rule is None or r.name == rule):
                            tasks.append((name, vnet, direction, i))

        def run(task: tuple[str, str | None, Direction, int]) -> list[Finding]:
            nsg, la = lists[task[:3]]
            return self.rule_findings(nsg, task[2], la, task[3])

        found = dict(zip(tasks, fork_map(run, tasks)))
        out: list[Finding] = []
        for name in names:
            vnets = self.rp.evaluation_vnets(name)
            per_vnet = [[f for t in tasks if t[0] == name and t[1] == vnet for f in found[t]] for vnet in vnets]
            out += _merge_vnets([v or "(no VNet)" for v in vnets], per_vnet)
        return out


@dataclass
class _Context:
    """Paths through the NSG that share one set of first-match lists: NICs with the same layers seen
    from one kind of other endpoint. Static NICs with the same NSGs share lists exactly (a rule side can
    name a static NIC only by its address), so they are one context whose universe holds all their
    addresses."""

    nics: dict[str, IntervalSet]  # "nic web1" -> its addresses on the NSG's side of the packet
    layers: list  # PathLayer, same direction as the NSG (plus the platform's outbound rules)
    pos: int  # the NSG's layer
    universe: Box
    index: list[list[_FieldIndex]]
    here_dynamic: IpcKey | None = None  # the dynamic NIC on the NSG's side, when the context is one
    there_dynamic: IpcKey | None = None  # the dynamic NIC on the other side, when the context is one


@dataclass(frozen=True)
class DeadAcrossLayers:
    """Why an Allow rule is dead across layers: the NICs behind it, the denying rules of the other
    layers, and one packet the rule decides (Allow) on some NIC's path that ``denied_by`` denies."""

    nics: list[str]
    deniers: list[RuleRef]
    point: tuple[int, ...] | None = None
    src_dynamic: IpcKey | None = None
    dst_dynamic: IpcKey | None = None
    denied_by: RuleRef | None = None


class CrossLayer:
    """The paths through one NSG in one direction (and VNet) as first-match lists from
    :func:`nsgsolve.regions.paths.path_layers`: for every NIC whose path meets the NSG, against any address that
    is no dynamic NIC and against each dynamic NIC a rule names, the same-direction layers (and the
    platform's outbound rules). An Allow rule is dead when it decides packets on some of these paths and
    every one of them is denied at another layer."""

    def __init__(self, rp: ResolvedPolicy, nsg: ResolvedNsg, direction: Direction):
        from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS
        from nsgsolve.regions.paths import endpoint_addresses, path_layers
        from nsgsolve.regions.box import ALL_PROTOCOLS

        self.nsg = nsg
        self.direction = direction
        inbound = direction is Direction.INBOUND
        groups: dict[tuple, list[IpcKey]] = {}
        for k, info in rp.ipcs.items():
            if info.vnet == nsg.vnet and nsg.name in (info.subnet_nsg, info.nic_nsg):
                sig = (info.subnet_nsg, info.nic_nsg, info.vnet) if info.ip is not None else (k,)
                groups.setdefault(sig, []).append(k)
        self.contexts: list[_Context] = []
        for keys in groups.values():
            rep = keys[0]
            layer_nsgs = {l.nsg.name: l.nsg for l in (rp.inbound_layers(rep) if inbound else rp.outbound_layers(rep))}
            named: set[IpcKey] = set()  # dynamic configurations some rule of these layers names
            for n in layer_nsgs.values():
                for r in n.rules(direction):
                    named |= r.src.members | r.dst.members
            for other in [None] + sorted(k for k in named if k not in keys):
                src, dst = (other, rep) if inbound else (rep, other)
                layers = [l for l in path_layers(rp, src, dst) if l.direction is direction]
                mine = {f"nic {k}": endpoint_addresses(rp, k) for k in keys}
                here_dyn = rep if rp.ipcs[rep].ip is None else None
                there_dyn = other if other is not None and rp.ipcs[other].ip is None else None
                here = IntervalSet([iv for a in mine.values() for iv in a])
                there = ALL_IPS if other is None else endpoint_addresses(rp, other)
                universe: Box = ((ALL_PROTOCOLS, there, ALL_PORTS, here, ALL_PORTS) if inbound
                                 else (ALL_PROTOCOLS, here, ALL_PORTS, there, ALL_PORTS))
                if any(not x for x in universe):
                    continue
                for pos, l in enumerate(layers):
                    if l.nsg == nsg.name:
                        index = [[_FieldIndex([e.box[d] for e in layer.rules]) for d in range(5)] for layer in layers]
                        self.contexts.append(_Context(mine, layers, pos, universe, index, here_dyn, there_dyn))

    def dead(self, i: int, box: Box) -> DeadAcrossLayers | None:
        """The NICs, denying rules and a witness when rule ``i`` of the NSG is an Allow every path denies
        elsewhere."""
        name = self.nsg.rules(self.direction)[i].name
        inbound = self.direction is Direction.INBOUND
        side = DST if inbound else SRC
        there_field = SRC if inbound else DST
        nics: list[str] = []  # "nic web1" labels, each once
        deniers: dict[tuple[str | None, str], RuleRef] = {}
        witness: tuple | None = None

        def deny_ref(entry, who: str) -> RuleRef:
            span = entry.rule.rule.span if entry.rule is not None else Span("<azure platform>", 0, 0)
            default = entry.rule.rule.is_default if entry.rule is not None else False
            return RuleRef(entry.name, entry.priority, entry.access, span, default, who)
        for ctx in self.contexts:
            layers, pos = ctx.layers, ctx.pos
            mine = layers[pos]
            e = next(k for k, entry in enumerate(mine.rules) if entry.rule is not None and entry.rule.name == name)
            u: Box = box_intersection(mine.rules[e].box, ctx.universe)
            if any(not x for x in u):
                continue
            meet = []
            for layer, ix in zip(layers, ctx.index):
                m = (1 << len(layer.rules)) - 1
                for d in range(5):
                    m &= ix[d].meeting(u[d])
                meet.append(m)
            before = meet[pos] & ((1 << e) - 1)
            # Cheap first: a packet the rule decides here that every other layer allows proves it alive.
            point = _greedy(ctx.index[pos], u, before)
            if point is not None and all(
                    layers[k].rules[_first(meet[k] & _matching(ctx.index[k], point))].access is Access.ALLOW
                    for k in range(len(layers)) if k != pos):
                return None
            other = [k for k in range(len(layers)) if k != pos]
            idx = [_bits(before)] + [_bits(meet[k]) for k in other]
            lists = [[layers[k].rules[j].box for j in ks] for k, ks in zip([pos] + other, idx)]
            sp = Splitter(lists, universe=u)

            def allowed(ms: tuple[int, ...]) -> bool:
                if ms[0]:
                    return False
                return all(m and layers[k].rules[idx[n + 1][_first(m)]].access is Access.ALLOW
                           for n, (k, m) in enumerate(zip(other, ms[1:])))

            if sp.find(allowed) is not None:
                return None
            here = IntervalSet([iv for a in ctx.nics.values() for iv in a])

            def readable(d: int, s: IntervalSet) -> int:
                # The other endpoint away from this side's NICs, so the packet does not loop back to them.
                if d == there_field:
                    rest = s.difference(here)
                    return pick(d, rest) if rest else max(hi for _, hi in s)
                return pick(d, s)

            got = sp.find(lambda ms: ms[0] == 0, readable)
            if got is None:
                continue  # the rule decides nothing on these paths
            if witness is None:
                # A packet the rule decides here; every packet it decides is denied on this path, by the
                # first other layer (in path order) whose first match denies.
                point, ms = got
                found = next(((k, layers[k].rules[idx[n + 1][_first(ms[n + 1])]]) for n, k in enumerate(other)
                              if ms[n + 1] and layers[k].rules[idx[n + 1][_first(ms[n + 1])]].access
                              is Access.DENY), None)
                if found is not None:
                    k, entry = found
                    src_dyn, dst_dyn = ((ctx.there_dynamic, ctx.here_dynamic) if inbound
                                        else (ctx.here_dynamic, ctx.there_dynamic))
                    witness = (point, src_dyn, dst_dyn, deny_ref(entry, layers[k].nsg or "platform"))
            for label, addrs in ctx.nics.items():
                if u[side].intersection(addrs) and label not in nics:
                    nics.append(label)

            def leaf(c: int) -> int:
                if c & sp.list_masks[0]:
                    return 0
                out = 0
                for mask in sp.list_masks[1:]:
                    m = c & mask
                    out |= m & -m
                return out

            cells = sp.fold(leaf)
            for n, k in enumerate(other):
                m = (cells & sp.list_masks[n + 1]) >> sp.offsets[n + 1]
                for b in _bits(m):
                    entry = layers[k].rules[idx[n + 1][b]]
                    if entry.access is Access.DENY:
                        who = layers[k].nsg or "platform"
                        deniers.setdefault((who, entry.name), deny_ref(entry, who))
        if not nics:
            return None
        if witness is None:
            return DeadAcrossLayers(nics, list(deniers.values()))
        point, src_dyn, dst_dyn, denied_by = witness
        deniers.setdefault((denied_by.nsg, denied_by.name), denied_by)
        return DeadAcrossLayers(nics, list(deniers.values()), point, src_dyn, dst_dyn, denied_by)


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


def _first(m: int) -> int:
    return (m & -m).bit_length() - 1


def _matching(index: Sequence[_FieldIndex], point: Sequence[int]) -> int:
    m = -1
    for d in range(5):
        m &= index[d].lookup(point[d])
    return m


def _merge_vnets(vnets: list[str], per_vnet: list[list[Finding]]) -> list[Finding]:
    """One finding per (code, direction, rule); a finding that holds only in some of the VNets where the
    NSG is evaluated says where."""
    if len(vnets) == 1:
        return per_vnet[0]
    seen: dict[tuple[str, Direction, str], tuple[Finding, list[str]]] = {}
    order: list[tuple[str, Direction, str]] = []
    for vnet, found in zip(vnets, per_vnet):
        for f in found:
            key = (f.code, f.direction, f.rule)
            if key not in seen:
                seen[key] = (f, [])
                order.append(key)
            seen[key][1].append(vnet)
    out = []
    for key in order:
        f, where = seen[key]
        if len(where) < len(vnets):
            rest = ", ".join(v for v in vnets if v not in where)
            if f.code in (REDUNDANT.code, UNMATCHABLE.code) or f.message.endswith(REMOVABLE):
                # Removing the rule would change decisions in the other VNets: never advise it.
                text = (f"{f.message.removesuffix(REMOVABLE)}, but only when evaluated in VNet {', '.join(where)}: "
                        f"in {rest} the rule decides traffic, so keep it")
            else:
                text = f"{f.message} (when evaluated in VNet {', '.join(where)}; not in {rest})"
            f = Finding(f.code, f.severity, f.nsg, f.direction, f.rule, f.priority, f.access, f.span, f.covered_by,
                        f.witness, text, tuple(where))
        out.append(f)
    return out


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


def unmatchable_reason(rp: ResolvedPolicy, r: ResolvedRule, box: Box) -> str:
    rule = r.rule
    reasons = []
    if not box[PROTO]:
        reasons.append(f"it is an {rule.protocol.value} rule with ports, and only Tcp and Udp packets carry ports")
    for label, side, d in (("source", rule.source, SRC), ("destination", rule.destination, DST)):
        if not box[d]:
            reasons.append(f"its {label} {_why_empty(rp, side)}")
    for label, d in (("source ports", SPORT), ("destination ports", DPORT)):
        if not box[d]:
            reasons.append(f"its {label} list is empty")
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
        v6 = [it.text for it in side.items if isinstance(it, Ipv6Prefix)]
        if v6 and len(v6) == len(side.items):
            return f"lists only IPv6 prefixes ({', '.join(v6[:3])}), which no IPv4 packet matches"
        return "resolves to no IPv4 address"
    if isinstance(side, TagSide):
        return f"is service tag {side.tag.name}, which has no IPv4 addresses here"
    return "matches no address"


def lint(rp: ResolvedPolicy, nsgs: Sequence[str] | None = None, include_info: bool = False,
         rule: str | None = None) -> list[Finding]:
    """All findings for the policy's NSGs (or the named ones), in policy order, rules in evaluation order."""
    return Linter(rp, include_info).lint(nsgs, rule)


def exit_status(findings: Iterable[Finding]) -> int:
    return 1 if any(f.severity == "error" for f in findings) else 0
