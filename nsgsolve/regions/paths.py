"""Paths as rule lists: the whole Azure path between two endpoints, in region form.

For a pair of endpoints (an IP configuration of a NIC, or ``None`` for addresses that are no NIC's),
:func:`path_layers` gives one first-match rule list per layer the traffic meets, platform behaviour
included, such that a packet is allowed exactly when every list's first match allows. Region analyses
(:mod:`nsgsolve.regions.box`) then answer for all packets between the pair at once.

Dynamic IP configurations need no assignment here: between fixed endpoints the packet's source
address *is* the source NIC's address, so a rule side naming a dynamic member matches exactly when
that member is the endpoint on that side. The endpoint's address range is then every address Azure
may give it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS, IntervalSet
from nsgsolve.semantics.platform import HOST_SERVICES, SMTP_BLOCK
from nsgsolve.model import Access, Direction
from nsgsolve.regions.box import ANY_PACKET, Box, rule_box
from nsgsolve.semantics.resolve import AddrSet, IpcKey, ResolvedNsg, ResolvedPolicy, ResolvedRule


@dataclass(frozen=True)
class PathRule:
    """One entry of a layer's list: its match box, its access, and what to call it in a trace."""

    box: Box
    access: Access
    name: str
    priority: int | None
    rule: ResolvedRule | None  # None for platform entries


@dataclass(frozen=True)
class PathLayer:
    nsg: str | None  # None: a platform or admin layer
    attached_to: str
    direction: Direction
    rules: tuple[PathRule, ...]
    kind: str = "nsg"  # "nsg", "platform" or "admin" (a VNet's security admin rules)


def endpoint_addresses(rp: ResolvedPolicy, key: IpcKey | None, within: IntervalSet | None = None) -> IntervalSet:
    """Addresses an endpoint may have: a static IP, a dynamic one's usable range (less static IPs), or,
    for ``None``, the addresses in ``within`` that are no static NIC's. ``within`` defaults to every
    address of the policy (both families when it has IPv6 addresses)."""
    if within is None:
        within = rp.all_addresses
    statics = IntervalSet([(ip, ip) for ip in rp.static_ip_index])
    if key is None:
        return within.difference(statics)
    info = rp.ipcs[key]
    if info.ip is not None:
        return IntervalSet([(info.ip, info.ip)]).intersection(within)
    return info.usable.difference(statics).intersection(within)


def _side(s: AddrSet, endpoint: IpcKey | None, endpoint_range: IntervalSet) -> IntervalSet:
    if endpoint is not None and endpoint in s.members:
        return s.intervals.union(endpoint_range)
    return s.intervals


def _box(r: ResolvedRule, src: IpcKey | None, src_range: IntervalSet, dst: IpcKey | None,
         dst_range: IntervalSet, cache: dict[int, tuple[ResolvedRule, Box]] | None = None) -> Box:
    # A rule whose sides do not name the endpoints as dynamic members has one box for every pair, so
    # callers walking many pairs (diff) build it once; the rule is kept beside its id so the id stays valid.
    plain = not (src is not None and src in r.src.members) and not (dst is not None and dst in r.dst.members)
    if plain and cache is not None:
        got = cache.get(id(r))
        if got is not None:
            return got[1]
    box = rule_box(r, _side(r.src, src, src_range), _side(r.dst, dst, dst_range))
    if plain and cache is not None:
        cache[id(r)] = (r, box)
    return box


def _box_cache(rp: ResolvedPolicy) -> dict[int, tuple[ResolvedRule, Box]]:
    """Endpoint-independent rule boxes of one resolved policy, living as long as it does."""
    cache = rp.__dict__.get("_path_box_cache")
    if cache is None:
        cache = rp.__dict__["_path_box_cache"] = {}
    return cache


def _bypass_boxes(tags: frozenset[str]) -> list[tuple[Box, str]]:
    """Platform entries that let host-service traffic skip an outbound layer whose NSG names ``tags``."""
    return [(Box(s.protocols, ALL_IPS, ALL_PORTS, s.addresses, s.dports), s.rule)
            for s in HOST_SERVICES if not s.filtered_by(tags)]


_CATCH_ALL: Box = ANY_PACKET


def admin_path(rp: ResolvedPolicy, key: IpcKey, direction: Direction) -> tuple[PathLayer | None, tuple[PathRule, ...]]:
    """The admin layer of ``key``'s VNet as a first-match list, and the entries every NSG layer of that
    direction starts with.

    Azure's admin semantics is not a plain conjunction of layers (an AlwaysAllow skips the NSGs), but it
    becomes one: the admin list denies where its first match is Deny and allows elsewhere; each NSG list
    then first allows where the admin first match is AlwaysAllow (its box less the boxes of earlier
    Allow rules: after an admin Allow the NSGs decide; earlier Deny rules need no subtracting, the admin
    list denies there). A packet is allowed iff every list allows it, exactly as the evaluator decides.
    Cached per resolved policy, so the boxes are shared objects (diff keys alignments by identity).
    """
    layer = rp.admin_for(key, direction)
    if layer is None:
        return None, ()
    cache = rp.__dict__.setdefault("_admin_path_cache", {})
    got = cache.get((layer.vnet, direction))
    if got is not None:
        return got
    from nsgsolve.regions.box import box_minus, box_is_empty, rule_box

    entries = [PathRule(rule_box(r), Access.DENY if r.access is Access.DENY else Access.ALLOW, r.name, r.priority, r)
               for r in layer.rules]
    entries.append(PathRule(_CATCH_ALL, Access.ALLOW, "(no admin rule matched)", None, None))
    admin = PathLayer(None, layer.attached_to, direction, tuple(entries), kind="admin")
    prefix: list[PathRule] = []
    allows: list[Box] = []
    for r, e in zip(layer.rules, entries):
        if r.access is Access.ALLOW:
            allows.append(e.box)
        elif r.access is Access.ALWAYS_ALLOW:
            parts = [e.box]
            for b in allows:
                parts = [x for p in parts for x in box_minus(p, b)]
            prefix += [PathRule(p, Access.ALLOW, f"AlwaysAllow by admin rule {r.name}", r.priority, None)
                       for p in parts if not box_is_empty(p)]
    got = cache[(layer.vnet, direction)] = (admin, tuple(prefix))
    return got


