"""Service tag data: the built-in tags and Microsoft's ServiceTags_Public JSON.

``VirtualNetwork`` and ``Internet`` depend on where an NSG is evaluated and are computed by
:mod:`nsgsolve.semantics.resolve`; every other tag is a fixed prefix set looked up here, case-insensitively.
A tag with no data is never an empty set: the resolver stops with an error naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nsgsolve.semantics.addresses import IntervalSet, prefixes
from nsgsolve.errors import InputError
from nsgsolve.model import Span
from nsgsolve.semantics.platform import FIXED_TAGS

# Classic spellings Azure still accepts.
CLASSIC_SPELLINGS = {
    "internet": "Internet",
    "virtual_network": "VirtualNetwork",
    "azure_loadbalancer": "AzureLoadBalancer",
}

CONTEXT_TAGS = ("VirtualNetwork", "Internet")  # per attachment point

# Tags with addresses Azure fixes (the load balancer's probes, the platform services): semantics.platform.
BUILTIN_TAGS: dict[str, IntervalSet] = dict(FIXED_TAGS)


@dataclass(frozen=True)
class TagData:
    name: str  # canonical spelling
    ipv4: IntervalSet
    ipv6_count: int = 0  # IPv6 prefixes listed
    source: str = ""  # where the data came from
    ipv6_text: tuple[str, ...] = ()  # the IPv6 prefixes as listed (parsed when a rule first needs them)

    @cached_property
    def ipv6(self) -> IntervalSet:
        # Lazily: a ServiceTags file lists tens of thousands of IPv6 prefixes, and a policy without IPv6
        # addresses never needs them (ResolvedPolicy.has_ipv6), so reading the file costs what it did.
        try:
            return prefixes(self.ipv6_text)
        except ValueError as e:
            raise InputError.single("E650", f"{self.source}: tag {self.name}: {e}", Span(self.source, 0, 0),
                                    "fix the file, or download it again (docs/import.md)") from None

    @property
    def addresses(self) -> IntervalSet:
        """Both families: what a rule naming the tag matches."""
        return self.ipv4.union(self.ipv6) if self.ipv6_text else self.ipv4


class ServiceTagDb:
    """Tag name → prefixes, case-insensitive. Later sources override earlier ones."""

    def __init__(self, tags: dict[str, TagData] | None = None, description: str = ""):
        self._tags: dict[str, TagData] = {k.lower(): v for k, v in (tags or {}).items()}
        self.description = description

    def __len__(self) -> int:
        return len(self._tags)

    def names(self) -> list[str]:
        return [t.name for t in self._tags.values()]

    def lookup(self, name: str) -> TagData | None:
        return self._tags.get(name.lower())

    def merged(self, other: "ServiceTagDb") -> "ServiceTagDb":
        db = ServiceTagDb(description=", ".join(d for d in (self.description, other.description) if d))
        db._tags = {**self._tags, **other._tags}
        return db

    @classmethod
    def from_json_file(cls, path: str | Path) -> "ServiceTagDb":
        """Read a ServiceTags_Public_*.json file (or the REST API's response, same ``values`` shape).

        Problems are InputErrors (E650) naming the file, like every other input."""
        path = Path(path)
        span = Span(str(path), 0, 0)
        from nsgsolve.fileio import read_input_bytes

        try:
            data = read_input_bytes(path, "service tag file")
        except InputError as e:
            d = e.diagnostics[0]
            if d.code == "E010":
                raise
            raise InputError.single("E650", d.message.replace("no such file", "no such service tag file"),
                                    span, d.hint) from None
        try:
            # json, not jsonpos: this file is read on every run and jsonpos is several times slower.
            doc = json.loads(data.decode("utf-8-sig"))
        except RecursionError:
            # The C decoder unwinds cleanly; a tag file is never nested more than four levels.
            raise InputError.single("E011", f"{path}: JSON nested too deeply to be a ServiceTags file", span,
                                    "download ServiceTags_Public_*.json from Microsoft (download id 56519)") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError.single("E650", f"cannot read service tag file {path}: {e}", span,
                                    "download ServiceTags_Public_*.json from Microsoft (download id 56519)") from None
        try:
            return cls.from_document(doc, str(path))
        except ValueError as e:
            raise InputError.single("E650", str(e), span,
                                    "expected Microsoft's ServiceTags_Public JSON (top-level 'values')") from None

    def total_ipv6(self) -> int:
        return sum(t.ipv6_count for t in self._tags.values())

    @classmethod
    def from_document(cls, doc: dict, source: str) -> "ServiceTagDb":
        if not isinstance(doc, dict) or not isinstance(doc.get("values"), list):
            raise ValueError(f"{source}: not a ServiceTags file (no top-level 'values' list)")
        tags: dict[str, TagData] = {}
        # Every entry must be understood: a tag whose prefixes were skipped would answer "no match" for
        # addresses that are in it.
        for k, entry in enumerate(doc["values"]):
            where = f"{source}: values[{k}]"
            if not isinstance(entry, dict):
                raise ValueError(f"{where} is not an object")
            name = entry.get("name") or entry.get("id")
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where} has no 'name'")
            props = entry.get("properties") or {}
            pfx = props.get("addressPrefixes", []) if isinstance(props, dict) else None
            if not isinstance(pfx, list) or not all(isinstance(p, str) for p in pfx):
                raise ValueError(f"{where} (tag {name}): properties.addressPrefixes must be a list of prefix "
                                 f"strings, not {json.dumps(pfx)[:60]}")
            v4 = [p for p in pfx if ":" not in p]
            v6 = tuple(p for p in pfx if ":" in p)
            try:
                ipv4 = prefixes(v4)
            except ValueError as e:
                raise ValueError(f"{where} (tag {name}): {e}") from None
            tags[name] = TagData(name, ipv4, len(v6), source, v6)
        change = doc.get("changeNumber")
        desc = f"{source} (changeNumber {change}, {len(tags)} tags)" if change is not None else source
        return cls(tags, desc)


def canonical_builtin(name: str) -> str | None:
    """The canonical spelling of a built-in or context tag, or None."""
    low = name.lower()
    if low in CLASSIC_SPELLINGS:
        return CLASSIC_SPELLINGS[low]
    for t in (*CONTEXT_TAGS, *BUILTIN_TAGS):
        if t.lower() == low:
            return t
    return None


# ---------------------------------------------------------------- the user's cached copy

CACHE_NAME = "ServiceTags.json"


def data_dir() -> Path:
    """Where ``nsgsolve tags import`` keeps its copy: $NSGSOLVE_DATA_DIR (tests), else the XDG data home."""
    env = os.environ.get("NSGSOLVE_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "nsgsolve"


def cached_file() -> Path:
    return data_dir() / CACHE_NAME


def import_tag_file(path: str | Path) -> tuple[ServiceTagDb, Path]:
    """Validate a ServiceTags file and cache it byte for byte, so later runs need no --service-tags.

    The copy is written to a temporary name and renamed, so a concurrent run never reads half a file."""
    from nsgsolve.fileio import atomic_write_bytes, read_input_bytes

    db = ServiceTagDb.from_json_file(path)
    target = cached_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    # The bytes validated above are the bytes cached: reading the file again could see a newer version.
    atomic_write_bytes(target, read_input_bytes(path, "service tag file"))
    return db, target


def default_tag_db(explicit_path: str | None = None) -> ServiceTagDb:
    """The cached file (if ``tags import`` was run), overridden tag by tag by an explicit --service-tags."""
    db = ServiceTagDb()
    cached = cached_file()
    if cached.is_file():
        try:
            db = ServiceTagDb.from_json_file(cached)
        except InputError as e:
            d = e.diagnostics[0]
            raise InputError.single("E650", f"the cached service tag file is damaged: {d.message}", d.span,
                                    "run 'nsgsolve tags import ServiceTags_Public_*.json' again, or delete "
                                    f"{cached}") from None
    if explicit_path:
        db = db.merged(ServiceTagDb.from_json_file(explicit_path))
    return db
