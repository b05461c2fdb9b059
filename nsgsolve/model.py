"""The typed policy model: frozen dataclasses, faithful to what the user wrote.

Every front end (the DSL builder in :mod:`nsgsolve.lang.build`, the ARM/az importers) produces a
:class:`Policy`. Names are already resolved to their kind (a rule side says whether it names an ASG, a
tag, a NIC, ...) but not yet to addresses: :mod:`nsgsolve.semantics.resolve` turns a Policy into address and port
sets per attachment point, which the evaluator and the Z3 encoding consume.

Addresses are integers, IPv4 and IPv6 in one space (V6_BASE below). Spans point back to the source so
every later finding can name file:line:column.
"""

from __future__ import annotations

import ipaddress

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union


@dataclass(frozen=True)
class Span:
    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file

    @classmethod
    def on_line(cls, file: str, line: int, column: int, end_column: int) -> "Span":
        """``Span(file, line, column, line, end_column)``, the same object made about twice as fast: the
        builder makes one per word of a large policy (30,000 for two 1,000-rule NSGs), and a frozen
        dataclass's ``__init__`` sets each field through ``object.__setattr__``."""
        span = _new_object(cls)
        d = span.__dict__
        d["file"], d["line"], d["column"], d["end_line"], d["end_column"] = file, line, column, line, end_column
        return span


_new_object = object.__new__

NOSPAN = Span("<unknown>", 0, 0)


def span_dict(span: Span | None) -> dict[str, Any] | None:
    """A source position in JSON, one shape in every command's output (docs/json.md "location");
    None when there is no source (Azure's default rules, platform rules)."""
    if span is None or span.line <= 0:
        return None
    return {"file": span.file, "line": span.line, "column": span.column, "end_line": span.end_line,
            "end_column": span.end_column}


class Direction(Enum):
    INBOUND = "Inbound"
    OUTBOUND = "Outbound"


