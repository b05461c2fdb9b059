"""Text → Lark parse tree, and Lark's exceptions → :class:`~nsgsolve.errors.Diagnostic`.

The grammar is ``grammar/nsg.lark``, shipped as the package ``nsgsolve.grammar``. The parser is built once
per process. A syntax error never escapes as a Lark exception: :func:`parse` raises
:class:`~nsgsolve.errors.InputError` whose diagnostic says where (file:line:column), what was expected in
words, and - from a table of common mistakes, like Lark's own ``GRAMMAR_ERRORS`` - how to fix it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

from nsgsolve.lang import larkload  # first: Lark without the optional packages it would load
import lark
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.tree import Meta

from nsgsolve.errors import Diagnostic, InputError, did_you_mean
from nsgsolve.model import Span
from nsgsolve.lang.names import RESERVED_NAMES  # noqa: F401 - syntax.RESERVED_NAMES, as before

GRAMMAR_FILE = "nsg.lark"
# `rule_line` is never parsed: it keeps the RULE_LINE terminal in the parser (grammar/nsg.lark, _rule_lines).
START_SYMBOLS = ("policy", "query", "rule_line")

# Words a keyword can be misspelt as; used for did-you-mean on an unexpected word.
STATEMENT_KEYWORDS = ("subscription", "tag", "define", "asg", "vnet", "nic", "nsg", "query", "include", "group",
                      "admin")
KEYWORDS = frozenset(STATEMENT_KEYWORDS + (
    "network", "ports", "can", "reach", "subnet", "peer", "onprem", "in", "ipconfig", "ip", "dynamic",
    "inbound", "outbound", "from", "to", "port", "allow", "deny", "tcp", "udp", "icmp", "esp", "ah", "any",
    "alwaysallow", "collection", "for",
))


# The postlexer's retyped keywords (see the top of grammar/nsg.lark).
_LINE_START = {"ASG": "ASG_LINE", "NSG": "NSG_LINE"}


class _LineStartPostLex:
    """Marks an ``asg``/``nsg`` keyword that begins a line, so a one-line ``nic`` statement ends there.

    It looks only at the previous token, never ahead, so the contextual lexer stays in step with the
    parser state.
    """

    # NAME too: Lark's contextual lexer offers a state only the terminals it accepts, so where a keyword is
    # expected and a name is not, `nope` lexed as the keyword `no` then `pe` (and `allowx` as `allow x`).
    # With NAME always on offer the longest match wins: `nope` is a NAME, an error there, while `no` is
    # still the keyword (Lark retypes a NAME spelled like an accepted keyword).
    always_accept = (*_LINE_START, "NAME")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        prev_end_line = 0
        for tok in stream:
            if tok.type in _LINE_START and (tok.line or 0) > prev_end_line:
                tok = Token.new_borrow_pos(_LINE_START[tok.type], tok, tok)
            prev_end_line = tok.end_line or tok.line or 0
            yield tok


def grammar_text() -> str:
    """The grammar source: package data when installed, ``grammar/`` beside the package in a checkout."""
    try:
        return resources.files("nsgsolve.grammar").joinpath(GRAMMAR_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # nsgsolve/lang/syntax.py -> the checkout's grammar/
        return (Path(__file__).resolve().parents[2] / "grammar" / GRAMMAR_FILE).read_text(encoding="utf-8")


def _strict_available() -> bool:
    # Lark's strict mode needs the optional `interegular` package for its terminal-collision check.
    try:
        import interegular  # noqa: F401
    except ImportError:
        return False
    return True


# Everything but the postlexer and the callbacks, which are objects: these decide the tables, so they are
# part of the cache key.
_OPTIONS = dict(parser="lalr", lexer="contextual", start=list(START_SYMBOLS), propagate_positions=True,
                maybe_placeholders=False)


@lru_cache(maxsize=None)
def parser(strict: bool = False) -> Lark:
    """The LALR parser, built once.

    Strict mode (no shift/reduce conflicts, no terminal collisions) is a property of the grammar, proved
    once by the test suite; building with it costs every run about a second, so runs build without it.
    Runs also keep the built tables in the user's cache directory (:func:`_cache_path`): loading them
    takes about 10 ms, building them about 0.4 s.
    """
    text = grammar_text()
    kw = dict(_OPTIONS, postlex=_LineStartPostLex(), lexer_callbacks={"COMMENT": _collect_comment})
    if strict:
        larkload.allow_strict()
        p = Lark(text, strict=True, **kw)
    else:
        p = _cached_lark(text, kw)
    _fast_positions(p)
    return p


@lru_cache(maxsize=None)
def error_parser() -> Lark:
    """The parser that finds and explains syntax errors: the grammar without the run tokens.

    Both grammars accept the same texts, but a run is one token where this one has several, so the
    parser states at an error differ, and the mistakes table, "expected" lists and positions are all
    defined on token-by-token states. A text that :func:`parser` rejects is parsed again with this one,
    which costs nothing on the normal path.
    """
    kw = dict(_OPTIONS, start=["policy", "query"], postlex=_LineStartPostLex(),
              lexer_callbacks={"COMMENT": _collect_comment})
    p = _cached_lark(plain_grammar(grammar_text()), kw)
    _fast_positions(p)
    return p


# Terminals that stand for several tokens of the plain grammar (a list on one line, a rule on one line, as
# one token).
RUN_TOKENS = ("ADDRESSES", "PORTS", "RULE_LINE")


def plain_grammar(text: str, runs: tuple[str, ...] = RUN_TOKENS) -> str:
    """The grammar less the lines whose code (not comment) names one of the run tokens ``runs``."""
    return "\n".join(line for line in text.split("\n")
                     if not any(run in line.split("//", 1)[0] for run in runs))


def _cache_path(text: str, start: list[str] | None = None) -> Path | None:
    """Where the tables of this grammar are kept: a file named by the hash of everything they depend on
    (grammar text, options, Lark and Python versions), so a changed grammar or upgraded Lark never reads
    stale tables. None when there is no usable cache directory."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.environ.get("LOCALAPPDATA") if os.name == "nt" else None)
    if not base:
        home = os.path.expanduser("~")
        base = os.path.join(home, ".cache") if home != "~" else ""
    if not base or not os.path.isabs(base):
        return None
    options = dict(_OPTIONS, start=start) if start is not None else _OPTIONS
    key = "\0".join((text, repr(sorted(options.items())), repr(_LineStartPostLex.always_accept), lark.__version__,
                     sys.version))
    return Path(base) / "nsgsolve" / f"grammar-{hashlib.sha256(key.encode()).hexdigest()[:24]}.lark"


