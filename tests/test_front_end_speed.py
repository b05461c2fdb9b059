"""The front end's speed-ups change nothing observable (bench/bench_parse.py measures what they buy).

* positions propagated from the first and last child equal Lark's own propagate_positions;
* a run of addresses or ports (one ADDRESSES / PORTS token) builds the same model, spans included, as
  one token each;
* syntax errors are explained on the grammar without the run token, so hints and "expected" lists stay;
* the parser tables cache survives an unwritable directory and a corrupt file, and is keyed by grammar;
* the CLI builds only the command it runs, and --help still lists every command;
* parse_policy leaves the garbage collector as it found it.
"""

from __future__ import annotations

import gc
import re
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark
from lark.exceptions import UnexpectedInput

from nsgsolve import cli
from nsgsolve.lang import build, syntax
from nsgsolve.errors import InputError
from nsgsolve.lang.printer import print_policy
from strategies import policies

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.nsg"))

LISTS = """\
tag Storage = 20.0.0.0/16, 52.0.0.0/8,52.1.0.0/16 ,\t52.2.0.0/16
define network corp = 10.0.0.0/8, 192.168.0.0/16, 172.16.0.1-172.16.0.9
asg web
vnet v 10.0.0.0/16 { subnet a 10.0.1.0/24 nsg n }
nic vm in v/a ip 10.0.1.4 asg web
nsg n {
  inbound {
    100 allow r1 tcp from 10.0.0.1, 10.0.0.2/31, 10.9.0.0/16 port 1024-65535 to asg web port 80, 443, 8000 - 8080
    110 allow r2 udp from corp, 10.2.0.0/16, 10.3.0.0/16 # a comment
      , 10.4.0.0/16, 10.5.0.0/16 to 10.0.1.0/24, 10.0.2.0/24 port 53
  }
}
query can 10.0.0.1, 10.0.0.2 reach vm port 80
assert no 203.0.113.0/24, 198.51.100.0/24 -> asg web port 22
"""


def _metas(tree):
    fields = ("empty", "line", "column", "start_pos", "end_line", "end_column", "end_pos")
    return [(t.data, tuple(getattr(t.meta, f, None) for f in fields)) for t in tree.iter_subtrees()]


@pytest.mark.parametrize("text", [p.read_text() for p in EXAMPLES] + [LISTS, ""],
                         ids=[p.name for p in EXAMPLES] + ["lists", "empty"])
def test_positions_equal_larks_own(text):
    stock = Lark(syntax.grammar_text(), postlex=syntax._LineStartPostLex(), **syntax._OPTIONS)
    assert _metas(syntax.parser().parse(text, start="policy")) == _metas(stock.parse(text, start="policy"))


@pytest.mark.parametrize(
    "text", [p.read_text() for p in EXAMPLES] + [LISTS], ids=[p.name for p in EXAMPLES] + ["lists"]
)
def test_address_runs_build_the_same_model_as_one_token_per_address(text):
    runs = syntax.parser().parse(text, start="policy")
    plain = syntax.error_parser().parse(text, start="policy")
    assert not {"ep_addresses", "port_run"} & {t.data for t in plain.iter_subtrees()}
    policy_runs, bag_runs, _ = build.build_tree(runs, text, "t.nsg")
    policy_plain, bag_plain, _ = build.build_tree(plain, text, "t.nsg")
    assert policy_runs == policy_plain  # spans are part of equality
    assert bag_runs.items == bag_plain.items


def test_run_items_keep_their_own_positions():
    p = build.parse_policy("define network d = 10.0.0.0/8,\t10.1.0.0/16 , 10.2.0.0/16\n", "t.nsg")
    spans = [(i.span.line, i.span.column, i.span.end_column) for i in p.networks[0].items]
    assert spans == [(1, 20, 30), (1, 32, 43), (1, 46, 57)]


