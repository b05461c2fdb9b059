"""The linter: every user rule of every NSG, in every VNet where it is evaluated and each direction,
through the registered checks (:mod:`nsgsolve.analyses.lint.registry`); findings of an NSG resolved in
several VNets are merged, saying where a finding holds only in some.

List analyses are cached per distinct rule list (an NSG that resolves the same way in several VNets is
analysed once) and rules are spread over the machine's cores (:func:`nsgsolve.parallel.fork_map`).
A policy with IPv6 addresses is analysed in both address families, each in its own space
(:mod:`nsgsolve.analyses.lint.families`); one without keeps the IPv4 space alone.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import Any, Iterable, Iterator, Sequence

from nsgsolve.analyses.lint.checks.shadowing import REDUNDANT
from nsgsolve.analyses.lint.checks.unmatchable import UNMATCHABLE
from nsgsolve.analyses.lint.context import REMOVABLE, RuleContext, _sole_platform_tags, _subject
from nsgsolve.analyses.lint.engine import ListAnalysis, RuleFacts, _FieldIndex
from nsgsolve.analyses.lint.families import Families
from nsgsolve.analyses.lint.findings import Finding
from nsgsolve.analyses.lint.layers import CrossLayer
from nsgsolve.analyses.lint.registry import CHECKS
from nsgsolve.analyses.lint.symbolic import SymbolicLinter
from nsgsolve.analyses.params import policy_params
from nsgsolve.analyses.results import Witness
from nsgsolve.errors import InputError
from nsgsolve.model import Access, Direction
from nsgsolve.parallel import fork_map
from nsgsolve.regions.box import DST, SRC
from nsgsolve.regions.space import Space, in_v6_space
from nsgsolve.semantics.addresses import IntervalSet
from nsgsolve.semantics.resolve import AdminLayer, ResolvedNsg, ResolvedPolicy


class Linter:
    """Lints the NSGs of one resolved policy; analyses are cached per distinct rule list, so an NSG that
    resolves the same way in several VNets is analysed once."""

    def __init__(self, rp: ResolvedPolicy, include_info: bool = False, cross_layer: bool = True):
        self.rp = rp
        # One space per address family: IPv4, and IPv6 when the policy has IPv6 addresses.
        self.spaces = (Space(rp), Space(rp, v6=True)) if rp.has_ipv6 else (Space(rp),)
        self.space = self.spaces[0]
        self.include_info = include_info
        self.cross_layer = cross_layer
        self._lists: dict[tuple, ListAnalysis] = {}
        self._families_by_parts: dict[tuple[int, ...], Families] = {}
        self._facts: dict[tuple[int, int, bool], RuleFacts] = {}
        self._cross: dict[tuple, CrossLayer | None] = {}  # None: a layer has a value an import left open
        self._admin: dict[tuple, Any] = {}

    # -- one list
    def analysis(self, nsg: ResolvedNsg, direction: Direction) -> Families:
        return self._families(nsg.rules(direction))

    def _families(self, rules: Sequence) -> Families:
        access = tuple(r.access for r in rules)
        parts = []
        for space in self.spaces:
            boxes = tuple(space.box(r) for r in rules)
            la = self._lists.get((boxes, access))
            if la is None:
                la = self._lists[boxes, access] = ListAnalysis(boxes, access)
            parts.append(la)
        # One Families per distinct list, kept as long as its parts: facts are cached by its id.
        key = tuple(id(la) for la in parts)
        fam = self._families_by_parts.get(key)
        if fam is None:
            fam = self._families_by_parts[key] = Families(parts)
        return fam

    def space_for(self, point: Sequence[int]) -> Space:
        """The space (address family) a point of a list analysis belongs to."""
        return self.spaces[-1] if len(self.spaces) > 1 and in_v6_space(point[SRC]) else self.spaces[0]

    def facts(self, la: Families, i: int, witness: bool = False) -> RuleFacts:
        """``witness``: ``live`` must be a packet whose decision changes without the rule, as ``lint --rule``
        says (findings need that only with ``--all``)."""
        witness = witness or self.include_info
        key = (id(la), i, witness)
        f = self._facts.get(key)
        if f is None:
            f = self._facts[key] = la.analyze(i, self.include_info, witness)
        return f

    def layers(self, nsg: ResolvedNsg, direction: Direction) -> "CrossLayer | None":
        """None when a layer of some path through the NSG has a value an import left open: nothing can
        then be said across layers (no NSG004 from a guess)."""
        key = (nsg.name, nsg.vnet, direction)
        if key not in self._cross:
            try:
                self._cross[key] = CrossLayer(self.rp, nsg, direction)
            except InputError:
                self._cross[key] = None
        return self._cross[key]

    # -- the admin layer (AVNM)
    def admin_analysis(self, vnet: str, direction: Direction) -> tuple[AdminLayer, Families] | None:
        """The security admin rules of ``vnet`` in ``direction`` and their list analysis (None: there are none)."""
        key = ("admin", vnet, direction)
        if key not in self._admin:
            layer = self.rp.admin_layer(vnet, direction)
            if layer is None:
                self._admin[key] = None
            else:
                self._admin[key] = (layer, self._families(layer.rules))
        return self._admin[key]

    def nic_endpoints(self, nsg: ResolvedNsg, direction: Direction) -> IntervalSet:
        """Every value of the NSG's side of a packet (destination inbound, source outbound) that is a NIC
        whose path meets the NSG in its VNet: the only traffic Azure runs through it (and through the
        VNet's admin rules). The values of both families' spaces, which never collide."""
        key = ("nics", nsg.name, nsg.vnet)
        got = self._admin.get(key)
        if got is None:
            parts = [iv for k, info in self.rp.ipcs.items()
                     if info.vnet == nsg.vnet and nsg.name in (info.subnet_nsg, info.nic_nsg)
                     for space in self.spaces for iv in space.endpoint_set(k)]
            got = self._admin[key] = IntervalSet(parts)
        return got

    # -- attachments
    def guarded(self, nsg: str, vnet: str | None) -> tuple[IntervalSet, list[str]]:
        """Every address (in the extended spaces of both families) of the subnets and NICs the NSG is attached
        to in this VNet, and their names (computed once per NSG and VNet: every rule's NSG005 asks)."""
        key = ("guarded", nsg, vnet)
        got = self._admin.get(key)
        if got is None:
            got = self._admin[key] = self._guarded(nsg, vnet)
        return got

    def _guarded(self, nsg: str, vnet: str | None) -> tuple[IntervalSet, list[str]]:
        parts: list[tuple[int, int]] = []
        labels: list[str] = []
        for v, s in self.rp.policy.subnets():
            if v.name == vnet and s.nsg is not None and s.nsg.name == nsg:
                labels.append(f"subnet {v.name}/{s.name}")
                parts += [(c.lo, c.hi) for c in s.prefixes]
                for k, info in self.rp.ipcs.items():
                    if info.vnet == v.name and info.subnet == s.name and info.ip is None:
                        parts += [iv for space in self.spaces for iv in space.endpoint_set(k)]
        nics: list[str] = []
        for k, info in self.rp.ipcs.items():
            if info.nic_nsg == nsg and info.vnet == vnet:
                parts += [iv for space in self.spaces for iv in space.endpoint_set(k)]
                if k.nic not in nics:
                    nics.append(k.nic)
        labels += [f"nic {n}" for n in nics]
        return IntervalSet(parts), labels

    # -- findings
    def witness(self, point: tuple[int, ...], decided_by: str | None, la: Families | None = None) -> Witness:
        if la is not None:
            point = self.consistent(point, la.part_for(point))
        packet, s, d = self.space_for(point).packet(point)
        return Witness.at(packet, s.dynamic, d.dynamic, decided_by)

    def consistent(self, point: tuple[int, ...], la: ListAnalysis) -> tuple[int, ...]:
        """``point`` with its two addresses made one possible assignment, when that changes no rule's match.

        The analysed space lets each side's dynamic NIC sit anywhere in its range independently, so a point
        may put two dynamic NICs on one address, a plain address on a dynamic NIC's, or one NIC at two
        addresses: sound for findings (they claim some set is empty), but such a witness cannot be replayed
        (``verify --assume-ip`` refuses it). Moving one side within its segment of the list's field index
        keeps every rule's match on that field, so the witness still shows what the finding says."""
        space = self.space_for(point)
        s, d = space.decode(point[SRC]), space.decode(point[DST])

        def ok(sv: int, dv: int) -> bool:
            a, b = space.decode(sv), space.decode(dv)
            if a.dynamic is not None and a.dynamic == b.dynamic:
                return a.ip == b.ip
            return a.ip != b.ip or (a.dynamic is None and b.dynamic is None)

        if ok(point[SRC], point[DST]):
            return point
        for field in (DST, SRC):
            v = point[field]
            ix = la.index[field]
            mask = ix.lookup(v)
            dyn = space.decode(v).dynamic  # a dynamic NIC's slot exactly when v is past the family's addresses
            kind = space.ranges[dyn] if dyn is not None else space.family
            mine, theirs = (s, d) if field == SRC else (d, s)
            if mine.dynamic is not None and mine.dynamic == theirs.dynamic:
                candidates: Iterable[int] = [v - mine.ip + theirs.ip]  # the same NIC: the other side's address
            else:
                candidates = self._equivalents(ix, v, mask)
            for c in candidates:
                if c in kind and ix.lookup(c) == mask:
                    q = list(point)
                    q[field] = c
                    if ok(q[SRC], q[DST]):
                        return tuple(q)
        return point

    @staticmethod
    def _equivalents(ix: _FieldIndex, v: int, mask: int, limit: int = 64) -> Iterator[int]:
        """Values the same rules match as ``v`` does in this field: its neighbours, then the first few
        values of every other segment with the same rules (a /32 rule makes a one-value segment)."""
        for n in range(1, 5):
            yield v + n
            yield v - n
        tried = 0
        for j, m in enumerate(ix.masks):
            if m == mask:
                end = ix.starts[j + 1] if j + 1 < len(ix.starts) else ix.starts[j] + 4
                for c in range(ix.starts[j], min(end, ix.starts[j] + 4)):
                    yield c
                tried += 1
                if tried >= limit:
                    return

    def rule_findings(self, nsg: ResolvedNsg, direction: Direction, la: Families, i: int) -> list[Finding]:
        """This rule's findings in one VNet's resolution of the NSG: the registered checks, in order."""
        ctx = RuleContext(self, nsg, direction, la, i, self.facts(la, i),
                          _sole_platform_tags(nsg, nsg.rules(direction)[i]))
        return self._run(ctx, "nsg")

    def _run(self, ctx: RuleContext, scope: str) -> list[Finding]:
        for check in CHECKS:
            if check.run is None or check.scope != scope or (check.exclusive and ctx.decided) or (
                    check.info and not self.include_info):
                continue
            if check.run(ctx):
                break
        return ctx.out

    def admin_findings(self) -> list[Finding]:
        """The admin-scope checks over every admin rule, in each VNet it applies to (merged per rule: a
        rule of one collection meets different neighbours in VNets of different groups)."""
        per_rule: dict[tuple[str, Direction, str], list[tuple[str, list[Finding]]]] = {}
        for v in self.rp.policy.vnets:
            for direction in (Direction.INBOUND, Direction.OUTBOUND):
                got = self.admin_analysis(v.name, direction)
                if got is None:
                    continue
                layer, la = got
                view = ResolvedNsg(f"admin rules of vnet {v.name}", v.name,
                                   layer.rules if direction is Direction.INBOUND else (),
                                   layer.rules if direction is Direction.OUTBOUND else ())
                for i, r in enumerate(layer.rules):
                    ctx = RuleContext(self, view, direction, la, i, self.facts(la, i), set())
                    per_rule.setdefault((r.admin_rule.label, direction, r.name), []).append(
                        (v.name, self._run(ctx, "admin")))
        out: list[Finding] = []
        for found in per_rule.values():
            vnets = [v for v, _ in found]
            out += _merge_vnets(vnets, [f for _, f in found]) if len(vnets) > 1 else found[0][1]
        return out

    def status(self, name: str, rule: str) -> list[str]:
        """One sentence per VNet resolution (deduplicated) saying what the rule does: its findings, or a
        packet it decides and what would decide that packet without it."""
        per_vnet: list[tuple[str | None, str]] = []
        vnets = self.rp.evaluation_vnets(name)
        if name in self.symbolic_nsgs:
            found = self.lint([name], rule)
            return [f.message for f in found] or [
                f"rule {rule} decides traffic in {name} for some value of the template parameters its NSG's rules "
                "are built from (no finding holds for every value)"]
        for vnet in vnets:
            nsg = self.rp.nsg(name, vnet)
            for direction in (Direction.INBOUND, Direction.OUTBOUND):
                rules = nsg.rules(direction)
                la = self.analysis(nsg, direction)
                for i, r in enumerate(rules):
                    if r.name != rule:
                        continue
                    found = self.rule_findings(nsg, direction, la, i)
                    if found:
                        text = "; ".join(f.message for f in found)
                    elif _sole_platform_tags(nsg, r):
                        tags = ", ".join(sorted(_sole_platform_tags(nsg, r)))
                        text = (f"{_subject(r)} is the only rule of {name} naming {tags}: it makes {name} filter "
                                f"that platform traffic, which otherwise bypasses the NSG, so it cannot be removed")
                    else:
                        f = self.facts(la, i, witness=True)
                        assert f.live is not None and f.live_next is not None
                        nxt = rules[f.live_next]
                        text = (f"{_subject(r)} decides traffic in {name} ({direction.value}), e.g. "
                                f"{self.witness(f.live, r.name, la)}, which {nxt.name} (priority {nxt.priority}) would "
                                f"{'allow' if nxt.access is Access.ALLOW else 'deny'} without it")
                    per_vnet.append((vnet, text))
        if len({t for _, t in per_vnet}) <= 1:
            return [t for _, t in per_vnet[:1]]
        return [f"in VNet {v}: {t}" for v, t in per_vnet]

    def lint(self, nsgs: Sequence[str] | None = None, rule: str | None = None, admin: bool = True) -> list[Finding]:
        """Findings of the NSGs (all, or ``nsgs``), then, with ``admin`` and no ``rule``, of the admin rules."""
        out = self._lint_nsgs(nsgs, rule)
        if admin and rule is None and self.rp.has_admin_rules:
            out += self.admin_findings()
        return out

    def _lint_nsgs(self, nsgs: Sequence[str] | None, rule: str | None) -> list[Finding]:
        names = list(nsgs) if nsgs is not None else [n.name for n in self.rp.policy.nsgs]
        # An NSG with a value an import left open cannot be judged; the command says so (W605).
        names = [n for n in names if n not in self.rp.open_nsgs]
        # One built from unset parameters is asked about in Z3, for every value (lint/symbolic.py).
        symbolic = [n for n in names if n in self.symbolic_nsgs]
        names = [n for n in names if n not in self.symbolic_nsgs]
        # Every rule of every NSG, VNet and direction is one independent task; the list analyses are built
        # first, so forked workers share them (nsgsolve.parallel).
        tasks: list[tuple[str, str | None, Direction, int]] = []
        lists: dict[tuple[str, str | None, Direction], tuple[ResolvedNsg, Families]] = {}
        for name in names:
            for vnet in self.rp.evaluation_vnets(name):
                nsg = self.rp.nsg(name, vnet)
                for direction in (Direction.INBOUND, Direction.OUTBOUND):
                    lists[name, vnet, direction] = nsg, self.analysis(nsg, direction)
                    for i, r in enumerate(nsg.rules(direction)):
                        if not r.rule.is_default and (rule is None or r.name == rule):
                            tasks.append((name, vnet, direction, i))

        # Built here, before the workers fork, so each does not build its own: the attachments (NSG005) and
        # the path lists (NSG004) of every NSG.
        for nsg, _ in lists.values():
            self.guarded(nsg.name, nsg.vnet)
            for direction in (Direction.INBOUND, Direction.OUTBOUND) if self.cross_layer else ():
                if any(r.access is Access.ALLOW and not r.rule.is_default for r in nsg.rules(direction)):
                    self.layers(nsg, direction)

        def run(task: tuple[str, str | None, Direction, int]) -> list[Finding]:
            nsg, la = lists[task[:3]]
            return self.rule_findings(nsg, task[2], la, task[3])

        found = dict(zip(tasks, fork_map(run, tasks)))
        by_name: dict[str, list[Finding]] = {}
        for name in names:
            vnets = self.rp.evaluation_vnets(name)
            per_vnet = [[f for t in tasks if t[0] == name and t[1] == vnet for f in found[t]] for vnet in vnets]
            by_name[name] = _merge_vnets([v or "(no VNet)" for v in vnets], per_vnet)
        for name in symbolic:
            vnets = self.rp.evaluation_vnets(name)
            per_vnet = [[f for d in (Direction.INBOUND, Direction.OUTBOUND)
                         for f in self.symbolic.findings(self.rp.nsg(name, vnet), d, rule)] for vnet in vnets]
            by_name[name] = _merge_vnets([v or "(no VNet)" for v in vnets], per_vnet)
        order = list(nsgs) if nsgs is not None else [n.name for n in self.rp.policy.nsgs]
        return [f for name in order for f in by_name.get(name, [])]

    @cached_property
    def symbolic_nsgs(self) -> frozenset[str]:
        """The NSGs with a rule built from an unset template parameter (a resolution keeping them)."""
        if not self.rp.symbolic_params:
            return frozenset()
        return frozenset(policy_params(self.rp.policy))

    @cached_property
    def symbolic(self) -> SymbolicLinter:
        return SymbolicLinter(self.rp)


def _merge_vnets(vnets: list[str], per_vnet: list[list[Finding]]) -> list[Finding]:
    """One finding per (code, direction, rule); a finding that holds only in some of the VNets where the
    NSG is evaluated says where."""
    if len(vnets) == 1:
        return per_vnet[0]
    seen: dict[tuple[str, Direction, str], tuple[Finding, list[str]]] = {}
    order: list[tuple[str, Direction, str]] = []
    for vnet, found in zip(vnets, per_vnet):
        for f in found:
            key = (f.code, f.direction, f.rule)
            if key not in seen:
                seen[key] = (f, [])
                order.append(key)
            seen[key][1].append(vnet)
    out = []
    for key in order:
        f, where = seen[key]
        if len(where) < len(vnets):
            rest = ", ".join(v for v in vnets if v not in where)
            if f.code in (REDUNDANT.code, UNMATCHABLE.code) or f.message.endswith(REMOVABLE):
                # Removing the rule would change decisions in the other VNets: never advise it.
                text = (f"{f.message.removesuffix(REMOVABLE)}, but only when evaluated in VNet {', '.join(where)}: "
                        f"in {rest} the rule decides traffic, so keep it")
            else:
                text = f"{f.message} (when evaluated in VNet {', '.join(where)}; not in {rest})"
            f = replace(f, message=text, vnets=tuple(where))
        out.append(f)
    return out


def lint(rp: ResolvedPolicy, nsgs: Sequence[str] | None = None, include_info: bool = False,
         rule: str | None = None) -> list[Finding]:
    """All findings for the policy's NSGs (or the named ones), in policy order, rules in evaluation order."""
    return Linter(rp, include_info).lint(nsgs, rule)


def exit_status(findings: Iterable[Finding]) -> int:
    return 1 if any(f.severity == "error" for f in findings) else 0
