"""Contracts: check a policy's ``assert`` statements for all packets, with counterexamples.

Each assertion becomes one or two questions to the policy's Z3 encoding (:mod:`nsgsolve.encode`),
asked on one incremental :class:`~nsgsolve.encode.PolicySolver` so the rule terms are built once for
all assertions of a file. Writing T for the assertion's traffic and E for the union of its ``except``
clauses:

========  ==============================================  ===================================
kind      holds when                                      counterexample (witness)
========  ==============================================  ===================================
no        no packet of T \\ E is allowed                   an allowed packet
all       every packet of T \\ E is allowed                a blocked packet
some      some packet of T \\ E is allowed                 none exists; an example blocked one
only      no packet from SRC to DST outside T, minus E,   an allowed packet outside T
          is allowed
========  ==============================================  ===================================

Every witness is replayed through the reference evaluator (:mod:`nsgsolve.evaluate`), which gives the
full rule trace and the responsible rules: for ``no``/``only`` the allow rule of every layer that let it
through, for ``all`` the rule that blocks it. If the replay disagrees with Z3 the verdict is UNKNOWN: a
contract is never passed on an answer the two engines do not share.

``clean`` and ``no shadowed`` are answered by the anomaly analysis (:mod:`nsgsolve.analyses.lint`), run
once per policy: no finding at error severity, no NSG001 shadowed-rule finding.

The verdict is three-valued (CrossHair's REFUTED/UNKNOWN/CONFIRMED): UNKNOWN (the solver gave up) is
never a pass.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Sequence

from ..addresses import AZURE_HOST_IP, PUBLIC_IPV4, int_to_ip
from ..errors import Diagnostic, DiagnosticBag, InputError, SolverUnknown
from ..evaluate import Evaluator, FlowResult
from ..model import (
    NOSPAN, Access, AnyAddress, AsgSide, AssertExcept, Assertion, AssertionKind, Direction, Policy, PortSpec,
    Protocol, Query, Span, TagSide,
)
from ..resolve import AddrSet, IpcKey, ResolvedPolicy, _SideResolver
from ..servicetags import canonical_builtin

Progress = Callable[[int, int, Assertion], None]
NICE_SPORT = 49152
# push/pop rather than the encoder's default assumption literals: with each question narrowed to its own
# small decision term, retracting it outright was ~20% faster on bench/bench_check.py (1.7 s vs 2.2 s).
DEFAULT_MODE = "push"


class Verdict(Enum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Responsible:
    """A rule that decided the witness at one layer (from the evaluator's trace)."""

    nsg: str | None
    attached_to: str
    direction: Direction
    rule: str
    priority: int | None
    access: Access
    span: Span | None
    is_default: bool = False

    def describe(self) -> str:
        prio = f" (priority {self.priority})" if self.priority is not None else ""
        where = f"in nsg {self.nsg} on {self.attached_to}" if self.nsg else "(platform rule)"
        default = " [Azure default rule]" if self.is_default else ""
        return f"{self.access.value.lower()} rule {self.rule}{prio} {where}{default}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"nsg": self.nsg, "attached_to": self.attached_to, "direction": self.direction.value,
                             "rule": self.rule, "priority": self.priority, "access": self.access.value,
                             "is_default": self.is_default}
        if self.span is not None and self.span.line > 0:
            d["location"] = {"file": self.span.file, "line": self.span.line, "column": self.span.column}
        return d


