"""Replay logged flows against a policy: which rules decide them, which rules no flow uses, where the log
and the model disagree, and (against a new policy) which logged flows a change would decide otherwise.

What a logged tuple means. A tuple is one flow seen at one NIC in one direction: the local end is the
destination of an inbound (``I``) tuple and the source of an outbound (``O``) one. The model meets that
NIC's layers in Azure's order for that direction (inbound: subnet NSG, then NIC NSG; outbound: NIC NSG,
then subnet NSG), and in each the first matching rule decides; a Deny ends the walk (semantics.md). Every
layer met counts one hit for the rule that decided there, so an Allow rule of the subnet NSG that let a
flow through to the NIC NSG is *used* even though the NIC NSG logged it. The log says which NSG and rule
decided (NSG flow logs: the NSG the record belongs to; VNet flow logs: the ACL whose rule decided, found
by its resource GUID, else the NSG on the path that has a rule of that name); a logged decision or rule
the model does not reproduce is a mismatch, reported with a tuple.

Speed. Most tuples repeat (a NIC talks to the same peers on the same ports all hour), so the per-tuple
work is a string split and a dictionary update keyed by the fields that decide (addresses, destination
port, protocol, direction, the logged rule and decision; the source port only when some rule names
source ports). Each distinct key is decided once, by :func:`decide_layers` -- the one function to swap
for a vectorised engine -- and the counts are folded into per-rule counters at the end of each file.
Results are sums of counters over files, so a run split over processes or Dask workers merges to the
same answer as a serial one (:meth:`Partial.merge`).
"""

from __future__ import annotations

import ipaddress
import os
from bisect import bisect_right
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from nsgsolve.importers.flowlogs import BadRecord, FlowGroup, read_flow_log
from nsgsolve.model import PORTED_PROTOCOLS, PROTOCOL_BY_NUMBER, Access, Direction, Span
from nsgsolve.semantics.addresses import int_to_ip
from nsgsolve.semantics.classify import classifier
from nsgsolve.semantics.resolve import Layer, ResolvedNsg, ResolvedPolicy, ResolvedRule

ALLOW, DENY = "Allow", "Deny"
MAX_BAD_SHOWN = 200  # bad records kept with their positions (all are counted)
MAX_EXAMPLES = 3  # tuples kept per mismatch group
CACHE_LIMIT = 400_000  # distinct keys held before folding, so memory stays flat on any log size

RULE_PREFIXES = ("userrule_", "defaultrule_")

# Mismatch kinds (docs/replay.md).
KINDS = {
    "decision": "the log's decision is not the policy's",
    "rule": "the policy decides the same way by another rule",
    "nsg-not-on-path": "the logging NSG is not on this NIC's path in the policy",
    "unknown-nsg": "the log names an NSG the policy does not have",
    "unknown-rule": "the logged rule is not a rule of the NSGs on the path",
    "unattributed": "neither the address nor the ACL says which NSG of the policy decided",
}


@lru_cache(maxsize=65536)
def bare_rule(name: str) -> str:
    """``UserRule_Allow-Web`` -> ``allow-web``: flow logs prefix rule names; Azure compares them case-blind."""
    low = name.lower()
    for p in RULE_PREFIXES:
        if low.startswith(p):
            return low[len(p):]
    return low


def _ip(text: str) -> int:
    """An IPv4 address as an int (ValueError otherwise); the common case without the ipaddress module."""
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError(text)
    v = 0
    for p in parts:
        if not p.isdigit() or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            raise ValueError(text)
        n = int(p)
        if n > 255:
            raise ValueError(text)
        v = (v << 8) | n
    return v


class _Pkt:
    """What the classifier reads of a packet (duck-typed :class:`~nsgsolve.semantics.evaluate.Packet`)."""

    __slots__ = ("protocol", "src", "sport", "dst", "dport")

    def __init__(self, protocol: int, src: int, sport: int | None, dst: int, dport: int | None):
        self.protocol, self.src, self.sport, self.dst, self.dport = protocol, src, sport, dst, dport


