"""``nsgsolve diff``: exactly which traffic a policy change opens and which it closes."""

from __future__ import annotations

import argparse
import os
import subprocess
from typing import TextIO

from nsgsolve.analyses.diff import SelectionError, diff_policies
from nsgsolve.errors import EXIT_FINDING, EXIT_OK, Diagnostic, InputError, UsageError
from nsgsolve.limits import max_input_bytes
from nsgsolve.model import Span
from nsgsolve.reports.diff import FLAGS, diff_dict, format_diff
from nsgsolve.reports.json import dumps
from nsgsolve.model import Policy
from nsgsolve.commands.common import add_import_args, add_limits_arg, formatter, load_files, print_warnings, tag_db

EPILOG = """examples:
  nsgsolve diff old.nsg new.nsg
  nsgsolve diff HEAD~1:network/policy.nsg network/policy.nsg --fail-on opened   # CI gate on a pull request
  nsgsolve diff before.json after.json --from Internet --to web1 --json          # ARM templates / az exports
  nsgsolve diff old.nsg new.nsg --from 10.0.1.0/24,web2 --to outside

OLD and NEW are .nsg files, ARM templates or az exports, or REV:PATH read with 'git show' (PATH from the
repository root; REV:./PATH from the current directory). Each is one file: make a version given as
several JSON files one policy first ('nsgsolve import nsgs.json vnets.json nics.json -o old.nsg').
--from/--to take the endpoints of 'nsgsolve query'
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
    p.add_argument("--json", action="store_true", help="JSON output (same as --format json)")
    p.add_argument("--format", choices=("text", "json", "html"), default="text",
                   help="text (default), json, or html: the reachability matrix of NEW with what the change opens "
                        "and closes in each cell (nsgsolve report's page)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE (default: standard output)")
    p.add_argument("--fail-on", choices=("opened", "closed", "any"),
                   help="exit with status 1 when the diff has that kind of change")
    p.add_argument("--service-tags", metavar="FILE",
                   help="Microsoft's ServiceTags_Public JSON, for tags other than VirtualNetwork, Internet, "
                        "AzureLoadBalancer (merged over the copy cached by 'nsgsolve tags import')")
    add_limits_arg(p)
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    old = load_version(args.old, args, err)
    new = load_version(args.new, args, err)
    db = tag_db(args)
    try:
        result = diff_policies(old, new, args.sources, args.destinations, tag_db=db)
    except SelectionError as e:  # the analysis names the side; the user typed the option
        raise UsageError(f"{FLAGS[e.side]} {e.item}: {e.problem}", e.hint) from None
    fmt = "json" if args.json else args.format
    if fmt == "json":
        text = dumps("diff", diff_dict(result, args.old, args.new))
    elif fmt == "html":
        text = diff_html(new, result, args, db)
    else:
        text = format_diff(result, args.old, args.new)
    from nsgsolve.commands.report import write_output

    write_output(text, args.output, out)
    if args.fail_on and result.fails_on(args.fail_on):
        if not result.has(args.fail_on):
            print(f"nsgsolve diff: --fail-on {args.fail_on}: failing because nothing was compared while "
                  f"{len(result.uncompared)} NIC(s) are in one version only (or moved); the change cannot "
                  "be shown to leave their traffic alone (docs/diff.md)", file=err)
        return EXIT_FINDING
    return EXIT_OK


def diff_html(new: Policy, result, args: argparse.Namespace, db) -> str:
    """The report page of NEW whose matrix cells say what the change opens and closes."""
    from nsgsolve.version import __version__
    from nsgsolve.analyses.matrix import compute_matrix, diff_cells
    from nsgsolve.reports.show import show_dict
    from nsgsolve.reports.html import ReportData, render_html
    from nsgsolve.semantics.resolve import resolve

    rp = resolve(new, db)
    matrix = compute_matrix(rp)
    notes = tuple(result.notes) + tuple(f"{c.name}: {c.change}" for c in result.endpoint_changes)
    data = ReportData(f"nsgsolve diff: {args.old} \u2192 {args.new}", (args.old, args.new), __version__,
                      show_dict(rp), matrix, diff=diff_cells(matrix, rp, result), notes=notes)
    return render_html(data)


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
    if rev.startswith("-"):  # would be read by git as an option (git show --output=FILE writes a file)
        raise UsageError(f"'{spec}': a revision cannot start with '-'")
    # Local objects only: in a partial clone git would fetch a missing blob from the remote.
    env = {**os.environ, "GIT_NO_LAZY_FETCH": "1", "GIT_TERMINAL_PROMPT": "0"}
    obj = f"{rev}:{path}"
    try:
        size = subprocess.run(["git", "cat-file", "-s", obj], capture_output=True, timeout=60, env=env)
        if size.returncode == 0 and size.stdout.strip().isdigit() and int(size.stdout) > max_input_bytes():
            raise InputError.single("E010", f"{spec} is too large to read: {int(size.stdout):,} bytes; nsgsolve reads "
                                            f"input files of at most {max_input_bytes():,} bytes", Span(spec, 0, 0),
                                    "to raise the limit set NSGSOLVE_MAX_INPUT_BYTES")
        proc = subprocess.run(["git", "show", obj], capture_output=True, timeout=60, env=env)
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


__all__ = ["register", "run", "load_version"]
