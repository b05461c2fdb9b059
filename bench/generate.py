"""Generated large policies for the benchmarks: random but realistic, from a fixed seed.

One VNet with a few subnets and NICs (some in ASGs, one with a dynamic IP), an NSG of N rules on every
subnet and another on every NIC. Rules mix service tags, CIDR lists (public and private, /8 to /32),
ASGs, port lists and ranges, tcp/udp/any, allow and deny, as NSGs that grew over years look.
"""

from __future__ import annotations

import random
from dataclasses import replace

from nsgsolve.semantics.addresses import int_to_ip, ip_to_int
from nsgsolve.model import (
    Access, AnyAddress, Asg, AsgSide, Cidr, Direction, IpConfig, Nic, Nsg, Policy, PortRange, PortSpec, PrefixSide,
    Protocol, Ref, Rule, Subnet, SubnetRef, Subscription, TagDecl, TagSide, VNet,
)

TAGS = ["Internet", "VirtualNetwork", "AzureLoadBalancer", "Storage", "Sql"]
COMMON_PORTS = [22, 25, 53, 80, 443, 445, 1433, 3306, 3389, 5432, 5985, 5986, 6379, 8080, 8443, 9000]


def _cidr(rng: random.Random, private_bias: float = 0.5) -> Cidr:
    if rng.random() < private_bias:
        length = rng.choice([16, 20, 24, 24, 26, 28, 32, 32])
        base = ip_to_int("10.0.0.0") | rng.getrandbits(16) << 0 | (rng.randrange(0, 4) << 16)
    else:
        length = rng.choice([8, 12, 16, 20, 24, 24, 28, 32])
        base = rng.choice([ip_to_int(x) for x in ("20.0.0.0", "40.0.0.0", "52.0.0.0", "104.0.0.0", "198.51.100.0",
                                                  "203.0.113.0", "13.64.0.0", "151.101.0.0")]) + rng.getrandbits(16)
    mask = ((1 << 32) - 1) ^ ((1 << (32 - length)) - 1)
    return Cidr(base & mask, length)


def _ports(rng: random.Random) -> PortSpec:
    r = rng.random()
    if r < 0.25:
        return PortSpec(None)
    items = []
    for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
        if rng.random() < 0.75:
            p = rng.choice(COMMON_PORTS)
            items.append(PortRange(p, p))
        else:
            lo = rng.randrange(1024, 60000)
            items.append(PortRange(lo, lo + rng.randrange(0, 2000)))
    return PortSpec(tuple(items))


def _side(rng: random.Random, asgs: list[str], max_prefixes: int) -> object:
    r = rng.random()
    if r < 0.15:
        return AnyAddress()
    if r < 0.40:
        return TagSide(Ref(rng.choice(TAGS)))
    if r < 0.55:
        return AsgSide(tuple(Ref(a) for a in rng.sample(asgs, rng.randint(1, 2))))
    n = rng.choice([1, 1, 2, 3, 5, 10, max_prefixes]) if max_prefixes > 10 else rng.randint(1, 5)
    return PrefixSide(tuple(_cidr(rng) for _ in range(n)))


def _nsg_rules(rng: random.Random, n_rules: int, asgs: list[str], max_prefixes: int) -> tuple[Rule, ...]:
    rules = []
    if n_rules <= 3997:
        prios = rng.sample(range(100, 4097), n_rules)
    else:  # beyond one direction's 3,997 priorities (merged or AVNM-sized views): unique per direction
        inbound, outbound = rng.sample(range(100, 4097), 3997), rng.sample(range(100, 4097), 3997)
        prios = [inbound.pop() if k % 3 else outbound.pop() for k in range(n_rules)]
    for k, prio in enumerate(prios):
        d = Direction.INBOUND if k % 3 else Direction.OUTBOUND
        proto = rng.choice([Protocol.TCP, Protocol.TCP, Protocol.TCP, Protocol.UDP, Protocol.ANY])
        rules.append(Rule(f"rule-{k:04d}", prio, d, rng.choice([Access.ALLOW, Access.ALLOW, Access.DENY]), proto,
                          _side(rng, asgs, max_prefixes), PortSpec(None) if rng.random() < 0.9 else _ports(rng),
                          _side(rng, asgs, max_prefixes), _ports(rng)))
    return tuple(rules)


