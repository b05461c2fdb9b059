"""``nsgsolve import``: write ARM templates or az exports as a policy in nsgsolve's language."""

from __future__ import annotations

import argparse
from typing import TextIO

from nsgsolve.commands.common import add_import_args, add_limits_arg, formatter, load_files

EPILOG = """examples:
  nsgsolve import azuredeploy.json -o network.nsg
  nsgsolve import azuredeploy.json --params-file azuredeploy.parameters.json --param vmName=web1
  nsgsolve import nsgs.json vnets.json nics.json -o estate.nsg    # az network nsg/vnet/nic list output
  nsgsolve import azuredeploy.json --strict     # stop on any value nsgsolve cannot compute offline
  nsgsolve import ./network --var-file prod.tfvars --var 'address_space=["10.0.0.0/16"]'   # Terraform
  nsgsolve import tfplan.json                   # terraform show -json PLANFILE (or state) output

Approximations are written as comments. See docs/import.md."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="write ARM templates / az exports in nsgsolve's language",
                       description="Translate ARM templates, az CLI exports or REST API responses into an "
                                   "equivalent .nsg policy, keeping Azure's names and descriptions.",
                       epilog=EPILOG, formatter_class=formatter())
    p.add_argument("files", nargs="+", metavar="FILE", help="ARM template, parameters file, az/REST JSON, "
                   "Terraform .tf files or directory, terraform show -json output")
    p.add_argument("-o", "--output", metavar="OUT.nsg", help="write here instead of standard output")
    add_limits_arg(p)
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nsgsolve.errors import NsgsolveError

    try:
        from nsgsolve.lang.printer import print_policy
    except ImportError:  # the printer lands separately; say so instead of a traceback
        raise NsgsolveError("this build has no policy printer (nsgsolve.lang.printer) yet") from None

    policy = load_files(args.files, args, err)
    text = print_policy(policy)
    if args.output:
        from nsgsolve.fileio import atomic_write_text

        atomic_write_text(args.output, text)
        n_rules = sum(len(n.rules) for n in policy.nsgs)
        print(f"wrote {args.output}: {len(policy.nsgs)} NSGs, {n_rules} rules, {len(policy.vnets)} VNets, "
              f"{len(policy.nics)} NICs, {len(policy.notes)} notes", file=err)
    else:
        out.write(text)
    return 0
