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

from nsgsolve.version import __version__ as __version__  # noqa: E402

# The names below are imported on first use (PEP 562), so that `nsgsolve --help` and commands that need
# little do not pay for the importers, the resolver and the evaluator at start-up.
_EXPORTS = {
    "Diagnostic": "nsgsolve.errors", "InputError": "nsgsolve.errors", "NsgsolveError": "nsgsolve.errors",
    "SolverUnknown": "nsgsolve.errors", "UsageError": "nsgsolve.errors",
    "load_policy": "nsgsolve.importers.loader",
    "Access": "nsgsolve.model", "Direction": "nsgsolve.model", "Policy": "nsgsolve.model", "Protocol": "nsgsolve.model",
    "ResolvedPolicy": "nsgsolve.semantics.resolve", "resolve": "nsgsolve.semantics.resolve",
    "FlowResult": "nsgsolve.semantics.evaluate", "Packet": "nsgsolve.semantics.evaluate",
    "TraceStep": "nsgsolve.semantics.evaluate", "evaluate": "nsgsolve.semantics.evaluate",
}


def __getattr__(name: str):
    import importlib

    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    try:  # a subpackage not imported yet: nsgsolve.semantics, nsgsolve.analyses, ...
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":  # the subpackage exists but something it imports does not
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "__version__", "Access", "Diagnostic", "Direction", "FlowResult", "InputError", "NsgsolveError", "Packet", "Policy",
    "Protocol", "ResolvedPolicy", "SolverUnknown", "TraceStep", "UsageError", "evaluate", "load_policy",
    "resolve",
]
