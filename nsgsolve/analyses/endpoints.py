"""What a traffic endpoint means: one meaning for ``nsgsolve query`` and ``nsgsolve check``.

A question (``can SRC reach DST port P tcp``) and an assertion (``assert no SRC -> DST port P tcp``,
with its ``except`` clauses) name a set of packets the same way, so an assertion and a query about the
same traffic give the same answer. docs/query.md ("What an endpoint denotes") is the one description
for users; docs/contracts.md points there. ``nsgsolve diff --from/--to`` select with :func:`resolve_side`
too, in each version (:func:`nsgsolve.analyses.diff.select_endpoints`).

* **NIC-type endpoints** — a NIC, an ASG, a subnet, a VNet — denote NICs: every IP configuration of
  them, wherever Azure may put a dynamic one. A subnet is its NICs, not its address range.
* **Address-type endpoints** — an IP, a CIDR, a range, a named network, a service tag, ``any`` — denote
  the NICs whose address lies inside, plus every other address inside as an *outside host*. An outside
  host has no NSG of its own (semantics.md): traffic from one meets only the destination NIC's inbound
  layers, traffic to one only the source NIC's outbound layers.
* ``Internet`` is public IPv4 and IPv6 space minus every VNet's ``VirtualNetwork`` tag: not the policy's VNets,
  not peered or on-premises space, not 168.63.129.16 (public, but the platform's own, and trusted by every
  default ``AllowVnetInBound``: counting it would make every "no Internet -> X" fail on health probes).
  ``VirtualNetwork`` is the union of the tag over all VNets. Rules keep the per-VNet meaning
  (:mod:`nsgsolve.semantics.resolve`); these are the meanings as a question's endpoint.
* Packets with no NIC of the policy on either side are outside every question: no NSG sees them.
* Protocol: none means every IP protocol, or Tcp and Udp when ports are given (only they carry ports);
  ports with ``icmp``, ``esp`` or ``ah`` are an error (E801). Ports are destination ports.

The Z3 side of the same meaning is here too (:func:`side_term`, :func:`traffic_term`,
:func:`traffic_region`, :func:`candidates`), so the two commands cannot build different constraints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from nsgsolve.semantics.addresses import ALL_PORTS, PRIVATE_SPACE, IntervalSet
from nsgsolve.semantics.platform import VIRTUAL_NETWORK_EXTRA
from nsgsolve.errors import DiagnosticBag
from nsgsolve.model import (
    PORTED_PROTOCOLS, AnyAddress, AsgSide, Cidr, Endpoint, IpRange, NetworkRef, NicAddr, PortSpec, Protocol, Span,
    SubnetAddr, TagSide, VnetAddr,
)
from nsgsolve.regions.box import ALL_PROTOCOLS, PORTED, Box
from nsgsolve.semantics.resolve import IpcKey, ResolvedPolicy, resolve_items, resolve_ports, resolve_rule_side
from nsgsolve.semantics.servicetags import canonical_builtin
from nsgsolve.smt.z3util import mk_and, mk_or

if TYPE_CHECKING:  # pragma: no cover
    import z3

    from nsgsolve.smt.encode import Encoding
    from nsgsolve.semantics.evaluate import Packet


@dataclass(frozen=True)
class Side:
    """What one side of some traffic denotes: NICs named by identity, plus addresses (a NIC whose address
    lies there, or an outside host)."""

    nics: frozenset[IpcKey]
    addresses: IntervalSet

    def contains(self, ip: int, nic: IpcKey | None) -> bool:
        """Is the address ``ip`` (held by the IP configuration ``nic``, if any) on this side?"""
        return (nic is not None and nic in self.nics) or ip in self.addresses




def virtual_network_hosts(rp: ResolvedPolicy) -> IntervalSet:
    """``VirtualNetwork`` as an endpoint: the tag's union over every VNet of the policy (their spaces,
    peered spaces, on-premises prefixes) and 168.63.129.16; with a VNet whose space is a parameter
    (model.OpenVNet), every private block its value may lie in (a superset: a "no" stays true for every
    value, where leaving the value out would hide its hosts)."""
    parts = [iv for s in rp.virtual_network_tag.values() for iv in s] + list(VIRTUAL_NETWORK_EXTRA)
    if rp.open_spaces:
        parts += list(PRIVATE_SPACE)
    return IntervalSet(parts)


def internet_hosts(rp: ResolvedPolicy) -> IntervalSet:
    """``Internet`` as an endpoint: public IPv4 and IPv6 space that is no part of any VNet's VirtualNetwork tag.
    Besides the VNets themselves that leaves out peered spaces, on-premises prefixes and 168.63.129.16."""
    return rp.public.difference(virtual_network_hosts(rp))


def resolve_side(rp: ResolvedPolicy, endpoints: Sequence[Endpoint] | None, bag: DiagnosticBag) -> Side:
    """The :class:`Side` a list of endpoints denotes (``None``: any address, as an ``except`` clause
    without ``from``/``to``); unknown names go to ``bag``."""
    if endpoints is None:
        return Side(frozenset(), rp.all_addresses)
    nics: set[IpcKey] = set()
    parts: list[tuple[int, int]] = []
    for e in endpoints:
        if isinstance(e, AnyAddress):
            parts += list(rp.all_addresses)
        elif isinstance(e, TagSide):
            canon = canonical_builtin(e.tag.name)
            if canon == "Internet":
                parts += list(internet_hosts(rp))
            elif canon == "VirtualNetwork":
                parts += list(virtual_network_hosts(rp))
            else:  # no other tag depends on the VNet
                parts += list(resolve_rule_side(rp, e, bag).intervals)
        elif isinstance(e, (Cidr, IpRange)):
            parts.append((e.lo, e.hi))
        elif isinstance(e, NetworkRef):
            got = resolve_items(rp, (e,), bag)
            parts += list(got.intervals)
            nics |= got.members
        elif isinstance(e, NicAddr):
            found = rp.nic_ipcs(e.nic.name)
            if not found:
                resolve_items(rp, (e,), bag)  # reports the unknown NIC with a did-you-mean
            nics |= {i.key for i in found}
        elif isinstance(e, AsgSide):
            resolve_rule_side(rp, e, bag)  # reports unknown ASGs
            names = {a.name for a in e.asgs}
            nics |= {k for k, i in rp.ipcs.items() if i.asgs & names}
        elif isinstance(e, SubnetAddr):
            if rp.policy.subnet(e.subnet) is None and not rp.is_open_subnet(e.subnet.vnet, e.subnet.subnet):
                resolve_items(rp, (e,), bag)
            nics |= {k for k, i in rp.ipcs.items() if (i.vnet, i.subnet) == (e.subnet.vnet, e.subnet.subnet)}
        elif isinstance(e, VnetAddr):
            if e.vnet.name not in rp.vnet_spaces and e.vnet.name not in rp.open_spaces:
                resolve_items(rp, (e,), bag)
            nics |= {k for k, i in rp.ipcs.items() if i.vnet == e.vnet.name}
        else:  # pragma: no cover - model.Endpoint admits nothing else
            raise TypeError(f"unexpected endpoint {e!r}")
    return Side(frozenset(nics), IntervalSet(parts))


@dataclass(frozen=True)
class Traffic:
    """A set of packets named by endpoints, ports and a protocol, resolved against one policy."""

    src: Side
    dst: Side
    protocols: IntervalSet  # protocol numbers
    dports: IntervalSet  # destination ports (ALL_PORTS when none were given)
    has_ports: bool  # ports were given (so only Tcp and Udp packets)

    def contains(self, p: "Packet", src_nic: IpcKey | None, dst_nic: IpcKey | None) -> bool:
        """Is the packet (whose addresses belong to these NICs, if any) part of the traffic? Packets with no
        NIC on either side never are."""
        if src_nic is None and dst_nic is None:
            return False
        if p.protocol not in self.protocols:
            return False
        if p.has_ports:
            assert p.dport is not None  # a ported packet carries both ports (Packet.parse)
            if p.dport not in self.dports:
                return False
        if self.has_ports and not p.has_ports:
            return False
        return self.src.contains(p.src, src_nic) and self.dst.contains(p.dst, dst_nic)


def resolve_traffic(rp: ResolvedPolicy, sources: Sequence[Endpoint] | None,
                    destinations: Sequence[Endpoint] | None, ports: PortSpec, protocol: Protocol, span: Span,
                    bag: DiagnosticBag) -> Traffic:
    """The :class:`Traffic` of a query, an assertion or an ``except`` clause; problems go to ``bag``
    (unknown names; E801, ports on a protocol without ports)."""
    src = resolve_side(rp, sources, bag)
    dst = resolve_side(rp, destinations, bag)
    dports = resolve_ports(rp, ports, bag)
    number = protocol.number
    if dports is not None and number is not None and number not in PORTED_PROTOCOLS:
        bag.error("E801", f"{protocol.value} packets have no ports", span,
                  "ports exist only for tcp and udp: drop the ports or ask about tcp/udp")
    if number is not None:
        protocols = IntervalSet([(number, number)])
    else:
        protocols = PORTED if dports is not None else ALL_PROTOCOLS
    _refuse_shared_addresses(rp, src, dst, span, bag)
    return Traffic(src, dst, protocols, dports if dports is not None else ALL_PORTS, dports is not None)


def _refuse_shared_addresses(rp: ResolvedPolicy, src: Side, dst: Side, span: Span, bag: DiagnosticBag) -> None:
    """E803 when the traffic reaches an address that NICs of several VNets hold (W501). The Z3 encoding and
    the region engine know a NIC by its address, so they would decide such a packet with one of the NICs'
    NSGs, possibly the wrong one: refusing is the only safe answer until they carry NIC identity."""
    if not rp.shared_ips and not rp.ambiguous_dynamic:
        return
    from nsgsolve.semantics.addresses import int_to_ip

    hulls = side_hull(rp, src).union(side_hull(rp, dst))
    for k, clash in rp.ambiguous_dynamic.items():
        met = clash.intersection(hulls)
        if met or k in src.nics or k in dst.nics:
            shown = int_to_ip((met or clash).min())
            bag.error("E803", f"this traffic includes address {shown}, which dynamic NIC {k} (VNet {rp.ipcs[k].vnet}) "
                              "may get while a NIC of another, unpeered VNet holds or may get it; queries and "
                              "assertions cannot yet tell those NICs apart", span,
                      f"give {k.nic} a static address, or use 'nsgsolve verify' with NIC names")
            return
    hit = sorted(ip for ip in rp.shared_ips if ip in hulls)
    if not hit:
        return

    ip = hit[0]
    held = ", ".join(f"{k} in VNet {rp.ipcs[k].vnet}" for k in rp.shared_ips[ip])
    more = f" (and {len(hit) - 1} more shared address{'es' if len(hit) > 2 else ''})" if len(hit) > 1 else ""
    bag.error("E803", f"this traffic includes address {int_to_ip(ip)}, which several NICs hold ({held}){more}; "
                      "queries and assertions cannot yet tell those NICs apart", span,
              f"use 'nsgsolve verify' with NIC names for flows to or from them, or leave {int_to_ip(ip)} out "
              "of the traffic (name other NICs, or narrower addresses)")


def endpoint_notes(endpoints: Iterable[Endpoint]) -> list[str]:
    """What ``Internet`` and ``VirtualNetwork`` mean as endpoints, for the text output of a question or
    an assertion that names them (they differ from the per-VNet tag a rule reads)."""
    named = {canonical_builtin(e.tag.name) for e in endpoints if isinstance(e, TagSide)}
    out = []
    if "Internet" in named:
        out.append("Internet here is public address space outside every VNet's VirtualNetwork tag: not the "
                   "policy's VNets, peered or on-premises space, nor 168.63.129.16 (name that address to ask about it)")
    if "VirtualNetwork" in named:
        out.append("VirtualNetwork here is the tag's union over all VNets: their spaces, peered and on-premises "
                   "space, and 168.63.129.16")
    return out


# ---------------------------------------------------------------- the same meaning as Z3 terms


def candidates(enc: "Encoding", side: Side) -> list[IpcKey]:
    """The NICs that can be at an address of ``side`` (a dynamic one: if its subnet's usable range meets it)."""
    rp = enc.rp
    out = []
    for k in enc.endpoints:
        info = rp.ipcs[k]
        if k in side.nics:
            out.append(k)
        elif info.ip is not None:
            if info.ip in side.addresses:
                out.append(k)
        elif info.usable.intersection(side.addresses):
            out.append(k)
    return out


def side_term(enc: "Encoding", field: str, side: Side) -> "z3.BoolRef":
    """The packet's ``field`` ("src" or "dst") is on ``side``."""
    return mk_or([enc.in_set(field, side.addresses)] + [enc.at(field, k) for k in sorted(side.nics)])


def side_hull(rp: ResolvedPolicy, side: Side) -> IntervalSet:
    """Every address a packet on ``side`` can have (a dynamic NIC: its subnet's usable range)."""
    extra = []
    for k in side.nics:
        info = rp.ipcs[k]
        extra += [(info.ip, info.ip)] if info.ip is not None else list(info.usable)
    return side.addresses.union(IntervalSet(extra))


def touches_nic(enc: "Encoding") -> "z3.BoolRef":
    """A NIC of the policy is at one end of the packet (otherwise no NSG sees it)."""
    return mk_or([enc.is_nic("src"), enc.is_nic("dst")])


def endpoints_term(enc: "Encoding", t: Traffic) -> "z3.BoolRef":
    """The packet goes from ``t.src`` to ``t.dst`` (any protocol and ports)."""
    return mk_and([side_term(enc, "src", t.src), side_term(enc, "dst", t.dst)])


def service_term(enc: "Encoding", t: Traffic) -> "z3.BoolRef":
    """The packet's protocol and destination port are ``t``'s."""
    return mk_and([enc.in_set("protocol", t.protocols), enc.in_set("dport", t.dports)])


def traffic_term(enc: "Encoding", t: Traffic) -> "z3.BoolRef":
    """The packet is in ``t`` (without the NIC-on-one-side condition; see :func:`touches_nic`)."""
    return mk_and([endpoints_term(enc, t), service_term(enc, t)])


def traffic_region(rp: ResolvedPolicy, t: Traffic, any_service: bool = False) -> Box:
    """A box holding every packet of ``t`` (of its endpoints only, with ``any_service``): the encoding
    keeps only the rules that can match there (:meth:`nsgsolve.smt.encode.Encoding.path_allows`)."""
    if any_service:
        return Box(ALL_PROTOCOLS, side_hull(rp, t.src), ALL_PORTS, side_hull(rp, t.dst), ALL_PORTS)
    return Box(t.protocols, side_hull(rp, t.src), ALL_PORTS, side_hull(rp, t.dst), t.dports)


__all__ = [
    "Side", "Traffic", "candidates", "endpoint_notes", "endpoints_term", "internet_hosts",
    "resolve_side", "resolve_traffic", "service_term", "side_hull", "side_term", "touches_nic", "traffic_region",
    "traffic_term", "virtual_network_hosts",
]