def _cached_lark(text: str, kw: dict) -> Lark:
    """Lark with ``cache=`` pointed at :func:`_cache_path`. Lark checks its own hash of the grammar and
    options in the file and rebuilds on a mismatch or an unreadable file. A new file is written under a
    temporary name and renamed, so a concurrent run never reads half of it; a cache directory that cannot
    be written costs only the time to build."""
    path = _cache_path(text, kw.get("start"))
    if path is None:
        return Lark(text, **kw)
    if path.is_file():
        return Lark(text, cache=str(path), **kw)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Lark(text, **kw)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    p = Lark(text, cache=str(tmp), **kw)  # Lark ignores a failed write
    try:
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
    return p


def _fast_positions(p: Lark) -> None:
    """Swap Lark's position propagation for an equivalent one that looks at the first and last child only.

    ``propagate_positions`` gives every node a meta: line/column/start_pos of its first child (a token, or
    a node with a non-empty meta) and end_line/end_column/end_pos of its last, counting the anonymous
    tokens (keywords, braces) that the tree leaves out. Lark's ``PropagatePositions`` searches for those
    children with generic checks and also fills ``container_*`` fields, which matter only for inlined
    ``?rule``s (this grammar has none, and nothing here reads them); on a large policy it is half the parse.
    The replacement gives the same meta fields. If Lark's internals are not as expected, Lark's own stays.
    """
    from lark.parse_tree_builder import PropagatePositions

    try:
        callbacks = p.parser.parser.parser.callbacks
    except AttributeError:  # pragma: no cover - another Lark version: keep its propagation
        return
    for rule, cb in list(callbacks.items()):
        if type(cb) is PropagatePositions and cb.node_filter is None and not rule.options.expand1:
            callbacks[rule] = _positioned(cb.node_builder)


