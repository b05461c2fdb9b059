"""Semantic diff of two policy versions: exactly which traffic a change opens and which it closes.

For every pair of endpoints present in both versions (IP configurations of NICs, matched by NIC name
and index, and the outside world in a few address classes) the diff partitions the packets between
the two into regions where OLD's decision and NEW's decision are each constant
(:mod:`nsgsolve.regions.box`), and keeps the regions where they differ: *opened* (OLD denies, NEW allows)
and *closed* (the reverse). It enumerates regions, never packets, and needs no solver: the region
arithmetic is exact. Every reported region carries one witness packet, replayed through the reference
evaluator on both versions (it must differ, or the diff raises), and so the rules that decide it in
OLD and in NEW.

Three things keep it fast on 1,000-rule NSGs:

* **Grouping.** Static NICs whose paths meet the same NSGs (same attachment kinds, same VNet) see the
  same rule boxes, so one partition covers all their pairs at once: the universe's source field is the
  union of the group's source addresses, its destination field the union of its destinations. Dynamic
  NICs, whose boxes depend on which NIC is the endpoint, get groups of their own.
* **Changed-rule filter.** Per layer, the two versions' rule lists are aligned by a common subsequence
  of (box, access) entries; what is not in it is *changed*. Only packets matched by a changed rule can
  change decision (proof at :func:`_changed_entries`), so the partition is restricted to the union of
  changed boxes (``Splitter(require=...)``) and rules that meet no changed box are dropped: they
  cannot match anything the walk visits.
* **Compact walk.** Regions are collected bottom-up over the memoised partition tree; pieces of a field
  whose sub-regions are equal are united, as SecGuru's cube enumeration does, so a change yields a few
  boxes rather than one per cell.

Outside world. Addresses that are no NIC's (in either version) form the endpoint "outside", reported in
classes so a reviewer sees what kind of address space a change affects: ``Internet`` (the query
endpoint ``Internet`` of both versions: public space outside every VNet's VirtualNetwork tag),
``on-premises`` (prefixes declared as connected to a VNet), ``azure-platform`` (168.63.129.16 and
169.254.169.254) and ``private`` (every other address: RFC 1918 space not declared on-premises, VNet
addresses no NIC holds, 100.64.0.0/10, loopback, multicast...). Outside-to-outside traffic meets no NSG
and is never compared.

IPv6. A packet is IPv4 or IPv6, so with IPv6 addresses in either version every group is compared once
per address family, over a universe of that family alone (a box over both would pair an IPv4 source
with an IPv6 destination): regions and witnesses are per family, and a pair's regions list both.

Selecting. ``--from``/``--to`` read the endpoints of ``nsgsolve query`` with its meaning
(:mod:`nsgsolve.analyses.endpoints`), resolved in each version; see :func:`select_endpoints`.

Choices where the question is silent:

* A NIC whose declared address changed (another static IP, another subnet, static <-> dynamic) is
  compared on the addresses it may have in both versions, and listed apart as readdressed; pairs with
  no common address are not compared.
* A dynamic NIC's traffic to itself is not compared: its two addresses would have to be equal, which a
  box cannot say (traffic to oneself does not cross the NSGs anyway). A static NIC's is, as the
  evaluator decides it.
* Packets without ports (protocols other than Tcp/Udp) are regions whose port fields are ``*``; their
  witnesses have no ports.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from nsgsolve.semantics.addresses import (
    ALL_IPS, ALL_PORTS, ALL_V6, EMPTY, IntervalSet, describe_ports, int_to_ip, to_cidrs,
)
from nsgsolve.analyses.endpoints import Side, endpoint_notes, internet_hosts, resolve_side
from nsgsolve.semantics.platform import HOST_ADDRESSES
from nsgsolve.gcpause import gc_paused
from nsgsolve.errors import Diagnostic, DiagnosticBag, InputError, UsageError, did_you_mean
from nsgsolve.semantics.evaluate import Evaluator, FlowResult, Packet
from nsgsolve.model import PORTED_PROTOCOLS, Access, Direction, Policy
from nsgsolve.regions.paths import PathLayer, PathRule, endpoint_addresses, path_layers
from nsgsolve.regions.box import (ALL_PROTOCOLS, ANY_PACKET, DST, DPORT, PROTO, SPORT, SRC, Box, Splitter,
                                  box_contains_point, describe_protocols, make_box, merge_cells,
                                  region_walk)
from nsgsolve.semantics.resolve import IpcKey, ResolvedPolicy, resolve
from nsgsolve.semantics.servicetags import ServiceTagDb
from nsgsolve.analyses.results import Witness

OPENED, CLOSED = "opened", "closed"
KINDS = (OPENED, CLOSED)

# Outside classes, in report order.
INTERNET, ONPREM, PRIVATE, PLATFORM = "Internet", "on-premises", "private", "azure-platform"
# The old selector words for the classes: now a hint that they report, not select (Internet is the tag).
_CLASS_WORDS = {"on-premises", "onprem", "on-prem", "private", "azure-platform", "platform"}


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class DiffEndpoint:
    """One side of a compared pair: a NIC's IP configuration, or one class of the outside world."""

    name: str  # "web1", "web1#2", "Internet"
    kind: str  # "nic" | "outside"
    addresses: IntervalSet  # the addresses compared (in both versions)
    detail: str = ""  # "10.0.1.4 in vnet/web", "dynamic in vnet/web", "public IPv4 ..."
    key: IpcKey | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.detail})" if self.detail else self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "detail": self.detail,
                "addresses": _cidr_list(self.addresses)}