def decide_layers(layers: Sequence[Layer], direction: Direction, pkt: _Pkt, any_sport: bool = False
                  ) -> tuple[list[tuple[ResolvedNsg, ResolvedRule]], str] | None:
    """The rule that decides at each layer met, in order, stopping after a Deny; and the decision. With
    ``any_sport``, the answer for every source port at once, or None when the source port matters.

    The single place the replay asks the policy: a vectorised engine replaces this function."""
    met = []
    for layer in layers:
        cl = classifier(layer.nsg, direction)
        r = cl.first_match_any_sport(pkt) if any_sport else cl.first_match(pkt)
        if r is None:
            return None
        met.append((layer.nsg, r))
        if r.access is Access.DENY:
            return met, DENY
    return met, ALLOW


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Example:
    tuple: str
    file: str
    line: int
    column: int

    def to_dict(self) -> dict:
        return {"tuple": self.tuple, "file": self.file, "line": self.line, "column": self.column}

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.tuple}"


@dataclass
class Partial:
    """Counters from some files; :meth:`merge` in file order gives the same result however files were
    split. Everything here is bounded by the policy's size and the number of distinct groups, not by the
    number of tuples."""

    files: int = 0
    bytes: int = 0
    tuples: int = 0
    flows: int = 0  # tuples that begin a flow (B), or every tuple of a version 1 log
    first: int | None = None  # unix seconds
    last: int | None = None
    bad: int = 0
    bad_records: list[BadRecord] = field(default_factory=list)
    ipv6: int = 0
    # (nsg, direction, rule) -> [hits, flows, first, last]
    hits: dict[tuple[str, str, str], list] = field(default_factory=dict)
    # mismatch key -> [count, [examples]]
    mismatches: dict[tuple, list] = field(default_factory=dict)
    # (src prefix, dst, protocol, dport, before, after) -> [count, example, new rule (nsg, dir, rule) or None]
    changed: dict[tuple, list] = field(default_factory=dict)

    def merge(self, o: "Partial") -> "Partial":
        self.files += o.files
        self.bytes += o.bytes
        self.tuples += o.tuples
        self.flows += o.flows
        self.first = o.first if self.first is None else (self.first if o.first is None else min(self.first, o.first))
        self.last = o.last if self.last is None else (self.last if o.last is None else max(self.last, o.last))
        self.bad += o.bad
        self.bad_records += o.bad_records[:max(0, MAX_BAD_SHOWN - len(self.bad_records))]
        self.ipv6 += o.ipv6
        for k, v in o.hits.items():
            _add_hits(self.hits, k, v[0], v[1], v[2], v[3])
        for k, (n, ex) in o.mismatches.items():
            mine = self.mismatches.get(k)
            if mine is None:
                self.mismatches[k] = [n, list(ex)]
            else:
                mine[0] += n
                mine[1] += ex[:MAX_EXAMPLES - len(mine[1])]
        for k, (n, ex, rule) in o.changed.items():
            mine = self.changed.get(k)
            if mine is None:
                self.changed[k] = [n, ex, rule]
            else:
                mine[0] += n
        return self


def _add_hits(hits: dict, key, n: int, flows: int, first: int | None, last: int | None) -> None:
    h = hits.get(key)
    if h is None:
        hits[key] = [n, flows, first, last]
        return
    h[0] += n
    h[1] += flows
    if first is not None and (h[2] is None or first < h[2]):
        h[2] = first
    if last is not None and (h[3] is None or last > h[3]):
        h[3] = last


@dataclass(frozen=True)
class _Outcome:
    """What one distinct logged key means under the policy (and the new one)."""

    hits: tuple[tuple[str, str, str], ...] = ()
    mismatch: tuple | None = None  # (kind, nsg, direction, logged rule, logged decision, model nsg, rule, decision)
    changed: tuple | None = None  # (src prefix, dst, protocol, dport, before, after)
    changed_rule: tuple | None = None  # the new policy's deciding (nsg, direction, rule)
    bad: str | None = None  # a malformed tuple: what is wrong
    ipv6: bool = False


# The outcome of a key without source port whose decision depends on the source port: key it again with it.
_DEPENDS = _Outcome(mismatch=("sport",))


# ---------------------------------------------------------------- the engine


