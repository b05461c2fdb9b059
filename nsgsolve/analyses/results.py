"""The result vocabulary every analysis shares: :class:`Status` and :class:`Witness`.

A claim checked by nsgsolve (an assertion, a lint finding) passes, fails or stays undecided; a packet
that shows something (a query's example, a failing assertion's counterexample, a lint finding's
example, a diff region's witness) is one :class:`Witness`, written to JSON in one shape (docs/json.md),
so a consumer reads ``dynamic_ips`` or ``dst_nic`` the same way whichever command produced it.
Rendering lives in :mod:`nsgsolve.reports`; this module only holds data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from nsgsolve.model import param_label
from nsgsolve.semantics.addresses import int_to_ip
from nsgsolve.semantics.evaluate import FlowResult, Packet
from nsgsolve.semantics.resolve import IpcKey


class Status(Enum):
    """Three-valued: UNKNOWN (the solver gave up, or two engines disagreed) is never a pass."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Witness:
    """One concrete packet that shows a claim.

    ``dynamic_ips`` are the addresses it assumes for NICs whose private IP is dynamic (replay with
    ``Evaluator(rp, witness.assignment)`` or ``verify --assume-ip NIC=IP``). ``flow`` is the reference
    evaluator's decision and trace when the witness was replayed end to end (queries, contracts); lint
    judges one NSG at a time and gives ``decided_by``, the rule that decides it there, instead."""

    packet: Packet
    src_nic: IpcKey | None = None  # the NIC at each end, when the witness names one
    dst_nic: IpcKey | None = None
    dynamic_ips: tuple[tuple[IpcKey, int], ...] = ()
    flow: FlowResult | None = None
    decided_by: str | None = None
    role: str = ""  # what it shows, when a claim has several kinds: "allowed", "example blocked", ...
    note: str = ""
    # Values it assumes for unset template parameters the rules on its path are built from (symbolic):
    # name -> value as a template writes it. The witness holds for these values.
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def replayed(cls, flow: FlowResult, assignment: Mapping[IpcKey, int], role: str = "",
                 params: Mapping[str, str] | None = None) -> "Witness":
        return cls(flow.packet, flow.src_endpoint, flow.dst_endpoint, tuple(sorted(assignment.items())), flow,
                   role=role, params=tuple(sorted((params or {}).items())))

    @classmethod
    def at(cls, packet: Packet, src_dynamic: IpcKey | None, dst_dynamic: IpcKey | None,
           decided_by: str | None = None, note: str = "") -> "Witness":
        """A packet between two ends of which ``*_dynamic`` name the dynamic NICs sitting at its addresses."""
        assumed: dict[IpcKey, int] = {}
        if src_dynamic is not None:
            assumed[src_dynamic] = packet.src
        if dst_dynamic is not None:
            assumed[dst_dynamic] = packet.dst
        return cls(packet, src_dynamic, dst_dynamic, tuple(assumed.items()), decided_by=decided_by, note=note)

    @property
    def assignment(self) -> dict[IpcKey, int]:
        return dict(self.dynamic_ips)

    @property
    def src_dynamic(self) -> IpcKey | None:
        """The source NIC when its address is an assumed dynamic one."""
        return self.src_nic if self.src_nic is not None and self.assignment.get(self.src_nic) == self.packet.src \
            else None

    @property
    def dst_dynamic(self) -> IpcKey | None:
        return self.dst_nic if self.dst_nic is not None and self.assignment.get(self.dst_nic) == self.packet.dst \
            else None

    @property
    def nic(self) -> IpcKey | None:
        """The NIC the packet reaches (None: an outside address)."""
        return self.dst_nic

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.role:
            d["role"] = self.role
        d.update(self.packet.to_dict())
        d["src_nic"] = str(self.src_nic) if self.src_nic is not None else None
        d["dst_nic"] = str(self.dst_nic) if self.dst_nic is not None else None
        d["dynamic_ips"] = {str(k): int_to_ip(v) for k, v in self.dynamic_ips}
        if self.flow is not None:
            d["decision"] = self.flow.decision.value
            d["trace"] = [s.to_dict() for s in self.flow.trace]
            d["notes"] = list(self.flow.notes)
        if self.decided_by is not None:
            d["decided_by"] = self.decided_by
        if self.note:
            d["note"] = self.note
        if self.params:
            d["parameters"] = dict(self.params)
        return d

    def __str__(self) -> str:
        extra = "".join(f" [{k} at {int_to_ip(v)}]" for k, v in self.dynamic_ips)
        if self.params:
            extra += f" [{describe_params(self.params)}]"
        return f"{self.packet}{extra}"


def describe_params(params: "Mapping[str, str] | tuple[tuple[str, str], ...]") -> str:
    """``with parameters('a') = 0.0.0.0/0, parameters('b') = 22``: the values a witness assumes."""
    items = sorted(params.items()) if isinstance(params, Mapping) else list(params)
    return "with " + ", ".join(f"{param_label(k)} = {v}" for k, v in items)


__all__ = ["Status", "Witness", "describe_params"]