@dataclass(frozen=True)
class Region:
    """A box of packets between one pair whose decision changed, with one witness replayed on both versions."""

    kind: str  # OPENED | CLOSED
    box: Box  # (protocols, sources, source ports, destinations, destination ports)
    witness: Packet
    old: FlowResult
    new: FlowResult
    assignment: tuple[tuple[IpcKey, int], ...] = ()  # the dynamic NICs' addresses the witness assumes

    @property
    def protocols(self) -> IntervalSet:
        return self.box[PROTO]

    @property
    def sources(self) -> IntervalSet:
        return self.box[SRC]

    @property
    def source_ports(self) -> IntervalSet:
        return self.box[SPORT]

    @property
    def destinations(self) -> IntervalSet:
        return self.box[DST]

    @property
    def destination_ports(self) -> IntervalSet:
        return self.box[DPORT]

    def contains(self, p: Packet) -> bool:
        return box_contains_point(self.box, packet_point(p))

    def to_dict(self) -> dict:
        b = self.box
        return {
            "kind": self.kind,
            "protocols": describe_protocols(b[PROTO]).split(","),
            "sources": _cidr_list(b[SRC]),
            "source_ports": describe_ports(b[SPORT]),
            "destinations": _cidr_list(b[DST]),
            "destination_ports": describe_ports(b[DPORT]),
            "witness": Witness(self.witness, self.old.src_endpoint, self.old.dst_endpoint, self.assignment).to_dict(),
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
        }


@dataclass(frozen=True)
class PairDiff:
    source: DiffEndpoint
    destination: DiffEndpoint
    regions: tuple[Region, ...]

    @property
    def opened(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.kind == OPENED)

    @property
    def closed(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.kind == CLOSED)

    def to_dict(self) -> dict:
        return {"source": self.source.to_dict(), "destination": self.destination.to_dict(),
                "opened": [r.to_dict() for r in self.opened], "closed": [r.to_dict() for r in self.closed]}


@dataclass(frozen=True)
class EndpointChange:
    """An endpoint that is not compared as-is: only in one version, or readdressed."""

    name: str
    change: str  # "only in OLD" | "only in NEW" | "readdressed"
    old: str = ""
    new: str = ""
    compared: bool = False  # readdressed NICs are still compared on the addresses both versions allow

    def to_dict(self) -> dict:
        return {"name": self.name, "change": self.change, "old": self.old, "new": self.new,
                "compared": self.compared}


@dataclass(frozen=True)
class PartialItem:
    """A selection item known in one version only, resolved there (a note, not an error)."""

    side: str  # SOURCES | DESTINATIONS: which selection it is an item of
    item: str
    known_in: str  # "OLD" | "NEW"

    @property
    def missing_in(self) -> str:
        return "NEW" if self.known_in == "OLD" else "OLD"


class SelectionError(UsageError):
    """An item of the sources or destinations selection that neither version resolves.

    Carries the data (which side, the item, what is wrong); the command says which option it came
    from, so this module never names a command-line flag."""

    def __init__(self, side: str, item: str, problem: str, hint: str = ""):
        super().__init__(f"{item}: {problem}", hint)
        self.side = side
        self.item = item
        self.problem = problem


SOURCES, DESTINATIONS = "sources", "destinations"


@dataclass(frozen=True)
class DiffResult:
    pairs: tuple[PairDiff, ...]  # only pairs where something changed
    endpoint_changes: tuple[EndpointChange, ...]
    pairs_compared: int
    groups: int  # partitions computed (pairs sharing NSGs share one)
    changed_rules: int  # rule entries outside the common subsequence, summed over layers and groups
    notes: tuple[str | PartialItem, ...] = ()  # about the selection: what Internet means, items known in one version
    common_nics: int = 0  # NIC endpoints both versions have at a common address (before the selection)

    @property
    def opened(self) -> tuple[tuple[PairDiff, Region], ...]:
        return tuple((p, r) for p in self.pairs for r in p.opened)

    @property
    def closed(self) -> tuple[tuple[PairDiff, Region], ...]:
        return tuple((p, r) for p in self.pairs for r in p.closed)

    @property
    def is_empty(self) -> bool:
        return not self.pairs

    def has(self, kind: str) -> bool:
        """``kind`` is "opened", "closed" or "any"."""
        if kind == "any":
            return not self.is_empty
        return any(r.kind == kind for p in self.pairs for r in p.regions)

    @property
    def uncompared(self) -> tuple[EndpointChange, ...]:
        """NICs in one version only, or moved to no address both versions allow."""
        return tuple(c for c in self.endpoint_changes if not c.compared)

    @property
    def nothing_compared(self) -> str:
        """Why no pair was compared ("" when some were): then "no difference" would certify nothing.

        ``"selection"``: the sources/destinations selection left no pair with a NIC of both versions;
        ``"no-common-nic"``: no NIC is in both versions at a common address; ``"no-nic"``: neither
        version has a NIC. :mod:`nsgsolve.reports.diff` says each in words."""
        if self.pairs_compared:
            return ""
        if self.common_nics:
            return "selection"
        if self.uncompared:
            return "no-common-nic"
        return "no-nic"

    def fails_on(self, kind: str) -> bool:
        """Fail a gate on ``kind``: that kind of change was found, or nothing could be compared while NICs exist
        in one version only (their traffic did change, and an exit status 0 would certify nothing)."""
        return self.has(kind) or bool(self.nothing_compared and self.uncompared)