class _PolicyView:
    """Look-ups into one resolved policy that every key needs."""

    def __init__(self, rp: ResolvedPolicy, guids: Mapping[str, str] | None):
        self.rp = rp
        self.by_upper = {n.name.upper(): n.name for n in rp.policy.nsgs}
        self.guids = {k.lower(): v for k, v in (guids or {}).items()}
        self.static = rp.static_ip_index
        self.shared = rp.shared_ips
        self._alone: dict[str, ResolvedNsg] = {}
        self.rule_names: dict[tuple[str, Direction], set[str]] = {}
        for n in rp.policy.nsgs:
            for d in Direction:
                self.rule_names[(n.name, d)] = {bare_rule(r.name) for r in n.rules_for(d)}
        # NSGs holding a user rule of a given name, for VNet flow logs whose ACL GUID is unknown
        self.user_rule_owners: dict[tuple[str, Direction], list[str]] = {}
        for n in rp.policy.nsgs:
            for r in n.rules:
                self.user_rule_owners.setdefault((bare_rule(r.name), r.direction), []).append(n.name)

    def local_layers(self, ip: int, direction: Direction, logged: str | None) -> list[Layer] | None:
        """The layers of the NIC at ``ip`` in ``direction``; None when no NIC of the policy has it. An
        address NICs of several VNets share is the one whose path has the logging NSG."""
        key = self.static.get(ip)
        if key is None:
            return None
        owners = self.shared.get(ip)
        if owners is not None:
            cands = [k for k in owners
                     if logged is not None and any(l.nsg.name == logged for l in self._layers(k, direction))]
            if len(cands) != 1:
                return None
            key = cands[0]
        return self._layers(key, direction)

    def _layers(self, key, direction: Direction) -> list[Layer]:
        rp = self.rp
        return rp.inbound_layers(key) if direction is Direction.INBOUND else rp.outbound_layers(key)

    def alone(self, name: str, direction: Direction) -> list[Layer]:
        """The NSG as the only layer: for a logged flow whose local address is not a NIC of the policy."""
        nsg = self._alone.get(name)
        if nsg is None:
            vnets = self.rp.attachment_vnets(name)
            nsg = self._alone[name] = self.rp.nsg(name, vnets[0] if vnets else None)
        return [Layer(nsg, "logged", direction)]


