"""``verify --flows`` output for the vectorised engine (:mod:`nsgsolve.semantics.flows`).

Byte for byte what rendering each flow's :class:`~nsgsolve.semantics.evaluate.FlowResult` would give
(``reports.json.dumps("verify", r.to_dict(), indent=None)``; the tests hold them equal), assembled from
pieces instead: a line is four precomputed texts joined once, the fields up to the source port (once per
distinct source, destination and protocol), the source port, the destination port, and the rest
(endpoints, decision, trace, notes: once per distinct trace, since a 1,000-rule policy has thousands of
distinct traces and building a FlowResult per flow would cost more than deciding all of them).
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

NO_PORTS = 65536  # the index of "null" in the port texts: a flow whose protocol has no ports
_PORTS: tuple[np.ndarray, np.ndarray] | None = None


def port_texts() -> tuple[np.ndarray, np.ndarray]:
    """Every port as a source port (with the key that follows it) and as a destination port, and at
    index NO_PORTS the null of a flow without ports."""
    global _PORTS
    if _PORTS is None:
        _PORTS = (np.array([f'{i}, "dport": ' for i in range(65536)] + ['null, "dport": '], dtype=object),
                  np.array([f"{i}, " for i in range(65536)] + ["null, "], dtype=object))
    return _PORTS


def _marked(step: TraceStep) -> TraceStep:
    """``step`` after a layer that denied."""
    return mark_not_evaluated([_DENY_MARK, step])[1]


def _tails(d) -> tuple[list[str], np.ndarray]:
    """Per distinct trace: everything after the packet's fields; and each flow's trace id."""
    dumps = json.dumps
    first, inverse = d.trace_ids()
    decisions = {True: dumps(Access.ALLOW.value), False: dumps(Access.DENY.value)}
    # Per group (the steps met, the notes): what comes before the decision, what comes after the trace, and
    # its steps, each a fixed step's two texts (as decided, and after a deny) with whether it denies, or a
    # layer's rules with its cache of rule texts (shared by every group that meets the layer).
    plans: dict[int, tuple] = {}
    layer_texts: dict[int, dict[tuple[int, bool], tuple[str, bool]]] = {}
    tails = []
    for g, rules, allowed in zip(d.group[first].tolist(), d.rules[first].tolist(), d.allowed[first].tolist()):
        plan = plans.get(g)
        if plan is None:
            plan = plans[g] = _plan(d.templates[g], layer_texts)
        before, after, steps = plan
        if steps is None:
            # An admin layer can mark the NSGs of a direction skipped: the engine's own trace, step by step.
            parts = [dumps(step.to_dict()) for step in d._steps(g, rules)]
        else:
            parts, k = [], 0
            denied = False  # after the first deny, steps are kept but marked (evaluate.mark_not_evaluated)
            for fixed, layer, texts in steps:
                if fixed is not None:
                    frag, denies = fixed[denied]
                else:
                    r = rules[k]
                    k += 1
                    got = texts.get((r, denied))
                    if got is None:
                        rule = layer.nsg.rules(layer.direction)[r]
                        step = TraceStep(layer.nsg.name, layer.attached_to, layer.direction, rule.name,
                                         rule.priority, rule.access)
                        got = texts[(r, denied)] = (dumps((_marked(step) if denied else step).to_dict()),
                                                    rule.access is Access.DENY)
                    frag, denies = got
                denied = denied or denies
                parts.append(frag)
        tails.append(f'{before}{decisions[bool(allowed)]}, "trace": [{", ".join(parts)}{after}')
    return tails, inverse


def _plan(t, layer_texts: dict) -> tuple[str, str, list | None]:
    """What :func:`_tails` needs of template ``t``, computed once per group (None steps: an admin layer)."""
    dumps = json.dumps
    before = (f'"src_nic": {dumps(str(t.src) if t.src else None)}, '
              f'"dst_nic": {dumps(str(t.dst) if t.dst else None)}, "decision": ')
    after = f'], "notes": {dumps(list(t.notes))}}}\n'
    if any(isinstance(s, AdminLayer) for s in t.steps):
        return before, after, None
    steps: list[tuple] = []
    for s in t.steps:
        if isinstance(s, TraceStep):
            denies = s.access is Access.DENY
            steps.append((((dumps(s.to_dict()), denies), (dumps(_marked(s).to_dict()), denies)), None, None))
        else:
            steps.append((None, s, layer_texts.setdefault(id(s), {})))
    return before, after, steps


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
    head_first, head_of = d.packet_ids()
    src = [dumps(int_to_ip(v)) for v in c.src_values.tolist()]
    dst = [dumps(int_to_ip(v)) for v in c.dst_values.tolist()]
    proto = [dumps(PROTOCOL_BY_NUMBER[p].value if p in PROTOCOL_BY_NUMBER else str(p))
             for p in c.proto_values.tolist()]
    schema = dumps(schema_id("verify"))
    heads = np.array([f'{{"schema": {schema}, "src": {src[s]}, "dst": {dst[t]}, "protocol": {proto[p]}, "sport": '
                      for s, t, p in zip(c.src_inv[head_first].tolist(), c.dst_inv[head_first].tolist(),
                                         c.proto_inv[head_first].tolist())], dtype=object)
    sports, dports = port_texts()
    sport = np.where(c.has_ports, c.sport, NO_PORTS)
    dport = np.where(c.has_ports, c.dport, NO_PORTS)
    for a in range(0, len(d), size):
        z = slice(a, a + size)
        # Every line's pieces side by side in one object array, joined once: no intermediate strings.
        pieces = np.empty((len(sport[z]), 4), dtype=object)
        pieces[:, 0] = heads[head_of[z]]
        pieces[:, 1] = sports[sport[z]]
        pieces[:, 2] = dports[dport[z]]
        pieces[:, 3] = tails[inverse[z]]
        yield "".join(pieces.ravel().tolist())


def json_lines(d) -> list[str]:
    """One ``verify`` JSON document per flow of ``d``, as a list (for tests and small inputs)."""
    return [line + "\n" for chunk in json_chunks(d) for line in chunk.split("\n") if line]