class Access(Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    # Security admin rules only (Azure Virtual Network Manager): allowed in this direction without
    # consulting the NSGs. NSG rules are Allow or Deny (E511).
    ALWAYS_ALLOW = "AlwaysAllow"


class Protocol(Enum):
    TCP = "Tcp"
    UDP = "Udp"
    ICMP = "Icmp"
    ESP = "Esp"
    AH = "Ah"
    ANY = "*"

    @property
    def number(self) -> int | None:
        """IANA protocol number; None for ``*`` (every IP protocol)."""
        return _PROTO_NUMBERS.get(self)

    @classmethod
    def parse(cls, text: str) -> "Protocol":
        """Case-insensitive, as Azure accepts it (``TCP``, ``tcp``, ``Any``, ``*``)."""
        p = _PROTOCOLS_BY_TEXT.get(text.strip().lower())
        if p is None:
            raise ValueError(f"unknown protocol {text!r}")
        return p


# Protocol.parse runs for every rule read; an Enum member's ``.value`` is slow to read in a loop.
_PROTOCOLS_BY_TEXT = {**{p.value.lower(): p for p in Protocol}, "any": Protocol.ANY, "all": Protocol.ANY}
_PROTO_NUMBERS = {Protocol.TCP: 6, Protocol.UDP: 17, Protocol.ICMP: 1, Protocol.ESP: 50, Protocol.AH: 51}
PROTOCOL_BY_NUMBER = {v: k for k, v in _PROTO_NUMBERS.items()}
PORTED_PROTOCOLS = (6, 17)  # only Tcp and Udp packets carry ports


class Subscription(Enum):
    """Subscription types, which decide the platform's outbound TCP 25 block (semantics.platform)."""

    ENTERPRISE_AGREEMENT = "enterprise-agreement"
    ENTERPRISE_DEVTEST = "enterprise-devtest"
    ENTERPRISE_DEVTEST_EXEMPT = "enterprise-devtest-exempt"
    PAY_AS_YOU_GO = "pay-as-you-go"
    MSDN = "msdn"
    AZURE_PASS = "azure-pass"
    AZURE_IN_OPEN = "azure-in-open"
    EDUCATION = "education"
    FREE_TRIAL = "free-trial"
    CSP = "csp"


# The brief's model: when the file says nothing, the platform block is not assumed away.
DEFAULT_SUBSCRIPTION = Subscription.PAY_AS_YOU_GO


@dataclass(frozen=True)
class Ref:
    """A use of a name, with where it was written."""

    name: str
    span: Span = NOSPAN


@dataclass(frozen=True)
class SubnetRef:
    """A subnet is named by its VNet and its own name (both may contain '.', so no joined string)."""

    vnet: str
    subnet: str
    span: Span = NOSPAN

    def __str__(self) -> str:
        return f"{self.vnet}/{self.subnet}"


# ---------------------------------------------------------------- addresses


# IPv6 address ``a`` is the integer ``V6_BASE + a`` (semantics/addresses.py explains the shared space).
V6_BASE = 1 << 128


def ip_text(value: int) -> str:
    """An address of the shared integer space as people write it (dotted IPv4 or IPv6)."""
    if value >= V6_BASE:
        return str(ipaddress.IPv6Address(value - V6_BASE))
    return str(ipaddress.IPv4Address(value))


@dataclass(frozen=True)
class Cidr:
    """An IPv4 or IPv6 prefix. ``network`` is in the integer space both families share
    (semantics/addresses.py: IPv6 ``a`` is ``2**128 + a``), so ``length`` counts to 32 or to 128."""

    network: int  # host bits are zero (the builder rejects others)
    length: int
    span: Span = NOSPAN

    @classmethod
    def of(cls, network: int, length: int, span: Span) -> "Cidr":
        """``Cidr(network, length, span)``, the same object made about twice as fast (as :meth:`Span.on_line`):
        a large policy has tens of thousands of prefixes."""
        c = _new_object(cls)
        d = c.__dict__
        d["network"], d["length"], d["span"] = network, length, span
        return c

    @property
    def is_v6(self) -> bool:
        return self.network >> 128 != 0

    @property
    def lo(self) -> int:
        return self.network

    @property
    def hi(self) -> int:
        return self.network | ((1 << ((128 if self.is_v6 else 32) - self.length)) - 1)


@dataclass(frozen=True)
class IpRange:
    lo: int
    hi: int
    span: Span = NOSPAN


@dataclass(frozen=True)
class NicAddr:
    """Every private IP of a NIC (convenience in rules and queries)."""

    nic: Ref


@dataclass(frozen=True)
class SubnetAddr:
    subnet: SubnetRef


@dataclass(frozen=True)
class VnetAddr:
    vnet: Ref


@dataclass(frozen=True)
class NetworkRef:
    """A named address list (``define network NAME = ...``)."""

    define: Ref


AddrItem = Union[Cidr, IpRange, NicAddr, SubnetAddr, VnetAddr, NetworkRef]


@dataclass(frozen=True)
class AnyAddress:
    span: Span = NOSPAN


@dataclass(frozen=True)
class TagSide:
    """Exactly one service tag (the canonical spelling is resolved later, case-insensitively)."""

    tag: Ref
    span: Span = NOSPAN


@dataclass(frozen=True)
class AsgSide:
    asgs: tuple[Ref, ...]  # 1..10
    span: Span = NOSPAN


@dataclass(frozen=True)
class PrefixSide:
    items: tuple[AddrItem, ...]
    span: Span = NOSPAN


RuleSide = Union[AnyAddress, TagSide, AsgSide, PrefixSide]


# ---------------------------------------------------------------- ports


@dataclass(frozen=True)
class PortRange:
    lo: int
    hi: int
    span: Span = NOSPAN


@dataclass(frozen=True)
class PortsRef:
    """A named port list (``define ports NAME = ...``)."""

    define: Ref


PortItem = Union[PortRange, PortsRef]


@dataclass(frozen=True)
class PortSpec:
    """``items is None`` means ``*`` (every port)."""

    items: tuple[PortItem, ...] | None = None
    span: Span = NOSPAN

    @property
    def is_any(self) -> bool:
        return self.items is None


ANY_PORTS = PortSpec(None)


# ---------------------------------------------------------------- rules and NSGs


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    direction: Direction
    access: Access
    protocol: Protocol
    source: RuleSide
    source_ports: PortSpec
    destination: RuleSide
    destination_ports: PortSpec
    description: str = ""
    span: Span = NOSPAN
    is_default: bool = False
    # Importers note approximations here (e.g. "IPv6 prefixes ignored"); printed as comments.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Nsg:
    name: str
    rules: tuple[Rule, ...]  # user rules only; defaults come from default_rules()
    span: Span = NOSPAN

    def rules_for(self, direction: Direction) -> tuple[Rule, ...]:
        """User rules of one direction in evaluation order, followed by the default rules."""
        user = sorted((r for r in self.rules if r.direction is direction), key=lambda r: r.priority)
        return tuple(user) + DEFAULT_RULES[direction]


def _default(name: str, direction: Direction, priority: int, src: RuleSide, dst: RuleSide, access: Access) -> Rule:
    return Rule(name, priority, direction, access, Protocol.ANY, src, ANY_PORTS, dst, ANY_PORTS, is_default=True,
                span=Span("<azure default rule>", 0, 0))


def _tag(name: str) -> TagSide:
    return TagSide(Ref(name))


DEFAULT_RULES: dict[Direction, tuple[Rule, ...]] = {
    Direction.INBOUND: (
        _default(
            "AllowVnetInBound", Direction.INBOUND, 65000, _tag("VirtualNetwork"), _tag("VirtualNetwork"), Access.ALLOW
        ),
        _default(
            "AllowAzureLoadBalancerInBound",
            Direction.INBOUND,
            65001,
            _tag("AzureLoadBalancer"),
            AnyAddress(),
            Access.ALLOW,
        ),
        _default("DenyAllInBound", Direction.INBOUND, 65500, AnyAddress(), AnyAddress(), Access.DENY),
    ),
    Direction.OUTBOUND: (
        _default(
            "AllowVnetOutBound", Direction.OUTBOUND, 65000, _tag("VirtualNetwork"), _tag("VirtualNetwork"), Access.ALLOW
        ),
        _default("AllowInternetOutBound", Direction.OUTBOUND, 65001, AnyAddress(), _tag("Internet"), Access.ALLOW),
        _default("DenyAllOutBound", Direction.OUTBOUND, 65500, AnyAddress(), AnyAddress(), Access.DENY),
    ),
}


# ---------------------------------------------------------------- security admin rules (AVNM)


@dataclass(frozen=True)
class AdminRule:
    """A security admin rule of Azure Virtual Network Manager (docs/semantics.md, "Security admin rules").

    A side is a union of items: Azure lets one admin rule list IP prefixes and service tags together,
    unlike an NSG rule. ``()`` means any address. ``collection`` and ``config`` name where it was declared.
    """

    name: str
    priority: int  # 1..4096
    direction: Direction
    access: Access  # Allow, Deny or AlwaysAllow
    protocol: Protocol
    sources: tuple[RuleSide, ...]
    source_ports: PortSpec
    destinations: tuple[RuleSide, ...]
    destination_ports: PortSpec
    description: str = ""
    span: Span = NOSPAN
    collection: str = ""
    config: str = ""
    notes: tuple[str, ...] = ()
    is_default = False  # read like Rule.is_default by code shared with NSG rules

    @property
    def label(self) -> str:
        """``config/collection/rule``: admin rule names are unique only within their collection."""
        return f"{self.config}/{self.collection}/{self.name}"


@dataclass(frozen=True)
class RuleCollection:
    """Admin rules applied to the VNets of some network groups."""

    name: str
    groups: tuple[Ref, ...]
    rules: tuple[AdminRule, ...]
    span: Span = NOSPAN


@dataclass(frozen=True)
class AdminConfig:
    """A security admin configuration. nsgsolve takes every configuration it reads as deployed."""

    name: str
    collections: tuple[RuleCollection, ...]
    span: Span = NOSPAN


@dataclass(frozen=True)
class NetworkGroup:
    """A network group of VNets (static members; Azure Policy-based membership is not modelled)."""

    name: str
    members: tuple[Ref, ...]
    span: Span = NOSPAN


# ---------------------------------------------------------------- topology


@dataclass(frozen=True)
class Subnet:
    """A subnet has one or more address prefixes (Azure's ``addressPrefixes``); ``prefix`` is the first,
    ``extra`` the others. Code that means the subnet's addresses reads :attr:`prefixes`."""

    name: str  # short name, unique within its VNet
    prefix: Cidr
    nsg: Ref | None = None
    span: Span = NOSPAN
    extra: tuple[Cidr, ...] = ()

    @property
    def prefixes(self) -> tuple[Cidr, ...]:
        return (self.prefix,) + self.extra


@dataclass(frozen=True)
class VNet:
    name: str
    address_spaces: tuple[Cidr, ...]
    subnets: tuple[Subnet, ...] = ()
    peerings: tuple[Ref, ...] = ()  # peered VNet names (peering is symmetric for the tag)
    onprem: tuple[Cidr, ...] = ()  # on-premises prefixes connected to this VNet
    span: Span = NOSPAN


@dataclass(frozen=True)
class IpConfig:
    ip: int | None  # None: dynamic, chosen by Azure from the subnet's usable addresses of its family
    asgs: tuple[Ref, ...] = ()
    name: str = ""  # Azure's ipconfig name where known
    span: Span = NOSPAN
    v6: bool = False  # an IPv6 configuration (privateIPAddressVersion IPv6); ip, when set, is IPv6 too


@dataclass(frozen=True)
class Nic:
    name: str
    subnet: SubnetRef
    ip_configs: tuple[IpConfig, ...]
    nsg: Ref | None = None
    span: Span = NOSPAN


@dataclass(frozen=True)
class Asg:
    name: str
    span: Span = NOSPAN


@dataclass(frozen=True)
class TagDecl:
    """Service tag data declared in the policy file (``tag Storage = 20.38.96.0/19, ...``)."""

    name: str
    items: tuple[AddrItem, ...]
    span: Span = NOSPAN


@dataclass(frozen=True)
class NetworkDefine:
    name: str
    items: tuple[AddrItem, ...]
    span: Span = NOSPAN


@dataclass(frozen=True)
class PortsDefine:
    name: str
    items: tuple[PortItem, ...]
    span: Span = NOSPAN


# ---------------------------------------------------------------- questions


Endpoint = Union[AnyAddress, TagSide, AsgSide, Cidr, IpRange, NicAddr, SubnetAddr, VnetAddr, NetworkRef]


@dataclass(frozen=True)
class Query:
    """``can SRC reach DST [port P] [PROTO]``."""

    sources: tuple[Endpoint, ...]
    destinations: tuple[Endpoint, ...]
    ports: PortSpec = ANY_PORTS  # destination ports
    protocol: Protocol = Protocol.ANY
    span: Span = NOSPAN
    text: str = ""  # as written, for reports


class AssertionKind(Enum):
    """What an ``assert`` claims about its traffic (docs/contracts.md)."""

    NO = "no"  # no packet of the traffic is allowed
    ALL = "all"  # every packet of the traffic is allowed
    SOME = "some"  # at least one packet is allowed
    ONLY = "only"  # from SRC to DST, nothing outside the given ports/protocol is allowed
    CLEAN = "clean"  # the anomaly analysis reports nothing at error severity
    NO_SHADOWED = "no shadowed"  # no rule is shadowed


@dataclass(frozen=True)
class AssertExcept:
    """``except [from SRC] [to DST] [port P] [PROTO]``: packets the assertion does not examine.

    ``None`` for an endpoint side means any address; the ports and protocol default to any."""

    sources: tuple[Endpoint, ...] | None = None
    destinations: tuple[Endpoint, ...] | None = None
    ports: PortSpec = ANY_PORTS
    protocol: Protocol = Protocol.ANY
    span: Span = NOSPAN
    text: str = ""


@dataclass(frozen=True)
class Assertion:
    """``assert [NAME:] KIND TRAFFIC [except ...]* ["message"]`` (traffic is None for clean/no shadowed)."""

    kind: AssertionKind
    traffic: Query | None = None
    excepts: tuple[AssertExcept, ...] = ()
    name: str = ""  # explicit, or derived from the text by assertion_name()
    message: str = ""
    span: Span = NOSPAN
    text: str = ""  # the claim as written (whitespace collapsed), without name and message
    explicit_name: bool = False


def assertion_name(text: str) -> str:
    """A stable default name from an assertion's text.

    JUnit test names and SARIF fingerprints are keyed on the name, so it must not depend on the line or
    on anything but the claim itself: case and spacing do not count, and long claims keep a short hash
    so two claims that differ only at the end stay distinct."""
    import hashlib
    import re

    norm = " ".join(text.lower().split())
    slug = re.sub(r"[^a-z0-9.]+", "-", norm).strip("-.") or "assertion"
    if len(slug) > 60:
        digest = hashlib.sha256(norm.encode()).hexdigest()[:8]
        slug = slug[:51].rstrip("-.") + "-" + digest
    return slug


def item_text(it: object, bare_hosts: bool = False) -> str:
    """An address item as written in the language (``bare_hosts``: a /32 as the bare address)."""
    if isinstance(it, Cidr):
        if bare_hosts and it.length == (128 if it.is_v6 else 32):
            return _ip_text(it.network)
        return f"{_ip_text(it.network)}/{it.length}"
    if isinstance(it, IpRange):
        return f"{_ip_text(it.lo)}-{_ip_text(it.hi)}"
    if isinstance(it, NicAddr):
        return it.nic.name
    if isinstance(it, SubnetAddr):
        return str(it.subnet)
    if isinstance(it, VnetAddr):
        return it.vnet.name
    if isinstance(it, NetworkRef):
        return it.define.name
    return getattr(it, "text", repr(it))


def _fold(text: str) -> tuple[str, str]:
    """Sort key: case-insensitive, ties broken by the text itself (so the order never depends on a set's)."""
    return text.lower(), text


def claim_text(kind: AssertionKind, traffic: Query | None, excepts: tuple[AssertExcept, ...] = ()) -> str:
    """An assertion's claim in one canonical spelling, from the model alone (not the source text), so a
    derived name survives reformatting: ``*`` and ``any``, spacing, case and the order of every list (a
    comma list means a union, and ``except`` clauses add up) all give the same text. Port lists are
    sorted with overlapping or adjacent ranges merged, so ``80, 443`` = ``443,80`` and ``80, 81`` = ``80-81``."""

    def ep(e: object) -> str:
        if isinstance(e, AnyAddress):
            return "any"
        if isinstance(e, TagSide):
            return e.tag.name
        if isinstance(e, AsgSide):
            return "asg " + ", asg ".join(sorted({r.name for r in e.asgs}, key=_fold))
        return item_text(e)

    def eps(es: tuple | None) -> str:
        return "any" if es is None else ", ".join(sorted({ep(e) for e in es}, key=_fold))

    def pp(spec: PortSpec, proto: Protocol) -> str:
        out = ""
        if not spec.is_any:
            ranges: list[list[int]] = []
            for lo, hi in sorted((i.lo, i.hi) for i in spec.items or () if isinstance(i, PortRange)):
                if ranges and lo <= ranges[-1][1] + 1:
                    ranges[-1][1] = max(ranges[-1][1], hi)
                else:
                    ranges.append([lo, hi])
            names = sorted({i.define.name for i in spec.items or () if not isinstance(i, PortRange)}, key=_fold)
            out += " port " + ", ".join([f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in ranges] + names)
        if proto is not Protocol.ANY:
            out += " " + proto.value.lower()
        return out

    if traffic is None:
        return kind.value
    text = f"{kind.value} {eps(traffic.sources)} -> {eps(traffic.destinations)}{pp(traffic.ports, traffic.protocol)}"
    clauses = set()
    for x in excepts:
        clause = " except"
        if x.sources is not None:
            clause += " from " + eps(x.sources)
        if x.destinations is not None:
            clause += " to " + eps(x.destinations)
        clauses.add(clause + pp(x.ports, x.protocol))
    return text + "".join(sorted(clauses, key=_fold))


def _ip_text(v: int) -> str:
    if v >= V6_BASE:
        return ip_text(v)
    return f"{v >> 24 & 255}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"


PARAM_PREFIX = "?param:"  # a rule side or port list that is an unset template parameter (symbolic)


def param_name(name: str) -> str:
    """The tag or port-list name a rule uses for the unset parameter ``name`` (docs/import.md)."""
    return PARAM_PREFIX + name


EXISTING_PREFIX = "vnet:"  # the address space of a VNet the inputs only refer to (model.OpenVNet)


def existing_space(vnet: str, subnet: str | None = None, peered: bool = False) -> str:
    """The parameter standing for the address space of VNet ``vnet`` that is not in the inputs (a template
    attaching an NSG to a subnet of an existing VNet), of its subnet ``subnet``, or of what it is peered or
    connected with (part of its VirtualNetwork tag)."""
    return f"{EXISTING_PREFIX}{vnet}" + (f"/{subnet}" if subnet else "") + (":peered" if peered else "")


def _existing_words(name: str) -> str:
    rest = name[len(EXISTING_PREFIX):]
    if rest.endswith(":peered"):
        return f"the peered and on-premises space of VNet {rest[:-len(':peered')]}"
    vnet, slash, subnet = rest.partition("/")
    return f"the prefix of subnet {vnet}/{subnet}" if slash else f"the address space of VNet {vnet}"


def param_label(name: str) -> str:
    """How an answer names an unset parameter: ``parameters('x')`` for a template's; as is for a name with a
    dot, which no template parameter has: a Terraform variable (``var.x``, ``module.net.var.x``) or a service
    tag named with a region nobody gave (``Storage.location``, ``Storage.var.location``); in words for the
    space of a VNet the inputs do not define (``existing_space``)."""
    if name.startswith(EXISTING_PREFIX):
        return _existing_words(name)
    return name if "." in name else f"parameters('{name}')"


def param_pin(name: str) -> str:
    """How the user gives unset parameter ``name`` a value (``param_label`` names it): ``--param x=VALUE``
    for a template's, ``--var x=VALUE`` for a root Terraform variable, the module call's argument for a
    module's, and the region's parameter or variable for a service tag named with it (``Storage.location``
    is pinned by ``--param location=westeurope``)."""
    if name.startswith(EXISTING_PREFIX):
        vnet = name[len(EXISTING_PREFIX):].partition("/")[0].partition(":")[0]
        return f"add VNet {vnet} to the inputs (its template, or 'az network vnet show' output)"
    if name.startswith("var."):
        return f"--var {name[4:]}=VALUE, a --var-file or terraform.tfvars"
    if name.startswith("module."):
        module, _, var = name[len("module."):].partition(".var.")
        return f"the argument {var} = VALUE of the call of module {module}"
    family, dot, inner = name.partition(".")
    if dot:
        return f"{param_pin(inner).replace('=VALUE', '=REGION', 1)}: the region that names the {family} tag"
    return f"--param {name}=VALUE or --params-file FILE"


def param_what(name: str) -> str:
    """What unset parameter ``name`` is, for a message: a template parameter, a Terraform variable, or a
    service tag named with a region nobody gave."""
    if name.startswith(EXISTING_PREFIX):
        return f"{_existing_words(name)} (not in the inputs)"
    if name.startswith(("var.", "module.")):
        return f"Terraform variable {name}"
    if "." in name:
        return f"the service tag {name} (named with a region nobody gave)"
    return f"template parameter '{name}'"


@dataclass(frozen=True)
class ParamDecl:
    """An unset template parameter a rule's addresses or ports are: its values are the ones the template
    allows (``allowed``, as written: prefixes, tags, ``*``, port ranges), or every well-formed one (empty)."""

    name: str
    allowed: tuple[str, ...] = ()
    span: Span = NOSPAN
    # Some rule reads the value as a list of prefixes (split from the text: docs/import.md). The variable is
    # still one prefix, which answers every per-packet question for every list, but not `assert some`, a
    # question about several packets under one value (contracts: such a pass needs one packet).
    lists: bool = False


@dataclass(frozen=True)
class OpenSubnet:
    """A subnet of an :class:`OpenVNet`: its prefix is unset template parameter ``param``, or, with none,
    some prefix inside the VNet's space (computed from parameters nobody gave)."""

    name: str
    nsg: Ref | None = None
    param: str | None = None
    span: Span = NOSPAN


@dataclass(frozen=True)
class OpenVNet:
    """A VNet whose address space is unset template parameter ``param`` (one prefix; docs/import.md, "A VNet
    whose address space is a parameter"). Only the analyses that answer for every value (query, check)
    place its subnets and NICs: each value is a private prefix (RFC 1918, 100.64.0.0/10), so the
    Internet tag is the same for every value. Every other reader sees the NSGs unattached, as before."""

    name: str
    param: str
    subnets: tuple[OpenSubnet, ...] = ()
    nics: tuple[Nic, ...] = ()  # in its subnets (their subnet names one of ``subnets``), addresses dynamic
    span: Span = NOSPAN
    # A VNet the inputs only refer to (existing in Azure) may be peered or connected to anything: this
    # parameter, any prefix, joins its VirtualNetwork tag (one prefix decides whatever a set would for one
    # packet, the argument of docs/import.md "Unset parameters").
    peers_param: str | None = None


@dataclass(frozen=True)
class Policy:
    vnets: tuple[VNet, ...] = ()
    nics: tuple[Nic, ...] = ()
    asgs: tuple[Asg, ...] = ()
    nsgs: tuple[Nsg, ...] = ()
    tags: tuple[TagDecl, ...] = ()
    networks: tuple[NetworkDefine, ...] = ()
    ports: tuple[PortsDefine, ...] = ()
    subscription: Subscription | None = None
    queries: tuple[Query, ...] = ()
    # Later issues add assertions here; the tuple stays generic so the model does not import them.
    assertions: tuple = ()  # of Assertion (check, docs/contracts.md)
    source: str = "<memory>"
    notes: tuple[str, ...] = field(default=())  # approximations an importer made
    groups: tuple[NetworkGroup, ...] = ()
    admin_configs: tuple[AdminConfig, ...] = ()
    params: tuple[ParamDecl, ...] = ()  # unset parameters rules are built from (symbolic)
    open_vnets: tuple[OpenVNet, ...] = ()  # VNets whose address space is an unset parameter

    def admin_rules(self) -> list[AdminRule]:
        return [r for c in self.admin_configs for rc in c.collections for r in rc.rules]

    def admin_rules_for(self, vnet: str) -> list[AdminRule]:
        """The admin rules applied to ``vnet``: those of every collection applied to a group holding it,
        each once (a VNet in two groups of one collection meets its rules once), in declaration order."""
        groups = {g.name for g in self.groups if any(m.name == vnet for m in g.members)}
        out: list[AdminRule] = []
        for c in self.admin_configs:
            for rc in c.collections:
                if any(g.name in groups for g in rc.groups):
                    out.extend(rc.rules)
        return out

    # Look-ups used by every pass; cheap enough to recompute (policies hold thousands, not millions).
    def nsg(self, name: str) -> Nsg | None:
        return next((n for n in self.nsgs if n.name == name), None)

    def nic(self, name: str) -> Nic | None:
        return next((n for n in self.nics if n.name == name), None)

    def subnets(self) -> list[tuple[VNet, Subnet]]:
        return [(v, s) for v in self.vnets for s in v.subnets]

    def subnet(self, ref: SubnetRef) -> tuple[VNet, Subnet] | None:
        for v in self.vnets:
            if v.name == ref.vnet:
                for s in v.subnets:
                    if s.name == ref.subnet:
                        return v, s
        return None

    def vnet(self, name: str) -> VNet | None:
        return next((v for v in self.vnets if v.name == name), None)
