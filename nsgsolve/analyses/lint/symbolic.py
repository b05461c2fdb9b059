"""Lint of an NSG whose rules are built from unset template parameters (docs/import.md, "Unset parameters").

The list analysis (:mod:`nsgsolve.analyses.lint.engine`) needs every rule as a box, which a rule whose
source is ``[parameters('allowedSource')]`` is not. Here the NSG's rule list is asked about with the Z3
encoding instead, where each parameter is a variable, and a finding is reported only when it holds for
**every** value of the parameters: a rule is called shadowed (NSG001) when no value lets it decide any
packet, redundant (NSG002) when for every value the rules below decide each packet it decides the same
way. When some value makes a rule live, nothing is said: a rule is never called dead because of a value
the template may never be given. The other checks (NSG003-NSG007) need the boxes and skip such an NSG
(the command says so, W305).

Every witness is checked against the reference evaluator's first match in the NSG with the witness's
parameter values written in.
"""

from __future__ import annotations

import dataclasses

import z3

from nsgsolve.analyses.lint.checks.shadowing import REDUNDANT, SHADOWED
from nsgsolve.analyses.lint.context import REMOVABLE, _names, _subject
from nsgsolve.analyses.lint.findings import Finding, RuleRef, _ref
from nsgsolve.analyses.params import Binder
from nsgsolve.analyses.results import Witness
from nsgsolve.model import Access, Direction, param_label
from nsgsolve.semantics.evaluate import first_match
from nsgsolve.semantics.resolve import ResolvedNsg, ResolvedPolicy
from nsgsolve.smt.encode import Encoding, PolicySolver
from nsgsolve.smt.z3util import FALSE, mk_and, mk_not, mk_or


class SymbolicLintDisagreement(AssertionError):
    """Z3 and the reference evaluator disagree on a lint witness: a bug in nsgsolve, never a finding."""


