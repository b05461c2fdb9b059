"""``nsgsolve show``: the resolved model - topology, and every NSG's rules as Azure evaluates them."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from nsgsolve.semantics.addresses import describe_ips, describe_ports, int_to_ip
from nsgsolve.model import DEFAULT_SUBSCRIPTION, Direction, Rule
from nsgsolve.lang.printer import _Printer, cidr_text
from nsgsolve.semantics.resolve import AddrSet, ResolvedNsg, ResolvedPolicy, ResolvedRule
from nsgsolve.semantics.platform import blocks_smtp
from nsgsolve.commands.common import add_policy_args, formatter, load_and_resolve

EPILOG = """examples:
  nsgsolve show examples/webservers.nsg
  nsgsolve show examples/hub-spoke.nsg --json | jq '.nsgs[].attached_to'
  nsgsolve show nsgs.json vnets.json nics.json     # az network nsg/vnet/nic list output, one policy
  nsgsolve show POLICY --service-tags ServiceTags_Public_YYYYMMDD.json   # placeholders: your files

For every NSG: where it is attached, then its rules per direction in evaluation order (priority order,
Azure's six default rules last). An NSG attached in several VNets is shown once per VNet, because
VirtualNetwork and Internet mean different addresses there. Address sets are shortened; --json has them all.

exit status: 0 shown, 2 invalid input."""

DESCRIBE_LIMIT = 4


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show the resolved model: topology and NSG rules in evaluation order",
                       description="Show VNets, subnets, NICs (addresses, ASGs, NSGs) and every NSG with where it is "
                                   "attached and its rules in evaluation order, default rules included, with the "
                                   "addresses each rule side resolves to.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p)
    p.add_argument("--json", action="store_true", help="JSON output (full address lists)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rp = load_and_resolve(args, err)
    if args.json:
        out.write(json.dumps(to_dict(rp), indent=2) + "\n")
    else:
        out.write(show_text(rp))
    return 0


def _addr(rp: ResolvedPolicy, s: AddrSet, limit: int | None = DESCRIBE_LIMIT) -> str:
    parts = []
    if s.intervals:
        parts.append(describe_ips(s.intervals, limit) if limit else describe_ips(s.intervals, 10**9))
    parts += [f"{k} (dynamic)" for k in sorted(s.members)]
    return ", ".join(parts) if parts else "(no addresses)"


def _evaluations(rp: ResolvedPolicy, name: str) -> list[ResolvedNsg]:
    return [rp.nsg(name, v) for v in rp.attachment_vnets(name) or [None]]


def show_text(rp: ResolvedPolicy) -> str:
    p = rp.policy
    pr = _Printer(p)
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
            nsg = f"  nsg {s.nsg.name}" if s.nsg else "  (no NSG)"
            lines.append(f"  subnet {v.name}/{s.name}  {cidr_text(s.prefix)}{nsg}")
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
                in_vnet = f" (in VNet {ev.vnet})" if ev.vnet else " (not attached: VirtualNetwork/Internet without a VNet)"
                lines.append(f"  {d.value.lower()}{in_vnet}")
                rows = [_row(rp, pr, r) for r in ev.rules(d)]
                widths = [max(len(row[i]) for row in rows) for i in range(4)]
                for row in rows:
                    lines.append("    " + "  ".join(c.ljust(widths[i]) if i < 4 else c for i, c in enumerate(row)).rstrip())
    for q in p.queries:
        if q is p.queries[0]:
            lines.append("")
            lines.append("queries")
        lines.append(f"  {q.text or pr.query(q)}")
    return "\n".join(lines) + "\n"


def _side_text(pr: _Printer, rule: Rule, which: str) -> str:
    side = rule.source if which == "src" else rule.destination
    return pr.side(side, [], "") or "(IPv6 only)"


def _briefly(written: str, resolved: str) -> str:
    # "any = 0.0.0.0/0" and "10.0.0.0/16 = 10.0.0.0/16" say nothing twice.
    if written == "any" or written == resolved:
        return written
    return f"{written} = {resolved}"


def _port_text(ports) -> str:
    return "" if ports is None else f" port {describe_ports(ports)}"


def _ports(ports) -> str:
    return "*" if ports is None else describe_ports(ports)


def _row(rp: ResolvedPolicy, pr: _Printer, r: ResolvedRule) -> list[str]:
    rule = r.rule
    default = "  [default]" if rule.is_default else ""
    src = f"from {_briefly(_side_text(pr, rule, 'src'), _addr(rp, r.src))}{_port_text(r.sports)}"
    dst = f"to {_briefly(_side_text(pr, rule, 'dst'), _addr(rp, r.dst))}{_port_text(r.dports)}"
    return [str(rule.priority), rule.access.value, rule.name, rule.protocol.value, f"{src}  {dst}{default}"]


def _rule_dict(rp: ResolvedPolicy, pr: _Printer, r: ResolvedRule) -> dict:
    rule = r.rule
    return {
        "priority": rule.priority, "name": rule.name, "access": rule.access.value, "protocol": rule.protocol.value,
        "source": _side_text(pr, rule, "src"), "source_addresses": _addr(rp, r.src, None),
        "source_ports": _ports(r.sports),
        "destination": _side_text(pr, rule, "dst"), "destination_addresses": _addr(rp, r.dst, None),
        "destination_ports": _ports(r.dports),
        "description": rule.description, "default": rule.is_default,
        "location": str(rule.span) if rule.span.line else None,
    }


def to_dict(rp: ResolvedPolicy) -> dict:
    p = rp.policy
    pr = _Printer(p)
    sub = p.subscription or DEFAULT_SUBSCRIPTION
    return {
        "source": p.source,
        "subscription": sub.value,
        "smtp_blocked": blocks_smtp(sub),
        "vnets": [{
            "name": v.name, "address_spaces": [cidr_text(c) for c in v.address_spaces],
            "peerings": [r.name for r in v.peerings], "onprem": [cidr_text(c) for c in v.onprem],
            "subnets": [{"name": s.name, "prefix": cidr_text(s.prefix), "nsg": s.nsg.name if s.nsg else None}
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
    }
