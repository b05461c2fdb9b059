"""Effective security rules (``az network nic list-effective-nsg``, NetworkInterfaceEffectiveNSGList).

They are Azure's evaluated view of one NIC, not a policy, so they are not imported as one. What they are
good for: Azure writes next to each rule the prefixes a service tag expanded to
(``expandedSourceAddressPrefix``), which lets a user check that nsgsolve's tag data (the ServiceTags file it
was given) agrees with what Azure enforces. :func:`compare_expansions` does that check.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from nsgsolve.errors import DiagnosticBag
from nsgsolve.limits import decimal
from nsgsolve.semantics.addresses import EMPTY, PUBLIC_IPV4, IntervalSet, prefixes
from nsgsolve.model import NOSPAN, Span
from nsgsolve.semantics.servicetags import BUILTIN_TAGS, ServiceTagDb, canonical_builtin
from nsgsolve.importers.azcli import unwrap
from nsgsolve.importers.convert import get
from nsgsolve.importers.jsonpos import span_in


@dataclass(frozen=True)
class EffectiveSide:
    prefix: str  # as Azure wrote the rule (a tag, '0.0.0.0/0', a CIDR); plural entries joined
    expanded: tuple[str, ...] | None  # Azure's expansion; None when Azure gave none


@dataclass(frozen=True)
class EffectiveRule:
    name: str  # "securityRules/x", "defaultSecurityRules/x" or as az prints it
    nsg: str  # the NSG's name ("" when the file does not say)
    direction: str
    priority: int
    access: str
    protocol: str
    source: EffectiveSide
    destination: EffectiveSide
    span: Span = NOSPAN


def _bad(bag: DiagnosticBag, rule: Any, key: str, span: Span, what: str) -> None:
    bag.error("E695", f"effective rule '{get(rule, 'name')}': {key} {what}", span_in(rule, key, span),
              "give the output of 'az network nic list-effective-nsg' unchanged")


def _side(rule: dict, side: str, bag: DiagnosticBag, span: Span) -> EffectiveSide:
    singular = get(rule, f"{side}AddressPrefix")
    plural = get(rule, f"{side}AddressPrefixes") or []
    if not isinstance(plural, list):
        _bad(bag, rule, f"{side}AddressPrefixes", span, "is not a list")
        plural = []
    items = [singular] if singular else []
    items += [p for p in plural if p and p not in items]
    ekey = f"expanded{side[0].upper()}{side[1:]}AddressPrefix"
    expanded = get(rule, ekey)
    if isinstance(expanded, list):
        # Every IPv4 entry must be a prefix: a value skipped here would be reported as a tag difference.
        for x in expanded:
            if not isinstance(x, str):
                _bad(bag, rule, ekey, span, f"holds {type(x).__name__} {str(x)[:40]!r}, not a prefix")
                break
            if ":" not in x:
                try:
                    ipaddress.IPv4Network(x, strict=False)
                except ValueError:
                    _bad(bag, rule, ekey, span, f"holds {x[:60]!r}, which is not an IPv4 prefix")
                    break
    elif expanded is not None:
        _bad(bag, rule, ekey, span, "is not a list of prefixes")
        expanded = None
    return EffectiveSide(",".join(str(i) for i in items),
                         tuple(str(x) for x in expanded) if isinstance(expanded, list) else None)


def _priority(rule: dict, bag: DiagnosticBag, span: Span) -> int:
    v = get(rule, "priority")
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and not v.strip().isdigit()):
        _bad(bag, rule, "priority", span, f"is {str(v)[:40]!r}, not a number")
        return 0
    return decimal(v) if isinstance(v, str) else v


def parse_effective(doc: Any, filename: str = "") -> list[EffectiveRule]:
    """Every effective rule of a list-effective-nsg output (whole, a REST example, or one rule object)."""
    doc, _ = unwrap(doc)
    groups: list[tuple[str, list, Any]] = []
    if isinstance(doc, dict) and isinstance(get(doc, "value"), list):
        for g in get(doc, "value"):
            nsg_id = get(get(g, "networkSecurityGroup"), "id") or ""
            groups.append((str(nsg_id).rsplit("/", 1)[-1], get(g, "effectiveSecurityRules") or [], g))
    elif isinstance(doc, dict) and get(doc, "effectiveSecurityRules") is not None:
        groups.append(("", get(doc, "effectiveSecurityRules"), doc))
    elif isinstance(doc, dict) and get(doc, "access") is not None:
        groups.append(("", [doc], None))
    elif isinstance(doc, list):
        groups.append(("", doc, doc))
    out = []
    bag = DiagnosticBag()
    for nsg, rules, container in groups:
        if not isinstance(rules, list):
            bag.error("E695", "effectiveSecurityRules is not a list", span_in(container, "effectiveSecurityRules",
                                                                          Span(filename, 0, 0)))
            continue
        for i, r in enumerate(rules):
            if not isinstance(r, dict):
                continue
            span = getattr(r, "span", NOSPAN)
            span = span if span.line else span_in(rules, i, Span(filename, 0, 0))
            out.append(EffectiveRule(str(get(r, "name") or ""), nsg, str(get(r, "direction") or ""),
                                     _priority(r, bag, span), str(get(r, "access") or ""),
                                     str(get(r, "protocol") or ""), _side(r, "source", bag, span),
                                     _side(r, "destination", bag, span), span))
    bag.raise_if_errors()
    return out


@dataclass(frozen=True)
class TagComparison:
    rule: str
    side: str  # "source" | "destination"
    tag: str
    azure: IntervalSet
    ours: IntervalSet | None  # None: nsgsolve has no data for this tag
    azure_ipv6: int  # IPv6 prefixes in Azure's expansion (not compared)
    span: Span = NOSPAN

    @property
    def missing(self) -> IntervalSet:
        """Addresses Azure matches that nsgsolve's data does not."""
        return self.azure.difference(self.ours) if self.ours is not None else self.azure

    @property
    def extra(self) -> IntervalSet:
        """Addresses nsgsolve's data matches that Azure does not."""
        return self.ours.difference(self.azure) if self.ours is not None else EMPTY

    @property
    def agrees(self) -> bool:
        return self.ours is not None and not self.missing and not self.extra


