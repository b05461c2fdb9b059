"""Azure's platform behaviour outside the NSG rules, as data: the one place to edit when Azure changes it.

Three things decide traffic besides the rules a user writes (semantics.md, azure-nsg-evidence.md §4-5):

* **Host services.** Outbound traffic from a NIC to the host's WireServer (168.63.129.16, TCP 80 and
  32526), to platform DNS (168.63.129.16 port 53) and to the Instance Metadata Service (169.254.169.254)
  is not filtered by NSG rules. An NSG that names the service's ``AzurePlatform*`` tag anywhere puts
  that service back under its own rules (WireServer has no such tag: it is never filtered).
* **The outbound TCP 25 block.** Subscriptions of most types may not send TCP 25 to the Internet;
  Enterprise Agreement subscriptions (and DevTest ones with an exemption) may.
* **Fixed tags.** ``AzureLoadBalancer`` is the host's address (health probes come from it),
  ``AzurePlatformDNS``/``AzurePlatformIMDS`` are the services' addresses, and ``VirtualNetwork`` always
  contains the host's address.

Every consumer reads these tables instead of spelling the rules out: the reference evaluator
(:mod:`nsgsolve.semantics.evaluate`), the Z3 encoding (:mod:`nsgsolve.smt.encode`), the path lists of
the region code (:mod:`nsgsolve.regions.paths`) and the exact sets of queries
(:mod:`nsgsolve.analyses.query`). The property tests that make them agree then also check that each
reads the tables the same way.

Ports follow the region convention: a set of destination ports other than "any" only ever goes with
Tcp/Udp protocols, so a packet without ports never meets one.
"""

from __future__ import annotations

from dataclasses import dataclass

from nsgsolve.model import Subscription
from nsgsolve.semantics.addresses import ALL_PORTS, IntervalSet, ip_to_int

HOST_IP = ip_to_int("168.63.129.16")  # the host's virtual IP: WireServer, platform DNS, load balancer probes
IMDS_IP = ip_to_int("169.254.169.254")

_ALL_PROTOCOLS = IntervalSet([(0, 255)])
_TCP = IntervalSet([(6, 6)])
_TCP_UDP = IntervalSet([(6, 6), (17, 17)])


def _one(ip: int) -> IntervalSet:
    return IntervalSet([(ip, ip)])


@dataclass(frozen=True)
class HostService:
    """Outbound traffic that skips NSG rules: to ``addresses``, with a protocol in ``protocols`` and a
    destination port in ``dports``. ``tag`` is the AzurePlatform* tag that, named in an NSG, makes that
    NSG filter the service like any traffic (None: no NSG ever filters it)."""

    rule: str  # the name a trace shows for the platform's decision
    addresses: IntervalSet
    protocols: IntervalSet
    dports: IntervalSet
    tag: str | None

    def matches(self, protocol: int, dst: int, dport: int | None) -> bool:
        return protocol in self.protocols and dst in self.addresses and (0 if dport is None else dport) in self.dports

    def filtered_by(self, platform_tags: frozenset[str]) -> bool:
        """Does an NSG naming ``platform_tags`` apply its rules to this service's traffic?"""
        return self.tag is not None and self.tag in platform_tags


# Pairwise disjoint, so a packet meets at most one; consumers may test them in this order.
HOST_SERVICES: tuple[HostService, ...] = (
    HostService("AllowAzureHostWireServer", _one(HOST_IP), _TCP, IntervalSet([(80, 80), (32526, 32526)]), None),
    HostService("AllowAzurePlatformDNS", _one(HOST_IP), _TCP_UDP, IntervalSet([(53, 53)]), "AzurePlatformDNS"),
    HostService("AllowAzurePlatformIMDS", _one(IMDS_IP), _ALL_PROTOCOLS, ALL_PORTS, "AzurePlatformIMDS"),
)

# Every address a host service answers on (the "azure-platform" class of outside hosts in diff).
HOST_ADDRESSES = IntervalSet([iv for s in HOST_SERVICES for iv in s.addresses])


def host_service(protocol: int, dst: int, dport: int | None) -> HostService | None:
    """The host service a packet goes to, or None."""
    for s in HOST_SERVICES:
        if s.matches(protocol, dst, dport):
            return s
    return None


@dataclass(frozen=True)
class OutboundBlock:
    """Outbound traffic the platform denies whatever the NSGs say: ``protocols``/``dports`` to the
    Internet as the source NIC's VNet sees it (its Internet tag), on subscriptions that have the block."""

    rule: str
    protocols: IntervalSet
    dports: IntervalSet
    note: str  # what a trace says about it

    def matches(self, protocol: int, dport: int | None) -> bool:
        """Protocol and port match; the caller checks the destination against the source VNet's Internet tag."""
        return protocol in self.protocols and (0 if dport is None else dport) in self.dports


SMTP_BLOCK = OutboundBlock("PlatformBlockOutboundSmtp", _TCP, IntervalSet([(25, 25)]),
                           "the platform blocks outbound TCP 25 to the Internet for this subscription type")

# Subscription types that may send TCP 25 to the Internet; every other type is blocked (DevTest only by
# default: an exemption is its own type here).
SMTP_ALLOWED = frozenset({Subscription.ENTERPRISE_AGREEMENT, Subscription.ENTERPRISE_DEVTEST_EXEMPT})


def blocks_smtp(subscription: Subscription) -> bool:
    """Does the platform block outbound TCP 25 to the Internet for this subscription type?"""
    return subscription not in SMTP_ALLOWED


# Tags whose addresses Azure fixes. Naming AzurePlatformDNS/IMDS in an NSG also switches the host
# service's bypass off for that NSG (HostService.tag); AzurePlatformLKM has no modelled service.
PLATFORM_TAGS = ("AzurePlatformDNS", "AzurePlatformIMDS", "AzurePlatformLKM")
FIXED_TAGS: dict[str, IntervalSet] = {
    "AzureLoadBalancer": _one(HOST_IP),  # health probes originate at the host's virtual IP
    "AzurePlatformDNS": _one(HOST_IP),
    "AzurePlatformIMDS": _one(IMDS_IP),
}
# The VirtualNetwork tag of every VNet (and of an NSG attached nowhere) contains the host's address.
VIRTUAL_NETWORK_EXTRA = _one(HOST_IP)


def platform_tag(name: str) -> str | None:
    """The canonical AzurePlatform* tag ``name`` spells (tags are case-insensitive), or None."""
    low = name.lower()
    for t in PLATFORM_TAGS:
        if t.lower() == low:
            return t
    return None
