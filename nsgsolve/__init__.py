"""nsgsolve: prove things about Azure Network Security Group policy, offline, for all packets at once.

The pipeline, one module per step::

    text ──syntax──▶ tree ──build──▶ model.Policy ──resolve──▶ ResolvedPolicy
         (or importers: ARM / az JSON ──▶ model.Policy)
    ResolvedPolicy ──▶ evaluate (one concrete flow, the reference semantics)
                   ──▶ encode (Z3, all packets) ──▶ analyses (query, lint, check, diff) ──▶ reports

Typical use::

    import nsgsolve
    policy = nsgsolve.load_policy("examples/webservers.nsg")
    rp = nsgsolve.semantics.resolve(policy)
    result = nsgsolve.semantics.evaluate(rp, nsgsolve.Packet.parse("tcp", "203.0.113.7", 50000, "10.0.1.4", 443))
    print(result.decision, [step.rule for step in result.trace])
"""

from nsgsolve.version import __version__  # noqa: E402

from nsgsolve.errors import Diagnostic, InputError, NsgsolveError, SolverUnknown, UsageError  # noqa: E402
from nsgsolve.importers.loader import load_policy  # noqa: E402
from nsgsolve.model import Access, Direction, Policy, Protocol  # noqa: E402
from nsgsolve.semantics.resolve import ResolvedPolicy, resolve  # noqa: E402
from nsgsolve.semantics.evaluate import FlowResult, Packet, TraceStep, evaluate  # noqa: E402

__all__ = [
    "Access", "Diagnostic", "Direction", "FlowResult", "InputError", "NsgsolveError", "Packet", "Policy",
    "Protocol", "ResolvedPolicy", "SolverUnknown", "TraceStep", "UsageError", "evaluate", "load_policy",
    "resolve",
]
