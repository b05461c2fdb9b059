"""``nsgsolve show``: the resolved model - topology, and every NSG's rules as Azure evaluates them."""

from __future__ import annotations

import argparse
from typing import TextIO

from nsgsolve.reports.json import dumps
from nsgsolve.reports.show import show_dict, show_text
from nsgsolve.commands.common import add_policy_args, formatter, load_and_resolve

EPILOG = """examples:
  nsgsolve show examples/webservers.nsg
  nsgsolve show examples/hub-spoke.nsg --json | jq '.nsgs[].attached_to'
  nsgsolve show nsgs.json vnets.json nics.json     # az network nsg/vnet/nic list output, one policy
  nsgsolve show POLICY --service-tags ServiceTags_Public_YYYYMMDD.json   # placeholders: your files

For every NSG: where it is attached, then its rules per direction in evaluation order (priority order,
Azure's six default rules last). An NSG attached in several VNets is shown once per VNet, because
VirtualNetwork and Internet mean different addresses there. Address sets are shortened; --json has them all.

exit status: 0 shown, 2 invalid input."""

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="show the resolved model: topology and NSG rules in evaluation order",
                       description="Show VNets, subnets, NICs (addresses, ASGs, NSGs) and every NSG with where it is "
                                   "attached and its rules in evaluation order, default rules included, with the "
                                   "addresses each rule side resolves to.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p)
    p.add_argument("--json", action="store_true", help="JSON output (full address lists)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rp = load_and_resolve(args, err)
    if args.json:
        out.write(dumps("show", show_dict(rp)))
    else:
        out.write(show_text(rp))
    return 0
