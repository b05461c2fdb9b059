"""Hypothesis strategies for random but well-formed policies and packets, shared by the property tests
of the evaluator, the Z3 encoding and the analyses.

Addresses are drawn from small pools of "interesting" values (NIC addresses, subnet and VNet prefixes,
public hosts, the Azure host IPs) so random packets hit rules often enough to matter.
"""

from __future__ import annotations

from hypothesis import strategies as st

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.model import (
    Access,
    AnyAddress,
    Asg,
    AsgSide,
    Cidr,
    Direction,
    IpConfig,
    IpRange,
    Nic,
    NicAddr,
    Nsg,
    Policy,
    PortRange,
    PortSpec,
    PrefixSide,
    Protocol,
    Query,
    Ref,
    Rule,
    Subnet,
    SubnetAddr,
    SubnetRef,
    Subscription,
    TagDecl,
    TagSide,
    VNet,
    VnetAddr,
    AdminConfig,
    AdminRule,
    NetworkGroup,
    RuleCollection,
)
from nsgsolve.semantics.evaluate import Packet


def cidr(text: str) -> Cidr:
    net, _, length = text.partition("/")
    return Cidr(ip_to_int(net), int(length or 32))


EXTERNAL = ["203.0.113.7", "198.51.100.20", "8.8.8.8", "192.168.1.10", "172.16.5.5", "168.63.129.16",
            "169.254.169.254", "20.38.96.9", "100.64.1.1"]
PORTS = [22, 25, 53, 80, 443, 1433, 3389, 1500, 49152, 65535, 0]
PORT_RANGES = [(22, 22), (80, 80), (443, 443), (25, 25), (53, 53), (1000, 2000), (0, 65535), (1024, 65535), (80, 443)]
PROTOCOL_NUMBERS = [6, 17, 1, 50, 51, 47]
TAG_NAMES = ["Internet", "VirtualNetwork", "AzureLoadBalancer", "Storage", "AzurePlatformDNS", "INTERNET"]
NSG_ACCESS = [Access.ALLOW, Access.DENY]  # AlwaysAllow exists only in admin rules
DECLARED_TAGS = (TagDecl("Storage", (cidr("20.38.96.0/19"), cidr("52.239.128.0/17"))),)


# IPv6 pools of the dual-stack policies (``policies(ipv6=True)``): VNet v has fd0v::/48, its subnet s has
# fd0v:0:s::/64, NIC j of that subnet fd0v:0:s::(4 + j).
EXTERNAL_V6 = ["2001:db8::7", "2606:4700::1111", "fd99::5", "::1", "fe80::1", "ff02::1"]
V6_PREFIXES = ["::/0", "2001:db8::/32", "fd00::/8", "2000::/3", "fd00::/16"]


def v6_nic_ip(v: int, s: int, j: int) -> str:
    return f"fd0{v}:0:{s}::{4 + j:x}"