# ---------------------------------------------------------------- small helpers



def packet_point(p: Packet) -> tuple[int, int, int, int, int]:
    """A packet as a point of the region space (ports 0 for protocols without ports, regions' convention)."""
    return (p.protocol, p.src, p.sport or 0, p.dst, p.dport or 0)




def _cidr_list(s: IntervalSet) -> list[str]:
    return to_cidrs(s)  # IPv4 and IPv6 blocks


def _clip(b: Box, u: Box) -> Box | None:
    out = make_box(x.intersection(y) for x, y in zip(b, u))
    return None if any(not s for s in out) else out


# ---------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class _End:
    ep: DiffEndpoint
    key: IpcKey | None
    dynamic: bool  # dynamic in either version: its rule boxes depend on it being the endpoint


def _declared(rp: ResolvedPolicy, key: IpcKey) -> str:
    i = rp.ipcs[key]
    return f"{int_to_ip(i.ip)} in {i.subnet_label}" if i.ip is not None else f"dynamic in {i.subnet_label}"


def _families(old: ResolvedPolicy, new: ResolvedPolicy) -> tuple[IntervalSet, ...]:
    """The address families compared: IPv4, and IPv6 when either version has IPv6 addresses."""
    return (ALL_IPS, ALL_V6) if old.has_ipv6 or new.has_ipv6 else (ALL_IPS,)


def outside_classes(old: ResolvedPolicy, new: ResolvedPolicy) -> dict[str, IntervalSet]:
    """The outside world's address classes (see the module docstring), from both versions' topology."""
    platform = HOST_ADDRESSES
    onprem = EMPTY
    for rp in (old, new):
        for v in rp.policy.vnets:
            onprem = onprem.union(IntervalSet([(c.lo, c.hi) for c in v.onprem]))
    onprem = onprem.difference(platform)
    # Internet is the endpoint ``Internet`` of queries (public space outside every VNet's VirtualNetwork
    # tag), in both versions: so `--from Internet` selects exactly this class wherever the VNets did not move.
    internet = internet_hosts(old).intersection(internet_hosts(new))
    every = IntervalSet([iv for f in _families(old, new) for iv in f])
    private = every.difference(internet).difference(onprem).difference(platform)
    return {INTERNET: internet, ONPREM: onprem, PRIVATE: private, PLATFORM: platform}


_CLASS_DETAIL = {INTERNET: "public IPv4 outside the VNets", ONPREM: "declared on-premises prefixes",
                 PRIVATE: "other addresses of no NIC", PLATFORM: "168.63.129.16, 169.254.169.254"}
_INTERNET_DUAL = "public IPv4 and IPv6 outside the VNets"


def _endpoints(old: ResolvedPolicy, new: ResolvedPolicy) -> tuple[list[_End], list[EndpointChange]]:
    ends: list[_End] = []
    changes: list[EndpointChange] = []
    for k in sorted(set(old.ipcs) - set(new.ipcs)):
        changes.append(EndpointChange(str(k), "only in OLD", old=_declared(old, k)))
    for k in sorted(set(new.ipcs) - set(old.ipcs)):
        changes.append(EndpointChange(str(k), "only in NEW", new=_declared(new, k)))
    for k in sorted(set(old.ipcs) & set(new.ipcs)):
        addrs = endpoint_addresses(old, k).intersection(endpoint_addresses(new, k))
        d_old, d_new = _declared(old, k), _declared(new, k)
        if d_old != d_new:
            changes.append(EndpointChange(str(k), "readdressed", d_old, d_new, compared=bool(addrs)))
        if not addrs:
            continue
        dynamic = old.ipcs[k].ip is None or new.ipcs[k].ip is None
        detail = d_new if d_old == d_new else f"{d_old} -> {d_new}"
        ends.append(_End(DiffEndpoint(str(k), "nic", addrs, detail, k), k, dynamic))
    families = _families(old, new)
    every = IntervalSet([iv for f in families for iv in f])
    outside = endpoint_addresses(old, None, every).intersection(endpoint_addresses(new, None, every))
    for name, addrs in outside_classes(old, new).items():
        addrs = addrs.intersection(outside)
        if addrs:
            detail = _INTERNET_DUAL if name == INTERNET and len(families) > 1 else _CLASS_DETAIL[name]
            ends.append(_End(DiffEndpoint(name, "outside", addrs, detail), None, False))
    return ends, changes


