"""IPv4 and IPv6 addresses, prefixes and sets of them as sorted disjoint intervals.

Both families live in one integer space, so every interval, box and bit-vector stays one number line: an
IPv4 address ``a`` is the integer ``a`` (below 2**32), an IPv6 address ``a`` is ``2**128 + a`` (bit 128 is
the family bit, so IPv6 prefixes stay aligned and a 129-bit vector holds both). Nothing lies between
2**32 and 2**128. A set that mixes families is simply a set; a rule matches only the addresses it lists,
so "a rule matches only its own family" needs no code, and ``*`` is :data:`ALL_ADDRS` (both families).

An :class:`IntervalSet` is the one representation of "a set of addresses" (or ports) the evaluator,
the Z3 encoding and the reports share. It is immutable; unions of thousands of prefixes (Azure allows
4,000 per rule side) cost one sort.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from functools import lru_cache
from typing import Iterable, Iterator

from nsgsolve.model import V6_BASE  # the integer of IPv6 ::

MAX_IP = (1 << 32) - 1  # the last IPv4 address
MAX_V6 = V6_BASE + (1 << 128) - 1  # the integer of IPv6 ffff:...:ffff
ADDR_BITS_DUAL = 129  # a bit-vector holding both families (bit 128: IPv6)
MAX_PORT = 65535


def is_v6(value: int) -> bool:
    return value >= V6_BASE


def width_of(value: int) -> int:
    """The prefix-length scale of an address's family: 32 or 128."""
    return 128 if value >= V6_BASE else 32


class IntervalSet:
    """A set of integers as sorted, disjoint, non-adjacent closed intervals [lo, hi]."""

    __slots__ = ("_los", "_his")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()):
        merged: list[list[int]] = []
        for lo, hi in sorted(intervals):
            if lo > hi:
                continue
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        self._los = tuple(m[0] for m in merged)
        self._his = tuple(m[1] for m in merged)

    @classmethod
    def _raw(cls, los: tuple[int, ...], his: tuple[int, ...]) -> "IntervalSet":
        s = cls.__new__(cls)
        s._los, s._his = los, his
        return s

    def __contains__(self, x: int) -> bool:
        i = bisect_right(self._los, x) - 1
        return i >= 0 and x <= self._his[i]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._los, self._his))

    def __len__(self) -> int:
        return len(self._los)

    def __bool__(self) -> bool:
        return bool(self._los)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntervalSet) and self._los == other._los and self._his == other._his

    def __hash__(self) -> int:
        return hash((self._los, self._his))

    def __repr__(self) -> str:
        return f"IntervalSet({list(self)})"

    def size(self) -> int:
        return sum(h - l + 1 for l, h in self)

    def union(self, other: "IntervalSet") -> "IntervalSet":
        return IntervalSet(list(self) + list(other))

    def intersection(self, other: "IntervalSet") -> "IntervalSet":
        # The analyses intersect rule sides with thousands of intervals against boxes with a few: return
        # a side unchanged when it lies in a single interval of the other, and otherwise visit only the
        # stretch of the long side that each interval of the short side meets.
        if self is other:
            return self
        xlos, xhis, ylos, yhis = self._los, self._his, other._los, other._his
        if not xlos or not ylos:
            return self if not xlos else other
        if len(ylos) == 1 and ylos[0] <= xlos[0] and xhis[-1] <= yhis[0]:
            return self
        if len(xlos) == 1 and xlos[0] <= ylos[0] and yhis[-1] <= xhis[0]:
            return other
        if len(xlos) > len(ylos):
            xlos, xhis, ylos, yhis = ylos, yhis, xlos, xhis
        out_lo: list[int] = []
        out_hi: list[int] = []
        n = len(ylos)
        for lo, hi in zip(xlos, xhis):
            k = max(bisect_right(ylos, lo) - 1, 0)
            while k < n and ylos[k] <= hi:
                a, b = max(lo, ylos[k]), min(hi, yhis[k])
                if a <= b:
                    out_lo.append(a)
                    out_hi.append(b)
                k += 1
        return IntervalSet._raw(tuple(out_lo), tuple(out_hi))

    def difference(self, other: "IntervalSet") -> "IntervalSet":
        out: list[tuple[int, int]] = []
        cut = list(other)
        j = 0
        for lo, hi in self:
            while j < len(cut) and cut[j][1] < lo:
                j += 1
            k = j
            cur = lo
            while k < len(cut) and cut[k][0] <= hi:
                if cut[k][0] > cur:
                    out.append((cur, cut[k][0] - 1))
                cur = max(cur, cut[k][1] + 1)
                k += 1
            if cur <= hi:
                out.append((cur, hi))
        return IntervalSet(out)

    def complement(self, universe_hi: int) -> "IntervalSet":
        return IntervalSet([(0, universe_hi)]).difference(self)

    def issubset(self, other: "IntervalSet") -> bool:
        # By binary search, building nothing: the analyses ask this for every rule, field and piece.
        if self is other:
            return True
        olos, ohis = other._los, other._his
        for lo, hi in zip(self._los, self._his):
            k = bisect_right(olos, lo) - 1
            if k < 0 or ohis[k] < hi:
                return False
        return True

    def meets(self, other: "IntervalSet") -> bool:
        """``self ∩ other`` is not empty (without building it)."""
        if self is other:
            return bool(self._los)
        alos, ahis, blos, bhis = self._los, self._his, other._los, other._his
        if len(alos) > len(blos):
            alos, ahis, blos, bhis = blos, bhis, alos, ahis
        for lo, hi in zip(alos, ahis):
            k = bisect_right(blos, hi) - 1
            if k >= 0 and bhis[k] >= lo:
                return True
        return False

    def min(self) -> int:
        return self._los[0]

    def bounds(self) -> tuple[int, int]:
        """The smallest and the largest value (of a non-empty set)."""
        return self._los[0], self._his[-1]


