"""``nsgsolve tags``: service tag data — cache Microsoft's file once, look a tag up, compare with Azure's view."""

from __future__ import annotations

import argparse
from typing import TextIO

from nsgsolve.semantics.addresses import describe_ips, to_cidrs
from nsgsolve.errors import UsageError
from nsgsolve.semantics.servicetags import (
    BUILTIN_TAGS,
    CONTEXT_TAGS,
    canonical_builtin,
    cached_file,
    default_tag_db,
    import_tag_file,
)
from nsgsolve.commands.common import formatter

# The file names are placeholders: Microsoft publishes ServiceTags_Public_YYYYMMDD.json weekly, and
# effective.json is what 'az network nic list-effective-nsg' writes for one of your NICs.
IMPORT_EPILOG = """examples:
  nsgsolve tags import ServiceTags_Public_20251028.json   # once; later runs need no --service-tags

FILE is Microsoft's ServiceTags_Public JSON (download "Azure IP Ranges and Service Tags - Public Cloud").
The cache lives in $NSGSOLVE_DATA_DIR, else $XDG_DATA_HOME/nsgsolve, else ~/.local/share/nsgsolve."""

SHOW_EPILOG = """examples:
  nsgsolve tags show AzureLoadBalancer                    # built in: needs no tag data
  nsgsolve tags show Storage.WestUS                       # from the cache of 'nsgsolve tags import'
  nsgsolve tags show storage.westus --all --service-tags ServiceTags_Public_20251028.json

Names are case-insensitive. VirtualNetwork and Internet depend on the VNet: 'nsgsolve show POLICY'
prints them per VNet."""

COMPARE_EPILOG = """examples:
  az network nic list-effective-nsg -g RG -n web1-nic > effective.json
  nsgsolve tags compare effective.json                    # exit 1 when a tag's expansion differs
  nsgsolve tags compare effective.json --service-tags ServiceTags_Public_20251028.json"""

EPILOG = """examples:
  nsgsolve tags import ServiceTags_Public_20251028.json   # once; later runs need no --service-tags
  nsgsolve tags show Storage.WestUS
  nsgsolve tags compare effective.json                    # az network nic list-effective-nsg output

The cache lives in $NSGSOLVE_DATA_DIR, else $XDG_DATA_HOME/nsgsolve, else ~/.local/share/nsgsolve.
An explicit --service-tags FILE is merged over the cached file, tag by tag."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tags", help="import, show and compare service tag data",
                       description="Service tag data: Microsoft's weekly ServiceTags_Public JSON.",
                       epilog=EPILOG, formatter_class=formatter())
    tsub = p.add_subparsers(dest="tags_command", metavar="ACTION")
    imp = tsub.add_parser("import", help="cache a ServiceTags_Public JSON file for later runs",
                          description="Cache Microsoft's ServiceTags_Public JSON, so later runs find every tag "
                                      "without --service-tags.", epilog=IMPORT_EPILOG, formatter_class=formatter())
    imp.add_argument("file", metavar="FILE")
    imp.set_defaults(func=run_import)
    show = tsub.add_parser("show", help="the prefixes of one tag (case-insensitive)",
                           description="Print the IPv4 prefixes of one service tag.", epilog=SHOW_EPILOG,
                           formatter_class=formatter())
    show.add_argument("name", metavar="NAME")
    show.add_argument("--service-tags", metavar="FILE", help="a ServiceTags file to use over the cached one")
    show.add_argument("--all", action="store_true", help="list every prefix, not a summary")
    show.set_defaults(func=run_show)
    cmp_ = tsub.add_parser("compare", help="compare Azure's tag expansions (effective rules) with nsgsolve's",
                           description="Compare the service tag expansions in Azure's effective security rules "
                                       "with nsgsolve's tag data, tag by tag.", epilog=COMPARE_EPILOG,
                           formatter_class=formatter())
    cmp_.add_argument("file", metavar="EFFECTIVE.json")
    cmp_.add_argument("--service-tags", metavar="FILE", help="a ServiceTags file to use over the cached one")
    cmp_.set_defaults(func=run_compare)
    p.set_defaults(func=lambda args, out, err: _usage(p, err))


def _usage(p: argparse.ArgumentParser, err: TextIO) -> int:
    p.print_help(err)
    return 2


def run_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        db, target = import_tag_file(args.file)
    except OSError as e:
        raise UsageError(f"cannot cache the tag file in {cached_file().parent}: {e.strerror}",
                         "set NSGSOLVE_DATA_DIR (or XDG_DATA_HOME) to a writable directory") from None
    print(f"imported {db.description}; {db.total_ipv6()} IPv6 prefixes counted but not modelled", file=out)
    print(f"cached at {target}; later runs use it without --service-tags", file=out)
    return 0


def run_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    canon = canonical_builtin(args.name)
    if canon in CONTEXT_TAGS:
        print(f"{canon}: depends on the VNet where the NSG is evaluated (see docs/semantics.md); "
              f"'nsgsolve show POLICY' prints it per VNet", file=out)
        return 0
    if canon in BUILTIN_TAGS:
        s = BUILTIN_TAGS[canon]
        print(f"{canon} (built in): {', '.join(to_cidrs(s))}", file=out)
        return 0
    db = default_tag_db(getattr(args, "service_tags", None))
    data = db.lookup(args.name)
    if data is None:
        from nsgsolve.errors import did_you_mean

        if not db.description:
            raise UsageError(f"no service tag data to look up '{args.name}' in: nothing is cached and no "
                             "--service-tags FILE was given",
                             "download Microsoft's ServiceTags_Public JSON and run 'nsgsolve tags import FILE' "
                             f"once (cache: {cached_file()}), or pass --service-tags FILE")
        raise UsageError(f"no service tag '{args.name}' in {db.description}", did_you_mean(args.name, db.names()))
    cidrs = to_cidrs(data.ipv4)
    print(f"{data.name}: {len(cidrs)} IPv4 prefixes ({data.ipv4.size()} addresses), "
          f"{data.ipv6_count} IPv6 prefixes not modelled; from {data.source}", file=out)
    if args.all:
        for c in cidrs:
            print(f"  {c}", file=out)
    else:
        print(f"  {describe_ips(data.ipv4)}", file=out)
    return 0


def run_compare(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nsgsolve.importers import jsonpos
    from nsgsolve.importers.effective import compare_expansions, parse_effective
    from nsgsolve.importers.loader import read_text

    doc = jsonpos.parse(read_text(args.file), args.file)
    rules = parse_effective(doc, args.file)
    db = default_tag_db(getattr(args, "service_tags", None))
    results = compare_expansions(rules, db)
    if not results:
        print(f"{args.file}: no rule names a service tag with Azure's expansion; nothing to compare", file=out)
        return 0
    differ = 0
    for c in results:
        head = f"{c.span}: {c.rule} {c.side} {c.tag}:"
        if c.ours is None:
            note = "VNet-dependent; not compared" if canonical_builtin(c.tag) == "VirtualNetwork" else \
                "nsgsolve has no data for this tag"
            print(f"{head} {note}", file=out)
            continue
        if c.agrees:
            print(f"{head} agrees ({len(to_cidrs(c.azure))} prefixes)", file=out)
            continue
        differ += 1
        print(f"{head} differs", file=out)
        if c.missing:
            print(f"  in Azure only: {describe_ips(c.missing)}", file=out)
        if c.extra:
            print(f"  in nsgsolve only: {describe_ips(c.extra)}", file=out)
    return 1 if differ else 0
