"""The ARM template expression language, the subset real templates use.

A JSON string ``"[concat(parameters('prefix'), '-nsg')]"`` is an expression; ``"[[..."`` is a literal string
starting with ``[``. :func:`parse_expression` turns the text into a small tree, :class:`Evaluator` computes
it against a template's parameters, variables and copy-loop indexes.

Evaluation never raises for something nsgsolve cannot compute offline (``reference()`` of a resource that
is not in the template, ``listKeys()``, a parameter without a value, ...): it yields an :class:`Unknown`
that travels through the rest of the expression. Only the importer knows whether a value matters for NSG
semantics (a location or a VM size does not), so it decides whether an Unknown is an error (with the
template path and the expression) or, under ``--symbolic``, a value left open. Function names are
case-insensitive, as in ARM.

Values that depend on the deployment (``resourceGroup().name``, ``subscription().subscriptionId``,
``uniqueString()``, ``guid()``) evaluate to stable placeholders: they only ever become names and ids,
and the same arguments give the same placeholder, so references between resources still match.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

from nsgsolve.errors import InputError
from nsgsolve.limits import (ARM_MAX_COPY_COUNT, ARM_MAX_EXPRESSION_CHARS, MAX_EVAL_STEPS, MAX_EXPRESSION_DEPTH,
                             MAX_VALUE_CHARS, MAX_VALUE_ITEMS, decimal)
from nsgsolve.model import NOSPAN, Span
from nsgsolve.importers.jsonpos import JArray, JObject, known


@dataclass(frozen=True)
class Unknown:
    """A value nsgsolve could not compute: why, from which expression text, and where it was written."""

    reason: str
    expr: str = ""
    span: Span = NOSPAN

    def __str__(self) -> str:  # pragma: no cover - debugging aid
        return f"<unknown: {self.reason}>"


class Placeholder(str):
    """Text standing for a parameter that has no value (no default, none given; not ``--strict``): the
    parameter's name, so a resource named ``[concat(parameters('cluster'), '-nsg')]`` reads
    ``cluster-nsg``. What is computed from it is a Placeholder too (``params`` says from which
    parameters), except a number or a truth value, which would be a guess and is :class:`Unknown`. The
    importer uses a Placeholder only where a name goes; an address or a port made of one is left open
    (symbolic), and anything else (a protocol, a priority) is E610 (docs/import.md)."""

    params: frozenset = frozenset()
    # The parameter itself, not text computed from it: an address or port field that is exactly this
    # becomes a symbolic parameter (docs/import.md), restricted to ``allowed`` (its allowedValues) if any.
    bare: bool = False
    allowed: tuple = ()
    declared_at: Any = None
    # ``of``: the parameter this text reads as, prefix for prefix, whatever its value: the parameter itself or
    # it through functions that leave prefix texts as they are (_keep_prefixes). ``item``: one item of
    # split() of such text, so a rule side holding just it is "any list of prefixes" (docs/import.md).
    of: str | None = None
    item: bool = False

    def __new__(cls, text: str, params: Any) -> "Placeholder":
        obj = super().__new__(cls, text)
        obj.params = frozenset(params)
        return obj


# Separators split() may cut a list of prefixes at: none can occur inside a prefix, a range or a tag, so
# every list of prefixes is the split of some value (its items joined by the separator).
_LIST_SEPARATORS = frozenset(",; |\t\n")


def _keep_prefixes(name: str, args: list, out: Any) -> Any:
    """Mark the result of ``name(args)`` when its first argument reads as parameter P (Placeholder.of)
    and the function keeps every prefix text (and list of them) as it is: replace(x, ' ', ''), trim,
    toLower, toUpper (prefixes and ranges are read case-insensitively); split(x, SEP) then makes its item
    "any list of prefixes" read from P. A parameter with allowedValues keeps its choices only when bare."""
    src = args[0] if args else None
    if not isinstance(src, Placeholder) or src.of is None or src.item or src.allowed:
        return out
    if isinstance(out, Placeholder) and (
            (name in ("trim", "tolower", "toupper") and len(args) == 1)
            or (name == "replace" and len(args) == 3 and args[1] == " " and args[2] == "")):
        out.of, out.declared_at = src.of, src.declared_at
    elif name == "split" and len(args) == 2 and isinstance(out, list) and len(out) == 1 \
            and isinstance(out[0], Placeholder):
        seps = args[1] if isinstance(args[1], list) else [args[1]]
        if seps and all(isinstance(d, str) and d and set(d) <= _LIST_SEPARATORS for d in seps):
            out[0].of, out[0].item, out[0].declared_at = src.of, True, src.declared_at
    return out


def find_unset(value: Any) -> Placeholder | None:
    """The first :class:`Placeholder` anywhere inside ``value``, or None."""
    if type(value) is str:  # plain text, most values of a rule: no call per item below either
        return None
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, dict):
        for v in value.values():
            if type(v) is not str:
                u = find_unset(v)
                if u is not None:
                    return u
    elif isinstance(value, list):
        for v in value:
            if type(v) is not str:
                u = find_unset(v)
                if u is not None:
                    return u
    return None


def _unset_params(values: Any) -> frozenset:
    out: frozenset = frozenset()
    stack = [values]
    while stack:
        v = stack.pop()
        if isinstance(v, Placeholder):
            out |= v.params
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


def _taint(value: Any, params: frozenset, text: str, span: Span) -> Any:
    """The result of a function of a placeholder: text stays a placeholder; a number or a truth value
    computed from a parameter nobody gave is unknown."""
    if isinstance(value, str):
        return Placeholder(value, params)
    if isinstance(value, list):
        return [_taint(v, params, text, span) for v in value]
    if isinstance(value, dict):
        return {k: _taint(v, params, text, span) for k, v in value.items()}
    if value is None or isinstance(value, Unknown):
        return value
    names = ", ".join(f"'{p}'" for p in sorted(params))
    return Unknown(f"depends on parameter {names}, which has no value; give one with --param NAME=VALUE or a "
                   f"parameters file (--params-file)", text, span)


def find_unknown(value: Any) -> Unknown | None:
    """The first Unknown anywhere inside ``value`` (objects and arrays included), or None."""
    if type(value) is str:  # plain text, most values of a rule: no call per item below either
        return None
    if isinstance(value, Unknown):
        return value
    if isinstance(value, dict):
        for v in value.values():
            if type(v) is not str:
                u = find_unknown(v)
                if u:
                    return u
    elif isinstance(value, list):
        for v in value:
            if type(v) is not str:
                u = find_unknown(v)
                if u:
                    return u
    return None


def with_child_ids(props: Any, target: str) -> Any:
    """A resource's evaluated properties with the ids of its inline children filled in: they are known before
    deployment (resourceId of parent and child names), and templates read them so
    (``reference(vnet).subnets[0].id``, Bicep's ``vnet.properties.subnets[0].id``)."""
    parsed = parse_resource_id(target) if target.startswith("/") else None
    if parsed and isinstance(props, dict):
        for child in ("subnets", "securityRules", "virtualNetworkPeerings"):
            items = props.get(child)
            if isinstance(items, list):
                for it in items:
                    if isinstance(it, dict) and isinstance(it.get("name"), str) and "id" not in it:
                        it["id"] = resource_id(f"{parsed[0]}/{child}", [*parsed[1], it["name"]])
    return props


# ---------------------------------------------------------------- syntax

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<punct>[(),.\[\]])
    )""", re.X)


class ExprSyntaxError(Exception):
    pass


class ExprTooDeep(ExprSyntaxError):
    """Nesting beyond MAX_EXPRESSION_DEPTH: an error (E690), never an unknown value."""


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Call:
    name: str  # lower case; "ns.fn" for user-defined functions
    args: tuple = ()


@dataclass(frozen=True)
class Prop:
    target: Any
    name: str


@dataclass(frozen=True)
class Index:
    target: Any
    index: Any


def is_expression(s: Any) -> bool:
    return isinstance(s, str) and s.startswith("[") and s.endswith("]") and not s.startswith("[[")


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    end = len(text.rstrip())  # once: slicing the rest at every token made tokenising quadratic
    while pos < end:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExprSyntaxError(f"unexpected {text[pos:].lstrip()[:1]!r} at offset {pos}")
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> Any:
    """Parse the inside of ``[...]`` (without the brackets). Cached: a copy loop evaluates one expression
    hundreds of times, and the trees are immutable."""
    toks = _tokens(text)
    pos = 0
    depth = 0

    def peek(v: str | None = None) -> bool:
        return pos < len(toks) and (v is None or toks[pos][1] == v)

    def take(v: str) -> None:
        nonlocal pos
        if not peek(v):
            got = toks[pos][1] if pos < len(toks) else "end of expression"
            raise ExprSyntaxError(f"expected {v!r}, found {got!r}")
        pos += 1

    def expr() -> Any:
        nonlocal pos, depth
        depth += 1
        try:
            return expr_at_depth()
        finally:
            depth -= 1

    def expr_at_depth() -> Any:
        nonlocal pos
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExprTooDeep(f"the expression nests calls more than {MAX_EXPRESSION_DEPTH} levels deep")
        if pos >= len(toks):
            raise ExprSyntaxError("unexpected end of expression")
        kind, val = toks[pos]
        pos += 1
        if kind == "str":
            node: Any = Lit(val[1:-1].replace("''", "'"))
        elif kind == "num":
            node = Lit(float(val) if "." in val else decimal(val))
        elif kind == "name":
            name = val
            while peek(".") and pos + 1 < len(toks) and toks[pos + 1][0] == "name" and \
                    pos + 2 < len(toks) and toks[pos + 2][1] == "(":
                pos += 1
                name += "." + toks[pos][1]
                pos += 1
            take("(")
            args = []
            if not peek(")"):
                args.append(expr())
                while peek(","):
                    pos += 1
                    args.append(expr())
            take(")")
            node = Call(name.lower(), tuple(args))
        else:
            raise ExprSyntaxError(f"unexpected {val!r}")
        while True:
            if peek("."):
                pos += 1
                if pos >= len(toks) or toks[pos][0] != "name":
                    raise ExprSyntaxError("expected a property name after '.'")
                node = Prop(node, toks[pos][1])
                pos += 1
            elif peek("["):
                pos += 1
                idx = expr()
                take("]")
                node = Index(node, idx)
            else:
                return node

    node = expr()
    if pos != len(toks):
        raise ExprSyntaxError(f"unexpected {toks[pos][1]!r} after the expression")
    return node


# ---------------------------------------------------------------- evaluation

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "resourceGroup"
LOCATION = "location"
LOCATION_PLACEHOLDER = "resourceGroup().location"


class _Fail(Exception):
    """Raised inside a function to produce an Unknown with this reason."""


def _placeholder_hash(args: tuple, n: int) -> str:
    h = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(alphabet[int(h[i:i + 2], 16) % 32] for i in range(0, 2 * n, 2))


def resource_id(rtype: str, names: list[str], sub: str = SUBSCRIPTION_ID, rg: str | None = RESOURCE_GROUP) -> str:
    """``/subscriptions/S/resourceGroups/G/providers/NS/t1/n1/t2/n2``, as Azure builds it."""
    parts = rtype.strip("/").split("/")  # ARM tolerates 'Microsoft.Network/virtualNetworks/'
    rtype = "/".join(parts)
    if len(parts) - 1 != len(names):
        raise _Fail(f"resource type '{rtype}' needs {len(parts) - 1} name(s), got {len(names)}")
    path = parts[0]
    for t, n in zip(parts[1:], names):
        path += f"/{t}/{n}"
    prefix = f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg is not None else "")
    return f"{prefix}/providers/{path}"


def parse_resource_id(rid: str) -> tuple[str, list[str]] | None:
    """``(type, names)`` from a resource id, e.g. ``('Microsoft.Network/virtualNetworks/subnets', [v, s])``."""
    m = re.search(r".*/providers/([^/]+)/(.+)$", rid, re.I)
    if not m:
        return None
    rest = m.group(2).strip("/").split("/")
    if len(rest) % 2:
        return None
    types = rest[0::2]
    names = rest[1::2]
    return m.group(1) + "/" + "/".join(types), names


def _fmt(template: str, args: list[Any]) -> str:
    """.NET composite formatting as ARM's format() does: {0}, {1:D3}, {{ and }}."""
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == "{":
            if template.startswith("{{", i):
                out.append("{")
                i += 2
                continue
            j = template.find("}", i)
            if j < 0:
                raise _Fail("format(): unbalanced '{'")
            spec = template[i + 1:j]
            idx_s, _, fmt = spec.partition(":")
            try:
                v = args[int(idx_s.strip())]
            except (ValueError, IndexError):
                raise _Fail(f"format(): bad placeholder {{{spec}}}") from None
            if fmt:
                if fmt[:1] in ("D", "d") and isinstance(v, int) and (fmt[1:].isdigit() or not fmt[1:]):
                    out.append(str(v).zfill(_at_most(int(fmt[1:] or 0), MAX_VALUE_CHARS, "format() width")))
                else:
                    raise _Fail(f"format(): format specifier '{fmt}' is not supported")
            else:
                out.append(_to_str(v))
            i = j + 1
        elif c == "}" and template.startswith("}}", i):
            out.append("}")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _to_str(v: Any) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"  # ARM prints .NET booleans
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    if v is None:
        return ""
    return str(v)


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise _Fail("int() of a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    raise _Fail(f"int() of {v!r}")


def _int64(v: int) -> int:
    """ARM integers are 64-bit: a result outside is an error there, and unbounded Python integers could be
    squared into megabytes by a chain of variables."""
    if not -(1 << 63) <= v < (1 << 63):
        raise _Fail("integer overflow (ARM integers are 64-bit)")
    return v


class ValueTooLarge(Exception):
    """A computed value beyond MAX_VALUE_CHARS / MAX_VALUE_ITEMS: an error (E693), never an unknown."""


def _at_most(n: int, limit: int, what: str) -> int:
    if n > limit:
        raise ValueTooLarge(f"{what} {n:,} is more than nsgsolve computes ({limit:,})")
    return n


def _json_loads(s: Any) -> Any:
    if not isinstance(s, str):
        raise _Fail("json() needs a string")
    if len(s) > MAX_VALUE_CHARS:
        raise ValueTooLarge(f"json() of a string of {len(s):,} characters")
    try:
        return json.loads(s)
    except RecursionError:  # the C decoder unwinds cleanly
        raise _Fail("json(): the text is nested too deeply") from None


def _size(v: Any) -> int:
    """The size that counts against the value limits: characters of a string, items of an array/object."""
    return len(v) if isinstance(v, (str, list, dict)) else 0


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise _Fail(what)


def _concat(*args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [x for a in args for x in a]
    if any(isinstance(a, (list, dict)) for a in args):
        raise _Fail("concat() mixes arrays and strings")
    return "".join(_to_str(a) for a in args)


def merge_objects(objs: Any) -> dict:
    """Objects merged shallowly, a later key replacing an earlier one matched without regard to case: Azure
    reads property names so, and the converter reads the first spelling of a key, so ``union(base,
    createObject('Access', 'Deny'))`` over ``base.access = 'Allow'`` must leave Deny, not both."""
    out: dict = {}
    folded: dict[str, str] = {}
    for o in objs:
        for k, v in o.items():
            old = folded.get(k.lower())
            if old is not None and old != k:
                del out[old]
            folded[k.lower()] = k
            out[k] = v
    return out


def _union(*args: Any) -> Any:
    if all(isinstance(a, dict) for a in args):
        return merge_objects(args)
    if all(isinstance(a, list) for a in args):
        out_l: list = []
        for a in args:
            for x in a:
                if x not in out_l:
                    out_l.append(x)
        return out_l
    raise _Fail("union() of values that are not all arrays or all objects")


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return _to_str(item).lower() in container.lower()  # ARM: case-insensitive for strings
    if isinstance(container, dict):
        return any(k.lower() == str(item).lower() for k in container)
    if isinstance(container, list):
        return item in container
    raise _Fail("contains() of a value that is not a string, array or object")


def _split(s: Any, delims: Any) -> list[str]:
    _need(isinstance(s, str), "split() of a non-string")
    ds = delims if isinstance(delims, list) else [delims]
    pattern = "|".join(re.escape(d) for d in ds)
    return re.split(pattern, s) if pattern else [s]


def _cidr_subnet(cidr: str, new_len: int, index: int) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    _need(new_len >= net.prefixlen, "cidrSubnet(): new length shorter than the network's")
    step = 1 << (net.max_prefixlen - new_len)
    addr = int(net.network_address) + index * step
    sub = ipaddress.ip_network((addr, new_len))
    _need(sub.subnet_of(net), "cidrSubnet(): index outside the network")  # type: ignore[arg-type]
    return str(sub)


def _cidr_host(cidr: str, index: int) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    # Azure's cidrHost skips the network address (host 0 is the first usable one).
    return str(net.network_address + index + 1)


def _uri(base: str, rel: str) -> str:
    if re.match(r"^[a-z]+://", rel, re.I):
        return rel
    if base.endswith("/"):
        return base + rel.lstrip("/")
    return base.rsplit("/", 1)[0] + "/" + rel.lstrip("/")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    return "null"


def _truth(v: Any) -> bool:
    _need(isinstance(v, bool), "a lambda that should decide true or false returned something else")
    return v


def _eq(a: Any, b: Any) -> bool:
    """ARM equals(): values of different kinds are never equal (no '1' == 1); strings case-sensitively."""
    return _kind(a) == _kind(b) and a == b


def _bad(why: str) -> Any:
    raise _Fail(why)


def _index_of(v: Any, x: Any, last: bool) -> int:
    """indexOf()/lastIndexOf() of a string (case-insensitive) or of an array (first/last equal item)."""
    if isinstance(v, str):
        return v.lower().rfind(_to_str(x).lower()) if last else v.lower().find(_to_str(x).lower())
    if isinstance(v, list):
        idx = [i for i, y in enumerate(v) if _eq(y, x)]
        return (idx[-1] if last else idx[0]) if idx else -1
    raise _Fail("indexOf() of a value that is neither a string nor an array")


def _try_get(v: Any, *keys: Any) -> Any:
    """tryGet(object or array, key...): null where a key or index is missing (Bicep's ``.?``)."""
    for k in keys:
        if isinstance(v, dict) and isinstance(k, str):
            v = next((x for kk, x in v.items() if kk.lower() == k.lower()), None)
        elif isinstance(v, list) and isinstance(k, int) and not isinstance(k, bool):
            v = v[k] if 0 <= k < len(v) else None
        elif v is None:
            return None
        else:
            raise _Fail("tryGet() of a value that is not an object or array, or a key of the wrong kind")
        if v is None:
            return None
    return v


def _from_end(a: Any, i: Any, strict: bool) -> Any:
    n = _to_int(i)
    _need(isinstance(a, list), "indexFromEnd() of a non-array")
    if 1 <= n <= len(a):
        return a[len(a) - n]
    _need(not strict, f"indexFromEnd(): {n} is outside an array of {len(a)}")
    return None


def _shallow_merge(objs: Any) -> dict:
    _need(isinstance(objs, list) and all(isinstance(o, dict) for o in objs), "shallowMerge() needs an array of objects")
    return merge_objects(objs)


def _parse_cidr(cidr: Any) -> dict:
    net = ipaddress.ip_network(str(cidr), strict=False)
    if net.version == 4:
        hosts = (net.network_address + 1, net.broadcast_address - 1) if net.prefixlen < 31 else \
            (net.network_address, net.broadcast_address)
        return {"network": str(net.network_address), "netmask": str(net.netmask),
                "broadcast": str(net.broadcast_address), "firstUsable": str(hosts[0]), "lastUsable": str(hosts[1]),
                "cidr": net.prefixlen}
    return {"network": str(net.network_address), "netmask": str(net.netmask), "firstUsable": str(net.network_address),
            "lastUsable": str(net.broadcast_address), "cidr": net.prefixlen}


def _provider_path(rtype: Any, names: Any) -> str:
    """``NS/t1/n1/t2/n2`` of a resource type and its names (the part of an id after ``/providers/``)."""
    return resource_id(_to_str(rtype), [_to_str(n) for n in names]).split("/providers/", 1)[1]


def _mg_resource_id(*args: Any) -> str:
    i = next((k for k, a in enumerate(args) if isinstance(a, str) and "/" in a and "." in a.split("/")[0]), None)
    if i is None or i > 1:
        raise _Fail("managementGroupResourceId(): no resource type argument")
    mg = str(args[0]) if i == 1 else "managementGroup"
    return f"/providers/Microsoft.Management/managementGroups/{mg}/providers/{_provider_path(args[i], args[i + 1:])}"


def _data_uri_to_string(s: Any) -> str:
    _need(isinstance(s, str) and s.startswith("data:") and "," in s, "dataUriToString() of a non-data URI")
    head, data = s.split(",", 1)
    if head.endswith(";base64"):
        return base64.b64decode(data).decode()
    return urllib.parse.unquote(data)


# Pure functions of their (already evaluated, known) arguments.
_PURE: dict[str, Callable[..., Any]] = {
    "concat": _concat,
    "format": lambda t, *a: _fmt(t, list(a)),
    "string": _to_str,
    "int": _to_int,
    "float": float,
    "bool": lambda v: v if isinstance(v, bool) else str(v).lower() == "true",
    "tolower": lambda s: s.lower(),
    "toupper": lambda s: s.upper(),
    "trim": lambda s: s.strip(),
    "equals": _eq,
    "not": lambda v: not v,
    "and": lambda *a: all(a),
    "or": lambda *a: any(a),
    "less": lambda a, b: a < b,
    "lessorequals": lambda a, b: a <= b,
    "greater": lambda a, b: a > b,
    "greaterorequals": lambda a, b: a >= b,
    "add": lambda a, b: _int64(_to_int(a) + _to_int(b)),
    "sub": lambda a, b: _int64(_to_int(a) - _to_int(b)),
    "mul": lambda a, b: _int64(_to_int(a) * _to_int(b)),
    "div": lambda a, b: int(_to_int(a) / _to_int(b)),
    "mod": lambda a, b: _to_int(a) % _to_int(b),
    "min": lambda *a: min(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "max": lambda *a: max(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "createarray": lambda *a: list(a),
    "array": lambda v: v if isinstance(v, list) else [v],
    "createobject": lambda *a: {a[i]: a[i + 1] for i in range(0, len(a) - 1, 2)},
    "length": len,
    "empty": lambda v: v is None or len(v) == 0,
    "first": lambda v: v[0] if v else None,
    "last": lambda v: v[-1] if v else None,
    "take": lambda v, n: v[: max(0, _to_int(n))],
    "skip": lambda v, n: v[max(0, _to_int(n)) :],
    "contains": _contains,
    "union": _union,
    "intersection": lambda a, *rest: [x for x in a if all(x in r for r in rest)],
    "split": _split,
    "join": lambda a, d: d.join(_to_str(x) for x in a),
    "replace": lambda s, old, new: s.replace(old, new),
    "substring": lambda s, start, n=None: (
        s[_to_int(start) :] if n is None else s[_to_int(start) : _to_int(start) + _to_int(n)]
    ),
    "indexof": lambda s, x: _index_of(s, x, last=False),
    "lastindexof": lambda s, x: _index_of(s, x, last=True),
    "startswith": lambda s, x: s.lower().startswith(x.lower()),
    "endswith": lambda s, x: s.lower().endswith(x.lower()),
    "padleft": lambda v, n, c=" ": _to_str(v).rjust(_at_most(_to_int(n), MAX_VALUE_CHARS, "padLeft() length"), c),
    "range": lambda start, count: list(
        range(_to_int(start), _to_int(start) + _at_most(_to_int(count), MAX_VALUE_ITEMS, "range() count"))
    ),
    "json": lambda s: _json_loads(s),
    "coalesce": lambda *a: next((x for x in a if x is not None), None),
    "null": lambda: None,
    "true": lambda: True,
    "false": lambda: False,
    "items": lambda o: [{"key": k, "value": v} for k, v in o.items()],
    "uri": _uri,
    "cidrsubnet": lambda c, n, i: _cidr_subnet(c, _to_int(n), _to_int(i)),
    "cidrhost": lambda c, i: _cidr_host(c, _to_int(i)),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "base64tostring": lambda s: base64.b64decode(s).decode(),
    "base64tojson": lambda s: _json_loads(base64.b64decode(s).decode()),
    "datauri": lambda s: "data:text/plain;charset=utf8;base64," + base64.b64encode(
        _to_str(s).encode()).decode(),
    "datauritostring": _data_uri_to_string,
    "uricomponent": lambda s: urllib.parse.quote(s, safe=""),
    "uricomponenttostring": lambda s: urllib.parse.unquote(s),
    "tryget": _try_get,
    "indexfromend": lambda a, i: _from_end(a, i, strict=True),
    "tryindexfromend": lambda a, i: _from_end(a, i, strict=False),
    "flatten": lambda a: [y for x in a for y in (x if isinstance(x, list) else _bad("flatten() of a non-array"))],
    "objectkeys": lambda o: list(o.keys()) if isinstance(o, dict) else _bad("objectKeys() of a non-object"),
    "shallowmerge": _shallow_merge,
    "parsecidr": _parse_cidr,
    "tenantresourceid": lambda t, *names: "/providers/" + _provider_path(t, names),
    "managementgroupresourceid": _mg_resource_id,
    "extensionresourceid": lambda rid, t, *names: f"{_to_str(rid).rstrip('/')}/providers/{_provider_path(t, names)}",
}


# Functions whose value exists only in a live deployment: never guessed.
_RUNTIME = {
    "listkeys": "listKeys() reads secrets of a deployed resource",
    "list": "list*() reads a deployed resource",
    "listsecrets": "listSecrets() reads secrets of a deployed resource",
    "utcnow": "utcNow() is the deployment time",
    "newguid": "newGuid() is random at deployment time",
    "pickzones": "pickZones() depends on the region's capabilities",
    "references": "references() reads deployed resources",
    "providers": "providers() reads the subscription's resource providers",
    "datetimeadd": "dateTimeAdd() works on deployment times",
    "datetimefromepoch": "dateTimeFromEpoch() works on deployment times",
    "datetimetoepoch": "dateTimeToEpoch() works on deployment times",
    "managementgroup": "managementGroup() depends on the deployment scope",
    "tenant": "tenant() depends on the signed-in tenant",
    "deployer": "deployer() is the principal who deploys",
}



@dataclass(eq=False)
class _Lambda:
    """``lambda('x', ['y',] body)``: evaluated only when filter/map/reduce/... apply it."""

    params: tuple
    body: Any
    loops: dict


_HIGHER_ORDER = {"filter", "map", "reduce", "sort", "groupby", "mapvalues", "toobject"}


@dataclass
class _Budget:
    """What evaluating one import may spend, shared by a template's evaluator and its nested templates'."""

    steps: int = 0  # JSON containers and expression nodes evaluated (E694)
    depth: int = 0  # current nesting: JSON levels being evaluated + expression nodes + variables read (E690)


# Nesting of evaluation as a whole (JSON levels, calls, variables read through variables): each level costs
# a few Python frames, so this keeps the deepest legal template far from the stack limit.
MAX_EVAL_DEPTH = 2 * MAX_EXPRESSION_DEPTH


def _copy_count(n: int, what: str, span: Span) -> int:
    """Azure refuses copy loops with a count over 800 or below 0 (E692); refusing here also keeps a count
    of 10^9 from building a billion values."""
    if not 0 <= n <= ARM_MAX_COPY_COUNT:
        raise InputError.single("E692", f"{what}: copy count {n:,} is outside 0..{ARM_MAX_COPY_COUNT} (Azure refuses "
                                        f"such a template)", span,
                                f"at most {ARM_MAX_COPY_COUNT} copies per loop; split the loop, or use a nested "
                                f"deployment per batch")
    return n


@dataclass
class Evaluator:
    """Evaluates expressions of one template (its parameters, variables and resources)."""

    filename: str
    parameter_decls: dict = field(default_factory=dict)  # the template's "parameters" section
    parameter_values: dict = field(default_factory=dict)  # supplied values (--param, parameters file)
    variable_decls: dict = field(default_factory=dict)
    # User-defined functions (the template's "functions" section): "ns.fn" (lower case) → its member object.
    user_functions: dict = field(default_factory=dict)
    # reference(): resources of the same template, by lower-case id → raw resource object.
    resources_by_id: dict = field(default_factory=dict)
    placeholders: set = field(default_factory=set)  # which deployment-dependent placeholders were used
    # Not --strict: a parameter without a value is a Placeholder (its name) where text may go.
    lenient: bool = False
    unset: dict = field(default_factory=dict)  # parameter name → where it is declared, for the W601 warning
    _var_cache: dict = field(default_factory=dict)
    _var_busy: set = field(default_factory=set)
    _param_cache: dict = field(default_factory=dict)
    _ref_cache: dict = field(default_factory=dict)
    _ref_busy: set = field(default_factory=set)
    budget: _Budget = field(default_factory=_Budget)

    # -------------------------------------------------------------- values

    def value(self, raw: Any, span: Span = NOSPAN, loops: dict | None = None) -> Any:
        """Deep-evaluate a JSON value: expression strings anywhere inside are computed, property copy loops
        (``"copy": [{"name", "count", "input"}]``) expanded. Spans of literal objects are kept."""
        loops = loops or {}
        if isinstance(raw, str):
            if is_expression(raw):
                return self.expression(raw, span, loops)
            if raw.startswith("[["):
                return raw[1:]
            return raw
        if not isinstance(raw, (dict, list)):
            return raw
        literal = getattr(raw, "literal", None)
        if literal is not None:
            # Nothing in it to evaluate: the value is the parsed one. Its steps and depth count as if
            # walked; a subtree that would cross a limit is walked, so the error names the same place.
            b = self.budget
            if b.steps + literal[0] <= MAX_EVAL_STEPS and b.depth + literal[1] <= MAX_EVAL_DEPTH:
                b.steps += literal[0]
                return raw
        self._enter(span)
        try:
            return self._container(raw, span, loops)
        finally:
            self.budget.depth -= 1

    def _enter(self, span: Span) -> None:
        """One more step (a JSON container or an expression node evaluated) and one level deeper."""
        b = self.budget
        b.steps += 1
        if b.steps > MAX_EVAL_STEPS:
            raise InputError.single(
                "E694", f"evaluating the template took more than {MAX_EVAL_STEPS:,} steps; nsgsolve stops here", span,
                "real templates need far fewer; look for copy loops multiplied by large arrays")
        b.depth += 1
        if b.depth > MAX_EVAL_DEPTH:
            b.depth -= 1
            raise InputError.single(
                "E690", f"the template nests values more than {MAX_EVAL_DEPTH} levels deep (JSON levels, "
                        f"function calls and variables read through other variables, counted together)", span,
                "real templates nest far less; flatten the variables or expressions involved")

    def _container(self, raw: Any, span: Span, loops: dict) -> Any:
        if isinstance(raw, dict):
            out = JObject(span=getattr(raw, "span", span))
            spans = getattr(raw, "spans", {})
            copies = raw.get("copy")
            if isinstance(copies, list) and all(isinstance(c, dict) and "input" in c for c in copies):
                literal = {k.lower(): k for k in raw if k != "copy"}
                for c in copies:
                    cname = c.get("name")
                    if isinstance(cname, str) and cname.lower() in literal:
                        # Azure rejects the template; keeping either value would depend on key order.
                        raise InputError.single(
                            "E627", f"property '{literal[cname.lower()]}' is given both literally and by a "
                                    f"property copy loop named '{cname}'; Azure rejects such a template",
                            getattr(c, "span_of", lambda k: spans.get("copy", span))("name"),
                            f"keep one: remove the literal '{literal[cname.lower()]}' or the copy loop")
            for k, v in raw.items():
                if k == "copy" and isinstance(v, list) and all(isinstance(c, dict) and "input" in c for c in v):
                    for c in v:
                        self._property_copy(raw, c, out, loops)
                    continue
                s = spans.get(k)
                if s is None:  # not spans.get(k, default): the default would look a lazy position up
                    s = out.span if known(out.span) else span
                out[k] = self.value(v, s, loops)
                out.spans[k] = s
            return out
        if isinstance(raw, list):
            arr = JArray(span=getattr(raw, "span", span))
            spans_l = getattr(raw, "spans", [])
            for i, v in enumerate(raw):
                s = spans_l[i] if i < len(spans_l) else (arr.span if known(arr.span) else span)
                arr.append(self.value(v, s, loops))
                arr.spans.append(s)
            return arr
        return raw  # pragma: no cover - value() passes containers only

    def _property_copy(self, owner: dict, c: dict, out: JObject, loops: dict) -> None:
        cspan = getattr(c, "span", getattr(owner, "span", NOSPAN))
        name = self.value(c.get("name"), cspan, loops)
        count = self.value(c.get("count"), getattr(c, "span_of", lambda k: cspan)("count"), loops)
        if isinstance(name, Unknown) or not isinstance(name, str):
            out["copy"] = name if isinstance(name, Unknown) else Unknown("copy loop without a name", "", cspan)
            return
        if isinstance(count, Unknown):
            out[name] = count
            out.spans[name] = cspan
            return
        try:
            n = _to_int(count)
        except _Fail as e:
            out[name] = Unknown(f"copy loop '{name}': count {e}", "", cspan)
            out.spans[name] = cspan
            return
        _copy_count(n, f"property copy loop '{name}'", getattr(c, "span_of", lambda k: cspan)("count"))
        items = JArray(span=cspan)
        ispan = getattr(c, "span_of", lambda k: cspan)("input")
        for i in range(n):
            items.append(self.value(c.get("input"), ispan, {**loops, name: i, "\0current": i}))
            items.spans.append(ispan)
        out[name] = items
        out.spans[name] = cspan

    def expression(self, text: str, span: Span, loops: dict | None = None) -> Any:
        if len(text) > ARM_MAX_EXPRESSION_CHARS:
            raise InputError.single(
                "E691", f"a template expression of {len(text):,} characters; Azure refuses expressions longer than "
                        f"{ARM_MAX_EXPRESSION_CHARS:,}", span, "split it over variables")
        try:
            tree = parse_expression(text[1:-1])
        except ExprTooDeep as e:
            raise InputError.single("E690", str(e), span,
                                    "real templates nest far less; move inner parts into variables") from None
        except ExprSyntaxError as e:
            return Unknown(f"cannot parse the expression: {e}", text, span)
        return self.eval(tree, text, span, loops or {})

    # -------------------------------------------------------------- tree

    def eval(self, node: Any, text: str, span: Span, loops: dict) -> Any:
        if isinstance(node, Lit):
            return node.value
        b = self.budget
        self._enter(span)
        try:
            return self._eval(node, text, span, loops)
        finally:
            b.depth -= 1

    def _eval(self, node: Any, text: str, span: Span, loops: dict) -> Any:
        if isinstance(node, Prop):
            target = self.eval(node.target, text, span, loops)
            if isinstance(target, Unknown):
                return target
            if isinstance(target, Placeholder):  # a property of an object parameter nobody gave
                return Placeholder(f"{target}.{node.name}", target.params)
            if isinstance(target, dict):
                if node.name.lower() == "location" and target.get("type") == "Microsoft.Resources/resourceGroups":
                    self.placeholders.add(LOCATION_PLACEHOLDER)  # a region in a tag name would be a guess
                for k, v in target.items():  # ARM property access is case-insensitive
                    if k.lower() == node.name.lower():
                        return v
                return Unknown(f"no property '{node.name}' (it may exist only after deployment)", text, span)
            return Unknown(f"property '{node.name}' of a value that is not an object", text, span)
        if isinstance(node, Index):
            target = self.eval(node.target, text, span, loops)
            idx = self.eval(node.index, text, span, loops)
            for v in (target, idx):
                if isinstance(v, Unknown):
                    return v
            if isinstance(target, list) and isinstance(idx, int) and not isinstance(idx, bool):
                if 0 <= idx < len(target):
                    return target[idx]
                return Unknown(f"index {idx} outside an array of {len(target)}", text, span)
            if isinstance(target, (dict, Placeholder)) and isinstance(idx, str):
                return self.eval(Prop(Lit(target), idx), text, span, loops)
            return Unknown("bad index", text, span)
        assert isinstance(node, Call)
        if node.name == "if" or node.name == "lambda":
            return self.call(node, text, span, loops)
        # Straight to apply_call, not through call(): one frame less per nested call keeps the deepest legal
        # template (E690's limit) under Python's recursion limit.
        return self.apply_call(node.name, [self.eval(a, text, span, loops) for a in node.args], text, span, loops)

    def call(self, node: Call, text: str, span: Span, loops: dict) -> Any:
        name = node.name
        if name == "if":  # lazy, so the branch not taken may be unknown
            if len(node.args) != 3:
                return Unknown("if() takes 3 arguments", text, span)
            cond = self.eval(node.args[0], text, span, loops)
            if isinstance(cond, Unknown):
                return cond
            return self.eval(node.args[1] if cond else node.args[2], text, span, loops)
        if name == "lambda":
            if len(node.args) < 2:
                return Unknown("lambda() needs parameter names and a body", text, span)
            names = [self.eval(a, text, span, loops) for a in node.args[:-1]]
            if not all(isinstance(n, str) for n in names):
                return Unknown("lambda() parameter names must be strings", text, span)
            return _Lambda(tuple(names), node.args[-1], loops)
        return self.apply_call(name, [self.eval(a, text, span, loops) for a in node.args], text, span, loops)

    def apply_call(self, name: str, args: list, text: str, span: Span, loops: dict) -> Any:
        """Function ``name`` (lower case) of evaluated arguments: an unknown argument makes the result unknown,
        a placeholder argument a placeholder (text) or unknown (anything else). Bicep's calls and operators
        come here too (they compile to these functions)."""
        for a in args:
            if isinstance(a, Unknown):
                return a
        try:
            out = self._call(name, args, text, span, loops)
            size = _size(out)
            if size > (MAX_VALUE_CHARS if isinstance(out, str) else MAX_VALUE_ITEMS):
                raise ValueTooLarge(f"{name}() built a value of {size:,} "
                                    f"{'characters' if isinstance(out, str) else 'items'}")
            unset = _unset_params(args) if self.lenient else frozenset()
            return _keep_prefixes(name, args, _taint(out, unset, text, span)) if unset else out
        except ValueTooLarge as e:
            raise InputError.single(
                "E693", f"{e}: more than nsgsolve computes (at most {MAX_VALUE_CHARS:,} characters or "
                        f"{MAX_VALUE_ITEMS:,} items; Azure refuses templates over 4 MB after expansion)", span,
                "real templates build far smaller values; check the expression") from None
        except _Fail as e:
            return Unknown(str(e), text, span)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, ZeroDivisionError) as e:
            return Unknown(f"{name}(): {e}", text, span)

    def _apply(self, fn: Any, values: list, text: str, span: Span) -> Any:
        _need(isinstance(fn, _Lambda), "expected a lambda() argument")
        _need(len(values) >= len(fn.params), f"the lambda takes {len(fn.params)} argument(s)")
        scope = {**fn.loops, **{"\0lambda:" + p.lower(): v for p, v in zip(fn.params, values)}}
        out = self.eval(fn.body, text, span, scope)
        if isinstance(out, Unknown):
            raise _Fail(out.reason)
        return out

    def _higher_order(self, name: str, args: list, text: str, span: Span) -> Any:
        """The lambda functions (filter, map, reduce, sort, groupBy, mapValues, toObject)."""
        ap = lambda fn, *v: self._apply(fn, list(v), text, span)  # noqa: E731
        src = args[0] if args else None
        if name == "mapvalues":
            if not isinstance(src, dict):
                raise _Fail("mapValues() of a non-object")
            return {k: ap(args[1], v) for k, v in src.items()}
        if not isinstance(src, list):
            raise _Fail(f"{name}() of a non-array")
        if name == "filter":
            return [x for i, x in enumerate(src) if _truth(ap(args[1], x, i))]
        if name == "map":
            return [ap(args[1], x, i) for i, x in enumerate(src)]
        if name == "reduce":
            acc = args[1]
            for i, x in enumerate(src):
                acc = ap(args[2], acc, x, i)
            return acc
        if name == "sort":
            import functools

            return sorted(src, key=functools.cmp_to_key(
                lambda a, b: -1 if _truth(ap(args[1], a, b)) else (1 if _truth(ap(args[1], b, a)) else 0)))
        if name == "groupby":
            out: dict = {}
            for x in src:
                out.setdefault(_to_str(ap(args[1], x)), []).append(x)
            return out
        # toObject(array, key lambda [, value lambda])
        return {_to_str(ap(args[1], x)): (ap(args[2], x) if len(args) > 2 else x) for x in src}

    def _call(self, name: str, args: list, text: str, span: Span, loops: dict) -> Any:
        if name.startswith("sys."):  # Bicep's namespace for built-in functions
            name = name[4:]
        if name in _HIGHER_ORDER:
            return self._higher_order(name, args, text, span)
        if name == "lambdavariables":
            _need(len(args) == 1 and isinstance(args[0], str), "lambdaVariables() needs a name")
            key = "\0lambda:" + args[0].lower()
            _need(key in loops, f"lambdaVariables('{args[0]}') outside a lambda with that parameter")
            return loops[key]
        if name == "parameters":
            return self.parameter(args[0], text, span)
        if name == "variables":
            return self.variable(args[0], text, span)
        if name == "copyindex":
            loop = None
            offset = 0
            for a in args:
                if isinstance(a, str):
                    loop = a
                else:
                    offset = _to_int(a)
            if loop is not None:
                if loop not in loops:
                    raise _Fail(f"copyIndex('{loop}') outside that copy loop")
                return loops[loop] + offset
            if "\0resource" in loops:
                return loops["\0resource"] + offset
            if "\0current" in loops:
                return loops["\0current"] + offset
            raise _Fail("copyIndex() outside a copy loop")
        if name == "resourcegroup":
            return {
                "name": RESOURCE_GROUP,
                "location": LOCATION,
                "id": f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}",
                "type": "Microsoft.Resources/resourceGroups",
                "properties": {"provisioningState": "Succeeded"},
                "tags": {},
            }
        if name == "subscription":
            return {"subscriptionId": SUBSCRIPTION_ID, "id": f"/subscriptions/{SUBSCRIPTION_ID}",
                    "tenantId": SUBSCRIPTION_ID, "displayName": "subscription"}
        if name == "deployment":
            return {"name": "deployment", "properties": {}}
        if name == "environment":
            return {"name": "AzureCloud", "resourceManager": "https://management.azure.com/",
                    "suffixes": {"storage": "core.windows.net", "sqlServerHostname": ".database.windows.net",
                                 "keyvaultDns": ".vault.azure.net", "acrLoginServer": ".azurecr.io"},
                    "authentication": {"loginEndpoint": "https://login.microsoftonline.com/"}}
        if name == "uniquestring":
            self.placeholders.add("uniqueString()")
            return _placeholder_hash(tuple(args), 13)
        if name == "guid":
            self.placeholders.add("guid()")
            h = hashlib.sha256(json.dumps(args, default=str).encode()).hexdigest()
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        if name == "resourceid":
            return self._resource_id(args)
        if name == "subscriptionresourceid":
            i = next((k for k, a in enumerate(args) if isinstance(a, str) and "/" in a), None)
            if i is None or i > 1:
                raise _Fail("subscriptionResourceId(): no resource type")
            sub = args[0] if i == 1 else SUBSCRIPTION_ID
            return resource_id(args[i], [str(a) for a in args[i + 1:]], sub, None)
        if name == "reference":
            return self._reference(args, text, span)
        if name in _RUNTIME or name.startswith("list"):
            raise _Fail(_RUNTIME.get(name, f"{name}() reads a deployed resource") + "; nsgsolve works offline")
        fn = _PURE.get(name)
        if fn is None:
            if name in self.user_functions:
                return self._user_function(name, args, span)
            if "." in name:
                raise _Fail(f"user-defined function '{name}' is not declared in the template's 'functions'")
            raise _Fail(f"function '{name}()' is not evaluated by nsgsolve")
        return fn(*args)

    def set_functions(self, functions: Any) -> None:
        """The template's ``functions``: ``[{"namespace": ns, "members": {fn: {"parameters", "output"}}}]``."""
        if not isinstance(functions, list):
            return
        for group in functions:
            ns = group.get("namespace") if isinstance(group, dict) else None
            members = group.get("members") if isinstance(group, dict) else None
            if isinstance(ns, str) and isinstance(members, dict):
                for fn, body in members.items():
                    if isinstance(body, dict):
                        self.user_functions[f"{ns}.{fn}".lower()] = body

    def _user_function(self, name: str, args: list, span: Span) -> Any:
        """A user-defined function sees only its own parameters (ARM forbids variables and reference()
        there); its output value is evaluated with the arguments as parameter values."""
        body = self.user_functions[name]
        params = body.get("parameters") or []
        _need(isinstance(params, list) and len(params) == len(args),
              f"{name}() takes {len(params) if isinstance(params, list) else '?'} argument(s)")
        decls = {p.get("name"): p for p in params if isinstance(p, dict) and isinstance(p.get("name"), str)}
        values = {p.get("name"): a for p, a in zip(params, args)}
        inner = Evaluator(self.filename, decls, values, {}, lenient=self.lenient)
        inner.user_functions = self.user_functions
        inner.unset = self.unset
        inner.placeholders = self.placeholders
        output = body.get("output")
        _need(isinstance(output, dict) and "value" in output, f"{name}() has no output value")
        out = inner.value(output["value"], getattr(output, "span", span))
        if isinstance(out, Unknown):
            raise _Fail(out.reason)
        return out

    def _resource_id(self, args: list) -> str:
        i = next((k for k, a in enumerate(args) if isinstance(a, str) and "/" in a and "." in a.split("/")[0]), None)
        if i is None or i > 2:
            raise _Fail("resourceId(): no resource type argument")
        sub = args[0] if i == 2 else SUBSCRIPTION_ID
        rg = args[i - 1] if i >= 1 else RESOURCE_GROUP
        return resource_id(args[i], [str(a) for a in args[i + 1:]], str(sub), str(rg))

    def _reference(self, args: list, text: str, span: Span) -> Any:
        """reference() of a resource defined in this template returns its (evaluated) declared properties;
        anything else exists only in Azure."""
        _need(len(args) >= 1, "reference() needs a resource")
        target = str(args[0])
        full = len(args) >= 3 and str(args[2]).lower() == "full"
        res = self.resources_by_id.get(target.lower())
        if res is None:
            # A bare name refers to a resource of this template with that name.
            cands = [r for rid, r in self.resources_by_id.items() if rid.rsplit("/", 1)[-1] == target.lower()]
            res = cands[0] if len(cands) == 1 else None
        if res is None:
            raise _Fail(f"reference('{target}') reads a resource that is not defined in this template")
        key = (id(res), full)
        if key in self._ref_cache:
            return self._ref_cache[key]
        if id(res) in self._ref_busy:
            raise _Fail(f"reference('{target}') refers back to itself")
        self._ref_busy.add(id(res))
        try:
            out = self._reference_value(res, target, full, span)
        finally:
            self._ref_busy.discard(id(res))
        self._ref_cache[key] = out
        return out

    def _reference_value(self, res: dict, target: str, full: bool, span: Span) -> Any:
        props_raw = res.get("properties")
        if str(res.get("type", "")).lower() == "microsoft.resources/deployments" and isinstance(props_raw, dict) \
                and isinstance(props_raw.get("template"), dict):
            return self._deployment_outputs(props_raw, span)
        props = with_child_ids(self.value(res.get("properties", {}), getattr(res, "span", span)), target)
        if full:
            return {**{k: v for k, v in res.items() if k != "properties"}, "properties": props}
        return props

    # -------------------------------------------------------------- names

    def parameter(self, name: Any, text: str, span: Span) -> Any:
        if not isinstance(name, str):
            raise _Fail("parameters() needs a name")
        key = next((k for k in self.parameter_decls if k.lower() == name.lower()), None)
        supplied = next((k for k in self.parameter_values if k.lower() == name.lower()), None)
        if supplied is not None:
            return self._coerce(self.parameter_values[supplied], self.parameter_decls.get(key) if key else None)
        if key is None:
            raise _Fail(f"parameter '{name}' is not declared")
        if key in self._param_cache:
            return self._param_cache[key]
        decl = self.parameter_decls[key]
        if not isinstance(decl, dict) or "defaultValue" not in decl:
            ptype = str(decl.get("type", "string")).lower() if isinstance(decl, dict) else "string"
            if self.lenient and ptype in ("string", "securestring", "object", "secureobject"):
                self.unset.setdefault(key, getattr(decl, "span", span) if getattr(decl, "span", NOSPAN).line
                                      else span)
                ph = Placeholder(key, {key})
                ph.bare, ph.of, ph.declared_at = True, key, self.unset[key]
                allowed = decl.get("allowedValues") if isinstance(decl, dict) else None
                if isinstance(allowed, list):
                    ph.allowed = tuple(str(x) for x in allowed)
                return ph
            return Unknown(f"parameter '{key}' has no default value; give one with --param {key}=VALUE "
                           f"or --params-file", text, span)
        self._param_cache[key] = Unknown(f"parameter '{key}' refers to itself", text, span)
        v = self.value(decl["defaultValue"], getattr(decl, "span_of", lambda k: span)("defaultValue"))
        self._param_cache[key] = v
        return v

    @staticmethod
    def _coerce(value: Any, decl: Any) -> Any:
        """A --param value arrives as text; give it the declared type."""
        if not isinstance(value, str) or not isinstance(decl, dict):
            return value
        t = str(decl.get("type", "")).lower()
        try:
            if t == "int":
                return int(value)
            if t == "bool":
                return value.strip().lower() == "true"
            if t in ("array", "object", "secureobject"):
                return _json_loads(value)
        except (ValueError, json.JSONDecodeError):
            raise _Fail(f"value {value!r} given for a parameter of type {t}") from None
        return value

    def variable(self, name: Any, text: str, span: Span) -> Any:
        if not isinstance(name, str):
            raise _Fail("variables() needs a name")
        key = next((k for k in self.variable_decls if k.lower() == name.lower()), None)
        if key is None:
            raise _Fail(f"variable '{name}' is not declared")
        if key in self._var_cache:
            return self._var_cache[key]
        if key in self._var_busy:
            raise _Fail(f"variable '{key}' refers to itself")
        self._var_busy.add(key)
        try:
            raw = self.variable_decls[key]
            vspan = getattr(self.variable_decls, "span_of", lambda k: span)(key)
            v = self.value(raw, vspan)
        finally:
            self._var_busy.discard(key)
        self._var_cache[key] = v
        return v

    def set_variable_loops(self, copies: list) -> None:
        """``variables.copy``: each entry defines an array variable built by a loop."""
        for c in copies:
            if not isinstance(c, dict):
                continue
            name = c.get("name")
            cspan = getattr(c, "span", NOSPAN)
            count = self.value(c.get("count"), cspan)
            if not isinstance(name, str):
                continue
            if isinstance(count, Unknown):
                self._var_cache[name] = count
                continue
            try:
                n = _to_int(count)
            except _Fail as e:
                self._var_cache[name] = Unknown(f"variable copy '{name}': count {e}", "", cspan)
                continue
            _copy_count(n, f"variable copy loop '{name}'", getattr(c, "span_of", lambda k: cspan)("count"))
            ispan = getattr(c, "span_of", lambda k: cspan)("input")
            self._var_cache[name] = JArray(
                [self.value(c.get("input"), ispan, {name: i, "\0current": i}) for i in range(n)],
                span=cspan, spans=[ispan] * n)
            self.variable_decls = {**self.variable_decls, name: None}

    def child(self, template: dict, props: dict, span: Span, loops: dict | None = None) -> "Evaluator":
        """The evaluator of a nested template: its own names in ``inner`` scope, the parent's in ``outer``.
        ``loops``: the copy loop of the deployment resource itself, which the values it passes to the
        nested template's parameters may read (``copyIndex()`` there is legal in Azure)."""
        scope = self.value((props.get("expressionEvaluationOptions") or {}).get("scope"), span, loops)
        if not (isinstance(scope, str) and scope.lower() == "inner"):
            return self
        values: dict[str, Any] = {}
        given = props.get("parameters")
        if isinstance(given, dict):
            for k, v in given.items():
                vs = getattr(given, "span_of", lambda _k: span)(k)
                if isinstance(v, dict) and "value" in v:
                    values[k] = self.value(v["value"], vs, loops)
                elif isinstance(v, dict) and "reference" in v:
                    values[k] = Unknown(f"parameter '{k}' is read from Key Vault at deployment", "", vs)
        params = template.get("parameters") or {}
        variables = template.get("variables") or {}
        ev = Evaluator(self.filename, params if isinstance(params, dict) else {}, values,
                       variables if isinstance(variables, dict) else {}, lenient=self.lenient, budget=self.budget)
        ev.unset = self.unset
        ev.set_functions(template.get("functions"))
        copies = variables.get("copy") if isinstance(variables, dict) else None
        if isinstance(copies, list):
            ev.set_variable_loops(copies)
        ev.placeholders = self.placeholders
        return ev

    def _deployment_outputs(self, props: dict, span: Span) -> dict:
        """reference() of a nested deployment: its outputs, computed from the inline template."""
        template = props["template"]
        # The nested template's own resources are not indexed for reference() here: outputs that read
        # them at runtime stay unknown, which is the safe side.
        ev = self.child(template, props, span)
        outputs = template.get("outputs") or {}
        return {"outputs": ev.value(outputs, getattr(outputs, "span", span))}