def test_errors_inside_a_run_point_at_the_address():
    with pytest.raises(InputError) as e:
        build.parse_policy("define network d = 10.0.0.0/8, 10.1.2.300, 10.2.0.1/24\n", "t.nsg")
    found = [(d.code, d.span.column, d.span.end_column) for d in e.value.diagnostics]
    assert found == [("E404", 32, 42), ("E405", 44, 55)]


@pytest.mark.parametrize("text, hint", [
    ("nsg n {\n inbound {\n100 allow a tcp from 1.2.3.4, 1.2.3.5, }", ""),
    ("nsg n {\n inbound {\n100 allow a tcp from 1.2.3.4, }", "'any' and '*' stand alone"),
    ("nsg n {\n inbound {\n100 allow a tcp from 1.2.3.4 -", "write an address range without spaces"),
])
def test_syntax_errors_are_explained_token_by_token(text, hint):
    # The hints come from parser states; a run of addresses must not make a list look like one item.
    with pytest.raises(InputError) as e:
        build.parse_policy(text, "t.nsg")
    (d,) = e.value.diagnostics
    assert d.hint.startswith(hint) and bool(d.hint) == bool(hint)


def test_the_error_grammar_differs_only_by_the_run_tokens():
    full, plain = syntax.grammar_text(), syntax.plain_grammar(syntax.grammar_text())
    for run in syntax.RUN_TOKENS:
        assert run in full and all(run not in line.split("//")[0] for line in plain.split("\n"))
    removed = [line for line in full.split("\n") if line not in plain.split("\n")]
    # Per list run token an alternative and its terminal; RULE_LINE's start symbol (never parsed) and its
    # terminal with the terminals it is made of; no more.
    alternatives = [line for line in removed if line.lstrip().startswith("|")]
    terminals = [line for line in removed if not line.lstrip().startswith("|")]
    assert len(alternatives) == len(syntax.RUN_TOKENS) - 1
    assert "rule_line: RULE_LINE" in terminals
    assert all(line.split(":")[0].split(".")[0] in syntax.RUN_TOKENS or line.startswith("RULE_LINE_")
               for line in terminals if line != "rule_line: RULE_LINE"), terminals


def test_port_runs_keep_their_own_positions_and_leave_a_range_across_lines_alone():
    p = build.parse_policy("define ports p = 80,\t443 , 8000 - 8080, 9\ndefine ports q = 1, 2 -\n 3\n", "t.nsg")
    items = [(i.lo, i.hi, i.span.column, i.span.end_column) for i in p.ports[0].items]
    assert items == [(80, 80, 18, 20), (443, 443, 22, 25), (8000, 8080, 28, 39), (9, 9, 41, 42)]
    assert [(i.lo, i.hi) for i in p.ports[1].items] == [(1, 1), (2, 3)]


def _fresh(monkeypatch, cache_home):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    syntax.parser.cache_clear()
    syntax.error_parser.cache_clear()


@pytest.fixture
def restore_parsers():
    yield
    syntax.parser.cache_clear()
    syntax.error_parser.cache_clear()


def test_cache_is_written_atomically_and_reused(tmp_path, monkeypatch, restore_parsers):
    _fresh(monkeypatch, tmp_path)
    syntax.parser()
    files = sorted(p.name for p in (tmp_path / "nsgsolve").iterdir())
    assert len(files) == 1 and files[0].startswith("grammar-") and files[0].endswith(".lark")  # no temp file left
    _fresh(monkeypatch, tmp_path)
    assert build.parse_policy(LISTS, "t.nsg").nsgs[0].rules


def test_cache_survives_an_unusable_directory_and_a_corrupt_file(tmp_path, monkeypatch, restore_parsers):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _fresh(monkeypatch, blocker)  # <file>/nsgsolve cannot be created
    assert build.parse_policy(LISTS, "t.nsg").nsgs[0].rules
    _fresh(monkeypatch, tmp_path)
    path = syntax._cache_path(syntax.grammar_text())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage\n")
    assert build.parse_policy(LISTS, "t.nsg").nsgs[0].rules


