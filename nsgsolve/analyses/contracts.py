"""Contracts: check a policy's ``assert`` statements for all packets, with counterexamples.

Each assertion becomes one or two questions to the policy's Z3 encoding (:mod:`nsgsolve.smt.encode`),
asked on one incremental :class:`~nsgsolve.smt.encode.PolicySolver` so the rule terms are built once for
all assertions of a file. Writing T for the assertion's traffic and E for the union of its ``except``
clauses:

========  ==============================================  ===================================
kind      holds when                                      counterexample (witness)
========  ==============================================  ===================================
no        no packet of T \\ E is allowed                   an allowed packet
all       every packet of T \\ E is allowed                a blocked packet
some      for every assignment of dynamic addresses,      an assignment under which none is;
          some packet of T \\ E is allowed                 an example blocked packet
only      no packet from SRC to DST outside T, minus E,   an allowed packet outside T
          is allowed
========  ==============================================  ===================================

T and E mean what the same words mean in a query (:mod:`nsgsolve.analyses.endpoints`): ``assert no T`` holds exactly
when ``nsgsolve query`` says *none* of T is allowed, ``all`` when it says *all*, ``some`` when *some* or
*all* and no dynamic NIC is involved (with one, ``some`` must hold for every assignment:
:meth:`ContractChecker._some`). An empty T, which a query rejects with E802, makes ``no`` and ``all``
hold vacuously and ``some`` fail.

Every witness is replayed through the reference evaluator (:mod:`nsgsolve.semantics.evaluate`), which gives the
full rule trace and the responsible rules: for ``no``/``only`` the allow rule of every layer that let it
through, for ``all`` the rule that blocks it. If the replay disagrees with Z3 (or the packet is not one the
assertion examines) the verdict is UNKNOWN: a contract is never passed on an answer the two engines do
not share.

``clean`` and ``no shadowed`` are answered by the anomaly analysis (:mod:`nsgsolve.analyses.lint`), run
once per policy: no finding at error severity, no NSG001 shadowed-rule finding.

The verdict is three-valued (CrossHair's REFUTED/UNKNOWN/CONFIRMED): UNKNOWN (the solver gave up) is
never a pass.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from nsgsolve.semantics.addresses import ALL_PORTS, int_to_ip
from nsgsolve.analyses.endpoints import (
    Traffic, candidates, endpoints_term, resolve_traffic, touches_nic, traffic_region, traffic_term,
)
from nsgsolve.errors import DiagnosticBag, InputError, SolverUnknown
from nsgsolve.semantics.evaluate import Evaluator, FlowResult
from nsgsolve.model import (
    span_dict, NOSPAN, Access, Assertion, AssertionKind, Direction, Policy, Span, TagSide, param_label,
)
from nsgsolve.semantics.servicetags import canonical_builtin
from nsgsolve.regions.box import ALL_PROTOCOLS
from nsgsolve.semantics.resolve import IpcKey, ResolvedPolicy
from nsgsolve.analyses.params import Binder
from nsgsolve.analyses.results import Status, Witness, describe_params

Progress = Callable[[int, int, Assertion], None]
# Refinement rounds for `some` with dynamic NICs before the verdict is UNKNOWN: each round costs two small
# solver calls, and one round settles every claim whose allowed packets do not depend on the address.
SOME_ROUNDS = 64
NICE_SPORT = 49152
# push/pop rather than the encoder's default assumption literals: with each question narrowed to its own
# small decision term, retracting it outright was ~20% faster on bench/bench_check.py (1.7 s vs 2.2 s).
DEFAULT_MODE = "push"


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

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"nsg": self.nsg, "attached_to": self.attached_to, "direction": self.direction.value,
                             "rule": self.rule, "priority": self.priority, "access": self.access.value,
                             "is_default": self.is_default, "location": span_dict(self.span)}
        return d


@dataclass(frozen=True)
class ContractResult:
    """The verdict on one assertion, with the evidence behind it."""

    assertion: Assertion
    name: str  # the assertion's name, made unique within its file
    verdict: Status  # the shared pass / fail / unknown of nsgsolve.analyses.results
    summary: str  # one line: what was found
    witness: FlowResult | None = None
    witness_role: str = ""  # "allowed", "blocked", "example allowed", "example blocked"
    responsible: tuple[Responsible, ...] = ()
    assignment: dict[IpcKey, int] = field(default_factory=dict, compare=False, hash=False)
    reason: str = ""  # why UNKNOWN
    findings: tuple[str, ...] = ()  # lint findings behind a failing clean/no shadowed
    seconds: float = 0.0
    # Values of unset template parameters the witness assumes (name -> value): a failing assertion fails
    # for these values; a passing one holds for every value.
    params: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def file(self) -> str:
        return self.assertion.span.file

    def claim(self) -> str:
        return f"assert {self.assertion.text}" if self.assertion.text else f"assert {self.assertion.kind.value}"

    def to_dict(self) -> dict[str, Any]:
        a = self.assertion
        d: dict[str, Any] = {
            "kind": a.kind.value, "assertion": self.claim(), "message": a.message, "status": self.verdict.value,
            "summary": self.summary,
        }
        w = self.as_witness()
        if w is not None:
            d["witness"] = w.to_dict()
        elif self.assignment or self.params:  # `some` failing on values under which the traffic is empty
            d["dynamic_ips"] = {str(k): int_to_ip(v) for k, v in sorted(self.assignment.items())}
            if self.params:
                d["parameters"] = dict(sorted(self.params.items()))
        d["responsible"] = [r.to_dict() for r in self.responsible]
        if self.reason:
            d["reason"] = self.reason
        if self.findings:
            d["findings"] = list(self.findings)
        d["seconds"] = round(self.seconds, 4)
        return d

    def as_witness(self) -> Witness | None:
        """The witness in the shared shape (JSON, reports)."""
        if self.witness is None:
            return None
        return Witness.replayed(self.witness, self.assignment, self.witness_role, self.params)


# ---------------------------------------------------------------- checking


class ContractChecker:
    """Checks assertions against one resolved policy; build once per policy, call :meth:`check` per assertion."""

    def __init__(self, rp: ResolvedPolicy, solver_mode: str = DEFAULT_MODE, rlimit: int | None = None,
                 narrow: bool = True):
        """``narrow=False`` asks every question against the whole policy's decision term instead of the
        rules that can match the assertion's traffic (the benchmark's baseline; tests compare the two)."""
        from nsgsolve.smt.encode import Encoding, PolicySolver

        self.rp = rp
        self.narrow = narrow
        self.enc = Encoding(rp)
        self.solver = PolicySolver(self.enc, rlimit=rlimit, mode=solver_mode)
        self.binder = Binder(rp, self.enc)
        # Parameters some rule reads as a list of prefixes (model.ParamDecl.lists): `some` treats them apart.
        self._lists = [param_label(d.name) for d in rp.policy.params if d.lists]
        self._params: dict[str, str] = {}  # the parameter values of the last witness replayed
        self._lint: list | None = None

    def lint_findings(self) -> list:
        """The anomaly analysis of the whole policy, run once for every clean/no shadowed assertion."""
        if self._lint is None:
            from nsgsolve.analyses.lint import lint

            self._lint = lint(self.rp)
        return self._lint

    def _replay(self, model) -> tuple[FlowResult, dict[IpcKey, int]]:
        packet = self.enc.model_packet(model)
        assignment = self.enc.model_assignment(model)
        # Unset parameters take the model's values: the evaluator decides in that concrete policy.
        values = self.binder.values(model)
        # The plain first-match scan: building the bitset classifiers costs more than the few witnesses need.
        ev = Evaluator(self.binder.bound(values), assignment, fast=False)
        flow = ev.evaluate(packet)
        # Z3 picks any source port; the first ephemeral port reads better in a review and assertions never
        # constrain the source port, so use it whenever the evaluator decides that packet the same way.
        if packet.has_ports and packet.sport != NICE_SPORT:
            nicer = ev.evaluate(dataclasses.replace(packet, sport=NICE_SPORT))
            if nicer.decision is flow.decision:
                flow = nicer
        self._params = self.binder.relevant(lambda c, a: self.solver.find(c, a, "a witness's parameters"), model,
                                            flow, assignment, values)
        return flow, assignment

    def resolve(self, a: Assertion) -> tuple[Traffic, list[Traffic]]:
        """The assertion's traffic and its except clauses, as :mod:`nsgsolve.analyses.endpoints` reads them (E801 for
        ports on a protocol without ports, unknown names)."""
        bag = DiagnosticBag()
        q = a.traffic
        assert q is not None
        traffic = resolve_traffic(self.rp, q.sources, q.destinations, q.ports, q.protocol,
                                  q.span if q.span != NOSPAN else a.span, bag)
        excepted = [resolve_traffic(self.rp, e.sources, e.destinations, e.ports, e.protocol,
                                    e.span if e.span != NOSPAN else a.span, bag) for e in a.excepts]
        bag.raise_if_errors()
        return traffic, excepted

    def confirm(self, a: Assertion, name: str, packet, assignment: dict[IpcKey, int]) -> ContractResult | None:
        """A ``no`` assertion's failure from a candidate packet found elsewhere (a counterexample of a similar
        assertion, moved): the reference evaluator decides it, so the result is a failure only when the
        evaluator allows the packet and it is traffic the assertion examines; otherwise None (ask the solver)."""
        if a.kind is not AssertionKind.NO:
            return None
        start = time.perf_counter()
        traffic, excepted = self.resolve(a)
        flow = Evaluator(self.rp, assignment).evaluate(packet)
        if not flow.allowed or not _within(traffic, flow) or any(_within(e, flow) for e in excepted):
            return None
        return ContractResult(a, name, Status.FAIL, f"a packet of the traffic is allowed: {flow.packet}", flow,
                              "allowed", _responsible(flow, True), dict(assignment),
                              seconds=time.perf_counter() - start)

    def _find(self, constraint, allowed: bool, what: str, scope=None):
        """``scope`` = (box, source NICs, destination NICs) holding every packet of ``constraint``."""
        decision = None if scope is None or not self.narrow else self.enc.path_allows(*scope)
        return self.solver.find(constraint, allowed, what, decision)

    def check(self, a: Assertion, name: str) -> ContractResult:
        start = time.perf_counter()
        try:
            result = self._check(a, name)
        except SolverUnknown as e:
            result = ContractResult(a, name, Status.UNKNOWN, f"undecided: {e.explanation}",
                                    reason=f"Z3 could not decide {e.what}: {e.reason}")
        return ContractResult(**{**result.__dict__, "seconds": time.perf_counter() - start})

    def _check(self, a: Assertion, name: str) -> ContractResult:
        from nsgsolve.smt.z3util import mk_and, mk_not

        if a.kind in (AssertionKind.CLEAN, AssertionKind.NO_SHADOWED):
            return _lint_assertion(self, a, name)
        if a.traffic is None:  # the builder always sets it for these kinds
            raise InputError.single("E702", f"assert {a.kind.value} needs traffic (SRC -> DST ...)", a.span)
        # The traffic means what the same words mean in a query (nsgsolve.analyses.endpoints, docs/query.md):
        # NIC-type endpoints are NICs, address-type ones NICs and outside hosts, Internet excludes every
        # VNet's VirtualNetwork tag (168.63.129.16 too), and a packet with no NIC at either end is nobody's
        # contract (no NSG sees it), so `no any -> any port 3389` speaks about the policy's NICs.
        traffic, excepted = self.resolve(a)
        enc = self.enc
        t = traffic_term(enc, traffic)
        touches = touches_nic(enc)
        not_excepted = [mk_not(traffic_term(enc, e)) for e in excepted]
        keep = mk_and([t, touches] + not_excepted)
        what = f"assertion {name} ({a.span})"
        kind = a.kind
        scope = (traffic_region(self.rp, traffic, any_service=kind is AssertionKind.ONLY),
                 candidates(enc, traffic.src), candidates(enc, traffic.dst))
        if kind is AssertionKind.ONLY:
            # Between the same endpoints, any protocol and port: the packets the contract does not name.
            between = Traffic(traffic.src, traffic.dst, ALL_PROTOCOLS, ALL_PORTS, False)
            outside = mk_and([endpoints_term(enc, traffic), touches, mk_not(t)] + not_excepted)
            m = self._find(outside, True, what, scope)
            if m is None:
                return ContractResult(a, name, Status.PASS, "nothing outside the contract is allowed")
            return self._counterexample(a, name, m, True, "allowed", "traffic outside the contract is allowed",
                                        lambda f: _within(between, f) and not _within(traffic, f)
                                        and not any(_within(e, f) for e in excepted))

        def examined(f: FlowResult) -> bool:
            return _within(traffic, f) and not any(_within(e, f) for e in excepted)

        if kind is AssertionKind.NO:
            m = self._find(keep, True, what, scope)
            if m is None:
                return ContractResult(a, name, Status.PASS, "no packet of the traffic is allowed")
            return self._counterexample(a, name, m, True, "allowed", "a packet of the traffic is allowed", examined)
        if kind is AssertionKind.ALL:
            m = self._find(keep, False, what, scope)
            if m is None:
                if self._find(keep, True, what, scope) is None:
                    return ContractResult(a, name, Status.PASS,
                                          "holds vacuously: the traffic is empty (check its endpoints and excepts)")
                return ContractResult(a, name, Status.PASS, "every packet of the traffic is allowed")
            return self._counterexample(a, name, m, False, "blocked", "a packet of the traffic is blocked", examined)
        if kind is AssertionKind.SOME:
            got = self._some(a, name, keep, scope, what, examined)
            if got.verdict is Status.PASS and self._virtual_network_widened(a):
                # VirtualNetwork as an endpoint is every private block when a VNet's space is a parameter
                # (analyses.endpoints.virtual_network_hosts): a superset, sound for no/all/only, but the packet
                # `some` found may lie outside the VNet's real space, so its "allowed" proves nothing.
                spaces = ", ".join(sorted(set(self.rp.open_spaces.values())))
                return ContractResult(a, name, Status.UNKNOWN, "undecided: the packet found comes from or goes to "
                                      f"VirtualNetwork, which spans every private block while {spaces} is unset",
                                      reason="assert some with VirtualNetwork as an endpoint needs the VNet's "
                                      "address space: pin it (--param NAME=PREFIX) or add the VNet to the inputs")
            return got
        raise AssertionError(kind)  # pragma: no cover

    def _virtual_network_widened(self, a: Assertion) -> bool:
        """Does the assertion's traffic name VirtualNetwork while some VNet's space is a parameter?"""
        if not self.rp.open_spaces or a.traffic is None:
            return False
        ends = a.traffic.sources + a.traffic.destinations
        return any(isinstance(e, TagSide) and canonical_builtin(e.tag.name) == "VirtualNetwork" for e in ends)

    def _decision(self, scope) -> Any:
        """The decision term :meth:`_find` uses, as a term over the packet and address variables."""
        return self.enc.path_allows(*scope) if self.narrow else self.enc.path_allows()

    def _some(self, a: Assertion, name: str, keep, scope, what: str,
              examined: Callable[[FlowResult], bool]) -> ContractResult:
        """``some``: for every assignment of dynamic addresses, some packet of the traffic is allowed.

        That is a 2QBF (for all addresses, exists a packet), decided by counterexample-guided refinement:
        each allowed packet found is generalised (an address held by a dynamic NIC becomes that NIC's
        address variable), then Z3 looks for an assignment under which none of the generalised packets
        found so far is allowed. None left: the claim holds. Otherwise, with the assignment pinned, either
        some packet is allowed (generalise it, go round again) or none is: the assignment is the
        counterexample. Each round rules out at least the assignment it started from."""
        from nsgsolve.smt.z3util import mk_and, mk_not

        m = self._find(keep, True, what, scope)
        if m is None:
            example = self._find(keep, False, what, scope)
            if example is None:
                return ContractResult(a, name, Status.FAIL, "the traffic is empty, so none of it is allowed "
                                      "(check its endpoints and excepts)")
            return self._counterexample(a, name, example, False, "example blocked",
                                        "no packet of the traffic is allowed", examined)
        flow, assignment = self._replay(m)
        if not flow.allowed or not examined(flow):
            return _disagree(a, name, flow)
        if not assignment and not self.enc.params:  # nothing free but the packet: it is allowed, full stop
            return ContractResult(a, name, Status.PASS, f"allowed, for example {flow.packet}", flow,
                                  "example allowed", _responsible(flow, True), assignment)
        example, example_assignment = flow, assignment
        enc = self.enc
        allowed = mk_and([keep, self._decision(scope)])
        covered: list = []
        for _ in range(SOME_ROUNDS):
            covered.append(self._generalised(allowed, m))
            uncovered = self.solver.find(mk_and([mk_not(c) for c in covered]), None, what)
            if uncovered is None and len(covered) > 1 and self._lists:
                # Several packets, each allowed under some values: a list value (one prefix per packet's
                # needs, docs/import.md) may block them all where no single prefix does.
                names = ", ".join(self._lists)
                return ContractResult(a, name, Status.UNKNOWN, f"undecided: no single packet is allowed for "
                                      f"every value, and {names} may be a list of prefixes",
                                      reason="assert some over a parameter read as a list of prefixes is decided "
                                      "only when one packet is allowed for every value: pin the parameter "
                                      "(--param NAME=PREFIX,PREFIX) or narrow the traffic")
            if uncovered is None:
                rounds = f" (in {len(covered)} rounds)" if len(covered) > 1 else ""
                free = "addresses the dynamic NICs get" if example_assignment else ""
                if self.enc.params:
                    free += (" and " if free else "") + "values the template's parameters take"
                return ContractResult(a, name, Status.PASS, f"allowed whatever {free}"
                                      f"{rounds}; for example {example.packet}", example, "example allowed",
                                      _responsible(example, True), example_assignment)
            other = enc.model_assignment(uncovered)
            other_params = self.binder.values(uncovered)
            pinned = mk_and([keep, enc.is_assignment(other), enc.is_params(uncovered)])
            m = self._find(pinned, True, what, scope)
            if m is None:
                return self._stranded(a, name, pinned, other, scope, what, examined, other_params)
            flow, _ = self._replay(m)
            if not flow.allowed or not examined(flow):
                return _disagree(a, name, flow)
        return ContractResult(a, name, Status.UNKNOWN, f"undecided: no answer after {SOME_ROUNDS} rounds of "
                              "addresses the dynamic NICs may get", reason=f"assert some with dynamic IPs is "
                              f"decided by trying allowed packets against address assignments; {SOME_ROUNDS} "
                              "rounds did not settle it (pin the NICs' addresses, or narrow the traffic)")

    def _generalised(self, term, m) -> Any:
        """``term`` for the packet of model ``m``, where an address a dynamic NIC holds in ``m`` is replaced by
        that NIC's address variable: the same packet to (from) that NIC wherever Azure puts it."""
        import z3

        from nsgsolve.smt.z3util import value

        enc = self.enc
        owner = {ip: k for k, ip in enc.model_assignment(m).items()}
        subs = []
        for f in ("protocol", "src", "sport", "dst", "dport"):
            v = value(m, enc.field(f))
            if f in ("src", "dst") and v in owner:
                subs.append((enc.field(f), enc.addr(owner[v])))
            else:
                subs.append((enc.field(f), enc.c(v, enc.field(f).size())))
        return z3.substitute(term, *subs)

    def _stranded(self, a: Assertion, name: str, pinned, assignment: dict[IpcKey, int], scope, what: str,
                  examined: Callable[[FlowResult], bool], params: dict[str, str] | None = None) -> ContractResult:
        """``some`` fails: with ``assignment`` and parameter values ``params`` (``pinned`` is the traffic
        under them) nothing is allowed."""
        relevant = [k for k in sorted(assignment) if k in set(scope[1]) | set(scope[2])] or sorted(assignment)
        parts = [f"{k} at {int_to_ip(assignment[k])}" for k in relevant]
        used = {n for n, _ in self.enc.params}
        shown = {k: v for k, v in (params or {}).items() if k in used}
        parts += [f"{param_label(k)} = {v}" for k, v in sorted(shown.items())]
        at = "with " + ", ".join(parts)
        example = self._find(pinned, False, what, scope)
        if example is None:
            return ContractResult(a, name, Status.FAIL, f"{at} the traffic is empty (no NIC is at its addresses), "
                                  "so none of it is allowed", assignment=assignment, params=shown)
        return self._counterexample(a, name, example, False, "example blocked",
                                    f"{at} nothing of this traffic is allowed", examined)

    def _counterexample(self, a: Assertion, name: str, model, expect_allowed: bool, role: str,
                        summary: str, examined: Callable[[FlowResult], bool]) -> ContractResult:
        flow, assignment = self._replay(model)
        if flow.allowed != expect_allowed or not examined(flow):
            return _disagree(a, name, flow)
        params = self._params
        with_params = f" ({describe_params(params)})" if params else ""
        return ContractResult(a, name, Status.FAIL, f"{summary}: {flow.packet}{with_params}", flow, role,
                              _responsible(flow, expect_allowed), assignment, params=params)


