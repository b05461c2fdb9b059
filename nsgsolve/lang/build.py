"""Parse tree → :class:`~nsgsolve.model.Policy` (and query text → :class:`~nsgsolve.model.Query`).

The builder decides what the user *meant* by every name and literal, with a span on everything written:

* a bare name becomes a network define, an ASG, a NIC, a subnet, a VNet, or otherwise a service tag
  (:class:`NameTable`); two kinds with one name, or an unknown name close to a declared one, is an error
  rather than a guess;
* addresses are checked here (malformed, host bits set, IPv6), because the model holds integers;
* the shape of a rule side (one tag alone; ASGs or addresses, not both) is decided here, because the
  model cannot even represent the mistakes.

Everything that can be checked on a finished model (references, limits, topology) is in
:mod:`nsgsolve.validate`, which the ARM/az importers share. All errors of a file are collected and raised
once as :class:`~nsgsolve.errors.InputError`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from nsgsolve.lang import syntax  # before lark: syntax imports it without its optional packages
from lark import Token, Tree
from nsgsolve.lang.names import NameTable
from nsgsolve.errors import Diagnostic, DiagnosticBag, did_you_mean
from nsgsolve.gcpause import gc_paused
from nsgsolve.limits import decimal
from nsgsolve.model import (
    AssertExcept, Assertion, AssertionKind, assertion_name, claim_text,
    AddrItem, AnyAddress, Asg, AsgSide, Access, Cidr, Direction, Endpoint, IpConfig, IpRange,
    NetworkDefine, NetworkRef, Nic, NicAddr, Nsg, Policy, PortItem, PortRange, PortSpec, PortsDefine, PortsRef,
    PrefixSide, Protocol, Query, Ref, Rule, RuleSide, Span, Subnet, SubnetAddr, SubnetRef, Subscription, TagDecl,
    TagSide, VNet, VnetAddr, AdminConfig, AdminRule, NetworkGroup, ParamDecl, RuleCollection,
)
from nsgsolve.semantics.servicetags import canonical_builtin
from nsgsolve.semantics.addresses import V6_BASE, ip_to_int, is_v6, parse_ipv6_cidr

# ---------------------------------------------------------------- names


# Kinds a bare name can have, in the order messages list them.
KIND_WORDS = {"network": "network define", "asg": "ASG", "nic": "NIC", "subnet": "subnet", "vnet": "VNet",
              "tag": "declared service tag"}
# How to write each kind explicitly (a network define has no explicit form: its name is its only use).
EXPLICIT = {"asg": "asg", "nic": "nic", "subnet": "subnet", "vnet": "vnet", "tag": "tag"}


# ---------------------------------------------------------------- literal values

# Exactly what ipaddress.IPv4Address accepts (ASCII digits, 0-255, no leading zeros), in one regex: the
# ipaddress module took a third of building a policy with thousands of prefixes.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
IPV4 = re.compile(r"\.".join([_OCTET] * 4))
# The common case of an address item, a valid a.b.c.d or a.b.c.d/len; anything else takes the slow path,
# which explains what is wrong.
_CIDR = re.compile(IPV4.pattern + r"(?:/([0-9]{1,2}))?")


def _ip(text: str) -> int | None:
    m = IPV4.fullmatch(text)
    if m is None:
        return None
    a, b, c, d = m.groups()
    return decimal(a) << 24 | decimal(b) << 16 | decimal(c) << 8 | decimal(d)


_RUN_ITEM = re.compile(r"[^ \t,]+")
# The words of a RULE_LINE token: a description, or a run of anything but blanks and commas (a back-quoted
# name may hold both), and a VNET/SUBNET path of such names.
_RULE_WORD = re.compile(r'"(?:\\.|[^"\\\n])*"|(?:`[^`\n]+`|[^ \t,`"]+)+')
# The same words when the line has no back-quoted name and no description.
_PLAIN_WORD = re.compile(r"[^ \t,]+")
_PATH = re.compile(r"(`[^`\n]+`|[^/`]+)(?:/(`[^`\n]+`|[^/`]+))?")
_PORT_ITEM = re.compile(r"(\d+)(?:[ \t]*-[ \t]*(\d+))?")


def _explain_ip(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 4:
        return f"'{text}' is not an IPv4 address: it has {len(parts)} numbers, an IPv4 address has 4 (a.b.c.d)"
    bad = next(
        (p for p in parts if not p.isdigit() or decimal(p) > 255 or (len(p) > 1 and p.startswith("0"))), parts[0]
    )
    return f"'{text}' is not an IPv4 address: {bad} is not a number from 0 to 255"


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def unescape(literal: str) -> str:
    """A STRING token (with its quotes) → its text; the printer's :func:`escape` is the inverse."""
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


# ---------------------------------------------------------------- the builder


def _unquote(name: str) -> str:
    """A NAME or QUOTED_NAME token's text → the name."""
    return name[1:-1] if name.startswith("`") else name


def _tok(node: Tree | Token) -> Token:
    """A child the grammar makes a token (Lark types every child as token-or-tree)."""
    assert isinstance(node, Token), node
    return node


@dataclass(frozen=True)
class _SideSource:
    """A rule side before it is built: its span, and its items to build (None: any)."""

    span: Span
    items: Callable[[], tuple[list[_Item], bool]] | None


class _Item(NamedTuple):
    """One endpoint item, before it becomes part of a rule side, a define or a query. (A tuple: a large
    policy makes tens of thousands, and a frozen dataclass costs several times as much to make.)"""

    kind: str  # cidr | range | asg | nic | subnet | vnet | tag | network
    value: object  # Cidr | IpRange | Ref | SubnetRef
    span: Span


# Items whose value is already the address item of the model (addr_item returns it as it is).
_PREFIX_KINDS = frozenset(("cidr", "range"))