class Replayer:
    """Replays flow log files against ``rp`` (and ``new`` with ``--against``)."""

    def __init__(self, rp: ResolvedPolicy, new: ResolvedPolicy | None = None,
                 guids: Mapping[str, str] | None = None, group_prefix: int = 24):
        self.old = _PolicyView(rp, guids)
        self.new = _PolicyView(new, guids) if new is not None else None
        self.group_prefix = group_prefix
        self.mask = (0xFFFFFFFF << (32 - group_prefix)) & 0xFFFFFFFF if group_prefix else 0
        # The source port decides only where some rule names source ports; elsewhere it stays out of the
        # key, which is what makes most tuples repeat.
        pols = [rp] + ([new] if new is not None else [])
        self.with_sport = any(r.source_ports is not None and not r.source_ports.is_any
                              for p in pols for n in p.policy.nsgs for r in n.rules)
        self._outcomes: dict[tuple, _Outcome] = {}
        # Addresses and source ports enter the key as equivalence classes: two addresses between the same
        # rule boundaries (of every NSG of both policies) are decided alike, so a scan from ten thousand
        # Internet hosts is decided a handful of times. NIC addresses stay exact (they choose the path), and
        # so do destinations with --against (changed flows are grouped by destination).
        addr_bounds: set[int] = set()
        sport_bounds: set[int] = set()
        dport_bounds: set[int] = set()
        self._nic_ips: set[int] = set()
        for pol in pols:
            self._nic_ips |= set(pol.static_ip_index)
            for n in pol.policy.nsgs:
                for v in pol.evaluation_vnets(n.name):
                    rn = pol.nsg(n.name, v)
                    for d in Direction:
                        for r in rn.rules(d):
                            for lo, hi in r.src.intervals:
                                addr_bounds.update((lo, hi + 1))
                            for lo, hi in r.dst.intervals:
                                addr_bounds.update((lo, hi + 1))
                            for lo, hi in r.sports or ():
                                sport_bounds.update((lo, hi + 1))
                            for lo, hi in r.dports or ():
                                dport_bounds.update((lo, hi + 1))
        self._addr_bounds = sorted(addr_bounds)
        self._sport_bounds = sorted(sport_bounds)
        self._dport_bounds = sorted(dport_bounds)
        self._dport_rep: dict[int, int] = {}
        self._dport_tok: dict[str, tuple] = {}
        self._deps: dict[tuple, set] = {}  # per logged context, the keys whose decision needs the source port
        self._rep: dict[int, int] = {}  # address class -> an address of it, to decide with
        self._src_tok: dict[str, tuple] = {}
        self._dst_tok: dict[str, tuple] = {}
        self._sport_tok: dict[str, object] = {}
        self._exact_dst = new is not None  # --against groups changed flows by destination and port
        if new is None:
            self.mask = 0  # nothing is grouped by source prefix: do not split classes by it
        self._examples: dict[tuple, int] = {}  # examples taken per mismatch/changed group in the current file
        self._attributions: dict[tuple, object] = {}

    # ------------------------------------------------------------ per file

    def replay_file(self, path: str, progress: Callable[[int], None] | None = None) -> Partial:
        part = Partial(files=1)
        self._examples = {}  # a file's partial carries its own examples, so merging in file order is stable
        acc: dict[tuple, dict] = {}
        bad_list = part.bad_records

        def bad(b: BadRecord) -> None:
            part.bad += 1
            if len(bad_list) < MAX_BAD_SHOWN:
                bad_list.append(b)

        for g in read_flow_log(path, bad, progress):
            self._group(g, acc, part, bad)
            if len(acc) > 4096 or sum(len(v) for v in acc.values()) > CACHE_LIMIT:
                self._fold(acc, part)
        self._fold(acc, part)
        try:
            part.bytes = os.path.getsize(path)
        except OSError:
            pass
        return part

    def _group(self, g: FlowGroup, acc: dict, part: Partial, bad: Callable[[BadRecord], None]) -> None:
        ctx = (g.version, g.nsg, g.acl, g.rule)
        table = acc.get(ctx)
        if table is None:
            table = acc[ctx] = {}
        need = 8 if g.version == 1 else 9
        state_at = 8 if g.version == 2 else -1  # v2: B|C|E; v4: the state is field 7 (B|C|E|D)
        sport = self.with_sport
        src_tok, dst_tok, sport_tok, dport_tok = self._src_tok, self._dst_tok, self._sport_tok, self._dport_tok
        deps = self._deps.setdefault(ctx, set())
        if len(src_tok) + len(dst_tok) + len(sport_tok) + len(dport_tok) > CACHE_LIMIT:
            src_tok.clear()
            dst_tok.clear()
            sport_tok.clear()
            dport_tok.clear()
        n = 0
        for t in g.tuples:
            if not isinstance(t, str):
                line, col = g.position(None)
                bad(BadRecord(g.file, line, col, "malformed tuple", f"a flow tuple is a string, not {t!r}"[:200],
                              "W902"))
                continue
            p = t.split(",")
            if len(p) < need or not p[0].isdigit() or not p[3].isdigit() or len(p[3]) > 5:
                self._bad_tuple(g, t, bad, f"{len(p)} fields, a version {g.version} tuple has {need} or more"
                                if len(p) < need else f"timestamp {p[0]!r} is not a number" if not p[0].isdigit()
                                else f"source port {p[3]!r} is not 0-65535")
                continue
            a = src_tok.get(p[1])
            if a is None:
                a = self._token(p[1], False, src_tok)
            b = dst_tok.get(p[2])
            if b is None:
                b = self._token(p[2], self._exact_dst, dst_tok)
            c = dport_tok.get(p[4])
            if c is None:
                c = self._dport_token(p[4])
            k: tuple = (a, b, c, p[5], p[6], p[7])
            if sport and k in deps:
                k += (sport_tok.get(p[3]) or self._sport_class(p[3]),)
            s: list | None = table.get(k)
            if s is None:
                o = self._outcome(g, k)
                if o is _DEPENDS:
                    deps.add(k)
                    k += (sport_tok.get(p[3]) or self._sport_class(p[3]),)
                    s = table.get(k)
                    o = self._outcome(g, k)
            if s is None:
                if o.bad is not None:
                    self._bad_tuple(g, t, bad, o.bad)
                    continue
                s = [0, 0, p[0], p[0], t, None]  # count, flows, first, last, tuple, example
                table[k] = s
                group = o.mismatch if o.mismatch is not None else o.changed
                if group is not None and self._examples.get(group, 0) < MAX_EXAMPLES:
                    self._examples[group] = self._examples.get(group, 0) + 1
                    line, col = g.position(t)
                    s[5] = Example(t, g.file, line, col)
            s[0] += 1
            ts = p[0]
            if state_at < 0:
                if g.version == 1 or p[7] == "B" or p[7] == "D":
                    s[1] += 1
            elif p[8] == "B":
                s[1] += 1
            # Timestamps of one log have one width (10 digits of seconds, 13 of milliseconds): compare as text.
            if ts < s[2]:
                s[2] = ts
            elif ts > s[3]:
                s[3] = ts
            n += 1
        part.tuples += n

    def _bad_tuple(self, g: FlowGroup, t: str, bad, what: str) -> None:
        line, col = g.position(t)
        bad(BadRecord(g.file, line, col, "malformed tuple", f"{t!r}: {what}", "W902"))

    def _fold(self, acc: dict, part: Partial) -> None:
        hits = part.hits
        for ctx, table in acc.items():
            version = ctx[0]
            scale = 1000 if version == 4 else 1
            for k, (n, flows, lo, hi, _t, example) in table.items():
                o = self._outcomes.get(ctx + k) or self._decide(ctx, k)
                lo_s, hi_s = int(lo) // scale, int(hi) // scale
                part.flows += flows
                if part.first is None or lo_s < part.first:
                    part.first = lo_s
                if part.last is None or hi_s > part.last:
                    part.last = hi_s
                if o.ipv6:
                    part.ipv6 += n
                    continue
                for h in o.hits:
                    _add_hits(hits, h, n, flows, lo_s, hi_s)
                if o.mismatch is not None:
                    m = part.mismatches.get(o.mismatch)
                    if m is None:
                        m = part.mismatches[o.mismatch] = [0, []]
                    m[0] += n
                    if example is not None and len(m[1]) < MAX_EXAMPLES:
                        m[1].append(example)
                if o.changed is not None:
                    c = part.changed.get(o.changed)
                    if c is None:
                        c = part.changed[o.changed] = [0, None, o.changed_rule]
                    c[0] += n
                    if c[1] is None:
                        c[1] = example
        acc.clear()
        if len(self._outcomes) > CACHE_LIMIT:
            self._outcomes.clear()

    # ------------------------------------------------------------ one distinct key

    def _outcome(self, g: FlowGroup, k: tuple) -> _Outcome:
        ctx = (g.version, g.nsg, g.acl, g.rule)
        o = self._outcomes.get(ctx + k)
        if o is None:
            o = self._decide(ctx, k)
        return o

    def _decide(self, ctx: tuple, k: tuple) -> _Outcome:
        o = self._compute(ctx, k)
        if len(self._outcomes) > CACHE_LIMIT:
            self._outcomes.clear()
        self._outcomes[ctx + k] = o
        return o

    def _token(self, text: str, exact: bool, memo: dict) -> tuple:
        """What of an address decides: the address itself for a NIC (or ``exact``), else its class; with the
        source's group prefix, so changed flows still group by it."""
        if ":" in text:
            tok: tuple = ("v6",)
        else:
            try:
                ip = _ip(text)
            except ValueError:
                tok = ("bad", text)
            else:
                if exact or ip in self._nic_ips:
                    tok = ("x", ip)
                else:
                    cid = bisect_right(self._addr_bounds, ip)
                    self._rep.setdefault(cid, ip)
                    tok = ("c", cid, ip & self.mask)
        memo[text] = tok
        return tok

    def _sport_class(self, text: str) -> tuple:
        if not text.isdigit() or int(text) > 65535:
            c: tuple = ("bad", text)
        else:
            cid = bisect_right(self._sport_bounds, int(text))
            self._rep.setdefault(-1 - cid, int(text))  # negative keys: source port classes
            c = ("s", cid)
        self._sport_tok[text] = c
        return c

    def _dport_token(self, text: str) -> tuple:
        """The destination port as it decides: its class among the rules' port boundaries, or the port
        itself with --against (changed flows are grouped by port)."""
        if not text.isdigit() or int(text) > 65535:
            t: tuple = ("bad", text)
        elif self._exact_dst:
            t = ("x", int(text))
        else:
            cid = bisect_right(self._dport_bounds, int(text))
            self._dport_rep.setdefault(cid, int(text))
            t = ("c", cid)
        self._dport_tok[text] = t
        return t

    def _addr(self, tok: tuple) -> int:
        return tok[1] if tok[0] == "x" else self._rep[tok[1]]

    def _compute(self, ctx: tuple, k: tuple) -> _Outcome:
        version, nsg_logged, acl, rule_logged = ctx
        src_t, dst_t, dport_t, proto_s, dir_s, dec_s = k[:6]
        sport_c = k[6] if len(k) > 6 else None
        # -- parse: every field that decides is checked once per distinct key
        for tok in (src_t, dst_t):
            if tok[0] == "bad":
                return _Outcome(bad=f"address {tok[1]!r} is not an IPv4 or IPv6 address")
        if src_t[0] == "v6" or dst_t[0] == "v6":
            return _Outcome(ipv6=True)
        src, dst = self._addr(src_t), self._addr(dst_t)
        if version == 4:
            if not proto_s.isdigit() or int(proto_s) > 255:
                return _Outcome(bad=f"protocol {proto_s!r} is not an IANA protocol number")
            proto = int(proto_s)
            if dec_s not in ("B", "C", "E", "D"):
                return _Outcome(bad=f"flow state {dec_s!r} is not B, C, E or D")
            logged = DENY if dec_s == "D" else ALLOW
        else:
            proto = {"T": 6, "U": 17}.get(proto_s, -1)
            if proto < 0:
                return _Outcome(bad=f"protocol {proto_s!r} is not T or U")
            if dec_s not in ("A", "D"):
                return _Outcome(bad=f"decision {dec_s!r} is not A or D")
            logged = ALLOW if dec_s == "A" else DENY
        if dir_s not in ("I", "O"):
            return _Outcome(bad=f"direction {dir_s!r} is not I or O")
        direction = Direction.INBOUND if dir_s == "I" else Direction.OUTBOUND
        ported = proto in PORTED_PROTOCOLS
        if dport_t[0] == "bad":
            return _Outcome(bad=f"destination port {dport_t[1]!r} is not 0-65535")
        dport = dport_t[1] if dport_t[0] == "x" else self._dport_rep[dport_t[1]]
        sport = 0
        if sport_c is not None:
            if sport_c[0] == "bad":
                return _Outcome(bad=f"source port {sport_c[1]!r} is not 0-65535")
            sport = self._rep[-1 - sport_c[1]]
        # Without a source port in the key, decide for every source port at once (or learn that it matters).
        any_sport = self.with_sport and sport_c is None and ported
        pkt = _Pkt(proto, src, sport if ported else None, dst, dport if ported else None)
        local = dst if direction is Direction.INBOUND else src

        # -- under the policy
        view = self.old
        rule_bare = bare_rule(rule_logged)
        res = self._attribute(view, version, nsg_logged, acl, rule_bare, local, direction)
        if isinstance(res, tuple) and res[0] == "mismatch":
            _, kind, who = res
            return _Outcome(mismatch=(kind, who, direction.value, rule_logged, logged, None, None, None))
        layers, logger = res
        decided = decide_layers(layers, direction, pkt, any_sport)
        if decided is None:
            return _DEPENDS
        met, decision = decided
        hits = tuple((n.name, direction.value, r.name) for n, r in met)
        if isinstance(logger, list):
            # The ACL is unknown and several NSGs on the path have a rule of that name: the layer that logs
            # is the one the model ends at if it is among them, else one where that rule decides.
            deciding = [n.name for n, r in met if bare_rule(r.name) == rule_bare]
            logger = met[-1][0].name if met and met[-1][0].name in logger else (
                deciding[-1] if deciding else logger[0])
        mismatch = None
        if logger is None:
            # VNet flow log, ACL unknown, no NSG on the path with a rule of that name.
            model_nsg, model_rule = (met[-1][0].name, met[-1][1].name) if met else (None, None)
            mismatch = ("unknown-rule", None, direction.value, rule_logged, logged, model_nsg, model_rule, decision)
        else:
            at = next((i for i, l in enumerate(layers) if l.nsg.name == logger), None)
            if at is None:
                model_nsg, model_rule = (met[-1][0].name, met[-1][1].name) if met else (None, None)
                kind = "nsg-not-on-path" if logger.upper() in view.by_upper else "unknown-nsg"
                mismatch = (kind, logger, direction.value, rule_logged, logged, model_nsg, model_rule, decision)
            elif at >= len(met):
                # An earlier layer denies: the logging NSG never saw the flow in the model.
                mismatch = ("decision", logger, direction.value, rule_logged, logged, met[-1][0].name,
                            met[-1][1].name, DENY)
            else:
                n, r = met[at]
                at_decision = r.access.value
                # VNet flow logs record the flow's outcome; NSG flow logs the logging NSG's own decision.
                claimed = decision if version == 4 else at_decision
                if claimed != logged:
                    dn, dr = (met[-1] if version == 4 else met[at])
                    mismatch = ("decision", logger, direction.value, rule_logged, logged, dn.name, dr.name, claimed)
                elif bare_rule(r.name) != rule_bare:
                    if rule_bare not in view.rule_names.get((logger, direction), ()):
                        kind = "unknown-rule"
                    else:
                        kind = "rule"
                    mismatch = (kind, logger, direction.value, rule_logged, logged, n.name, r.name, at_decision)
        changed = changed_rule = None
        if self.new is not None:
            nres = self._attribute(self.new, version, nsg_logged, acl, rule_bare, local, direction, lenient=True)
            if isinstance(nres, tuple) and nres[0] == "mismatch":
                nmet: list[tuple[ResolvedNsg, ResolvedRule]] = []
                after = ALLOW  # the NSG is gone and the address is no NIC: nothing filters the flow
            else:
                ndecided = decide_layers(nres[0], direction, pkt, any_sport)
                if ndecided is None:
                    return _DEPENDS
                nmet, after = ndecided
            if after != decision:
                grp = src_t[2] if src_t[0] == "c" else src & self.mask
                changed = (int_to_ip(grp) + f"/{self.group_prefix}", int_to_ip(dst),
                           PROTOCOL_BY_NUMBER[proto].value if proto in PROTOCOL_BY_NUMBER else str(proto),
                           pkt.dport, decision, after)
                if nmet:
                    changed_rule = (nmet[-1][0].name, direction.value, nmet[-1][1].name)
        return _Outcome(hits, mismatch, changed, changed_rule)

    def _attribute(self, view: _PolicyView, version: int, nsg_logged: str | None, acl: str | None, rule_bare: str,
                   local: int, direction: Direction, lenient: bool = False):
        key = (view is self.new, version, nsg_logged, acl, rule_bare, local, direction)
        got = self._attributions.get(key)
        if got is None:
            if len(self._attributions) > CACHE_LIMIT:
                self._attributions.clear()
            got = self._attributions[key] = self._attribute_uncached(view, version, nsg_logged, acl, rule_bare,
                                                                     local, direction)
        return got

    def _attribute_uncached(self, view: _PolicyView, version: int, nsg_logged: str | None, acl: str | None,
                            rule_bare: str, local: int, direction: Direction):
        """(layers, logging NSG name or None) for a key, or ("mismatch", kind, nsg) when the policy cannot
        place it (cached: many keys share a NIC, a direction and a logged rule)."""
        if version != 4:
            name = view.by_upper.get((nsg_logged or "").upper())
            layers = view.local_layers(local, direction, name)
            if layers is not None:
                return layers, (name if name is not None else (nsg_logged or "?"))
            if name is None:
                return ("mismatch", "unknown-nsg", nsg_logged)
            return view.alone(name, direction), name
        # VNet flow logs: the ACL's GUID when the policy files carry it, else the NSG on the path with the rule
        named = view.guids.get((acl or "").lower())
        layers = view.local_layers(local, direction, named)
        if layers is not None:
            if named is not None:
                return layers, named
            having = [l.nsg.name for l in layers if rule_bare in view.rule_names.get((l.nsg.name, direction), ())]
            if not having:
                return layers, None
            # A default rule's name is in every NSG: several candidates, settled against the model's walk.
            return layers, having
        if named is not None and view.rp.policy.nsg(named) is not None:
            return view.alone(named, direction), named
        owners = view.user_rule_owners.get((rule_bare, direction), [])
        if len(owners) == 1:
            return view.alone(owners[0], direction), owners[0]
        return ("mismatch", "unattributed", None)

    # ------------------------------------------------------------ the answer

    def result(self, part: Partial) -> "ReplayResult":
        return ReplayResult.build(self.old.rp, part, self.new.rp if self.new is not None else None, self.group_prefix)


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class RuleStat:
    nsg: str
    direction: str
    rule: str
    priority: int
    access: str
    is_default: bool
    hits: int
    flows: int
    first: int | None
    last: int | None
    span: Span | None

    def to_dict(self) -> dict:
        loc = None
        if self.span is not None and self.span.line:
            s = self.span
            loc = {"file": s.file, "line": s.line, "column": s.column, "end_line": s.end_line,
                   "end_column": s.end_column}
        return {"nsg": self.nsg, "direction": self.direction, "rule": self.rule, "priority": self.priority,
                "access": self.access, "default": self.is_default, "hits": self.hits, "flows": self.flows,
                "first_seen": self.first, "last_seen": self.last, "location": loc}


