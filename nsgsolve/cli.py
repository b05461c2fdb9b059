"""The command line: a thin layer over the Python API.

Each subcommand lives in ``nsgsolve/commands/<name>.py`` with ``register(subparsers)``; the function it
sets as ``func`` takes ``(args, out, err)`` and returns the exit status. Only :func:`main` exits.
Errors are rendered here, in one place: invalid input and usage give status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from typing import NoReturn, Sequence, TextIO


# Order is the order of `nsgsolve --help`.
COMMANDS = ("show", "fmt", "verify", "query", "lint", "check", "diff", "replay", "report", "import_", "tags")

# Each command's one-line help, so `nsgsolve --help` lists them without importing any command module
# (those pull in Z3, numpy, the importers: most of a second). tests/test_front_end_speed.py holds these
# equal to what each module registers.
COMMAND_HELP = {
    "show": "show the resolved model: topology and NSG rules in evaluation order",
    "fmt": "format .nsg policy files canonically",
    "verify": "decide concrete flows, with the rule trace",
    "query": "can SOURCES reach DESTINATIONS? all / some / none, with witnesses",
    "lint": "find shadowed, redundant, unmatchable and dead rules",
    "check": "prove the policy's assert contracts (exit 1 on a failure; SARIF, JUnit, ...)",
    "diff": "which traffic a change opens and which it closes",
    "report": "write an HTML report: topology, reachability matrix, findings, rules",
    "replay": "replay Azure flow logs: rule hits, unused rules, what a change breaks",
    "import_": "write ARM templates / az exports in nsgsolve's language",
    "tags": "import, show and compare service tag data",
}


class _Parser(argparse.ArgumentParser):
    """argparse exits with status 2 on usage errors already; keep its message short and on stderr."""


def build_parser(only: str | None = None, summaries: bool = False) -> argparse.ArgumentParser:
    """The whole CLI; with ``only`` (a command's name), that command in full and the others as bare names;
    with ``summaries``, every command as its name and one-line help (``COMMAND_HELP``) and nothing more.

    A command module imports what its command needs (Z3, the analyses, the printer); importing all of them
    cost every run tens of milliseconds. :func:`run` builds only the command it runs; ``--help``, a
    mistyped command or no command at all get the summaries; callers without either get every command.
    """
    parser = _Parser(
        prog="nsgsolve",
        description="Prove things about Azure Network Security Group policy, offline, for all packets at once.",
        epilog="Exit status: 0 ran and nothing failed, 1 a finding or failed assertion, 2 invalid input or usage, "
        "3 inconclusive (solver gave up). 'nsgsolve COMMAND --help' shows examples.",
    )
    parser.add_argument("--version", action="version", version=f"nsgsolve {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if summaries and name in COMMAND_HELP:
            sub.add_parser(_cli_name(name), help=COMMAND_HELP[name])
        elif summaries or only is None or _cli_name(name) == only:  # summaries: a command not listed yet
            importlib.import_module(f"nsgsolve.commands.{name}").register(sub)
        else:
            sub.add_parser(_cli_name(name))
    return parser


def _cli_name(module: str) -> str:
    return module.rstrip("_")  # import_ → import


def _command_in(argv: Sequence[str]) -> str | None:
    """The command that ``argv`` runs, when it names one before any ``-h``/``--help``; else None."""
    for arg in argv:
        if arg in ("-h", "--help") or arg.startswith("--version"):
            return None
        if not arg.startswith("-"):
            return arg if arg in {_cli_name(n) for n in COMMANDS} else None
    return None


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed with options anywhere among the positionals, as every command's help promises.

    argparse hands out positionals in one greedy run, so in 'query POLICY --json "can ..."' the question
    after the option is left over. A command whose positionals end in a list (POLICY..., FILE...) takes
    such leftovers as more of that list (query then takes its QUERY back from the end). Anything else left
    over is reported by the command's own parser, with the command's usage line, not the top level's."""
    args, rest = parser.parse_known_args(argv)
    rest = [a for a in rest if a != "--"]  # "--" ended an option's list (--flow-logs A B -- POLICY)
    if not rest:
        return args
    command = _command_parser(parser, args)
    target = _trailing_list(command) if command is not None else None
    if target is not None and isinstance(getattr(args, target, None), list) and \
            not any(a.startswith("-") for a in rest):
        getattr(args, target).extend(rest)
        return args
    (command or parser).error(f"unrecognized arguments: {' '.join(rest)}")  # exits with status 2
    raise AssertionError("unreachable")


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser | None:
    """The innermost (sub)command parser that ``args`` came through (``tags show``'s, not ``tags``')."""
    found = None
    current: argparse.ArgumentParser | None = parser
    while current is not None:
        nxt = None
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = getattr(args, action.dest, None)
                if chosen is not None and chosen in action.choices:
                    nxt = found = action.choices[chosen]
        current = nxt
    return found


def _trailing_list(parser: argparse.ArgumentParser) -> str | None:
    """The destination of the first positional taking one or more values (POLICY..., FILE...), if any."""
    for action in parser._actions:
        if not action.option_strings and action.nargs in ("+", "*") and \
                not isinstance(action, argparse._SubParsersAction):
            return action.dest
    return None


def _version() -> str:
    from nsgsolve.version import __version__

    return __version__


def run(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the CLI and return the exit status (what tests call)."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser(only=command, summaries=command is None)
    args = parse_args(parser, argv)
    # Imported here, not at the top: `nsgsolve --help` ends inside argparse, before this line, and the
    # model's dataclasses this pulls in were a third of its start-up.
    from nsgsolve.errors import EXIT_INPUT, InputError, NsgsolveError, SolverUnknown, UsageError, render_all

    if not getattr(args, "func", None):
        parser.print_help(out)
        return EXIT_INPUT
    from nsgsolve.limits import AZURE_LIMITS

    limits_token = AZURE_LIMITS.set(not getattr(args, "no_azure_limits", False))
    try:
        return args.func(args, out, err)
    except InputError as e:
        # A question given on the command line has no file to quote from: quote the argument itself.
        query = getattr(args, "query", None)
        sources = {"<query>": query} if isinstance(query, str) else None
        print(render_all(e.diagnostics, sources), file=err)
        return EXIT_INPUT
    except UsageError as e:
        print(f"nsgsolve {args.command}: error: {e}", file=err)
        if e.hint:
            print(f"  hint: {e.hint}", file=err)
        return EXIT_INPUT
    except SolverUnknown as e:
        print(f"nsgsolve {args.command}: inconclusive: {e}", file=err)
        return e.exit_status
    except NsgsolveError as e:
        print(f"nsgsolve {args.command}: error: {e}", file=err)
        return e.exit_status
    except BrokenPipeError:  # `nsgsolve ... | head`
        return 0
    except RecursionError:
        # Last line of defence: every input nesting has its own limit (E011, E690); reaching this means one
        # was missed, which tests/fuzz treats as a bug. The user still gets a clear error and exit 2.
        print(f"nsgsolve {args.command}: error[E012]: the input is nested too deeply for nsgsolve to read\n"
              "  hint: this is a missing limit in nsgsolve; please report it with the input", file=err)
        return EXIT_INPUT
    except MemoryError:
        print(f"nsgsolve {args.command}: error[E013]: out of memory while reading the input\n"
              "  hint: check that the inputs are the files meant; please report it with the input", file=err)
        return EXIT_INPUT
    finally:
        AZURE_LIMITS.reset(limits_token)


def main() -> None:
    import gc

    # One command per process, building a model of many small objects that live to the end and form no
    # cycles: the collector's default passes (every 700 allocations, and whole-heap ones as the heap grows)
    # re-scanned that model again and again, about a tenth of `show` on a 2 x 1,000-rule policy.
    gc.set_threshold(100_000, 50, 10)
    from nsgsolve.gcpause import keep_what_is_read

    keep_what_is_read()  # and what reading built is frozen when it ends: no pass scans it again
    try:
        status = run()
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        if e.errno not in _FULL:
            _internal_error(e)
        # Standard output on a full disk (files named by -o say so themselves): the machine's state, not a bug
        # and not a verdict; 2 as for a file that cannot be written.
        print(f"nsgsolve: cannot write the output: {e.strerror or e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - a bug must not read as "findings" (1) or pass (0) in CI
        _internal_error(e)
    sys.exit(status)


# errno values that only ever mean the output could not be written where it goes (a full disk or quota).
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _internal_error(e: Exception) -> NoReturn:
    """Exit 3 with a bug report's first line: a bug must not read as "findings" (1) or pass (0) in CI."""
    import os
    import traceback

    if os.environ.get("NSGSOLVE_TRACEBACK"):
        traceback.print_exc()
    print(f"nsgsolve: internal error: {type(e).__name__}: {e}\n"
          "  this is a bug in nsgsolve, not a verdict: please report it with the input "
          "(NSGSOLVE_TRACEBACK=1 shows the traceback)", file=sys.stderr)
    from nsgsolve.errors import EXIT_UNKNOWN

    sys.exit(EXIT_UNKNOWN)


if __name__ == "__main__":
    main()
