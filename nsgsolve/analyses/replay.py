"""Replay logged flows against a policy: which rules decide them, which rules no flow uses, where the log
and the model disagree, and (against a new policy) which logged flows a change would decide otherwise.

What a logged tuple means. A tuple is one flow seen at one NIC in one direction: the local end is the
destination of an inbound (``I``) tuple and the source of an outbound (``O``) one. The model meets that
NIC's layers in Azure's order for that direction -- the security admin rules of its VNet (AVNM) first,
then (inbound) subnet NSG and NIC NSG, (outbound) NIC NSG and subnet NSG, and the platform's own rules
(host services, the outbound TCP 25 block: semantics/platform.py) where the evaluator puts them -- and in
each the first matching rule decides; a Deny ends the walk, an admin AlwaysAllow skips the NSGs
(semantics.md). Every layer met counts one hit for the rule that decided there, so an Allow rule of the
subnet NSG that let a flow through to the NIC NSG is *used* even though the NIC NSG logged it. The log
says which NSG and rule decided (NSG flow logs: the NSG the record belongs to; VNet flow logs: the ACL
whose rule decided, found by its resource GUID, else the layer on the path that has a rule of that name,
admin rules included); a logged decision or rule the model does not reproduce is a mismatch, reported
with a tuple.

Speed. Tuples are read in batches of a few hundred thousand: the strings are joined and cut into columns
in arrays (importers/columns.py), every layer met is decided for all its tuples at once by the compiled
tables of the flow engine (semantics/flows.py, the engine of ``verify --flows``), and only what is
distinct is looked at in Python: where a (logged NSG, rule, NIC, direction) sits in the policy (a
:class:`_Path`), and what a (path, deciding rules, logged decision) combination means (hits, mismatch).
Results are sums of counters over files, so a run split over processes or Dask workers merges to the
same answer as a serial one (:meth:`Partial.merge`).
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from nsgsolve.importers import columns as colparse
from nsgsolve.importers.flowlogs import BadRecord, FlowGroup, read_flow_log
from nsgsolve.model import PROTOCOL_BY_NUMBER, Access, Direction, Span
from nsgsolve.semantics.addresses import V6_BASE, int_to_ip, ip_to_int, is_v6
from nsgsolve.semantics.classify import classifier
from nsgsolve.semantics.evaluate import Packet, TraceStep, path_steps, rule_matches
from nsgsolve.semantics.flows import CompiledLayer, _distinct, flow_columns
from nsgsolve.semantics.platform import HOST_SERVICES, SMTP_BLOCK
from nsgsolve.semantics.resolve import AdminLayer, IpcKey, Layer, ResolvedPolicy, ResolvedRule, dual_stack

ALLOW, DENY = "Allow", "Deny"
MAX_BAD_SHOWN = 200  # bad records kept with their positions (all are counted)
MAX_EXAMPLES = 3  # tuples kept per mismatch group
CACHE_LIMIT = 400_000  # distinct places held before they are forgotten, so memory stays flat on any log size
BATCH = 1 << 18  # tuples decided together: large enough that numpy's per-call cost vanishes, small in memory

RULE_PREFIXES = ("userrule_", "defaultrule_")
ADMIN = "(admin)"  # the logger of a tuple an AVNM security admin rule decided

# Mismatch kinds (docs/replay.md).
KINDS = {
    "decision": "the log's decision is not the policy's",
    "rule": "the policy decides the same way by another rule",
    "nsg-not-on-path": "the logging NSG is not on this NIC's path in the policy",
    "unknown-nsg": "the log names an NSG the policy does not have",
    "unknown-rule": "the logged rule is not a rule of the NSGs on the path",
    "unknown-admin-rule": "the log names a security admin rule (AVNM) the policy does not apply on this path",
    "platform": "the platform decides this flow (a host service), not the NSG that logged it",
    "unattributed": "neither the address nor the ACL says which NSG of the policy decided",
    "ambiguous-nic": "the address is in a subnet whose dynamic-IP NICs have different NSGs",
}


@lru_cache(maxsize=65536)
def bare_rule(name: str) -> str:
    """``UserRule_Allow-Web`` -> ``allow-web``: flow logs prefix rule names; Azure compares them case-blind."""
    low = name.lower()
    for p in RULE_PREFIXES:
        if low.startswith(p):
            return low[len(p):]
    return low


def _prefixed(name: str) -> bool:
    """NSG rules appear as ``UserRule_``/``DefaultRule_`` in flow logs; a VNet flow log names a security
    admin rule bare."""
    return name.lower().startswith(RULE_PREFIXES)


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
    ipv6: int = 0  # how many of the tuples are IPv6 (decided like the others)
    # (nsg, direction, rule) -> [hits, flows, first, last]
    hits: dict[tuple[str, str, str], list] = field(default_factory=dict)
    # mismatch key -> [count, [examples]]
    mismatches: dict[tuple, list] = field(default_factory=dict)
    # (src prefix, dst, protocol, dport, before, after) -> [count, example, new rule (nsg, dir, rule) or None]
    changed: dict[tuple, list] = field(default_factory=dict)
    # security admin rules: ("config/collection", direction, rule) -> [hits, flows, first, last]
    admin_hits: dict[tuple[str, str, str], list] = field(default_factory=dict)
    # the platform's own rules (semantics/platform.py): (rule, direction) -> [hits, flows, first, last]
    platform_hits: dict[tuple[str, str], list] = field(default_factory=dict)
    # what the replay assumed to place tuples (a dynamic-IP NIC found by its subnet) -> tuples
    assumptions: dict[str, int] = field(default_factory=dict)

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
        pairs: tuple[tuple[dict, dict], ...] = ((self.hits, o.hits), (self.admin_hits, o.admin_hits),
                                                (self.platform_hits, o.platform_hits))
        for mine_hits, theirs in pairs:
            for hk, v in theirs.items():
                _add_hits(mine_hits, hk, v[0], v[1], v[2], v[3])
        for what, count in o.assumptions.items():
            self.assumptions[what] = self.assumptions.get(what, 0) + count
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


# ---------------------------------------------------------------- where a tuple sits in the policy


@dataclass(frozen=True)
class _Path:
    """What a logged tuple meets at its NIC in its direction (admin layer, NSG layers and platform steps, in
    the evaluator's order), and which of them the log says decided."""

    steps: tuple[Layer | AdminLayer | TraceStep, ...] = ()
    logger: Any = None  # an NSG name, a tuple of candidate NSG names, ADMIN, or None: no layer has the rule
    dyn: IpcKey | None = None  # the local end, when rules must know it by identity (a dynamic IP)
    mismatch: tuple[str, str | None] | None = None  # (kind, nsg): the policy cannot place the tuple
    assumed: str | None = None  # what was assumed to place it, for the report

    @property
    def decided(self) -> tuple[Layer | AdminLayer, ...]:
        return tuple(s for s in self.steps if not isinstance(s, TraceStep))


MAX_SLOTS = 3  # an admin layer and two NSGs decide at one NIC in one direction


def _who(step, rule: ResolvedRule | None) -> str:
    if isinstance(step, Layer):
        return step.nsg.name
    if isinstance(step, AdminLayer):
        assert rule is not None
        return f"admin {rule.admin_rule.config}/{rule.admin_rule.collection}"
    return "platform"


def _rule_name(step, rule: ResolvedRule | None) -> str:
    return step.rule if isinstance(step, TraceStep) else rule.name  # type: ignore[union-attr]


def _walk(path: _Path, rules) -> tuple[list[tuple[Any, ResolvedRule | None]], str]:
    """The steps met, each with its deciding rule, and the decision, from the rule index of every
    decided step (an admin layer's ``len(rules)``: no admin rule matched)."""
    met: list[tuple[Any, ResolvedRule | None]] = []
    k = 0
    skip_nsgs = False
    for s in path.steps:
        if isinstance(s, TraceStep):
            met.append((s, None))
            if s.access is Access.DENY:
                return met, DENY
            continue
        idx = int(rules[k])
        k += 1
        if isinstance(s, AdminLayer):
            if idx >= len(s.rules):
                continue  # no admin rule matched: the NSGs decide
            r = s.rules[idx]
            met.append((s, r))
            if r.access is Access.DENY:
                return met, DENY
            skip_nsgs = r.access is Access.ALWAYS_ALLOW
            continue
        if skip_nsgs:
            continue  # an AlwaysAllow admin rule let the flow past the NSGs of this direction
        r = s.nsg.rules(s.direction)[idx]
        met.append((s, r))
        if r.access is Access.DENY:
            return met, DENY
    return met, ALLOW


class _PolicyView:
    """One resolved policy as the replay asks it: where an address and a logged NSG sit, and the compiled
    tables of every layer (built on first use)."""

    def __init__(self, rp: ResolvedPolicy, guids: Mapping[str, str] | None):
        self.rp = rp
        self.by_upper = {n.name.upper(): n.name for n in rp.policy.nsgs}
        self.guids = {k.lower(): v for k, v in (guids or {}).items()}
        self.static = rp.static_ip_index
        self.shared = rp.shared_ips
        self._alone: dict[tuple[str, Direction], tuple[Layer, ...]] = {}
        self.rule_names: dict[tuple[str, Direction], set[str]] = {}
        for n in rp.policy.nsgs:
            for d in Direction:
                self.rule_names[(n.name, d)] = {bare_rule(r.name) for r in n.rules_for(d)}
        # NSGs holding a user rule of a given name, for VNet flow logs whose ACL GUID is unknown
        self.user_rule_owners: dict[tuple[str, Direction], list[str]] = {}
        for n in rp.policy.nsgs:
            for r in n.rules:
                self.user_rule_owners.setdefault((bare_rule(r.name), r.direction), []).append(n.name)
        # Dynamic IP configurations (and the hosts a NIC-less subnet implies), which rules name by identity.
        self.dynamic = sorted(k for k, i in rp.ipcs.items() if i.ip is None)
        self.dyn_ids = {k: i + 1 for i, k in enumerate(self.dynamic)}
        self._dyn_at: dict[int, tuple[IpcKey | None, str | None, bool]] = {}
        self.compiled: list[CompiledLayer] = []
        self._compiled_ids: dict[tuple, int] = {}
        self.paths: list[_Path] = []
        self._path_ids: dict[tuple, int] = {}
        self._rule_index: dict[int, tuple[tuple, dict[int, int]]] = {}  # (rules kept alive, id -> index)

    def first_match_index(self, layer: Layer | AdminLayer, p: Packet, src_dyn: IpcKey | None,
                          dst_dyn: IpcKey | None) -> int:
        """The deciding rule's index in ``layer`` (evaluation order) for one packet, as the reference
        evaluator finds it; an admin layer's ``len(rules)`` when none of its rules matches."""
        if isinstance(layer, AdminLayer):
            return next((i for i, r in enumerate(layer.rules) if rule_matches(r, p, src_dyn, dst_dyn)),
                        len(layer.rules))
        rules = layer.nsg.rules(layer.direction)
        index = self._rule_index.get(id(rules))
        if index is None:
            index = self._rule_index[id(rules)] = (rules, {id(r): i for i, r in enumerate(rules)})
        return index[1][id(classifier(layer.nsg, layer.direction).first_match(p, src_dyn, dst_dyn))]

    def admin_names(self, layer: AdminLayer) -> set[str]:
        return {bare_rule(r.name) for r in layer.rules}

    def compiled_id(self, step: Layer | AdminLayer) -> int:
        if isinstance(step, AdminLayer):
            key: tuple = ("admin", step.vnet, step.direction)
        else:
            key = ("nsg", step.nsg.name, step.nsg.vnet, step.direction)
        got = self._compiled_ids.get(key)
        if got is None:
            if isinstance(step, AdminLayer):
                c = CompiledLayer(step.rules, self.dyn_ids, total=False)
            else:
                c = CompiledLayer(step.nsg.rules(step.direction), self.dyn_ids)
            got = self._compiled_ids[key] = len(self.compiled)
            self.compiled.append(c)
        return got

    def local(self, ip: int, direction: Direction, logged: str | None
              ) -> tuple[IpcKey | None, IpcKey | None, str | None, bool]:
        """(the IP configuration at ``ip``, the one rules know by identity, what was assumed, ambiguous).
        An address NICs of several VNets share is the one whose path has the logging NSG; an address no
        static NIC has is a dynamic-IP NIC's of its subnet when that settles which NSGs apply."""
        key = self.static.get(ip)
        if key is not None:
            owners = self.shared.get(ip)
            if owners is not None:
                cands = [k for k in owners
                         if logged is not None and any(l.nsg.name == logged for l in self._layers(k, direction))]
                if len(cands) != 1:
                    return None, None, None, False
                key = cands[0]
            return key, None, None, False
        got = self._dyn_at.get(ip)
        if got is None:
            got = self._dyn_at[ip] = self._dynamic_at(ip)
        found, assumed, ambiguous = got
        return found, (found if assumed and "only" in assumed else None), assumed, ambiguous

    def _dynamic_at(self, ip: int) -> tuple[IpcKey | None, str | None, bool]:
        rp = self.rp
        cands = [k for k in self.dynamic if ip in rp.ipcs[k].usable]
        if not cands:
            return None, None, False
        info = rp.ipcs[cands[0]]
        if len(cands) == 1:
            what = (f"a host of subnet {info.subnet_label} (the subnet has no NIC in the policy; its NSG decides)"
                    if info.implied else f"{cands[0]}, the only dynamic-IP NIC of subnet {info.subnet_label}")
            return (cands[0], f"addresses of subnet {info.subnet_label} that no static NIC holds are taken as {what}",
                    False)
        # Several dynamic NICs: the same NSGs, and no rule naming one of them, decide alike whichever it is.
        same = len({(rp.ipcs[k].nic_nsg, rp.ipcs[k].subnet_nsg) for k in cands}) == 1
        named = any(k in r.src.members or k in r.dst.members
                    for k in cands for d in Direction for l in self._layers(cands[0], d) for r in l.nsg.rules(d))
        if not same or named:
            return None, None, True
        names = ", ".join(str(k) for k in cands[:5]) + (", ..." if len(cands) > 5 else "")
        return cands[0], (f"addresses of subnet {info.subnet_label} that no static NIC holds are taken as one of its "
                          f"dynamic-IP NICs ({names}), which have the same NSGs"), False

    def _layers(self, key: IpcKey, direction: Direction) -> list[Layer]:
        rp = self.rp
        return rp.inbound_layers(key) if direction is Direction.INBOUND else rp.outbound_layers(key)

    def steps(self, key: IpcKey, direction: Direction, kind: int, smtp_dst: int) -> tuple:
        """The steps of the NIC's walk, as the reference evaluator lays them out (path_steps, the admin
        layer in front)."""
        rp = self.rp
        if direction is Direction.OUTBOUND:
            service = HOST_SERVICES[kind - 1] if kind else None
            smtp = smtp_dst >= 0 and rp.smtp_blocked and smtp_dst in rp.internet_tag(rp.ipcs[key].vnet)
            steps, _ = path_steps(rp, key, None, 0, service, smtp, False)
        else:
            steps, _ = path_steps(rp, None, key, 0, None, False, False)
        admin = rp.admin_for(key, direction)
        return ((admin,) if admin is not None else ()) + tuple(steps)

    def alone(self, name: str, direction: Direction) -> tuple[Layer, ...]:
        """The NSG as the only layer: for a logged flow whose local address is not a NIC of the policy."""
        got = self._alone.get((name, direction))
        if got is None:
            vnets = self.rp.attachment_vnets(name)
            got = self._alone[(name, direction)] = (
                Layer(self.rp.nsg(name, vnets[0] if vnets else None), "logged", direction),)
        return got

    def path_id(self, ctx: tuple, local: int, direction: Direction, kind: int, smtp_dst: int) -> int:
        key = (ctx, local, direction, kind, smtp_dst)
        got = self._path_ids.get(key)
        if got is None:
            if len(self._path_ids) > CACHE_LIMIT:
                self._path_ids.clear()  # ids stay valid (paths are kept); only the look-up is rebuilt
            got = self._path_ids[key] = len(self.paths)
            self.paths.append(self._place(ctx, local, direction, kind, smtp_dst))
        return got

    def _place(self, ctx: tuple, local: int, direction: Direction, kind: int, smtp_dst: int) -> _Path:
        version, nsg_logged, acl, rule_logged = ctx
        rule_bare = bare_rule(rule_logged)
        if version != 4:
            name = self.by_upper.get((nsg_logged or "").upper())
            key, dyn, assumed, ambiguous = self.local(local, direction, name)
            if ambiguous:
                return _Path(mismatch=("ambiguous-nic", name or nsg_logged))
            if key is not None:
                return _Path(self.steps(key, direction, kind, smtp_dst),
                             name if name is not None else (nsg_logged or "?"), dyn, assumed=assumed)
            if name is None:
                return _Path(mismatch=("unknown-nsg", nsg_logged))
            return _Path(self.alone(name, direction), name)
        # VNet flow logs: the ACL's GUID when the policy files carry it, else the layer with a rule of that name
        named = self.guids.get((acl or "").lower())
        key, dyn, assumed, ambiguous = self.local(local, direction, named)
        if ambiguous:
            return _Path(mismatch=("ambiguous-nic", named))
        if key is not None:
            steps = self.steps(key, direction, kind, smtp_dst)
            logger: Any = named
            if named is None:
                admin = next((s for s in steps if isinstance(s, AdminLayer)), None)
                if (admin is not None and rule_bare in self.admin_names(admin)) or not _prefixed(rule_logged):
                    # VNet flow logs name NSG rules with their UserRule_/DefaultRule_ prefix and admin rules bare
                    logger = ADMIN
                else:
                    having = tuple(l.nsg.name for l in steps if isinstance(l, Layer)
                                   and rule_bare in self.rule_names.get((l.nsg.name, direction), ()))
                    # A default rule's name is in every NSG: several candidates, settled against the model's walk.
                    logger = having or None
            return _Path(steps, logger, dyn, assumed=assumed)
        if named is not None and self.rp.policy.nsg(named) is not None:
            return _Path(self.alone(named, direction), named)
        owners = self.user_rule_owners.get((rule_bare, direction), [])
        if len(owners) == 1:
            return _Path(self.alone(owners[0], direction), owners[0])
        return _Path(mismatch=("unattributed", None))

    def judge(self, path: _Path, rules, logged: str, version: int, rule_logged: str, direction: Direction
              ) -> tuple[list[tuple[str, tuple]], tuple | None, str]:
        """What the policy says of a tuple on ``path`` decided by ``rules``: (hits as (table, key), the
        mismatch with the log or None, the decision)."""
        d = direction.value
        if path.mismatch is not None:
            kind, who = path.mismatch
            return [], (kind, who, d, rule_logged, logged, None, None, None), ALLOW
        met, decision = _walk(path, rules)
        hits: list[tuple[str, tuple]] = []
        for s, r in met:
            if isinstance(s, Layer):
                assert r is not None
                hits.append(("nsg", (s.nsg.name, d, r.name)))
            elif isinstance(s, AdminLayer):
                assert r is not None
                a = r.admin_rule
                hits.append(("admin", (f"{a.config}/{a.collection}", d, a.name)))
            else:
                hits.append(("platform", (s.rule, d)))
        last_who, last_rule = (_who(*met[-1]), _rule_name(*met[-1])) if met else (None, None)
        rule_bare = bare_rule(rule_logged)
        logger = path.logger
        if logger == ADMIN:
            admin = next((s for s in path.steps if isinstance(s, AdminLayer)), None)
            if admin is None or rule_bare not in self.admin_names(admin):
                mis = ("unknown-admin-rule", None, d, rule_logged, logged, last_who, last_rule, decision)
                return hits, mis, decision
            where = f"admin {admin.vnet}"
            entry = next(((s, r) for s, r in met if isinstance(s, AdminLayer)), None)
            if decision != logged:
                return hits, ("decision", where, d, rule_logged, logged, last_who, last_rule, decision), decision
            if entry is None or bare_rule(entry[1].name) != rule_bare:  # type: ignore[union-attr]
                return hits, ("rule", where, d, rule_logged, logged, last_who, last_rule, decision), decision
            return hits, None, decision
        nsg_met = [(s, r) for s, r in met if isinstance(s, Layer)]
        if isinstance(logger, tuple):
            # The ACL is unknown and several NSGs on the path have a rule of that name: the layer that logs
            # is the one the model ends at if it is among them, else one where that rule decides.
            deciding = [s.nsg.name for s, r in nsg_met if bare_rule(r.name) == rule_bare]  # type: ignore[union-attr]
            logger = (nsg_met[-1][0].nsg.name if nsg_met and nsg_met[-1][0].nsg.name in logger
                      else (deciding[-1] if deciding else logger[0]))
        if logger is None:
            # VNet flow log, ACL unknown, no NSG on the path with a rule of that name.
            return hits, ("unknown-rule", None, d, rule_logged, logged, last_who, last_rule, decision), decision
        layer = next((s for s in path.steps if isinstance(s, Layer) and s.nsg.name == logger), None)
        if layer is None:
            if any(isinstance(s, TraceStep) and s.access is Access.ALLOW for s in path.steps):
                kind = "platform"
            else:
                kind = "nsg-not-on-path" if logger.upper() in self.by_upper else "unknown-nsg"
            return hits, (kind, logger, d, rule_logged, logged, last_who, last_rule, decision), decision
        at = next((r for s, r in nsg_met if s is layer), None)
        if at is None:
            # An earlier layer denied (the logging NSG never saw the flow in the model), or an admin
            # AlwaysAllow let it past the NSGs.
            kind = "decision" if decision == DENY or logged != decision else "rule"
            return hits, (kind, logger, d, rule_logged, logged, last_who, last_rule, decision), decision
        at_decision = at.access.value
        # VNet flow logs record the flow's outcome; NSG flow logs the logging NSG's own decision.
        claimed = decision if version == 4 else at_decision
        if claimed != logged:
            who, rule = (last_who, last_rule) if version == 4 else (logger, at.name)
            return hits, ("decision", logger, d, rule_logged, logged, who, rule, claimed), decision
        if bare_rule(at.name) != rule_bare:
            kind = "rule" if rule_bare in self.rule_names.get((logger, direction), ()) else "unknown-rule"
            return hits, (kind, logger, d, rule_logged, logged, logger, at.name, at_decision), decision
        return hits, None, decision

    def verdict(self, path: _Path, rules) -> tuple[str, tuple[str, str, str] | None]:
        """The decision and the deciding (layer, direction, rule), for --against."""
        if path.mismatch is not None:
            return ALLOW, None  # the NSG is gone and the address is no NIC: nothing filters the flow
        met, decision = _walk(path, rules)
        if not met:
            return decision, None
        s, r = met[-1]
        return decision, (_who(s, r), s.direction.value, _rule_name(s, r))


def _first_per_group(ids: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows sorted by group, stable; where each group starts in that order)."""
    order = np.argsort(ids, kind="stable")
    starts = np.searchsorted(ids[order], np.arange(n_groups + 1))
    return order, starts


class Replayer:
    """Replays flow log files against ``rp`` (and ``new`` with ``--against``)."""

    def __init__(self, rp: ResolvedPolicy, new: ResolvedPolicy | None = None,
                 guids: Mapping[str, str] | None = None, group_prefix: int = 24):
        self.old = _PolicyView(rp, guids)
        self.new = _PolicyView(new, guids) if new is not None else None
        self.group_prefix = group_prefix
        self.mask = (0xFFFFFFFF << (32 - group_prefix)) & 0xFFFFFFFF if group_prefix else 0
        self._ctx_ids: dict[tuple, int] = {}
        self._ctxs: list[tuple] = []
        self._judged: dict[tuple, tuple] = {}
        self._verdicts: dict[tuple, tuple] = {}
        self._examples: dict[tuple, int] = {}  # examples taken per mismatch group in the current file
        self.guids = guids
        self._dual: tuple[_PolicyView, _PolicyView | None] | None = None  # views for IPv6 tuples (_views6)
        self._v6_texts: dict[str, int | None] = {}
        self._rules6_memo: dict[int, dict[tuple, list[int]]] = {}

    # ------------------------------------------------------------ per file

    def replay_file(self, path: str, progress: Callable[[int], None] | None = None) -> Partial:
        part = Partial(files=1)
        self._examples = {}  # a file's partial carries its own examples, so merging in file order is stable
        bad_list = part.bad_records
        batch: list[FlowGroup] = []
        size = 0

        def note(b: BadRecord) -> None:
            part.bad += 1
            if len(bad_list) < MAX_BAD_SHOWN:
                bad_list.append(b)

        def bad(b: BadRecord) -> None:
            nonlocal batch, size
            if batch:  # the tuples before the problem first, so warnings stay in file order
                self._batch(batch, part, note)
                batch, size = [], 0
            note(b)

        for g in read_flow_log(path, bad, progress):
            if g.tuples:
                batch.append(g)
                size += len(g.tuples)
            if size >= BATCH:
                self._batch(batch, part, note)
                batch, size = [], 0
        if batch:
            self._batch(batch, part, note)
        try:
            part.bytes = os.path.getsize(path)
        except OSError:
            pass
        return part

    def _batch(self, groups: list[FlowGroup], part: Partial, bad: Callable[[BadRecord], None]) -> None:
        # -- the tuples as one text, one row each (a tuple that is no string, or holds a line break, is an
        # empty row here and a bad record below)
        texts: list[str] = []
        odd: dict[int, str] = {}
        lens = np.empty(len(groups), dtype=np.int64)
        base = 0
        for gi, g in enumerate(groups):
            strs = g.tuples
            try:
                joined = "\n".join(strs)
                if joined.count("\n") != len(strs) - 1:
                    raise TypeError
            except TypeError:
                fixed = []
                for i, t in enumerate(strs):
                    if isinstance(t, str) and "\n" not in t:
                        fixed.append(t)
                    else:
                        fixed.append("")
                        odd[base + i] = ("a flow tuple is a string, not " + repr(t))[:200] if not isinstance(t, str) \
                            else f"{t!r}: a flow tuple is one line"
                joined = "\n".join(fixed)
            texts.append(joined)
            lens[gi] = len(strs)
            base += len(strs)
        data = ("\n".join(texts) + "\n").encode("utf-8", "replace")
        c = colparse.split(data, 9)
        n = base
        assert len(c) == n
        grp = np.repeat(np.arange(len(groups)), lens)
        offsets = np.concatenate([[0], np.cumsum(lens)])
        version = np.array([g.version for g in groups], dtype=np.int64)[grp]
        v4 = version == 4

        # -- the columns, each checked
        need = np.where(version == 1, 8, 9)
        complete = c.cells >= need
        ts, ts_ok = colparse.unsigned(c, 0, 18)
        (src, src_ok, src_v6), (dst, dst_ok, dst_v6) = colparse.ipv4_columns(c, (1, 2))
        sport, sp_ok = colparse.unsigned(c, 3, 5)
        dport, dp_ok = colparse.unsigned(c, 4, 5)
        pnum, pnum_ok = colparse.unsigned(c, 5, 3)
        pch, one5 = c.char(5), c.length(5) == 1
        proto = np.where(v4, pnum, np.where(one5 & (pch == ord("T")), 6, np.where(one5 & (pch == ord("U")), 17, -1)))
        proto_ok = np.where(v4, pnum_ok & (pnum <= 255), proto >= 0)
        dch, one6 = c.char(6), c.length(6) == 1
        dir_ok = one6 & ((dch == ord("I")) | (dch == ord("O")))
        out = dch == ord("O")
        ech, one7 = c.char(7), c.length(7) == 1
        states = np.isin(ech, np.frombuffer(b"BCED", np.uint8))
        dec_ok = one7 & np.where(v4, states, (ech == ord("A")) | (ech == ord("D")))
        logged_deny = ech == ord("D")
        begins = np.where(version == 1, True, np.where(v4, (ech == ord("B")) | logged_deny, c.char(8) == ord("B")))
        head_ok = complete & ts_ok & sp_ok
        fields_ok = head_ok & proto_ok & dec_ok & dir_ok & dp_ok & (sport <= 65535) & (dport <= 65535)
        good = fields_ok & src_ok & dst_ok & ~src_v6 & ~dst_v6
        if odd:
            odd_rows = np.fromiter(odd, dtype=np.int64, count=len(odd))
            good[odd_rows] = False
            fields_ok[odd_rows] = False
        # IPv6 tuples (an address with a colon): both addresses read in Python (rare, and each distinct text
        # once); in the columns an IPv6 address is its index in ``addrs6``, decided in a pass of its own.
        addrs6: list[int] = []
        v6 = np.zeros(n, dtype=bool)
        cand = np.flatnonzero(fields_ok & (src_v6 | dst_v6))
        if len(cand):
            src, dst = src.copy(), dst.copy()
            ids6: dict[int, int] = {}
            for i in cand.tolist():
                a, b = self._v6(c.text(i, 1)), self._v6(c.text(i, 2))
                if a is not None and b is not None:
                    src[i] = ids6.setdefault(a, len(ids6))
                    dst[i] = ids6.setdefault(b, len(ids6))
                    v6[i] = True
            addrs6 = list(ids6)
        counted = good | v6
        for i in np.flatnonzero(~counted).tolist():
            g = groups[int(grp[i])]
            t = g.tuples[i - int(offsets[grp[i]])]
            if i in odd:
                line, col = g.position(None)
                bad(BadRecord(g.file, line, col, "malformed tuple", odd[i], "W902"))
            else:
                line, col = g.position(t)
                bad(BadRecord(g.file, line, col, "malformed tuple", f"{t!r}: {_problem(g.version, t)}", "W902"))

        # -- counts over every replayed tuple
        seconds = np.where(v4, ts // 1000, ts)
        part.tuples += int(counted.sum())
        part.flows += int((begins & counted).sum())
        part.ipv6 += int(v6.sum())
        if counted.any():
            lo, hi = int(seconds[counted].min()), int(seconds[counted].max())
            part.first = lo if part.first is None else min(part.first, lo)
            part.last = hi if part.last is None else max(part.last, hi)
        columns = (grp, out, src, dst, sport, dport, proto, logged_deny, begins, seconds)
        kept = np.flatnonzero(good)
        if len(kept):
            self._decide(part, groups, offsets, kept, tuple(x[kept] for x in columns))
        kept = np.flatnonzero(v6)
        if len(kept):
            self._decide(part, groups, offsets, kept, tuple(x[kept] for x in columns), addrs6)

    def _v6(self, text: str) -> int | None:
        """An IPv6 address cell as an integer (addresses.ip_to_int), None when it is not one."""
        got = self._v6_texts.get(text, -1)
        if got == -1:
            try:
                value: int | None = ip_to_int(text)
            except ValueError:
                value = None
            got = self._v6_texts[text] = value if value is not None and is_v6(value) else None
            if len(self._v6_texts) > CACHE_LIMIT:
                self._v6_texts.clear()
        return got

    def _decide(self, part: Partial, groups: list[FlowGroup], offsets, kept, columns: tuple,
                addrs6: list[int] | None = None) -> None:
        """Place, decide, judge and count the tuples ``kept`` of a batch, all IPv4, or all IPv6 when
        ``addrs6`` is given: their address columns then hold indices into it (the tables of the engine
        are IPv4; an IPv6 tuple is decided by the scalar classifier, see :meth:`_rules`)."""
        grp, out, src, dst, sport, dport, proto, logged_deny, begins, seconds = columns
        old, new = (self.old, self.new) if addrs6 is None else self._views6()
        ported = (proto == 6) | (proto == 17)
        dport_eff = np.where(ported, dport, 0)

        # -- where each tuple sits: once per distinct (logged context, local address, direction, platform facts)
        ctx = np.empty(len(groups), dtype=np.int64)
        for gi, g in enumerate(groups):
            key = (g.version, g.nsg, g.acl, g.rule)
            got = self._ctx_ids.get(key)
            if got is None:
                got = self._ctx_ids[key] = len(self._ctxs)
                self._ctxs.append(key)
            ctx[gi] = got
        ctx_row = ctx[grp]
        local = np.where(out, src, dst)
        kind = np.zeros(len(kept), dtype=np.int64)
        for j, service in enumerate(HOST_SERVICES if addrs6 is None else ()):  # the host services are IPv4
            # the first that matches, as host_service() tests them
            hit = (out & (kind == 0) & _in_set(proto, service.protocols) & _in_set(dst, service.addresses)
                   & _in_set(dport_eff, service.dports))
            kind[hit] = j + 1
        smtp_dst = np.where(out & _in_set(proto, SMTP_BLOCK.protocols) & _in_set(dport_eff, SMTP_BLOCK.dports), dst, -1)
        first, place = _distinct([ctx_row, local, out.astype(np.int64), kind, smtp_dst + 1],
                                 [len(self._ctxs), 1 << 32, 2, len(HOST_SERVICES) + 1, (1 << 32) + 1])
        real = (lambda x: x) if addrs6 is None else (lambda x: addrs6[x] if x >= 0 else x)
        places = [(self._ctxs[a], real(b), Direction.OUTBOUND if o else Direction.INBOUND, k, real(s))
                  for a, b, o, k, s in zip(ctx_row[first].tolist(), local[first].tolist(), out[first].tolist(),
                                           kind[first].tolist(), smtp_dst[first].tolist())]
        flows = (out, proto, src, sport, dst, dport, addrs6)
        judged_ids, before_allow = self._judge_rows(old, places, place, flows, logged_deny, part)
        # -- hits and mismatches, once per distinct judgement
        self._fold(part, judged_ids, begins, seconds, grp, kept, groups, offsets)
        if new is not None:
            after_allow, after_rule = self._verdict_rows(new, places, place, flows)
            self._changed(part, before_allow, after_allow, after_rule, src, dst, proto, dport, ported, grp, kept,
                          groups, offsets, addrs6)

    def _views6(self) -> tuple[_PolicyView, _PolicyView | None]:
        """The views IPv6 tuples are decided in. A policy without an IPv6 address reads `*` and the tags as
        IPv4 alone (ResolvedPolicy.has_ipv6: no packet a question meets is IPv6), but a log's IPv6 tuple
        is one: it is decided in the same policy read for both families, as Azure reads it."""
        if self._dual is None:
            self._dual = (self.old if self.old.rp.has_ipv6 else _PolicyView(dual_stack(self.old.rp), self.guids),
                          None if self.new is None else
                          self.new if self.new.rp.has_ipv6 else _PolicyView(dual_stack(self.new.rp), self.guids))
        return self._dual

    def _rules(self, view: _PolicyView, path_ids: np.ndarray, flows) -> np.ndarray:
        """The deciding rule's index at every decided step of each tuple's path: (tuples, MAX_SLOTS)."""
        out, proto, src, sport, dst, dport, addrs6 = flows
        if addrs6 is not None:
            return self._rules6(view, path_ids, flows)
        n = len(path_ids)
        paths = view.paths
        used = np.unique(path_ids).tolist()
        slot_layer = np.full((len(paths), MAX_SLOTS), -1, dtype=np.int64)
        dyn = np.zeros(len(paths), dtype=np.int64)
        for p in used:
            path = paths[p]
            for k, s in enumerate(path.decided):
                slot_layer[p, k] = view.compiled_id(s)
            if path.dyn is not None:
                dyn[p] = view.dyn_ids.get(path.dyn, 0)
        local_dyn = dyn[path_ids]
        cols = flow_columns(proto, src, sport, dst, dport, np.where(out, local_dyn, 0), np.where(out, 0, local_dyn))
        flat = slot_layer[path_ids].reshape(-1)
        met = np.flatnonzero(flat >= 0)
        by_layer = met[np.argsort(flat[met], kind="stable")]
        cuts = np.searchsorted(flat[by_layer], np.arange(len(view.compiled) + 1))
        rules = np.full(n * MAX_SLOTS, -1, dtype=np.int64)
        for li, compiled in enumerate(view.compiled):
            pos = by_layer[cuts[li]:cuts[li + 1]]
            if len(pos):
                rules[pos] = compiled.first_match(cols, pos // MAX_SLOTS)
        return rules.reshape(n, MAX_SLOTS)

    def _rules6(self, view: _PolicyView, path_ids: np.ndarray, flows) -> np.ndarray:
        """:meth:`_rules` for IPv6 tuples, by the scalar classifier of the reference evaluator
        (semantics/classify.py), once per distinct (path, packet)."""
        out, proto, src, sport, dst, dport, addrs6 = flows
        rules = np.full((len(path_ids), MAX_SLOTS), -1, dtype=np.int64)
        memo = self._rules6_memo.setdefault(id(view), {})
        for i, key in enumerate(zip(path_ids.tolist(), out.tolist(), proto.tolist(), src.tolist(), sport.tolist(),
                                    dst.tolist(), dport.tolist())):
            p, o, pr, s, sp, d, dp = key
            key = (p, pr, addrs6[s], sp, addrs6[d], dp)
            got = memo.get(key)
            if got is None:
                path = view.paths[p]
                ported = pr in (6, 17)
                packet = Packet(pr, addrs6[s], sp if ported else None, addrs6[d], dp if ported else None)
                src_dyn, dst_dyn = (path.dyn, None) if o else (None, path.dyn)
                got = memo[key] = [view.first_match_index(layer, packet, src_dyn, dst_dyn) for layer in path.decided]
                if len(memo) > CACHE_LIMIT:
                    memo.clear()
            rules[i, :len(got)] = got
        return rules

    def _judge_rows(self, view, places, place, flows, logged_deny, part):
        path_of_place = np.array([view.path_id(*p) for p in places], dtype=np.int64)
        path_ids = path_of_place[place]
        # what was assumed to place tuples, with how many
        per_path = np.bincount(path_ids, minlength=len(view.paths))
        for p in np.flatnonzero(per_path).tolist():
            a = view.paths[p].assumed
            if a is not None:
                part.assumptions[a] = part.assumptions.get(a, 0) + int(per_path[p])
        rules = self._rules(view, path_ids, flows)
        radix = int(rules.max(initial=-1)) + 2
        first, judged = _distinct([path_ids, rules[:, 0] + 1, rules[:, 1] + 1, rules[:, 2] + 1,
                                   logged_deny.astype(np.int64)], [len(view.paths), radix, radix, radix, 2])
        allow_of = np.empty(len(first), dtype=bool)
        self._batch_judged: list[tuple] = []
        for j, i in enumerate(first.tolist()):
            p = int(path_ids[i])
            key = (id(view), p, tuple(rules[i].tolist()), bool(logged_deny[i]))  # IPv6 tuples: a view of their own
            got = self._judged.get(key)
            if got is None:
                ctx = places[int(place[i])][0]
                got = self._judged[key] = view.judge(view.paths[p], rules[i], DENY if logged_deny[i] else ALLOW,
                                                     ctx[0], ctx[3], places[int(place[i])][2])
                if len(self._judged) > CACHE_LIMIT:
                    self._judged.clear()
            self._batch_judged.append(got)
            allow_of[j] = got[2] == ALLOW
        return judged, allow_of[judged]

    def _fold(self, part: Partial, judged: np.ndarray, begins, seconds, grp, rows, groups, offsets) -> None:
        outcomes = self._batch_judged
        k = len(outcomes)
        count = np.bincount(judged, minlength=k)
        flows = np.bincount(judged, weights=begins, minlength=k).astype(np.int64)
        order, starts = _first_per_group(judged, k)
        sec = seconds[order]
        nonempty = starts[:-1] < starts[1:]
        lo = np.zeros(k, dtype=np.int64)
        hi = np.zeros(k, dtype=np.int64)
        lo[nonempty] = np.minimum.reduceat(sec, starts[:-1][nonempty])
        hi[nonempty] = np.maximum.reduceat(sec, starts[:-1][nonempty])
        tables: dict[str, dict] = {"nsg": part.hits, "admin": part.admin_hits, "platform": part.platform_hits}
        for j, (hits, mismatch, _decision) in enumerate(outcomes):
            n = int(count[j])
            if not n:
                continue
            f, a, b = int(flows[j]), int(lo[j]), int(hi[j])
            for table, key in hits:
                _add_hits(tables[table], key, n, f, a, b)
            if mismatch is not None:
                m = part.mismatches.get(mismatch)
                if m is None:
                    m = part.mismatches[mismatch] = [0, []]
                m[0] += n
                taken = self._examples.get(mismatch, 0)
                seen = {e.tuple for e in m[1]}
                for r in order[starts[j]:starts[j + 1]][:MAX_EXAMPLES].tolist():
                    if taken >= MAX_EXAMPLES or len(m[1]) >= MAX_EXAMPLES:
                        break
                    ex = self._example(int(rows[r]), int(grp[r]), groups, offsets)
                    if ex.tuple in seen:
                        continue
                    seen.add(ex.tuple)
                    m[1].append(ex)
                    taken += 1
                self._examples[mismatch] = taken

    @staticmethod
    def _example(row: int, g: int, groups: list[FlowGroup], offsets) -> Example:
        group = groups[g]
        t = group.tuples[row - int(offsets[g])]
        line, col = group.position(t)
        return Example(t, group.file, line, col)

    def _verdict_rows(self, view, places, place, flows):
        path_of_place = np.array([view.path_id(*p) for p in places], dtype=np.int64)
        path_ids = path_of_place[place]
        rules = self._rules(view, path_ids, flows)
        radix = int(rules.max(initial=-1)) + 2
        first, ids = _distinct([path_ids, rules[:, 0] + 1, rules[:, 1] + 1, rules[:, 2] + 1],
                               [len(view.paths), radix, radix, radix])
        allow = np.empty(len(first), dtype=bool)
        deciding: list[Any] = []
        for j, i in enumerate(first.tolist()):
            key = (id(view), int(path_ids[i]), tuple(rules[i].tolist()))
            got = self._verdicts.get(key)
            if got is None:
                got = self._verdicts[key] = view.verdict(view.paths[key[1]], rules[i])
                if len(self._verdicts) > CACHE_LIMIT:
                    self._verdicts.clear()
            allow[j] = got[0] == ALLOW
            deciding.append(got[1])
        return allow[ids], (ids, deciding)

    def _changed(self, part, before, after, after_rule, src, dst, proto, dport, ported, grp, rows, groups,
                 offsets, addrs6: list[int] | None = None) -> None:
        sel = np.flatnonzero(before != after)
        if not len(sel):
            return
        rule_ids, deciding = after_rule
        dkey = np.where(ported, dport + 1, 0)[sel]
        if addrs6 is None:
            src_group = src & self.mask
            src_text = lambda r: int_to_ip(int(src[r]) & self.mask) + f"/{self.group_prefix}"  # noqa: E731
            dst_text = lambda r: int_to_ip(int(dst[r]))  # noqa: E731
        else:
            # An IPv6 source is grouped by its /64 (the size of an IPv6 subnet), or exactly with --group-prefix 32.
            bits = 128 if self.group_prefix == 32 else 64 if self.group_prefix else 0
            keep = ((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1)
            nets = [((a - V6_BASE) & keep) + V6_BASE for a in addrs6]
            net_ids = {v: i for i, v in enumerate(dict.fromkeys(nets))}
            src_group = np.array([net_ids[v] for v in nets], dtype=np.int64)[src]
            src_text = lambda r: int_to_ip(nets[int(src[r])]) + f"/{bits}"  # noqa: E731
            dst_text = lambda r: int_to_ip(addrs6[int(dst[r])])  # noqa: E731
        first, gid = _distinct([src_group[sel], dst[sel], proto[sel], dkey, before[sel].astype(np.int64)],
                               [1 << 32, 1 << 32, 256, 65537, 2])
        k = len(first)
        count = np.bincount(gid, minlength=k)
        order, starts = _first_per_group(gid, k)
        for j in range(k):
            r = int(sel[order[starts[j]]])  # the group's first tuple in log order
            pr = int(proto[r])
            key = (src_text(r), dst_text(r),
                   PROTOCOL_BY_NUMBER[pr].value if pr in PROTOCOL_BY_NUMBER else str(pr),
                   int(dport[r]) if ported[r] else None, ALLOW if before[r] else DENY, ALLOW if after[r] else DENY)
            ch = part.changed.get(key)
            if ch is None:
                ch = part.changed[key] = [0, self._example(int(rows[r]), int(grp[r]), groups, offsets),
                                          deciding[int(rule_ids[r])]]
            ch[0] += int(count[j])

    # ------------------------------------------------------------ the answer

    def result(self, part: Partial) -> "ReplayResult":
        return ReplayResult.build(self.old.rp, part, self.new.rp if self.new is not None else None, self.group_prefix)


def _in_set(x: np.ndarray, s) -> np.ndarray:
    los = np.fromiter((lo for lo, _ in s), dtype=np.int64)
    his = np.fromiter((hi for _, hi in s), dtype=np.int64)
    i = np.searchsorted(los, x, side="right") - 1
    return (i >= 0) & (x <= his[np.maximum(i, 0)])


def _problem(version: int, t: str) -> str:
    """What is wrong with a tuple the column reader refused, in the words of its first bad field."""
    p = t.split(",")
    need = 8 if version == 1 else 9
    if len(p) < need:
        return f"{len(p)} fields, a version {version} tuple has {need} or more"
    if not p[0].isdigit():
        return f"timestamp {p[0]!r} is not a number"
    if not p[3].isdigit() or len(p[3]) > 5 or int(p[3]) > 65535:
        return f"source port {p[3]!r} is not 0-65535"
    for a in (p[1], p[2]):
        if not _is_ip(a):
            return f"address {a!r} is not an IPv4 or IPv6 address"
    if (":" in p[1]) != (":" in p[2]):
        return "the source and destination addresses are of different families (a flow is IPv4 or IPv6)"
    if version == 4:
        if not p[5].isdigit() or int(p[5]) > 255:
            return f"protocol {p[5]!r} is not an IANA protocol number"
        if p[7] not in ("B", "C", "E", "D"):
            return f"flow state {p[7]!r} is not B, C, E or D"
    else:
        if p[5] not in ("T", "U"):
            return f"protocol {p[5]!r} is not T or U"
        if p[7] not in ("A", "D"):
            return f"decision {p[7]!r} is not A or D"
    if p[6] not in ("I", "O"):
        return f"direction {p[6]!r} is not I or O"
    if not p[4].isdigit() or len(p[4]) > 5 or int(p[4]) > 65535:
        return f"destination port {p[4]!r} is not 0-65535"
    return "a field is not what its column needs"


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
        if self.kind == "unknown-admin-rule":
            return (f"{where}: {said}, a security admin rule (AVNM) the policy does not apply at this NIC ({model}); "
                    "add the network manager's admin configuration to the policy files")
        if self.kind == "platform":
            return f"{where}: {said}, but the platform decides this flow in the policy, not {self.nsg} ({model})"
        if self.kind == "ambiguous-nic":
            return (f"{where}: {said}, but the local address is in a subnet whose dynamic-IP NICs have different "
                    "NSGs, so the policy does not say which NIC it is")
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
    # security admin rules (AVNM), in the same shape: ``nsg`` is "config/collection"
    admin_rules: tuple[RuleStat, ...] = ()
    platform: tuple[tuple[str, str, int, int], ...] = ()  # (rule, direction, hits, flows) of the platform
    assumptions: tuple[tuple[str, int], ...] = ()  # (what was assumed, tuples placed by it)

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
        admin: list[RuleStat] = []
        for a in rp.policy.admin_rules():
            where = f"{a.config}/{a.collection}"
            h = part.admin_hits.get((where, a.direction.value, a.name), [0, 0, None, None])
            admin.append(RuleStat(where, a.direction.value, a.name, a.priority, a.access.value, False, h[0], h[1],
                                  h[2], h[3], a.span))
        platform = tuple(sorted((k[0], k[1], v[0], v[1]) for k, v in part.platform_hits.items()))
        assumptions = tuple(sorted(part.assumptions.items(), key=lambda kv: (-kv[1], kv[0])))
        return cls(part.files, part.bytes, part.tuples, part.flows, part.first, part.last, part.bad,
                   tuple(part.bad_records), part.ipv6, tuple(rules), unused, unobserved, tuple(mism), changed,
                   tuple(admin), platform, assumptions)


def replay_files(replayer: Replayer, files: Iterable[str], progress: Callable[[int], None] | None = None
                 ) -> Partial:
    """All files in one process, merged in order."""
    total = Partial()
    for f in files:
        total.merge(replayer.replay_file(f, progress))
    return total
