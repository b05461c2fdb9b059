"""The lint checks, one module per family; :mod:`nsgsolve.analyses.lint.registry` lists them in run order.

A check module defines its finding kinds (:class:`~nsgsolve.analyses.lint.findings.CodeInfo`) and one
``check(ctx) -> bool`` over a :class:`~nsgsolve.analyses.lint.context.RuleContext`: it adds findings with
``ctx.add`` and returns True when nothing after it applies to the rule. To add a check: write a module
here and add one entry to the registry.
"""
