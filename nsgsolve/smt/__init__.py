"""The policy as Z3 constraints, for questions about all packets and all dynamic-address assignments.

``encode`` builds the terms (rule matches, first-match decisions, paths with the platform's rules) and
the incremental solver every analysis shares; ``z3util`` holds the low-level term helpers and the
resource-limit handling. The encoding mirrors :mod:`nsgsolve.semantics.evaluate` and is tested against it.
"""
