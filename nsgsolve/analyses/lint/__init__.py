"""Rule anomaly analysis (``nsgsolve lint``): which rules of an NSG still matter, and why not.

For every NSG, in every VNet where it is evaluated (``VirtualNetwork`` and ``Internet`` differ per VNet),
and for each direction, every user rule gets at most one of these findings, the first that applies:

* **NSG003 unmatchable-rule**: the rule matches no packet at all (an ASG without members, an Icmp rule
  with ports, a service tag without addresses, a source of one address family and a destination of the
  other), with the reason.
* **NSG001 shadowed-rule**: every packet it matches is decided by higher-priority rules. The finding
  names a small covering set (greedy by overlap, then minimised; a rule that decides some of its packets
  the other way is always in it). *Error* when some of its packets get the opposite decision (the
  author's intent is overridden, with a witness packet), *warning* when they all get its own.
* **NSG002 redundant-rule**: it decides some packets, but the rules below it (defaults included) would
  decide every one of them the same way, so removing it changes nothing.
* **NSG005 outside-attachment**: its destination (inbound) or source (outbound) lies outside every
  subnet and NIC the NSG is attached to, so it can never see traffic.
* **NSG004 dead-across-layers**: an Allow rule that decides traffic for NICs, but every such packet is
  denied at another layer of the same NIC's path (the NIC NSG behind a subnet NSG, the subnet NSG behind
  a NIC NSG, the platform's outbound TCP 25 block).

Security admin rules (AVNM) are evaluated before the NSGs: **AVNM001 dead-by-admin-rule** (an NSG rule
every packet of which an admin Deny or AlwaysAllow decides first; checked right after NSG003) and
**AVNM002 shadowed-admin-rule** (an admin rule shadowed by admin rules of the same VNet's admin list, the
one check of scope "admin").

With ``include_info`` two informational findings are added for rules that still decide something:
**NSG006 correlated-rule** (partial overlap with a higher-priority rule of the opposite action) and
**NSG007 generalizes-rule** (a superset of such a rule): Al-Shaer's correlation and generalization.

In a policy with IPv6 addresses every finding holds for both address families: each list is analysed
per family and the facts merged (``families``).

The package: ``findings`` (codes, findings), ``engine`` (the analysis of one rule list), ``layers``
(paths through an NSG, for NSG004), ``context`` (what a check sees of a rule), ``checks/`` (one module
per family of codes), ``registry`` (the checks in run order, the codes ``lint --help`` lists) and
``linter`` (runs them over a policy). Adding a check is one module in ``checks/`` and one registry entry.

Redundancy is a property of one rule at a time: two identical rules are each redundant, but not both
removable together. Default rules are never reported (they cannot be removed) but take part as the
rules below every user rule.
"""

from nsgsolve.analyses.lint.checks.attachment import OUTSIDE_ATTACHMENT
from nsgsolve.analyses.lint.checks.layers import DEAD_ACROSS_LAYERS
from nsgsolve.analyses.lint.checks.observed import UNUSED_OBSERVED
from nsgsolve.analyses.lint.checks.overlap import CORRELATED, GENERALIZES
from nsgsolve.analyses.lint.checks.shadowing import REDUNDANT, SHADOWED
from nsgsolve.analyses.lint.checks.unmatchable import UNMATCHABLE
from nsgsolve.analyses.lint.findings import CODE_BY_ID, CodeInfo, Finding, RuleRef
from nsgsolve.analyses.lint.linter import Linter, exit_status, lint
from nsgsolve.analyses.lint.registry import CHECKS, CODES, codes_help

__all__ = ["CHECKS", "CODES", "CODE_BY_ID", "CORRELATED", "CodeInfo", "DEAD_ACROSS_LAYERS", "Finding", "GENERALIZES",
           "Linter", "OUTSIDE_ATTACHMENT", "REDUNDANT", "RuleRef", "SHADOWED", "UNMATCHABLE", "UNUSED_OBSERVED",
           "codes_help", "exit_status", "lint"]
