"""``nsgsolve check``: prove the ``assert`` contracts of policy files, with reports CI systems read."""

from __future__ import annotations

import argparse
import os
import time
from typing import TextIO

from nsgsolve.errors import EXIT_FINDING, EXIT_OK, EXIT_UNKNOWN, InputError, UsageError
from nsgsolve.model import Assertion, Span
from nsgsolve.reports import FORMATS, Report, Status, render
from nsgsolve.commands.common import add_policy_args, add_solver_limit_arg, formatter
from nsgsolve.commands.many import policy_paths, run_files

# The sets of nsgsolve.analyses.baseline.SETS, and all of them (kept literal so --help imports no analysis).
BASELINE_SETS = ("cis", "high-risk-ports", "hygiene", "all")

EPILOG = """examples:
  nsgsolve check policies/*.nsg                                   # text; exit 1 if any assertion fails
  nsgsolve check web.nsg --format sarif --output nsgsolve.sarif   # for GitHub code scanning
  nsgsolve check web.nsg --format junit --output nsgsolve.xml     # Jenkins, GitLab, Azure Pipelines
  nsgsolve check web.nsg --format github                          # annotations beside the diff in Actions
  nsgsolve check azuredeploy.json --baseline cis                   # CIS networking controls, proved
  nsgsolve check web.nsg --baseline all --waivers waivers.toml     # every baseline set, with waivers

assertions (in the policy file; see docs/contracts.md):
  assert no Internet -> WebServers port 22
  assert all Internet -> WebServers port 443 tcp
  assert some VirtualNetwork -> db1 port 1433 tcp
  assert only Internet -> WebServers port 80,443 tcp
  assert no-rdp: no any -> any port 3389 except from 10.1.0.0/24 "RDP only from the jump hosts"

baseline sets (--baseline, docs/baseline.md): cis (CIS Azure Foundations networking controls), high-risk-ports
(Azure Virtual Network Manager's high-risk ports, database and management ports), hygiene (allow-any-to-any
rules, subnets without an NSG, NSGs attached to nothing), all. Waivers: a TOML file of [[waiver]] tables with
control, destination, reason and expires.

exit status: 0 every assertion holds, 1 at least one fails, 2 invalid input or usage,
3 none fails but at least one could not be decided (never reported as a pass)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="prove the policy's assert contracts (exit 1 on a failure; SARIF, JUnit, ...)",
                       description="Check every 'assert' in the policy files, for all packets, not samples. A "
                                   "failing assertion is reported with its name and file:line, a witness packet, "
                                   "the witness's full rule trace and the rules responsible.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p, multiple=True)
    p.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write the report to FILE (the text report still goes to standard output)")
    p.add_argument("--category", default="nsgsolve/check", metavar="NAME",
                   help="SARIF run category: GitHub keeps the alerts of each category apart (default: %(default)s)")
    p.add_argument("--allow-empty", action="store_true",
                   help="exit 0 when no file has assertions (pre-commit runs on every changed .nsg file)")
    p.add_argument("--baseline", action="append", default=[], metavar="SET", choices=BASELINE_SETS,
                   help="also prove a built-in baseline: cis, high-risk-ports, hygiene or all (repeatable); files "
                        "need no assertions then (docs/baseline.md)")
    p.add_argument("--waivers", metavar="FILE",
                   help="a TOML file of baseline waivers ([[waiver]] control, destination, reason, expires)")
    add_solver_limit_arg(p)
    p.set_defaults(func=run)


class _Progress:
    """One self-overwriting status line on a terminal; nothing when stderr is a file or a pipe (CI logs)."""

    def __init__(self, err: TextIO):
        self.err = err
        self.on = hasattr(err, "isatty") and err.isatty()
        self.width = 0

    def __call__(self, i: int, n: int, a: Assertion | str) -> None:
        if not self.on:
            return
        what = a if isinstance(a, str) else f"{a.span.file}:{a.span.line} {a.name}"
        line = f"[{i + 1}/{n}] {what}"[:100]
        self.err.write("\r" + line.ljust(self.width))
        self.err.flush()
        self.width = len(line)

    def done(self) -> None:
        if self.on and self.width:
            self.err.write("\r" + " " * self.width + "\r")
            self.err.flush()


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nsgsolve.version import __version__
    from nsgsolve.commands.common import tag_db

    start = time.perf_counter()
    db = tag_db(args)
    if args.waivers and not args.baseline:
        raise UsageError("--waivers applies to the baseline: add --baseline SET")
    waivers = _load_waivers(args.waivers) if args.waivers else []
    paths = policy_paths(args.policy)
    findings = []
    total = 0
    used: set[int] = set()
    if len(paths) == 1:
        # One file: the assertions' progress line.
        progress = _Progress(err)
        try:
            results = [_check_file(paths[0], args, db, waivers, progress, err)]
        finally:
            progress.done()
    else:
        # Several: each file on its own, spread over the cores with a bar of files done (commands/many.py).
        results = run_files(lambda p, messages: _check_file(p, args, db, waivers, None, messages), paths, err,
                            "check")
    for file_findings, n, file_used in results:
        findings += file_findings
        total += n
        used |= file_used
    _warn_unused([w for i, w in enumerate(waivers) if i not in used], err)
    if total == 0 and args.allow_empty:
        out.write("nsgsolve check: no assertions to check\n")
        return EXIT_OK
    if total == 0:
        # A contract run that checked nothing must not look like a green build.
        raise InputError.single("E703", "no assertions to check", Span(args.policy[0], 0, 0),
                                "add 'assert ...' statements (docs/contracts.md) or check the file names")
    statuses = {f.status for f in findings}
    code = EXIT_FINDING if Status.FAIL in statuses else EXIT_UNKNOWN if Status.UNKNOWN in statuses else EXIT_OK
    report = Report(tuple(findings), tuple(paths), code, "check", __version__, args.category,
                    time.perf_counter() - start)
    text = render(report, args.format)
    if args.output:
        from nsgsolve.fileio import atomic_write_text

        try:
            # CI report folders (CodeAnalysisLogs, test-results) often do not exist before the first report.
            os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
        atomic_write_text(args.output, text)
        out.write(render(report, "text") if args.format != "text" else text)
    else:
        out.write(text)
    return code


def _check_file(path: str, args: argparse.Namespace, db, waivers: list, progress: "_Progress | None",
                messages: TextIO) -> tuple[list, int, frozenset[int]]:
    """One policy file's assertions and baseline: (findings, assertions and baseline results checked, indices
    of the waivers it applied), a pure function of the file (what a worker process runs). Waivers are counted
    over all files by the caller."""
    from nsgsolve.analyses.contracts import check_policy
    from nsgsolve.commands.common import load_files
    from nsgsolve.reports.contracts import contract_finding
    from nsgsolve.semantics.resolve import resolve

    findings = []
    used: frozenset[int] = frozenset()
    policy = load_files(path, args, messages)
    total = sum(1 for a in policy.assertions if isinstance(a, Assertion))
    if total == 0 and not args.baseline:
        print(f"nsgsolve check: warning: {path} has no assertions", file=messages)
        return [], 0, used
    if total:
        results = check_policy(policy, resolve(policy, db, symbolic_params=True, open_vnets=True),
                               rlimit=args.rlimit, progress=progress)
        findings += [contract_finding(r) for r in results]
    if args.baseline:
        from nsgsolve.analyses.baseline import check_baseline
        from nsgsolve.reports.baseline import baseline_finding

        got, unused = check_baseline(policy, args.baseline, db, args.rlimit, waivers, progress=progress)
        # By position, not identity: a worker's waivers are copies of the caller's.
        used = frozenset(i for i, w in enumerate(waivers) if not any(w is u for u in unused))
        total += len(got)
        findings += [baseline_finding(r, path) for r in got]
    return findings, total, used


def _warn_unused(waivers: list, err: TextIO) -> None:
    """W770: a waiver that matched no result (a typo in its control or destination waives nothing)."""
    from nsgsolve.errors import Diagnostic, render_all

    if waivers:
        print(render_all([Diagnostic("W770", f"this waiver ({w.control} at {w.destination}) matches no baseline "
                                             "result", w.span, "check the control id and the destination as the "
                                     "report names them ('nic web1', 'subnet hub/dmz', 'nsg x'), or delete the waiver",
                                     "warning") for w in waivers]), file=err)


def _load_waivers(path: str) -> list:
    from nsgsolve.analyses.baseline import parse_waivers

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        raise UsageError(f"cannot read the waivers file {path}: {e.strerror}") from None
    return parse_waivers(text, path)


__all__ = ["register", "run"]
