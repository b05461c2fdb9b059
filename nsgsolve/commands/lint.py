"""``nsgsolve lint``: rules that never decide anything, or never matter, and the rules that cause it."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import TextIO

from nsgsolve.analyses.lint import CODES, Finding, Linter, codes_help, exit_status
from nsgsolve.reports import FORMATS
from nsgsolve.reports.json import dumps, dumps_items, item_text
from nsgsolve.reports.lint import SEVERITIES, count_line, finding_line, lint_finding, severities
from nsgsolve.errors import UsageError, did_you_mean
from nsgsolve.commands.common import POLICY_HELP, add_policy_args, formatter, load_files, tag_db
from nsgsolve.commands.many import each_its_own, policy_paths, run_files
from nsgsolve.semantics.resolve import resolve

EPILOG = """findings (docs/lint.md):
""" + codes_help() + """

examples:
  nsgsolve lint examples/webservers.nsg
  nsgsolve lint azuredeploy.json --nsg web-nsg --json                      # an ARM template (placeholder)
  nsgsolve lint examples/three-tier.nsg --nsg web-nsg --rule Allow-App     # one rule's status
  nsgsolve lint examples/three-tier.nsg --all                              # with informational findings
  nsgsolve lint examples/three-tier.nsg --format sarif > lint.sarif        # GitHub code scanning
  nsgsolve lint policies/ --format sarif > lint.sarif                     # every .nsg file below, each its own policy
  nsgsolve lint examples/replay/fabrikam.nsg --flow-logs examples/replay/logs   # and rules the logs never use

