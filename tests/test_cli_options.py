"""Every command accepts every option its help lists, before, between and after its positionals.

Built from the parsers themselves, so a new option or command is covered without editing this file.
Parsing only: the commands' own tests run them.
"""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stderr

import pytest

from nsgsolve.cli import COMMANDS, _cli_name, build_parser, parse_args, run


def _commands() -> list[tuple[list[str], argparse.ArgumentParser]]:
    """(words naming the command, its parser), nested actions (``tags show``) included."""
    out = []

    def walk(words: list[str], p: argparse.ArgumentParser) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if words:
            out.append((words, p))
        for a in subs:
            for name, child in a.choices.items():
                walk(words + [name], child)

    for module in COMMANDS:
        name = _cli_name(module)
        parser = build_parser(only=name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        walk([name], sub.choices[name])
    return out


def _value(action: argparse.Action) -> str:
    if action.choices:
        return str(next(iter(action.choices)))
    return "80" if action.type not in (None, str) else "NAME=VALUE" if action.metavar == "NAME=VALUE" else "x1"


def _positionals(p: argparse.ArgumentParser) -> list[str]:
    vals = []
    for a in p._actions:
        if a.option_strings or isinstance(a, argparse._SubParsersAction):
            continue
        if a.nargs == "?":
            continue  # optional positional (query's QUERY): covered by the POLICY list
        vals += [f"{a.dest}{i}" for i in range(2 if a.nargs in ("+", "*") else 1)]
    return vals


def _required(p: argparse.ArgumentParser, but: argparse.Action) -> list[str]:
    """The command's required options other than ``but`` (replay's --flow-logs PATH...). Such a list takes
    the positionals after it, so they go after the positionals, or just before a tested option that ends
    its own list with "--" (after a "--" they would be positionals)."""
    out = []
    for a in p._actions:
        if a.option_strings and a.required and a is not but:
            out += [a.option_strings[-1], _value(a)]
    return out


CASES = []
for words, p in _commands():
    pos = _positionals(p)
    for a in p._actions:
        if not a.option_strings or isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
            continue
        opt = [a.option_strings[-1]] + ([] if a.nargs == 0 else [_value(a)])
        # An option taking a list (replay's --flow-logs PATH...) would take the positionals after it too:
        # there, as with any argparse program, "--" ends the list.
        before = opt + (["--"] if a.nargs in ("+", "*") else [])
        req = _required(p, a)
        lead, tail = (req, []) if "--" in before else ([], req)
        orders = {"first": lead + before + pos + tail, "last": pos + opt + req}
        if len(pos) > 1:
            orders["between"] = pos[:1] + lead + before + pos[1:] + tail
        for where, tail in orders.items():
            CASES.append(pytest.param(words, a.dest, tail, pos, id=f"{' '.join(words)} {opt[0]} {where}"))


@pytest.mark.parametrize("words,dest,tail,pos", CASES)
def test_option_is_accepted_anywhere(words, dest, tail, pos):
    parser = build_parser(only=words[0])
    args = parse_args(parser, words + tail)
    got = getattr(args, dest)
    assert got not in (None, False, []), f"{dest} not set from {tail}"
    given = []
    for a in vars(args).values():
        given += a if isinstance(a, list) else [a]
    assert [v for v in given if v in pos] == pos, "positionals kept, in order"


def test_every_command_with_options_is_covered():
    covered = {tuple(c.values[0]) for c in CASES}
    assert {("verify",), ("query",), ("lint",), ("check",), ("diff",), ("import",), ("show",), ("fmt",),
            ("tags", "show"), ("tags", "compare")} <= covered


def test_an_option_a_command_lacks_gets_that_commands_usage(capsys):
    # 'import' has no --service-tags: the answer names import's usage, not the top-level one.
    with pytest.raises(SystemExit) as e:
        run(["import", "a.json", "--service-tags", "tags.json"], io.StringIO(), io.StringIO())
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: nsgsolve import ") and \
        "nsgsolve import: error: unrecognized arguments: --service-tags tags.json" in err


def test_a_file_after_an_option_is_still_a_file():
    args = parse_args(build_parser(only="import"), ["import", "a.json", "--symbolic", "b.json"])
    assert args.files == ["a.json", "b.json"] and args.symbolic


def test_unknown_top_level_option_keeps_top_level_usage(capsys):
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()):
        parse_args(build_parser(), ["--bogus"])