def _within(t: Traffic, flow: FlowResult) -> bool:
    return t.contains(flow.packet, flow.src_endpoint, flow.dst_endpoint)


def _disagree(a: Assertion, name: str, flow: FlowResult) -> ContractResult:
    return ContractResult(
        a,
        name,
        Status.UNKNOWN,
        "undecided: the solver and the reference evaluator disagree",
        flow,
        "disputed",
        (),
        reason=f"Z3's witness {flow.packet} is {flow.decision.value} by the "
        "evaluator (or it is not a packet of the assertion's traffic); please report this with the policy file",
    )


def _responsible(flow: FlowResult, allowed: bool) -> tuple[Responsible, ...]:
    """For an allowed witness every layer's allow rule (all of them let it through); for a blocked one the
    first deny (the one that stops the packet)."""
    # Only layers Azure consulted: a later layer after a deny, or an NSG an AlwaysAllow admin rule skipped,
    # decided nothing.
    want = (Access.ALLOW, Access.ALWAYS_ALLOW) if allowed else (Access.DENY,)
    steps = [s for s in flow.trace if s.evaluated and s.access in want]
    if not allowed:
        steps = steps[:1]
    return tuple(Responsible(s.nsg, s.attached_to, s.direction, s.rule, s.priority, s.access,
                             s.rule_span if isinstance(s.rule_span, Span) else None, s.is_default) for s in steps)


