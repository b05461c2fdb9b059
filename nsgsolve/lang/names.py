"""What a bare name in a policy means: the names a policy declares, by kind (:class:`NameTable`), and the
words that are never names (:data:`RESERVED_NAMES`).

The builder reads names with these and the printer writes them with the same rules, so that a printed
policy reads back as the same model. They live apart from the grammar and the builder (which load Lark)
so that printing an imported policy (``import``, ``show`` of an ARM template or Bicep file) does not load
those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nsgsolve.errors import did_you_mean
from nsgsolve.model import Policy
from nsgsolve.semantics.servicetags import canonical_builtin

# Keywords that a name cannot be spelled as (in any case) without back-quotes: these are the ones the
# parser accepts where a name may also stand (`from any`, `to asg X`, `port any`), plus asg/nsg, which the
# postlexer reads as keywords everywhere. Every other keyword is read as a name where a name is expected.
RESERVED_NAMES = frozenset(("any", "asg", "nsg", "nic", "subnet", "vnet", "tag"))


@dataclass
class NameTable:
    """The declared names of a policy, by kind: what a bare name in a rule or query means."""

    networks: set[str] = field(default_factory=set)
    port_lists: set[str] = field(default_factory=set)
    asgs: set[str] = field(default_factory=set)
    nics: set[str] = field(default_factory=set)
    vnets: set[str] = field(default_factory=set)
    subnets: dict[str, list[str]] = field(default_factory=dict)  # short name → VNets holding one
    tags: dict[str, str] = field(default_factory=dict)  # lower-case → declared spelling

    @classmethod
    def from_policy(cls, policy: Policy) -> "NameTable":
        t = cls()
        t.networks = {d.name for d in policy.networks}
        t.port_lists = {d.name for d in policy.ports}
        t.asgs = {a.name for a in policy.asgs}
        t.nics = {n.name for n in policy.nics}
        t.vnets = {v.name for v in policy.vnets}
        for v in policy.vnets:
            for s in v.subnets:
                t.add_subnet(v.name, s.name)
        t.tags = {d.name.lower(): d.name for d in policy.tags}
        return t

    def add_subnet(self, vnet: str, subnet: str) -> None:
        holders = self.subnets.setdefault(subnet, [])
        if vnet not in holders:
            holders.append(vnet)

    def kinds(self, name: str) -> list[str]:
        out = []
        if name in self.networks:
            out.append("network")
        if name in self.asgs:
            out.append("asg")
        if name in self.nics:
            out.append("nic")
        if name in self.subnets:
            out.append("subnet")
        if name in self.vnets:
            out.append("vnet")
        if name.lower() in self.tags:
            out.append("tag")
        return out

    def object_names(self) -> list[str]:
        return sorted(self.networks | self.asgs | self.nics | set(self.subnets) | self.vnets)

    def bare_kind(self, name: str) -> str:
        """What a bare ``name`` means: a kind, or "ambiguous" / "near-miss" (an error if written bare).

        A name that is nothing declared is a service tag, unless it is close to a declared name: then it
        is most likely a typo (``WebServer`` for the ASG ``WebServers``) and the builder says so.
        """
        kinds = self.kinds(name)
        if len(kinds) > 1 or (kinds == ["subnet"] and len(self.subnets[name]) > 1):
            return "ambiguous"
        if kinds:
            return kinds[0]
        if canonical_builtin(name) is None and did_you_mean(name, self.object_names()):
            return "near-miss"
        return "tag"