EMPTY = IntervalSet()
ALL_IPS = IntervalSet([(0, MAX_IP)])  # every IPv4 address
ALL_V6 = IntervalSet([(V6_BASE, MAX_V6)])  # every IPv6 address
ALL_ADDRS = ALL_IPS.union(ALL_V6)  # `*`: every address of both families
ALL_PORTS = IntervalSet([(0, MAX_PORT)])


def bitset_segments(items: Iterable[tuple[int, Iterable[tuple[int, int]]]], cuts: Iterable[int] = ()
                    ) -> tuple[list[int], list[int]]:
    """The sorted-bounds sweep behind every per-field index: ``items`` are (bit mask, intervals) pairs;
    the result is the elementary segments' starts, ascending, and for each segment (up to the next start)
    the OR of the masks whose intervals cover it. ``cuts`` are extra segment starts (a universe's bounds).

    A mask's own intervals must be disjoint and not adjacent (as an IntervalSet's are), so its toggles
    at one point never cancel out. Used by the evaluator's classifier, lint's indexes and the region
    partition (:class:`nsgsolve.regions.box.Splitter`).
    """
    events: dict[int, int] = {}
    get = events.get
    for bit, intervals in items:
        for lo, hi in intervals:
            events[lo] = get(lo, 0) ^ bit
            events[hi + 1] = get(hi + 1, 0) ^ bit
    for c in cuts:
        events.setdefault(c, 0)
    starts = sorted(events)
    masks = []
    cur = 0
    for p in starts:
        cur ^= events[p]
        masks.append(cur)
    return starts, masks


# Dotted IPv4 as ipaddress accepts it (no leading zeros, octets to 255), for a fast path in integers;
# anything else goes to ipaddress, so its messages and its odd accepted forms stay the same.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_IPV4_CIDR = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(3[0-2]|[12]?[0-9]))?")


def ip_to_int(text: str) -> int:
    m = _IPV4.fullmatch(text)
    if m is None:
        if ":" in text:
            return V6_BASE + int(ipaddress.IPv6Address(text))
        return int(ipaddress.IPv4Address(text))
    a, b, c, d = m.groups()
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def int_to_ip(value: int) -> str:
    if 0 <= value <= MAX_IP:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    if V6_BASE <= value <= MAX_V6:
        return _v6_text(value)
    return str(ipaddress.IPv4Address(value))  # raises as before


@lru_cache(maxsize=1 << 16)
def _v6_text(value: int) -> str:
    """ipaddress's compressed text of an IPv6 address: some 10 us each, and a flow file repeats its addresses."""
    return str(ipaddress.IPv6Address(value - V6_BASE))


def parse_ipv6_cidr(text: str) -> tuple[int, int]:
    """(address in the shared integer space, prefix length) of an IPv6 ``addr`` or ``addr/n``, host bits
    as written; raises ValueError (ipaddress's message) on anything else."""
    addr, _, n = text.partition("/")
    a = ipaddress.IPv6Address(addr)
    if n and not (n.isdigit() and 0 <= int(n) <= 128):
        raise ValueError(f"{n!r} is not a valid IPv6 prefix length (0 to 128)")
    return V6_BASE + int(a), int(n) if n else 128