def _naming(nsg: ResolvedNsg, direction: Direction) -> tuple[int, ...]:
    """Positions of the rules of one NSG direction whose sides name dynamic members: the only entries
    whose boxes depend on the endpoints. Kept on the resolved NSG, as its classifiers are."""
    got = nsg.__dict__.setdefault("_naming_members", {})
    found = got.get(direction)
    if found is None:
        found = got[direction] = tuple(i for i, r in enumerate(nsg.rules(direction)) if r.src.members or r.dst.members)
    return found


def _nsg_entries(rp: ResolvedPolicy, nsg: ResolvedNsg, direction: Direction, skip: tuple[PathRule, ...],
                 bypass: bool, src: IpcKey | None, src_range: IntervalSet, dst: IpcKey | None,
                 dst_range: IntervalSet, cache: dict[int, tuple[ResolvedRule, Box]]) -> tuple[PathRule, ...]:
    """One NSG layer's entries: the admin prefix ``skip``, the platform bypass (outbound), the rules.

    Every pair of endpoints meeting this NSG in this direction after the same admin prefix shares one
    tuple (the same objects, so diff keys its alignments and filters by identity, and lint and diff
    stop rebuilding thousands of entries per pair); only rules naming one of the endpoints as a dynamic
    member get their own boxes, in a copy."""
    store = rp.__dict__.setdefault("_path_entries_cache", {})
    key = (id(nsg), direction, id(skip))
    got = store.get(key)
    if got is None:
        rules = nsg.rules(direction)
        entries = list(skip)
        if bypass:
            entries += [PathRule(b, Access.ALLOW, name, None, None) for b, name in _bypass_boxes(nsg.platform_tags)]
        entries += [PathRule(_box(r, None, src_range, None, dst_range, cache), r.access, r.name, r.priority, r)
                    for r in rules]
        got = store[key] = (nsg, skip, tuple(entries))  # nsg and skip kept alive: their ids are the key
    plain = got[2]
    named = nsg_members(nsg, direction)
    if src not in named and dst not in named:
        return plain
    out = list(plain)
    rules = nsg.rules(direction)
    base = len(plain) - len(rules)
    for i in _naming(nsg, direction):
        r = rules[i]
        out[base + i] = PathRule(_box(r, src, src_range, dst, dst_range, cache), r.access, r.name, r.priority, r)
    return tuple(out)


def nsg_members(nsg: ResolvedNsg, direction: Direction) -> frozenset[IpcKey]:
    """The dynamic IP configurations some rule of one NSG direction names."""
    got = nsg.__dict__.setdefault("_named_members", {})
    found = got.get(direction)
    if found is None:
        rules = nsg.rules(direction)
        found = got[direction] = frozenset(k for i in _naming(nsg, direction)
                                           for k in rules[i].src.members | rules[i].dst.members)
    return found


def path_layers(rp: ResolvedPolicy, src: IpcKey | None, dst: IpcKey | None) -> list[PathLayer]:
    """The layers between two endpoints, in Azure's order, each a first-match list ending in a catch-all."""
    src_range = endpoint_addresses(rp, src)
    dst_range = endpoint_addresses(rp, dst)
    cache = _box_cache(rp)
    layers: list[PathLayer] = []
    if src is not None:
        admin, skip = admin_path(rp, src, Direction.OUTBOUND)
        if admin is not None:
            layers.append(admin)
        for l in rp.outbound_layers(src):
            entries = _nsg_entries(rp, l.nsg, l.direction, skip, True, src, src_range, dst, dst_range, cache)
            layers.append(PathLayer(l.nsg.name, l.attached_to, l.direction, entries))
        if rp.smtp_blocked:
            # Any source: the block applies to every packet to the Internet (IPv6 too), as the evaluator's.
            smtp = Box(SMTP_BLOCK.protocols, rp.all_addresses, ALL_PORTS, rp.internet_tag(rp.ipcs[src].vnet),
                       SMTP_BLOCK.dports)
            layers.append(PathLayer(None, "platform", Direction.OUTBOUND, (
                PathRule(smtp, Access.DENY, SMTP_BLOCK.rule, None, None),
                PathRule(ANY_PACKET, Access.ALLOW, "(no platform rule)", None, None)), kind="platform"))
    if dst is not None:
        admin, skip = admin_path(rp, dst, Direction.INBOUND)
        if admin is not None:
            layers.append(admin)
        for l in rp.inbound_layers(dst):
            entries = _nsg_entries(rp, l.nsg, l.direction, skip, False, src, src_range, dst, dst_range, cache)
            layers.append(PathLayer(l.nsg.name, l.attached_to, l.direction, entries))
    return layers