class SymbolicLinter:
    """NSG001/NSG002 for every value of the parameters, one NSG (in one VNet) and direction at a time."""

    def __init__(self, rp: ResolvedPolicy, rlimit: int | None = None):
        self.rp = rp
        self.enc = Encoding(rp, addr_prefix="lint-ip:")
        self.solver = PolicySolver(self.enc, rlimit)
        self.binder = Binder(rp, self.enc)

    def _find(self, term: z3.BoolRef, what: str) -> z3.ModelRef | None:
        return self.solver.find(term, None, what)

    def findings(self, nsg: ResolvedNsg, direction: Direction, rule: str | None = None) -> list[Finding]:
        rules = nsg.rules(direction)
        enc = self.enc
        match = [enc.rule_match(nsg, direction, i) for i in range(len(rules))]
        out: list[Finding] = []
        before = FALSE
        for i, r in enumerate(rules):
            prior, before = before, mk_or([before, match[i]])
            if r.rule.is_default or (rule is not None and r.name != rule):
                continue
            what = f"lint of rule {r.name} of {nsg.name}"
            names = self._params(nsg, direction, i)
            every = f" for every value of {', '.join(param_label(n) for n in names)}" if names else ""
            decides = mk_and([match[i], mk_not(prior)])
            live = self._find(decides, what)
            if live is None:
                out.append(self._shadowed(nsg, direction, i, match, every, what))
                continue
            rest = self._decision(rules, match, i + 1)
            own = rest if r.access is Access.ALLOW else mk_not(rest)
            if self._find(mk_and([decides, mk_not(own)]), what) is not None:
                continue  # some value and packet it decides would be decided otherwise: it matters
            w = self._witness(nsg, direction, live, r.name)
            take = [_ref(rules[j]) for j in range(i + 1, len(rules))
                    if self._find(mk_and([decides, match[j]] + [mk_not(match[k]) for k in range(i + 1, j)]), what)]
            out.append(self._finding(nsg, direction, i, REDUNDANT, "warning", take, w,
                                     f"{_subject(r)} is redundant{every}: the packets it decides (e.g. {w}) would "
                                     f"get the same decision ({r.access.value}) without it, from {_names(take)}"))
        return out

    def _shadowed(self, nsg: ResolvedNsg, direction: Direction, i: int, match: list, every: str, what: str) -> Finding:
        rules = nsg.rules(direction)
        r = rules[i]
        cover = [_ref(rules[j]) for j in range(i) if self._find(mk_and([match[i], match[j]]), what) is not None]
        msg = f"{_subject(r)} is fully shadowed{every} by {_names(cover)}" if cover else \
            f"{_subject(r)} matches no packet{every}"
        # Some packet (for some value) decided the other way by an earlier rule: the rule's intent is overridden.
        other = [mk_and([match[i], match[j]] + [mk_not(match[k]) for k in range(j)])
                 for j in range(i) if rules[j].access is not r.access]
        m = self._find(mk_or(other), what) if other else None
        if m is not None:
            j = next(j for j in range(i) if z3.is_true(m.eval(match[j], model_completion=True)))
            w = self._witness(nsg, direction, m, rules[j].name)
            msg += (f"; {rules[j].name} gives some of its packets the opposite decision ({rules[j].access.value}), "
                    f"e.g. {w}")
            return self._finding(nsg, direction, i, SHADOWED, "error", cover, w, msg)
        return self._finding(nsg, direction, i, SHADOWED, "warning", cover, None,
                             msg + f"; every packet it matches gets its own decision ({r.access.value}){REMOVABLE}")

    def _decision(self, rules, match: list, start: int) -> z3.BoolRef:
        """Allow by the first match among ``rules[start:]`` (the defaults end every list)."""
        acc = FALSE
        for j in range(len(rules) - 1, start - 1, -1):
            acc = mk_or([match[j], acc]) if rules[j].access is Access.ALLOW else mk_and([mk_not(match[j]), acc])
        return acc

    def _params(self, nsg: ResolvedNsg, direction: Direction, upto: int) -> list[str]:
        """The parameters of the NSG's rules in this direction (the values a finding quantifies over)."""
        seen: list[str] = []
        for r in nsg.rules(direction):
            seen += [p for p in r.params if p not in seen]
        return seen

    def _witness(self, nsg: ResolvedNsg, direction: Direction, m: z3.ModelRef, decided_by: str) -> Witness:
        """The model's packet, with the dynamic NICs at its addresses and the parameter values it assumes,
        checked against the evaluator's first match in the NSG with those values written in."""
        enc = self.enc
        packet = enc.model_packet(m)
        at = {ip: k for k, ip in enc.model_assignment(m).items()}
        src_dyn, dst_dyn = at.get(packet.src), at.get(packet.dst)
        values = self.binder.values(m)
        bound = self.binder.bound(values).nsg(nsg.name, nsg.vnet)
        got = first_match(bound.rules(direction), packet, src_dyn, dst_dyn)
        if got.name != decided_by:
            raise SymbolicLintDisagreement(
                f"Z3 says {decided_by} decides {packet} in {nsg.name} with {values}, the evaluator says {got.name}; "
                "this is a bug in nsgsolve, please report it")
        names = set(self._params(nsg, direction, len(nsg.rules(direction))))
        params = {k: v for k, v in values.items() if k in names}
        return dataclasses.replace(Witness.at(packet, src_dyn, dst_dyn, decided_by),
                                   params=tuple(sorted(params.items())))

    @staticmethod
    def _finding(nsg: ResolvedNsg, direction: Direction, i: int, code, severity: str, covered: list[RuleRef],
                 witness: Witness | None, message: str) -> Finding:
        r = nsg.rules(direction)[i]
        return Finding(code.code, severity, nsg.name, direction, r.name, r.priority, r.access, r.rule.span,
                       tuple(covered), witness, message)


__all__ = ["SymbolicLinter", "SymbolicLintDisagreement"]
