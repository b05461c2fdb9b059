"""The registry of lint checks: which run, in which order, and the finding kinds each produces.

Per rule the linter runs the checks in this order on one :class:`~nsgsolve.analyses.lint.context.RuleContext`.
A check returning True ends the rule (an unmatchable or shadowed rule has no other finding). An
``exclusive`` check is skipped once an earlier one marked the rule decided (a redundant rule is not also
reported as outside its attachments or dead across layers). ``info`` checks run only with ``lint --all``.
``scope`` says which rules a check sees: "nsg" (every user rule of every NSG) or "admin" (every security
admin rule, over the admin list of each VNet it applies to; the context's ``nsg`` is that list).

Adding a check: a module in :mod:`nsgsolve.analyses.lint.checks` with its CodeInfo(s) and ``check(ctx)``,
and one entry below; ``nsgsolve lint --help`` and docs list :data:`CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nsgsolve.analyses.lint.checks import (
    admin, attachment, layers, observed, overlap, shadowing, unmatchable,
)
from nsgsolve.analyses.lint.context import RuleContext
from nsgsolve.analyses.lint.findings import CodeInfo


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[RuleContext], bool] | None  # None: the findings come from elsewhere (lint --flow-logs)
    codes: tuple[CodeInfo, ...]
    exclusive: bool = False
    info: bool = False
    scope: str = "nsg"  # "nsg" or "admin"


CHECKS: tuple[Check, ...] = (
    Check("unmatchable", unmatchable.check, (unmatchable.UNMATCHABLE,)),
    # Before the NSG-level checks: a rule the admin layer decides for never decides anything, and saying it
    # is redundant within its NSG (with a packet it "decides") would mislead.
    Check("admin-dead", admin.check_dead, (admin.DEAD_BY_ADMIN,)),
    Check("shadowing", shadowing.check, (shadowing.SHADOWED, shadowing.REDUNDANT)),
    Check("attachment", attachment.check, (attachment.OUTSIDE_ATTACHMENT,), exclusive=True),
    Check("layers", layers.check, (layers.DEAD_ACROSS_LAYERS,), exclusive=True),
    Check("overlap", overlap.check, (overlap.CORRELATED, overlap.GENERALIZES), info=True),
    Check("observed", None, (observed.UNUSED_OBSERVED,)),
    Check("admin-shadowed", admin.check_shadowed, (admin.SHADOWED_ADMIN,), scope="admin"),
)

# Every finding kind, by code (the order of docs and help).
CODES: tuple[CodeInfo, ...] = tuple(sorted((c for check in CHECKS for c in check.codes), key=lambda c: c.code))


def codes_help() -> str:
    """The findings section of ``nsgsolve lint --help``, from the registry."""
    out = []
    for c in CODES:
        first, *rest = c.lines or (c.title,)
        out.append(f"  {c.code} {c.slug.ljust(max(20, len(c.slug) + 2))}{first}")
        out += [" " * 29 + line for line in rest]
    return "\n".join(out)