def generate_policy(n_rules: int, seed: int = 1, n_subnets: int = 4, nics_per_subnet: int = 5,
                    max_prefixes: int = 20, n_nsgs: int = 2, changes: int = 0, change_seed: int = 7) -> Policy:
    """``n_nsgs`` > 2 adds NSGs ``nsg-02``... of ``n_rules`` rules each (their own rng, so the first two
    are unchanged), each on its own subnet 10.0.(64+k).0/24 with one NIC (for `lint` on many NSGs).

    ``changes`` > 0 gives a later version of the same policy: that many rules edited, removed or added
    (spread over both NSGs, drawn from ``change_seed``), everything else identical (for `diff`)."""
    rng = random.Random(seed)
    asgs = [f"asg-{i}" for i in range(8)]
    subnets, nics = [], []
    for s in range(n_subnets):
        subnets.append(Subnet(f"snet-{s}", Cidr(ip_to_int(f"10.0.{s}.0"), 24), Ref("subnet-nsg")))
        for j in range(nics_per_subnet):
            ip = None if (s, j) == (0, 0) else ip_to_int(f"10.0.{s}.{4 + j}")
            member = tuple(Ref(a) for a in rng.sample(asgs, rng.randint(0, 2)))
            nics.append(Nic(f"vm-{s}-{j}", SubnetRef("vnet", f"snet-{s}"), (IpConfig(ip, member),), Ref("nic-nsg")))
    for k in range(2, n_nsgs):
        subnets.append(Subnet(f"snet-x{k}", Cidr(ip_to_int(f"10.0.{64 + k}.0"), 24), Ref(f"nsg-{k:02d}")))
        nics.append(Nic(f"vm-x{k}", SubnetRef("vnet", f"snet-x{k}"),
                        (IpConfig(ip_to_int(f"10.0.{64 + k}.4"), (Ref(asgs[k % len(asgs)]),)),)))
    vnet = VNet("vnet", (Cidr(ip_to_int("10.0.0.0"), 16),), tuple(subnets))
    nsgs = [Nsg(name, _nsg_rules(rng, n_rules, asgs, max_prefixes)) for name in ("subnet-nsg", "nic-nsg")]
    nsgs += [Nsg(f"nsg-{k:02d}", _nsg_rules(random.Random(seed * 7919 + k), n_rules, asgs, max_prefixes))
             for k in range(2, n_nsgs)]
    tags = (TagDecl("Storage", tuple(_cidr(rng, 0) for _ in range(40))),
            TagDecl("Sql", tuple(_cidr(rng, 0) for _ in range(40))))
    if changes:
        nsgs = _change_rules(nsgs, changes, random.Random(change_seed), asgs, max_prefixes)
    return Policy((vnet,), tuple(nics), tuple(Asg(a) for a in asgs), tuple(nsgs), tags,
                  subscription=Subscription.PAY_AS_YOU_GO)


def _change_rules(nsgs: list[Nsg], n: int, rng: random.Random, asgs: list[str], max_prefixes: int) -> list[Nsg]:
    """Edit ``n`` rules the way reviews see them: a port range widened, an access flipped, a source
    replaced, a rule deleted, a rule added (its own rng, so the base policy is not disturbed)."""
    rules = {nsg.name: list(nsg.rules) for nsg in nsgs}
    names = sorted(rules)
    for i in range(n):
        nsg = names[i % len(names)]
        lst = rules[nsg]
        kind = rng.choice(["ports", "ports", "access", "source", "delete", "add"])
        if kind == "add":
            used = {r.priority for r in lst}
            prio = rng.choice([p for p in range(100, 4097) if p not in used])
            d = rng.choice([Direction.INBOUND, Direction.OUTBOUND])
            lst.append(Rule(f"added-{i:02d}", prio, d, rng.choice([Access.ALLOW, Access.DENY]), Protocol.TCP,
                            _side(rng, asgs, max_prefixes), PortSpec(None), _side(rng, asgs, max_prefixes),
                            _ports(rng)))
            continue
        k = rng.randrange(len(lst))
        r = lst[k]
        if kind == "delete":
            del lst[k]
        elif kind == "ports":
            lo = rng.choice(COMMON_PORTS)
            lst[k] = replace(r, destination_ports=PortSpec((PortRange(lo, lo + rng.randrange(1, 200)),)))
        elif kind == "access":
            lst[k] = replace(r, access=Access.DENY if r.access is Access.ALLOW else Access.ALLOW)
        else:
            lst[k] = replace(r, source=_side(rng, asgs, max_prefixes))
    return [Nsg(nsg.name, tuple(rules[nsg.name])) for nsg in nsgs]


def random_flows(policy: Policy, n: int, seed: int = 2) -> list[tuple[str, str, str, int, int]]:
    """(src, dst, protocol, sport, dport) rows: NIC to NIC, Internet to NIC, NIC to Internet."""
    rng = random.Random(seed)
    nic_ips = [int_to_ip(c.ip) for nic in policy.nics for c in nic.ip_configs if c.ip is not None]
    outside = ["203.0.113.7", "198.51.100.20", "8.8.8.8", "52.1.2.3", "20.38.100.1", "192.168.1.1", "168.63.129.16"]
    rows = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:
            src, dst = rng.choice(nic_ips), rng.choice(nic_ips)
        elif kind < 0.8:
            src, dst = rng.choice(outside), rng.choice(nic_ips)
        else:
            src, dst = rng.choice(nic_ips), rng.choice(outside)
        proto = rng.choice(["tcp", "tcp", "tcp", "udp", "icmp"])
        sport = rng.randrange(1024, 65536)
        dport = rng.choice(COMMON_PORTS) if rng.random() < 0.7 else rng.randrange(0, 65536)
        rows.append((src, dst, proto, sport, dport))
    return rows


# ---------------------------------------------------------------- the same policy as an ARM template