def _lint_assertion(checker: "ContractChecker", a: Assertion, name: str) -> ContractResult:
    """``clean``: no lint finding at error severity; ``no shadowed``: no NSG001 finding at all."""
    from nsgsolve.analyses import lint

    findings = checker.lint_findings()
    if a.kind is AssertionKind.CLEAN:
        bad = [f for f in findings if f.severity == "error"]
        what = "at error severity"
    else:
        bad = [f for f in findings if f.code == lint.SHADOWED.code]
        what = "of shadowed rules"
    if not bad:
        return ContractResult(a, name, Status.PASS, f"the anomaly analysis reports nothing {what}")
    responsible = tuple(Responsible(f.nsg, f"nsg {f.nsg}", f.direction, f.rule, f.priority, f.access, f.span)
                        for f in bad)
    lines = tuple(f"{f.rule_id}: {f.message}" + (f" (witness {f.witness})" if f.witness else "") for f in bad)
    first = bad[0]
    return ContractResult(a, name, Status.FAIL, f"{len(bad)} finding{'s' if len(bad) != 1 else ''} {what}, "
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
                bag.error(
                    "E701",
                    f"two assertions are named '{a.name}'",
                    a.span,
                    f"the first is at {explicit[a.name].span}; names identify tests in CI, so they must be unique",
                )
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
    from nsgsolve.semantics.resolve import resolve
    from nsgsolve.smt.encode import INDEX_AFTER

    assertions = [a for a in policy.assertions if isinstance(a, Assertion)]
    names = unique_names(assertions)
    if not assertions:
        return []
    rp = rp or resolve(policy)
    checker = ContractChecker(rp, solver_mode, rlimit, narrow)
    if len(assertions) >= INDEX_AFTER:
        # Each assertion asks at least one question of every list on its path: with this many, the lists would
        # soon get their indexes anyway, and the box tests before that cost more than building them (50
        # contracts on two 1,000-rule NSGs: 0.1 s of tests against 0.04 s of indexes).
        checker.enc.index_after = 0
    out = []
    for i, (a, n) in enumerate(zip(assertions, names)):
        if progress is not None:
            progress(i, len(assertions), a)
        out.append(checker.check(a, n))
    return out


__all__ = ["ContractChecker", "ContractResult", "Responsible", "check_policy", "unique_names"]