@dataclass(frozen=True)
class Mismatch:
    kind: str
    nsg: str | None
    direction: str
    logged_rule: str
    logged_decision: str
    model_nsg: str | None
    model_rule: str | None
    model_decision: str | None
    count: int
    examples: tuple[Example, ...]

    @property
    def message(self) -> str:
        where = f"{self.nsg} {self.direction}" if self.nsg else self.direction
        said = f"the log says {self.logged_decision} by {self.logged_rule}"
        if self.kind in ("unknown-nsg",):
            return f"{where}: {said}, but the policy has no NSG named {self.nsg}"
        if self.kind == "unattributed":
            return (f"{self.direction}: {said}, but the local address is no NIC of the policy and neither the ACL "
                    "nor the rule name says which NSG decided")
        model = (f"the policy says {self.model_decision} by {self.model_nsg}/{self.model_rule}"
                 if self.model_rule else "the policy decides nothing there")
        if self.kind == "nsg-not-on-path":
            return f"{where}: {said}, but {self.nsg} is not on this NIC's path in the policy ({model})"
        if self.kind == "unknown-rule":
            holder = f" {self.nsg}" if self.nsg else " any NSG on the path"
            return f"{where}: {said}, which is not a rule of{holder} in the policy ({model})"
        return f"{where}: {said}; {model}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "nsg": self.nsg, "direction": self.direction,
                "logged": {"rule": self.logged_rule, "decision": self.logged_decision},
                "model": {"nsg": self.model_nsg, "rule": self.model_rule, "decision": self.model_decision},
                "count": self.count, "message": self.message,
                "tuple": self.examples[0].tuple if self.examples else None,
                "examples": [e.to_dict() for e in self.examples]}


