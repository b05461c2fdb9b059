"""``verify --flows`` output for the vectorised engine (:mod:`nsgsolve.semantics.flows`).

Byte for byte what rendering each flow's :class:`~nsgsolve.semantics.evaluate.FlowResult` would give
(``reports.json.dumps("verify", r.to_dict(), indent=None)``; the tests hold them equal), assembled from
pieces instead: the packet's fields from per-value strings, the rest (endpoints, decision, trace, notes)
once per distinct trace, since a 1,000-rule policy has thousands of distinct traces and building a
FlowResult per flow would cost more than deciding all of them.
"""

from __future__ import annotations

import json

import numpy as np

from nsgsolve.model import PROTOCOL_BY_NUMBER, Access
from nsgsolve.reports.json import schema_id
from nsgsolve.semantics.addresses import int_to_ip
from nsgsolve.semantics.evaluate import TraceStep

_PORTS: np.ndarray | None = None


def _port_texts() -> np.ndarray:
    global _PORTS
    if _PORTS is None:
        _PORTS = np.array([str(i) for i in range(65536)], dtype=object)
    return _PORTS


def _tails(d) -> tuple[list[str], np.ndarray]:
    """Per distinct trace: everything after the packet's fields; and each flow's trace id."""
    dumps = json.dumps
    first, inverse = d.trace_ids()
    fixed: dict[int, str] = {}
    ruled: dict[tuple[int, int], str] = {}
    tails = []
    for i in first.tolist():
        g = int(d.group[i])
        t = d.templates[g]
        parts, k = [], 0
        for s in t.steps:
            if isinstance(s, TraceStep):
                frag = fixed.get(id(s))
                if frag is None:
                    frag = fixed[id(s)] = dumps(s.to_dict())
            else:
                r = int(d.rules[i, k])
                k += 1
                frag = ruled.get((id(s), r))
                if frag is None:
                    rule = s.nsg.rules(s.direction)[r]
                    frag = ruled[(id(s), r)] = dumps(TraceStep(s.nsg.name, s.attached_to, s.direction, rule.name,
                                                               rule.priority, rule.access).to_dict())
            parts.append(frag)
        decision = Access.ALLOW if d.allowed[i] else Access.DENY
        src_nic = dumps(str(t.src) if t.src else None)
        dst_nic = dumps(str(t.dst) if t.dst else None)
        tails.append(f'"src_nic": {src_nic}, "dst_nic": {dst_nic}, "decision": {dumps(decision.value)}, '
                     f'"trace": [{", ".join(parts)}], "notes": {dumps(list(t.notes))}}}\n')
    return tails, inverse


def json_lines(d) -> list[str]:
    """One ``verify`` JSON document per flow of ``d`` (a :class:`~nsgsolve.semantics.flows.Decisions`)."""
    if len(d) == 0:
        return []
    dumps = json.dumps
    c = d.columns
    tails, inverse = _tails(d)
    src = np.array([dumps(int_to_ip(v)) for v in c.src_values.tolist()], dtype=object)[c.src_inv]
    dst = np.array([dumps(int_to_ip(v)) for v in c.dst_values.tolist()], dtype=object)[c.dst_inv]
    names = [PROTOCOL_BY_NUMBER[p].value if p in PROTOCOL_BY_NUMBER else str(p) for p in c.proto_values.tolist()]
    proto = np.array([dumps(n) for n in names], dtype=object)[c.proto_inv]
    texts = _port_texts()
    sport = np.where(c.has_ports, texts[c.sport], "null")
    dport = np.where(c.has_ports, texts[c.dport], "null")
    head = f'{{"schema": {dumps(schema_id("verify"))}, "src": '
    lines = (head + src + ', "dst": ' + dst + ', "protocol": ' + proto + ', "sport": ' + sport + ', "dport": '
             + dport + ", " + np.array(tails, dtype=object)[inverse])
    return lines.tolist()