@dataclass(frozen=True)
class ContractResult:
    """The verdict on one assertion, with the evidence behind it."""

    assertion: Assertion
    name: str  # the assertion's name, made unique within its file
    verdict: Verdict
    summary: str  # one line: what was found
    witness: FlowResult | None = None
    witness_role: str = ""  # "allowed", "blocked", "example allowed", "example blocked"
    responsible: tuple[Responsible, ...] = ()
    assignment: dict[IpcKey, int] = field(default_factory=dict, compare=False, hash=False)
    reason: str = ""  # why UNKNOWN
    findings: tuple[str, ...] = ()  # lint findings behind a failing clean/no shadowed
    seconds: float = 0.0

    @property
    def file(self) -> str:
        return self.assertion.span.file

    @property
    def rule_id(self) -> str:
        return f"assert/{self.name}"

    def claim(self) -> str:
        return f"assert {self.assertion.text}" if self.assertion.text else f"assert {self.assertion.kind.value}"

    def to_dict(self) -> dict[str, Any]:
        a = self.assertion
        d: dict[str, Any] = {
            "kind": a.kind.value, "assertion": self.claim(), "message": a.message, "verdict": self.verdict.value,
            "summary": self.summary,
        }
        if self.witness is not None:
            w = self.witness
            d["witness"] = {"role": self.witness_role, "packet": w.packet.to_dict(),
                            "src_nic": str(w.src_endpoint) if w.src_endpoint else None,
                            "dst_nic": str(w.dst_endpoint) if w.dst_endpoint else None,
                            **w.to_dict()}
            if self.assignment:
                d["witness"]["assumed_ips"] = {str(k): int_to_ip(v) for k, v in sorted(self.assignment.items())}
        d["responsible"] = [r.to_dict() for r in self.responsible]
        if self.reason:
            d["reason"] = self.reason
        if self.findings:
            d["findings"] = list(self.findings)
        d["seconds"] = round(self.seconds, 4)
        return d

    def detail(self) -> str:
        """The multi-line story: claim, witness table, trace, responsible rules, notes."""
        a = self.assertion
        lines = [f"{self.claim()}   ({a.span})"]
        if a.message:
            lines.append(f"message: {a.message}")
        w = self.witness
        if w is not None:
            p = w.packet
            def who(ip: int, key: IpcKey | None) -> str:
                return f"{int_to_ip(ip)} (nic {key})" if key else int_to_ip(ip)
            lines.append(f"witness ({self.witness_role}): {p}")
            rows = [("protocol", p.protocol_name), ("source", who(p.src, w.src_endpoint)),
                    ("source port", "-" if p.sport is None else str(p.sport)),
                    ("destination", who(p.dst, w.dst_endpoint)),
                    ("destination port", "-" if p.dport is None else str(p.dport)),
                    ("decision", w.decision.value)]
            for k, v in sorted(self.assignment.items()):
                rows.append((f"assumed ip of {k}", int_to_ip(v)))
            width = max(len(r[0]) for r in rows)
            lines += [f"  {k:<{width}}  {v}" for k, v in rows]
            lines.append("trace:")
            if not w.trace:
                lines.append("  (no NSG on the path)")
            for s in w.trace:
                where = f"{s.nsg} on {s.attached_to}" if s.nsg else "platform"
                prio = f" (priority {s.priority})" if s.priority is not None else ""
                default = " [default rule]" if s.is_default else ""
                loc = f"  {s.rule_span}" if isinstance(s.rule_span, Span) and s.rule_span.line > 0 else ""
                lines.append(f"  {s.direction.value:<8} {where}: {s.access.value} by {s.rule}{prio}{default}{loc}")
        for f in self.findings:
            lines.append(f"finding: {f}")
        if self.responsible:
            lines.append("responsible:")
            for r in self.responsible:
                loc = f"  {r.span}" if r.span is not None and r.span.line > 0 else ""
                lines.append(f"  {r.describe()}{loc}")
        if w is not None:
            for n in w.notes:
                lines.append(f"note: {n}")
        if self.reason:
            lines.append(f"reason: {self.reason}")
        return "\n".join(lines)

    def to_finding(self):
        """This result in the generic report shape (:mod:`nsgsolve.reports`)."""
        from ..reports import Finding, Location, Status

        a = self.assertion
        status = {Verdict.PASS: Status.PASS, Verdict.FAIL: Status.FAIL, Verdict.UNKNOWN: Status.UNKNOWN}[self.verdict]
        title = self.summary if not a.message or self.verdict is Verdict.PASS else f"{a.message}: {self.summary}"
        related = tuple(Location.from_span(r.span, r.describe()) for r in self.responsible
                        if r.span is not None and r.span.line > 0)
        flow = ()
        if self.witness is not None:
            flow = tuple(Location.from_span(s.rule_span if isinstance(s.rule_span, Span) else None,
                                            f"{s.direction.value} {s.nsg or 'platform'}: {s.access.value} by {s.rule}")
                         for s in self.witness.trace)
        return Finding(
            rule_id=self.rule_id, name=self.name, status=status, title=title,
            location=Location.from_span(a.span, self.claim()),
            rule_short=a.message or self.claim(),
            rule_full=f"{self.claim()}: {KIND_MEANING[a.kind]}",
            rule_help=f"{self.claim()}\n{KIND_MEANING[a.kind]}\n{KIND_FIX[a.kind]}",
            detail=self.detail(), level="error", related=related, flow=flow, category=f"assert/{a.kind.value}",
            seconds=self.seconds, data={"file": self.file, **self.to_dict()},
        )


