"""The vectorised concrete engine: many flows decided at once, with the same answers and traces as the
reference evaluator (:mod:`nsgsolve.semantics.evaluate`), which stays the specification.

Use::

    engine = FlowEngine(rp, assignment)                     # compile once per resolved policy
    d = engine.decide(proto, src, sport, dst, dport)        # numpy arrays, one element per flow
    d.allowed[i]; d.layer_rules(i); d.result(i)
    nsgsolve.reports.flows.json_lines(d)                   # verify's JSON Lines, without a FlowResult each

How: each NSG direction met by a flow is compiled once (:class:`CompiledLayer`) into sorted interval
tables, one per packet field, whose rows are bitsets of the rules a value satisfies, packed in uint64
words (bit i = rule i in evaluation order). A flow's matching rules are the AND of five rows; the
deciding rule is the lowest set bit. Flows are first reduced to their elementary-interval coordinates,
which repeat a lot in real traffic, so the bitset ANDs run once per distinct coordinate tuple.

The engine decides IPv4 flows (its columns are int64): ``verify --flows`` sends a file with IPv6 flows to
the reference evaluator, flow by flow (measured in bench/; correct first, and IPv6 flow files are rare).

Everything outside the rules (which layers a flow meets, the platform steps, the notes) depends only on
the two endpoints, on the kind of platform destination and on two per-flow address tests, so it is built
once per *group* of flows sharing them, by the same code paths the evaluator documents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

import numpy as np

from nsgsolve.model import Access, Direction
from nsgsolve.semantics.addresses import ALL_IPS, IntervalSet
from nsgsolve.semantics.evaluate import (Evaluator, FlowResult, Packet, TraceStep, mark_not_evaluated, path_steps,
                                         skipped_by_always_allow)
from nsgsolve.semantics.platform import HOST_SERVICES, SMTP_BLOCK
from nsgsolve.semantics.resolve import AdminLayer, IpcKey, Layer, ResolvedPolicy, ResolvedRule

_CHUNK = 1 << 15  # distinct coordinate tuples decided per batch: bounds the (chunk x words) temporaries


def _words(n: int) -> int:
    return (n + 63) // 64


def _pack(bits: np.ndarray) -> np.ndarray:
    """(rows, n) bool -> (rows, words) uint64 with rule i at bit i % 64 of word i // 64."""
    rows, n = bits.shape
    w = _words(n)
    padded = np.zeros((rows, w * 64), dtype=bool)
    padded[:, :n] = bits
    return np.packbits(padded.reshape(rows, w, 8, 8), axis=3, bitorder="little").reshape(rows, w * 8).view(np.uint64)


class _Axis:
    """Elementary intervals of one field: ``starts`` sorted (starting at 0), ``masks[k]`` the rules that
    every value in [starts[k], starts[k+1]) satisfies."""

    def __init__(self, n_rules: int, per_rule: Sequence[Iterable[tuple[int, int]]]):
        los, his, owner = [], [], []
        for i, intervals in enumerate(per_rule):
            for lo, hi in intervals:
                los.append(lo)
                his.append(hi + 1)
                owner.append(i)
        lo_a, hi_a = np.array(los, dtype=np.int64), np.array(his, dtype=np.int64)
        starts = np.unique(np.concatenate([[0], lo_a, hi_a]))
        # +1/-1 at each rule's interval ends, cumulated along the axis, says whether a cell is inside (a
        # rule's own intervals are disjoint, so its column never exceeds 1).
        delta = np.zeros((len(starts) + 1, n_rules), dtype=np.int8)
        own = np.array(owner, dtype=np.int64)
        np.add.at(delta, (np.searchsorted(starts, lo_a), own), 1)
        np.add.at(delta, (np.searchsorted(starts, hi_a), own), -1)
        inside = np.cumsum(delta[:-1], axis=0, dtype=np.int8) > 0
        self.starts = starts
        self.masks = _pack(inside)

    def index(self, x: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, x, side="right") - 1


