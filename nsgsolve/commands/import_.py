"""``nsgsolve import``: write ARM templates or az exports as a policy in nsgsolve's language."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from nsgsolve.commands.common import formatter

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
    add_import_args(p)
    p.set_defaults(func=run)


def add_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="an ARM template parameter value (repeatable); overrides --params-file and defaults")
    p.add_argument("--params-file", metavar="FILE", help="an ARM deployment parameters file")
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


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nsgsolve.errors import NsgsolveError
    from nsgsolve.commands.common import load_files

    try:
        from nsgsolve.lang.printer import print_policy
    except ImportError:  # the printer lands separately; say so instead of a traceback
        raise NsgsolveError("this build has no policy printer (nsgsolve.lang.printer) yet") from None

    policy = load_files(args.files, args, err)
    text = print_policy(policy)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            from nsgsolve.errors import UsageError

            raise UsageError(f"cannot write {args.output}: {e.strerror}",
                             "give -o a file path in an existing, writable directory") from None
        n_rules = sum(len(n.rules) for n in policy.nsgs)
        print(f"wrote {args.output}: {len(policy.nsgs)} NSGs, {n_rules} rules, {len(policy.vnets)} VNets, "
              f"{len(policy.nics)} NICs, {len(policy.notes)} notes", file=err)
    else:
        out.write(text)
    return 0
