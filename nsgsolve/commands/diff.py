"""``nsgsolve diff``: exactly which traffic a policy change opens and which it closes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from dataclasses import replace
from typing import TextIO

from nsgsolve.semantics.addresses import IntervalSet
from nsgsolve.analyses.diff import DiffResult, PairDiff, Region, describe_step, diff_policies
from nsgsolve.errors import EXIT_FINDING, EXIT_OK, Diagnostic, UsageError
from nsgsolve.semantics.evaluate import FlowResult, TraceStep
from nsgsolve.model import Policy
from nsgsolve.regions.box import DST, SRC
from nsgsolve.commands.common import formatter, load_files, print_warnings, tag_db
from nsgsolve.commands.import_ import add_import_args

EPILOG = """examples:
  nsgsolve diff old.nsg new.nsg
  nsgsolve diff HEAD~1:network/policy.nsg network/policy.nsg --fail-on opened   # CI gate on a pull request
  nsgsolve diff before.json after.json --from Internet --to web1 --json          # ARM templates / az exports
  nsgsolve diff old.nsg new.nsg --from 10.0.1.0/24,web2 --to outside

OLD and NEW are .nsg files, ARM templates or az exports, or REV:PATH read with 'git show' (PATH from the
repository root; REV:./PATH from the current directory). Each is one file: make a version given as
several JSON files one policy first ('nsgsolve import nsgs.json vnets.json nics.json -o old.nsg'). --from/--to take the endpoints of 'nsgsolve query'
with the same meaning (docs/query.md): any, service tags (Internet, VirtualNetwork, ...), ASGs, NICs,
subnets, VNets, IPs, CIDRs, ranges, named networks, comma lists; resolved in OLD and in NEW. Also
'outside' (every address of no NIC) and NIC#2 (one IP configuration). Outside endpoints are reported in
classes: Internet, on-premises, private, azure-platform.

exit status: 0 ran (with --fail-on: and no change of that kind), 1 --fail-on found that kind of change,
or nothing could be compared while NICs exist in one version only, 2 invalid input or usage.
See docs/diff.md."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="which traffic a change opens and which it closes",
                       description="Compare two versions of a policy for every packet between every pair of "
                                   "endpoints present in both (NICs, and the outside world by address class), and "
                                   "report the opened (denied before, allowed now) and closed traffic as a few "
                                   "merged boxes per endpoint pair, each with a witness packet and the rules that "
                                   "decide it in OLD and in NEW.",
                       epilog=EPILOG, formatter_class=formatter())
    p.add_argument("old", metavar="OLD", help="the policy before the change (file or REV:PATH)")
    p.add_argument("new", metavar="NEW", help="the policy after the change (file or REV:PATH)")
    p.add_argument("--from", dest="sources", action="append", metavar="SRC",
                   help="compare only traffic from these endpoints (repeatable, comma-separated)")
    p.add_argument("--to", dest="destinations", action="append", metavar="DST",
                   help="compare only traffic to these endpoints (repeatable, comma-separated)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--fail-on", choices=("opened", "closed", "any"),
                   help="exit with status 1 when the diff has that kind of change")
    p.add_argument("--service-tags", metavar="FILE",
                   help="Microsoft's ServiceTags_Public JSON, for tags other than VirtualNetwork, Internet, "
                        "AzureLoadBalancer (merged over the copy cached by 'nsgsolve tags import')")
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    old = load_version(args.old, args, err)
    new = load_version(args.new, args, err)
    db = tag_db(args)
    result = diff_policies(old, new, args.sources, args.destinations, tag_db=db)
    if args.json:
        d = result.to_dict()
        d["old"], d["new"] = args.old, args.new
        out.write(json.dumps(d, indent=2) + "\n")
    else:
        out.write(format_diff(result, args.old, args.new))
    if args.fail_on and result.fails_on(args.fail_on):
        if not result.has(args.fail_on):
            print(f"nsgsolve diff: --fail-on {args.fail_on}: failing because nothing was compared while "
                  f"{len(result.uncompared)} NIC(s) are in one version only (or moved); the change cannot "
                  "be shown to leave their traffic alone (docs/diff.md)", file=err)
        return EXIT_FINDING
    return EXIT_OK


# ---------------------------------------------------------------- inputs


def load_version(spec: str, args: argparse.Namespace, err: TextIO) -> Policy:
    """A file path, or ``REV:PATH`` read with ``git show`` when no such file exists."""
    from nsgsolve.importers import parse_param_assignments

    rev, sep, path = spec.partition(":")
    # A path that exists wins; "C:\\x" (a Windows drive) is never a revision.
    if os.path.exists(spec) or not sep or not rev or not path or len(rev) == 1:
        return load_files(spec, args, err)
    text = git_show(rev, path, spec)
    warnings: list[Diagnostic] = []
    try:
        from nsgsolve.importers.loader import load_texts

        return load_texts({spec: text}, params=parse_param_assignments(getattr(args, "param", None)),
                          params_file=getattr(args, "params_file", None),
                          symbolic=getattr(args, "symbolic", False), warnings=warnings,
                          strict=getattr(args, "strict", False))
    finally:
        print_warnings(warnings, err, {spec: text})