exit status: 0 nothing at error severity, 1 an error-severity finding, 2 invalid input or usage (with several
files: any file's error-severity finding gives 1, any unreadable file 2 and no report)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lint", help="find shadowed, redundant, unmatchable and dead rules",
                       description="Find NSG rules that never decide anything or never matter: shadowed by the "
                                   "union of higher-priority rules, redundant, unmatchable, outside the NSG's "
                                   "attachments, overridden by another layer or by security admin rules (AVNM), and "
                                   "admin rules shadowed by admin rules. Exact for every packet, in every "
                                   "VNet the NSG is evaluated in.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p, policy_help=POLICY_HELP + "; or several .nsg files, or directories of them, each linted as "
                                                 "a policy of its own")
    p.add_argument("--nsg", metavar="NAME", help="only this NSG (and no admin rule findings)")
    p.add_argument("--rule", metavar="NAME", help="one rule's status as a sentence (with --json: its findings)")
    p.add_argument(
        "--json", action="store_true", help='JSON: {"schema", "findings": [...]} (same as --format json; docs/json.md)'
    )
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (default), json (as --json), or the shared CI reports: sarif, github, junit")
    p.add_argument("--all", action="store_true", help="include informational findings (NSG006, NSG007)")
    p.add_argument("--flow-logs", action="append", metavar="PATH",
                   help="Azure flow logs (a file or a directory; repeat for more): add NSG008 for rules no logged "
                        "flow used (the replay of 'nsgsolve replay')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    paths = policy_paths(args.policy)
    if each_its_own(paths):
        return _run_many(paths, args, out, err)
    rp = resolve(load_files(paths, args, err), tag_db(args), symbolic_params=True)
    names = [n.name for n in rp.policy.nsgs]
    _warn_open(rp, args.nsg, err)
    _warn_symbolic(rp, args.nsg, err)
    if args.nsg is not None and args.nsg not in names:
        raise UsageError(f"no NSG named '{args.nsg}'", did_you_mean(args.nsg, names)
                         or (f"NSGs: {', '.join(names[:10])}" if names else "the policy has no NSGs"))
    selected = [args.nsg] if args.nsg else names
    linter = Linter(rp, include_info=args.all)
    if args.rule is not None:
        chosen = [n for n in rp.policy.nsgs if n.name in selected]
        holders = [n.name for n in chosen if any(r.name == args.rule for r in n.rules)]
        admin = [a for a in rp.policy.admin_rules() if a.name == args.rule] if args.nsg is None else []
        if not holders and admin:
            return _admin_rule_status(linter, args.rule, admin, args.json, out)
        if not holders:
            raise _unknown_rule(args.rule, args.nsg, [r.name for n in chosen for r in n.rules]
                                + [a.name for a in rp.policy.admin_rules()])
        findings = linter.lint(holders, args.rule)
        if args.json:
            out.write(dumps("lint", {"findings": [f.to_dict() for f in findings]}))
        else:
            for n in holders:
                for sentence in linter.status(n, args.rule):
                    out.write(f"{n}: {sentence}\n")
        return exit_status(findings)
    findings = linter.lint(selected, admin=args.nsg is None)  # --nsg: that NSG's rules only
    if args.flow_logs:
        findings = merge_unused(findings, unused_findings(rp, args.flow_logs, set(selected), err), rp)
    fmt = "json" if args.json else args.format
    return _write([_Linted(len(selected), severities(findings), _items(findings, fmt))], paths, fmt, out)


def _run_many(paths: list[str], args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Several .nsg files: each linted as a policy of its own, the files spread over the cores (commands/many.py),
    one report of every file's findings in argument order."""
    for given, flag in ((args.nsg, "--nsg"), (args.rule, "--rule"), (args.flow_logs, "--flow-logs")):
        if given:
            # Which file's NSG, rule or traffic would be ambiguous: these questions are about one policy.
            raise UsageError(f"{flag} applies to one policy, and {len(paths)} .nsg files were given",
                             f"lint one file with {flag}: nsgsolve lint FILE {flag} ...")
    db = tag_db(args)
    fmt = "json" if args.json else args.format
    results = run_files(lambda p, messages: _lint_file(p, args, db, fmt, messages), paths, err, "lint")
    return _write(results, paths, fmt, out)


@dataclass
class _Linted:
    """One file's lint as the report of many files needs it, written in the worker that linted it: formatting
    is then spread over the cores too, and text pickles back faster than the findings it was made from."""

    nsgs: int
    counts: dict[str, int]  # findings per severity
    items: list  # text: the finding lines as one string (or nothing); json: each finding's JSON item; else the
    # findings in the shared report shape (SARIF, JUnit, GitHub)


def _lint_file(path: str, args: argparse.Namespace, db, fmt: str, messages: TextIO) -> _Linted:
    """One .nsg file linted as its own policy, all its NSGs and admin rules; its warnings go to ``messages``.
    What a worker process runs."""
    rp = resolve(load_files(path, args, messages), db, symbolic_params=True)
    _warn_open(rp, None, messages)
    _warn_symbolic(rp, None, messages)
    names = [n.name for n in rp.policy.nsgs]
    findings = Linter(rp, include_info=args.all).lint(names, admin=True)
    return _Linted(len(names), severities(findings), _items(findings, fmt))


def _items(findings: list[Finding], fmt: str) -> list:
    """What :class:`_Linted` keeps of ``findings`` for the format ``fmt``."""
    if fmt == "text":
        return ["".join(finding_line(f) for f in findings)] if findings else []
    if fmt == "json":
        return [item_text(f.to_dict()) for f in findings]
    return [lint_finding(f) for f in findings]


def _write(results: list[_Linted], paths: list[str], fmt: str, out: TextIO) -> int:
    """The report of one policy's or several files' findings in the format ``fmt``; the exit status (1 when
    any finding is an error, as :func:`~nsgsolve.analyses.lint.exit_status`)."""
    counts = {s: sum(r.counts[s] for r in results) for s in SEVERITIES}
    status = 1 if counts["error"] else 0
    # Written piece by piece: 5,000 files' findings joined first would hold the report twice in memory.
    if fmt == "text":
        for r in results:
            out.writelines(r.items)
        out.write(count_line(counts, sum(r.nsgs for r in results), len(paths) if each_its_own(paths) else 1))
    elif fmt == "json":
        out.writelines(dumps_items("lint", "findings", [item for r in results for item in r.items]))
    else:
        from nsgsolve.version import __version__
        from nsgsolve.reports import Report, render

        report = Report(tuple(f for r in results for f in r.items), tuple(paths), status, command="lint",
                        tool_version=__version__, category="nsgsolve/lint")
        out.write(render(report, fmt))
    return status


def _admin_rule_status(linter: Linter, name: str, rules: list, as_json: bool, out: TextIO) -> int:
    """``lint --rule NAME`` for a security admin rule: its AVNM002 findings, or that it has none."""
    findings = [f for f in linter.admin_findings() if f.rule == name]
    if as_json:
        out.write(dumps("lint", {"findings": [f.to_dict() for f in findings]}))
    else:
        for f in findings:
            out.write(f"{f.nsg}: {f.message}\n")
        for a in rules:
            if not any(f.nsg == f"admin {a.config}/{a.collection}" for f in findings):
                out.write(f"admin {a.config}/{a.collection}: admin rule {a.name} (priority {a.priority}, "
                          f"{a.access.value}) is shadowed by no admin rule where it applies\n")
    return exit_status(findings)


def unused_findings(rp, paths: list[str], nsgs: set[str], err: TextIO) -> list[Finding]:
    """NSG008 for each user rule of ``nsgs`` that no flow in the logs used (see docs/replay.md)."""
    from nsgsolve.analyses.lint import UNUSED_OBSERVED
    from nsgsolve.analyses.replay import Replayer, replay_files
    from nsgsolve.commands.replay import flow_files
    from nsgsolve.reports.replay import render_bad, summary_line, when

    files = flow_files(paths)
    replayer = Replayer(rp)
    result = replayer.result(replay_files(replayer, files))
    render_bad(result.bad_records, result.bad, err)
    err.write(f"flow logs: {result.tuples:,} tuples from {len(files)} file{'s' if len(files) != 1 else ''}; "
              f"{summary_line(result)}\n")
    out = []
    for s in result.unused:
        if s.is_default or s.nsg not in nsgs:
            continue
        rule = next(r for r in rp.policy.nsg(s.nsg).rules if r.name == s.rule and r.direction.value == s.direction)
        out.append(
            Finding(
                UNUSED_OBSERVED.code,
                UNUSED_OBSERVED.severity,
                s.nsg,
                rule.direction,
                s.rule,
                s.priority,
                rule.access,
                rule.span,
                (),
                None,
                f"no logged flow used it between {when(result.first)} and {when(result.last)} UTC "
                f"({result.tuples:,} tuples replayed, {sum(h.hits for h in result.rules if h.nsg == s.nsg):,} "
                f"decided by this NSG)",
            )
        )
    return out


def merge_unused(findings: list[Finding], unused: list[Finding], rp) -> list[Finding]:
    """Lint's findings with NSG008 beside them, in policy order (rules in evaluation order)."""
    order = {}
    for i, n in enumerate(rp.policy.nsgs):
        for d in ("Inbound", "Outbound"):
            for j, r in enumerate(sorted((r for r in n.rules if r.direction.value == d), key=lambda r: r.priority)):
                order[(n.name, d, r.name)] = (i, d, j)
    both = findings + unused
    return sorted(both, key=lambda f: order.get((f.nsg, f.direction.value, f.rule), (len(order), "", 0)))


def _warn_open(rp, only: str | None, err: TextIO) -> None:
    """W605 for each NSG lint leaves out because an import left one of its rule values open."""
    from nsgsolve.commands.common import print_warnings
    from nsgsolve.errors import Diagnostic

    out = []
    for name, diags in rp.open_nsgs.items():
        if only is not None and name != only:
            continue
        nsg = rp.policy.nsg(name)
        first = diags[0]
        m = re.search(r"'(\?expr:[^']*)'", first.message)
        what = f"'{m.group(1)}'" if m else "a rule value"
        out.append(Diagnostic("W605", f"NSG {name} is not linted: {what} has no address data (the import left it "
                                      f"open, W601/W602)",
                              nsg.span if nsg is not None and nsg.span.line else first.span,
                              "give the value (--param NAME=VALUE, --params-file) to lint this NSG; the other NSGs "
                              "are linted", "warning"))
    print_warnings(out, err)


def _warn_symbolic(rp, only: str | None, err: TextIO) -> None:
    """W305 for each NSG built from unset template parameters: what lint says of it, and for which values."""
    from nsgsolve.analyses.params import policy_params
    from nsgsolve.commands.common import print_warnings
    from nsgsolve.errors import Diagnostic

    out = []
    for name, params in policy_params(rp.policy).items():
        if (only is not None and name != only) or name in rp.open_nsgs:
            continue
        nsg = rp.policy.nsg(name)
        listed = ", ".join(f"'{p}'" for p in sorted(params))
        out.append(Diagnostic("W305", f"NSG {name} has rules built from template parameter(s) {listed} with no value: "
                                      "its shadowed (NSG001) and redundant (NSG002) rules are reported only when that "
                                      "holds for every value; NSG003-NSG007 are not checked for it",
                              nsg.span if nsg is not None else rp.policy.nsgs[0].span,
                              "give the values (--param NAME=VALUE, --params-file; Terraform: --var NAME=VALUE, "
                              "--var-file) for the full analysis", "warning"))
    print_warnings(out, err)


def _unknown_rule(name: str, nsg: str | None, rules: list[str]) -> UsageError:
    """--rule names no rule of the selected NSGs: say why, with the names that could be meant."""
    from nsgsolve.model import DEFAULT_RULES

    rules = sorted(set(rules))
    listed = (f"rules: {', '.join(rules[:20])}{', ...' if len(rules) > 20 else ''}" if rules
              else "the NSG has no rules of its own" if nsg else "the policy's NSGs have no rules of their own")
    defaults = {r.name.lower() for rs in DEFAULT_RULES.values() for r in rs}
    if name.lower() in defaults:
        # Lint judges the rules a policy could change; Azure's six default rules cannot be removed.
        return UsageError(f"'{name}' is one of Azure's default rules, which lint does not analyse: they cannot be "
                          "removed or changed, so a finding about them could not be acted on",
                          f"lint analyses the rules written in the policy; {listed}")
    where = f" in NSG '{nsg}'" if nsg else ""
    return UsageError(f"no rule named '{name}'{where}", did_you_mean(name, rules) or listed)


__all__ = ["register", "run", "CODES"]
