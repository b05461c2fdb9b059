"""``nsgsolve fmt``: canonical formatting of .nsg files, comments kept."""

from __future__ import annotations

import argparse
from typing import TextIO

from nsgsolve.errors import EXIT_FINDING, UsageError
from nsgsolve.fileio import atomic_write_text
from nsgsolve.importers.loader import looks_like_json, read_text
from nsgsolve.lang.printer import format_text
from nsgsolve.commands.common import formatter

EPILOG = """examples:
  nsgsolve fmt examples/webservers.nsg              # print the formatted text
  nsgsolve fmt --check examples/*.nsg               # CI: exit 1 and list the files that need formatting
  nsgsolve fmt --write policy.nsg                   # rewrite the file in place

Formatting keeps the order of statements and every comment; it lays out each statement canonically
(one ASG per line, rules of a direction in priority order and aligned in columns, subnets as VNET/SUBNET)
and never changes what the policy means.

exit status: 0 formatted (or already formatted), 1 --check found files to format, 2 invalid input."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fmt", help="format .nsg policy files canonically",
                       description="Print a .nsg policy in canonical layout, keeping its comments.",
                       epilog=EPILOG, formatter_class=formatter())
    p.add_argument("policy", nargs="+", metavar="POLICY", help=".nsg policy file(s)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="change nothing; exit 1 and name each file that is not formatted")
    mode.add_argument("--write", action="store_true", help="rewrite the files in place")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Format every file before writing any, so one bad file leaves all of them untouched.
    results: list[tuple[str, str, str]] = []
    for path in args.policy:
        text = read_text(path)
        if looks_like_json(text):
            raise UsageError(f"{path} is JSON, not a .nsg policy",
                             "'nsgsolve fmt' formats the policy language; convert JSON with 'nsgsolve import'")
        results.append((path, text, format_text(text, path)))
    status = 0
    for path, text, formatted in results:
        if args.check:
            if formatted != text:
                print(f"would reformat {path}", file=out)
                status = EXIT_FINDING
        elif args.write:
            if formatted != text:
                atomic_write_text(path, formatted)
                print(f"reformatted {path}", file=err)
        else:
            out.write(formatted)
    return status