def select_endpoints(specs: Sequence[str] | None, ends: Sequence[_End], old: ResolvedPolicy,
                     new: ResolvedPolicy, side: str = SOURCES, notes: list[str | PartialItem] | None = None
                     ) -> dict[str, IntervalSet]:
    """Endpoint name -> addresses selected by the items of one side's selection (None: every endpoint, whole).

    An item is an endpoint of the query vocabulary with the query's meaning (:mod:`nsgsolve.analyses.endpoints`,
    docs/query.md "What an endpoint denotes"), resolved in OLD and in NEW separately; the selection is
    the traffic it denotes in either version. NIC-type items (NIC, ASG, subnet, VNet) select those NICs'
    IP configurations whole; address-type items (IP, CIDR, range, named network, service tag, ``any``,
    ``Internet``, ``VirtualNetwork``) select the NICs whose addresses lie inside and the outside world
    clipped to them. Two diff words are kept where the query vocabulary knows no such name: ``outside``
    (every outside endpoint) and ``NIC#N`` (one IP configuration). An item known in one version only is
    resolved there, with a :class:`PartialItem` in ``notes``; one known in neither is a
    :class:`SelectionError` with a did-you-mean."""
    if not specs:
        return {e.ep.name: e.ep.addresses for e in ends}
    nic_keys: set[IpcKey] = set()
    addrs = EMPTY
    outside = False  # the word: every outside endpoint whole (not a dynamic NIC whose range it shares)
    for item in _spec_items(specs):
        got = _resolve_item(item, ends, old, new, side, notes)
        if got is None:
            outside = True
        else:
            nic_keys |= got.nics
            addrs = addrs.union(got.addresses)
    out: dict[str, IntervalSet] = {}
    for e in ends:
        whole = e.key in nic_keys if e.key is not None else outside
        picked = e.ep.addresses if whole else e.ep.addresses.intersection(addrs)
        if picked:
            out[e.ep.name] = picked
    return out


def _spec_items(specs: Sequence[str]) -> list[str]:
    """The comma-separated items of several selection strings (commas inside a `quoted name` do not split)."""
    items: list[str] = []
    for spec in specs:
        cur, quoted = "", False
        for ch in spec + ",":
            if ch == "`":
                quoted = not quoted
            if ch == "," and not quoted:
                if cur.strip():
                    items.append(cur.strip())
                cur = ""
            else:
                cur += ch
    return items


def _resolve_item(item: str, ends: Sequence[_End], old: ResolvedPolicy, new: ResolvedPolicy, which: str,
                  notes: list[str | PartialItem] | None) -> Side | None:
    """What one item denotes, as the union of its meaning in OLD and in NEW (None: the word ``outside``)."""
    from nsgsolve.lang.build import parse_query

    if "#" in item:  # NIC#N: '#' starts a comment in the language, so this is no query endpoint
        keys = frozenset(e.key for e in ends if e.key is not None and str(e.key) == item)
        if keys:
            return Side(keys, EMPTY)
        known = sorted({str(k) for rp in (old, new) for k in rp.ipcs})
        raise SelectionError(which, item, "no IP configuration of that name in both versions",
                         did_you_mean(item, known) or "NIC#N names a NIC's N-th IP configuration, as the diff "
                                                      "prints it; configurations in one version only are listed apart")
    sides: list[Side | None] = []
    problems: list[Diagnostic] = []
    for rp in (old, new):
        bag = DiagnosticBag()
        try:
            q = parse_query(f"can {item} reach any", rp.policy, f"<{which}>")
        except InputError as e:
            sides.append(None)
            problems.append(e.diagnostics[0])
            continue
        side = resolve_side(rp, q.sources, bag)
        if notes is not None:
            notes += [n for n in endpoint_notes(q.sources) if n not in notes]
        sides.append(None if bag.errors else side)
        if bag.errors:
            problems.append(bag.errors[0])
    s_old, s_new = sides
    if s_old is not None and s_new is not None:
        return Side(s_old.nics | s_new.nics, s_old.addresses.union(s_new.addresses))
    if s_old is not None or s_new is not None:
        there, missing = ("OLD", "NEW") if s_old is not None else ("NEW", "OLD")
        if notes is not None:
            notes.append(PartialItem(which, item, there))
        return s_old if s_old is not None else s_new
    if item.lower() == OUTSIDE:
        return None
    raise _item_error(item, problems[-1], old, new, which)


OUTSIDE = "outside"


def _item_error(item: str, d: Diagnostic, old: ResolvedPolicy, new: ResolvedPolicy, side: str) -> SelectionError:
    """An item neither version can resolve: what is wrong, and the closest names of either version."""
    if item.lower() in _CLASS_WORDS:
        return SelectionError(side, item, "outside classes are how the diff reports outside endpoints, not "
                              "endpoints to select",
                          "write 'outside' for every outside endpoint, or the addresses (e.g. 168.63.129.16, an "
                          "on-premises prefix); docs/diff.md")
    if d.code in ("E101", "E102"):  # a syntax error of the synthetic question would talk about 'reach'
        return SelectionError(side, item, "not an endpoint",
                          "an endpoint is any, a service tag, an ASG, a NIC (NIC#N for one IP configuration), a "
                          "subnet, a VNet, an IP, a CIDR, a range, a named network, 'outside', or a comma list "
                          "(docs/query.md)")
    names = {OUTSIDE, "any", "Internet", "VirtualNetwork", "AzureLoadBalancer"}
    for rp in (old, new):
        p = rp.policy
        names |= ({x.name for x in p.nics} | {x.name for x in p.asgs} | {x.name for x in p.vnets}
                  | {x.name for x in p.tags} | {x.name for x in p.networks})
        names |= {f"{v.name}/{s.name}" for v, s in p.subnets()} | {s.name for _, s in p.subnets()}
    message = d.message
    if d.code == "E301":  # a bare unknown name is read as a service tag: say both
        message = f"no NIC, ASG, subnet, VNet or network of that name in either version, and {message}"
    return SelectionError(side, item, message, did_you_mean(item, sorted(names)) or d.hint)



# ---------------------------------------------------------------- grouping


