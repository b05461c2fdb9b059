"""A deliberately naive second formulation of the NSG semantics, for property tests.

It shares nothing with nsgsolve's resolver, interval sets or classifier: it reads the model directly,
tests membership with the standard library's ``ipaddress`` one prefix at a time, sorts rules at every
call and walks the path as semantics.md words it. Slow and obvious on purpose.
"""

from __future__ import annotations

import ipaddress

from nsgsolve.model import (
    Access, AnyAddress, AsgSide, Cidr, Direction, IpRange, NicAddr, Policy, PrefixSide, SubnetAddr, TagSide,
    VnetAddr, DEFAULT_RULES, Subscription,
)

NOT_INTERNET = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                "192.168.0.0/16", "224.0.0.0/3"]
# Written out again rather than imported, so this model stays independent of the one it checks.
SMTP_ALLOWED = (Subscription.ENTERPRISE_AGREEMENT, Subscription.ENTERPRISE_DEVTEST_EXEMPT)


def _in(ip: int, cidr: Cidr) -> bool:
    return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network((cidr.network, cidr.length))


def _nic_of(policy: Policy, ip: int, assignment: dict):
    for n in policy.nics:
        for i, c in enumerate(n.ip_configs):
            addr = c.ip if c.ip is not None else assignment.get((n.name, i))
            if addr == ip:
                return n, i, c
    return None


def _vnet_of_nic(policy: Policy, nic):
    return next(v for v in policy.vnets if v.name == nic.subnet.vnet)


def _subnet_of_nic(policy: Policy, nic):
    v = _vnet_of_nic(policy, nic)
    return next(s for s in v.subnets if s.name == nic.subnet.subnet)


def _in_vnet_tag(policy: Policy, ip: int, vnet) -> bool:
    if ip == int(ipaddress.IPv4Address("168.63.129.16")):
        return True
    names = {vnet.name} | {p.name for p in vnet.peerings} | {
        v.name for v in policy.vnets if any(p.name == vnet.name for p in v.peerings)}
    for v in policy.vnets:
        if v.name in names and any(_in(ip, c) for c in v.address_spaces):
            return True
    return any(_in(ip, c) for c in vnet.onprem)


def _in_internet(ip: int, vnet) -> bool:
    a = ipaddress.IPv4Address(ip)
    if any(a in ipaddress.IPv4Network(n) for n in NOT_INTERNET):
        return False
    return not (vnet is not None and any(_in(ip, c) for c in vnet.address_spaces))


def _in_tag(policy: Policy, ip: int, name: str, vnet) -> bool:
    low = name.lower()
    if low in ("virtualnetwork", "virtual_network"):
        return _in_vnet_tag(policy, ip, vnet)
    if low == "internet":
        return _in_internet(ip, vnet)
    if low in ("azureloadbalancer", "azure_loadbalancer", "azureplatformdns"):
        return ip == int(ipaddress.IPv4Address("168.63.129.16"))
    if low == "azureplatformimds":
        return ip == int(ipaddress.IPv4Address("169.254.169.254"))
    decl = next(t for t in policy.tags if t.name.lower() == low)
    return any(_in(ip, c) for c in decl.items)


def _side(policy: Policy, side, ip: int, vnet, assignment) -> bool:
    if isinstance(side, AnyAddress):
        return True
    if isinstance(side, TagSide):
        return _in_tag(policy, ip, side.tag.name, vnet)
    if isinstance(side, AsgSide):
        hit = _nic_of(policy, ip, assignment)
        return hit is not None and any(a.name in {x.name for x in side.asgs} for a in hit[2].asgs)
    assert isinstance(side, PrefixSide)
    for it in side.items:
        if isinstance(it, Cidr) and _in(ip, it):
            return True
        if isinstance(it, IpRange) and it.lo <= ip <= it.hi:
            return True
        if isinstance(it, NicAddr):
            n = next(n for n in policy.nics if n.name == it.nic.name)
            for i, c in enumerate(n.ip_configs):
                if (c.ip if c.ip is not None else assignment.get((n.name, i))) == ip:
                    return True
        if isinstance(it, SubnetAddr):
            v = next(v for v in policy.vnets if v.name == it.subnet.vnet)
            # a subnet named as an address is all of its prefixes, not only the first
            if any(_in(ip, c) for c in next(s for s in v.subnets if s.name == it.subnet.subnet).prefixes):
                return True
        if isinstance(it, VnetAddr):
            v = next(v for v in policy.vnets if v.name == it.vnet.name)
            if any(_in(ip, c) for c in v.address_spaces):
                return True
    return False