def _child_meta(c):
    if type(c) is Token:
        return c
    if type(c) is Tree:
        m = c._meta
        return m if m is not None and not m.empty else None
    return None  # pragma: no cover - only tokens and trees without a transformer


def _positioned(node_builder):
    def build(children):
        res = node_builder(children)
        if not children or type(res) is not Tree:
            return res
        first = _child_meta(children[0])
        if first is None:
            first = next((m for m in map(_child_meta, children) if m is not None), None)
            if first is None:
                return res
        last = _child_meta(children[-1])
        if last is None:
            last = next(m for m in map(_child_meta, reversed(children)) if m is not None)
        m = Meta()
        m.empty = False
        m.line, m.column, m.start_pos = first.line, first.column, first.start_pos
        m.end_line, m.end_column, m.end_pos = last.end_line, last.end_column, last.end_pos
        res._meta = m
        return res

    return build


# ---------------------------------------------------------------- comments (for `nsgsolve fmt`)


@dataclass(frozen=True)
class Comment:
    line: int
    column: int
    text: str  # with the leading '#'
    own_line: bool  # nothing but blanks before it on its line


_comment_sink = threading.local()


def _collect_comment(tok: Token) -> None:
    sink = getattr(_comment_sink, "items", None)
    if sink is not None:
        sink.append(tok)


# ---------------------------------------------------------------- parsing


def parse(text: str, filename: str, start: str = "policy") -> Tree:
    """Parse ``text``; raise :class:`InputError` (E101/E102) on a syntax error."""
    tree, _ = _parse(text, filename, start, want_comments=False)
    return tree


def parse_with_comments(text: str, filename: str, start: str = "policy") -> tuple[Tree, list[Comment]]:
    return _parse(text, filename, start, want_comments=True)


def _parse(text: str, filename: str, start: str, want_comments: bool) -> tuple[Tree, list[Comment]]:
    p = parser()
    _comment_sink.items = [] if want_comments else None
    try:
        tree = _parse_rule_lines_apart(p, text) if start == "policy" else None
        if tree is None:
            if _comment_sink.items:
                _comment_sink.items = []  # the text is read again, comments and all
            tree = p.parse(text, start=start)
    except UnexpectedInput as e:
        raise InputError([syntax_diagnostic(_plain_error(e, text, start), text, filename, start)]) from None
    finally:
        toks = _comment_sink.items or []
        _comment_sink.items = None
    lines = text.split("\n")
    comments = [Comment(t.line, t.column, t.value.rstrip(), not lines[t.line - 1][: t.column - 1].strip())
                for t in toks]
    return tree, comments


# ---------------------------------------------------------------- rules on one line, apart from Lark


@lru_cache(maxsize=None)
def _rule_lines() -> re.Pattern[str]:
    """A line that starts (after blanks) with a RULE_LINE: the terminal's own regex, from the parser."""
    pattern = parser().get_terminal("RULE_LINE").pattern.to_regexp()
    return re.compile(r"^[ \t]*(" + pattern + ")", re.MULTILINE)


# Blanks and comments, then the brace that opens a direction block's rules.
_TO_BRACE = re.compile(r"(?:\s|#[^\n]*)*\{")


