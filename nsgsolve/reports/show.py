"""The resolved model for people and as JSON: topology, then every NSG's rules in evaluation order."""

from __future__ import annotations

from nsgsolve.lang.printer import PolicyText, cidr_text
from nsgsolve.model import DEFAULT_SUBSCRIPTION, AdminRule, Direction, span_dict
from nsgsolve.semantics.addresses import describe_ips, describe_ports, int_to_ip
from nsgsolve.semantics.platform import blocks_smtp
from nsgsolve.semantics.resolve import AddrSet, ResolvedNsg, ResolvedPolicy, ResolvedRule

DESCRIBE_LIMIT = 4


def _addr(rp: ResolvedPolicy, s: AddrSet, limit: int | None = DESCRIBE_LIMIT) -> str:
    parts = []
    if s.intervals:
        parts.append(describe_ips(s.intervals, limit) if limit else describe_ips(s.intervals, 10**9))
    parts += [f"{k} (dynamic)" for k in sorted(s.members)]
    return ", ".join(parts) if parts else "(no addresses)"


def _evaluations(rp: ResolvedPolicy, name: str) -> list[ResolvedNsg]:
    vnets: list[str | None] = list(rp.attachment_vnets(name)) or [None]
    return [rp.nsg(name, v) for v in vnets]


def show_text(rp: ResolvedPolicy) -> str:
    p = rp.policy
    pr = PolicyText(p)
    lines: list[str] = []
    sub = p.subscription or DEFAULT_SUBSCRIPTION
    smtp = "blocks" if blocks_smtp(sub) else "does not block"
    default = "" if p.subscription else " (default)"
    lines.append(f"policy {p.source}: subscription {sub.value}{default}, which {smtp} outbound TCP 25 to the Internet")
    for n in p.notes:
        lines.append(f"  note: {n}")
    for v in p.vnets:
        lines.append("")
        lines.append(f"vnet {v.name}  {', '.join(cidr_text(c) for c in v.address_spaces)}")
        if v.peerings:
            lines.append(f"  peered with {', '.join(r.name for r in v.peerings)}")
        if v.onprem:
            lines.append(f"  on-premises {', '.join(cidr_text(c) for c in v.onprem)}")
        lines.append(f"  VirtualNetwork here = {describe_ips(rp.virtual_network_tag[v.name], DESCRIBE_LIMIT)}")
        for s in v.subnets:
            nsg_text = f"  nsg {s.nsg.name}" if s.nsg else "  (no NSG)"
            lines.append(f"  subnet {v.name}/{s.name}  {', '.join(cidr_text(c) for c in s.prefixes)}{nsg_text}")
            for info in sorted((i for i in rp.ipcs.values() if i.vnet == v.name and i.subnet == s.name),
                               key=lambda i: i.key):
                ip = int_to_ip(info.ip) if info.ip is not None else "dynamic"
                asgs = f"  asg {', '.join(sorted(info.asgs))}" if info.asgs else ""
                nic_nsg = f"  nsg {info.nic_nsg}" if info.nic_nsg else ""
                lines.append(f"    nic {info.key}  {ip}{asgs}{nic_nsg}")
    if p.asgs:
        lines.append("")
        lines.append("application security groups")
        for a in p.asgs:
            members = sorted(str(i.key) for i in rp.ipcs.values() if a.name in i.asgs)
            lines.append(f"  {a.name}: {', '.join(members) if members else '(no members)'}")
    for nsg in p.nsgs:
        lines.append("")
        where = rp.attachments(nsg.name)
        lines.append(f"nsg {nsg.name}  attached to {', '.join(where) if where else 'nothing'}")
        for ev in _evaluations(rp, nsg.name):
            for d in (Direction.INBOUND, Direction.OUTBOUND):
                in_vnet = (
                    f" (in VNet {ev.vnet})" if ev.vnet else " (not attached: VirtualNetwork/Internet without a VNet)"
                )
                lines.append(f"  {d.value.lower()}{in_vnet}")
                rows = [_row(rp, pr, r) for r in ev.rules(d)]
                widths = [max(len(row[i]) for row in rows) for i in range(4)]
                for row in rows:
                    lines.append(
                        "    " + "  ".join(c.ljust(widths[i]) if i < 4 else c for i, c in enumerate(row)).rstrip()
                    )
    if p.admin_configs or p.groups:
        lines += _admin_text(rp, pr)
    for q in p.queries:
        if q is p.queries[0]:
            lines.append("")
            lines.append("queries")
        lines.append(f"  {q.text or pr.query(q)}")
    return "\n".join(lines) + "\n"


def _admin_text(rp: ResolvedPolicy, pr: PolicyText) -> list[str]:
    """The security admin layer (AVNM): groups, collections, then per VNet and direction the admin rules
    Azure evaluates before its NSGs, in evaluation order, resolved in that VNet."""
    p = rp.policy
    lines = ["", "security admin rules (Azure Virtual Network Manager; evaluated before the NSGs, taken as deployed)"]
    for g in p.groups:
        lines.append(f"  group {g.name}: {', '.join(m.name for m in g.members) or '(no members)'}")
    for c in p.admin_configs:
        for rc in c.collections:
            lines.append(f"  {c.name}/{rc.name} applies to {', '.join(g.name for g in rc.groups) or 'no group'}")
    for v in p.vnets:
        for d in (Direction.INBOUND, Direction.OUTBOUND):
            layer = rp.admin_layer(v.name, d)
            if layer is None:
                continue
            lines.append(f"  vnet {v.name} {d.value.lower()}")
            rows = [_row(rp, pr, r) + [f"  ({r.admin_rule.config}/{r.admin_rule.collection})"] for r in layer.rules]
            rows.append(["", "", "(no match)", "", "the NSGs decide", ""])
            widths = [max(len(row[i]) for row in rows) for i in range(4)]
            for row in rows:
                cols = "  ".join(c.ljust(widths[i]) if i < 4 else c for i, c in enumerate(row[:5]))
                lines.append("    " + cols.rstrip() + row[5])
    return lines


