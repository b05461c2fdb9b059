"""The policy as Z3 bit-vector constraints: packets, rule matches, first-match decisions, paths.

A packet is five bit-vectors (:class:`PacketVars`): protocol (8 bits), source IP (32), source port (16),
destination IP (32), destination port (16). A policy with IPv6 addresses (``ResolvedPolicy.has_ipv6``)
gets 129-bit addresses instead, in the integer space both families share (semantics/addresses.py: bit 128
is the IPv6 bit); :meth:`Encoding.domain` then keeps both addresses of a packet in one family.
Everything else is a Boolean term over them, built once per policy and cached, so every analysis
(reachability, shadowing, contracts, diff) reuses the same terms:

* :meth:`Encoding.rule_match` — rule *i* of an NSG (evaluated in one VNet) matches the packet;
* :meth:`Encoding.rule_decides` — rule *i* is the first match (prefix-OR built incrementally);
* :meth:`Encoding.nsg_allows` — the NSG's first-match decision in one direction is Allow;
* :meth:`Encoding.outbound_allows` / :meth:`Encoding.inbound_allows` — one NIC's layers, with the
  platform's rules (host services bypass, outbound TCP 25 block);
* :meth:`Encoding.path_allows` — the decision for any packet: the source NIC's outbound layers if the
  source is a NIC, the destination NIC's inbound layers if the destination is one (semantics.md).

It mirrors :mod:`nsgsolve.semantics.evaluate` clause by clause; ``tests/test_encode.py`` checks that the two agree
on random policies and packets.

Conventions:

* A NIC IP configuration with a dynamic address has a 32-bit variable (:meth:`Encoding.addr`); the
  :meth:`Encoding.domain` constraints keep it in its subnet's usable addresses and distinct from every
  other NIC address. A rule side naming it (through an ASG or the NIC) matches that variable.
* Packets without ports (protocols other than Tcp and Udp) carry both ports 0 in the encoding (a
  domain constraint), the convention of :mod:`nsgsolve.regions.box`. Rules with ports match only protocols
  6 and 17, so the value never changes a decision; :meth:`Encoding.model_packet` turns it back into
  ``None`` so witnesses replay through the evaluator.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping

import z3

from nsgsolve.regions import box as regions
from nsgsolve.regions.fieldindex import BoxIndex
from nsgsolve.semantics.addresses import (
    ADDR_BITS_DUAL, ALL_ADDRS, ALL_IPS, ALL_PORTS, PRIVATE_SPACES, IntervalSet,
)
from nsgsolve.errors import UsageError
from nsgsolve.semantics.evaluate import Packet
from nsgsolve.model import PORTED_PROTOCOLS, Access, Cidr, Direction
from nsgsolve.regions.box import Box
from nsgsolve.semantics.platform import HOST_SERVICES, SMTP_BLOCK, HostService
from nsgsolve.semantics.resolve import (
    AddrSet, AdminLayer, IpcKey, Layer, ParamUse, ResolvedNsg, ResolvedPolicy, ResolvedRule, usable_addresses,
)
from nsgsolve.smt.z3util import (
    DEFAULT_RLIMIT,
    FALSE,
    TRUE,
    Consts,
    check,
    make_solver,
    distinct,
    in_set,
    mk_and,
    mk_eq,
    mk_extract,
    mk_implies,
    mk_ite,
    mk_not,
    mk_or,
    value,
)

PROTO_BITS, ADDR_BITS, PORT_BITS = 8, 32, 16
TCP, UDP = 6, 17
# Box tests per rule of a list before it gets per-field bitsets (Encoding._kept): building them for a
# 669-rule list took ~15 ms, testing its every rule ~4 ms (p1000, Python 3.11).
INDEX_AFTER = 4


@dataclass(frozen=True)
class PacketVars:
    """The five header fields of the first packet of a flow."""

    protocol: z3.BitVecRef
    src: z3.BitVecRef
    sport: z3.BitVecRef
    dst: z3.BitVecRef
    dport: z3.BitVecRef

    @classmethod
    def fresh(cls, prefix: str = "", addr_bits: int = ADDR_BITS) -> "PacketVars":
        """Named variables; two encodings given the same ``PacketVars`` talk about the same packet (diff)."""
        return cls(z3.BitVec(f"{prefix}protocol", PROTO_BITS), z3.BitVec(f"{prefix}src", addr_bits),
                   z3.BitVec(f"{prefix}sport", PORT_BITS), z3.BitVec(f"{prefix}dst", addr_bits),
                   z3.BitVec(f"{prefix}dport", PORT_BITS))


RuleKey = tuple[str, "str | None", Direction, int]  # (NSG, VNet it is evaluated in, direction, rule index)


@dataclass(frozen=True)
class ParamVars:
    """The variables of one unset template parameter (docs/import.md, "Unset parameters").

    An address parameter is one IPv4 prefix: ``base`` and ``length`` with the mask constraint (host bits
    of ``base`` zero, ``length`` <= 32), so ``*`` is 0.0.0.0/0 and one address a /32. A port parameter is
    ``*`` (``star``: matches packets without ports too) or one range ``lo``-``hi``. A parameter the template
    restricts (``allowedValues``) is instead ``choice``, the index of the allowed value. One prefix or range
    is every value that matters: a question is about one packet at a time, and whether its source and
    destination lie in the value is all a rule reads of it, which some prefix (range) always reproduces."""

    name: str
    kind: str  # "address" or "ports"
    choice: z3.BitVecRef | None = None
    n_choices: int = 0
    base: z3.BitVecRef | None = None
    length: z3.BitVecRef | None = None
    star: z3.BoolRef | None = None
    lo: z3.BitVecRef | None = None
    hi: z3.BitVecRef | None = None


class Encoding:
    """Z3 terms for one resolved policy. Build once, reuse for every question about the policy."""

    def __init__(self, rp: ResolvedPolicy, pkt: PacketVars | None = None, addr_prefix: str = "ip:"):
        self.rp = rp
        self.pkt = pkt or PacketVars.fresh(addr_bits=ADDR_BITS_DUAL if rp.has_ipv6 else ADDR_BITS)
        # 32: IPv4 alone (a policy without IPv6 addresses, see ResolvedPolicy.has_ipv6); 129: both families.
        self.addr_bits = self.pkt.src.size()
        self.dual = self.addr_bits == ADDR_BITS_DUAL
        self.c = Consts()
        p = self.pkt
        self.ported = z3.Or(p.protocol == self.c(TCP, PROTO_BITS), p.protocol == self.c(UDP, PROTO_BITS))
        # The IP configurations a packet address can belong to, as the evaluator identifies them: a static
        # address belongs to the configuration the resolver indexed for it; each dynamic one has a variable.
        self._addr: dict[IpcKey, z3.BitVecRef] = {}
        for ip, key in rp.static_ip_index.items():
            self._addr[key] = self.c(ip, self.addr_bits)
        for key in rp.dynamic_ipcs:
            self._addr[key] = z3.BitVec(f"{addr_prefix}{key}", self.addr_bits)
        self.endpoints: tuple[IpcKey, ...] = tuple(self._addr)
        self._sets: dict[tuple[str, IntervalSet], z3.BoolRef] = {}
        self._sides: dict[tuple[str, AddrSet], z3.BoolRef] = {}
        self._rules: dict[RuleKey, z3.BoolRef] = {}
        self._prefix: dict[tuple[str, str | None, Direction], list[z3.BoolRef]] = {}
        self._allows: dict[tuple[str, str | None, Direction], z3.BoolRef] = {}
        self._boxes: dict[RuleKey, tuple[Box, Box]] = {}
        self._within: dict[tuple, z3.BoolRef] = {}
        self._indexes: dict[tuple[str, str | None, Direction], BoxIndex] = {}
        self._tested: dict[tuple[str, str | None, Direction], int] = {}  # box tests per list, before its index
        # Box tests per rule before a list gets its index (0: at once, for a caller that will ask many questions).
        self.index_after = INDEX_AFTER
        self._out: dict[tuple, z3.BoolRef] = {}
        self._in: dict[tuple, z3.BoolRef] = {}
        self._paths: dict[tuple, z3.BoolRef] = {}
        self._admin: dict[tuple, tuple[z3.BoolRef, z3.BoolRef]] = {}
        self.params: dict[tuple[str, str], ParamVars] = {}  # (name, kind) -> variables, in creation order
        self.param_domain: list[z3.BoolRef] = []  # well-formedness of the parameter variables created so far

    # ------------------------------------------------------------ fields and addresses

    def field(self, name: str) -> z3.BitVecRef:
        return getattr(self.pkt, name)

    def in_set(self, field: str, s: IntervalSet) -> z3.BoolRef:
        """The packet field ``field`` ("protocol", "src", "sport", "dst", "dport") lies in ``s``."""
        key = (field, s)
        t = self._sets.get(key)
        if t is None:
            width = {"protocol": PROTO_BITS, "sport": PORT_BITS, "dport": PORT_BITS}.get(field, self.addr_bits)
            if width == ADDR_BITS and field in ("src", "dst"):
                s = s.intersection(ALL_IPS)  # IPv4 alone: a set's IPv6 part (`*`, a tag) has no packet here
            t = self._sets[key] = in_set(self.field(field), s, width, self.c)
        return t

    def addr(self, key: IpcKey) -> z3.BitVecRef:
        """The address of an IP configuration: a constant, or a variable when it is dynamic."""
        return self._addr[key]

    def is_dynamic(self, key: IpcKey) -> bool:
        return not z3.is_bv_value(self._addr[key])

    def at(self, field: str, key: IpcKey) -> z3.BoolRef:
        """The address in ``field`` ("src" or "dst") is the IP configuration ``key``."""
        if key not in self._addr:  # a static configuration shadowed by another one with the same address
            return FALSE
        return mk_eq(self.field(field), self._addr[key])

    def is_nic(self, field: str) -> z3.BoolRef:
        return mk_or([self.at(field, k) for k in self.endpoints])

    def side(self, field: str, s: AddrSet) -> z3.BoolRef:
        """A resolved rule side: fixed intervals, the address of a dynamic member, or an unset parameter."""
        key = (field, s)
        t = self._sides.get(key)
        if t is None:
            t = self._sides[key] = mk_or([self.in_set(field, s.intervals)]
                                         + [self.at(field, m) for m in sorted(s.members)]
                                         + [self.param_address(field, p) for p in s.params])
        return t

    # ------------------------------------------------------------ unset parameters (symbolic)

    def param(self, use: ParamUse, kind: str) -> ParamVars:
        """The variables of parameter ``use.name`` used as ``kind`` (created once, with their domain)."""
        key = (use.name, kind)
        got = self.params.get(key)
        if got is not None:
            return got
        n, c = f"param:{kind}:{use.name}", self.c
        if use.choices is not None:
            width = max(1, len(use.choices).bit_length())
            got = ParamVars(use.name, kind, z3.BitVec(f"{n}.choice", width), len(use.choices))
            self.param_domain.append(z3.ULT(got.choice, c(len(use.choices), width)))
        elif kind == "address":
            got = ParamVars(use.name, kind, base=z3.BitVec(f"{n}.base", ADDR_BITS),
                            length=z3.BitVec(f"{n}.length", ADDR_BITS))
            ones = c((1 << ADDR_BITS) - 1, ADDR_BITS)
            self.param_domain += [z3.ULE(got.length, c(ADDR_BITS, ADDR_BITS)),
                                  got.base & z3.LShR(ones, got.length) == c(0, ADDR_BITS)]
            self.params[key] = got
            self.param_domain += self._space_domain(got)
            return got
        else:
            got = ParamVars(use.name, kind, star=z3.Bool(f"{n}.star"), lo=z3.BitVec(f"{n}.lo", PORT_BITS),
                            hi=z3.BitVec(f"{n}.hi", PORT_BITS))
            self.param_domain.append(z3.ULE(got.lo, got.hi))
        self.params[key] = got
        return got

    def _space_domain(self, v: ParamVars) -> list[z3.BoolRef]:
        """What a VNet's or subnet's address space parameter may be (model.OpenVNet): a VNet's is a private
        prefix (PRIVATE_SPACES, so the Internet tag is the same for every value), and so is the peered space of
        a VNet the inputs only refer to (so no Internet host is VirtualNetwork); a subnet's lies inside its
        VNet's."""
        assert v.base is not None and v.length is not None
        c = self.c
        if v.name in self.rp.open_spaces.values() or v.name in self.rp.open_peers.values():
            blocks = []
            for text, n in PRIVATE_SPACES:
                lo = int(ipaddress.IPv4Address(text))
                blocks.append(mk_and([z3.UGE(v.length, c(n, ADDR_BITS)), self._in_prefix(v.base, lo, n)]))
            return [mk_or(blocks)]
        outer = self.rp.subnet_spaces.get(v.name)
        if outer is None:
            return []
        o = self.param(ParamUse(outer), "address")
        assert o.base is not None and o.length is not None
        return [z3.UGE(v.length, o.length), self._in_param(v.base, o)]

    def _in_prefix(self, x: z3.BitVecRef, lo: int, n: int) -> z3.BoolRef:
        mask = ((1 << ADDR_BITS) - 1) ^ ((1 << (ADDR_BITS - n)) - 1)
        return x & self.c(mask, ADDR_BITS) == self.c(lo, ADDR_BITS)

    def _in_param(self, x: z3.BitVecRef, v: ParamVars) -> z3.BoolRef:
        """32-bit ``x`` lies in the prefix of address parameter ``v``."""
        assert v.base is not None and v.length is not None
        ones = self.c((1 << ADDR_BITS) - 1, ADDR_BITS)
        return x & ~z3.LShR(ones, v.length) == v.base

    def _usable_in(self, x: z3.BitVecRef, use: ParamUse) -> z3.BoolRef:
        """Address ``x`` (of this encoding's width) is one Azure may assign in the subnet whose prefix is the
        value of ``use``: inside it, not its first four nor its last address (a /29 or larger)."""
        c = self.c
        v = self.param(use, "address")
        v4 = TRUE
        if self.addr_bits != ADDR_BITS:
            v4 = z3.ULT(x, c(1 << ADDR_BITS, self.addr_bits))
            x = z3.Extract(ADDR_BITS - 1, 0, x)
        if use.choices is not None:
            return mk_and([v4, mk_or([mk_and([self._choice(v, i), in_set(x, usable_addresses(_as_cidrs(ch)),
                                                                          ADDR_BITS, c)])
                                      for i, ch in enumerate(use.choices) if ch is not None])])
        assert v.base is not None and v.length is not None
        ones = c((1 << ADDR_BITS) - 1, ADDR_BITS)
        return mk_and([v4, self._in_param(x, v), z3.ULE(v.length, c(29, ADDR_BITS)),
                       z3.UGE(x - v.base, c(4, ADDR_BITS)), x != v.base | z3.LShR(ones, v.length)])

    def _choice(self, v: ParamVars, i: int) -> z3.BoolRef:
        assert v.choice is not None
        return v.choice == self.c(i, v.choice.size())

    def param_address(self, field: str, use: ParamUse) -> z3.BoolRef:
        """The packet's ``field`` lies in the value of address parameter ``use``."""
        v = self.param(use, "address")
        if use.choices is not None:
            return mk_or([mk_and([self._choice(v, i), self.in_set(field, ch if ch is not None else ALL_IPS)])
                          for i, ch in enumerate(use.choices)])
        assert v.base is not None and v.length is not None
        ones = self.c((1 << ADDR_BITS) - 1, ADDR_BITS)
        return self.field(field) & ~z3.LShR(ones, v.length) == v.base

    def param_ports(self, field: str, use: ParamUse) -> z3.BoolRef:
        """The packet matches port parameter ``use`` in ``field``: '*' matches every packet, a range only
        Tcp/Udp packets in it (as :meth:`ports`)."""
        v = self.param(use, "ports")
        if use.choices is not None:
            return mk_or([mk_and([self._choice(v, i), self.ports(field, ch)]) for i, ch in enumerate(use.choices)])
        assert v.star is not None and v.lo is not None and v.hi is not None
        f = self.field(field)
        return mk_or([v.star, mk_and([self.ported, z3.ULE(v.lo, f), z3.ULE(f, v.hi)])])

    def model_params(self, m: z3.ModelRef, names: Iterable[str] | None = None) -> dict[str, str]:
        """The value of each parameter variable in ``m`` as a template would write it (only ``names``)."""
        from nsgsolve.semantics.addresses import int_to_ip

        want = None if names is None else set(names)
        out: dict[str, str] = {}
        for (name, kind), v in self.params.items():
            if want is not None and name not in want:
                continue
            if v.choice is not None:
                text = self.rp.param_values(name)[value(m, v.choice)]
            elif kind == "address":
                assert v.base is not None and v.length is not None
                text = f"{int_to_ip(value(m, v.base))}/{value(m, v.length)}"
            else:
                assert v.star is not None and v.lo is not None and v.hi is not None
                lo, hi = value(m, v.lo), value(m, v.hi)
                star = z3.is_true(m.eval(v.star, model_completion=True))
                text = "*" if star else str(lo) if lo == hi else f"{lo}-{hi}"
            out[name] = text
        return out

    def pin_params(self, values: Mapping[str, str]) -> z3.BoolRef:
        """The parameter variables take ``values`` (as a template writes them; a restricted parameter one
        of its allowed values), like :meth:`is_assignment` for addresses: tests replay the evaluator's
        concrete policy (:func:`nsgsolve.semantics.resolve.bind_params`) against the encoding with it."""
        from nsgsolve.semantics.resolve import parse_address_value, parse_port_value

        c, out = self.c, []
        for (name, kind), v in self.params.items():
            if name not in values:
                continue
            text = values[name].strip()
            if v.choice is not None:
                out.append(self._choice(v, self.rp.param_values(name).index(text)))
            elif kind == "address":
                assert v.base is not None and v.length is not None
                got = IntervalSet([(0, (1 << ADDR_BITS) - 1)]) if text in ("*", "any") else parse_address_value(text)
                if got is None or len(list(got)) != 1:
                    raise ValueError(f"'{text}' is not one prefix")
                (lo, hi), = list(got)
                length = ADDR_BITS - (hi - lo + 1).bit_length() + 1
                out += [v.base == c(lo, ADDR_BITS), v.length == c(length, ADDR_BITS)]
            else:
                assert v.star is not None and v.lo is not None and v.hi is not None
                ports = parse_port_value(text)
                if ports is None:
                    out.append(v.star)
                elif ports is False:
                    raise ValueError(f"'{text}' is not a port value")
                else:
                    assert isinstance(ports, IntervalSet)
                    (lo, hi), = list(ports)
                    out += [mk_not(v.star), v.lo == c(lo, PORT_BITS), v.hi == c(hi, PORT_BITS)]
        return mk_and(out)

    def is_params(self, m: z3.ModelRef, but: str | None = None) -> z3.BoolRef:
        """The parameter variables (all ``but`` one) take their values in ``m`` (to pin them while other
        things vary)."""
        eqs = []
        for v in self.params.values():
            if v.name == but:
                continue
            for x in (v.choice, v.base, v.length, v.lo, v.hi, v.star):
                if x is not None:
                    eqs.append(x == m.eval(x, model_completion=True))
        return mk_and(eqs)

    def ports(self, field: str, s: IntervalSet | None) -> z3.BoolRef:
        """A port set: '*' matches every packet, anything else only Tcp/Udp packets in the set."""
        if s is None:
            return TRUE
        return mk_and([self.ported, self.in_set(field, s)])

    def protocol(self, number: int | None) -> z3.BoolRef:
        if number is None:
            return TRUE
        return self.in_set("protocol", IntervalSet([(number, number)]))

    # ------------------------------------------------------------ rules and NSGs

    def rule_match(self, nsg: ResolvedNsg, direction: Direction, index: int) -> z3.BoolRef:
        """Rule ``index`` (evaluation order, defaults last) of ``nsg`` in ``direction`` matches the packet."""
        key = (nsg.name, nsg.vnet, direction, index)
        t = self._rules.get(key)
        if t is None:
            r = nsg.rules(direction)[index]
            t = self._rules[key] = self.match(r)
        return t

    def match(self, r: ResolvedRule) -> z3.BoolRef:
        """The match predicate of one resolved rule (uncached; prefer :meth:`rule_match`)."""
        sports = self.ports("sport", r.sports) if r.sport_param is None else self.param_ports("sport", r.sport_param)
        dports = self.ports("dport", r.dports) if r.dport_param is None else self.param_ports("dport", r.dport_param)
        return mk_and([self.protocol(r.protocol), sports, dports, self.side("src", r.src), self.side("dst", r.dst)])

    def _prefixes(self, nsg: ResolvedNsg, direction: Direction) -> list[z3.BoolRef]:
        """``P[i]``: some rule before ``i`` matches. Each is one Or over the previous, so the list is linear."""
        key = (nsg.name, nsg.vnet, direction)
        got = self._prefix.get(key)
        if got is None:
            got, acc = [], FALSE
            for i in range(len(nsg.rules(direction))):
                got.append(acc)
                acc = mk_or([acc, self.rule_match(nsg, direction, i)])
            self._prefix[key] = got
        return got

    def rule_decides(self, nsg: ResolvedNsg, direction: Direction, index: int) -> z3.BoolRef:
        """Rule ``index`` is the first match (so its access is the NSG's decision)."""
        return mk_and([self.rule_match(nsg, direction, index), mk_not(self._prefixes(nsg, direction)[index])])

    def nsg_allows(self, nsg: ResolvedNsg, direction: Direction) -> z3.BoolRef:
        """The NSG's first-match decision is Allow.

        Built as the if-then-else chain ``m0 ? a0 : (m1 ? a1 : ...)`` from the last rule up: each rule
        adds one node (``m ∨ rest`` for Allow, ``¬m ∧ rest`` for Deny), so the term is linear in the
        rules even after Z3 flattens nested Ors, which a disjunction of ``rule_decides`` would not be.
        """
        key = (nsg.name, nsg.vnet, direction)
        t = self._allows.get(key)
        if t is None:
            rules = nsg.rules(direction)
            acc = FALSE  # no rule matched (cannot happen: the defaults end with a catch-all Deny)
            for i in range(len(rules) - 1, -1, -1):
                m = self.rule_match(nsg, direction, i)
                acc = mk_or([m, acc]) if rules[i].access is Access.ALLOW else mk_and([mk_not(m), acc])
            t = self._allows[key] = acc
        return t

    def rule_box(self, nsg: ResolvedNsg, direction: Direction, index: int) -> tuple[Box, Box]:
        """(over, under): boxes containing / contained in the rule's match set. They differ only when a
        side names a dynamic member, whose address is somewhere in its subnet's usable range."""
        key = (nsg.name, nsg.vnet, direction, index)
        got = self._boxes.get(key)
        if got is None:
            r = nsg.rules(direction)[index]
            if r.params:  # an unset parameter may be any value: widen it for ``over``, drop it for ``under``
                any_address = self.rp.any_address
                over_r = dataclasses.replace(
                    r, src=any_address if r.src.params else r.src, dst=any_address if r.dst.params else r.dst,
                    sports=None if r.sport_param else r.sports, dports=None if r.dport_param else r.dports,
                    sport_param=None, dport_param=None)
                under_r = dataclasses.replace(r, src=AddrSet(r.src.intervals, r.src.members),
                                              dst=AddrSet(r.dst.intervals, r.dst.members),
                                              sport_param=None, dport_param=None)
                got = self._boxes[key] = (regions.rule_box(over_r, self._widen(over_r.src), self._widen(over_r.dst)),
                                          regions.rule_box(under_r))
                return got
            under = regions.rule_box(r)  # the fixed intervals only: dynamic members may be anywhere
            over = regions.rule_box(r, self._widen(r.src), self._widen(r.dst)) if r.src.members or r.dst.members \
                else under
            got = self._boxes[key] = (over, under)
        return got

    def _widen(self, s: AddrSet) -> IntervalSet:
        return s.intervals.union(IntervalSet([iv for m in s.members for iv in self.rp.ipcs[m].usable]))

    def _kept(self, nsg: ResolvedNsg, direction: Direction, region: Box) -> list[int]:
        """The rules that can match in ``region`` (their ``over`` box meets it), in order, up to the first
        that matches all of it (its ``under`` box contains it): no later rule decides a packet there.

        A list is first tested rule by rule; once it has had about as many box tests as building its
        per-field bitsets costs (INDEX_AFTER times its length), it gets them, and each later region finds
        its rules in a few big-int operations. One question pays for no index; 50 contracts over the same
        1,000-rule lists (hundreds of regions) save most of the tests.
        """
        key = (nsg.name, nsg.vnet, direction)
        kept: list[int] = []
        index = self._indexes.get(key)
        if index is None:
            n = len(nsg.rules(direction))
            if self._tested.get(key, 0) < self.index_after * n:
                tested = 0
                for i in range(n):
                    tested += 1
                    over, under = self.rule_box(nsg, direction, i)
                    if regions.box_meets(over, region):
                        kept.append(i)
                        if regions.box_subset(region, under):
                            break
                self._tested[key] = self._tested.get(key, 0) + tested
                return kept
            index = self._indexes[key] = BoxIndex([self.rule_box(nsg, direction, i)[0] for i in range(n)])
        meets = index.meeting(region)
        while meets:
            low = meets & -meets
            i = low.bit_length() - 1
            kept.append(i)
            if regions.box_subset(region, self.rule_box(nsg, direction, i)[1]):
                break
            meets ^= low
        return kept

    def nsg_allows_within(self, nsg: ResolvedNsg, direction: Direction, region: Box) -> z3.BoolRef:
        """:meth:`nsg_allows` for the packets of ``region`` only (a box over the five fields): rules that
        cannot match there are left out, and the chain ends at the first rule that matches all of it.

        Exact for every packet in the region, and usually a small fraction of the NSG: a question about
        port 22 does not need the rules about port 443. The rule terms themselves are the cached ones.
        """
        key = (nsg.name, nsg.vnet, direction, region)
        t = self._within.get(key)
        if t is not None:
            return t
        rules = nsg.rules(direction)
        acc = FALSE
        for i in reversed(self._kept(nsg, direction, region)):
            m = self.rule_match(nsg, direction, i)
            acc = mk_or([m, acc]) if rules[i].access is Access.ALLOW else mk_and([mk_not(m), acc])
        self._within[key] = acc
        return acc

    def layer_allows(self, layer: Layer, region: Box | None = None) -> z3.BoolRef:
        if region is None:
            return self.nsg_allows(layer.nsg, layer.direction)
        return self.nsg_allows_within(layer.nsg, layer.direction, region)

    # ------------------------------------------------------------ security admin rules (AVNM)

    def admin_outcome(self, layer: AdminLayer | None, region: Box | None = None) -> tuple[z3.BoolRef, z3.BoolRef]:
        """(denied, always allowed): the admin layer's first match is a Deny rule / an AlwaysAllow rule.
        Neither means an Allow rule or no rule matched, and the NSGs decide. With ``region``, rules that
        cannot match there are left out (exact for the region's packets)."""
        if layer is None:
            return FALSE, FALSE
        key = (layer.vnet, layer.direction, region)
        got = self._admin.get(key)
        if got is None:
            deny = always = FALSE
            for r in reversed(layer.rules):
                if region is not None and not regions.box_meets(regions.rule_box(r), region):
                    continue
                m = self._admin_match(layer, r)
                deny = mk_or([m, deny]) if r.access is Access.DENY else mk_and([mk_not(m), deny])
                always = mk_or([m, always]) if r.access is Access.ALWAYS_ALLOW else mk_and([mk_not(m), always])
            got = self._admin[key] = (deny, always)
        return got

    def _admin_match(self, layer: AdminLayer, r: ResolvedRule) -> z3.BoolRef:
        key = ("admin:" + layer.vnet, None, layer.direction, r.index)
        t = self._rules.get(key)
        if t is None:
            t = self._rules[key] = self.match(r)
        return t

    def with_admin(self, key: IpcKey, direction: Direction, nsgs: z3.BoolRef, region: Box | None) -> z3.BoolRef:
        """The decision of one direction at NIC ``key`` given its NSGs' decision ``nsgs``: an admin Deny
        drops the packet, an AlwaysAllow lets it past the NSGs, anything else leaves it to them."""
        deny, always = self.admin_outcome(self.rp.admin_for(key, direction), region)
        return mk_and([mk_not(deny), mk_or([always, nsgs])])

    # ------------------------------------------------------------ platform rules

    def host_service(self, s: HostService) -> z3.BoolRef:
        """The packet goes to host service ``s`` (:data:`nsgsolve.semantics.platform.HOST_SERVICES`)."""
        return mk_and([self.in_set("dst", s.addresses), self._protocols(s.protocols),
                       TRUE if s.dports == ALL_PORTS else self.in_set("dport", s.dports)])

    def _protocols(self, s: IntervalSet) -> z3.BoolRef:
        if s == IntervalSet([(0, (1 << PROTO_BITS) - 1)]):
            return TRUE
        if s == IntervalSet([(TCP, TCP), (UDP, UDP)]):
            return self.ported  # the shared term
        return self.in_set("protocol", s)

    def smtp_blocked(self, key: IpcKey) -> z3.BoolRef:
        """The platform's outbound TCP 25 block to the Internet (as the source's VNet sees it)."""
        if not self.rp.smtp_blocked:
            return FALSE
        return mk_and([self._protocols(SMTP_BLOCK.protocols), self.in_set("dport", SMTP_BLOCK.dports),
                       self.in_set("dst", self.rp.internet_tag(self.rp.ipcs[key].vnet))])

    # ------------------------------------------------------------ paths

    def outbound_allows(self, key: IpcKey, region: Box | None = None) -> z3.BoolRef:
        """The outbound side of a flow from NIC ``key``: its NIC and subnet NSGs, except where the host
        services bypass them, and the SMTP block. With ``region``, valid for the packets in it only."""
        t = self._out.get((key, region))
        if t is None:
            layers = self.rp.outbound_layers(key)
            every = mk_and([self.layer_allows(l, region) for l in layers])
            nsgs = every
            if every is not TRUE:  # else every subset of the layers allows too
                # Host-service traffic meets only the layers whose NSG names the service's tag.
                for s in reversed(HOST_SERVICES):
                    filtering = mk_and([self.layer_allows(l, region) for l in layers
                                        if s.filtered_by(l.nsg.platform_tags)])
                    nsgs = mk_ite(self.host_service(s), filtering, nsgs)
            nsgs = self.with_admin(key, Direction.OUTBOUND, nsgs, region)
            t = self._out[(key, region)] = mk_and([nsgs, mk_not(self.smtp_blocked(key))])
        return t

    def inbound_allows(self, key: IpcKey, region: Box | None = None) -> z3.BoolRef:
        """The inbound side of a flow to NIC ``key``: its subnet NSG, then its NIC NSG."""
        t = self._in.get((key, region))
        if t is None:
            nsgs = mk_and([self.layer_allows(l, region) for l in self.rp.inbound_layers(key)])
            t = self._in[(key, region)] = self.with_admin(key, Direction.INBOUND, nsgs, region)
        return t

    def path_allows(self, region: Box | None = None, sources: Iterable[IpcKey] | None = None,
                    destinations: Iterable[IpcKey] | None = None) -> z3.BoolRef:
        """Every layer on the packet's path allows it (the evaluator's decision is Allow).

        Without arguments: for every packet. A question may narrow it to the packets of ``region`` whose
        source NIC (if any) is among ``sources`` and destination NIC among ``destinations``; the caller
        guarantees its packets satisfy that, and gets a much smaller term.
        """
        key = (region, None if sources is None else frozenset(sources),
               None if destinations is None else frozenset(destinations))
        t = self._paths.get(key)
        if t is None:
            parts = []
            for k in self.endpoints if key[1] is None else sorted(key[1]):
                out = self.outbound_allows(k, region)
                if out is not TRUE:
                    parts.append(mk_implies(self.at("src", k), out))
            for k in self.endpoints if key[2] is None else sorted(key[2]):
                inb = self.inbound_allows(k, region)
                if inb is not TRUE:
                    parts.append(mk_implies(self.at("dst", k), inb))
            t = self._paths[key] = mk_and(parts)
        return t

    # ------------------------------------------------------------ domain, concrete packets, models

    def domain(self) -> list[z3.BoolRef]:
        """What every packet and address assignment satisfies: dynamic addresses are usable addresses of
        their subnet, distinct from each other and from the static NIC addresses; portless packets have
        ports 0."""
        out: list[z3.BoolRef] = []
        dyn = [k for k in self.endpoints if self.is_dynamic(k)]
        for k in dyn:
            usable = self.rp.ipcs[k].usable
            space = self.rp.ipcs[k].space
            if space is not None:
                out.append(self._usable_in(self._addr[k], space))
                continue
            if not usable:
                raise UsageError(f"NIC {k} has a dynamic IP in subnet {self.rp.ipcs[k].subnet_label}, which has no "
                                 "usable address", "Azure reserves 5 addresses of every subnet; use a /29 or larger")
            out.append(in_set(self._addr[k], usable, self.addr_bits, self.c))
        if dyn:
            near = IntervalSet([iv for k in dyn for iv in self.rp.ipcs[k].usable])
            statics = [self._addr[k] for k in self.endpoints if not self.is_dynamic(k)
                       and self._addr[k].as_long() in near]
            out.append(distinct([self._addr[k] for k in dyn] + statics))
        p = self.pkt
        out.append(mk_or([self.ported, mk_and([p.sport == self.c(0, PORT_BITS), p.dport == self.c(0, PORT_BITS)])]))
        if self.dual:
            # An address is IPv4 or IPv6 (nothing lies between them), and a packet is of one family.
            out += [self.in_set("src", ALL_ADDRS), self.in_set("dst", ALL_ADDRS),
                    mk_eq(mk_extract(128, 128, p.src), mk_extract(128, 128, p.dst))]
        return [t for t in out if t is not TRUE]

    def is_packet(self, pk: Packet) -> z3.BoolRef:
        p, c = self.pkt, self.c
        w = self.addr_bits
        return mk_and([p.protocol == c(pk.protocol, PROTO_BITS), p.src == c(pk.src, w),
                       p.sport == c(pk.sport or 0, PORT_BITS), p.dst == c(pk.dst, w),
                       p.dport == c(pk.dport or 0, PORT_BITS)])

    def is_assignment(self, assignment: Mapping[IpcKey, int]) -> z3.BoolRef:
        return mk_and([self._addr[k] == self.c(ip, self.addr_bits) for k, ip in assignment.items()
                       if k in self._addr and self.is_dynamic(k)])

    def model_packet(self, m: z3.ModelRef) -> Packet:
        p = self.pkt
        proto = value(m, p.protocol)
        if proto in PORTED_PROTOCOLS:
            return Packet(proto, value(m, p.src), value(m, p.sport), value(m, p.dst), value(m, p.dport))
        return Packet(proto, value(m, p.src), None, value(m, p.dst), None)

    def model_assignment(self, m: z3.ModelRef) -> dict[IpcKey, int]:
        return {k: value(m, self._addr[k]) for k in self.endpoints if self.is_dynamic(k)}


