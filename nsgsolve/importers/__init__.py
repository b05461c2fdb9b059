"""Read what Azure users already have: ARM templates, az CLI / REST exports, parameters files.

:func:`load_json_policy` is what :func:`nsgsolve.importers.loader.load_policy` calls for JSON inputs. Several files
make one policy (``az network nsg list`` + ``az network vnet list`` + ``az network nic list``, or a
template and its parameters file). Every problem is an :class:`~nsgsolve.errors.InputError` whose
diagnostics point into the files; see docs/import.md for the codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsgsolve.importers.combine import classify, load_json_policy, load_terraform_policy

__all__ = ["load_json_policy", "load_terraform_policy", "parse_param_assignments", "classify"]

# The readers live in nsgsolve.importers.combine and are imported on first use: every command imports
# this package (the loader is in it), and the ARM, Bicep and Terraform readers took a third of a second
# to import on a run that reads a .nsg file (bench/README.md).
_LAZY = frozenset(("load_json_policy", "load_terraform_policy", "classify"))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from nsgsolve.importers import combine

        return getattr(combine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_param_assignments(items: list[str] | None) -> dict[str, str]:
    """``["name=value", ...]`` from repeated ``--param`` options."""
    out: dict[str, str] = {}
    for it in items or []:
        name, eq, value = it.partition("=")
        if not eq or not name.strip():
            from nsgsolve.errors import UsageError

            raise UsageError(f"--param {it!r}: expected NAME=VALUE")
        out[name.strip()] = value
    return out
