"""NSG008 unused-in-observed-period: a rule that decided no logged flow while its NSG saw traffic.

Not a check over the policy alone: ``nsgsolve lint --flow-logs`` builds these findings from the replay of
Azure flow logs (:mod:`nsgsolve.analyses.replay`, docs/replay.md), so the registry lists the code without
a per-rule function.
"""

from __future__ import annotations

from nsgsolve.analyses.lint.findings import CodeInfo

UNUSED_OBSERVED = CodeInfo(
    "NSG008", "unused-in-observed-period", "warning", "Rule decided no logged flow in the observed period",
    "With --flow-logs: replaying the flow logs (nsgsolve replay), no logged flow was decided by the rule while "
    "its NSG saw traffic. A candidate for removal once the period is known to cover what the rule is for.",
    ("with --flow-logs: no logged flow used it (warning; docs/replay.md)",))