def git_show(rev: str, path: str, spec: str) -> str:
    try:
        proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, timeout=60)
    except FileNotFoundError:
        raise UsageError(f"'{spec}' is no file, and git is not installed to read it as REV:PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git show {rev}:{path} did not finish in 60 s") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"'{spec}' is no file, and git cannot read it as REV:PATH: "
                         f"{msg[0] if msg else 'git show failed'}",
                         "PATH is relative to the repository root (use REV:./PATH for the current directory)")
    try:
        text = proc.stdout.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UsageError(f"{spec} is not UTF-8 text (byte {e.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------- human output


def format_diff(r: DiffResult, old_name: str, new_name: str) -> str:
    lines = [f"diff {old_name} -> {new_name}: {len(r.opened)} opened, {len(r.closed)} closed region(s) in "
             f"{len(r.pairs)} endpoint pair(s); {r.pairs_compared} pair(s) compared"]
    lines += [f"  note: {n}" for n in r.notes]
    for c in r.endpoint_changes:
        if c.change == "readdressed":
            how = "compared on the addresses both allow" if c.compared else "not compared: no common address"
            lines.append(f"  readdressed: {c.name}: {c.old} -> {c.new} ({how})")
        else:
            lines.append(f"  {c.change}: {c.name} ({c.old or c.new}), not compared")
    if r.nothing_compared:
        lines.append(f"nothing compared: {r.nothing_compared}")
    elif r.is_empty:
        lines.append("no difference: OLD and NEW decide every packet alike between the endpoints compared")
    for block in group_pairs(r.pairs):
        lines.append("")
        lines += format_block(block)
    return "\n".join(lines) + "\n"


def group_pairs(pairs: tuple[PairDiff, ...]) -> list[list[PairDiff]]:
    """Pairs whose regions differ only in one endpoint's own addresses (19 NICs behind one NSG losing
    the same port) print as one block; JSON keeps every pair with its own witness."""
    def shape(p: PairDiff, vary: int) -> tuple:
        fixed = p.destination.name if vary == SRC else p.source.name
        return (vary, fixed, tuple((g.kind, *(g.box[f] for f in range(5) if f != vary)) for g in p.regions))

    blocks: dict[tuple, list[PairDiff]] = {}
    for p in pairs:
        blocks.setdefault(shape(p, SRC), []).append(p)
    out: list[list[PairDiff]] = []
    singles: dict[tuple, list[PairDiff]] = {}
    for block in blocks.values():
        if len(block) > 1:
            out.append(block)
        else:
            singles.setdefault(shape(block[0], DST), []).append(block[0])
    out += list(singles.values())
    order = {id(p): i for i, p in enumerate(pairs)}
    return sorted(out, key=lambda b: order[id(b[0])])


def format_block(block: list[PairDiff]) -> list[str]:
    first = block[0]
    if len(block) == 1:
        lines = [f"{first.source.label} -> {first.destination.label}"]
    elif len({p.source.name for p in block}) > 1:
        lines = [f"{_names([p.source.name for p in block])} -> {first.destination.label}"]
    else:
        lines = [f"{first.source.label} -> {_names([p.destination.name for p in block])}"]
    for i, g in enumerate(first.regions):
        box = list(g.box)
        for f in (SRC, DST):
            box[f] = IntervalSet([iv for p in block for iv in p.regions[i].box[f]])
        lines += format_region(g, tuple(box))  # type: ignore[arg-type]
    if len(block) > 1:
        lines.append(f"  (witness and rules shown for {first.source.name} -> {first.destination.name}; "
                     f"--json gives one per pair)")
    return lines


def _names(names: list[str], limit: int = 8) -> str:
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more + f" [{len(names)}]"


def format_pair(p: PairDiff) -> list[str]:
    lines = [f"{p.source.label} -> {p.destination.label}"]
    for g in p.regions:
        lines += format_region(g)
    return lines


def format_region(g: Region, box=None) -> list[str]:
    shown = g if box is None else replace(g, box=box)
    lines = [f"  {g.kind.upper():<7} {shown.describe()}",
             f"    witness {g.witness}: OLD {g.old.decision.value.lower()}, NEW {g.new.decision.value.lower()}"]
    for where, before, after in changed_steps(g.old, g.new):
        lines.append(f"    {where}: {before} -> {after}")
    return lines


def changed_steps(old: FlowResult, new: FlowResult) -> list[tuple[str, str, str]]:
    """Layers whose deciding rule differs between the versions, as (where, OLD step, NEW step)."""
    def key(s: TraceStep) -> tuple:
        return (s.attached_to, s.direction)

    def short(s: TraceStep | None) -> str:
        if s is None:
            return "(no NSG)"
        prio = f" ({s.priority})" if s.priority is not None else ""
        return f"{s.access.value} {s.rule}{prio}" + (f" of {s.nsg}" if s.nsg else "")

    o = {key(s): s for s in old.trace}
    n = {key(s): s for s in new.trace}
    out = []
    for k in list(o) + [k for k in n if k not in o]:
        a, b = o.get(k), n.get(k)
        if a is None or b is None or (a.nsg, a.rule, a.access) != (b.nsg, b.rule, b.access):
            out.append((f"{k[0]} {k[1].value.lower()}", short(a), short(b)))
    return out


__all__ = ["register", "run", "format_diff", "load_version", "describe_step"]
