"""The canonical text of a :class:`~nsgsolve.model.Policy`, and ``nsgsolve fmt``.

One printer serves both ``nsgsolve fmt`` (DSL in, DSL out) and ``nsgsolve import`` (ARM/az JSON in, DSL
out), so anything an importer can put in the model must print as text that parses back to the same model:

* a bare name is printed bare only when :class:`~nsgsolve.lang.build.NameTable` would read it back as the same
  kind; otherwise with its kind (``asg X``, ``tag X``);
* names that are not plain identifiers, or are spelled like keywords, are back-quoted;
* ``Rule.notes`` and ``Policy.notes`` (an importer's approximations) become ``#`` comments.

:func:`format_text` keeps the user's comments. A comment is attached by line: an own-line comment to the
next statement, rule, block item or closing brace below it; a trailing comment to the statement that
starts on (or spans) its line. Printing then carries each comment with its anchor, so sorting rules by
priority moves their comments with them, and formatting twice gives the same text.
"""

from __future__ import annotations

import dataclasses
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from nsgsolve.semantics.addresses import int_to_ip
from nsgsolve.lang.names import RESERVED_NAMES, NameTable
from nsgsolve.model import (
    AdminConfig, AdminRule,
    Assertion,
    NOSPAN, AddrItem, AnyAddress, AsgSide, Cidr, Direction, Endpoint, IpConfig, IpRange, NetworkRef,
    Nic, NicAddr, Nsg, Policy, PortRange, PortSpec, PortsRef, PrefixSide, Protocol, Query, Rule, RuleSide,
    Span, SubnetAddr, SubnetRef, TagSide, VNet, VnetAddr,
)

if TYPE_CHECKING:  # fmt's parts import Lark and the grammar: imported where fmt runs, not by `import`/`show`
    from lark import Tree

    from nsgsolve.lang import syntax

INDENT = "  "
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# Columns wider than these are not padded: one long name should not push every other rule to the right.
_MAX_PAD = {"name": 40, "src": 48}


def quote_name(name: str) -> str:
    """A name as it must be written: bare when it is a plain identifier and no keyword, else `quoted`."""
    if _PLAIN_NAME.fullmatch(name) and name.lower() not in RESERVED_NAMES:
        return name
    if not name or "`" in name or "\n" in name:
        raise ValueError(f"the name {name!r} cannot be written in the policy language "
                         "(names may not be empty or contain back-quotes or line breaks)")
    return f"`{name}`"


