"""Rules dead across layers: the paths through one NSG as first-match lists of every layer they meet.

For every NIC whose path meets the NSG (static NICs with the same NSGs together, each dynamic NIC on its
own), the same-direction layers and the platform's outbound rules come from
:func:`nsgsolve.regions.paths.path_layers`; an Allow rule is dead when every packet it decides on those
paths is denied at another layer. Used by the NSG004 check (:mod:`nsgsolve.analyses.lint.checks.layers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from nsgsolve.analyses.lint import engine
from nsgsolve.analyses.lint.engine import _bits, _cut, _FieldIndex, _first, _greedy, _matching, _widest, pick
from nsgsolve.analyses.lint.findings import RuleRef, admin_owner
from nsgsolve.model import Access, Direction, Span
from nsgsolve.regions.box import DST, SRC, Box, Splitter, box_intersection
from nsgsolve.semantics.addresses import IntervalSet
from nsgsolve.semantics.resolve import IpcKey, ResolvedNsg, ResolvedPolicy


def _owner(layer, entry) -> str:
    """Who a denying entry belongs to, as a finding names it: its NSG, the VNet's admin rules (by their
    collection, like every admin finding) or Azure's platform."""
    if layer.nsg is not None:
        return layer.nsg
    if layer.kind == "admin" and entry.rule is not None:
        return admin_owner(entry.rule.admin_rule)
    return "platform"


@dataclass
class _Context:
    """Paths through the NSG that share one set of first-match lists: NICs with the same layers seen
    from one kind of other endpoint. Static NICs with the same NSGs share lists exactly (a rule side can
    name a static NIC only by its address), so they are one context whose universe holds all their
    addresses."""

    nics: dict[str, IntervalSet]  # "nic web1" -> its addresses on the NSG's side of the packet
    layers: list  # PathLayer, same direction as the NSG (plus the platform's outbound rules)
    pos: int  # the NSG's layer
    universe: Box
    index: list[list[_FieldIndex]]
    here_dynamic: IpcKey | None = None  # the dynamic NIC on the NSG's side, when the context is one
    there_dynamic: IpcKey | None = None  # the dynamic NIC on the other side, when the context is one
    allow: list[int] | None = None  # per layer, its Allow rules (a bitset), for _passes


@dataclass(frozen=True)
class DeadAcrossLayers:
    """Why an Allow rule is dead across layers: the NICs behind it, the denying rules of the other
    layers, and one packet the rule decides (Allow) on some NIC's path that ``denied_by`` denies."""

    nics: list[str]
    deniers: list[RuleRef]
    point: tuple[int, ...] | None = None
    src_dynamic: IpcKey | None = None
    dst_dynamic: IpcKey | None = None
    denied_by: RuleRef | None = None


PASSES, DENIED, NOTHING = "passes", "denied", "nothing"  # what _passes finds


def _passes(ctx: _Context, u: Box, before: int, meet: list[int]) -> str | None:
    """The exact pre-pass for "does the rule decide a packet of ``u`` here that every other layer
    allows?": PASSES; DENIED (it decides packets here, and none of them passes); NOTHING (the NSG's
    earlier rules match all of ``u``); or None when it needs more than SWEEP_BUDGET cuts (then the
    partition answers). Pieces of ``u`` first lose what the NSG's earlier rules (``before``) match, then
    go through the other layers in turn, keeping the parts whose first match there is an Allow."""
    layers, pos = ctx.layers, ctx.pos
    other = [k for k in range(len(layers)) if k != pos]
    if ctx.allow is None:
        ctx.allow = [sum(1 << j for j, e in enumerate(layer.rules) if e.access is Access.ALLOW) for layer in layers]
    every = (0, 1, 2, 3, 4)
    # piece, step (0: the NSG's own layer), candidates, the fields to check them in (as in ListAnalysis._sweep)
    stack: list[tuple[Box, int, int, tuple[int, ...]]] = [(u, 0, before, every)]
    steps = 0
    decides = False  # some piece of ``u`` has no earlier rule of the NSG: the rule decides it
    while stack:
        piece, step, c, fields = stack.pop()
        k = pos if step == 0 else other[step - 1]
        index = ctx.index[k]
        for d in fields:
            c &= index[d].meeting(piece[d])
            if not c:
                break
        if not c:
            if step == 0:
                if not other:
                    return PASSES
                decides = True
                stack.append((piece, 1, meet[other[0]], every))
            continue  # no rule of this other layer matches: not allowed
        steps += 1
        if steps > engine.SWEEP_BUDGET:
            return None
        if step == 0:
            low = _widest(index, piece, c)  # any earlier rule will do: what they match is not the rule's
            if not low:
                continue
        else:
            low = c & -c
        c ^= low
        j = low.bit_length() - 1
        inside, rest = _cut(piece, layers[k].rules[j].box)
        stack += [(r, step, c, changed) for r, changed in rest]
        if step and ctx.allow[k] >> j & 1:
            if step == len(other):
                return PASSES
            stack.append((inside, step + 1, meet[other[step]], every))
    return DENIED if decides else NOTHING