def _parse_rule_lines_apart(p: Lark, text: str) -> Tree | None:
    """The tree of ``text`` (start ``policy``), its rules in the common one-line shape (RULE_LINE) found by
    one regex instead of the LALR parser, which then reads little more than the topology; None when
    that cannot be shown to give the tree token-by-token parsing gives (the caller parses the text).

    Each such line is blanked (spaces: every other position stays) and the rest parsed. A line is put
    back as a ``rule_line`` node only where a rule may stand: inside a direction block, after its '{' and
    between two of its rules. There the parser would have read the line as one complete rule too: the
    RULE_LINE shape is made of exactly the tokens the line gives, and the line after it starts with a digit
    or '}', which continues no rule. Anywhere else (a vnet block, a line continuing a list) the whole text
    is parsed again as it is, so the meaning, and every syntax error, comes from the grammar alone.
    """
    found = list(_rule_lines().finditer(text))
    if not found:
        return None
    pieces, at = [], 0
    for m in found:
        a, b = m.span(1)
        pieces += [text[at:a], " " * (b - a)]
        at = b
    pieces.append(text[at:])
    try:
        tree = p.parse("".join(pieces), start="policy")
    except UnexpectedInput:
        return None
    blocks: list[Tree] = []  # direction blocks in text order
    for st in _trees(tree.children):
        if st.data == "nsg":
            blocks += _trees(st.children[2:])
        elif st.data == "admin_config":
            for collection in _trees(st.children[1:]):
                blocks += _trees(collection.children[2:])
    i, line, line_at = 0, 1, 0  # the next line to place; line number and start of the text at line_at
    for block in blocks:
        head = block.children[0]
        assert isinstance(head, Token)  # the grammar's INBOUND | OUTBOUND
        brace = _TO_BRACE.match(text, head.end_pos or 0)
        if brace is None:
            return None
        mine = []
        while i < len(found) and found[i].start(1) < block.meta.end_pos:
            m = found[i]
            a, b = m.span(1)
            if a < brace.end():
                return None
            line += text.count("\n", line_at, a)
            line_at = a
            column = a - text.rfind("\n", 0, a)
            tok = Token("RULE_LINE", m.group(1), a, line, column, line, column + b - a, b)
            node = Tree("rule_line", [tok])
            meta = node.meta
            meta.empty = False
            meta.line, meta.column, meta.start_pos = line, column, a
            meta.end_line, meta.end_column, meta.end_pos = line, column + b - a, b
            mine.append(node)
            i += 1
        if mine:
            merged = sorted(block.children[1:] + mine, key=lambda n: n.meta.start_pos)
            end = 0  # of the parsed rules so far: a line inside one was part of it
            for node in merged:
                if node.data != "rule_line":
                    end = node.meta.end_pos
                elif node.meta.start_pos < end:
                    return None
            block.children[1:] = merged
    if i < len(found):
        return None
    return tree


def _trees(children: list) -> list[Tree]:
    """Children the grammar makes trees (Lark types each child as token-or-tree)."""
    return [c for c in children if isinstance(c, Tree)]


def _plain_error(e: UnexpectedInput, text: str, start: str) -> UnexpectedInput:
    """The error that :func:`error_parser` finds in a text that :func:`parser` rejected."""
    _comment_sink.items = None
    try:
        error_parser().parse(text, start=start)
    except UnexpectedInput as plain:
        return plain
    return e  # pragma: no cover - the two grammars accept the same texts


# ---------------------------------------------------------------- syntax errors in words

# Terminal name → words. Keyword terminals not listed here are shown as the keyword itself.
TERMINAL_WORDS = {
    "NAME": "a name",
    "QUOTED_NAME": "a `quoted name`",
    "ADDRESS": "an IPv4 or IPv6 address, CIDR or range",
    "IPV6": "an address",
    "INT": "a number",
    "STRING": 'a "description"',
    "ASSERT_NAME": "a name with a colon (NAME:)",
    "ASG_LINE": "'asg' (at the start of a line)",
    "NSG_LINE": "'nsg' (at the start of a line)",
    "STAR": "'*'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "EQUAL": "'='",
    "SLASH": "'/'",
    "MINUS": "'-'",
    "$END": "the end of the file",
}

RULE_SHAPE = 'PRIORITY allow|deny NAME PROTOCOL from SOURCE [port PORTS] to DESTINATION [port PORTS] ["description"]'