def escape(text: str) -> str:
    """A description as a STRING literal; :func:`nsgsolve.lang.build.unescape` is the inverse."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def _ip(v: int) -> str:
    return int_to_ip(v)


# (network, length) -> text: the prefixes of a large policy repeat across its rules, and `import` and `show`
# write every one of them. Bounded, for a long-running caller.
_CIDR_TEXTS: dict[tuple[int, int], str] = {}


def cidr_text(c: Cidr) -> str:
    key = (c.network, c.length)
    t = _CIDR_TEXTS.get(key)
    if t is None:
        t = _ip(c.network) if c.length == (128 if c.is_v6 else 32) else f"{_ip(c.network)}/{c.length}"
        if len(_CIDR_TEXTS) < 100_000:
            _CIDR_TEXTS[key] = t
    return t


@dataclass(frozen=True)
class _Line:
    depth: int
    text: str
    key: int | None = None  # the source line this printed line stands for (comment anchoring)


class _Printer:
    def __init__(self, policy: Policy, source_order: bool = False,
                 anchors: dict[tuple, tuple[int, int]] | None = None):
        self.p = policy
        self.names = NameTable.from_policy(policy)
        self.source_order = source_order
        # Source lines of things the model has no span for: direction blocks, the subscription statement.
        self.anchors = anchors or {}

    def _key(self, span: Span) -> int | None:
        """The source line a printed line stands for, which only ``fmt`` reads (to keep comments in place):
        a span of an imported file may not know its line yet, and looking 2,000 rules up costs."""
        return _key(span) if self.source_order else None

    def _end_key(self, span: Span) -> int | None:
        return _end_key(span) if self.source_order else None

    # ------------------------------------------------------------ items

    def ref_as(self, kind: str, name: str) -> str:
        """A name of known kind: bare when a reader would take it for that kind, else with the kind."""
        if self.names.bare_kind(name) == kind:
            return quote_name(name)
        return f"{kind} {quote_name(name)}"

    def subnet_ref(self, s: SubnetRef) -> str:
        if not s.vnet:  # unknown subnet written bare (validation reported it); keep what was written
            return quote_name(s.subnet)
        return f"{quote_name(s.vnet)}/{quote_name(s.subnet)}"

    def addr_item(self, it: AddrItem) -> str:
        if isinstance(it, Cidr):
            return cidr_text(it)
        if isinstance(it, IpRange):
            return f"{_ip(it.lo)}-{_ip(it.hi)}"
        if isinstance(it, NicAddr):
            return self.ref_as("nic", it.nic.name)
        if isinstance(it, SubnetAddr):
            text = self.subnet_ref(it.subnet)
            return text if it.subnet.vnet or self.names.bare_kind(it.subnet.subnet) == "subnet" else f"subnet {text}"
        if isinstance(it, VnetAddr):
            return self.ref_as("vnet", it.vnet.name)
        if isinstance(it, NetworkRef):
            return quote_name(it.define.name)
        raise TypeError(f"unexpected address item {it!r}")

    def addr_items(self, items: Iterable[AddrItem], notes: list[str], where: str) -> list[str]:
        return [self.addr_item(it) for it in items]

    def side(self, side: RuleSide, notes: list[str], where: str) -> str | None:
        if isinstance(side, AnyAddress):
            return "any"
        if isinstance(side, TagSide):
            return self.ref_as("tag", side.tag.name)
        if isinstance(side, AsgSide):
            return ", ".join(self.ref_as("asg", a.name) for a in side.asgs)
        if isinstance(side, PrefixSide):
            items = self.addr_items(side.items, notes, where)
            return ", ".join(items) if items else None
        raise TypeError(f"unexpected rule side {side!r}")

    @staticmethod
    def port_items(items: Iterable) -> str:
        out = []
        for it in items:
            if isinstance(it, PortRange):
                out.append(str(it.lo) if it.lo == it.hi else f"{it.lo}-{it.hi}")
            elif isinstance(it, PortsRef):
                out.append(quote_name(it.define.name))
            else:
                raise TypeError(f"unexpected port item {it!r}")
        return ", ".join(out)

    def ports(self, spec: PortSpec) -> str:
        return "" if spec.is_any else " port " + self.port_items(spec.items or ())

    def endpoint(self, ep: Endpoint) -> str:
        if isinstance(ep, (AnyAddress, TagSide, AsgSide)):
            return self.side(ep, [], "")  # type: ignore[return-value]
        return self.addr_item(ep)

    # ------------------------------------------------------------ statements

    def query(self, q: Query) -> str:
        text = (f"query can {', '.join(self.endpoint(e) for e in q.sources)} reach "
                f"{', '.join(self.endpoint(e) for e in q.destinations)}{self.ports(q.ports)}")
        return text if q.protocol is Protocol.ANY else f"{text} {q.protocol.value.lower()}"

    def assertion(self, a: Assertion) -> str:
        """``assert [NAME:] KIND SRC -> DST [port P] [PROTO] [except ...]* ["message"]`` (docs/contracts.md)."""
        def eps(es) -> str:
            return ", ".join(self.endpoint(e) for e in es)

        def tail(ports: PortSpec, proto: Protocol) -> str:
            return self.ports(ports) + ("" if proto is Protocol.ANY else f" {proto.value.lower()}")

        # An explicit name was one ASSERT_NAME token, so it prints back as it was written (no quoting).
        text = "assert " + (f"{a.name}: " if a.explicit_name else "") + a.kind.value
        if a.traffic is not None:
            q = a.traffic
            text += f" {eps(q.sources)} -> {eps(q.destinations)}{tail(q.ports, q.protocol)}"
        for x in a.excepts:
            text += " except"
            text += f" from {eps(x.sources)}" if x.sources is not None else ""
            text += f" to {eps(x.destinations)}" if x.destinations is not None else ""
            text += tail(x.ports, x.protocol)
        return text + (f" {escape(a.message)}" if a.message else "")

    def vnet(self, v: VNet) -> list[_Line]:
        head = f"vnet {quote_name(v.name)} {', '.join(cidr_text(c) for c in v.address_spaces)}"
        body: list[_Line] = []
        for s in v.subnets:
            nsg = f" nsg {quote_name(s.nsg.name)}" if s.nsg else ""
            shown = ", ".join(cidr_text(c) for c in s.prefixes)
            body.append(_Line(1, f"subnet {quote_name(s.name)} {shown}{nsg}", self._key(s.span)))
        for peer in v.peerings:
            body.append(_Line(1, f"peer {quote_name(peer.name)}", self._key(peer.span)))
        for c in v.onprem:
            body.append(_Line(1, f"onprem {cidr_text(c)}", self._key(c.span)))
        if not body:
            return [_Line(0, head, self._key(v.span))]
        return [_Line(0, head + " {", self._key(v.span)), *body, _Line(0, "}", self._end_key(v.span))]

    @staticmethod
    def ipconfig_text(ipc: IpConfig) -> str:
        text = "ip " + (_ip(ipc.ip) if ipc.ip is not None else "dynamic6" if ipc.v6 else "dynamic")
        if ipc.asgs:
            text += " asg " + ", ".join(quote_name(a.name) for a in ipc.asgs)
        return f"ipconfig {quote_name(ipc.name)} {text}" if ipc.name else text

    def nic(self, n: Nic) -> list[_Line]:
        head = f"nic {quote_name(n.name)} in {self.subnet_ref(n.subnet)}"
        if len(n.ip_configs) == 1 and not n.ip_configs[0].name:
            nsg = f" nsg {quote_name(n.nsg.name)}" if n.nsg else ""
            return [_Line(0, f"{head} {self.ipconfig_text(n.ip_configs[0])}{nsg}", self._key(n.span))]
        body = [_Line(1, self.ipconfig_text(c), self._key(c.span)) for c in n.ip_configs]
        if n.nsg:
            body.append(_Line(1, f"nsg {quote_name(n.nsg.name)}", self._key(n.nsg.span)))
        return [_Line(0, head + " {", self._key(n.span)), *body, _Line(0, "}", self._end_key(n.span))]

    def nsg(self, nsg: Nsg) -> list[_Line]:
        out = [_Line(0, f"nsg {quote_name(nsg.name)} {{", self._key(nsg.span))]
        for d in (Direction.INBOUND, Direction.OUTBOUND):
            rules = sorted((r for r in nsg.rules if r.direction is d), key=lambda r: r.priority)
            if not rules:
                continue
            # Only fmt has anchors; reading an imported NSG's line would locate it in its file for nothing.
            head, close = self.anchors.get(("dir", nsg.span.line, nsg.span.column, d), (None, None)) \
                if self.anchors else (None, None)
            out.append(_Line(1, d.value.lower() + " {", head))
            out += self.rules(rules)
            out.append(_Line(1, "}", close))
        out.append(_Line(0, "}", self._end_key(nsg.span)))
        if len(out) == 2:  # no rules: one line
            return [_Line(0, f"nsg {quote_name(nsg.name)} {{}}", self._key(nsg.span))]
        return out

    def rules(self, rules: list[Rule]) -> list[_Line]:
        rows = []
        for r in rules:
            notes = list(r.notes)
            if isinstance(r, AdminRule):
                src = self.admin_side(r.sources, notes, "the source")
                dst = self.admin_side(r.destinations, notes, "the destination")
            else:
                src = self.side(r.source, notes, "the source")
                dst = self.side(r.destination, notes, "the destination")
            cols = None
            if src is not None and dst is not None:
                cols = [str(r.priority), r.access.value.lower(), quote_name(r.name),
                        "any" if r.protocol is Protocol.ANY else r.protocol.value.lower(),
                        f"from {src}{self.ports(r.source_ports)}", f"to {dst}{self.ports(r.destination_ports)}"]
                if r.description:
                    cols.append(escape(r.description))
            rows.append((r, notes, cols))
        widths = [0] * 5
        for _, _, cols in rows:
            if cols:
                for i in range(5):
                    widths[i] = max(widths[i], len(cols[i]))
        widths[2] = min(widths[2], _MAX_PAD["name"])
        widths[4] = min(widths[4], _MAX_PAD["src"])
        out = []
        for r, notes, cols in rows:
            key = self._key(r.span)
            for n in notes:
                out.append(_Line(2, f"# {n}", key))
            if cols is None:
                # A side with no address (an import that kept none): the rule matches nothing; say so
                # rather than drop it silently.
                out.append(_Line(2, f"# rule {r.name} (priority {r.priority}) left out: a side lists no address",
                                 key))
                continue
            padded = [c.ljust(widths[i]) if i < 5 else c for i, c in enumerate(cols[:-1])] + [cols[-1]]
            out.append(_Line(2, " ".join(padded).rstrip(), key))
        return out

    def admin_side(self, sides: tuple[RuleSide, ...], notes: list[str], where: str) -> str | None:
        if not sides:
            return "any"
        parts = [self.side(x, notes, where) for x in sides]
        kept = [x for x in parts if x is not None]
        return ", ".join(kept) if kept else None

    def admin_config(self, c: AdminConfig) -> list[_Line]:
        out = [_Line(0, f"admin {quote_name(c.name)} {{", self._key(c.span))]
        for rc in c.collections:
            groups = ", ".join(quote_name(g.name) for g in rc.groups)
            out.append(_Line(1, f"collection {quote_name(rc.name)} for {groups} {{", self._key(rc.span)))
            for d in (Direction.INBOUND, Direction.OUTBOUND):
                rules = sorted((r for r in rc.rules if r.direction is d), key=lambda r: r.priority)
                if rules:
                    out.append(_Line(2, d.value.lower() + " {"))
                    out += [_Line(ln.depth + 1, ln.text, ln.key) for ln in self.rules(rules)]  # type: ignore[arg-type]
                    out.append(_Line(2, "}"))
            out.append(_Line(1, "}", self._end_key(rc.span)))
        out.append(_Line(0, "}", self._end_key(c.span)))
        return out

    def statements(self) -> list[tuple[tuple, str, list[_Line]]]:
        """(sort key, kind, lines) of every top-level statement."""
        p = self.p
        out: list[tuple[tuple, str, list[_Line]]] = []

        def add(kind: str, span: Span, lines: list[_Line]) -> None:
            order = (span.line, span.column) if self.source_order else (len(out),)
            out.append((order, kind, lines))

        if p.subscription is not None:
            line = self.anchors.get(("subscription",), (None, None))[0]
            add("subscription", Span("", line or 0, 0), [_Line(0, f"subscription {p.subscription.value}", line)])
        for prm in p.params:
            values = f" in {', '.join(escape(v) for v in prm.allowed)}" if prm.allowed else ""
            add("param", prm.span, [_Line(0, f"param {quote_name(prm.name)}{values}", self._key(prm.span))])
        for t in p.tags:
            notes: list[str] = []
            items = self.addr_items(t.items, notes, f"tag {t.name}")
            lines = [_Line(0, f"# {n}", self._key(t.span)) for n in notes]
            if items:
                lines.append(_Line(0, f"tag {quote_name(t.name)} = {', '.join(items)}", self._key(t.span)))
            add("tag", t.span, lines)
        for d in p.networks:
            notes = []
            items = self.addr_items(d.items, notes, f"network {d.name}")
            lines = [_Line(0, f"# {n}", self._key(d.span)) for n in notes]
            if items:
                lines.append(_Line(0, f"define network {quote_name(d.name)} = {', '.join(items)}", self._key(d.span)))
            else:
                lines.append(_Line(0, f"# define network {d.name} left out: it lists no address", self._key(d.span)))
            add("define", d.span, lines)
        for pd in p.ports:
            add("define", pd.span, [_Line(0, f"define ports {quote_name(pd.name)} = {self.port_items(pd.items)}",
                                          self._key(pd.span))])
        for a in p.asgs:
            add("asg", a.span, [_Line(0, f"asg {quote_name(a.name)}", self._key(a.span))])
        for v in p.vnets:
            add("vnet", v.span, self.vnet(v))
        for n in p.nics:
            add("nic", n.span, self.nic(n))
        for nsg in p.nsgs:
            add("nsg", nsg.span, self.nsg(nsg))
        for g in p.groups:
            members = ", ".join(quote_name(m.name) for m in g.members)
            add("group", g.span, [_Line(0, f"group {quote_name(g.name)} = {members}".rstrip(), self._key(g.span))])
        for c in p.admin_configs:
            add("admin", c.span, self.admin_config(c))
        for q in p.queries:
            add("query", q.span, [_Line(0, self.query(q), self._key(q.span))])
        for a in p.assertions:
            add("assert", a.span, [_Line(0, self.assertion(a), self._key(a.span))])
        out.sort(key=lambda s: s[0])
        return out

    def lines(self) -> list[_Line]:
        out = [_Line(0, f"# {n}") for n in self.p.notes]
        if out:
            out.append(_Line(0, ""))
        prev_kind, prev_multi = None, False
        for _, kind, lines in self.statements():
            multi = len(lines) > 1 and any(ln.text.endswith("{") for ln in lines)
            if prev_kind is not None and (kind != prev_kind or multi or prev_multi):
                out.append(_Line(0, ""))
            out += lines
            prev_kind, prev_multi = kind, multi
        return out


class PolicyText:
    """How the language writes parts of one policy, for renderers elsewhere (``nsgsolve show``).

    The public face of the printer: a rule side or a query exactly as ``fmt`` would print it, names
    quoted or kind-prefixed as a reader of this policy needs them."""

    def __init__(self, policy: Policy):
        self._printer = _Printer(policy)

    def side(self, side: RuleSide) -> str | None:
        """A rule's source or destination; None for a side with no address."""
        return self._printer.side(side, [], "")

    def admin_side(self, sides: tuple[RuleSide, ...]) -> str | None:
        """An admin rule's sources or destinations (``any``, or prefixes and tags in one list)."""
        return self._printer.admin_side(sides, [], "")

    def query(self, q: Query) -> str:
        """``query can SOURCES reach DESTINATIONS ...`` as the policy would state it."""
        return self._printer.query(q)