def _as_cidrs(s: IntervalSet) -> tuple:
    """The intervals of an allowed value of a subnet prefix parameter as prefixes for usable_addresses."""
    out = []
    for lo, hi in s:
        size = hi - lo + 1
        if size & (size - 1) == 0 and lo % size == 0:
            out.append(Cidr(lo, ADDR_BITS - size.bit_length() + 1))
    return tuple(out)


# ---------------------------------------------------------------- solving


class PolicySolver:
    """One incremental solver per policy: the domain constraints are asserted once, each question adds
    only its own constraint, and clauses Z3 learned (about the rule terms all questions share) are kept.

    ``mode`` chooses how a question's constraint is retracted afterwards:

    * ``"assumptions"`` (default): assert ``q_i => constraint`` with a fresh literal ``q_i`` and check under
      the assumption ``q_i``.
    * ``"push"``: ``push``/``add``/``check``/``pop``.
    * ``"fresh"``: a new solver for every question (the naive baseline of ``bench/bench_query.py``).

    ``bench/bench_query.py`` measures the three; assumptions are the default because they were fastest.
    """

    MODES = ("assumptions", "push", "fresh")

    def __init__(self, enc: Encoding, rlimit: int | None = None, mode: str = "assumptions"):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}")
        self.enc, self.mode = enc, mode
        self.rlimit = DEFAULT_RLIMIT if rlimit is None else rlimit
        self._base = enc.domain()
        self._full: z3.BoolRef | None = None
        self.solver = self._new_solver()
        self._n = 0
        self._params_seen = 0  # how many of the encoding's parameter domain constraints are asserted

    def _sync_params(self) -> None:
        """Assert the domain of parameter variables the encoding created since the last question (they are
        made as rule terms are built, so a question's own terms may have added some)."""
        new = self.enc.param_domain[self._params_seen:]
        if new:
            self._params_seen += len(new)
            self._base.extend(new)
            if self.mode != "fresh":
                self.solver.add(new)

    def _new_solver(self) -> z3.Solver:
        s = make_solver(self.rlimit)
        s.add(self._base)
        return s

    def full_decision(self) -> z3.BoolRef:
        """A literal equal to the decision for every packet (:meth:`Encoding.path_allows`), asserted once."""
        if self._full is None:
            self._full = z3.Bool("allowed!")
            definition = self._full == self.enc.path_allows()
            self._base.append(definition)
            if self.mode != "fresh":
                self.solver.add(definition)
        return self._full

    def find(self, constraint: z3.BoolRef, allowed: bool | None = None, what: str = "a question",
             decision: z3.BoolRef | None = None) -> z3.ModelRef | None:
        """A model of ``constraint`` whose packet the policy allows (``allowed=True``), blocks (``False``)
        or either (``None``); ``None`` when there is none. Raises SolverUnknown when Z3 gives up.

        ``decision`` is the decision term to use, valid at least on the packets of ``constraint`` (for
        example :meth:`Encoding.path_allows` narrowed to a question); by default the whole policy's.
        """
        if allowed is not None:
            d = self.full_decision() if decision is None else decision
            constraint = mk_and([constraint, d if allowed else mk_not(d)])
        self._sync_params()
        if self.mode == "assumptions":
            self._n += 1
            q = z3.Bool(f"q!{self._n}")
            self.solver.add(mk_implies(q, constraint))
            return self.solver.model() if check(self.solver, what, [q], self.rlimit) else None
        if self.mode == "push":
            self.solver.push()
            try:
                self.solver.add(constraint)
                return self.solver.model() if check(self.solver, what, rlimit=self.rlimit) else None
            finally:
                self.solver.pop()
        s = self._new_solver()
        s.add(constraint)
        return s.model() if check(s, what, rlimit=self.rlimit) else None

    def decide(self, packet: Packet, assignment: Mapping[IpcKey, int] | None = None) -> Access:
        """Z3's decision for one concrete packet (and addresses of the dynamic NICs, if given)."""
        fixed = mk_and([self.enc.is_packet(packet), self.enc.is_assignment(assignment or {})])
        what = f"the decision for {packet}"
        if self.find(fixed, True, what) is not None:
            return Access.ALLOW
        if self.find(fixed, False, what) is not None:
            return Access.DENY
        raise ValueError(f"{packet} with {assignment} is outside the domain (an invalid address assignment?)")