# (label, hint, bad inputs). The first example whose parser state matches the error gives the hint, the
# way Lark reports mistakes in its own grammar files. Each example is the shortest text that fails there.
NSG = "nsg n {\n inbound {\n"
MISTAKES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("rule without a name",
     f"a rule is {RULE_SHAPE}; the name goes between the action and the protocol",
     (NSG + "100 allow tcp from", NSG + "100 deny udp from", NSG + "100 allow any from")),
    ("rule name starts with a digit",
     "names start with a letter or '_'; write other names in back-quotes, e.g. `3389-rdp`",
     (NSG + "100 allow 3", NSG + "100 deny 3", NSG + "100 allow 3389-rdp tcp")),
    ("missing 'from'",
     f"a rule is {RULE_SHAPE}",
     (NSG + "100 allow a tcp Internet", NSG + "100 allow a tcp 1.2.3.4", NSG + "100 allow a tcp to")),
    ("missing 'to'",
     f"a rule is {RULE_SHAPE}; the destination follows 'to'",
     (NSG + "100 allow a tcp from any b", NSG + "100 allow a tcp from any 100",
      NSG + "100 allow a tcp from a }", NSG + "100 allow a tcp from a port 1 b")),
    ("unknown protocol",
     "the protocol is one of tcp, udp, icmp, esp, ah, any, * (after the rule name)",
     (NSG + "100 allow a b", NSG + "100 allow a 6", NSG + "100 deny a b", NSG + "100 deny a 6")),
    ("unknown access",
     "after the priority comes allow or deny",
     (NSG + "100 a", NSG + "100 1")),
    ("rule without a priority",
     f"every rule starts with its priority (100-4096): {RULE_SHAPE}",
     (NSG + "allow", NSG + "a", NSG + '100 allow a tcp from any to any "x" "y"')),
    ("ports without 'port'",
     "ports follow the keyword 'port', e.g. 'to WebServers port 80, 443'",
     (NSG + "100 allow a tcp from any to any 80, 443 ", NSG + "100 allow a tcp from any to any 80-90")),
    ("trailing comma in a list",
     "remove the comma after the last item",
     ("asg a,\n", NSG + "100 allow a tcp from a, to", NSG + "100 allow a tcp from a to b port 1, }",
      NSG + "100 allow a tcp from a to b port 1,\n 110 allow")),
    ("'any' inside a list",
     "'any' and '*' stand alone; a list names addresses, subnets, NICs, VNets or ASGs",
     (NSG + "100 allow a tcp from a, any", NSG + "100 allow a tcp from a, *")),
    ("range with spaces",
     "write an address range without spaces, e.g. 10.0.0.1-10.0.0.9",
     (NSG + "100 allow a tcp from 1.2.3.4 -", "define network a = 1.2.3.4 -")),
    ("missing direction",
     "rules sit inside 'inbound { ... }' or 'outbound { ... }' within the nsg block",
     ("nsg n {\n 100", "nsg n {\n a", "nsg n { inbound 100")),
    ("nsg without a block",
     "an nsg statement is 'nsg NAME { inbound { ... } outbound { ... } }'",
     ("nsg n\n", "nsg n 1", "nsg n nsg")),
    ("unknown statement",
     "a statement starts with subscription, tag, define, asg, vnet, nic, nsg, query or include",
     ("a", "1", "asg a\n b", "}", "vnet v 10.0.0.0/16 {\n}\n}")),
    ("nic without an address",
     "write 'nic NAME in VNET/SUBNET ip ADDRESS|dynamic [asg A, B] [nsg N]' or the block form { ip ... }",
     ("nic n in s\n", "nic n in s asg", "nic n in s nsg", "nic n ip")),
    ("unclosed block",
     "a '{' is not closed: add the missing '}'",
     ("nsg n {", NSG, NSG + "100 allow a tcp from a to b", "vnet v 10.0.0.0/16 {",
      "vnet v 10.0.0.0/16 {\n subnet a 1.0.0.0/8")),
    ("unterminated string",
     'a description is one line in double quotes; write \\" for a quote inside it',
     (NSG + '100 allow a tcp from a to b "x',)),
    ("subnet without a prefix",
     "a subnet is 'subnet NAME PREFIX [nsg NSG]', e.g. 'subnet web 10.0.1.0/24 nsg web-nsg'",
     ("vnet v 10.0.0.0/16 {\n subnet a\n", "vnet v 10.0.0.0/16 {\n subnet a }", "vnet v 10.0.0.0/16 {\n subnet a nsg")),
    ("vnet without an address space",
     "a vnet is 'vnet NAME PREFIX[, PREFIX...] { subnet ... }'",
     ("vnet v {", "vnet v\n")),
    ("query shape",
     "a query is 'can SOURCES reach DESTINATIONS [port PORTS] [PROTOCOL]', e.g. 'can Internet reach web1 port 22 tcp'",
     ("query can a to", "query a", "query can a reach b tcp port", "query can a reach")),
)