def _out_sig(rp: ResolvedPolicy, e: _End) -> object:
    if e.key is None:
        return None
    if e.dynamic:
        return ("dynamic", e.key)
    # Boxes of a static endpoint's outbound layers depend only on which NSGs (resolved in which VNet)
    # they are, and, for the platform SMTP block, on the source VNet's Internet tag.
    info = rp.ipcs[e.key]
    return (tuple((l.attached_to.split(" ", 1)[0], l.nsg.name, l.nsg.vnet) for l in rp.outbound_layers(e.key)),
            info.vnet if rp.smtp_blocked else None, _admin_sig(rp, e.key, Direction.OUTBOUND))


def _admin_sig(rp: ResolvedPolicy, key: IpcKey, direction: Direction) -> str | None:
    # NICs of one VNet meet the same admin rules; NICs of two VNets may not.
    return rp.ipcs[key].vnet if rp.admin_for(key, direction) is not None else None


def _in_sig(rp: ResolvedPolicy, e: _End) -> object:
    if e.key is None:
        return None
    if e.dynamic:
        return ("dynamic", e.key)
    return (tuple((l.attached_to.split(" ", 1)[0], l.nsg.name, l.nsg.vnet) for l in rp.inbound_layers(e.key)),
            _admin_sig(rp, e.key, Direction.INBOUND))


# ---------------------------------------------------------------- the core

_ALLOW_ALL = PathRule(ANY_PACKET, Access.ALLOW, "(no NSG)", None, None)
_BOTH, _OLD, _NEW = 0, 1, 2


def _layer_kind(l: PathLayer) -> tuple[Direction, str]:
    return l.direction, l.attached_to.split(" ", 1)[0]


def _changed_entries(old: Sequence[PathRule], new: Sequence[PathRule],
                     intern: dict[tuple[Box, Access], int] | None = None) -> tuple[list[int], list[int]]:
    """Indices of entries outside a common subsequence of (box, access), in OLD and in NEW.

    Why only packets matched by a changed entry can change decision: let ``p`` match no changed entry
    of either list. Every entry of OLD matching ``p`` is then in the common subsequence, which pairs
    OLD entries ``i1 < i2 < ...`` with NEW entries ``j1 < j2 < ...`` of equal box and access, and so
    does every entry of NEW matching ``p``. ``p`` matches ``OLD[ik]`` iff it matches ``NEW[jk]`` (equal
    boxes), so the first match in both lists is the pair with the smallest such ``k``: same access, same
    layer decision. If no layer's decision changes, the path's (their AND) does not either. So the
    region where decisions differ lies inside the union of changed boxes, and searching that union
    alone is exact, not a heuristic. Any common subsequence works; a longer one only means fewer
    changed entries, so difflib's (not always longest) one is fine.
    """
    ids: dict[tuple[Box, Access], int] = {} if intern is None else intern
    # Entries as small integers (one hash of each box), so the matching below compares ints, not boxes.
    a = [ids.setdefault((r.box, r.access), len(ids)) for r in old]
    b = [ids.setdefault((r.box, r.access), len(ids)) for r in new]
    # A review changes a few rules: the common prefix and suffix (found in one pass) are most of both
    # lists, and with the middle's matching blocks they still form one common subsequence.
    n = min(len(a), len(b))
    head = 0
    while head < n and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    in_a: set[int] = set()
    in_b: set[int] = set()
    if head < len(a) - tail and head < len(b) - tail:
        sm = difflib.SequenceMatcher(None, a[head:len(a) - tail], b[head:len(b) - tail], autojunk=False)
        for blk in sm.get_matching_blocks():
            in_a.update(range(head + blk.a, head + blk.a + blk.size))
            in_b.update(range(head + blk.b, head + blk.b + blk.size))
    return ([i for i in range(head, len(a) - tail) if i not in in_a],
            [j for j in range(head, len(b) - tail) if j not in in_b])


_NOWHERE = (1 << 200, -1)


def _hull(b: Box) -> tuple[int, ...]:
    """Each field's smallest and largest value, then a bitmask of the fields holding more than one
    interval (where the bounds alone do not decide). An empty field gets bounds above and below every
    value, so that it overlaps nothing."""
    out: list[int] = []
    multi = 0
    for d, s in enumerate(b):
        out += s.bounds() if s else _NOWHERE
        if len(s) > 1:
            multi |= 1 << d
    out.append(multi)
    return tuple(out)


class _Memo:
    """Work shared by the groups of one diff. Pairs meeting the same NSG layers get the same entry
    tuples from :func:`nsgsolve.regions.paths.path_layers` (and the same box objects), so alignments and
    rule filters are keyed by identity; ``alive`` holds every keyed object, so no id is reused meanwhile."""

    def __init__(self) -> None:
        self.align: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
        self.meet: dict[tuple[int, int], list[int]] = {}
        self.hulls: dict[int, list[tuple[int, ...]]] = {}
        self.intern: dict[tuple[Box, Access], int] = {}
        self.alive: list[object] = []

    def changed(self, old: Sequence[PathRule], new: Sequence[PathRule]) -> tuple[list[int], list[int]]:
        k = (id(old), id(new))
        got = self.align.get(k)
        if got is None:
            got = self.align[k] = _changed_entries(old, new, self.intern)
            self.alive.append((old, new))
        return got

    def kept(self, entries: Sequence[PathRule], changed: Sequence[Box]) -> list[int]:
        """Positions of the entries that meet some box of ``changed``, ascending."""
        if len(changed) == 1:
            return self._meeting(entries, changed[0])
        found: set[int] = set()
        for c in changed:
            found.update(self._meeting(entries, c))
        return sorted(found)

    def _meeting(self, entries: Sequence[PathRule], c: Box) -> list[int]:
        k = (id(entries), id(c))
        got = self.meet.get(k)
        if got is None:
            got = self.meet[k] = _meeting_entries(entries, c, self.hulls_of(entries))
            self.alive.append((entries, c))
        return got

    def hulls_of(self, entries: Sequence[PathRule]) -> list[tuple[int, ...]]:
        got = self.hulls.get(id(entries))
        if got is None:
            got = self.hulls[id(entries)] = [_hull(r.box) for r in entries]
            self.alive.append(entries)
        return got