@st.composite
def policies(draw, max_rules: int = 8, max_nsgs: int = 3, admin: bool = False, ipv6: bool = False) -> Policy:
    """``admin``: also network groups and security admin configurations (AVNM) over the VNets.
    ``ipv6``: dual stack: VNets and subnets get IPv6 prefixes, most NICs an IPv6 configuration, and
    rules and admin rules IPv6 prefixes and ranges too."""
    n_vnets = draw(st.integers(1, 2))
    vnets, nics, asgs = [], [], []
    nic_ips: list[str] = []
    subnets_all: list[SubnetRef] = []
    nsg_names = [f"nsg{i}" for i in range(draw(st.integers(1, max_nsgs)))]
    maybe_nsg = st.one_of(st.none(), st.sampled_from(nsg_names).map(Ref))
    for v in range(n_vnets):
        vname = f"vnet{v}"
        subnets = []
        for s in range(draw(st.integers(1, 2))):
            sname = f"sub{s}"
            # Some subnets have a second prefix (Azure's addressPrefixes); NICs may sit in either.
            extra = (cidr(f"10.{v}.{100 + s}.0/24"),) if draw(st.booleans()) and draw(st.booleans()) else ()
            if ipv6:
                extra += (cidr(f"fd0{v}:0:{s}::/64"),)
            subnets.append(Subnet(sname, cidr(f"10.{v}.{s}.0/24"), draw(maybe_nsg), extra=extra))
            subnets_all.append(SubnetRef(vname, sname))
            # Now and then no NIC: a subnet behind an NSG then stands for a host of its own (resolve.py).
            nics_here = st.integers(0, 2) if draw(st.booleans()) and draw(st.booleans()) else st.integers(1, 2)
            for j in range(draw(nics_here)):
                dynamic = draw(st.booleans()) and draw(st.booleans())
                third = (100 + s) if extra and draw(st.booleans()) else s
                ip = None if dynamic else ip_to_int(f"10.{v}.{third}.{4 + j}")
                asg_names = draw(st.lists(st.sampled_from([f"asg{v}a", f"asg{v}b"]), max_size=2, unique=True))
                nname = f"nic{v}{s}{j}"
                ipcs = (IpConfig(ip, tuple(Ref(a) for a in asg_names)),)
                if ipv6 and draw(st.integers(0, 3)):
                    dyn6 = draw(st.booleans()) and draw(st.booleans())
                    ip6 = None if dyn6 else ip_to_int(v6_nic_ip(v, s, j))
                    ipcs += (IpConfig(ip6, tuple(Ref(a) for a in asg_names), v6=True),)
                    if ip6 is not None:
                        nic_ips.append(v6_nic_ip(v, s, j))
                nics.append(Nic(nname, SubnetRef(vname, sname), ipcs, draw(maybe_nsg)))
                if ip is not None:
                    nic_ips.append(f"10.{v}.{third}.{4 + j}")
        asgs += [Asg(f"asg{v}a"), Asg(f"asg{v}b")]
        peer = (Ref("vnet0"),) if v == 1 and draw(st.booleans()) else ()
        onprem = (cidr("192.168.0.0/16"),) if draw(st.booleans()) else ()
        spaces = (cidr(f"10.{v}.0.0/16"),) + ((cidr(f"fd0{v}::/48"),) if ipv6 else ())
        vnets.append(VNet(vname, spaces, tuple(subnets), peer, onprem))

    if not nics:  # every subnet drew none; the strategies below name NICs
        nics.append(Nic("nic000", SubnetRef("vnet0", "sub0"), (IpConfig(ip_to_int("10.0.0.4")),)))
        nic_ips.append("10.0.0.4")

    prefix_pool = ([cidr(f"10.{v}.0.0/16") for v in range(n_vnets)] + [cidr("0.0.0.0/0"), cidr("203.0.113.0/24"),
                   cidr("168.63.129.16/32"), cidr("192.168.0.0/16"), cidr("10.0.0.0/8"), cidr("8.0.0.0/7")]
                   + [cidr(ip + ("/128" if ":" in ip else "/32")) for ip in nic_ips]
                   + [cidr(f"10.{v}.0.0/24") for v in range(n_vnets)])
    ranges = [IpRange(ip_to_int("10.0.0.4"), ip_to_int("10.0.0.200"))]
    if ipv6:
        prefix_pool += [cidr(p) for p in V6_PREFIXES] + [cidr(f"fd0{v}::/48") for v in range(n_vnets)] + [
            cidr(f"fd0{v}:0:0::/64") for v in range(n_vnets)]
        ranges.append(IpRange(ip_to_int("fd00:0:0::4"), ip_to_int("fd00:0:0::200")))
    addr_item = st.one_of(
        st.sampled_from(prefix_pool),
        st.sampled_from(ranges),
        st.sampled_from([n.name for n in nics]).map(lambda n: NicAddr(Ref(n))),
        st.sampled_from(subnets_all).map(SubnetAddr),
    )
    # ASGs on both sides of one rule must share a VNet; drawing from one VNet's ASGs keeps that true.
    asg_vnet = draw(st.integers(0, n_vnets - 1))
    side = st.one_of(
        st.just(AnyAddress()),
        st.sampled_from(TAG_NAMES).map(lambda t: TagSide(Ref(t))),
        st.lists(addr_item, min_size=1, max_size=3).map(lambda xs: PrefixSide(tuple(xs))),
        st.lists(st.sampled_from([f"asg{asg_vnet}a", f"asg{asg_vnet}b"]), min_size=1, max_size=2, unique=True)
        .map(lambda xs: AsgSide(tuple(Ref(x) for x in xs))),
    )
    ports = st.one_of(
        st.just(PortSpec(None)),
        st.lists(st.sampled_from(PORT_RANGES), min_size=1, max_size=2)
        .map(lambda rs: PortSpec(tuple(PortRange(a, b) for a, b in rs))),
    )
    protocol = st.sampled_from(list(Protocol))
    nsgs = []
    for name in nsg_names:
        rules = []
        for d in (Direction.INBOUND, Direction.OUTBOUND):
            prios = draw(st.lists(st.integers(100, 4096), max_size=max_rules, unique=True))
            for k, prio in enumerate(prios):
                rules.append(Rule(f"r{d.value[0]}{k}", prio, d, draw(st.sampled_from(NSG_ACCESS)), draw(protocol),
                                  draw(side), draw(ports), draw(side), draw(ports)))
        nsgs.append(Nsg(name, tuple(rules)))
    groups: tuple[NetworkGroup, ...] = ()
    configs: tuple[AdminConfig, ...] = ()
    if admin:
        names = [v.name for v in vnets]
        # Mostly non-empty groups, so the admin rules reach packets often enough to matter.
        groups = tuple(NetworkGroup(f"g{i}", tuple(Ref(n) for n in draw(st.lists(st.sampled_from(names),
                                                                                    min_size=int(i == 0), max_size=2,
                                                                                    unique=True))))
                       for i in range(draw(st.integers(1, 2))))
        # Admin sides: any, or a mix of prefixes (no NICs or ASGs: Azure takes prefixes and tags) and tags.
        admin_item = st.one_of(
            st.sampled_from(TAG_NAMES).map(lambda t: TagSide(Ref(t))),
            st.lists(st.one_of(st.sampled_from(prefix_pool), st.sampled_from(subnets_all).map(SubnetAddr)),
                     min_size=1, max_size=2).map(lambda xs: PrefixSide(tuple(xs))),
        )
        admin_side = st.one_of(st.just(()), st.just(()), st.lists(admin_item, min_size=1, max_size=2)
                               .map(_merge_prefix_runs))
        admin_ports = st.one_of(st.just(PortSpec(None)), ports)
        collections = []
        for c in range(draw(st.integers(1, 2))):
            rules = []
            for d in (Direction.INBOUND, Direction.OUTBOUND):
                prios = draw(st.lists(st.integers(1, 4096), max_size=max(2, max_rules // 2), unique=True))
                for k, prio in enumerate(prios):
                    rules.append(AdminRule(f"a{c}{d.value[0]}{k}", prio, d, draw(st.sampled_from(list(Access))),
                                           draw(protocol), draw(admin_side), draw(admin_ports), draw(admin_side),
                                           draw(admin_ports), collection=f"c{c}", config="cfg"))
            applies = tuple(Ref(g.name) for g in draw(st.lists(st.sampled_from(groups), min_size=1, max_size=2,
                                                                 unique_by=lambda g: g.name)))
            collections.append(RuleCollection(f"c{c}", applies, tuple(rules)))
        configs = (AdminConfig("cfg", tuple(collections)),)
    return Policy(tuple(vnets), tuple(nics), tuple(asgs), tuple(nsgs), DECLARED_TAGS,
                  subscription=draw(st.sampled_from(list(Subscription))), groups=groups, admin_configs=configs)


def _merge_prefix_runs(sides: list) -> tuple:
    """Adjacent address lists are one list, as the language writes them (``a, b, Tag``)."""
    out: list = []
    for x in sides:
        if out and isinstance(x, PrefixSide) and isinstance(out[-1], PrefixSide):
            out[-1] = PrefixSide(out[-1].items + x.items)
        else:
            out.append(x)
    return tuple(out)


def endpoints(policy: Policy):
    """One endpoint of a question or an assertion about ``policy``: every kind the vocabulary has."""
    nics = [n.name for n in policy.nics]
    subnets = [SubnetRef(v.name, s.name) for v in policy.vnets for s in v.subnets]
    return st.one_of(
        st.just(AnyAddress()),
        st.sampled_from(["Internet", "VirtualNetwork", "Storage", "AzureLoadBalancer"]).map(lambda t: TagSide(Ref(t))),
        st.sampled_from(["asg0a", "asg0b"]).map(lambda a: AsgSide((Ref(a),))),
        st.sampled_from(nics).map(lambda n: NicAddr(Ref(n))),
        st.sampled_from(subnets).map(SubnetAddr),
        st.just(VnetAddr(Ref("vnet0"))),
        st.sampled_from(["10.0.0.0/16", "10.0.0.0/28", "10.0.0.96/27", "203.0.113.0/24", "0.0.0.0/0", "8.8.8.8/32",
                         "168.63.129.16/32", "169.254.169.254/32", "192.168.0.0/16"]).map(cidr),
    )


@st.composite
def queries(draw, policy: Policy) -> Query:
    """Random traffic about ``policy``: one or two endpoints a side, a port or none, a protocol (ports
    only with protocols that have them)."""
    ep = endpoints(policy)
    ports = draw(st.one_of(st.just(PortSpec(None)), st.sampled_from(
        [(22, 22), (80, 443), (25, 25), (53, 53), (1000, 2000)]).map(lambda r: PortSpec((PortRange(*r),)))))
    protos = [Protocol.ANY, Protocol.TCP, Protocol.UDP] + ([Protocol.ICMP] if ports.is_any else [])
    return Query(tuple(draw(st.lists(ep, min_size=1, max_size=2))), tuple(draw(st.lists(ep, min_size=1, max_size=2))),
                 ports, draw(st.sampled_from(protos)), text="random query")


def addresses_of(policy: Policy) -> list[str]:
    from nsgsolve.semantics.addresses import int_to_ip

    out = [int_to_ip(c.ip) for n in policy.nics for c in n.ip_configs if c.ip is not None] + EXTERNAL + [
        "10.0.0.200", "10.1.1.250", "10.0.1.9"]
    if any(c.is_v6 for v in policy.vnets for c in v.address_spaces):
        out += EXTERNAL_V6 + ["fd00:0:0::200", "fd01:0:1::fe", "fd00::9"]
    return out


@st.composite
def packets(draw, policy: Policy) -> Packet:
    """A packet of one family: both addresses IPv4, or both IPv6 (drawn as often when the policy has IPv6)."""
    pool = addresses_of(policy)
    proto = draw(st.sampled_from(PROTOCOL_NUMBERS))
    v6 = draw(st.booleans())
    pool = [a for a in pool if (":" in a) == v6] or [a for a in pool if ":" not in a]
    src = ip_to_int(draw(st.sampled_from(pool)))
    dst = ip_to_int(draw(st.sampled_from(pool)))
    if proto in (6, 17):
        return Packet(proto, src, draw(st.sampled_from(PORTS)), dst, draw(st.sampled_from(PORTS)))
    return Packet(proto, src, None, dst, None)


def dynamic_assignment(policy: Policy) -> dict:
    """A fixed, valid address for every dynamic IP configuration (the evaluator needs concrete ones)."""
    from nsgsolve.semantics.resolve import IpcKey

    out = {}
    for n in policy.nics:
        for i, c in enumerate(n.ip_configs):
            if c.ip is None:
                v, s = int(n.subnet.vnet[4:]), int(n.subnet.subnet[3:])
                text = f"fd0{v}:0:{s}::{100 + int(n.name[-1]):x}" if c.v6 else f"10.{v}.{s}.{100 + int(n.name[-1])}"
                out[IpcKey(n.name, i)] = ip_to_int(text)
    return out
