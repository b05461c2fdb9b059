"""The packet space with dynamic private IPs made exact: one extra address range per dynamic NIC.

A rule side that names a NIC with a dynamic IP (through an ASG or the NIC's name) matches that NIC at
whatever address Azure gives it, and matches nobody else at that address. Per packet, the address on
each side is therefore either a plain address ("no dynamic NIC sits here") or a pair (dynamic IP
configuration ``k``, address ``a`` in ``k``'s usable range). Numbering the pairs of ``k`` as
``(index(k) + 1) << 32 | a`` turns both kinds into one integer field, so every rule is again a box
(:func:`nsgsolve.regions.box.rule_box` with these sides) and a region answer covers every
address Azure may pick, which is what the Z3 encoding's free variables mean.

A space holds one address family (``v6``): a packet is IPv4 or IPv6, so a box over both families would
hold packets from an IPv4 address to an IPv6 one, which do not exist. An analysis of a policy with IPv6
addresses (``ResolvedPolicy.has_ipv6``) works in both spaces; an IPv6 space numbers the pairs of ``k`` as
``(index(k) + 1) << 129 | a`` (``a`` in the integer space both families share).

The one thing this space over-approximates is a packet whose source and destination are the same
dynamic NIC at two different addresses; no finding depends on it being impossible, because findings
are claims that *no* packet of some set exists, and the set here is a superset.
"""

from __future__ import annotations

from dataclasses import dataclass

from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS, ALL_V6, EMPTY, IntervalSet, int_to_ip
from nsgsolve.semantics.evaluate import Packet
from nsgsolve.model import PORTED_PROTOCOLS, V6_BASE
from nsgsolve.regions.box import ALL_PROTOCOLS, Box, rule_box
from nsgsolve.semantics.resolve import AddrSet, IpcKey, ResolvedPolicy, ResolvedRule

_SHIFTS = {False: 32, True: 129}


def in_v6_space(v: int) -> bool:
    """Whether a value of an extended address field is of the IPv6 space. The two spaces' values never
    collide (IPv4's lie below 2**128: plain addresses and ``(k + 1) << 32 | a``; IPv6's from 2**128 on),
    so a point says its family, and address sets of the two spaces may be united."""
    return v >= V6_BASE


def _shift(s: IntervalSet, base: int) -> IntervalSet:
    return IntervalSet._raw(tuple(lo + base for lo, _ in s), tuple(hi + base for _, hi in s))


@dataclass(frozen=True)
class Endpoint:
    """Who a decoded address is: ``ip`` plus the dynamic IP configuration sitting there, if any."""

    ip: int
    dynamic: IpcKey | None


class Space:
    """The extended packet space of one resolved policy."""

    def __init__(self, rp: ResolvedPolicy, v6: bool = False):
        self.rp = rp
        self.v6 = v6
        self.family = ALL_V6 if v6 else ALL_IPS  # the plain addresses of this space
        self.shift = _SHIFTS[v6]
        statics = IntervalSet([(ip, ip) for ip in rp.static_ip_index])
        # Where each dynamic configuration may sit: its subnet's usable addresses of this family that no
        # static NIC holds (a configuration of the other family has no place here).
        usable = {k: rp.ipcs[k].usable.intersection(self.family).difference(statics) for k in rp.dynamic_ipcs}
        self.dynamic: tuple[IpcKey, ...] = tuple(sorted(k for k in rp.dynamic_ipcs if usable[k]))
        self.base = {k: (i + 1) << self.shift for i, k in enumerate(self.dynamic)}
        self.usable = {k: usable[k] for k in self.dynamic}
        self.ranges = {k: _shift(self.usable[k], self.base[k]) for k in self.dynamic}
        addr = self.family
        for r in self.ranges.values():
            addr = addr.union(r)
        self.addresses = addr
        self.universe = Box(ALL_PROTOCOLS, addr, ALL_PORTS, addr, ALL_PORTS)
        self._side_cache: dict[AddrSet, IntervalSet] = {}

    def side(self, s: AddrSet) -> IntervalSet:
        got = self._side_cache.get(s)
        if got is not None:
            return got
        plain = s.intervals.intersection(self.family)
        parts = list(plain)
        for k in self.dynamic:
            if k in s.members:
                parts += list(self.ranges[k])
            else:
                parts += list(_shift(plain.intersection(self.usable[k]), self.base[k]))
        out = self._side_cache[s] = IntervalSet(parts)
        return out

    def box(self, r: ResolvedRule) -> Box:
        """The rule's exact match set in this space (dynamic members at every address they may take)."""
        return rule_box(r, self.side(r.src), self.side(r.dst))

    def endpoint_set(self, key: IpcKey) -> IntervalSet:
        """Every value of an address field that is this IP configuration."""
        info = self.rp.ipcs[key]
        if info.ip is not None:
            return IntervalSet([(info.ip, info.ip)]).intersection(self.family)
        return self.ranges.get(key, EMPTY)

    def plain(self, s: IntervalSet) -> IntervalSet:
        """The plain (no dynamic NIC) addresses of an extended set, plus the addresses of its dynamic pairs."""
        out = s.intersection(self.family)
        for k in self.dynamic:
            part = s.intersection(self.ranges[k])
            if part:
                out = out.union(_shift(part, -self.base[k]))
        return out

    def decode(self, v: int) -> Endpoint:
        slot = v >> self.shift
        if not slot:
            return Endpoint(v, None)
        return Endpoint(v & ((1 << self.shift) - 1), self.dynamic[slot - 1])

    def packet(self, point: tuple[int, ...]) -> tuple[Packet, Endpoint, Endpoint]:
        proto, src, sport, dst, dport = point
        s, d = self.decode(src), self.decode(dst)
        if proto in PORTED_PROTOCOLS:
            return Packet(proto, s.ip, sport, d.ip, dport), s, d
        return Packet(proto, s.ip, None, d.ip, None), s, d

    def describe(self, v: int) -> str:
        e = self.decode(v)
        return int_to_ip(e.ip) if e.dynamic is None else f"{int_to_ip(e.ip)} (dynamic {e.dynamic})"
