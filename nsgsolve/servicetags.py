"""Service tag data: the built-in tags and Microsoft's ServiceTags_Public JSON.

``VirtualNetwork`` and ``Internet`` depend on where an NSG is evaluated and are computed by
:mod:`nsgsolve.resolve`; every other tag is a fixed prefix set looked up here, case-insensitively.
A tag with no data is never an empty set: the resolver stops with an error naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .addresses import IntervalSet, prefixes

# Classic spellings Azure still accepts.
CLASSIC_SPELLINGS = {
    "internet": "Internet",
    "virtual_network": "VirtualNetwork",
    "azure_loadbalancer": "AzureLoadBalancer",
}

CONTEXT_TAGS = ("VirtualNetwork", "Internet")  # per attachment point

BUILTIN_TAGS: dict[str, IntervalSet] = {
    # The host's virtual IP where health probes originate (evidence §4).
    "AzureLoadBalancer": prefixes(["168.63.129.16/32"]),
    # Platform tags: only meaningful outbound, to switch the platform bypass off (evidence §5).
    "AzurePlatformDNS": prefixes(["168.63.129.16/32"]),
    "AzurePlatformIMDS": prefixes(["169.254.169.254/32"]),
}


@dataclass(frozen=True)
class TagData:
    name: str  # canonical spelling
    ipv4: IntervalSet
    ipv6_count: int = 0  # IPv6 prefixes seen (not modelled: IPv4 packets never match them)
    source: str = ""  # where the data came from


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
        """Read a ServiceTags_Public_*.json file (or the REST API's response, same ``values`` shape)."""
        path = Path(path)
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        return cls.from_document(doc, str(path))

    @classmethod
    def from_document(cls, doc: dict, source: str) -> "ServiceTagDb":
        if not isinstance(doc, dict) or not isinstance(doc.get("values"), list):
            raise ValueError(f"{source}: not a ServiceTags file (no top-level 'values' list)")
        tags: dict[str, TagData] = {}
        for entry in doc["values"]:
            name = entry.get("name") or entry.get("id")
            props = entry.get("properties") or {}
            pfx = props.get("addressPrefixes") or []
            if not name:
                continue
            v6 = sum(1 for p in pfx if ":" in p)
            tags[name] = TagData(name, prefixes(pfx), v6, source)
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