def _match_hint(e: UnexpectedInput, start: str) -> str:
    # State-based matching only applies to the `policy` start symbol; query texts get the query hint below.
    p = error_parser()

    def parse_fn(text: str) -> Tree:
        return p.parse(text, start="policy")

    label = None
    if start == "policy" and isinstance(e, (UnexpectedToken, UnexpectedEOF)):
        try:
            label = e.match_examples(parse_fn, {lbl: list(ex) for lbl, _, ex in MISTAKES}, use_accepts=True)
        except Exception:  # pragma: no cover - an example that parses would be a bug in the table
            label = None
    if label is None and start == "policy" and isinstance(e, UnexpectedCharacters):
        label = _match_characters(e, parse_fn)
    return next((hint for lbl, hint, _ in MISTAKES if lbl == label), "")


def _match_characters(e: UnexpectedCharacters, parse_fn) -> str | None:
    # match_examples compares parser states, which UnexpectedCharacters carries too; run it by hand so the
    # comparison includes character errors from the examples.
    for label, _, examples in MISTAKES:
        for bad in examples:
            try:
                parse_fn(bad)
            except UnexpectedInput as ut:
                if ut.state == e.state and isinstance(ut, UnexpectedCharacters):
                    return label
    return None


def _expected_names(e: UnexpectedInput, text: str = "", start: str = "policy") -> set[str]:
    if isinstance(e, UnexpectedToken):
        return set(e.accepts or e.expected)
    if isinstance(e, UnexpectedCharacters):
        # The contextual lexer's `allowed` is every terminal of a merged LALR state, far more than the
        # parser would take here; replaying the text before the error gives the exact set.
        try:
            ip = error_parser().parse_interactive(text[:e.pos_in_stream], start=start)
            ip.exhaust_lexer()
            return set(ip.accepts()) - {"$END"} if text[e.pos_in_stream:].strip() else set(ip.accepts())
        except UnexpectedInput:
            return set(e.allowed or ())
    if isinstance(e, UnexpectedEOF):
        return set(e.expected)
    return set()


def _describe_terminal(name: str) -> tuple[str, str | None]:
    """(words, keyword or None) for a terminal name."""
    if name in TERMINAL_WORDS:
        return TERMINAL_WORDS[name], None
    try:
        term = error_parser().get_terminal(name)
    except KeyError:
        return name.lower(), None
    if term.pattern.type == "str":
        return f"'{term.pattern.value}'", term.pattern.value
    return name.lower(), None


def expected_in_words(names: set[str]) -> tuple[str, list[str]]:
    """"one of 'allow', 'deny'" style text, and the keywords among them (for did-you-mean)."""
    names = set(names)
    if {"NAME", "QUOTED_NAME"} <= names:
        names.discard("QUOTED_NAME")
    if "ADDRESS" in names:
        names.discard("IPV6")
    if "DYNAMIC" in names:
        names.discard("DYNAMIC6")  # 'dynamic' says it; dynamic6 is in the docs
    words, keywords = [], []
    for n in names:
        w, kw = _describe_terminal(n)
        words.append(w)
        if kw:
            keywords.append(kw)
    if "ASG_LINE" in names:
        keywords.append("asg")
    if "NSG_LINE" in names:
        keywords.append("nsg")
    words = sorted(set(words), key=lambda w: (w.startswith("the end"), not w.startswith("'"), w.lower()))
    if len(words) == 1:
        return words[0], keywords
    return "one of " + ", ".join(words), keywords


