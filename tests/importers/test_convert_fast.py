"""Property: the converter's shortcuts for prefixes and ports it has read before (convert._CIDR_CACHE and
_PORT_CACHE, taken on the raw text) give the rule the general path gives: same items, spans, notes and errors,
whatever the caches hold."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from nsgsolve.importers import convert, jsonpos
from nsgsolve.model import NOSPAN

OCTET = st.integers(0, 255)
PLAIN = st.builds(lambda a, b, c, n: f"{a}.{b}.{c}.0/{n}", OCTET, OCTET, OCTET, st.integers(8, 24))
HOST = st.builds(lambda a, d: f"10.{a}.0.{d}", OCTET, OCTET)
TEXT = st.one_of(
    PLAIN, HOST,
    st.builds(lambda a, d, n: f"10.{a}.0.{d}/{n}", OCTET, st.integers(1, 255), st.integers(16, 28)),  # host bits
    PLAIN.map(lambda t: f" {t} "),  # spaces around: the same prefix as without
    st.builds(lambda a, b: f"10.0.{min(a, b)}.1-10.0.{max(a, b)}.9", OCTET, OCTET),  # a range
    st.builds(lambda a: f"fd00:{a:x}::/64", st.integers(0, 65535)),
    st.sampled_from(["*", "Internet", "VirtualNetwork", "not a prefix", "10.0.0.300", "", "01.2.3.4"]),
    st.integers(0, 2**32 - 1),
)

PORT = st.one_of(st.integers(0, 65535).map(str), st.integers(0, 70000),
                 st.builds(lambda a, b: f"{min(a, b)}-{max(a, b)}", st.integers(0, 65535), st.integers(0, 65535)),
                 st.sampled_from(["*", "Any", "any", " 80 ", "1 - 2", "2-1", "70000", "http", "", "08"]))


def _rule(texts: list, single: str | None, ports: list, port: str | None) -> dict:
    props = {"priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
             "sourcePortRange": "*", "destinationAddressPrefix": "*"}
    if ports:
        props["destinationPortRanges"] = ports
    if port is not None or not ports:
        props["destinationPortRange"] = "443" if port is None else port
    if texts:
        props["sourceAddressPrefixes"] = texts
    if single is not None:
        props["sourceAddressPrefix"] = single
    return {"name": "r", "properties": props}


def _convert(doc: dict) -> tuple:
    b = convert.PolicyBuilder()
    obj = jsonpos.parse(json.dumps(doc, indent=1), "t.json")
    rule = b.convert_rule(obj, "resources[0]", NOSPAN)
    return rule, [(d.code, d.message, d.span) for d in b.bag.items]


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, max_size=6), st.one_of(st.none(), TEXT), st.lists(PORT, max_size=4),
       st.one_of(st.none(), PORT), st.booleans())
def test_a_rule_reads_the_same_with_or_without_values_read_before(texts, single, ports, port, warm_first):
    doc = _rule(texts, single, ports, port)
    convert._CIDR_CACHE.clear()
    convert._PORT_CACHE.clear()
    if warm_first:  # every text of the rule already read once (the shortcut taken for each)
        _convert(doc)
    first = _convert(doc)
    convert._CIDR_CACHE.clear()
    convert._PORT_CACHE.clear()
    cold = _convert(doc)
    assert first == cold