KIND_MEANING = {
    AssertionKind.NO: "no packet of this traffic may be allowed",
    AssertionKind.ALL: "every packet of this traffic must be allowed",
    AssertionKind.SOME: "at least one packet of this traffic must be allowed",
    AssertionKind.ONLY: "between these endpoints, nothing but this traffic may be allowed",
    AssertionKind.CLEAN: "the anomaly analysis must report nothing at error severity",
    AssertionKind.NO_SHADOWED: "no rule may be shadowed by a higher-priority rule",
}
KIND_FIX = {
    AssertionKind.NO: "Fix: remove or narrow the allow rule(s) listed as responsible, or add a deny rule with a "
                      "lower priority number; if the traffic is a documented exception, add an except clause.",
    AssertionKind.ALL: "Fix: the rule listed as responsible blocks the witness; allow the traffic before it "
                       "(a lower priority number) or narrow it.",
    AssertionKind.SOME: "Fix: no packet of the traffic gets through; add an allow rule on every NSG layer of the path.",
    AssertionKind.ONLY: "Fix: the responsible allow rule(s) open more than the contract names; narrow their "
                        "ports or protocol, or extend the contract.",
    AssertionKind.CLEAN: "Fix: address the anomalies `nsgsolve lint` reports.",
    AssertionKind.NO_SHADOWED: "Fix: remove or reorder the shadowed rules `nsgsolve lint` reports.",
}


# ---------------------------------------------------------------- traffic as Z3 terms