def _side_text(pr: PolicyText, rule, which: str) -> str:
    if isinstance(rule, AdminRule):
        return pr.admin_side(rule.sources if which == "src" else rule.destinations) or "(no address)"
    side = rule.source if which == "src" else rule.destination
    return pr.side(side) or "(no address)"


def _briefly(written: str, resolved: str) -> str:
    # "any = 0.0.0.0/0" and "10.0.0.0/16 = 10.0.0.0/16" say nothing twice.
    if written == "any" or written == resolved:
        return written
    return f"{written} = {resolved}"


def _port_text(ports) -> str:
    return "" if ports is None else f" port {describe_ports(ports)}"


def _ports(ports) -> str:
    return "*" if ports is None else describe_ports(ports)


def _row(rp: ResolvedPolicy, pr: PolicyText, r: ResolvedRule) -> list[str]:
    rule = r.rule
    default = "  [default]" if rule.is_default else ""
    src = f"from {_briefly(_side_text(pr, rule, 'src'), _addr(rp, r.src))}{_port_text(r.sports)}"
    dst = f"to {_briefly(_side_text(pr, rule, 'dst'), _addr(rp, r.dst))}{_port_text(r.dports)}"
    return [str(rule.priority), rule.access.value, rule.name, rule.protocol.value, f"{src}  {dst}{default}"]


def _rule_dict(rp: ResolvedPolicy, pr: PolicyText, r: ResolvedRule) -> dict:
    rule = r.rule
    return {
        "priority": rule.priority, "name": rule.name, "access": rule.access.value, "protocol": rule.protocol.value,
        "source": _side_text(pr, rule, "src"), "source_addresses": _addr(rp, r.src, None),
        "source_ports": _ports(r.sports),
        "destination": _side_text(pr, rule, "dst"), "destination_addresses": _addr(rp, r.dst, None),
        "destination_ports": _ports(r.dports),
        "description": rule.description, "default": rule.is_default,
        "location": span_dict(rule.span),
    }


def show_dict(rp: ResolvedPolicy) -> dict:
    """The ``show`` JSON document's payload (docs/json.md)."""
    p = rp.policy
    pr = PolicyText(p)
    sub = p.subscription or DEFAULT_SUBSCRIPTION
    return {
        "source": p.source,
        "subscription": sub.value,
        "smtp_blocked": blocks_smtp(sub),
        "vnets": [{
            "name": v.name, "address_spaces": [cidr_text(c) for c in v.address_spaces],
            "peerings": [r.name for r in v.peerings], "onprem": [cidr_text(c) for c in v.onprem],
            # "prefix" is the first of "prefixes" (kept for readers written before subnets had several).
            "subnets": [{"name": s.name, "prefix": cidr_text(s.prefix), "prefixes": [cidr_text(c) for c in s.prefixes],
                         "nsg": s.nsg.name if s.nsg else None}
                        for s in v.subnets],
        } for v in p.vnets],
        "nics": [{
            "name": str(i.key), "subnet": i.subnet_label, "ip": int_to_ip(i.ip) if i.ip is not None else None,
            "asgs": sorted(i.asgs), "nsg": i.nic_nsg,
        } for i in sorted(rp.ipcs.values(), key=lambda i: i.key)],
        "asgs": [{"name": a.name, "members": sorted(str(i.key) for i in rp.ipcs.values() if a.name in i.asgs)}
                 for a in p.asgs],
        "nsgs": [{
            "name": n.name, "attached_to": rp.attachments(n.name),
            "evaluations": [{
                "vnet": ev.vnet,
                "inbound": [_rule_dict(rp, pr, r) for r in ev.inbound],
                "outbound": [_rule_dict(rp, pr, r) for r in ev.outbound],
            } for ev in _evaluations(rp, n.name)],
        } for n in p.nsgs],
        "queries": [q.text or pr.query(q) for q in p.queries],
        "network_groups": [{"name": g.name, "members": [m.name for m in g.members]} for g in p.groups],
        "admin_configurations": [{
            "name": c.name,
            "collections": [{"name": rc.name, "applies_to": [g.name for g in rc.groups]} for rc in c.collections],
        } for c in p.admin_configs],
        # Per VNet and direction, the admin rules in evaluation order as they resolve there.
        "admin_layers": [{
            "vnet": v.name, "direction": d.value,
            "rules": [dict(_rule_dict(rp, pr, r), configuration=r.admin_rule.config,
                           collection=r.admin_rule.collection)
                      for r in layer.rules],
        } for v in p.vnets for d in (Direction.INBOUND, Direction.OUTBOUND)
            if (layer := rp.admin_layer(v.name, d)) is not None],
    }


__all__ = ["show_dict", "show_text"]
