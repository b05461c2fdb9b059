"""Options and loading shared by every subcommand that takes a POLICY."""

from __future__ import annotations

import argparse

from ..loader import load_policy
from ..resolve import ResolvedPolicy, resolve
from ..servicetags import ServiceTagDb, default_tag_db


def add_policy_args(parser: argparse.ArgumentParser, multiple: bool = False) -> None:
    if multiple:
        parser.add_argument("policy", nargs="+", metavar="POLICY",
                            help="a .nsg file, or ARM template / az export JSON files")
    else:
        parser.add_argument("policy", metavar="POLICY", help="a .nsg file, or an ARM template / az export JSON file")
    parser.add_argument("--service-tags", metavar="FILE",
                        help="Microsoft's ServiceTags_Public JSON, for tags other than VirtualNetwork, Internet, "
                             "AzureLoadBalancer (merged over the copy cached by 'nsgsolve tags import')")
    # ARM template inputs: parameter values and what to do with values nsgsolve cannot evaluate.
    from .import_ import add_import_args

    add_import_args(parser)


def tag_db(args: argparse.Namespace) -> ServiceTagDb:
    return default_tag_db(getattr(args, "service_tags", None))


def load(args: argparse.Namespace):
    from ..importers import parse_param_assignments

    return load_policy(args.policy, params=parse_param_assignments(getattr(args, "param", None)),
                       params_file=getattr(args, "params_file", None), symbolic=getattr(args, "symbolic", False))


def load_and_resolve(args: argparse.Namespace) -> ResolvedPolicy:
    return resolve(load(args), tag_db(args))


def formatter() -> type[argparse.HelpFormatter]:
    return argparse.RawDescriptionHelpFormatter