class _Traffic:
    """Turns the endpoints, ports and protocol of assertions into constraints on the encoding's packet."""

    def __init__(self, rp: ResolvedPolicy, enc, bag: DiagnosticBag):
        self.rp, self.enc, self.bag = rp, enc, bag
        vnets = [v.name for v in rp.policy.vnets]
        # Tags in a question are not tied to one attachment point: VirtualNetwork (and every other tag) is
        # read in every VNet and united; Internet is public space outside every modelled VNet, less the
        # host address 168.63.129.16. That address is public, but it is Azure's own (health probes, DNS),
        # VirtualNetwork contains it and AllowVnetInBound admits it, so counting it as an Internet host
        # would make every `assert no Internet -> ...` fail on a default rule. Name it to speak about it.
        self.resolvers = [_SideResolver(rp, v, bag) for v in (vnets or [None])]
        spaces = [iv for s in rp.vnet_spaces.values() for iv in s] + [(AZURE_HOST_IP, AZURE_HOST_IP)]
        from ..addresses import IntervalSet

        self.internet = PUBLIC_IPV4.difference(IntervalSet(spaces))

    def addr_set(self, endpoints: Sequence[object]) -> AddrSet:
        from ..addresses import IntervalSet

        parts: list[tuple[int, int]] = []
        members: set[IpcKey] = set()
        for ep in endpoints:
            if isinstance(ep, TagSide) and canonical_builtin(ep.tag.name) == "Internet":
                parts += list(self.internet)
                continue
            sides = []
            for r in self.resolvers if isinstance(ep, TagSide) else self.resolvers[:1]:
                sides.append(r.side(ep) if isinstance(ep, (AnyAddress, TagSide, AsgSide)) else r.items((ep,)))
            for s in sides:
                parts += list(s.intervals)
                members |= s.members
        return AddrSet(IntervalSet(parts), frozenset(members))

    def endpoints(self, field_: str, endpoints: Sequence[object] | None):
        from ..z3util import TRUE

        if endpoints is None or any(isinstance(e, AnyAddress) for e in endpoints):
            return TRUE
        return self.enc.side(field_, self.addr_set(endpoints))

    def ports_protocol(self, ports: PortSpec, protocol: Protocol):
        """The query's protocol and destination ports, as a rule would read them: ports imply Tcp/Udp."""
        from ..addresses import IntervalSet
        from ..z3util import mk_and

        dports = None
        if not ports.is_any:
            dports = self.resolvers[0].ports(ports) or IntervalSet([(0, 65535)])
        return mk_and([self.enc.protocol(protocol.number), self.enc.ports("dport", dports)])

    def region(self, q: Query, any_service: bool = False):
        """(box, source NICs, destination NICs) containing every packet of ``q`` (of its endpoints only,
        with ``any_service``): the encoding then keeps only the rules that can match there, which is what
        makes 50 questions on 1,000-rule NSGs fast (:meth:`nsgsolve.encode.Encoding.path_allows`)."""
        from ..addresses import ALL_IPS, ALL_PORTS, IntervalSet
        from ..regions import ALL_PROTOCOLS, PORTED

        def side(endpoints) -> tuple[IntervalSet, tuple[IpcKey, ...]]:
            if any(isinstance(e, AnyAddress) for e in endpoints):
                addrs = ALL_IPS
            else:
                s = self.addr_set(endpoints)
                addrs = s.intervals.union(IntervalSet([iv for m in s.members for iv in self.rp.ipcs[m].usable]))
            nics = tuple(k for k, info in self.rp.ipcs.items()
                         if (info.ip is not None and info.ip in addrs)
                         or (info.ip is None and info.usable.intersection(addrs)))
            return addrs, nics

        src, srcs = side(q.sources)
        dst, dsts = side(q.destinations)
        proto, dports = ALL_PROTOCOLS, ALL_PORTS
        if not any_service:
            if q.protocol.number is not None:
                proto = IntervalSet([(q.protocol.number, q.protocol.number)])
            if not q.ports.is_any:
                proto = proto.intersection(PORTED)
                dports = self.resolvers[0].ports(q.ports) or ALL_PORTS
        return (proto, src, ALL_PORTS, dst, dports), srcs, dsts

    def query(self, q: Query):
        from ..z3util import mk_and

        return mk_and([self.endpoints("src", q.sources), self.endpoints("dst", q.destinations),
                       self.ports_protocol(q.ports, q.protocol)])

    def between(self, q: Query):
        from ..z3util import mk_and

        return mk_and([self.endpoints("src", q.sources), self.endpoints("dst", q.destinations)])

    def excepted(self, ex: AssertExcept):
        from ..z3util import mk_and

        return mk_and([self.endpoints("src", ex.sources), self.endpoints("dst", ex.destinations),
                       self.ports_protocol(ex.ports, ex.protocol)])


# ---------------------------------------------------------------- checking


