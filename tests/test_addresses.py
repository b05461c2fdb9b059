"""IntervalSet against the plain set of integers it stands for.

Every analysis rests on these operations (lint's subsumption, the partition's sweeps, diff's pruning),
and the fast paths (a side inside one interval of the other, binary search instead of a merge) are
exactly where an off-by-one would hide, so each is checked on random small sets, including adjacent,
touching and empty ones.
"""

from __future__ import annotations

import re

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from nsgsolve.semantics.addresses import IntervalSet, describe_ips, ip_to_int, to_cidrs

U = 40  # a universe small enough to list, big enough for every arrangement of a few intervals

intervals = st.lists(st.tuples(st.integers(0, U), st.integers(0, U)).map(lambda t: (min(t), max(t))),
                     max_size=6)


def members(s: IntervalSet) -> set[int]:
    return {x for lo, hi in s for x in range(lo, hi + 1)}


def canonical(s: IntervalSet) -> bool:
    pairs = list(s)
    return all(lo <= hi for lo, hi in pairs) and all(a[1] + 1 < b[0] for a, b in zip(pairs, pairs[1:]))


@settings(max_examples=400, deadline=None)
@given(intervals, intervals)
def test_operations_agree_with_sets(a_ivs, b_ivs):
    a, b = IntervalSet(a_ivs), IntervalSet(b_ivs)
    ma, mb = members(a), members(b)
    inter = a.intersection(b)
    assert members(inter) == ma & mb and canonical(inter)
    assert members(b.intersection(a)) == ma & mb
    assert members(a.union(b)) == ma | mb
    diff = a.difference(b)
    assert members(diff) == ma - mb and canonical(diff)
    assert a.issubset(b) == (ma <= mb)
    assert b.issubset(a) == (mb <= ma)
    assert a.meets(b) == bool(ma & mb) == b.meets(a)
    assert a.size() == len(ma)
    assert (a == b) == (ma == mb)


@given(intervals)
def test_a_set_against_itself(ivs):
    s = IntervalSet(ivs)
    assert s.intersection(s) == s and s.issubset(s)
    assert s.meets(s) == bool(s)
    assert s.intersection(IntervalSet()) == IntervalSet() and not s.meets(IntervalSet())


def test_construction_merges_adjacent_and_overlapping_intervals():
    assert list(IntervalSet([(5, 9), (0, 4), (20, 30), (25, 26)])) == [(0, 9), (20, 30)]
    assert list(IntervalSet([(3, 2)])) == []


def test_cidr_text():
    s = IntervalSet([(ip_to_int("10.0.0.0"), ip_to_int("10.0.1.255")), (ip_to_int("10.0.3.7"),) * 2])
    assert to_cidrs(s) == ["10.0.0.0/23", "10.0.3.7/32"]
    assert describe_ips(s) == "10.0.0.0/23, 10.0.3.7"


# ---------------------------------------------------------------- integer fast paths against ipaddress

import ipaddress as _ipaddress  # noqa: E402

from hypothesis import given as _given, settings as _settings, strategies as _st  # noqa: E402

from nsgsolve.semantics import addresses as _a  # noqa: E402

_IPS = _st.integers(0, (1 << 32) - 1)


@_settings(max_examples=300, deadline=None)
@_given(_IPS, _IPS)
def test_integer_paths_agree_with_ipaddress(x, y):
    lo, hi = min(x, y), max(x, y)
    assert _a.int_to_ip(x) == str(_ipaddress.IPv4Address(x))
    assert _a.ip_to_int(str(_ipaddress.IPv4Address(x))) == x
    want = [(int(n.network_address), n.prefixlen) for n in
            _ipaddress.summarize_address_range(_ipaddress.IPv4Address(lo), _ipaddress.IPv4Address(hi))]
    assert _a.summarize_range(lo, hi) == want
    length = x % 33
    text = f"{_ipaddress.IPv4Address(y)}/{length}"
    net = _ipaddress.IPv4Network(text, strict=False)
    assert _a.prefixes([text]) == _a.IntervalSet([(int(net.network_address), int(net.broadcast_address))])
    assert _a.parse_ipv4_cidr(text) == (y, length)


@pytest.mark.parametrize("text", ["010.0.0.1", "1.2.3", "1.2.3.4.5", "256.1.1.1", " 1.2.3.4", "1.2.3.4 ", "a.b.c.d",
                                  "1.2.3.4/33", "1.2.3.4/08", "1.2.3.4/255.255.0.0", "１.2.3.4"])
def test_odd_address_texts_behave_as_ipaddress_says(text):
    """Forms the fast path does not take go to ipaddress: the same value or the same error."""
    plain = text.split("/")[0]
    try:
        want = int(_ipaddress.IPv4Address(plain))
    except ValueError as e:
        with pytest.raises(ValueError, match=re.escape(str(e))):
            _a.ip_to_int(plain)
    else:
        assert _a.ip_to_int(plain) == want
    if "/" in text:
        try:
            net = _ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            with pytest.raises(ValueError):
                _a.prefixes([text])
        else:
            assert _a.prefixes([text]) == _a.IntervalSet([(int(net.network_address), int(net.broadcast_address))])


_iv = st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, 1 << 20)).map(
    lambda t: (t[0], min((1 << 32) - 1, t[0] + t[1])))


@given(st.lists(_iv, max_size=9), st.integers(1, 8))
@settings(max_examples=300, deadline=None)
def test_describe_ips_words_each_interval_as_ipaddress_would(intervals, limit):
    """One piece per interval: its CIDR when ipaddress summarizes it to one block, else lo-hi; at most
    ``limit`` pieces, then how many more."""
    s = IntervalSet(intervals)
    pieces = []
    for lo, hi in s:
        blocks = list(_ipaddress.summarize_address_range(_ipaddress.IPv4Address(lo), _ipaddress.IPv4Address(hi)))
        if len(blocks) == 1:
            b = blocks[0]
            pieces.append(str(b.network_address) if b.prefixlen == 32 else str(b))
        else:
            pieces.append(f"{_ipaddress.IPv4Address(lo)}-{_ipaddress.IPv4Address(hi)}")
    want = ", ".join(pieces[:limit]) + (f", ... ({len(pieces) - limit} more)" if len(pieces) > limit else "")
    assert describe_ips(s, limit) == ("0.0.0.0/0" if s == IntervalSet([(0, (1 << 32) - 1)]) else want)