def our_expansion(tag: str, db: ServiceTagDb, vnet_space: IntervalSet | None = None,
                  virtual_network: IntervalSet | None = None) -> IntervalSet | None:
    """What nsgsolve resolves a tag to; the context tags need the VNet (None when not given)."""
    canon = canonical_builtin(tag)
    if canon == "Internet":
        return PUBLIC_IPV4.difference(vnet_space) if vnet_space is not None else PUBLIC_IPV4
    if canon == "VirtualNetwork":
        return virtual_network
    if canon in BUILTIN_TAGS:
        return BUILTIN_TAGS[canon]
    data = db.lookup(tag)
    return data.ipv4 if data is not None else None


def compare_expansions(rules: list[EffectiveRule], db: ServiceTagDb, vnet_space: IntervalSet | None = None,
                       virtual_network: IntervalSet | None = None) -> list[TagComparison]:
    """For every rule side that names a tag and carries Azure's expansion, nsgsolve's expansion beside it."""
    out = []
    for r in rules:
        for side_name, side in (("source", r.source), ("destination", r.destination)):
            if side.expanded is None or not side.prefix or "," in side.prefix:
                continue
            tag = side.prefix
            try:
                ipaddress.ip_network(tag, strict=False)
                continue  # a literal prefix, not a tag
            except ValueError:
                pass
            v4 = [p for p in side.expanded if ":" not in p]
            v6 = len(side.expanded) - len(v4)
            out.append(TagComparison(r.name, side_name, tag, prefixes(v4),
                                     our_expansion(tag, db, vnet_space, virtual_network), v6, r.span))
    return out