class ContractChecker:
    """Checks assertions against one resolved policy; build once per policy, call :meth:`check` per assertion."""

    def __init__(self, rp: ResolvedPolicy, solver_mode: str = DEFAULT_MODE, rlimit: int | None = None,
                 narrow: bool = True):
        """``narrow=False`` asks every question against the whole policy's decision term instead of the
        rules that can match the assertion's traffic (the benchmark's baseline; tests compare the two)."""
        from ..encode import Encoding, PolicySolver

        self.rp = rp
        self.narrow = narrow
        self.enc = Encoding(rp)
        self.solver = PolicySolver(self.enc, rlimit=rlimit, mode=solver_mode)
        self.bag = DiagnosticBag()
        self.traffic = _Traffic(rp, self.enc, self.bag)
        self._lint: list | None = None

    def lint_findings(self) -> list:
        """The anomaly analysis of the whole policy, run once for every clean/no shadowed assertion."""
        if self._lint is None:
            from .lint import lint

            self._lint = lint(self.rp)
        return self._lint

    def _replay(self, model) -> tuple[FlowResult, dict[IpcKey, int]]:
        packet = self.enc.model_packet(model)
        assignment = self.enc.model_assignment(model)
        # The plain first-match scan: building the bitset classifiers costs more than the few witnesses need.
        ev = Evaluator(self.rp, assignment, fast=False)
        flow = ev.evaluate(packet)
        # Z3 picks any source port; the first ephemeral port reads better in a review and assertions never
        # constrain the source port, so use it whenever the evaluator decides that packet the same way.
        if packet.has_ports and packet.sport != NICE_SPORT:
            nicer = ev.evaluate(dataclasses.replace(packet, sport=NICE_SPORT))
            if nicer.decision is flow.decision:
                flow = nicer
        return flow, assignment

    def _find(self, constraint, allowed: bool, what: str, scope=None):
        """``scope`` = (box, source NICs, destination NICs) holding every packet of ``constraint``."""
        decision = None if scope is None or not self.narrow else self.enc.path_allows(*scope)
        return self.solver.find(constraint, allowed, what, decision)

    def check(self, a: Assertion, name: str) -> ContractResult:
        start = time.perf_counter()
        try:
            result = self._check(a, name)
        except SolverUnknown as e:
            result = ContractResult(a, name, Verdict.UNKNOWN, f"undecided: the solver gave up ({e.reason})",
                                    reason=str(e))
        return ContractResult(**{**result.__dict__, "seconds": time.perf_counter() - start})

    def _check(self, a: Assertion, name: str) -> ContractResult:
        from ..z3util import mk_and, mk_not, mk_or

        if a.kind in (AssertionKind.CLEAN, AssertionKind.NO_SHADOWED):
            return _lint_assertion(self, a, name)
        if a.traffic is None:  # the builder always sets it for these kinds
            raise InputError.single("E702", f"assert {a.kind.value} needs traffic (SRC -> DST ...)", a.span)
        t = self.traffic.query(a.traffic)
        excepts = [self.traffic.excepted(e) for e in a.excepts]
        self.bag.raise_if_errors()
        # Traffic between two addresses that are no NIC of the policy never enters the modelled network
        # (semantics.md: no NSG is on its path), so it is nobody's contract: `no any -> any port 3389`
        # speaks about traffic to or from the policy's NICs.
        touches = mk_or([self.enc.is_nic("src"), self.enc.is_nic("dst")])
        keep = mk_and([t, touches] + [mk_not(e) for e in excepts])
        what = f"assertion {name} ({a.span})"
        kind = a.kind
        scope = self.traffic.region(a.traffic, any_service=kind is AssertionKind.ONLY)
        if kind is AssertionKind.ONLY:
            outside = mk_and([self.traffic.between(a.traffic), touches, mk_not(t)] + [mk_not(e) for e in excepts])
            m = self._find(outside, True, what, scope)
            if m is None:
                return ContractResult(a, name, Verdict.PASS, "nothing outside the contract is allowed")
            return self._counterexample(a, name, m, True, "allowed",
                                        "traffic outside the contract is allowed")
        if kind is AssertionKind.NO:
            m = self._find(keep, True, what, scope)
            if m is None:
                return ContractResult(a, name, Verdict.PASS, "no packet of the traffic is allowed")
            return self._counterexample(a, name, m, True, "allowed", "a packet of the traffic is allowed")
        if kind is AssertionKind.ALL:
            m = self._find(keep, False, what, scope)
            if m is None:
                if self._find(keep, True, what, scope) is None:
                    return ContractResult(a, name, Verdict.PASS,
                                          "holds vacuously: the traffic is empty (check its endpoints and excepts)")
                return ContractResult(a, name, Verdict.PASS, "every packet of the traffic is allowed")
            return self._counterexample(a, name, m, False, "blocked", "a packet of the traffic is blocked")
        if kind is AssertionKind.SOME:
            m = self._find(keep, True, what, scope)
            if m is not None:
                flow, assignment = self._replay(m)
                if not flow.allowed:
                    return _disagree(a, name, flow)
                return ContractResult(a, name, Verdict.PASS, f"allowed, for example {flow.packet}", flow,
                                      "example allowed", _responsible(flow, True), assignment)
            example = self._find(keep, False, what, scope)
            if example is None:
                return ContractResult(a, name, Verdict.FAIL, "the traffic is empty, so none of it is allowed "
                                      "(check its endpoints and excepts)")
            res = self._counterexample(a, name, example, False, "example blocked",
                                       "no packet of the traffic is allowed")
            return res
        raise AssertionError(kind)  # pragma: no cover

    def _counterexample(self, a: Assertion, name: str, model, expect_allowed: bool, role: str,
                        summary: str) -> ContractResult:
        flow, assignment = self._replay(model)
        if flow.allowed != expect_allowed:
            return _disagree(a, name, flow)
        return ContractResult(a, name, Verdict.FAIL, f"{summary}: {flow.packet}", flow, role,
                              _responsible(flow, expect_allowed), assignment)


