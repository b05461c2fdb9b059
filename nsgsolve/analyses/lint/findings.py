"""What lint reports: finding kinds (codes), the findings, and the rules a finding names.

A :class:`CodeInfo` is defined by the check that produces it (:mod:`nsgsolve.analyses.lint.checks`);
defining one records it in :data:`CODE_BY_ID`, so a :class:`Finding`, which carries only its code, finds
its title and help wherever it is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

from nsgsolve.analyses.results import Witness
from nsgsolve.model import Access, AdminRule, Direction, Span, span_dict
from nsgsolve.semantics.resolve import ResolvedRule

CODE_BY_ID: dict[str, "CodeInfo"] = {}


@dataclass(frozen=True)
class CodeInfo:
    """A finding kind: its stable code and slug (SARIF ruleId ``NSG001/shadowed-rule``) and texts."""

    code: str
    slug: str
    severity: str  # the highest severity a finding of this kind can have
    title: str
    help: str

    lines: tuple[str, ...] = ()  # its entry in ``nsgsolve lint --help`` (continuation lines indented there)

    def __post_init__(self) -> None:
        CODE_BY_ID[self.code] = self  # defined in its check's module; findings name it by code

    @property
    def rule_id(self) -> str:
        return f"{self.code}/{self.slug}"


@dataclass(frozen=True)
class RuleRef:
    """A rule named in a finding (a covering rule, a rule that decides instead)."""

    name: str
    priority: int | None  # None for the platform's rules
    access: Access
    span: Span
    is_default: bool = False
    nsg: str | None = None  # set when the rule is in another NSG than the finding's ("platform" for Azure's)

    def to_dict(self) -> dict:
        d = {"rule": self.name, "priority": self.priority, "access": self.access.value,
             "location": span_dict(self.span)}
        if self.nsg is not None:
            d["nsg"] = self.nsg
        return d

    def __str__(self) -> str:
        where = f"{self.nsg}: " if self.nsg else ""
        prio = f"priority {self.priority}, " if self.priority is not None else ""
        return f"{where}{self.name} ({prio}{self.access.value})"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    nsg: str
    direction: Direction
    rule: str
    priority: int
    access: Access
    span: Span
    covered_by: tuple[RuleRef, ...]
    witness: Witness | None
    message: str
    vnets: tuple[str, ...] = ()  # VNets where it holds, when not in every VNet the NSG is evaluated in
    layer: str = "nsg"  # "admin": the rule is a security admin rule and ``nsg`` reads "admin CONFIG/COLLECTION"

    @property
    def info(self) -> CodeInfo:
        return CODE_BY_ID[self.code]

    @property
    def rule_id(self) -> str:
        return self.info.rule_id

    def to_dict(self) -> dict:
        d = {"code": self.code, "severity": self.severity, "nsg": self.nsg, "direction": self.direction.value,
             "rule": self.rule, "location": span_dict(self.span),
             "covered_by": [c.to_dict() for c in self.covered_by],
             "witness": self.witness.to_dict() if self.witness else None, "message": self.message,
             "vnets": list(self.vnets) or None}
        if self.layer != "nsg":
            d["layer"] = self.layer  # only admin findings carry it: NSG findings keep their shape
        return d


def admin_owner(a: AdminRule) -> str:
    """Where a finding names an admin rule: ``admin CONFIG/COLLECTION`` (names are unique only there)."""
    return f"admin {a.config}/{a.collection}"


def _ref(r: ResolvedRule, nsg: str | None = None) -> RuleRef:
    return RuleRef(r.name, r.priority, r.access, r.rule.span, r.rule.is_default, nsg)
