"""Options and loading shared by every subcommand that takes a POLICY."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence, TextIO

from nsgsolve.errors import Diagnostic, render_all
from nsgsolve.importers.loader import load_policy
from nsgsolve.model import Policy
from nsgsolve.semantics.resolve import ResolvedPolicy, resolve
from nsgsolve.semantics.servicetags import ServiceTagDb, default_tag_db

POLICY_HELP = ("a .nsg file, or one or more JSON files (ARM template and parameters file, az exports such as "
               "'az network nsg list' + 'vnet list' + 'nic list', 'terraform show -json' output) that together make "
               "one policy, or a Terraform configuration (a directory or .tf files)")


def add_policy_args(parser: argparse.ArgumentParser, multiple: bool = False, policy_help: str = POLICY_HELP) -> None:
    """POLICY: one .nsg file or several JSON files read as one policy (``policy_help`` says more, for a command
    that also takes several .nsg files, each its own policy: ``lint``).

    With ``multiple`` (``check``), each file is a policy of its own instead.
    """
    if multiple:
        parser.add_argument("policy", nargs="+", metavar="POLICY",
                            help="policy files, each checked on its own: .nsg files (or directories of them), or "
                                 "ARM template / az export JSON files")
    else:
        parser.add_argument("policy", nargs="+", metavar="POLICY", help=policy_help)
    parser.add_argument("--service-tags", metavar="FILE",
                        help="Microsoft's ServiceTags_Public JSON, for tags other than VirtualNetwork, Internet, "
                             "AzureLoadBalancer (merged over the copy cached by 'nsgsolve tags import')")
    add_limits_arg(parser)
    add_import_args(parser)


def add_limits_arg(parser: argparse.ArgumentParser) -> None:
    """Every command that reads a policy takes it: one over Azure's limits is refused (E410) otherwise."""
    parser.add_argument("--no-azure-limits", action="store_true",
                        help="analyse NSGs larger than Azure accepts (more than 1,000 rules: merged views, "
                             "AVNM-sized policies, benchmarks): W410 instead of error E410")


def add_import_args(p: argparse.ArgumentParser) -> None:
    """ARM template and Bicep inputs: parameter values, and what to do with values nsgsolve cannot evaluate."""
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="an ARM template or Bicep parameter value (repeatable); overrides --params-file and defaults")
    # --param-file: the spelling Bicep users reach for (issue 19); one option, two names.
    p.add_argument("--params-file", "--param-file", metavar="FILE",
                   help="an ARM deployment parameters file or a Bicep .bicepparam file")
    p.add_argument("--symbolic", action="store_true",
                   help="with --strict: still leave a rule's addresses and ports that nsgsolve cannot evaluate "
                        "open (without --strict they are left open anyway)")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", dest="tf_var",
                   help="a Terraform variable value (repeatable), as terraform's -var; lists and maps in HCL")
    p.add_argument("--var-file", action="append", default=[], metavar="FILE", dest="tf_var_file",
                   help="a Terraform .tfvars (or .tfvars.json) file (repeatable), as terraform's -var-file")
    p.add_argument("--strict", action="store_true",
                   help="stop (E610) on any template value nsgsolve cannot evaluate offline, such as a parameter "
                        "without a value, instead of a placeholder name or an open value with a warning "
                        "(W601-W603)")
    p.add_argument("--ignore-admin-rules", action="store_true",
                   help="leave out Azure Virtual Network Manager security admin rules: by default every security "
                        "admin configuration in the input is taken as deployed (docs/semantics.md)")


def _positive_steps(text: str) -> int:
    try:
        n = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of steps: {text!r}") from None
    if n <= 0:
        # Z3 reads 0 as "no limit": a run that could never stop must be asked for on purpose, not by typo.
        raise argparse.ArgumentTypeError("the solver limit must be a positive number of steps")
    return n


def add_solver_limit_arg(parser: argparse.ArgumentParser) -> None:
    """``--solver-limit N`` (alias ``--rlimit``): Z3's deterministic resource limit per question."""
    from nsgsolve.smt.z3util import DEFAULT_RLIMIT

    parser.add_argument("--solver-limit", "--rlimit", dest="rlimit", type=_positive_steps, default=None, metavar="N",
                        help=f"solver resource limit per question, in Z3's abstract steps (the same on every machine; "
                             f"default {DEFAULT_RLIMIT:,}); a question that needs more is inconclusive (exit 3)")


def policy_label(paths: str | Sequence[str]) -> str:
    """How messages name a policy given as one file or several."""
    return paths if isinstance(paths, str) else " ".join(paths)


def tag_db(args: argparse.Namespace) -> ServiceTagDb:
    return default_tag_db(getattr(args, "service_tags", None))


def print_warnings(warnings: list[Diagnostic], err: TextIO, sources: Mapping[str, str] | None = None) -> None:
    """W-code diagnostics go to stderr, rendered like errors; stdout (maybe --json) stays untouched."""
    if warnings:
        print(render_all(warnings, sources), file=err)


def load_files(paths: str | Path | Sequence[str | Path], args: argparse.Namespace, err: TextIO) -> Policy:
    """One policy from ``paths`` with the command's import options, its warnings printed to ``err``."""
    from nsgsolve.importers import parse_param_assignments

    warnings: list[Diagnostic] = []
    try:
        policy = load_policy(paths, params=parse_param_assignments(getattr(args, "param", None)),
                             params_file=getattr(args, "params_file", None), symbolic=getattr(args, "symbolic", False),
                             warnings=warnings, strict=getattr(args, "strict", False),
                             tf_vars=getattr(args, "tf_var", None), tf_var_files=getattr(args, "tf_var_file", None))
        if getattr(args, "ignore_admin_rules", False):
            # Deployment state is not in a template: the user says these configurations are not deployed.
            policy = replace(policy, admin_configs=())
        return policy
    finally:  # a file with errors may have warnings too; they come before its errors
        print_warnings(warnings, err)


def load(args: argparse.Namespace, err: TextIO) -> Policy:
    return load_files(args.policy, args, err)


def load_and_resolve(args: argparse.Namespace, err: TextIO) -> ResolvedPolicy:
    return resolve(load(args, err), tag_db(args))


def formatter() -> type[argparse.HelpFormatter]:
    return argparse.RawDescriptionHelpFormatter