def _disagree(a: Assertion, name: str, flow: FlowResult) -> ContractResult:
    return ContractResult(a, name, Verdict.UNKNOWN, "undecided: the solver and the reference evaluator disagree",
                          flow, "disputed", (), reason=f"Z3's witness {flow.packet} is {flow.decision.value} by the "
                          "evaluator; please report this with the policy file")


def _responsible(flow: FlowResult, allowed: bool) -> tuple[Responsible, ...]:
    """For an allowed witness every layer's allow rule (all of them let it through); for a blocked one the
    first deny (the one that stops the packet)."""
    steps = [s for s in flow.trace if s.access is (Access.ALLOW if allowed else Access.DENY)]
    if not allowed:
        steps = steps[:1]
    return tuple(Responsible(s.nsg, s.attached_to, s.direction, s.rule, s.priority, s.access,
                             s.rule_span if isinstance(s.rule_span, Span) else None, s.is_default) for s in steps)


def _lint_assertion(checker: "ContractChecker", a: Assertion, name: str) -> ContractResult:
    """``clean``: no lint finding at error severity; ``no shadowed``: no NSG001 finding at all."""
    from . import lint

    findings = checker.lint_findings()
    if a.kind is AssertionKind.CLEAN:
        bad = [f for f in findings if f.severity == "error"]
        what = "at error severity"
    else:
        bad = [f for f in findings if f.code == lint.SHADOWED.code]
        what = "of shadowed rules"
    if not bad:
        return ContractResult(a, name, Verdict.PASS, f"the anomaly analysis reports nothing {what}")
    responsible = tuple(Responsible(f.nsg, f"nsg {f.nsg}", f.direction, f.rule, f.priority, f.access, f.span)
                        for f in bad)
    lines = tuple(f"{f.rule_id}: {f.message}" + (f" (witness {f.witness})" if f.witness else "") for f in bad)
    first = bad[0]
    return ContractResult(a, name, Verdict.FAIL, f"{len(bad)} finding{'s' if len(bad) != 1 else ''} {what}, "
                          f"first {first.rule_id} on rule {first.rule} of nsg {first.nsg}",
                          responsible=responsible, findings=lines)


def unique_names(assertions: Sequence[Assertion]) -> list[str]:
    """Each assertion's name, unique within its file: explicit names must be unique (E701); a derived
    name that repeats (the same claim written twice) gets -2, -3, ..."""
    bag = DiagnosticBag()
    explicit: dict[str, Assertion] = {}
    for a in assertions:
        if a.explicit_name:
            if a.name in explicit:
                bag.error("E701", f"two assertions are named '{a.name}'", a.span,
                          f"the first is at {explicit[a.name].span}; names identify tests in CI, so they must be unique")
            explicit.setdefault(a.name, a)
    bag.raise_if_errors()
    used = set(explicit)
    out = []
    for a in assertions:
        if a.explicit_name:
            out.append(a.name)
            continue
        n, i = a.name, 2
        while n in used:
            n, i = f"{a.name}-{i}", i + 1
        used.add(n)
        out.append(n)
    return out


def check_policy(policy: Policy, rp: ResolvedPolicy | None = None, solver_mode: str = DEFAULT_MODE,
                 rlimit: int | None = None, progress: Progress | None = None,
                 narrow: bool = True) -> list[ContractResult]:
    """Check every assertion of a policy, in file order."""
    from ..resolve import resolve

    assertions = [a for a in policy.assertions if isinstance(a, Assertion)]
    names = unique_names(assertions)
    if not assertions:
        return []
    rp = rp or resolve(policy)
    checker = ContractChecker(rp, solver_mode, rlimit, narrow)
    out = []
    for i, (a, n) in enumerate(zip(assertions, names)):
        if progress is not None:
            progress(i, len(assertions), a)
        out.append(checker.check(a, n))
    return out


__all__ = ["ContractChecker", "ContractResult", "Responsible", "Verdict", "check_policy", "unique_names"]