def _meeting_entries(entries: Sequence[PathRule], c: Box, hulls: Sequence[tuple[int, ...]]) -> list[int]:
    """Positions of the entries whose box meets ``c``. Comparing the fields' bounds rules most out, and
    is exact for a field where both sets are one interval (ports and protocols mostly are): the sets are
    compared only in the other fields, of the entries left."""
    p0, p1, s0, s1, sp0, sp1, d0, d1, dp0, dp1, c_multi = _hull(c)
    near = [i for i, (a0, a1, b0, b1, c0, c1, e0, e1, f0, f1, _) in enumerate(hulls)
            if a0 <= p1 and p0 <= a1 and f0 <= dp1 and dp0 <= f1 and c0 <= sp1 and sp0 <= c1
            and e0 <= d1 and d0 <= e1 and b0 <= s1 and s0 <= b1]
    out = []
    for i in near:
        multi = hulls[i][10] | c_multi
        if multi:
            b = entries[i].box
            if not all(b[d].meets(c[d]) for d in _FIELDS if multi >> d & 1):
                continue
        out.append(i)
    return out


_FIELDS = (PROTO, DPORT, SPORT, DST, SRC)  # box_meets's order: most boxes differ in the first


@dataclass
class _GroupResult:
    boxes: dict[str, list[Box]]
    changed: int


def _group_regions(rp_old: ResolvedPolicy, rp_new: ResolvedPolicy, src: IpcKey | None, dst: IpcKey | None,
                   universe: Box, changed_rule_filter: bool = True, memo: _Memo | None = None) -> _GroupResult:
    """Changed regions between representative endpoints ``src`` and ``dst`` over ``universe``, by kind."""
    memo = memo or _Memo()
    lo_layers = {_layer_kind(l): l for l in path_layers(rp_old, src, dst)}
    ln_layers = {_layer_kind(l): l for l in path_layers(rp_new, src, dst)}
    kinds = list(lo_layers) + [k for k in ln_layers if k not in lo_layers]
    lists: list[tuple[int, Sequence[PathRule]]] = []  # (role, entries)
    changed_boxes: list[Box] = []
    n_changed = 0
    for k in kinds:
        old = lo_layers[k].rules if k in lo_layers else (_ALLOW_ALL,)
        new = ln_layers[k].rules if k in ln_layers else (_ALLOW_ALL,)
        co, cn = memo.changed(old, new)
        if changed_rule_filter and not co and not cn:
            lists.append((_BOTH, old))  # equal lists (the common subsequence is all of both)
            continue
        n_changed += len(co) + len(cn)
        for i in co:
            changed_boxes.append(old[i].box)
        for j in cn:
            changed_boxes.append(new[j].box)
        lists.append((_OLD, old))
        lists.append((_NEW, new))
    clipped: list[Box] = []
    meeting: list[Box] = []  # the unclipped boxes of ``clipped``: shared objects, so filters can be memoised
    for b in changed_boxes:
        c = _clip(b, universe)
        if c is not None and c not in clipped:
            clipped.append(c)
            meeting.append(b)
    if not changed_rule_filter:
        meeting = [ANY_PACKET]
        clipped = [universe]  # the global partition: every rule, the whole universe (benchmarks, tests)
    result = _GroupResult({OPENED: [], CLOSED: []}, n_changed)
    if not clipped:
        return result

    # Rules that meet no changed box never match a packet the walk visits (it stays inside their union),
    # so dropping them changes no first match there. Every list keeps its catch-all, which meets all.
    # A coarse pass against the unclipped boxes is shared by groups that meet the same layers; the exact
    # pass against this group's clipped boxes then runs on its few survivors only.
    specs = []
    boxes_lists: list[list[Box]] = [clipped]
    for role, entries in lists:
        idx = memo.kept(entries, meeting)
        if changed_rule_filter:
            kept_entries = [entries[i] for i in idx]
            all_hulls = memo.hulls_of(entries)
            hulls = [all_hulls[i] for i in idx]
            kept = [kept_entries[i] for i in sorted({i for c in clipped
                                                     for i in _meeting_entries(kept_entries, c, hulls)})]
        else:
            kept = [entries[i] for i in idx]
        boxes_lists.append([r.box for r in kept])
        specs.append((role, [r.access is Access.ALLOW for r in kept]))
    sp = Splitter(boxes_lists, universe, keep=1, require=(0,))
    leaf_specs = []
    for (role, allows), off, mask in zip(specs, sp.offsets[1:], sp.list_masks[1:]):
        allow_bits = sum(1 << (off + i) for i, a in enumerate(allows) if a)
        leaf_specs.append((mask, allow_bits, role))

    def leaf(c: int) -> int:
        old_ok = new_ok = True
        for mask, allow_bits, role in leaf_specs:
            m = c & mask
            if not m & -m & allow_bits:
                if role == _BOTH:
                    return 0  # a layer both versions share denies: no difference here
                if role == _OLD:
                    old_ok = False
                else:
                    new_ok = False
        if old_ok == new_ok:
            return 0
        return 1 if new_ok else 2

    found = region_walk(sp, leaf)
    result.boxes[OPENED].extend(found.get(1, ()))
    result.boxes[CLOSED].extend(found.get(2, ()))
    return result


