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
from nsgsolve.model import Direction
from nsgsolve.semantics.evaluate import TraceStep, mark_not_evaluated
from nsgsolve.semantics.resolve import AdminLayer

# A denying step that marks what follows it as not evaluated (only its access matters).
_DENY_MARK = TraceStep(None, "platform", Direction.INBOUND, "", None, Access.DENY, layer="platform")

_PORTS: tuple[np.ndarray, np.ndarray] | None = None


def _port_texts() -> tuple[np.ndarray, np.ndarray]:
    """Every port as a source port (with the key that follows it) and as a destination port."""
    global _PORTS
    if _PORTS is None:
        _PORTS = (np.array([f'{i}, "dport": ' for i in range(65536)], dtype=object),
                  np.array([f"{i}, " for i in range(65536)], dtype=object))
    return _PORTS


def _tails(d) -> tuple[list[str], np.ndarray]:
    """Per distinct trace: everything after the packet's fields; and each flow's trace id."""
    dumps = json.dumps
    first, inverse = d.trace_ids()
    fixed: dict[tuple[int, bool], str] = {}
    ruled: dict[tuple[int, int, bool], str] = {}
    ends: dict[int, tuple[str, str]] = {}  # per group: the endpoints before the decision, the notes after the trace
    decisions = {True: dumps(Access.ALLOW.value), False: dumps(Access.DENY.value)}
    tails = []
    for g, rules, allowed in zip(d.group[first].tolist(), d.rules[first].tolist(), d.allowed[first].tolist()):
        t = d.templates[g]
        parts, k = [], 0
        denied = False  # after the first deny, steps are kept but marked (evaluate.mark_not_evaluated)
        if any(isinstance(s, AdminLayer) for s in t.steps):
            # An admin layer can mark the NSGs of a direction skipped: the engine's own trace, step by step.
            parts = [dumps(step.to_dict()) for step in d._steps(g, rules)]
        for s in (t.steps if not parts else ()):
            if isinstance(s, TraceStep):
                key = (id(s), denied)
                frag = fixed.get(key)
                if frag is None:
                    frag = fixed[key] = dumps((mark_not_evaluated([_DENY_MARK, s])[1] if denied else s).to_dict())
                access = s.access
            else:
                r = rules[k]
                k += 1
                rule = s.nsg.rules(s.direction)[r]
                access = rule.access
                frag = ruled.get((id(s), r, denied))
                if frag is None:
                    step = TraceStep(s.nsg.name, s.attached_to, s.direction, rule.name, rule.priority, rule.access)
                    if denied:
                        step = mark_not_evaluated([_DENY_MARK, step])[1]
                    frag = ruled[(id(s), r, denied)] = dumps(step.to_dict())
            denied = denied or access is Access.DENY
            parts.append(frag)
        end = ends.get(g)
        if end is None:
            src_nic = dumps(str(t.src) if t.src else None)
            dst_nic = dumps(str(t.dst) if t.dst else None)
            end = ends[g] = (f'"src_nic": {src_nic}, "dst_nic": {dst_nic}, "decision": ',
                             f'], "notes": {dumps(list(t.notes))}}}\n')
        tails.append(f'{end[0]}{decisions[bool(allowed)]}, "trace": [{", ".join(parts)}{end[1]}')
    return tails, inverse


def json_chunks(d, size: int = 4096):
    """The ``verify`` JSON document of every flow of ``d`` (a :class:`~nsgsolve.semantics.flows.Decisions`),
    one line each, joined ``size`` flows at a time: the whole output of 400,000 flows is about 320 MB of
    text, so it is never held at once. A chunk of a few MB is reused by the allocator from one to the next
    (and stays in cache); chunks of 50 MB were fresh pages each time, and faulting them in cost more than
    joining and writing the text (measured in bench/README.md)."""
    if len(d) == 0:
        return
    dumps = json.dumps
    c = d.columns
    tail_list, inverse = _tails(d)
    tails = np.array(tail_list, dtype=object)
    # Each field with the constant text that follows it, so a line is six pieces joined once.
    head = f'{{"schema": {dumps(schema_id("verify"))}, "src": '
    src_text = np.array([f"{head}{dumps(int_to_ip(v))}, \"dst\": " for v in c.src_values.tolist()], dtype=object)
    dst_text = np.array([f'{dumps(int_to_ip(v))}, "protocol": ' for v in c.dst_values.tolist()], dtype=object)
    names = [PROTOCOL_BY_NUMBER[p].value if p in PROTOCOL_BY_NUMBER else str(p) for p in c.proto_values.tolist()]
    proto_text = np.array([f'{dumps(n)}, "sport": ' for n in names], dtype=object)
    sports, dports = _port_texts()
    no_sport = np.array(['null, "dport": '], dtype=object)
    no_dport = np.array(["null, "], dtype=object)
    for a in range(0, len(d), size):
        z = slice(a, a + size)
        hp = c.has_ports[z]
        # Every line's pieces side by side in one object array, joined once: no intermediate strings.
        pieces = np.empty((len(hp), 6), dtype=object)
        pieces[:, 0] = src_text[c.src_inv[z]]
        pieces[:, 1] = dst_text[c.dst_inv[z]]
        pieces[:, 2] = proto_text[c.proto_inv[z]]
        pieces[:, 3] = np.where(hp, sports[c.sport[z]], no_sport)
        pieces[:, 4] = np.where(hp, dports[c.dport[z]], no_dport)
        pieces[:, 5] = tails[inverse[z]]
        yield "".join(pieces.ravel().tolist())


def json_lines(d) -> list[str]:
    """One ``verify`` JSON document per flow of ``d``, as a list (for tests and small inputs)."""
    return [line + "\n" for chunk in json_chunks(d) for line in chunk.split("\n") if line]