class _Builder:
    def __init__(self, text: str, filename: str, names: NameTable | None = None):
        self.text = text
        self.file = filename
        self.bag = DiagnosticBag()
        self.names = names or NameTable()
        # Objects whose own definition had an error: validation must not pile consequences on them.
        self.poisoned: set[str] = set()
        # Spans of unquoted reserved words used as names (E103): reported once, not again as a tag.
        self.reserved_misuse: set[Span] = set()
        # Valid IPv4 addresses and prefixes met so far, as (address, length): a policy repeats many.
        self.prefixes: dict[str, tuple[int, int]] = {}

    # -- spans and names
    def span(self, node: Tree | Token) -> Span:
        if isinstance(node, Token):
            return syntax.token_span(node, self.file)
        return syntax.meta_span(node.meta, self.file)

    def name(self, node: Tree) -> tuple[str, Span]:
        tok = _tok(node.children[0])
        sp = self.span(tok)
        if tok.type == "QUOTED_NAME":
            return tok.value[1:-1], sp
        if tok.value.lower() in syntax.RESERVED_NAMES:
            hint = f"write `{tok.value}` to use it as a name"
            if tok.value.lower() == "any":
                hint = "'any' and '*' stand alone, never inside a list; " + hint
            self.bag.error("E103", f"'{tok.value}' is a keyword, not a name", sp, hint)
            self.reserved_misuse.add(sp)
        return tok.value, sp

    def ref(self, node: Tree) -> Ref:
        n, sp = self.name(node)
        return Ref(n, sp)

    # -- pass 1: what names exist (declarations may follow their uses)
    def collect(self, tree: Tree) -> None:
        t = self.names
        for st in tree.children:
            if not isinstance(st, Tree):
                continue
            kind = st.data
            if kind == "asg_decl":
                t.asgs.update(self._plain(n) for n in st.children if isinstance(n, Tree))
            elif kind == "vnet":
                vname = self._plain(st.children[0])
                t.vnets.add(vname)
                for item in st.children[2:]:
                    if isinstance(item, Tree) and item.data == "subnet":
                        t.add_subnet(vname, self._plain(item.children[0]))
            elif kind == "nic":
                t.nics.add(self._plain(st.children[0]))
            elif kind == "define_network":
                t.networks.add(self._plain(st.children[0]))
            elif kind == "define_ports":
                t.port_lists.add(self._plain(st.children[0]))
            elif kind == "tag_decl":
                n = self._plain(st.children[0])
                t.tags.setdefault(n.lower(), n)

    @staticmethod
    def _plain(name_node: Tree) -> str:
        v = _tok(name_node.children[0]).value
        return v[1:-1] if v.startswith("`") else v

    # -- pass 2: the model
    def policy(self, tree: Tree) -> Policy:
        self.collect(tree)
        vnets, nics, asgs, nsgs, tags, networks, ports, queries = [], [], [], [], [], [], [], []
        subscription: Subscription | None = None
        subscription_span: Span | None = None
        assertions: list[Assertion] = []
        groups: list[NetworkGroup] = []
        admin_configs: list[AdminConfig] = []
        params: list[ParamDecl] = []
        for st in tree.children:
            kind = st.data
            if kind == "asg_decl":
                asgs += [Asg(n, sp) for n, sp in (self.name(c) for c in st.children if isinstance(c, Tree))]
            elif kind == "vnet":
                vnets.append(self.vnet(st))
            elif kind == "nic":
                nic = self.nic(st)
                if nic is not None:
                    nics.append(nic)
            elif kind == "nsg":
                nsgs.append(self.nsg(st))
            elif kind == "tag_decl":
                tags.append(self.tag_decl(st))
            elif kind == "define_network":
                networks.append(self.define_network(st))
            elif kind == "define_ports":
                ports.append(self.define_ports(st))
            elif kind == "query_stmt":
                q = self.query(st.children[0])
                if q is not None:
                    queries.append(q)
            elif kind == "subscription":
                value, sp = self.name(st.children[0])
                if subscription_span is not None:
                    self.bag.error("E210", "the subscription type is given twice", self.span(st),
                                   f"keep one 'subscription' statement (the first is at {subscription_span})")
                    continue
                subscription_span = sp
                subscription = self.subscription(value, sp)
            elif kind == "assert_stmt":
                a = self.assertion(st)
                if a is not None:
                    assertions.append(a)
            elif kind == "network_group":
                name, _ = self.name(st.children[0])
                members = st.children[1].children if len(st.children) > 1 else []
                groups.append(NetworkGroup(name, tuple(self.ref(n) for n in members), self.span(st)))
            elif kind == "admin_config":
                admin_configs.append(self.admin_config(st))
            elif kind == "param_decl":
                pname, psp = self.name(st.children[0])
                values = tuple(unescape(c.value) for c in st.children[1:] if isinstance(c, Token))
                if any(d.name == pname for d in params):
                    self.bag.error("E307", f"parameter '{pname}' is declared twice", psp, "keep one 'param' statement")
                params.append(ParamDecl(pname, values, psp))
            elif kind == "include":
                self.bag.error("E103", "'include' is not supported yet", self.span(st),
                               "put the statements of the included file in this file")
            else:  # pragma: no cover - the grammar has no other statement
                raise AssertionError(kind)
        return Policy(tuple(vnets), tuple(nics), tuple(asgs), tuple(nsgs), tuple(tags), tuple(networks),
                      tuple(ports), subscription, tuple(queries), assertions=tuple(assertions), source=self.file,
                      groups=tuple(groups), admin_configs=tuple(admin_configs), params=tuple(params))

    def subscription(self, value: str, sp: Span) -> Subscription | None:
        for s in Subscription:
            if s.value == value.lower():
                return s
        values = [s.value for s in Subscription]
        hint = did_you_mean(value.lower(), values) or "one of " + ", ".join(values)
        self.bag.error("E412", f"unknown subscription type '{value}'", sp, hint)
        return None

    # -- addresses
    def address(self, tok: Token) -> _Item | None:
        """An ADDRESS or IPV6 token → a cidr or range item; errors (E404, E405, E420-E422) are reported here."""
        sp = self.span(tok)
        text = tok.value
        if tok.type == "IPV6":
            return self.address_v6(text, sp)
        return self.address_text(text, sp)

    def address_v6(self, text: str, sp: Span) -> _Item | None:
        """An IPv6 address, prefix or FIRST-LAST range (in the integer space both families share)."""
        if "-" in text:
            lo_t, _, hi_t = text.partition("-")
            if "/" in text:
                self.bag.error("E420", f"'{text}' mixes a range and a prefix length", sp,
                               "write a range as FIRST-LAST (2001:db8::1-2001:db8::9) or a prefix as 2001:db8::/64")
                return None
            try:
                lo, hi = ip_to_int(lo_t), ip_to_int(hi_t)
            except ValueError as e:
                self.bag.error("E420", f"'{text}' is not an IPv6 range: {e}", sp,
                               "a range is FIRST-LAST, e.g. 2001:db8::1-2001:db8::9")
                return None
            if is_v6(lo) != is_v6(hi):
                self.bag.error("E422", f"range '{text}' mixes IPv4 and IPv6", sp,
                               "a range lies in one family: write two items, one per family")
                return None
            return self.range_item(text, lo, hi, lo_t, hi_t, sp)
        try:
            ip, length = parse_ipv6_cidr(text)
        except ValueError as e:
            self.bag.error("E420", f"'{text}' is not an IPv6 address or prefix: {e}", sp,
                           "write an IPv6 address as 2001:db8::4 or a prefix as 2001:db8::/64")
            return None
        host = (1 << (128 - length)) - 1
        if ip & host:
            net = ipaddress.IPv6Network((ip - V6_BASE, 128)).supernet(new_prefix=length)
            self.bag.error("E421", f"'{text}' has host bits set", sp,
                           f"did you mean {net}? (or {text.partition('/')[0]} alone, for the single address)")
            return None
        return _Item("cidr", Cidr(ip, length, sp), sp)

    def range_item(self, text: str, lo: int, hi: int, lo_t: str, hi_t: str, sp: Span) -> _Item | None:
        """FIRST-LAST of either family, once both ends are read: E404 when written the wrong way round."""
        if lo > hi:
            self.bag.error("E404", f"range '{text}' is reversed: {lo_t} comes after {hi_t}", sp, f"write {hi_t}-{lo_t}")
            return None
        return _Item("range", IpRange(lo, hi, sp), sp)

    def address_run(self, tok: Token) -> list[_Item | None]:
        """An ADDRESSES token (addresses and commas on one line) → one item (or None) per address, each
        with the span it would have had as an ADDRESS token of its own."""
        sp = syntax.token_span(tok, self.file)
        file, line, col = self.file, sp.line, sp.column
        on_line = Span.on_line
        return [self.address_text(m.group(), on_line(file, line, col + m.start(), col + m.end()))
                for m in _RUN_ITEM.finditer(tok.value)]

    def address_text(self, text: str, sp: Span) -> _Item | None:
        known = self.prefixes.get(text)
        if known is not None:
            return _Item("cidr", Cidr.of(known[0], known[1], sp), sp)
        m = _CIDR.fullmatch(text)
        if m is not None:  # the fast path: a valid address or prefix (the checks below, in integers)
            a, b, c, d, length_t = m.groups()  # at most 3 and 2 ASCII digits: int() is exact
            ip = int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)
            length = 32 if length_t is None else int(length_t)
            if length <= 32 and not ip & (0xFFFFFFFF >> length):
                self.prefixes[text] = (ip, length)
                return _Item("cidr", Cidr.of(ip, length, sp), sp)
        if "-" in text:
            lo_t, _, hi_t = text.partition("-")
            if "/" in text:
                self.bag.error("E404", f"'{text}' mixes a range and a prefix length", sp,
                               "write a range as FIRST-LAST (10.0.0.1-10.0.0.9) or a prefix as 10.0.0.0/24")
                return None
            lo, hi = _ip(lo_t), _ip(hi_t)
            if lo is None or hi is None:
                self.bag.error("E404", _explain_ip(lo_t if lo is None else hi_t), sp,
                               "a range is FIRST-LAST, e.g. 10.0.0.1-10.0.0.9")
                return None
            return self.range_item(text, lo, hi, lo_t, hi_t, sp)
        addr, slash, length_t = text.partition("/")
        parsed = _ip(addr)
        if parsed is None:
            self.bag.error("E404", _explain_ip(addr), sp, "write an address as a.b.c.d or a prefix as a.b.c.d/len")
            return None
        ip = parsed
        if not slash:
            return _Item("cidr", Cidr(ip, 32, sp), sp)
        if not length_t.isdigit() or decimal(length_t) > 32:
            self.bag.error("E404", f"'{text}': the prefix length must be 0 to 32", sp)
            return None
        length = decimal(length_t)
        mask = ((1 << length) - 1) << (32 - length) if length else 0
        if ip & ~mask & 0xFFFFFFFF:
            net = ipaddress.IPv4Network((ip & mask, length))
            self.bag.error("E405", f"'{text}' has host bits set", sp,
                           f"did you mean {net}? (or {addr} alone, for the single address)")
            return None
        return _Item("cidr", Cidr(ip, length, sp), sp)

    def cidr(self, tok: Token, what: str) -> Cidr | None:
        it = self.address(tok)
        if it is None:
            return None
        if it.kind != "cidr":
            self.bag.error("E404", f"{what} must be a prefix (a.b.c.d/len), not a range", it.span)
            return None
        return it.value  # type: ignore[return-value]

    def address_list(self, node: Tree, what: str) -> tuple[Cidr, ...]:
        out = []
        for tok in node.children:
            c = self.cidr(_tok(tok), what)
            if c is not None:
                out.append(c)
        return tuple(out)

    # -- endpoints (rule sides, queries, defines)
    def endpoint_items(self, node: Tree) -> list[_Item]:
        """endpoint_list → items; items with errors are reported and left out."""
        return self.all_endpoint_items(node)[0]

    def all_endpoint_items(self, node: Tree) -> tuple[list[_Item], bool]:
        """endpoint_list → (items, whether every item was good); items with errors are reported and left out."""
        out = []
        complete = True
        for ep in node.children:
            if ep.data == "ep_addresses":
                for it in self.address_run(_tok(ep.children[0])):
                    if it is not None:
                        out.append(it)
                    else:
                        complete = False
                continue
            it = self.endpoint(ep)
            if it is not None:
                out.append(it)
            else:
                complete = False
        return out, complete

    def endpoint(self, ep: Tree) -> _Item | None:
        kind = ep.data
        if kind in ("ep_address", "ep_ipv6"):
            return self.address(_tok(ep.children[0]))
        if kind == "ep_name":
            return self.bare(ep.children[0])
        if kind == "ep_subnet":
            return self.subnet_item(ep.children[0], explicit=True)
        if kind == "ep_tag":
            r = self.ref(ep.children[0])
            return _Item("tag", r, self.span(ep))
        # ep_asg children: [ASG token, name]; ep_nic / ep_vnet: [name]
        r = self.ref(ep.children[-1])
        return _Item({"ep_asg": "asg", "ep_nic": "nic", "ep_vnet": "vnet"}[kind], r, self.span(ep))

    def subnet_item(self, path: Tree, explicit: bool) -> _Item | None:
        return self.subnet_names([self.name(c) for c in path.children], self.span(path))

    def subnet_names(self, names: list[tuple[str, Span]], sp: Span) -> _Item | None:
        sref = self.subnet_ref(names, sp)
        if sref is None:
            return None
        return _Item("subnet", sref, sp)

    def subnet_path(self, path: Tree) -> SubnetRef | None:
        return self.subnet_ref([self.name(c) for c in path.children], self.span(path))

    def subnet_ref(self, names: list[tuple[str, Span]], sp: Span) -> SubnetRef | None:
        """``vnet/subnet``, or a bare subnet name that exists in exactly one VNet."""
        if len(names) == 2:
            return SubnetRef(names[0][0], names[1][0], sp)
        s = names[0][0]
        holders = self.names.subnets.get(s, [])
        if len(holders) > 1:
            self.bag.error("E209", f"subnet '{s}' exists in VNets {', '.join(holders)}", sp,
                           "write VNET/SUBNET, e.g. " + " or ".join(f"{v}/{s}" for v in holders))
            return None
        # An unknown subnet keeps an empty VNet; validation reports it (E201) with suggestions.
        return SubnetRef(holders[0] if holders else "", s, sp)

    def bare(self, path: Tree) -> _Item | None:
        return self.bare_names([self.name(c) for c in path.children], self.span(path))

    def bare_names(self, names: list[tuple[str, Span]], path_span: Span) -> _Item | None:
        """A name (or VNET/SUBNET) written without a kind: see :meth:`NameTable.bare_kind`."""
        if len(names) == 2:
            return self.subnet_names(names, path_span)
        name, sp = names[0]
        if sp in self.reserved_misuse:
            return None
        kind = self.names.bare_kind(name)
        if kind == "ambiguous":
            kinds = self.names.kinds(name)
            if kinds == ["subnet"]:
                return self.subnet_names(names, path_span)  # reports the VNets to choose from
            forms = " or ".join(f"'{EXPLICIT[k]} {name}'" for k in kinds if k in EXPLICIT)
            what = " and ".join(("an " if KIND_WORDS[k][0] in "AN" else "a ") + KIND_WORDS[k] for k in kinds)
            self.bag.error("E209", f"'{name}' is ambiguous: it names {what}", sp,
                           f"write {forms} to say which" if forms else "rename one of them")
            return None
        if kind == "near-miss":
            self.bag.error("E208", f"unknown name '{name}'", sp,
                           f"{did_you_mean(name, self.names.object_names())} (a name that is no ASG, NIC, subnet, "
                           f"VNet or network define is read as a service tag: write 'tag {name}' if you mean one)")
            return None
        if kind == "subnet":
            return _Item("subnet", SubnetRef(self.names.subnets[name][0], name, sp), sp)
        return _Item(kind, Ref(name, sp), sp)

    def side(self, src: _SideSource, what: str) -> RuleSide | None:
        """A rule side: any, one tag, 1..10 ASGs, or a list of address items (semantics.md)."""
        sp = src.span
        if src.items is None:
            return AnyAddress(sp)
        items, complete = src.items()
        if not complete:
            return None
        kinds = {i.kind for i in items}
        if kinds <= _PREFIX_KINDS:  # the common side: addresses only, each item its own model object
            return PrefixSide(tuple([i.value for i in items]), sp)  # type: ignore[misc]
        tags = [i for i in items if i.kind == "tag"]
        asgs = [i for i in items if i.kind == "asg"]
        if tags:
            if len(items) == 1:
                return TagSide(tags[0].value, sp)  # type: ignore[arg-type]
            tag = tags[0].value.name if isinstance(tags[0].value, Ref) else tags[0].value
            others = "ASGs" if asgs and len(asgs) == len(items) - len(tags) else "other items"
            self.bag.error("E302", f"service tag '{tag}' cannot be combined with {others} on the {what}",
                           tags[0].span if len(tags) == 1 else sp,
                           "a rule side names one service tag alone; split the rule into one rule per tag, or "
                           "declare the prefixes with 'define network' (if this is not a tag, it is an unknown "
                           "name: check the spelling)")
            return None
        if asgs:
            if len(asgs) == len(items):
                return AsgSide(tuple(i.value for i in asgs), sp)  # type: ignore[misc]
            self.bag.error("E413", f"the {what} mixes application security groups with addresses", sp,
                           "a rule side is either ASGs or addresses (Azure allows no mix): split it into two rules")
            return None
        return PrefixSide(tuple(self.addr_item(i) for i in items), sp)

    @staticmethod
    def addr_item(i: _Item) -> AddrItem:
        # cidr and range items are their model objects (_PREFIX_KINDS)
        if i.kind in ("cidr", "range"):
            return i.value  # type: ignore[return-value]
        if i.kind == "nic":
            return NicAddr(i.value)  # type: ignore[arg-type]
        if i.kind == "subnet":
            return SubnetAddr(i.value)  # type: ignore[arg-type]
        if i.kind == "vnet":
            return VnetAddr(i.value)  # type: ignore[arg-type]
        if i.kind == "network":
            return NetworkRef(i.value)  # type: ignore[arg-type]
        raise AssertionError(i.kind)

    # -- ports
    def ports(self, node: Tree | None) -> PortSpec:
        if node is None:
            return PortSpec(None)
        sp = self.span(node)
        first = node.children[0]
        if isinstance(first, Token):  # ANY or STAR
            return PortSpec(None, sp)
        return PortSpec(self.port_list(first), sp)

    def port_list(self, node: Tree) -> tuple[PortItem, ...]:
        out: list[PortItem] = []
        for it in node.children:
            if it.data == "port_run":  # N and N-M items on one line, each with the span its tokens had
                tok = _tok(it.children[0])
                run = syntax.token_span(tok, self.file)
                file, line, col = self.file, run.line, run.column
                for m in _PORT_ITEM.finditer(tok.value):
                    lo, hi = m.groups()
                    out.append(PortRange(decimal(lo), decimal(lo if hi is None else hi),
                                         Span(file, line, col + m.start(), line, col + m.end())))
                continue
            sp = self.span(it)
            if it.data == "port_single":
                v = decimal(_tok(it.children[0]))
                out.append(PortRange(v, v, sp))
            elif it.data == "port_range":
                out.append(PortRange(decimal(_tok(it.children[0])), decimal(_tok(it.children[1])), sp))
            else:
                out.append(PortsRef(self.ref(it.children[0])))
        return tuple(out)

    # -- statements
    def tag_decl(self, st: Tree) -> TagDecl:
        name, _ = self.name(st.children[0])
        builtin = canonical_builtin(name)
        if builtin is not None:
            self.bag.error("E303", f"{builtin} is a built-in tag: nsgsolve knows its addresses and cannot take "
                           "them from a declaration", self.span(st),
                           "VirtualNetwork and Internet follow each VNet and its peerings, AzureLoadBalancer, "
                           "AzurePlatformDNS and AzurePlatformIMDS are fixed by Azure: remove this declaration, "
                           "or use 'define network NAME = ...' for your own address list")
        items = []
        for it in self.endpoint_items(st.children[1]):
            if it.kind in ("cidr", "range"):
                items.append(it.value)
            else:
                self.bag.error(
                    "E303",
                    f"service tag data must be addresses, not the {KIND_WORDS.get(it.kind, it.kind)} "
                    f"'{it.value.name if isinstance(it.value, Ref) else it.value}'",
                    it.span,
                    f"list the prefixes of '{name}', e.g. tag {name} = 20.38.96.0/19, 52.239.128.0/17",
                )
        return TagDecl(name, tuple(items), self.span(st))  # type: ignore[arg-type]

    def define_network(self, st: Tree) -> NetworkDefine:
        name, _ = self.name(st.children[0])
        items: list[AddrItem] = []
        for it in self.endpoint_items(st.children[1]):
            if it.kind in ("tag", "asg"):
                self.bag.error("E212", f"a network define lists addresses, not "
                                       f"{'a service tag' if it.kind == 'tag' else 'an application security group'}",
                               it.span, "name tags and ASGs directly in rules (a rule side is one tag, or ASGs, or "
                                        "addresses); if this was meant as a define or a NIC, check the spelling")
            else:
                items.append(self.addr_item(it))
        return NetworkDefine(name, tuple(items), self.span(st))

    def define_ports(self, st: Tree) -> PortsDefine:
        name, _ = self.name(st.children[0])
        return PortsDefine(name, self.port_list(st.children[1]), self.span(st))

    def vnet(self, st: Tree) -> VNet:
        name, _ = self.name(st.children[0])
        spaces = self.address_list(st.children[1], "a VNet address space")
        if len(spaces) != len(st.children[1].children):
            self.poisoned.add(f"vnet:{name}")
        subnets: list[Subnet] = []
        peers: list[Ref] = []
        onprem: list[Cidr] = []
        for item in st.children[2:]:
            if item.data == "subnet":
                s = self.subnet(item, name)
                if s is not None:
                    subnets.append(s)
            elif item.data == "peer":
                peers += [self.ref(n) for n in item.children]
            elif item.data == "onprem":
                onprem += self.address_list(item.children[0], "an on-premises prefix")
        return VNet(name, spaces, tuple(subnets), tuple(peers), tuple(onprem), self.span(st))

    def subnet(self, node: Tree, vnet: str) -> Subnet | None:
        name, _ = self.name(node.children[0])
        plist = node.children[1]
        assert isinstance(plist, Tree), plist
        prefixes = self.address_list(plist, "a subnet")
        prefix = prefixes[0] if len(prefixes) == len(plist.children) else None
        assocs = [c for c in node.children[2:] if c.data == "nsg_assoc"]
        for block in (c for c in node.children[2:] if c.data == "subnet_block"):
            assocs += block.children
        nsg = self.one_nsg(assocs, f"subnet {vnet}/{name}")
        if prefix is None:
            self.poisoned.add(f"subnet:{vnet}/{name}")
            return None
        return Subnet(name, prefix, nsg, self.span(node), prefixes[1:])

    def one_nsg(self, assocs: list[Tree], owner: str) -> Ref | None:
        refs = [self.ref(a.children[-1]) for a in assocs]
        for extra in refs[1:]:
            self.bag.error("E508", f"{owner} already has NSG '{refs[0].name}'; Azure allows one NSG per subnet and "
                                   f"per NIC", extra.span,
                           "merge the rules into one NSG, or attach the other NSG to the NIC (or the subnet)")
        return refs[0] if refs else None

    def nic(self, st: Tree) -> Nic | None:
        name, _ = self.name(st.children[0])
        sref = self.subnet_path(st.children[1])
        body = st.children[2]
        ipcs: list[IpConfig] = []
        assocs: list[Tree] = []
        if body.data == "nic_inline":
            ipc = self.ipconfig(body.children, self.span(st), "")
            if ipc is not None:
                ipcs.append(ipc)
            for i, c in enumerate(body.children):
                if isinstance(c, Token) and c.type == "NSG":
                    assocs.append(Tree("nsg_assoc", [c, body.children[i + 1]]))
        else:
            for c in body.children:
                if c.data == "nsg_assoc":
                    assocs.append(c)
                    continue
                ipc_name = ""
                parts = list(c.children)
                if parts and isinstance(parts[0], Tree) and parts[0].data == "name":
                    ipc_name, _ = self.name(parts.pop(0))
                ipc = self.ipconfig(parts, self.span(c), ipc_name)
                if ipc is not None:
                    ipcs.append(ipc)
            if not body.children or all(c.data == "nsg_assoc" for c in body.children):
                self.bag.error("E510", f"NIC '{name}' has no IP configuration", self.span(st),
                               "add a line 'ip ADDRESS' (or 'ip dynamic') inside its block")
        nsg = self.one_nsg(assocs, f"NIC '{name}'")
        if sref is None:
            return None
        return Nic(name, sref, tuple(ipcs), nsg, self.span(st))

    def ipconfig(self, parts: list, sp: Span, ipc_name: str) -> IpConfig | None:
        """[ip_value, (ASG|ASG_LINE), name_list, ...] → IpConfig; ASG lists may be absent."""
        ip_node = next(p for p in parts if isinstance(p, Tree) and p.data == "ip_value")
        value = _tok(ip_node.children[0])
        asgs: tuple[Ref, ...] = ()
        for p in parts:
            if isinstance(p, Tree) and p.data == "name_list":
                asgs = tuple(self.ref(n) for n in p.children)
        if value.type in ("DYNAMIC", "DYNAMIC6"):
            return IpConfig(None, asgs, ipc_name, sp, v6=value.type == "DYNAMIC6")
        it = self.address(value)
        if it is None:
            return None
        if not isinstance(it.value, Cidr) or it.value.length != (128 if it.value.is_v6 else 32) \
                or "/" in value.value:
            self.bag.error("E404", f"a NIC address is one IPv4 or IPv6 address, not '{value.value}'", it.span,
                           "write 'ip 10.0.1.4' or 'ip 2001:db8::4', or 'ip dynamic' ('ip dynamic6' for IPv6) "
                           "to let Azure choose")
            return None
        return IpConfig(it.value.network, asgs, ipc_name, sp, v6=it.value.is_v6)

    def nsg(self, st: Tree) -> Nsg:
        name, _ = self.name(st.children[1])
        rules = []
        for block in st.children[2:]:
            direction = Direction.INBOUND if _tok(block.children[0]).type == "INBOUND" else Direction.OUTBOUND
            for r in block.children[1:]:
                rule = self.rule(r, direction)
                if isinstance(rule, Rule):  # not None: an NSG rule (no admin context given)
                    rules.append(rule)
        return Nsg(name, tuple(rules), self.span(st))

    def admin_config(self, st: Tree) -> AdminConfig:
        name, _ = self.name(st.children[0])
        collections = []
        for c in st.children[1:]:
            cname, _ = self.name(c.children[0])
            groups = tuple(self.ref(n) for n in c.children[1].children)
            rules: list[AdminRule] = []
            for block in c.children[2:]:
                direction = Direction.INBOUND if _tok(block.children[0]).type == "INBOUND" else Direction.OUTBOUND
                for r in block.children[1:]:
                    admin_rule = self.rule(r, direction, (name, cname))
                    if isinstance(admin_rule, AdminRule):  # not None: an admin context was given
                        rules.append(admin_rule)
            collections.append(RuleCollection(cname, groups, tuple(rules), self.span(c)))
        return AdminConfig(name, tuple(collections), self.span(st))

    def admin_side(self, src: _SideSource, what: str) -> tuple[RuleSide, ...]:
        """An admin rule side: ``any``, or a list of prefixes and service tags in any mix (Azure's
        ``sources[]``/``destinations[]``). ``()`` is any address."""
        if src.items is None:
            return ()
        list_span = src.span  # the endpoint list's, which is the side's
        items, _ = src.items()
        sides: list[RuleSide] = []
        run: list[AddrItem] = []  # consecutive addresses make one PrefixSide; the written order is kept
        for i in items:
            if i.kind == "tag":
                if run:
                    sides.append(PrefixSide(tuple(run), list_span))
                    run = []
                sides.append(TagSide(i.value, i.span))  # type: ignore[arg-type]
            elif i.kind in ("asg", "nic"):
                what_kind = "an application security group" if i.kind == "asg" else "a NIC"
                named = i.value.name if isinstance(i.value, Ref) else i.value
                self.bag.error("E512", f"the {what} of an admin rule names {what_kind} ('{named}')", i.span,
                               "admin rules take IP prefixes and service tags only (Azure applies them to whole "
                               "VNets): write the addresses, or a subnet, VNet or 'define network' name")
            else:
                run.append(self.addr_item(i))
        if run:
            sides.append(PrefixSide(tuple(run), list_span))
        if not sides:  # every item had an error (reported): keep the rule, matching nothing is no claim
            return (PrefixSide((), list_span),)
        return tuple(sides)

    def rule(self, node: Tree, direction: Direction, admin: tuple[str, str] | None = None
             ) -> Rule | AdminRule | None:
        if node.data == "rule_line":
            return self.rule_line(_tok(node.children[0]), direction, admin)
        ch = list(node.children)
        prio_tok, access_node, name_node, proto_node = ch[:4]
        access_tok = _tok(access_node.children[0])
        rest = ch[4:]
        name, _ = self.name(name_node)
        endpoints = [c for c in rest if isinstance(c, Tree) and c.data == "endpoints"]
        src_ports = dst_ports = None
        # ports nodes follow their side: [endpoints, ports?, endpoints, ports?, STRING?]
        seen_sides = 0
        for c in rest:
            if isinstance(c, Tree) and c.data == "endpoints":
                seen_sides += 1
            elif isinstance(c, Tree) and c.data == "ports":
                if seen_sides == 1:
                    src_ports = c
                else:
                    dst_ports = c
        desc_tok = rest[-1] if isinstance(rest[-1], Token) and rest[-1].type == "STRING" else None
        return self.make_rule(
            direction, admin, name, _tok(prio_tok).value, access_tok.type, self.span(access_tok),
            _tok(proto_node.children[0]).value, self.tree_side(endpoints[0]), lambda: self.ports(src_ports),
            self.tree_side(endpoints[1]), lambda: self.ports(dst_ports),
            desc_tok.value if desc_tok is not None else None, self.span(node))

    def tree_side(self, node: Tree) -> _SideSource:
        first = node.children[0]
        if isinstance(first, Token):  # ANY or STAR
            return _SideSource(self.span(node), None)
        return _SideSource(self.span(node), lambda: self.all_endpoint_items(first))

    def make_rule(self, direction: Direction, admin: tuple[str, str] | None, name: str, priority: str,
                  access: str, access_span: Span, protocol: str, src: _SideSource,
                  src_ports: Callable[[], PortSpec], dst: _SideSource, dst_ports: Callable[[], PortSpec],
                  description: str | None, sp: Span) -> Rule | AdminRule:
        """The rule or admin rule of parts read from a ``rule`` tree or a RULE_LINE token. Each side and
        ports part is built when this calls for it, so diagnostics come in one order whichever the source."""
        proto = Protocol.parse(protocol)
        if admin is not None:
            config, collection = admin
            return AdminRule(
                name=name, priority=int(priority), direction=direction, access=_ACCESS[access],
                protocol=proto, sources=self.admin_side(src, "source"), source_ports=src_ports(),
                destinations=self.admin_side(dst, "destination"), destination_ports=dst_ports(),
                description=unescape(description) if description is not None else "", span=sp,
                collection=collection, config=config)
        if access == "ALWAYSALLOW":
            self.bag.error("E511", "an NSG rule is allow or deny; AlwaysAllow exists only in security admin rules",
                           access_span,
                           "write allow (or deny); to let traffic past every NSG, declare an admin rule in an "
                           "'admin NAME { collection NAME for GROUP { ... } }' block")
        source = self.side(src, "source")
        destination = self.side(dst, "destination")
        return Rule(
            name=name, priority=decimal(priority), direction=direction,
            access=Access.ALLOW if access == "ALLOW" else Access.DENY, protocol=proto,
            # A broken side was reported; a placeholder keeps the rule in place for the other checks.
            source=source if source is not None else AnyAddress(src.span),
            source_ports=src_ports(),
            destination=destination if destination is not None else AnyAddress(dst.span),
            destination_ports=dst_ports(),
            description=unescape(description) if description is not None else "",
            span=sp,
        )

    def rule_line(self, tok: Token, direction: Direction, admin: tuple[str, str] | None) -> Rule | AdminRule:
        """A RULE_LINE token (grammar/nsg.lark): the same rule, spans included, as its tokens one by one
        give. The token's shape is known, so its words are split, not parsed: names are never keywords
        there, and each word is one token of the plain grammar (``asg`` and its name two)."""
        file, line, col = self.file, tok.line or 0, tok.column or 0
        on_line = Span.on_line
        text = tok.value
        split = _RULE_WORD if "`" in text or '"' in text else _PLAIN_WORD
        words = [(m.group(), col + m.start(), col + m.end()) for m in split.finditer(text)]

        def span(a: int, b: int) -> Span:
            return on_line(file, line, a, b)

        prefixes = self.prefixes

        def items(part: list[tuple[str, int, int]]) -> tuple[list[_Item], bool]:
            out: list[_Item] = []
            complete = True
            i = 0
            while i < len(part):
                text, a, b = part[i]
                known = prefixes.get(text)
                if known is not None:  # address_text's first step, inline: most items are prefixes
                    sp = on_line(file, line, a, b)
                    out.append(_Item("cidr", Cidr.of(known[0], known[1], sp), sp))
                    i += 1
                    continue
                if text[0].isdigit():
                    it = self.address_text(text, span(a, b))
                elif text.lower() == "asg":  # never a name here: names are not spelled like keywords
                    i += 1
                    name_text, na, nb = part[i]
                    it = _Item("asg", Ref(_unquote(name_text), span(na, nb)), span(a, nb))
                else:
                    m = _PATH.fullmatch(text)
                    assert m is not None  # RULE_LINE_ITEM: NAME or NAME/NAME
                    it = self.bare_names([(_unquote(m.group(g)), span(a + m.start(g), a + m.end(g)))
                                          for g in (1, 2) if m.group(g) is not None], span(a, b))
                if it is None:
                    complete = False
                else:
                    out.append(it)
                i += 1
            return out, complete

        def side(part: list[tuple[str, int, int]]) -> _SideSource:
            sp = span(part[0][1], part[-1][2])
            if len(part) == 1 and part[0][0].lower() in ("any", "*"):
                return _SideSource(sp, None)
            return _SideSource(sp, lambda: items(part))

        def ports(part: list[tuple[str, int, int]] | None) -> Callable[[], PortSpec]:
            if part is None:
                return lambda: PortSpec(None)
            sp = span(part[0][1], part[-1][2])  # from the keyword 'port' on
            if part[1][0].lower() in ("any", "*"):
                return lambda: PortSpec(None, sp)
            out: list[PortItem] = []
            for text, a, b in part[1:]:
                lo, _, hi = text.partition("-")
                out.append(PortRange(decimal(lo), decimal(hi or lo), span(a, b)))
            return lambda: PortSpec(tuple(out), sp)

        # words: PRIORITY ACCESS NAME PROTOCOL from SIDE... [port PORTS...] to SIDE... [port PORTS...] ["..."]
        keys = [w[0].lower() for w in words]
        to = keys.index("to", 5)
        desc = words[-1][0] if words[-1][0][0] == '"' else None
        end = len(words) - (desc is not None)
        src_port = keys.index("port", 5, to) if "port" in keys[5:to] else to
        dst_port = keys.index("port", to + 1, end) if "port" in keys[to + 1:end] else end
        name = words[2][0]
        return self.make_rule(
            direction, admin, _unquote(name), words[0][0], words[1][0].upper(), span(words[1][1], words[1][2]),
            words[3][0], side(words[5:src_port]), ports(words[src_port:to] if src_port < to else None),
            side(words[to + 1:dst_port]), ports(words[dst_port:end] if dst_port < end else None), desc,
            span(words[0][1], words[-1][2]))

    # -- queries
    def query(self, node: Tree) -> Query | None:
        """can_query → Query; every item is its own endpoint (a query may mix kinds freely)."""
        ch = node.children
        sources = self.query_endpoints(ch[0])
        destinations = self.query_endpoints(ch[1])
        ports_node = next((c for c in ch[2:] if c.data == "ports"), None)
        proto_node = next((c for c in ch[2:] if c.data == "protocol"), None)
        protocol = Protocol.parse(_tok(proto_node.children[0]).value) if proto_node is not None else Protocol.ANY
        sp = self.span(node)
        text = self.text[node.meta.start_pos:node.meta.end_pos]
        if sources is None or destinations is None:
            return None
        return Query(sources, destinations, self.ports(ports_node), protocol, sp, text)

    def query_endpoints(self, node: Tree) -> tuple[Endpoint, ...] | None:
        first = node.children[0]
        if isinstance(first, Token):
            return (AnyAddress(self.span(node)),)
        items, complete = self.all_endpoint_items(first)
        if not complete:
            return None
        out: list[Endpoint] = []
        for i in items:
            if i.kind == "tag":
                out.append(TagSide(i.value, i.span))  # type: ignore[arg-type]
            elif i.kind == "asg":
                out.append(AsgSide((i.value,), i.span))  # type: ignore[arg-type]
            else:
                out.append(self.addr_item(i))
        return tuple(out)

    # -- assertions (docs/contracts.md)
    def assertion(self, st: Tree) -> Assertion | None:
        """assert_stmt → Assertion; the traffic reuses the query's endpoints, ports and protocol."""
        name_tok = next((c for c in st.children if isinstance(c, Token) and c.type == "ASSERT_NAME"), None)
        msg_tok = next((c for c in st.children if isinstance(c, Token) and c.type == "STRING"), None)
        body = next(c for c in st.children if isinstance(c, Tree))
        kind = {"assert_no": AssertionKind.NO, "assert_all": AssertionKind.ALL, "assert_some": AssertionKind.SOME,
                "assert_only": AssertionKind.ONLY, "assert_clean": AssertionKind.CLEAN,
                "assert_no_shadowed": AssertionKind.NO_SHADOWED}[body.data]
        traffic: Query | None = None
        excepts: list[AssertExcept] = []
        trees = [c for c in body.children if isinstance(c, Tree)]
        if trees:
            traffic = self.traffic(trees[0])
            excepts = [e for e in (self.except_clause(ex) for ex in trees[1:]) if e is not None]
            if traffic is None or len(excepts) != len(trees) - 1:
                return None
        text = " ".join(self.text[body.meta.start_pos:body.meta.end_pos].split())
        # A derived name comes from the model, not the text, so reformatting never renames a CI test.
        name = (
            name_tok.value[:-1] if name_tok is not None else assertion_name(claim_text(kind, traffic, tuple(excepts)))
        )
        message = unescape(msg_tok.value) if msg_tok is not None else ""
        return Assertion(kind, traffic, tuple(excepts), name, message, self.span(st), text, name_tok is not None)

    def traffic(self, node: Tree) -> Query | None:
        ch = node.children
        sources, destinations = self.query_endpoints(ch[0]), self.query_endpoints(ch[1])
        ports_node = next((c for c in ch[2:] if c.data == "ports"), None)
        proto_node = next((c for c in ch[2:] if c.data == "protocol"), None)
        protocol = Protocol.parse(_tok(proto_node.children[0]).value) if proto_node is not None else Protocol.ANY
        if sources is None or destinations is None:
            return None
        return Query(sources, destinations, self.ports(ports_node), protocol, self.span(node),
                     self.text[node.meta.start_pos:node.meta.end_pos])

    def except_clause(self, node: Tree) -> AssertExcept | None:
        parts = {c.data: c for c in node.children}
        sp = self.span(node)
        if not parts:
            self.bag.error("E704", "an except clause must say what it leaves out", sp,
                           "e.g. 'except from 10.1.0.0/24', 'except to db1', 'except port 22' or 'except udp'")
            return None
        src = self.query_endpoints(parts["except_from"].children[0]) if "except_from" in parts else None
        dst = self.query_endpoints(parts["except_to"].children[0]) if "except_to" in parts else None
        if ("except_from" in parts and src is None) or ("except_to" in parts and dst is None):
            return None
        proto = parts.get("protocol")
        return AssertExcept(src, dst, self.ports(parts.get("ports")),
                            Protocol.parse(_tok(proto.children[0]).value) if proto is not None else Protocol.ANY, sp,
                            self.text[node.meta.start_pos:node.meta.end_pos])