class CompiledLayer:
    """One NSG in one direction, as tables: what :class:`~nsgsolve.semantics.classify.Classifier` does per
    flow, done per array."""

    def __init__(self, rules: tuple[ResolvedRule, ...], dyn_ids: Mapping[IpcKey, int], total: bool = True):
        """``total``: the rules end with a catch-all (an NSG's defaults); an admin layer has none, and a flow
        no rule matches gets the index ``n``."""
        self.rules = rules
        n = len(rules)
        self.n = n
        self.total = total
        full = ((0, 65535),)
        # IPv4 flows only (int64 columns; verify sends IPv6 flows to the reference evaluator): a rule's
        # IPv6 addresses (`*`, tags, IPv6 prefixes) can match none of them.
        self.src = _Axis(n, [r.src.intervals.intersection(ALL_IPS) for r in rules])
        self.dst = _Axis(n, [r.dst.intervals.intersection(ALL_IPS) for r in rules])
        self.sport = _Axis(n, [full if r.sports is None else tuple(r.sports) for r in rules])
        self.dport = _Axis(n, [full if r.dports is None else tuple(r.dports) for r in rules])
        proto = np.zeros((256, n), dtype=bool)
        src_dyn = np.zeros((len(dyn_ids) + 1, n), dtype=bool)  # row 0: not a dynamic endpoint
        dst_dyn = np.zeros_like(src_dyn)
        portless = np.zeros((1, n), dtype=bool)
        for i, r in enumerate(rules):
            if r.protocol is None:
                proto[:, i] = True
            else:
                proto[r.protocol, i] = True
            for k in r.src.members:
                if k in dyn_ids:
                    src_dyn[dyn_ids[k], i] = True
            for k in r.dst.members:
                if k in dyn_ids:
                    dst_dyn[dyn_ids[k], i] = True
            # A packet without ports (Icmp, Esp, ...) matches only rules whose port sets are both '*'.
            portless[0, i] = r.sports is None and r.dports is None
        self.proto = _pack(proto)
        self.src_dyn = _pack(src_dyn)
        self.dst_dyn = _pack(dst_dyn)
        self.portless = _pack(portless)[0]
        # What the deciding rule does, by index (n: no rule of an admin layer matched, which lets the flow on).
        codes = {Access.ALLOW: 0, Access.DENY: 1, Access.ALWAYS_ALLOW: 2}
        self.access_code = np.array([codes[r.access] for r in rules] + [0], dtype=np.int8)
        self._luts: tuple[np.ndarray, np.ndarray] | None = None

    def port_luts(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell index + 1 of every port 0-65535 (0 is kept for "no ports"): a gather instead of a search."""
        if self._luts is None:
            ports = np.arange(65536, dtype=np.int64)
            self._luts = (self.sport.index(ports) + 1, self.dport.index(ports) + 1)
        return self._luts

    def first_match(self, f: "_FlowColumns", idx: np.ndarray) -> np.ndarray:
        """Index (in evaluation order) of the deciding rule for flows ``idx`` of ``f``."""
        # Each end's cell, numbered among the cells the flows' distinct addresses meet: a handful, where the
        # axis has thousands, so the distinct address parts are counted in a table, not found by a sort.
        s_used, s_of = np.unique(self.src.index(f.src_values), return_inverse=True)
        d_used, d_of = np.unique(self.dst.index(f.dst_values), return_inverse=True)
        si = s_of.reshape(-1)[f.src_inv[idx]]
        di = d_of.reshape(-1)[f.dst_inv[idx]]
        sl, dl = self.port_luts()
        hp = f.has_ports[idx]
        spi = np.where(hp, sl[f.sport[idx]], 0)
        dpi = np.where(hp, dl[f.dport[idx]], 0)
        pi, sd, dd = f.proto_inv[idx], f.src_dyn[idx], f.dst_dyn[idx]
        # The match set factors into an address part and a protocol-and-ports part; each has far fewer
        # distinct values than the flows (a NIC's peers, a service's ports), so each is ANDed once per
        # distinct value, and a distinct flow costs one AND of two rows.
        a_first, a_inv = _distinct([si, di, sd, dd], [len(s_used), len(d_used), len(self.src_dyn), len(self.dst_dyn)])
        p_first, p_inv = _distinct([pi, spi, dpi], [len(f.proto_values), len(self.sport.starts) + 1,
                                                    len(self.dport.starts) + 1])
        addr = _rows(len(a_first), lambda z: (
            (self.src.masks[s_used[si[a_first[z]]]] | self.src_dyn[sd[a_first[z]]])
            & (self.dst.masks[d_used[di[a_first[z]]]] | self.dst_dyn[dd[a_first[z]]])))
        proto_rows = self.proto[f.proto_values]

        def ports(z: slice) -> np.ndarray:
            sp, dp = spi[p_first[z]], dpi[p_first[z]]
            both = self.sport.masks[np.maximum(sp - 1, 0)] & self.dport.masks[np.maximum(dp - 1, 0)]
            return proto_rows[pi[p_first[z]]] & np.where((sp > 0)[:, None], both, self.portless[None, :])

        port = _rows(len(p_first), ports)
        # Distinct (address, ports) pairs are worth finding when a table finds them; a sort of the pairs (random
        # source ports make most of them distinct) cost more than the ANDs it saved.
        by_table = _by_table(len(a_first) * len(p_first), len(idx))
        first, inverse = _distinct([a_inv, p_inv], [len(a_first), len(p_first)]) if by_table else (None, None)
        a, p = (a_inv[first], p_inv[first]) if by_table else (a_inv, p_inv)
        out = np.empty(len(a), dtype=np.int32)
        for b in range(0, len(a), _CHUNK):
            z = slice(b, b + _CHUNK)
            out[z] = _lowest_bit(addr[a[z]] & port[p[z]], None if self.total else self.n)
        return out[inverse] if by_table else out


def _rows(n: int, make) -> np.ndarray:
    """``make(slice)`` for the rows 0..n, built _CHUNK rows at a time (bounds the temporaries of each AND)."""
    if n <= _CHUNK:
        return make(slice(0, n))
    return np.concatenate([make(slice(a, a + _CHUNK)) for a in range(0, n, _CHUNK)])


def flow_columns(proto: np.ndarray, src: np.ndarray, sport: np.ndarray, dst: np.ndarray, dport: np.ndarray,
                 src_dyn: np.ndarray, dst_dyn: np.ndarray) -> "_FlowColumns":
    """Flows as :meth:`CompiledLayer.first_match` reads them (ports are zeroed where the protocol has none;
    ``*_dyn``: the id of the dynamic IP configuration at that end, 0 for none)."""
    has_ports = (proto == 6) | (proto == 17)
    pv, pinv = np.unique(proto, return_inverse=True)
    sv, sinv = np.unique(src, return_inverse=True)
    dv, dinv = np.unique(dst, return_inverse=True)
    return _FlowColumns(pv, pinv.reshape(-1), sv, sinv.reshape(-1), dv, dinv.reshape(-1),
                        np.where(has_ports, sport, 0), np.where(has_ports, dport, 0), has_ports, src_dyn, dst_dyn)


@dataclass
class _FlowColumns:
    """The flows of one :meth:`FlowEngine.decide`, with addresses and protocols factored once so that
    each layer looks up only the distinct values."""

    proto_values: np.ndarray
    proto_inv: np.ndarray
    src_values: np.ndarray
    src_inv: np.ndarray
    dst_values: np.ndarray
    dst_inv: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    has_ports: np.ndarray
    src_dyn: np.ndarray
    dst_dyn: np.ndarray


def _distinct(cols: Sequence[np.ndarray], radices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(index of one representative per distinct row, distinct-row id per element) for the rows formed by
    ``cols``, where column j holds values in [0, radices[j]). Rows are packed into one int64 key (1-D sort:
    far faster than numpy's unique over an axis), compacting the key only when it would overflow: one sort
    of the packed key costs less than the several a compaction per column needs."""
    code = np.zeros(len(cols[0]), dtype=np.int64)
    span = 1
    for c, r in zip(cols, radices):
        if r == 1:
            continue
        if span * r >= 1 << 62:
            first, code = _distinct_1d(code, span)
            span = len(first)
        code = code * r + c
        span *= r
    return _distinct_1d(code, span)


def _by_table(span: int, n: int) -> bool:
    """Whether :func:`_distinct_1d` finds the distinct values of ``n`` codes in [0, span) by a table."""
    return span <= max(4 * n, 1 << 16)


def _distinct_1d(code: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(code, return_index=True, return_inverse=True) for codes in [0, span), ids in code order;
    any member of a run represents it. A table when the span is within a few times the length, else a quicksort
    (several times faster than the mergesort np.unique needs for return_index)."""
    if len(code) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if _by_table(span, len(code)):
        seen = np.zeros(span, dtype=bool)
        seen[code] = True
        ids = np.cumsum(seen) - 1
        inverse = ids[code]
        first = np.empty(int(ids[-1]) + 1, dtype=np.int64)
        first[inverse] = np.arange(len(code))
        return first, inverse
    order = np.argsort(code)
    sc = code[order]
    new = np.empty(len(code), dtype=bool)
    new[0] = True
    np.not_equal(sc[1:], sc[:-1], out=new[1:])
    ids = np.cumsum(new) - 1
    inverse = np.empty(len(code), dtype=np.int64)
    inverse[order] = ids
    return order[new], inverse


def _lowest_bit(m: np.ndarray, none: int | None = None) -> np.ndarray:
    """The lowest set bit of each row; ``none`` for a row without one (None: every row has one)."""
    nonzero = m != 0
    word = np.argmax(nonzero, axis=1)
    found = nonzero[np.arange(len(m)), word]
    if none is None and not found.all():  # pragma: no cover - the default rules match everything
        raise AssertionError("a flow matched no rule, not even a default one")
    w = m[np.arange(len(m)), word]
    low = w & (~w + np.uint64(1))
    # An isolated bit is a power of two, exact in float64; frexp reads its exponent without rounding.
    bit = np.frexp(low.astype(np.float64))[1] - 1
    out = (word * 64 + bit).astype(np.int32)
    if none is not None:
        out[~found] = none
    return out


@dataclass(frozen=True)
class _Template:
    """What a group of flows shares: the steps in trace order (a Layer to decide, or a fixed platform
    step) and the notes."""

    steps: tuple[Layer | AdminLayer | TraceStep, ...]
    notes: tuple[str, ...]
    src: IpcKey | None
    dst: IpcKey | None

    @property
    def layers(self) -> tuple[Layer | AdminLayer, ...]:
        """The steps a rule decides per flow (NSG layers, and admin layers where AVNM applies)."""
        return tuple(s for s in self.steps if not isinstance(s, TraceStep))


# A flow's "kind" is 0, or 1 + the index in HOST_SERVICES of the host service it goes to.
_KINDS = len(HOST_SERVICES) + 1
# source NIC and subnet outbound, destination subnet and NIC inbound, and an admin layer for each direction
MAX_LAYERS = 6


def _in_set(x: np.ndarray, s: IntervalSet) -> np.ndarray:
    s = s.intersection(ALL_IPS)  # an address set's IPv4 part (the columns are IPv4); ports, protocols as they are
    los = np.fromiter((lo for lo, _ in s), dtype=np.int64)
    his = np.fromiter((hi for _, hi in s), dtype=np.int64)
    i = np.searchsorted(los, x, side="right") - 1
    return (i >= 0) & (x <= his[np.maximum(i, 0)])


class Decisions:
    """The outcome of :meth:`FlowEngine.decide` for N flows.

    ``allowed[i]``: the decision. ``group[i]`` indexes ``templates`` (the layers and platform steps met,
    the notes); ``rules[i, k]`` is the deciding rule's index (in evaluation order) in the k-th *layer* of
    that template, -1 past its last layer."""

    def __init__(self, engine: "FlowEngine", arrays: dict[str, np.ndarray], templates: list[_Template],
                 group: np.ndarray, rules: np.ndarray, allowed: np.ndarray, fixed_deny: np.ndarray,
                 columns: "_FlowColumns"):
        self.engine = engine
        self.columns = columns  # distinct addresses and protocols with their inverse indices, for reports
        self.fixed_deny = fixed_deny
        self.arrays = arrays
        self.templates = templates
        self.group = group
        self.rules = rules
        self.allowed = allowed

    def __len__(self) -> int:
        return len(self.allowed)

    def layer_rules(self, i: int) -> list[tuple[Layer, ResolvedRule]]:
        """The NSG layers flow ``i`` met, each with the rule that decided there."""
        t = self.templates[self.group[i]]
        return [(l, l.nsg.rules(l.direction)[self.rules[i, k]]) for k, l in enumerate(t.layers)
                if isinstance(l, Layer)]

    def packet(self, i: int) -> Packet:
        a = self.arrays
        if a["has_ports"][i]:
            return Packet(
                int(a["proto"][i]), int(a["src"][i]), int(a["sport"][i]), int(a["dst"][i]), int(a["dport"][i])
            )
        return Packet(int(a["proto"][i]), int(a["src"][i]), None, int(a["dst"][i]), None)

    def _steps(self, group: int, rules: Sequence[int]) -> tuple[TraceStep, ...]:
        """The trace of a flow of ``group`` decided by ``rules``, as the evaluator builds it: an AlwaysAllow
        admin rule marks the later steps of its direction skipped (the platform's TCP 25 block excepted),
        and a Deny marks everything after it not evaluated."""
        steps, k = [], 0
        skip: dict[Direction, str] = {}
        for s in self.templates[group].steps:
            if isinstance(s, TraceStep):
                step = s
            elif isinstance(s, AdminLayer):
                idx = rules[k]
                k += 1
                if idx < len(s.rules):
                    a = s.rules[idx].admin_rule
                    step = TraceStep(None, s.attached_to, s.direction, a.name, a.priority, a.access, False, a.span,
                                     layer="admin", admin_collection=f"{a.config}/{a.collection}")
                    if a.access is Access.ALWAYS_ALLOW:
                        skip[s.direction] = skipped_by_always_allow(a.name)
                else:
                    step = TraceStep(None, s.attached_to, s.direction, "(no admin rule matched)", None, Access.ALLOW,
                                     layer="admin")
                steps.append(step)
                continue
            else:
                r = s.nsg.rules(s.direction)[rules[k]]
                k += 1
                step = TraceStep(s.nsg.name, s.attached_to, s.direction, r.name, r.priority, r.access,
                                 r.rule.is_default, r.rule.span)
            why = skip.get(step.direction)
            if why is not None and step.rule != SMTP_BLOCK.rule:
                step = replace(step, evaluated=False, skipped=why)
            steps.append(step)
        return tuple(mark_not_evaluated(steps))

    def result(self, i: int) -> FlowResult:
        """Flow ``i`` as the reference evaluator reports it."""
        t = self.templates[self.group[i]]
        steps = self._steps(int(self.group[i]), [int(x) for x in self.rules[i]])
        decision = Access.DENY if any(s.evaluated and s.access is Access.DENY for s in steps) else Access.ALLOW
        return FlowResult(self.packet(i), decision, steps, t.src, t.dst, t.notes)

    def packet_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(representative flow per distinct (source, destination, protocol), its id per flow): what a line
        says before the ports, computed once per id."""
        c = self.columns
        return _distinct([c.src_inv, c.dst_inv, c.proto_inv],
                         [len(c.src_values), len(c.dst_values), len(c.proto_values)])

    def trace_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(representative flow per distinct trace, trace id per flow): flows with one id have the same
        decision, trace and notes, so their output is computed once."""
        # Rule indices run from -1 (no layer in that slot) to n (no admin rule matched): shifted by one, and
        # each column's radix is its own largest value, which keeps the packed key small.
        cols = [self.group.astype(np.int64)] + [self.rules[:, j].astype(np.int64) + 1 for j in range(MAX_LAYERS)]
        return _distinct(cols, [int(c.max()) + 1 if len(c) else 1 for c in cols])


class FlowEngine:
    """Decides arrays of flows against one resolved policy with one assignment of dynamic addresses."""

    def __init__(self, rp: ResolvedPolicy, assignment: Mapping[IpcKey, int] | None = None):
        self.rp = rp
        self.evaluator = Evaluator(rp, assignment)
        self.keys: list[IpcKey | None] = [None] + list(rp.ipcs)  # endpoint id 0: outside the policy
        self.key_ids = {k: i for i, k in enumerate(self.keys) if k is not None}
        dynamic = sorted(self.evaluator._dynamic)
        self.dyn_ids = {k: i + 1 for i, k in enumerate(dynamic)}
        self._dyn_of_key = np.array([self.dyn_ids.get(k, 0) if k is not None else 0 for k in self.keys], dtype=np.int64)
        self._compiled: dict[tuple, CompiledLayer] = {}
        self.max_rules = 0

    @staticmethod
    def layer_key(layer: Layer | AdminLayer) -> tuple:
        if isinstance(layer, AdminLayer):
            return ("admin", layer.vnet, layer.direction)
        return (layer.nsg.name, layer.nsg.vnet, layer.direction)

    def compiled(self, layer: Layer | AdminLayer) -> CompiledLayer:
        key = self.layer_key(layer)
        c = self._compiled.get(key)
        if c is None:
            if isinstance(layer, AdminLayer):  # no default rules: no match is index n
                c = CompiledLayer(layer.rules, self.dyn_ids, total=False)
            else:
                c = CompiledLayer(layer.nsg.rules(layer.direction), self.dyn_ids)
            self._compiled[key] = c
            self.max_rules = max(self.max_rules, c.n)
        return c

    def endpoint_ids(self, src: np.ndarray, dst: np.ndarray, src_key: np.ndarray | None = None,
                     dst_key: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Endpoint ids (index into ``keys``) of every flow, settled as :meth:`Evaluator.endpoints` does:
        once per distinct (addresses, named keys). Raises UsageError like it."""
        n = len(src)
        sk = np.zeros(n, dtype=np.int64) if src_key is None else np.asarray(src_key, dtype=np.int64)
        dk = np.zeros(n, dtype=np.int64) if dst_key is None else np.asarray(dst_key, dtype=np.int64)
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        nk = len(self.keys)
        first, inverse = _distinct([src, dst, sk, dk], [1 << 32, 1 << 32, nk, nk])
        out_s = np.empty(len(first), dtype=np.int64)
        out_d = np.empty(len(first), dtype=np.int64)
        ev, keys, ids = self.evaluator, self.keys, self.key_ids
        for j, (s, d, a, b) in enumerate(
            zip(src[first].tolist(), dst[first].tolist(), sk[first].tolist(), dk[first].tolist())
        ):
            ks, kd = ev.endpoints(Packet(6, s, 0, d, 0), keys[a], keys[b])
            out_s[j] = ids[ks] if ks is not None else 0
            out_d[j] = ids[kd] if kd is not None else 0
        return out_s[inverse], out_d[inverse]

    def decide(self, proto, src, sport, dst, dport, src_key=None, dst_key=None, settled: bool = False) -> Decisions:
        """Decide N flows given as arrays (``sport``/``dport`` are ignored where the protocol has none).
        ``src_key``/``dst_key``: endpoint ids (see ``keys``) when the caller named the NICs, 0 for "by
        address"; the ends are then settled like :meth:`Evaluator.endpoints` (raising UsageError like it),
        unless ``settled`` says the ids already come from :meth:`endpoint_ids`."""
        proto = np.asarray(proto, dtype=np.int64)
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        has_ports = (proto == 6) | (proto == 17)
        sport = np.where(has_ports, np.asarray(sport, dtype=np.int64), 0)
        dport = np.where(has_ports, np.asarray(dport, dtype=np.int64), 0)
        if settled:
            sid, did = np.asarray(src_key, dtype=np.int64), np.asarray(dst_key, dtype=np.int64)
        else:
            sid, did = self.endpoint_ids(src, dst, src_key, dst_key)
        n = len(proto)
        rp = self.rp

        kind = np.zeros(n, dtype=np.int64)
        for j, service in enumerate(HOST_SERVICES):  # the first that matches, as host_service() tests them
            hit = ((kind == 0) & _in_set(proto, service.protocols) & _in_set(dst, service.addresses)
                   & _in_set(dport, service.dports))
            kind[hit] = j + 1
        kind[sid == 0] = 0  # the bypass is an outbound matter of a NIC of the policy

        # The two per-flow address tests of the evaluator, done per endpoint (their VNet fixes the set).
        smtp = np.zeros(n, dtype=bool)
        if rp.smtp_blocked:
            cand = _in_set(proto, SMTP_BLOCK.protocols) & _in_set(dport, SMTP_BLOCK.dports) & (sid != 0)
            for s in np.unique(sid[cand]).tolist():
                sel = cand & (sid == s)
                smtp[sel] = _in_set(dst[sel], rp.internet_tag(rp.ipcs[self.keys[s]].vnet))
        inet = np.zeros(n, dtype=bool)
        cand = (sid == 0) & (did != 0)
        for d in np.unique(did[cand]).tolist():
            sel = cand & (did == d)
            inet[sel] = _in_set(src[sel], rp.internet_tag(rp.ipcs[self.keys[d]].vnet))

        nk = len(self.keys)
        gkey = ((sid * nk + did) * _KINDS + kind) * 4 + smtp.astype(np.int64) * 2 + inet.astype(np.int64)
        gvals, group = np.unique(gkey, return_inverse=True)
        group = group.reshape(-1)
        templates: list[_Template] = []
        for g in gvals.tolist():
            flags, g = g % 4, g // 4
            k, g = g % _KINDS, g // _KINDS
            templates.append(self._template(self.keys[g // nk], self.keys[g % nk], k, bool(flags & 2), bool(flags & 1)))

        # Decide each compiled layer once over every flow that meets it, whichever slot of its path it fills.
        layer_list: list[Layer | AdminLayer] = []
        layer_ids: dict[tuple, int] = {}
        slot_layer = np.full((len(templates), MAX_LAYERS), -1, dtype=np.int64)
        slot_out = np.zeros((len(templates), MAX_LAYERS), dtype=bool)  # the slot is an outbound one
        slot_admin = np.zeros((len(templates), MAX_LAYERS), dtype=bool)
        fixed_deny = np.zeros(len(templates), dtype=bool)
        for gi, t in enumerate(templates):
            for k, l in enumerate(t.layers):
                lk = self.layer_key(l)
                if lk not in layer_ids:
                    layer_ids[lk] = len(layer_list)
                    layer_list.append(l)
                slot_layer[gi, k] = layer_ids[lk]
                slot_out[gi, k] = l.direction is Direction.OUTBOUND
                slot_admin[gi, k] = isinstance(l, AdminLayer)
            fixed_deny[gi] = any(isinstance(s, TraceStep) and s.access is Access.DENY for s in t.steps)
        flat = slot_layer[group].reshape(-1)  # (flow, slot) pairs, row-major
        met = np.flatnonzero(flat >= 0)
        # A stable sort of 16-bit keys is a radix sort in numpy: several times faster than one of int64.
        layer_of = flat[met].astype(np.int16) if len(layer_list) < 1 << 15 else flat[met]
        by_layer = met[np.argsort(layer_of, kind="stable")]
        cuts = np.searchsorted(flat[by_layer], np.arange(len(layer_list) + 1))
        dyn = self._dyn_of_key
        src_dyn, dst_dyn = dyn[sid], dyn[did]
        rules_flat = np.full(n * MAX_LAYERS, -1, dtype=np.int32)
        code_flat = np.zeros(n * MAX_LAYERS, dtype=np.int8)  # 0 allow (or no admin match), 1 deny, 2 always allow
        cols = flow_columns(proto, src, sport, dst, dport, src_dyn, dst_dyn)
        for li, l in enumerate(layer_list):
            pos = by_layer[cuts[li]:cuts[li + 1]]
            idx = pos // MAX_LAYERS
            c = self.compiled(l)
            r = c.first_match(cols, idx)
            rules_flat[pos] = r
            code_flat[pos] = c.access_code[r]
        rules = rules_flat.reshape(n, MAX_LAYERS)
        code = code_flat.reshape(n, MAX_LAYERS)
        out_slot, admin_slot = slot_out[group], slot_admin[group]
        # An AlwaysAllow admin rule takes the NSGs of its direction out of the decision (not the TCP 25 block,
        # a fixed step); a Deny anywhere else denies.
        always = admin_slot & (code == 2)
        always_out = (always & out_slot).any(axis=1)
        always_in = (always & ~out_slot).any(axis=1)
        skipped = ~admin_slot & np.where(out_slot, always_out[:, None], always_in[:, None])
        allowed = ~((code == 1) & ~skipped).any(axis=1) & ~fixed_deny[group]
        arrays = {"proto": proto, "src": src, "sport": sport, "dst": dst, "dport": dport, "has_ports": has_ports}
        return Decisions(self, arrays, templates, group, rules, allowed, fixed_deny, cols)

    def _template(self, src_key: IpcKey | None, dst_key: IpcKey | None, kind: int, smtp: bool, inet: bool) -> _Template:
        """The steps and notes of one group, from the evaluator's own :func:`path_steps`."""
        service = HOST_SERVICES[kind - 1] if kind else None
        dst = 0
        if service is not None:
            # A service's note names its address; one address per service keeps that a group property.
            (lo, hi), = tuple(service.addresses)
            if lo != hi:  # pragma: no cover - platform.py lists single addresses
                raise NotImplementedError("a host service on several addresses: group its flows by address")
            dst = lo
        path, notes = path_steps(self.rp, src_key, dst_key, dst, service, smtp, inet)
        steps = with_admin_layers(self.rp, src_key, dst_key, path) if self.rp.has_admin_rules else list(path)
        assert sum(not isinstance(s, TraceStep) for s in steps) <= MAX_LAYERS
        return _Template(tuple(steps), tuple(notes), src_key, dst_key)


def with_admin_layers(rp: ResolvedPolicy, src_key: IpcKey | None, dst_key: IpcKey | None,
                      steps: list[Layer | TraceStep]) -> list[Layer | AdminLayer | TraceStep]:
    """``steps`` (from path_steps) with each VNet's admin layer in front of its direction's steps, and the
    platform's TCP 25 block after the outbound ones, in the order :meth:`Evaluator.evaluate` gives them."""
    out = [s for s in steps if s.direction is Direction.OUTBOUND]
    smtp = [s for s in out if isinstance(s, TraceStep) and s.rule == SMTP_BLOCK.rule]
    out = [s for s in out if s not in smtp]
    inb = [s for s in steps if s.direction is Direction.INBOUND]
    res: list[Layer | AdminLayer | TraceStep] = []
    for key, direction, part in ((src_key, Direction.OUTBOUND, out), (None, None, smtp),
                                 (dst_key, Direction.INBOUND, inb)):
        if key is not None and direction is not None:
            admin = rp.admin_for(key, direction)
            if admin is not None:
                res.append(admin)
            res.extend(part)
        elif direction is None:
            res.extend(part)
    return res
