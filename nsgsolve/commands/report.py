"""``nsgsolve report``: the policy as one self-contained HTML page (or the matrix alone as SVG)."""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from nsgsolve.commands.common import add_policy_args, formatter, load, tag_db
from nsgsolve.errors import UsageError

EPILOG = """examples:
  nsgsolve report examples/three-tier.nsg -o report.html      # open report.html in a browser
  nsgsolve report examples/hub-spoke.nsg --matrix-format svg -o matrix.svg
  nsgsolve report azuredeploy.json --param location=westeurope -o report.html
  nsgsolve report examples/replay/fabrikam.nsg --flow-logs examples/replay/logs -o report.html   # rule hits
  nsgsolve diff old.nsg new.nsg --format html -o change.html   # the matrix of what a change opens and closes

The page holds the topology (SVG), the reachability matrix (rows: Internet, AzureLoadBalancer, each VNet,
subnet and ASG; columns: each subnet, NIC and ASG; each cell the exact allowed protocols and ports, and on
selection a witness packet with the rule that decided at each layer), the lint findings and the results
of the file's contracts, and every NSG's rules in evaluation order. One file: inline CSS, script and SVG,
no network; readable without JavaScript.

exit status: 0 written, 2 invalid input or usage."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write an HTML report: topology, reachability matrix, findings, rules",
                       description="Write one self-contained HTML page with the topology, the exact reachability "
                                   "matrix, lint findings, contract results and the rule tables; or, with "
                                   "--matrix-format svg, the matrix alone as an SVG image.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    p.add_argument("--matrix-format", choices=("html", "svg"), default="html",
                   help="html (default): the whole report; svg: the reachability matrix alone, as an image")
    p.add_argument("--no-lint", action="store_true", help="leave the lint findings out (faster on large policies)")
    p.add_argument("--no-check", action="store_true", help="leave the contract results out")
    p.add_argument("--baseline", action="append", default=[], metavar="SET",
                   choices=("cis", "high-risk-ports", "hygiene", "all"),
                   help="add a built-in baseline's results to the findings: cis, high-risk-ports, hygiene or all "
                        "(repeatable; docs/baseline.md)")
    p.add_argument("--title", metavar="TEXT", help="the page title (default: the policy's file names)")
    # One PATH per flag (repeatable), so the option may stand before POLICY like every other option.
    p.add_argument("--flow-logs", action="append", metavar="PATH",
                   help="Azure flow logs (a file or a directory, as 'nsgsolve replay' reads them; repeat for "
                        "more): each rule's hit count beside it in the rule tables")
    p.set_defaults(func=run)


def build_report(args: argparse.Namespace, err: TextIO):
    """The report's data for ``args.policy``: model view, matrix, findings, rule hits."""
    from nsgsolve.version import __version__
    from nsgsolve.analyses.matrix import compute_matrix
    from nsgsolve.parallel import fork_call
    from nsgsolve.reports.show import show_dict
    from nsgsolve.reports.html import ReportData
    from nsgsolve.semantics.resolve import resolve

    paths = list(args.policy)
    policy = load(args, err)
    rp = resolve(policy, tag_db(args))
    # The matrix is computed by a child while this process lints (forking its own workers): each alone
    # spread over the cores waits on its serial part (the matrix's whole-policy exact set, lint's list
    # analyses); side by side they overlap. The page is the same either way.
    matrix_job = fork_call(lambda: compute_matrix(rp))
    findings = []
    if not getattr(args, "no_lint", False):
        from nsgsolve.analyses.lint import Linter
        from nsgsolve.reports.lint import lint_finding

        findings += [lint_finding(f) for f in Linter(rp).lint()]  # admin rule findings (AVNM002) too
    matrix = matrix_job.result()
    if not getattr(args, "no_check", False) and policy.assertions:
        from nsgsolve.analyses.contracts import check_policy
        from nsgsolve.reports.contracts import contract_finding

        findings += [contract_finding(r) for r in check_policy(policy, rp)]
    if getattr(args, "baseline", None):
        from nsgsolve.analyses.baseline import check_baseline
        from nsgsolve.reports.baseline import baseline_finding

        results, _ = check_baseline(policy, args.baseline, tag_db(args))
        findings += [baseline_finding(r, paths[0]) for r in results]
    hits: dict = {}
    notes: tuple[str, ...] = ()
    if getattr(args, "flow_logs", None):
        hits, notes = _hits(rp, args.flow_logs, err)
    title = getattr(args, "title", None) or f"nsgsolve report: {' '.join(paths)}"
    return ReportData(title, tuple(paths), __version__, show_dict(rp), matrix, tuple(findings), hits,
                      notes=notes)


def _hits(rp, paths: list[str], err: TextIO) -> tuple[dict, tuple[str, ...]]:
    """Each rule's logged-flow count, as ``nsgsolve replay`` computes it, keyed (nsg, direction, rule)."""
    from nsgsolve.analyses.replay import Replayer, replay_files
    from nsgsolve.commands.replay import flow_files
    from nsgsolve.reports.replay import render_bad, summary_line, when

    files = flow_files(paths)
    replayer = Replayer(rp)
    result = replayer.result(replay_files(replayer, files))
    render_bad(result.bad_records, result.bad, err)
    hits = {(s.nsg, s.direction, s.rule): s.hits for s in result.rules}
    note = (f"Hit counts: {result.tuples:,} logged flow tuples from {len(files)} file(s) between "
            f"{when(result.first)} and {when(result.last)} UTC ({summary_line(result)}).")
    return hits, (note,)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nsgsolve.reports.html import matrix_svg, render_html

    data = build_report(args, err)
    text = matrix_svg(data.matrix) if args.matrix_format == "svg" else render_html(data)
    write_output(text, args.output, out)
    return 0


def write_output(text: str, path: str | None, out: TextIO) -> None:
    """``text`` to ``path`` atomically (nsgsolve.fileio: a temporary file beside it, then a rename), or to ``out``."""
    if not path:
        out.write(text)
        return
    from nsgsolve.fileio import atomic_write_text

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
    atomic_write_text(path, text)


__all__ = ["build_report", "register", "run", "write_output"]