def policy_to_arm(policy: Policy) -> str:
    """``policy`` as an ARM template (VNet, subnets, NSGs, ASGs, NICs), the shape users point nsgsolve at.
    Tag declarations have no ARM form, so a rule naming a declared tag lists the tag's prefixes instead:
    the template means what the .nsg text means, without a service tag file."""
    import json

    declared = {t.name: t for t in policy.tags}

    def rid(kind: str, *names: str) -> dict:
        return {"id": f"[resourceId('Microsoft.Network/{kind}', {', '.join(repr(n) for n in names)})]"}

    def cidr(c: Cidr) -> str:
        return f"{int_to_ip(c.network)}/{c.length}"

    def side(name: str, s: object) -> dict:
        if isinstance(s, AnyAddress):
            return {f"{name}AddressPrefix": "*"}
        if isinstance(s, TagSide) and s.tag.name in declared:
            s = PrefixSide(declared[s.tag.name].items)
        elif isinstance(s, TagSide):
            return {f"{name}AddressPrefix": s.tag.name}
        if isinstance(s, AsgSide):
            return {f"{name}ApplicationSecurityGroups": [rid("applicationSecurityGroups", a.name) for a in s.asgs]}
        items = [cidr(c) for c in s.items]
        return {f"{name}AddressPrefix": items[0]} if len(items) == 1 else {f"{name}AddressPrefixes": items}

    def ports(name: str, p: PortSpec) -> dict:
        if p.items is None:
            return {f"{name}PortRange": "*"}
        items = [str(r.lo) if r.lo == r.hi else f"{r.lo}-{r.hi}" for r in p.items]
        return {f"{name}PortRange": items[0]} if len(items) == 1 else {f"{name}PortRanges": items}

    def rule(r: Rule) -> dict:
        props = {"priority": r.priority, "direction": r.direction.value, "access": r.access.value,
                 "protocol": r.protocol.value, **side("source", r.source), **ports("source", r.source_ports),
                 **side("destination", r.destination), **ports("destination", r.destination_ports)}
        return {"name": r.name, "properties": props}

    base = {"apiVersion": "2023-04-01", "location": "[resourceGroup().location]"}
    res = [{"type": "Microsoft.Network/applicationSecurityGroups", "name": a.name, **base, "properties": {}}
           for a in policy.asgs]
    res += [{"type": "Microsoft.Network/networkSecurityGroups", "name": n.name, **base,
             "properties": {"securityRules": [rule(r) for r in n.rules]}} for n in policy.nsgs]
    for v in policy.vnets:
        subnets = []
        for sn in v.subnets:
            props = {"addressPrefix": cidr(sn.prefix)}
            if sn.nsg:
                props["networkSecurityGroup"] = rid("networkSecurityGroups", sn.nsg.name)
            subnets.append({"name": sn.name, "properties": props})
        res.append({"type": "Microsoft.Network/virtualNetworks", "name": v.name, **base,
                    "properties": {"addressSpace": {"addressPrefixes": [cidr(c) for c in v.address_spaces]},
                                   "subnets": subnets}})
    for nic in policy.nics:
        configs = []
        for i, c in enumerate(nic.ip_configs):
            props = {"subnet": rid("virtualNetworks/subnets", nic.subnet.vnet, nic.subnet.subnet)}
            if c.ip is None:
                props["privateIPAllocationMethod"] = "Dynamic"
            else:
                props.update(privateIPAllocationMethod="Static", privateIPAddress=int_to_ip(c.ip))
            if c.asgs:
                props["applicationSecurityGroups"] = [rid("applicationSecurityGroups", a.name) for a in c.asgs]
            configs.append({"name": f"ipconfig{i + 1}", "properties": props})
        props = {"ipConfigurations": configs}
        if nic.nsg:
            props["networkSecurityGroup"] = rid("networkSecurityGroups", nic.nsg.name)
        res.append({"type": "Microsoft.Network/networkInterfaces", "name": nic.name, **base, "properties": props})
    doc = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
           "contentVersion": "1.0.0.0", "resources": res}
    return json.dumps(doc, indent=2) + "\n"


# ---------------------------------------------------------------- the same policy as Bicep


def policy_to_bicep(policy: Policy) -> str:
    """``policy`` as a Bicep file: the resources of :func:`policy_to_arm`, each a ``resource`` declaration, its
    ARM expressions (``[resourceId(...)]``) written as the Bicep calls they are."""
    import json

    def value(v: object, indent: str) -> str:
        if isinstance(v, dict):
            inner = indent + "  "
            return "{\n" + "".join(f"{inner}{k}: {value(x, inner)}\n" for k, x in v.items()) + indent + "}"
        if isinstance(v, list):
            inner = indent + "  "
            return "[\n" + "".join(f"{inner}{value(x, inner)}\n" for x in v) + indent + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        s = str(v)
        if s.startswith("[") and s.endswith("]"):
            return s[1:-1]
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${") + "'"

    out = []
    for i, r in enumerate(json.loads(policy_to_arm(policy))["resources"]):
        body = {k: v for k, v in r.items() if k not in ("type", "apiVersion")}
        out.append(f"resource r{i} '{r['type']}@{r['apiVersion']}' = {value(body, '')}\n")
    return "\n".join(out)