_WORD = re.compile(r"[A-Za-z0-9_.\-/:*`\"]+|\S")


def _eof_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    # Point after the last non-blank character: that is where the missing text belongs.
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].rstrip()
        if stripped:
            return i + 1, len(stripped) + 1
    return 1, 1


def syntax_diagnostic(e: UnexpectedInput, text: str, filename: str, start: str = "policy") -> Diagnostic:
    """The diagnostic for ``e``, an error raised by :func:`error_parser` on ``text``."""
    names = _expected_names(e, text, start)
    if start == "query":
        names -= {"ASG_LINE", "NSG_LINE"}  # a query is one line: 'asg'/'nsg' are plain keywords there
    expected, keywords = expected_in_words(names)
    if start == "query":
        expected = expected.replace("the end of the file", "the end of the query")
    hint = _match_hint(e, start)
    if start == "query" and not hint:
        hint = next(h for lbl, h, _ in MISTAKES if lbl == "query shape").replace("query ", "", 0)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        line, col = _eof_position(text)
        unclosed = _unclosed_brace(text)
        if unclosed is not None:
            hint = f"the '{{' at line {unclosed[0]} column {unclosed[1]} is not closed: add the missing '}}'"
        return Diagnostic("E102", f"unexpected end of {'query' if start == 'query' else 'file'}: "
                                  f"expected {expected}", Span(filename, line, col, line, col + 1), hint)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        found, line, col = str(tok), tok.line, tok.column
        end_line, end_col = tok.end_line or line, tok.end_column or col + len(found)
        if tok.type in _LINE_START.values() or tok.type in _LINE_START:
            found = tok.value
    else:
        line, col = e.line, e.column
        pos = e.pos_in_stream or 0
        m = _WORD.match(text, pos)
        found = m.group(0) if m else text[pos:pos + 1]
        end_line, end_col = line, col + len(found)
    word = found.strip("`")
    # A near miss of a keyword that fits here is the most specific advice; then the mistakes table.
    if keywords and word.lower() not in KEYWORDS and re.fullmatch(r"[A-Za-z][A-Za-z_.\-]*", word):
        dym = did_you_mean(word.lower(), keywords)
        if dym:
            hint = dym
    if not hint and word.lower() in RESERVED_NAMES and {"NAME", "QUOTED_NAME"} & names:
        hint = f"'{word}' is a keyword; write a name spelled like a keyword in back-quotes: `{word}`"
    shown = found if len(found) <= 40 else found[:37] + "..."
    return Diagnostic("E101", f"unexpected '{shown}': expected {expected}",
                      Span(filename, line, col, end_line, end_col), hint)


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    """(line, column) of the innermost '{' left open at the end, skipping comments, strings, `names`."""
    stack: list[tuple[int, int]] = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        quote = None  # strings and quoted names end at the end of their line at the latest
        i = 0
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch == "#":
                break
            elif ch in "\"`":
                quote = ch
            elif ch == "{":
                stack.append((line_no, i + 1))
            elif ch == "}" and stack:
                stack.pop()
            i += 1
    return stack[-1] if stack else None


def token_span(tok: Token, filename: str) -> Span:
    line, col = tok.line or 0, tok.column or 0  # Lark's own tokens always carry them
    return Span(filename, line, col, tok.end_line or line, tok.end_column or col + len(tok))


def meta_span(meta, filename: str) -> Span:
    if getattr(meta, "empty", True):
        return Span(filename, 0, 0)
    return Span(filename, meta.line, meta.column, meta.end_line, meta.end_column)