def parse_ipv4_cidr(text: str) -> tuple[int, int] | None:
    """(address, prefix length) of ``a.b.c.d`` or ``a.b.c.d/n`` in the plain form, host bits as written;
    None for every other text (the caller's ipaddress path then decides, with its messages)."""
    m = _IPV4_CIDR.fullmatch(text)
    if m is None:
        return None
    a, b, c, d, n = m.groups()
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d), 32 if n is None else int(n)


def summarize_range(lo: int, hi: int) -> list[tuple[int, int]]:
    """The fewest CIDR blocks (network, length) covering [lo, hi]: ipaddress.summarize_address_range in
    integers (the same blocks in the same order)."""
    out = []
    width = width_of(lo)  # a range never spans both families (nothing lies between them)
    while lo <= hi:
        size = (hi - lo + 1).bit_length() - 1  # the largest block that fits...
        if lo:
            size = min(size, (lo & -lo).bit_length() - 1)  # ...and is aligned at lo
        out.append((lo, width - size))
        lo += 1 << size
    return out


def cidr_interval(network: int, length: int) -> tuple[int, int]:
    return network, network | ((1 << (width_of(network) - length)) - 1)


def prefixes(text_items: Iterable[str]) -> IntervalSet:
    """An IntervalSet from IPv4 and IPv6 CIDR strings (IPv6 in the shared integer space)."""
    out = []
    for t in text_items:
        if ":" in t:
            n6 = ipaddress.IPv6Network(t, strict=False)
            out.append((V6_BASE + int(n6.network_address), V6_BASE + int(n6.broadcast_address)))
            continue
        fast = parse_ipv4_cidr(t)
        if fast is not None:
            ip, length = fast
            out.append(cidr_interval(ip & ~((1 << (32 - length)) - 1) & MAX_IP, length))
            continue
        n = ipaddress.IPv4Network(t, strict=False)
        out.append((int(n.network_address), int(n.broadcast_address)))
    return IntervalSet(out)


def to_cidrs(s: IntervalSet) -> list[str]:
    """The fewest CIDR blocks covering exactly the set (for people reading output)."""
    out: list[str] = []
    for lo, hi in s:
        for net, length in summarize_range(lo, hi):
            out.append(f"{int_to_ip(net)}/{length}")
    return out


def describe_ips(s: IntervalSet, limit: int = 6, more: str = "more") -> str:
    """Short human text: CIDRs or ranges, whichever is shorter, at most ``limit`` pieces (then how many
    ``more``)."""
    if s == ALL_IPS:
        return "0.0.0.0/0"
    if s == ALL_ADDRS:
        return "0.0.0.0/0, ::/0"
    pieces: list[str] = []
    total = len(s)
    shown = min(total, limit)  # one piece per interval: the rest are only counted
    for lo, hi in zip(s._los[:shown], s._his[:shown]):
        size = hi - lo + 1
        if size & (size - 1) or lo & (size - 1):  # not one aligned block: summarize_range gives several
            pieces.append(f"{int_to_ip(lo)}-{int_to_ip(hi)}")
        elif size == 1:
            pieces.append(int_to_ip(lo))
        else:
            pieces.append(f"{int_to_ip(lo)}/{width_of(lo) - size.bit_length() + 1}")
    if total > limit:
        return ", ".join(pieces) + f", ... ({total - limit} {more})"
    return ", ".join(pieces)


def describe_ports(s: IntervalSet) -> str:
    if s == ALL_PORTS:
        return "*"
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in s)


# Public IPv4 space for the Internet tag (semantics.md), before the VNet's own space is removed.
NON_INTERNET = prefixes([
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3",
])
PUBLIC_IPV4 = ALL_IPS.difference(NON_INTERNET)
# Public IPv6 space for the Internet tag: every IPv6 address but the special-purpose blocks that never
# leave a host or a site (unspecified, loopback, IPv4-mapped, unique local, link-local, multicast).
NON_INTERNET_V6 = prefixes(["::/128", "::1/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10", "ff00::/8"])
PUBLIC_IPV6 = ALL_V6.difference(NON_INTERNET_V6)
PUBLIC = PUBLIC_IPV4.union(PUBLIC_IPV6)
# The IPv4 blocks a VNet may use that are not public (Azure refuses 0/8, 127/8, 169.254/16 and 224/3 for a
# VNet): what a VNet address space nobody gave is assumed to lie in (model.OpenVNet), so that the Internet
# tag, public space minus the VNet's, is the same for every value.
PRIVATE_SPACES = (("10.0.0.0", 8), ("172.16.0.0", 12), ("192.168.0.0", 16), ("100.64.0.0", 10))
PRIVATE_SPACE = prefixes([f"{a}/{n}" for a, n in PRIVATE_SPACES])