_ACCESS = {"ALLOW": Access.ALLOW, "DENY": Access.DENY, "ALWAYSALLOW": Access.ALWAYS_ALLOW}


# ---------------------------------------------------------------- public API


def parse_policy(text: str, filename: str, warnings: list[Diagnostic] | None = None) -> Policy:
    """Parse, build and validate one policy file.

    Raises :class:`InputError` with every error of the file. Warnings (W-codes) are appended to
    ``warnings`` when a list is given, and otherwise dropped: they never stop a run.
    """
    from nsgsolve.validate import validate_into

    # Parsing and building allocate a few objects per character and free none of them (no cycles): the
    # collector's passes over that growing heap found nothing and were a third of the time. Paused only,
    # the first allocation after the pause scanned all of it once (0.2 s of a 2 x 1,000-rule show); the CLI
    # also freezes what was read (gcpause.keep_what_is_read).
    with gc_paused():
        tree = syntax.parse(text, filename, "policy")
        b = _Builder(text, filename)
        policy = b.policy(tree)
        del tree
        validate_into(policy, b.bag, skip=frozenset(b.poisoned))
        if warnings is not None:
            warnings.extend(b.bag.warnings)
        b.bag.raise_if_errors()
        return in_evaluation_order(policy)


def in_evaluation_order(policy: Policy) -> Policy:
    """Each NSG's rules as Azure evaluates them: inbound then outbound, by priority.

    The order rules are written in carries no meaning, so a policy and its formatted text (which lists
    rules by priority) give equal models. Validation runs before this, on the order as written, so
    "the first is at ..." hints point at the first one in the file.
    """
    def key(r: Rule) -> tuple[int, int]:
        return (0 if r.direction is Direction.INBOUND else 1, r.priority)

    nsgs = tuple(replace(n, rules=tuple(sorted(n.rules, key=key))) for n in policy.nsgs)
    configs = tuple(replace(c, collections=tuple(replace(rc, rules=tuple(sorted(rc.rules, key=key)))  # type: ignore[arg-type]
                                                 for rc in c.collections)) for c in policy.admin_configs)
    return replace(policy, nsgs=nsgs, admin_configs=configs)


def parse_query(text: str, policy: Policy, filename: str = "<query>") -> Query:
    """Parse one query (``can SRC reach DST [port P] [PROTO]``) against the names of ``policy``."""
    from nsgsolve.validate import validate_query_into

    tree = syntax.parse(text, filename, "query")
    b = _Builder(text, filename, NameTable.from_policy(policy))
    q = b.query(tree.children[0])
    if q is not None:
        validate_query_into(q, policy, b.bag)
    b.bag.raise_if_errors()
    assert q is not None  # an unbuildable query always leaves an error in the bag
    return q


def build_tree(tree: Tree, text: str, filename: str) -> tuple[Policy, DiagnosticBag, frozenset[str]]:
    """The builder without validation, for :mod:`nsgsolve.lang.printer` (which has the tree already)."""
    b = _Builder(text, filename)
    return b.policy(tree), b.bag, frozenset(b.poisoned)


__all__ = ["NameTable", "parse_policy", "parse_query", "unescape", "build_tree", "in_evaluation_order"]