def _union(pieces: list[IntervalSet]) -> IntervalSet:
    if len(pieces) == 1:
        return pieces[0]
    return IntervalSet([iv for p in pieces for iv in p])


# ---------------------------------------------------------------- witnesses


class _Replayer:
    """The reference evaluator of one version.

    A diff replays two packets per region, usually a few dozen: scanning the rules costs less than
    building the evaluator's per-NSG classifiers (about 10 ms per 1,000-rule NSG direction, as much as
    some 500 scans: most rules fail on protocol or ports at once), so the first witnesses are decided
    by the scan (:func:`nsgsolve.semantics.evaluate.first_match`, the specification the classifiers
    are tested against) and the classifiers are built only once a change yields very many regions."""

    SCAN_LIMIT = 1000

    def __init__(self, rp: ResolvedPolicy):
        self.rp = rp
        self.count = 0

    def evaluate(self, p: Packet, assignment: Mapping[IpcKey, int], src: IpcKey | None = None,
                 dst: IpcKey | None = None) -> FlowResult:
        self.count += 1
        return Evaluator(self.rp, assignment, fast=self.count > self.SCAN_LIMIT).evaluate(p, src, dst)


def _pick(s: IntervalSet, preferred: Iterable[int]) -> int:
    for v in preferred:
        if v in s:
            return v
    return s.min()


def _second(s: IntervalSet, avoid: int) -> int | None:
    """A value of ``s`` other than ``avoid``, or None."""
    for lo, hi in s:
        if lo != avoid:
            return lo
        if hi > lo:
            return lo + 1
    return None


def _witness(box: Box, s: _End, d: _End) -> Packet | None:
    proto = _pick(box[PROTO], (6, 17, 1))
    src = box[SRC].min()
    dst = box[DST].min()
    if src == dst and (s.key is None or d.key is None or s.dynamic or d.dynamic) and s.key != d.key:
        # Two different endpoints cannot share an address; look off the diagonal.
        other = _second(box[DST], src)
        if other is not None:
            dst = other
        else:
            other = _second(box[SRC], dst)
            if other is None:
                return None
            src = other
    if proto in PORTED_PROTOCOLS:
        return Packet(proto, src, _pick(box[SPORT], (49152,)), dst, _pick(box[DPORT], ()))
    return Packet(proto, src, None, dst, None)


# ---------------------------------------------------------------- entry point


def diff_policies(old: Policy | ResolvedPolicy, new: Policy | ResolvedPolicy, sources: Sequence[str] | None = None,
                  destinations: Sequence[str] | None = None, tag_db: ServiceTagDb | None = None,
                  changed_rule_filter: bool = True) -> DiffResult:
    """Every packet whose decision differs between ``old`` and ``new``, as regions per endpoint pair.

    ``sources`` / ``destinations`` restrict the pairs to the traffic they denote, in the query's
    vocabulary and meaning (see :func:`select_endpoints`); None means all.
    ``changed_rule_filter=False`` partitions each group's whole universe with every rule instead of only
    the changed rules' boxes: same answer, much slower; it exists to measure and test the filter.
    """
    # The diff allocates many small objects and frees them all; collector passes over the large resolved
    # policies meanwhile find nothing to free (a third of the diff's time on two 4,000-rule NSGs).
    with gc_paused():
        return _diff(old, new, sources, destinations, tag_db, changed_rule_filter)