def test_cache_is_keyed_by_the_grammar(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = syntax.grammar_text()
    assert syntax._cache_path(text) != syntax._cache_path(text + "\n// changed\n")
    assert syntax._cache_path(text).parent == tmp_path / "nsgsolve"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", "")
    monkeypatch.delenv("LOCALAPPDATA", raising=False)
    path = syntax._cache_path(text)
    assert path is None or path.is_absolute()


def test_cli_builds_only_the_command_it_runs_and_help_lists_all():
    assert cli._command_in(["query", "p.nsg", "can a reach b"]) == "query"
    assert cli._command_in(["--help", "query"]) is None and cli._command_in(["nope"]) is None
    assert cli._command_in(["import", "x.json"]) == "import"
    full = cli.build_parser()
    text = full.format_help()
    for name in cli.COMMANDS:
        assert f"    {cli._cli_name(name)} " in text
    only = cli.build_parser(only="query")
    sub = next(a for a in only._subparsers._group_actions)
    assert set(sub.choices) == {cli._cli_name(n) for n in cli.COMMANDS}
    full_sub = next(a for a in full._subparsers._group_actions)
    assert sub.choices["query"].format_help() == full_sub.choices["query"].format_help()


def test_parse_policy_restores_the_garbage_collector():
    assert gc.isenabled()
    build.parse_policy(LISTS, "t.nsg")
    assert gc.isenabled()
    gc.disable()
    try:
        build.parse_policy(LISTS, "t.nsg")
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(InputError):
        build.parse_policy("nsg", "t.nsg")
    assert gc.isenabled()


def test_help_summaries_are_what_the_commands_register():
    """`nsgsolve --help` lists the commands from cli.COMMAND_HELP without importing them; the text must
    be the one the full parser shows."""
    assert set(cli.COMMAND_HELP) == set(cli.COMMANDS), "a command without its line in cli.COMMAND_HELP"
    assert cli.build_parser(summaries=True).format_help() == cli.build_parser().format_help()


def test_help_imports_no_command_z3_numpy_or_lark():
    import subprocess
    import sys

    code = ("import sys, io\nimport nsgsolve.cli as c\ntry:\n    c.run(['--help'], io.StringIO(), io.StringIO())\n"
            "except SystemExit:\n    pass\nprint(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('z3', 'numpy', 'lark', 'nsgsolve'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("z3", "numpy", "lark")], loaded
    assert not [m for m in loaded if m.startswith(("nsgsolve.commands", "nsgsolve.importers", "nsgsolve.semantics"))]


def test_package_names_load_on_first_use():
    import nsgsolve

    assert nsgsolve.Packet.parse("tcp", "10.0.0.1", 1, "10.0.0.2", 2).dport == 2
    assert callable(nsgsolve.load_policy) and callable(nsgsolve.resolve)
    assert nsgsolve.semantics.evaluate.Evaluator is not None
    assert set(nsgsolve.__all__) <= set(dir(nsgsolve))
    with pytest.raises(AttributeError):
        nsgsolve.no_such_name  # noqa: B018 (the attribute access is what raises)


# ---------------------------------------------------------------- a rule on one line as one token (RULE_LINE)

RULE_LINES = """\
define network corp = 10.0.0.0/8
define ports web = 80, 443
asg web, `odd asg`
vnet v 10.0.0.0/16 { subnet a 10.0.1.0/24 nsg n
  subnet b 10.0.2.0/24 }
vnet w 10.1.0.0/16 { subnet a 10.1.1.0/24 }
nic vm in v/a ip 10.0.1.4 asg web
nsg n {
  inbound {
    100 allow r1 tcp from 10.0.0.1, 10.0.0.2/31, 10.9.0.0/16 port 1024-65535 to asg web port 80, 443, 8000-8080
    110 ALLOW `r 2` UDP from corp, 10.2.0.0/16 to v/b, `v`/a, b port 53 "a \\"desc\\", with, commas"
    120 deny r3 * from Internet to any port *  # a comment
    # a comment line, then a blank one

    130 deny r4 any from asg web, asg `odd asg` to 10.0.1.4 port any
    140 allow r5 tcp from a to web port 22
    150 allow r6 tcp from vm to 10.0.0.0/8-10.0.0.9 port 22
    160 allow r7 tcp from 10.0.0.1/8, 10.0.300.1 to 10.0.0.1 port 22
    170 allow r8 tcp from Internet, 10.0.0.1 to asg web
    180 alwaysallow r9 tcp from any to any
    190 allow tcp2 tcp from tcp-x, web to any port 70000, 90-80
    200 allow r10 tcp from any to any port web
    210 allow r11 tcp from tag Sql to nic vm
    220 allow r12 tcp from v / b to 2001:db8::/64
    230 allow r13 tcp from a, 10.0.0.1 to b
      , 10.1.0.0/16
    240 allow r14 tcp from a to any port 80
      - 90
    250 allow r15 tcp from Storage to any port 80 "x"
  }
  outbound { 100 deny r1 udp from any to any }
}
group g = v, w
admin c {
  collection k for g {
    inbound {
      100 alwaysallow a1 tcp from Internet, 10.0.0.0/8, corp to any port 22
      110 deny a2 any from asg web to any
      120 allow a3 udp from any port 1-2 to v/a "d"
    }
  }
}
"""


@lru_cache(maxsize=None)
def _token_parser() -> Lark:
    """The grammar without RULE_LINE: every rule token by token (address and port runs kept)."""
    text = syntax.plain_grammar(syntax.grammar_text(), ("RULE_LINE",))
    return Lark(text, postlex=syntax._LineStartPostLex(), **dict(syntax._OPTIONS, start=["policy", "query"]))


def _both_ways(text: str):
    """(model, diagnostics) or "syntax error", from syntax.parse (rules on one line found apart from the
    parser) and from the token-by-token parser."""
    out = []
    for parse in (lambda: syntax.parse(text, "t.nsg"), lambda: _token_parser().parse(text, start="policy")):
        try:
            tree = parse()
        except (UnexpectedInput, InputError):
            out.append("syntax error")
            continue
        policy, bag, poisoned = build.build_tree(tree, text, "t.nsg")
        out.append((policy, [(d.code, d.message, d.span, d.hint) for d in bag.items], poisoned))
    return out


def test_rule_lines_build_what_the_tokens_build():
    fast, slow = _both_ways(RULE_LINES)
    assert fast == slow  # spans are part of equality, diagnostics (errors too) come in the same order
    lines = [r for r in syntax.parse(RULE_LINES, "t.nsg").find_data("rule_line")]
    assert len(lines) >= 12  # the test is about the fast path: most of those rules took it
    assert fast[1]  # and builder errors (E404, E405, E511, E208...) were among them


# Lines in the RULE_LINE shape where no rule may stand, or where the parser would not take them as one:
# the text is parsed as it is, with the grammar's meaning and errors.
_NOT_RULE_PLACES = [
    "vnet v 10.0.0.0/16 {\n  100 allow r tcp from any to any\n}\n",
    "define network d = 10.0.0.1,\n  100 allow r tcp from any to any\n",
    "nsg n {\n inbound\n  100 allow r tcp from any to any\n {\n }\n}\n",
    "nsg n {\n  100 allow r tcp from any to any\n inbound { }\n}\n",
    "nsg n {\n inbound {\n  90 allow q tcp from any to any port 80,\n  100 allow r tcp from any to any\n }\n}\n",
    "nsg n {\n inbound {\n  90 allow q tcp from a,\n  100 allow r tcp from any to any\n }\n}\n",
    "nsg n {\n inbound {\n  90 allow q tcp from any to\n  100 allow r tcp from any to any\n }\n}\n",
    "100 allow r tcp from any to any\n",
    "nsg n {\n inbound { # c\n  100 allow r tcp from any to any # c\n\n  # c\n  110 deny s udp from a to b\n"
    "  120 deny t udp from a to b port\n 80 110 deny u udp from a to b\n }\n}\n",
    "nsg n {\n inbound { 100 allow r tcp from any to any\n  110 deny s udp from a to b\n}}\n",
    "nsg n { outbound {\n  100 allow r tcp from any to any\n  }\n inbound {\n  100 allow r tcp from any to any\n}}",
    "query can any reach any\n  100 allow r tcp from any to any\n",
]


@pytest.mark.parametrize("text", _NOT_RULE_PLACES)
def test_rule_lines_are_taken_apart_only_where_a_rule_stands(text):
    fast, slow = _both_ways(text)
    assert fast == slow
    if isinstance(slow, str):  # the same error, word for word
        with pytest.raises(InputError) as e:
            syntax.parse(text, "t.nsg")
        assert list(e.value.diagnostics) == [syntax.syntax_diagnostic(_plain_error(text), text, "t.nsg")]


def _plain_error(text: str) -> UnexpectedInput:
    try:
        syntax.error_parser().parse(text, start="policy")
    except UnexpectedInput as e:
        return e
    raise AssertionError("no syntax error")


@pytest.mark.parametrize("text", [p.read_text() for p in EXAMPLES], ids=[p.name for p in EXAMPLES])
def test_rule_lines_in_the_examples(text):
    fast, slow = _both_ways(text)
    assert fast == slow


_NAME_POSITIONS = ["100 allow ", "100 allow r tcp from ", "100 allow r tcp from a, ",
                   "100 allow r tcp from 10.0.0.1, ", "100 allow r tcp from asg ", "100 allow r tcp from a/",
                   "100 allow r tcp from a to ", "100 allow r tcp from a port 1 to ", "100 allow r tcp from any to b, ",
                   "100 deny r * from any to asg ", "100 allow r tcp from a to b/",
                   "100 allow r tcp from a port 1, 2 to "]


@pytest.mark.parametrize("context", ["nsg n {\n inbound {\n", "nsg n { outbound {\n 90 deny q udp from any to any\n",
                                     "admin c {\n collection k for g {\n  inbound {\n"])
def test_rule_line_names_exclude_the_keywords_that_could_stand_there(context):
    """A name on a RULE_LINE is a NAME token in the plain grammar too: the parser takes no keyword there
    but those RULE_LINE_NAME excludes (Lark's lexer makes a NAME spelled like a keyword that the parser
    state takes that keyword). 'port' and 'to' are excluded as well: the builder splits the words there."""
    grammar = syntax.grammar_text()
    listed = set(re.search(r"RULE_LINE_NAME: /\(\?!\(([a-z|]+)\)", grammar).group(1).split("|"))
    assert listed == set(syntax.RESERVED_NAMES) | {"port", "to"}
    p = syntax.error_parser()
    keywords = {t.name: t.pattern.value.lower() for t in p.terminals
                if t.pattern.type == "str" and re.fullmatch(r"[a-z_][a-z0-9_.\-]*", t.pattern.value, re.I)}
    keywords.update(ASG_LINE="asg", NSG_LINE="nsg")
    for prefix in _NAME_POSITIONS:
        ip = p.parse_interactive(context + prefix, start="policy")
        ip.exhaust_lexer()
        accepts = ip.accepts()
        assert "NAME" in accepts, prefix
        assert {keywords[t] for t in accepts if t in keywords} <= listed, prefix


_GOOD_ITEMS = [
    "10.0.0.1", "10.0.0.0/8", "10.0.0.1-10.0.0.9", "10.0.1.0/8", "1.2", "10.0.300.1", "web", "asg web", "asg  web",
    "a", "b", "v/a", "`v`/a", "v / a", "corp", "Internet", "Sql", "tag Sql", "nic vm", "vm", "2001:db8::/64", "to-x",
    "any1", "`x y`", "TCP1", "`any`",
]
_ITEMS = st.sampled_from(_GOOD_ITEMS * 10 + ["any", "*", "tcp", "ports", "asg", "10.0.0.1:80", "10.0.0.1-5", "from",
                                               "in", "nsg", "v/any", "allow"])
_PORT_ITEMS = st.sampled_from(["80", "443", "80-90", "90-80", "80 - 90", "70000", "web", "08"] * 10
                              + ["any", "*", "1-2-3", "-"])
_WORDS = st.sampled_from(["100", "allow", "r", "tcp", "from", "to", "port", "asg", "web", ",", "-", "/", '"d"', "}",
                          "# c", "any", "10.0.0.1", "80"])
_GAP = st.sampled_from([" "] * 40 + ["  ", "\t", "\n", " \r\n  ", " # c\n"])
_SEP = st.sampled_from([", "] * 30 + [",", " , ", ",\n ", " "])


@st.composite
def _rule_texts(draw):
    """A policy whose NSG holds rule lines: mostly the common shape with random parts, some near misses."""
    head = "define network corp = 10.0.0.0/8\nasg web\nvnet v 10.0.0.0/16 { subnet a 10.0.1.0/24\n subnet b " \
           "10.0.2.0/24 }\nnic vm in v/a ip 10.0.1.4\nnsg n {\n inbound {\n"

    def joined(items, sep=_SEP) -> str:
        parts = draw(st.lists(items, min_size=1, max_size=3))
        return parts[0] + "".join(draw(sep) + p for p in parts[1:])

    lines = []
    for i in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 19)):
            parts = [str(100 + 10 * i), draw(st.sampled_from(["allow", "deny", "Allow", "alwaysallow"] * 3 + ["x"])),
                     draw(st.sampled_from(["r", "`r x`", "r-1"] * 3 + ["tcp", "from", "nsg", "port"])),
                     draw(st.sampled_from(["tcp", "udp", "any", "*", "UDP"] * 3 + ["x"])), "from", joined(_ITEMS)]
            if draw(st.booleans()):
                parts += ["port", joined(_PORT_ITEMS)]
            parts += ["to", joined(_ITEMS)]
            if draw(st.booleans()):
                parts += ["port", joined(_PORT_ITEMS)]
            if draw(st.integers(0, 3)) == 0:
                parts.append(draw(st.sampled_from(['"d"', '"a, b"', '"\\"x"', '"'])))
        else:
            parts = draw(st.lists(_WORDS, min_size=1, max_size=14))
        lines.append("  " + "".join(w + draw(_GAP) for w in parts[:-1]) + parts[-1])
    return head + "\n".join(lines) + draw(st.sampled_from(["\n }\n}\n", "\n}\n}", "\n\n # c\n }}", "}}\n", "\n"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rule_texts())
def test_rule_lines_equal_tokens_on_random_rules(text):
    fast, slow = _both_ways(text)
    assert fast == slow


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(max_rules=6, admin=True, ipv6=True))
def test_rule_lines_equal_tokens_on_random_policies(policy):
    fast, slow = _both_ways(print_policy(policy))
    assert fast == slow and not isinstance(fast, str)


def test_span_on_line_is_the_span_the_constructor_makes():
    import copy
    import dataclasses
    import pickle

    from nsgsolve.model import Span

    fast, slow = Span.on_line("t.nsg", 3, 4, 9), Span("t.nsg", 3, 4, 3, 9)
    assert type(fast) is Span and fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert vars(fast) == vars(slow) and pickle.loads(pickle.dumps(fast)) == slow and copy.copy(fast) == slow
    assert dataclasses.replace(fast, line=5) == Span("t.nsg", 5, 4, 3, 9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.line = 1  # type: ignore[misc]