@dataclass(frozen=True)
class Change:
    src: str
    dst: str
    protocol: str
    dport: int | None
    before: str
    after: str
    count: int
    example: Example | None
    rule: tuple[str, str, str] | None  # the new policy's deciding (nsg, direction, rule)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"src": self.src, "dst": self.dst, "protocol": self.protocol, "dport": self.dport,
             "before": self.before, "after": self.after, "count": self.count}
        if self.rule is not None:
            d["decided_by"] = {"nsg": self.rule[0], "direction": self.rule[1], "rule": self.rule[2]}
        if self.example is not None:
            d["example"] = self.example.to_dict()
        return d


@dataclass(frozen=True)
class ReplayResult:
    files: int
    bytes: int
    tuples: int
    flows: int
    first: int | None
    last: int | None
    bad: int
    bad_records: tuple[BadRecord, ...]
    ipv6: int
    rules: tuple[RuleStat, ...]
    unused: tuple[RuleStat, ...]
    unobserved: tuple[str, ...]  # NSGs no logged flow met: their rules are not judged
    mismatches: tuple[Mismatch, ...]
    changed: tuple[Change, ...] | None

    @classmethod
    def build(cls, rp: ResolvedPolicy, part: Partial, new: ResolvedPolicy | None, group_prefix: int
              ) -> "ReplayResult":
        rules: list[RuleStat] = []
        met_nsgs = {k[0] for k, v in part.hits.items() if v[0]}
        for nsg in rp.policy.nsgs:
            for d in Direction:
                for r in nsg.rules_for(d):
                    h = part.hits.get((nsg.name, d.value, r.name), [0, 0, None, None])
                    rules.append(RuleStat(nsg.name, d.value, r.name, r.priority, r.access.value, r.is_default,
                                          h[0], h[1], h[2], h[3], None if r.is_default else r.span))
        unused = tuple(s for s in rules if s.hits == 0 and s.nsg in met_nsgs)
        unobserved = tuple(n.name for n in rp.policy.nsgs if n.name not in met_nsgs)
        mism = [Mismatch(*k + (n, tuple(ex))) for k, (n, ex) in part.mismatches.items()]
        mism.sort(key=lambda m: (-m.count, m.kind, m.nsg or "", m.logged_rule))
        changed = None
        if new is not None:
            ch = [Change(*k + (n, ex, rule)) for k, (n, ex, rule) in part.changed.items()]
            # what the change breaks first: allowed -> denied, most flows first
            ch.sort(key=lambda c: (c.before != ALLOW, -c.count, c.src, c.dst, c.protocol, c.dport or 0))
            changed = tuple(ch)
        return cls(part.files, part.bytes, part.tuples, part.flows, part.first, part.last, part.bad,
                   tuple(part.bad_records), part.ipv6, tuple(rules), unused, unobserved, tuple(mism), changed)


def replay_files(replayer: Replayer, files: Iterable[str], progress: Callable[[int], None] | None = None
                 ) -> Partial:
    """All files in one process, merged in order."""
    total = Partial()
    for f in files:
        total.merge(replayer.replay_file(f, progress))
    return total
