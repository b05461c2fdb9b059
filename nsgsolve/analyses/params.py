"""Unset template parameters in answers: the values a witness assumes, and the concrete policy it is
replayed in (docs/import.md, "Unset parameters").

The Z3 encoding carries each unset parameter as variables (:class:`nsgsolve.smt.encode.ParamVars`), so a
question is answered for every value at once: a query's allowed witness exists when *some* value lets a
packet through, an assertion passes only when it holds for *every* value. A witness fixes the values; the
reference evaluator then decides the packet in the policy with those values written in
(:func:`nsgsolve.semantics.resolve.bind_params`), exactly as for a policy that never had a parameter.
"""

from __future__ import annotations

from typing import Callable, Mapping

import z3

from nsgsolve.model import PARAM_PREFIX, Policy, PortsRef, TagSide
from nsgsolve.semantics.evaluate import FlowResult
from nsgsolve.semantics.resolve import ResolvedPolicy, bind_params, resolve
from nsgsolve.smt.encode import Encoding
from nsgsolve.smt.z3util import mk_and

Finder = Callable[[z3.BoolRef, bool], "z3.ModelRef | None"]


def policy_params(policy: Policy) -> dict[str, set[str]]:
    """NSG name -> the unset parameters its rules are built from."""
    out: dict[str, set[str]] = {}
    for n in policy.nsgs:
        for r in n.rules:
            for side in (r.source, r.destination):
                if isinstance(side, TagSide) and side.tag.name.startswith(PARAM_PREFIX):
                    out.setdefault(n.name, set()).add(side.tag.name[len(PARAM_PREFIX):])
            for spec in (r.source_ports, r.destination_ports):
                for it in spec.items or ():
                    if isinstance(it, PortsRef) and it.define.name.startswith(PARAM_PREFIX):
                        out.setdefault(n.name, set()).add(it.define.name[len(PARAM_PREFIX):])
    return out


class Binder:
    """Turns a model's parameter values into the concrete policy a witness is replayed in (cached)."""

    def __init__(self, rp: ResolvedPolicy, enc: Encoding):
        self.rp, self.enc = rp, enc
        self.by_nsg = policy_params(rp.policy)
        # A VNet's (and its subnets') address space parameter belongs to the NSGs evaluated there: the
        # VirtualNetwork tag and the hosts' addresses read it (model.OpenVNet).
        for ov in rp.policy.open_vnets:
            if rp.open_spaces.get(ov.name) != ov.param:
                continue
            spaces = {ov.param} | {s.param for s in ov.subnets if s.param}
            if ov.peers_param:
                spaces.add(ov.peers_param)
            for nsg in {s.nsg.name for s in ov.subnets if s.nsg} | {n.nsg.name for n in ov.nics if n.nsg}:
                self.by_nsg.setdefault(nsg, set()).update(spaces)
        self.names = sorted(set().union(*self.by_nsg.values())) if self.by_nsg else []
        self._bound: dict[tuple, ResolvedPolicy] = {}

    def values(self, m: z3.ModelRef) -> dict[str, str]:
        """A value for every parameter of the policy: the model's where the encoding has a variable; any
        value where it has none (no rule built from it can meet the question's packets: the encoding
        leaves out only rules whose widest value cannot match there)."""
        got = self.enc.model_params(m)
        return {n: got.get(n, self._unused_value(n)) for n in self.names}

    def _unused_value(self, name: str) -> str:
        """A value for a parameter the encoding has no variable for (nothing it decided read it): ``*``, or
        a private prefix for an address space (model.OpenVNet)."""
        if name in self.rp.open_spaces.values() or name in self.rp.subnet_spaces:
            return "10.0.0.0/16"
        return "*"

    def bound(self, values: Mapping[str, str]) -> ResolvedPolicy:
        if not self.names:
            return self.rp
        key = tuple(sorted(values.items()))
        rp = self._bound.get(key)
        if rp is None:
            rp = self._bound[key] = resolve(bind_params(self.rp.policy, dict(values)), self.rp.tag_db)
        return rp

    def on_path(self, flow: FlowResult, values: Mapping[str, str]) -> dict[str, str]:
        """The values of the parameters of the NSGs the flow met that the answer depended on (the encoding
        has a variable for them), for the witness to name."""
        have = {name for name, _ in self.enc.params}
        met = {s.nsg for s in flow.trace if s.nsg is not None}
        names = {p for n in met for p in self.by_nsg.get(n, ()) if p in have}
        return {n: values[n] for n in sorted(names)}


    def relevant(self, find: Finder, m: z3.ModelRef, flow: FlowResult, assignment: Mapping, values: Mapping[str, str]
                 ) -> dict[str, str]:
        """The parameters the witness's decision depends on, with their values: none when every value
        decides the packet the same way; else each one that alone can change it (all of the NSGs met
        when only together they can). ``find(constraint, allowed)`` asks the solver for a model."""
        cands = self.on_path(flow, values)
        # A host of a VNet whose space is a parameter sits in the value the model gave: name it, whatever
        # else would decide the packet (else the witness reads as if any space held that address).
        placed = {}
        for k in (flow.src_endpoint, flow.dst_endpoint):
            info = self.rp.ipcs.get(k) if k is not None else None
            if info is not None and info.space is not None:
                for n in (info.space.name, self.rp.subnet_spaces.get(info.space.name)):
                    if n is not None and n in values:
                        placed[n] = values[n]
        if not cands:
            return placed
        enc = self.enc
        fixed = mk_and([enc.is_packet(flow.packet), enc.is_assignment(assignment)])
        if find(fixed, not flow.allowed) is None:
            return placed
        alone = {n: v for n, v in cands.items()
                 if find(mk_and([fixed, enc.is_params(m, but=n)]), not flow.allowed) is not None}
        return dict(sorted({**(alone or cands), **placed}.items()))


__all__ = ["Binder", "policy_params"]