def _key(span: Span) -> int | None:
    return span.line or None


def _end_key(span: Span) -> int | None:
    return span.end_line or None


def _render(lines: list[_Line]) -> str:
    return "".join((INDENT * ln.depth + ln.text).rstrip() + "\n" for ln in lines)


def print_policy(policy: Policy) -> str:
    """Canonical text of ``policy``: statements grouped by kind, rules by direction in priority order."""
    return _render(_Printer(policy).lines())


# ---------------------------------------------------------------- nsgsolve fmt


def _tree_anchors(tree: Tree) -> dict[tuple, tuple[int, int]]:
    """Source lines of constructs without a model span: direction blocks and the subscription."""
    from lark import Token

    out: dict[tuple, tuple[int, int]] = {}
    for st in tree.children:
        if st.data == "subscription":
            out.setdefault(("subscription",), (st.meta.line, st.meta.end_line))
        elif st.data == "nsg":
            for block in st.children[2:]:
                head = block.children[0]
                assert isinstance(head, Token)  # the grammar's INBOUND | OUTBOUND
                d = Direction.INBOUND if head.type == "INBOUND" else Direction.OUTBOUND
                key = ("dir", st.meta.line, st.meta.column, d)
                first = out.get(key)
                out[key] = (first[0] if first else block.meta.line, block.meta.end_line)
    return out