def _layer_index(rp: ResolvedPolicy, layer) -> list[_FieldIndex]:
    """The field indexes of one path layer's list, shared by every path and NSG whose layer holds the same
    sets in a field: path_layers reuses one box per rule that names no endpoint (and the platform's
    entries reuse constant sets), so most paths through an NSG see the same sets, rule for rule. On two
    1,000-rule NSGs the 20 path layers hold 5 distinct lists; building each index again was most of
    the serial set-up before lint forks."""
    cache = rp.__dict__.setdefault("_lint_field_index", {})
    out = []
    for d in range(5):
        sets = tuple(e.box[d] for e in layer.rules)
        key = (d, tuple(map(id, sets)))
        got = cache.get(key)
        if got is None:
            got = cache[key] = (sets, _FieldIndex(sets))  # the sets stay alive, so the ids stay theirs
        out.append(got[1])
    return out


class CrossLayer:
    """The paths through one NSG in one direction (and VNet) as first-match lists from
    :func:`nsgsolve.regions.paths.path_layers`: for every NIC whose path meets the NSG, against any address that
    is no dynamic NIC and against each dynamic NIC a rule names, the same-direction layers (and the
    platform's outbound rules). An Allow rule is dead when it decides packets on some of these paths and
    every one of them is denied at another layer."""

    def __init__(self, rp: ResolvedPolicy, nsg: ResolvedNsg, direction: Direction):
        from nsgsolve.semantics.addresses import ALL_IPS, ALL_PORTS, ALL_V6
        from nsgsolve.regions.paths import endpoint_addresses, path_layers
        from nsgsolve.regions.box import ALL_PROTOCOLS

        self.nsg = nsg
        self.direction = direction
        inbound = direction is Direction.INBOUND
        groups: dict[tuple, list[IpcKey]] = {}
        for k, info in rp.ipcs.items():
            if info.vnet == nsg.vnet and nsg.name in (info.subnet_nsg, info.nic_nsg):
                sig = (info.subnet_nsg, info.nic_nsg, info.vnet) if info.ip is not None else (k,)
                groups.setdefault(sig, []).append(k)
        self.contexts: list[_Context] = []
        # A path lies in one address family: each group's contexts are built per family, from the addresses
        # of that family its NICs (and the other endpoint) may have.
        families = (ALL_IPS, ALL_V6) if rp.has_ipv6 else (ALL_IPS,)
        for keys in groups.values():
            rep = keys[0]
            layer_nsgs = {l.nsg.name: l.nsg for l in (rp.inbound_layers(rep) if inbound else rp.outbound_layers(rep))}
            named: set[IpcKey] = set()  # dynamic configurations some rule of these layers names
            for n in layer_nsgs.values():
                for r in n.rules(direction):
                    named |= r.src.members | r.dst.members
            for other in [None] + sorted(k for k in named if k not in keys):
                src, dst = (other, rep) if inbound else (rep, other)
                layers = [l for l in path_layers(rp, src, dst) if l.direction is direction]
                here_dyn = rep if rp.ipcs[rep].ip is None else None
                there_dyn = other if other is not None and rp.ipcs[other].ip is None else None
                index: list[list[_FieldIndex]] | None = None  # the layers' indexes, the same in every family
                for family in families:
                    mine = {f"nic {k}": a for k in keys if (a := endpoint_addresses(rp, k, family))}
                    here = IntervalSet([iv for a in mine.values() for iv in a])
                    there = family if other is None else endpoint_addresses(rp, other, family)
                    universe = (Box(ALL_PROTOCOLS, there, ALL_PORTS, here, ALL_PORTS) if inbound
                                else Box(ALL_PROTOCOLS, here, ALL_PORTS, there, ALL_PORTS))
                    if any(not x for x in universe):
                        continue
                    for pos, l in enumerate(layers):
                        if l.nsg == nsg.name:
                            if index is None:
                                index = [_layer_index(rp, layer) for layer in layers]
                            self.contexts.append(_Context(mine, layers, pos, universe, index, here_dyn, there_dyn))

    def dead(self, i: int) -> DeadAcrossLayers | None:
        """The NICs, denying rules and a witness when rule ``i`` of the NSG is an Allow every path denies
        elsewhere."""
        name = self.nsg.rules(self.direction)[i].name
        inbound = self.direction is Direction.INBOUND
        side = DST if inbound else SRC
        there_field = SRC if inbound else DST
        nics: list[str] = []  # "nic web1" labels, each once
        deniers: dict[tuple[str | None, str], RuleRef] = {}
        witness: tuple | None = None

        def deny_ref(entry, who: str) -> RuleRef:
            span = entry.rule.rule.span if entry.rule is not None else Span("<azure platform>", 0, 0)
            default = entry.rule.rule.is_default if entry.rule is not None else False
            return RuleRef(entry.name, entry.priority, entry.access, span, default, who)
        # First every context's yes-or-no (a packet the rule decides that every other layer allows makes it
        # alive): the witness and the denying rules below cost more, and are wanted only when no path passes.
        denied: list[tuple[_Context, Box, list[int], list[list[int]], list[list[Box]], Splitter | None]] = []
        for ctx in self.contexts:
            layers, pos = ctx.layers, ctx.pos
            mine = layers[pos]
            e = next(k for k, entry in enumerate(mine.rules) if entry.rule is not None and entry.rule.name == name)
            u: Box = box_intersection(mine.rules[e].box, ctx.universe)
            if any(not x for x in u):
                continue
            meet = []
            for layer, ix in zip(layers, ctx.index):
                m = (1 << len(layer.rules)) - 1
                for d in range(5):
                    m &= ix[d].meeting(u[d])
                meet.append(m)
            before = meet[pos] & ((1 << e) - 1)
            # Cheap first: a packet the rule decides here that every other layer allows proves it alive.
            point = _greedy(ctx.index[pos], u, before)
            if point is not None and all(
                    layers[k].rules[_first(meet[k] & _matching(ctx.index[k], point))].access is Access.ALLOW
                    for k in range(len(layers)) if k != pos):
                return None
            other = [k for k in range(len(layers)) if k != pos]
            passes = _passes(ctx, u, before, meet)
            if passes == PASSES:
                return None
            if passes == NOTHING:
                continue  # the rule decides nothing on these paths (the partition below would find no cell)
            idx = [_bits(before)] + [_bits(meet[k]) for k in other]
            lists = [[layers[k].rules[j].box for j in ks] for k, ks in zip([pos] + other, idx)]
            sp = None
            if passes is None:  # the pre-pass ran out of budget: the partition answers
                sp = Splitter(lists, universe=u)

                def allowed(ms: tuple[int, ...], layers=layers, other=other, idx=idx) -> bool:
                    if ms[0]:
                        return False
                    return all(m and layers[k].rules[idx[n + 1][_first(m)]].access is Access.ALLOW
                               for n, (k, m) in enumerate(zip(other, ms[1:])))

                if sp.find(allowed) is not None:
                    return None
            denied.append((ctx, u, other, idx, lists, sp))
        for ctx, u, other, idx, lists, sp in denied:
            layers = ctx.layers
            sp = sp or Splitter(lists, universe=u)
            here = IntervalSet([iv for a in ctx.nics.values() for iv in a])

            def readable(d: int, s: IntervalSet) -> int:
                # The other endpoint away from this side's NICs, so the packet does not loop back to them.
                if d == there_field:
                    rest = s.difference(here)
                    return pick(d, rest) if rest else max(hi for _, hi in s)
                return pick(d, s)

            got = sp.find(lambda ms: ms[0] == 0, readable)
            if got is None:
                continue  # the rule decides nothing on these paths
            if witness is None:
                # A packet the rule decides here; every packet it decides is denied on this path, by the
                # first other layer (in path order) whose first match denies.
                point, ms = got
                found = next(((k, layers[k].rules[idx[n + 1][_first(ms[n + 1])]]) for n, k in enumerate(other)
                              if ms[n + 1] and layers[k].rules[idx[n + 1][_first(ms[n + 1])]].access
                              is Access.DENY), None)
                if found is not None:
                    k, entry = found
                    src_dyn, dst_dyn = ((ctx.there_dynamic, ctx.here_dynamic) if inbound
                                        else (ctx.here_dynamic, ctx.there_dynamic))
                    witness = (point, src_dyn, dst_dyn, deny_ref(entry, _owner(layers[k], entry)))
            for label, addrs in ctx.nics.items():
                if u[side].intersection(addrs) and label not in nics:
                    nics.append(label)

            def leaf(c: int) -> int:
                if c & sp.list_masks[0]:
                    return 0
                out = 0
                for mask in sp.list_masks[1:]:
                    m = c & mask
                    out |= m & -m
                return out

            cells = sp.fold(leaf)
            for n, k in enumerate(other):
                m = (cells & sp.list_masks[n + 1]) >> sp.offsets[n + 1]
                for b in _bits(m):
                    entry = layers[k].rules[idx[n + 1][b]]
                    if entry.access is Access.DENY:
                        who = _owner(layers[k], entry)
                        deniers.setdefault((who, entry.name), deny_ref(entry, who))
        if not nics:
            return None
        if witness is None:
            return DeadAcrossLayers(nics, list(deniers.values()))
        point, src_dyn, dst_dyn, denied_by = witness
        deniers.setdefault((denied_by.nsg, denied_by.name), denied_by)
        return DeadAcrossLayers(nics, list(deniers.values()), point, src_dyn, dst_dyn, denied_by)