def _diff(old: Policy | ResolvedPolicy, new: Policy | ResolvedPolicy, sources: Sequence[str] | None,
          destinations: Sequence[str] | None, tag_db: ServiceTagDb | None, changed_rule_filter: bool) -> DiffResult:
    rp_old = old if isinstance(old, ResolvedPolicy) else resolve(old, tag_db)
    rp_new = new if isinstance(new, ResolvedPolicy) else resolve(new, tag_db)
    ends, changes = _endpoints(rp_old, rp_new)
    notes: list[str | PartialItem] = []
    families = _families(rp_old, rp_new)
    sel_src = select_endpoints(sources, ends, rp_old, rp_new, SOURCES, notes)
    sel_dst = select_endpoints(destinations, ends, rp_old, rp_new, DESTINATIONS, notes)
    by_name = {e.ep.name: e for e in ends}
    # The selection clips an endpoint's addresses (a CIDR selects part of the Internet).
    src_ends = [_restrict(by_name[n], a) for n, a in sel_src.items()]
    dst_ends = [_restrict(by_name[n], a) for n, a in sel_dst.items()]

    groups: dict[tuple, tuple[list[_End], list[_End]]] = {}
    for s in src_ends:
        gs = (_out_sig(rp_old, s), _out_sig(rp_new, s))
        for d in dst_ends:
            if s.key is None and d.key is None:
                continue  # outside to outside: no NSG on the path
            g = groups.setdefault((gs, (_in_sig(rp_old, d), _in_sig(rp_new, d))), ([], []))
            if s not in g[0]:
                g[0].append(s)
            if d not in g[1]:
                g[1].append(d)

    replay_old, replay_new = _Replayer(rp_old), _Replayer(rp_new)
    order = {e.ep.name: i for i, e in enumerate(ends)}
    pairs: list[PairDiff] = []
    compared = n_groups = n_changed = 0
    memo = _Memo()
    for srcs, dsts in groups.values():
        group_pairs = [(s, d) for s in srcs for d in dsts if not (s.key == d.key and s.dynamic and s.key is not None)]
        if not group_pairs:
            continue
        compared += len(group_pairs)
        per_pair: dict[tuple[str, str], dict[str, list[Box]]] = {}
        for family in families:
            # A packet is of one family: each family's packets are one universe (IPv4 alone without IPv6).
            fsrcs, fdsts = (srcs, dsts) if len(families) == 1 else (_in_family(srcs, family), _in_family(dsts, family))
            if not fsrcs or not fdsts:
                continue
            n_groups += 1
            universe = Box(ALL_PROTOCOLS, _union([s.ep.addresses for s in fsrcs]), ALL_PORTS,
                           _union([d.ep.addresses for d in fdsts]), ALL_PORTS)
            got = _group_regions(rp_old, rp_new, fsrcs[0].key, fdsts[0].key, universe, changed_rule_filter, memo)
            n_changed += got.changed
            for kind in KINDS:
                for box in got.boxes[kind]:
                    hit_s = [(s, box[SRC].intersection(s.ep.addresses)) for s in fsrcs]
                    hit_d = [(d, box[DST].intersection(d.ep.addresses)) for d in fdsts]
                    for s, sa in hit_s:
                        if not sa:
                            continue
                        for d, da in hit_d:
                            if not da or (s.key == d.key and s.dynamic and s.key is not None):
                                continue
                            b = Box(box[PROTO], sa, box[SPORT], da, box[DPORT])
                            per_pair.setdefault((s.ep.name, d.ep.name), {OPENED: [], CLOSED: []})[kind].append(b)
        if not per_pair:
            continue
        ends_by_name = {e.ep.name: e for e in srcs + dsts}
        for (sn, dn), kinds in per_pair.items():
            s, d = ends_by_name[sn], ends_by_name[dn]
            regions: list[Region] = []
            for kind in KINDS:
                for box in sorted(merge_cells(kinds[kind]), key=_box_key):
                    r = _region(kind, box, s, d, replay_old, replay_new)
                    if r is not None:
                        regions.append(r)
            if regions:
                pairs.append(PairDiff(s.ep, d.ep, tuple(regions)))
    pairs.sort(key=lambda p: (order[p.source.name], order[p.destination.name]))
    return DiffResult(tuple(pairs), tuple(changes), compared, n_groups, n_changed, tuple(notes),
                      sum(1 for e in ends if e.key is not None))


def _in_family(ends: Sequence[_End], family: IntervalSet) -> list[_End]:
    """The endpoints with addresses of ``family``, restricted to them."""
    out = []
    for e in ends:
        addrs = e.ep.addresses.intersection(family)
        if addrs:
            out.append(_restrict(e, addrs))
    return out


def _restrict(e: _End, addrs: IntervalSet) -> _End:
    if addrs == e.ep.addresses:
        return e
    ep = e.ep
    return _End(DiffEndpoint(ep.name, ep.kind, addrs, ep.detail, ep.key), e.key, e.dynamic)


def _box_key(b: Box) -> tuple:
    return tuple(s.min() for s in b)


def _region(kind: str, box: Box, s: _End, d: _End, replay_old: _Replayer, replay_new: _Replayer) -> Region | None:
    w = _witness(box, s, d)
    if w is None:
        return None  # only src == dst points, which two different endpoints cannot send
    assignment = {}
    if s.key is not None and s.dynamic:
        assignment[s.key] = w.src
    if d.key is not None and d.dynamic:
        assignment[d.key] = w.dst
    # The pair names its NICs: an address NICs of two VNets share (W501) does not say which one.
    r_old = replay_old.evaluate(w, assignment, s.key, d.key)
    r_new = replay_new.evaluate(w, assignment, s.key, d.key)
    want = (Access.DENY, Access.ALLOW) if kind == OPENED else (Access.ALLOW, Access.DENY)
    if (r_old.decision, r_new.decision) != want or (r_old.src_endpoint, r_old.dst_endpoint) != (s.key, d.key):
        # The region arithmetic and the reference evaluator disagree: a bug, never a finding.
        raise AssertionError(f"diff witness {w} ({s.ep.name} -> {d.ep.name}) should be {kind} but the "
                             f"reference evaluator says OLD {r_old.decision.value}, NEW {r_new.decision.value} "
                             f"(endpoints {r_old.src_endpoint} -> {r_old.dst_endpoint})")
    return Region(kind, box, w, r_old, r_new, tuple(sorted(assignment.items())))


__all__ = [
    "CLOSED", "DESTINATIONS", "OPENED", "SOURCES", "DiffEndpoint", "DiffResult", "EndpointChange", "PairDiff",
    "PartialItem", "Region", "SelectionError", "diff_policies", "outside_classes", "packet_point", "select_endpoints",
]
