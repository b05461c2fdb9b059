"""The grammar and syntax errors: conflict-free LALR, every construct parses, errors in words with hints."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark
from lark.exceptions import UnexpectedInput

from nsgsolve.lang import syntax
from nsgsolve.errors import InputError


def test_grammar_has_no_lalr_conflicts(caplog):
    # Without strict mode Lark resolves shift/reduce conflicts silently (as shift); with debug it logs them.
    with caplog.at_level(logging.DEBUG, logger="lark"):
        Lark(syntax.grammar_text(), parser="lalr", start=list(syntax.START_SYMBOLS), debug=True,
             postlex=syntax._LineStartPostLex())
    conflicts = [r.getMessage() for r in caplog.records if "conflict" in r.getMessage().lower()]
    assert conflicts == []


def test_strict_mode_builds_when_available():
    if not syntax._strict_available():
        pytest.skip("interegular is not installed, so Lark cannot check terminal collisions (strict=True)")
    syntax.parser.cache_clear()
    try:
        assert syntax.parser(strict=True).options.strict
    finally:
        syntax.parser.cache_clear()


def test_grammar_is_loaded_from_the_package():
    assert "policy: _statement*" in syntax.grammar_text()


CONSTRUCTS = {
    "comment": "# only a comment\n",
    "subscription": "subscription enterprise-devtest-exempt",
    "tag": "tag Storage.WestUS = 20.38.96.0/19, 52.239.128.0/17",
    "define network": "define network ADMINS = 198.51.100.0/24, 203.0.113.10, 203.0.113.20-203.0.113.30",
    "define ports": "define ports WEB = 80, 443, 8000-8080, OTHER",
    "asg": "asg WebServers\nasg AppServers, DbServers",
    "vnet": "vnet hub 10.0.0.0/16, 10.1.0.0/16 {\n subnet web 10.0.1.0/24 nsg web-nsg\n"
            " subnet db 10.0.2.0/24 {\n  nsg db-nsg\n }\n peer spoke1\n onprem 192.168.0.0/16\n}",
    "vnet without block": "vnet spoke 10.2.0.0/16",
    "nic inline": "nic web1 in hub/web ip 10.0.1.4 asg WebServers nsg web1-nsg",
    "nic dynamic": "nic web2 in web ip dynamic asg WebServers, AppServers",
    "nic block": "nic multi in hub/web {\n ip 10.0.1.10 asg WebServers\n ipconfig second ip 10.0.1.11\n nsg nic-nsg\n}",
    "nsg": "nsg web-nsg {\n inbound {\n  100 allow Allow-Web tcp from Internet to WebServers port 80, 443 \"d\"\n"
           "  110 Allow A2 TCP from ADMINS port 1024-65535 to WebServers port 22\n"
           "  120 deny Deny-RDP any from any to hub/web port 3389\n  130 allow Allow-Lb * from AzureLoadBalancer to *\n"
           "  140 allow `3389-rdp` udp from asg A, nic n, subnet hub/web, vnet v, tag T to any port any\n }\n"
           " outbound {\n  100 deny No-SMTP tcp from any to Internet port 25\n }\n}",
    "empty nsg": "nsg empty {}",
    "query": "query can Internet reach WebServers port 22 tcp",
    "include": 'include "other.nsg"',
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTS))
def test_every_construct_parses(name):
    tree = syntax.parse(CONSTRUCTS[name], "t.nsg")
    assert tree.data == "policy"


def test_whole_language_in_one_file_and_newlines_do_not_matter_in_rules():
    text = "\n".join(CONSTRUCTS.values())
    assert len(syntax.parse(text, "t.nsg").children) >= len(CONSTRUCTS) - 1
    syntax.parse("nsg n { inbound { 100 allow a tcp from any\n to any port\n 80, 443 "
                 "110 deny b udp from any to any } }",
                 "t.nsg")


@pytest.mark.parametrize("text", ["can Internet reach WebServers port 22", "can 203.0.113.0/24 reach web1 port 443 tcp",
                                  "can any reach db-subnet port 1433 tcp", "can web-subnet reach Internet port 25 tcp",
                                  "can VirtualNetwork reach Storage port 443"])
def test_query_start_symbol(text):
    assert syntax.parse(text, "<query>", start="query").data == "query"


def test_line_start_asg_and_nsg_are_their_own_tokens():
    toks = [t.type for t in syntax.parser().lex("asg A\nnic n in s ip dynamic asg B\nnsg N {}")]
    assert "ASG" in toks  # the one on the nic's line
    # lex() bypasses the postlexer; parse() applies it, which the builder tests check through the model
    tree = syntax.parse("nic n in s ip dynamic asg B nsg X\nasg A\nnsg N {}", "t.nsg")
    assert [c.data for c in tree.children] == ["nic", "asg_decl", "nsg"]


def test_comments_are_collected_with_own_line_flag():
    _, comments = syntax.parse_with_comments("# head\nasg A  # tail\n", "t.nsg")
    assert [(c.line, c.column, c.text, c.own_line) for c in comments] == [(1, 1, "# head", True),
                                                                          (2, 8, "# tail", False)]


def test_hash_inside_description_is_not_a_comment():
    _, comments = syntax.parse_with_comments('nsg n { inbound { 100 allow a tcp from any to any "a # b" } }', "t.nsg")
    assert comments == []


def err(text: str, start: str = "policy"):
    with pytest.raises(InputError) as ei:
        syntax.parse(text, "t.nsg", start)
    (d,) = ei.value.diagnostics
    return d


NSG = "nsg n {\n  inbound {\n    "


@pytest.mark.parametrize("text,code,line,col,message,hint", [
    (NSG + "100 allow tcp from any to any", "E101", 3, 19, "expected one of '*', 'ah', 'any'", "the name goes between"),
    (NSG + "100 alow x tcp from any to any", "E101", 3, 9, "unexpected 'alow'", "did you mean 'allow'?"),
    (NSG + "100 allow x tpc from any to any", "E101", 3, 17, "'tcp'", "did you mean 'tcp'?"),
    (NSG + "100 deny 3389-rdp tcp from any to any", "E101", 3, 14, "expected a name", "back-quotes"),
    (NSG + "100 allow x tcp Internet to any", "E101", 3, 21, "expected 'from'", "from SOURCE"),
    (NSG + "100 allow x tcp from any to any 80, 443", "E101", 3, 39, "unexpected ','", "keyword 'port'"),
    (NSG + "100 allow x tcp from any to any port 80,\n    110 allow", "E101", 4, 9, "unexpected 'allow'",
     "remove the comma"),
    (NSG + "allow x tcp from any to any", "E101", 3, 5, "unexpected 'allow'", "starts with its priority"),
    (NSG + '100 allow x tcp from a to b "open', "E101", 3, 33, 'a "description"', "double quotes"),
    ("nsg n {\n  inbnd {", "E101", 2, 3, "'inbound', 'outbound'", "did you mean 'inbound'?"),
    ("vnte hub 10.0.0.0/16", "E101", 1, 1, "'vnet'", "did you mean 'vnet'?"),
    ("vnet hub {\n}", "E101", 1, 10, "an IPv4 or IPv6 address", "vnet NAME PREFIX"),
    ("nic n in s\n", "E102", 1, 11, "end of file", "ip ADDRESS"),
    (NSG + "100 allow x tcp from any to any", "E102", 3, 36, "end of file", "'{' at line 2 column 11"),
    ("asg", "E102", 1, 4, "expected a name", ""),
    # A keyword glued to more letters is one unknown word, not the keyword and a name.
    (NSG + "100 allowx x tcp from any to any", "E101", 3, 9, "unexpected 'allowx'", "did you mean 'allow'?"),
    ("assert nope -> a port 22", "E101", 1, 8, "unexpected 'nope'", "did you mean 'no'?"),
    ("assert allsrv -> a port 22", "E101", 1, 8, "a name with a colon (NAME:)", ""),
])
def test_syntax_errors(text, code, line, col, message, hint):
    d = err(text)
    assert (d.code, d.span.line, d.span.column) == (code, line, col), d
    assert message in d.message, d.message
    assert hint in d.hint, d.hint


def test_query_syntax_error_has_query_hint():
    d = err("can Internet to web1", "query")
    assert d.code == "E101" and d.span.column == 14 and "can SOURCES reach DESTINATIONS" in d.hint


def test_every_mistakes_table_example_is_a_syntax_error():
    # An example that parses would silently stop matching anything.
    for _label, _, examples in syntax.MISTAKES:
        for bad in examples:
            with pytest.raises(UnexpectedInput):
                syntax.parser().parse(bad, start="policy")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("abn{}/,.-*:`\"#\n 0123456789") + ["nsg ", "asg ", "inbound ", "allow ",
                                                                                     "from ", "to ", "port ", "tcp "]),
                max_size=40).map("".join))
def test_any_text_gives_a_diagnostic_never_a_traceback(text):
    try:
        syntax.parse(text, "t.nsg")
    except InputError as e:
        d = e.diagnostics[0]
        assert d.code in ("E101", "E102") and d.span.line >= 1 and d.span.column >= 1 and d.message
