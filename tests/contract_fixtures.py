"""A small web policy built in code, with assertions, for the contract and report tests.

Built from the model rather than parsed so these tests do not depend on the policy language; the
parsed examples are covered by tests/test_check_cli.py.

    vnet hub 10.0.0.0/16: subnet web 10.0.1.0/24 (nsg web-nsg), subnet db 10.0.2.0/24 (no NSG)
    nic web1 10.0.1.4 in asg WebServers;  nic db1 10.0.2.4
    web-nsg inbound: 100 allow Allow-Web  tcp Internet -> asg WebServers port 80,443
                     200 allow Allow-SSH  tcp Internet -> *              port 22      (the mistake)
"""

from __future__ import annotations

import dataclasses

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.model import (
    ANY_PORTS, Access, AnyAddress, Asg, AsgSide, AssertExcept, Assertion, AssertionKind, Cidr, Direction, IpConfig,
    Nic, NicAddr, Nsg, Policy, PortRange, PortSpec, Protocol, Query, Ref, Rule, Span, Subnet, SubnetRef, TagSide,
    VNet, assertion_name,
)

FILE = "web.nsg"
LINE = {"Allow-Web": 10, "Allow-SSH": 11}


def span(line: int, end: int = 40) -> Span:
    return Span(FILE, line, 1, line, end)


def cidr(text: str) -> Cidr:
    net, _, length = text.partition("/")
    return Cidr(ip_to_int(net), int(length))


def ports(*ps: int) -> PortSpec:
    return PortSpec(tuple(PortRange(p, p) for p in ps))


INTERNET = (TagSide(Ref("Internet")),)
WEB = (AsgSide((Ref("WebServers"),)),)
ANY = (AnyAddress(),)


def _rule(name: str, prio: int, src, dst, dports: PortSpec) -> Rule:
    return Rule(name, prio, Direction.INBOUND, Access.ALLOW, Protocol.TCP, src, ANY_PORTS, dst, dports,
                span=span(LINE[name]))


def web_policy(ssh_open: bool = True, assertions: tuple = ()) -> Policy:
    rules = [_rule("Allow-Web", 100, INTERNET[0], WEB[0], ports(80, 443))]
    if ssh_open:
        rules.append(_rule("Allow-SSH", 200, INTERNET[0], AnyAddress(), ports(22)))
    return Policy(
        vnets=(VNet("hub", (cidr("10.0.0.0/16"),), (Subnet("web", cidr("10.0.1.0/24"), Ref("web-nsg")),
                                                      Subnet("db", cidr("10.0.2.0/24")))),),
        nics=(Nic("web1", SubnetRef("hub", "web"), (IpConfig(ip_to_int("10.0.1.4"), (Ref("WebServers"),)),)),
              Nic("db1", SubnetRef("hub", "db"), (IpConfig(ip_to_int("10.0.2.4")),))),
        asgs=(Asg("WebServers"),),
        nsgs=(Nsg("web-nsg", tuple(rules)),),
        assertions=assertions,
    )


def assertion(kind: AssertionKind, text: str, src=INTERNET, dst=WEB, dports: PortSpec = ANY_PORTS,
              proto: Protocol = Protocol.ANY, excepts: tuple = (), line: int = 20, name: str = "",
              message: str = "") -> Assertion:
    traffic = None if kind in (AssertionKind.CLEAN, AssertionKind.NO_SHADOWED) else Query(src, dst, dports, proto)
    return Assertion(kind, traffic, excepts, name or assertion_name(text), message, span(line), text, bool(name))


def with_assertions(policy: Policy, *assertions: Assertion) -> Policy:
    return dataclasses.replace(policy, assertions=tuple(assertions))


__all__ = ["ANY", "AssertExcept", "AssertionKind", "FILE", "INTERNET", "LINE", "NicAddr", "Protocol", "WEB",
           "assertion", "cidr", "ports", "span", "web_policy", "with_assertions"]
