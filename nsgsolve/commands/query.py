"""``nsgsolve query``: can SOURCES reach DESTINATIONS? All / some / none, with witnesses and exact sets."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from typing import TextIO

from nsgsolve.analyses.query import QueryEngine
from nsgsolve.model import span_dict
from nsgsolve.reports.json import dumps
from nsgsolve.reports.query import format_query
from nsgsolve.errors import EXIT_OK, EXIT_UNKNOWN, SolverUnknown, UsageError
from nsgsolve.semantics.resolve import resolve
from nsgsolve.commands.common import add_policy_args, add_solver_limit_arg, formatter, load, policy_label, tag_db

EPILOG = """examples:
  nsgsolve query examples/webservers.nsg "can Internet reach WebServers port 22"
  nsgsolve query examples/webservers.nsg "can 203.0.113.0/24 reach web1 port 443 tcp" --json
  nsgsolve query examples/three-tier.nsg "can any reach prod/db port 1433 tcp" --exact
  nsgsolve query examples/three-tier.nsg "can prod/web reach Internet port 25 tcp"
  nsgsolve query examples/hub-spoke.nsg "can spoke-a reach Storage.WestEurope port 443"   # tag declared in the file
  nsgsolve query examples/webservers.nsg          # every `query can ...` statement written in the file
  nsgsolve query nsgs.json vnets.json nics.json "can Internet reach web1 port 22"   # az exports; QUERY last
  nsgsolve query POLICY "can web1 reach Storage port 443" --service-tags ServiceTags_Public_YYYYMMDD.json
      (POLICY and the ServiceTags file are placeholders: the file is Microsoft's weekly download)

A query reads `can SOURCES reach DESTINATIONS [port PORTS] [tcp|udp|icmp|esp|ah]`. Sources and
destinations: any, a service tag, an ASG, a NIC, a subnet, a VNet, an IP, a CIDR, or a comma list.
No protocol means every protocol (Tcp and Udp when ports are given). docs/query.md has the details.

verdict: all / some / none of the asked traffic is allowed, for every address Azure may give dynamic NICs.
exit status: 0 when every query was answered (whatever the verdicts), 2 invalid input or usage,
3 inconclusive (the solver gave up within --solver-limit; never reported as an answer)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("query", help="can SOURCES reach DESTINATIONS? all / some / none, with witnesses",
                       description="Answer a reachability question for all packets at once: whether all, some or "
                                   "none of the traffic is allowed, a witness packet of allowed and of blocked "
                                   "traffic with its rule trace, and with --exact the whole allowed set.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p)
    # argparse gives every positional argument to POLICY (nargs '+' is greedy, so QUERY stays None);
    # split_query takes the question back. QUERY is declared for the usage line and the help.
    p.add_argument("query", nargs="?", metavar="QUERY",
                   help='e.g. "can Internet reach WebServers port 22"; omitted: every query in POLICY')
    p.add_argument("--exact", action="store_true", help="also print the complete allowed set as merged boxes")
    p.add_argument("--json", action="store_true",
                   help='JSON: {"schema", "verdict", "allowed_witness", "blocked_witness", "exact"}; for the queries '
                        'of a file {"schema", "queries": [...]} (docs/json.md)')
    add_solver_limit_arg(p)
    p.set_defaults(func=run)


def split_query(args: argparse.Namespace) -> None:
    """Move a QUERY given as the last positional argument from ``args.policy`` to ``args.query``.

    The last argument is the question when there is more than one, no file has that name, and it reads
    like one (starts with 'can' or has spaces); a mistyped file name stays a file and gets E001.
    """
    if args.query is not None or len(args.policy) < 2:
        return
    last = args.policy[-1]
    if os.path.exists(last):
        return
    if re.match(r"\s*can\b", last, re.IGNORECASE) or any(c.isspace() for c in last.strip()):
        args.policy, args.query = args.policy[:-1], last


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    split_query(args)
    policy = load(args, err)
    rp = resolve(policy, tag_db(args), symbolic_params=True, open_vnets=True)
    if args.query is not None:
        from nsgsolve.lang.build import parse_query

        q = parse_query(args.query, policy)
        queries = [q if q.text else dataclasses.replace(q, text=args.query.strip())]
    else:
        queries = list(policy.queries)
        if not queries:
            raise UsageError(f"{policy_label(args.policy)} has no query statements and no QUERY was given",
                             'give one, e.g. nsgsolve query POLICY "can Internet reach WebServers port 22"')
    engine = QueryEngine(rp, rlimit=args.rlimit)
    if len(queries) == 1 and args.query is not None:
        result = engine.ask(queries[0], exact=args.exact)  # SolverUnknown reaches the CLI: exit 3
        out.write(dumps("query", result.to_dict()) if args.json else format_query(result) + "\n")
        return EXIT_OK
    status = EXIT_OK
    entries, texts = [], []
    for q in queries:
        label = q.text or "query"
        try:
            result = engine.ask(q, exact=args.exact)
        except SolverUnknown as e:
            status = EXIT_UNKNOWN
            entries.append({"query": label, "location": span_dict(q.span), "result": None, "inconclusive": e.reason})
            texts.append(f"{label}\n  inconclusive: {e}")
            continue
        entries.append({"query": label, "location": span_dict(q.span), "result": result.to_dict()})
        texts.append(format_query(result, where=str(q.span)))
    out.write(dumps("query", {"queries": entries}) if args.json else "\n\n".join(texts) + "\n")
    return status