def _ports(spec, port) -> bool:
    if spec.items is None:
        return True
    if port is None:
        return False
    return any(r.lo <= port <= r.hi for r in spec.items)


def _nsg_decision(policy, nsg_name, direction, pkt, vnet, assignment) -> Access:
    nsg = next(n for n in policy.nsgs if n.name == nsg_name)
    rules = sorted([r for r in nsg.rules if r.direction is direction], key=lambda r: r.priority)
    for r in rules + list(DEFAULT_RULES[direction]):
        if r.protocol.number is not None and r.protocol.number != pkt.protocol:
            continue
        if not (_ports(r.source_ports, pkt.sport) and _ports(r.destination_ports, pkt.dport)):
            continue
        if _side(policy, r.source, pkt.src, vnet, assignment) and _side(
            policy, r.destination, pkt.dst, vnet, assignment
        ):
            return r.access
    raise AssertionError


def _platform_tag_named(policy, nsg_name, tag) -> bool:
    nsg = next(n for n in policy.nsgs if n.name == nsg_name)
    return any(isinstance(s, TagSide) and s.tag.name.lower() == tag.lower()
               for r in nsg.rules for s in (r.source, r.destination))


def naive_decision(policy: Policy, pkt, assignment: dict | None = None) -> Access:
    """Allow or Deny for one packet, straight from semantics.md."""
    assignment = {(k.nic, k.index): v for k, v in (assignment or {}).items()}
    src = _nic_of(policy, pkt.src, assignment)
    dst = _nic_of(policy, pkt.dst, assignment)
    verdicts = []
    if src is not None:
        nic = src[0]
        vnet, subnet = _vnet_of_nic(policy, nic), _subnet_of_nic(policy, nic)
        layers = [n.name for n in (nic.nsg, subnet.nsg) if n is not None]
        host = int(ipaddress.IPv4Address("168.63.129.16"))
        imds = int(ipaddress.IPv4Address("169.254.169.254"))
        bypass_tag = "none"
        if pkt.dst == host and pkt.protocol == 6 and pkt.dport in (80, 32526):
            bypass_tag = None
        elif pkt.dst == host and pkt.protocol in (6, 17) and pkt.dport == 53:
            bypass_tag = "AzurePlatformDNS"
        elif pkt.dst == imds:
            bypass_tag = "AzurePlatformIMDS"
        for name in layers:
            if bypass_tag != "none" and not (bypass_tag and _platform_tag_named(policy, name, bypass_tag)):
                continue  # the platform lets it through without asking this NSG
            verdicts.append(_nsg_decision(policy, name, Direction.OUTBOUND, pkt, vnet, assignment))
        sub = policy.subscription or Subscription.PAY_AS_YOU_GO
        if sub not in SMTP_ALLOWED and pkt.protocol == 6 and pkt.dport == 25 and _in_internet(pkt.dst, vnet):
            verdicts.append(Access.DENY)
    if dst is not None:
        nic = dst[0]
        vnet, subnet = _vnet_of_nic(policy, nic), _subnet_of_nic(policy, nic)
        for n in (subnet.nsg, nic.nsg):
            if n is not None:
                verdicts.append(_nsg_decision(policy, n.name, Direction.INBOUND, pkt, vnet, assignment))
    return Access.DENY if Access.DENY in verdicts else Access.ALLOW
