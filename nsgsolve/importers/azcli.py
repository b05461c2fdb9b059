"""``az`` CLI and REST API JSON: ``az network nsg list/show``, ``az network nsg rule list``,
``az network vnet list``, ``az network vnet subnet list``, ``az network nic list`` and
``az network asg list``.

Accepted containers: one object, an array of objects (what ``az ... list`` prints), ``{"value": [...]}``
(the REST list response), and a REST API example file ``{"parameters": ..., "responses": {"200":
{"body": ...}}}``. Objects may be nested (``properties``, as REST and az print NSGs) or flattened (as
older az versions and many scripts print them); :mod:`.convert` reads both. The kind of each object comes
from its ``type``, or from its fields when ``type`` is absent.
"""

from __future__ import annotations

from typing import Any, Iterator

from nsgsolve.errors import InputError
from nsgsolve.model import NOSPAN, Span
from nsgsolve.importers.convert import (
    ASG_TYPE,
    NIC_TYPE,
    NSG_TYPE,
    PEERING_TYPE,
    RULE_TYPE,
    SUBNET_TYPE,
    VNET_TYPE,
    PolicyBuilder,
    get,
    name_from_id,
    props_of,
)
from nsgsolve.importers.jsonpos import span_in


def unwrap(doc: Any, path: str = "") -> tuple[Any, str]:
    """The response body of a REST example file, else the document itself."""
    responses = get(doc, "responses")
    if isinstance(doc, dict) and isinstance(responses, dict):
        for code in ("200", "201"):
            body = get(get(responses, code), "body")
            if body is not None:
                return body, f"{path}responses.{code}.body"
    return doc, path


def objects(doc: Any, path: str = "") -> Iterator[tuple[dict, str, Span]]:
    """Every top-level Azure object of an az/REST document, with its path and span."""
    doc, path = unwrap(doc, path)
    if isinstance(doc, list):
        for i, o in enumerate(doc):
            if isinstance(o, dict):
                yield o, f"{path}[{i}]", span_in(doc, i)
        return
    if isinstance(doc, dict):
        value = get(doc, "value")
        if isinstance(value, list) and "type" not in doc:
            sep = "." if path else ""
            for i, o in enumerate(value):
                if isinstance(o, dict):
                    yield o, f"{path}{sep}value[{i}]", span_in(value, i)
            return
        yield doc, path or "$", getattr(doc, "span", NOSPAN)


def kind_of(obj: dict) -> str | None:
    """The lower-case resource type of an az/REST object."""
    t = get(obj, "type")
    if isinstance(t, str) and "/" in t:
        return t.lower()
    props, _ = props_of(obj)
    if get(props, "effectiveSecurityRules") is not None or "expandedSourceAddressPrefix" in {k for k in obj}:
        return "effective"
    if (
        get(props, "securityRuleAssociations") is not None
        or get(obj, "networkInterfaces")
        and all(
            isinstance(n, dict) and get(n, "securityRuleAssociations") is not None
            for n in get(obj, "networkInterfaces")
        )
    ):
        return "securitygroupview"
    if get(props, "securityRules") is not None or get(props, "defaultSecurityRules") is not None:
        return NSG_TYPE
    if get(props, "access") is not None and get(props, "direction") is not None:
        return RULE_TYPE
    if get(props, "ipConfigurations") is not None:
        return NIC_TYPE
    if get(props, "addressSpace") is not None:
        return VNET_TYPE
    if get(props, "remoteVirtualNetwork") is not None:
        return PEERING_TYPE
    if get(props, "addressPrefix") is not None or get(props, "addressPrefixes") is not None:
        return SUBNET_TYPE
    return None


def is_az_document(doc: Any) -> bool:
    return any(kind_of(o) is not None for o, _, _ in objects(doc))


def import_az(doc: Any, filename: str, builder: PolicyBuilder) -> int:
    """Feed every object of one az/REST document to ``builder``; returns how many were used."""
    used = 0
    for obj, path, span in objects(doc):
        span = span if span.line else Span(filename, 1, 1)
        kind = kind_of(obj)
        if kind in ("effective", "securitygroupview"):
            what = ("effective security rules ('az network nic list-effective-nsg')" if kind == "effective"
                    else "a Network Watcher security group view")
            raise InputError.single(
                "E640", f"this is {what}: Azure's evaluated view of one NIC, not a policy", span,
                "import the NSGs themselves ('az network nsg list'); compare tag expansions with "
                "'nsgsolve tags compare FILE'")
        name = get(obj, "name")
        rid = get(obj, "id")
        if kind is not None and not isinstance(name, str) or name == "":
            raise InputError.single("E611", f"{path}.name is missing", span)
        if kind == NSG_TYPE:
            builder.add_nsg(str(name), obj, path, span)
        elif kind == RULE_TYPE:
            names = name_from_id(rid, RULE_TYPE)
            nsg = names[0] if names else None
            if nsg is None:
                raise InputError.single("E641", f"{path}: security rule '{name}' without an id naming its NSG", span,
                                        "use 'az network nsg show' output, which holds the rules with their NSG")
            builder.add_child_rule(nsg, obj, path, span)
        elif kind == VNET_TYPE:
            builder.add_vnet(str(name), obj, path, span)
        elif kind == SUBNET_TYPE:
            names = name_from_id(rid, SUBNET_TYPE)
            if not names:
                raise InputError.single("E641", f"{path}: subnet '{name}' without an id naming its VNet", span)
            builder.add_subnet(names[0], names[1], obj, path, span)
        elif kind == PEERING_TYPE:
            names = name_from_id(rid, PEERING_TYPE)
            if names:
                builder.add_peering(names[0], obj, path, span)
        elif kind == NIC_TYPE:
            builder.add_nic(str(name), obj, path, span, live=True)
        elif kind == ASG_TYPE:
            builder.add_asg(str(name), span)
        else:
            continue
        used += 1
    return used