def format_text(text: str, filename: str) -> str:
    """``nsgsolve fmt``: the canonical text of a policy file, with the user's comments kept.

    Statements keep their order in the file; inside them the layout is canonical. A file that does not
    build (syntax errors, names that cannot be resolved) raises :class:`~nsgsolve.errors.InputError`:
    formatting it could lose what the user wrote.
    """
    from nsgsolve.lang import syntax
    from nsgsolve.lang.build import build_tree

    tree, comments = syntax.parse_with_comments(text, filename)
    policy, bag, _ = build_tree(tree, text, filename)
    bag.raise_if_errors()
    lines = _Printer(policy, source_order=True, anchors=_tree_anchors(tree)).lines()
    return _render(_place_comments(lines, comments, text.split("\n")))


def _place_comments(lines: list[_Line], comments: list[syntax.Comment], source: list[str]) -> list[_Line]:
    def blank(line_no: int) -> bool:  # 1-based source line
        return 1 <= line_no <= len(source) and not source[line_no - 1].strip()

    keyed = sorted((ln.key, i) for i, ln in enumerate(lines) if ln.key is not None)
    keys = [k for k, _ in keyed]
    before: dict[int, list[syntax.Comment]] = {}
    after: dict[int, list[str]] = {}
    tail: list[str] = []
    for c in comments:
        if c.own_line:
            j = bisect_right(keys, c.line)  # the first anchor below the comment
            if j < len(keyed):
                before.setdefault(keyed[j][1], []).append(c)
            else:
                tail.append(c.text)
        else:
            j = bisect_right(keys, c.line) - 1  # the anchor whose statement the comment ends a line of
            if j < 0:
                before.setdefault(keyed[0][1] if keyed else -1, []).append(c)
                continue
            first = bisect_left(keys, keys[j])  # several printed lines may stand for one source line
            after.setdefault(keyed[first][1], []).append(c.text)
    out: list[_Line] = []
    for i, ln in enumerate(lines):
        # Blank lines around comment blocks are the user's paragraphs (a file header, a section title):
        # keep one where the source had any.
        for c in before.get(i, ()):
            if blank(c.line - 1) and out and out[-1].text:
                out.append(_Line(0, ""))
            # A comment above a closing brace belongs to the block's contents, one level in.
            out.append(_Line(ln.depth + 1 if ln.text == "}" else ln.depth, c.text))
            if blank(c.line + 1) and ln.text:
                out.append(_Line(0, ""))
        if i in after:
            out.append(dataclasses.replace(ln, text=f"{ln.text}  {' '.join(after[i])}"))
        else:
            out.append(ln)
    tail = [c.text for c in before.get(-1, [])] + tail
    if tail:
        if out:
            out.append(_Line(0, ""))
        out += [_Line(0, t) for t in tail]
    return out


# ---------------------------------------------------------------- comparing models


def without_spans(obj, drop_query_text: bool = True):
    """``obj`` with every span set to NOSPAN (and, by default, query texts blanked): two models that mean
    the same compare equal, however they were laid out."""
    if isinstance(obj, Span):
        return NOSPAN
    if isinstance(obj, tuple):
        return tuple(without_spans(x, drop_query_text) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if f.name == "span":
                changes[f.name] = NOSPAN
            elif f.name == "text" and isinstance(obj, Query) and drop_query_text:
                changes[f.name] = ""
            elif isinstance(v, (tuple, Span)) or dataclasses.is_dataclass(v):
                changes[f.name] = without_spans(v, drop_query_text)
        return dataclasses.replace(obj, **changes) if changes else obj
    return obj


__all__ = ["print_policy", "format_text", "quote_name", "escape", "without_spans", "cidr_text"]
