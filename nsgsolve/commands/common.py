"""Options and loading shared by every subcommand that takes a POLICY."""

from __future__ import annotations

import argparse

from ..loader import load_policy
from ..resolve import ResolvedPolicy, resolve
from ..servicetags import ServiceTagDb


def add_policy_args(parser: argparse.ArgumentParser, multiple: bool = False) -> None:
    if multiple:
        parser.add_argument("policy", nargs="+", metavar="POLICY",
                            help="a .nsg file, or ARM template / az export JSON files")
    else:
        parser.add_argument("policy", metavar="POLICY", help="a .nsg file, or an ARM template / az export JSON file")
    parser.add_argument("--service-tags", metavar="FILE",
                        help="Microsoft's ServiceTags_Public JSON, for tags other than VirtualNetwork, Internet, "
                             "AzureLoadBalancer")


def tag_db(args: argparse.Namespace) -> ServiceTagDb:
    path = getattr(args, "service_tags", None)
    return ServiceTagDb.from_json_file(path) if path else ServiceTagDb()


def load(args: argparse.Namespace):
    return load_policy(args.policy)


def load_and_resolve(args: argparse.Namespace) -> ResolvedPolicy:
    return resolve(load(args), tag_db(args))


def formatter() -> type[argparse.HelpFormatter]:
    return argparse.RawDescriptionHelpFormatter
