"""What every fuzz target checks, and the hostile values they draw from.

:func:`run_cli` runs one command in-process through :func:`nsgsolve.cli.run` (tens of milliseconds instead of
a Python start-up) and asserts nsgsolve's promise for untrusted input: an exit status of 0, 1, 2 or 3, no
traceback, none of the last-resort errors (E012 recursion, E013 memory: reaching them means a specific
limit is missing), and an answer within :data:`TIME_LIMIT` seconds of CPU time. Every run is counted per target, and
tests/fuzz/README.md reports the counts.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

from hypothesis import HealthCheck, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Per run, in CPU seconds of this process: the largest hostile inputs (a 1 MB line, a 4,000-address side)
# take well under a second alone; a hang is what this catches. CPU time, not wall time, because a loaded
# machine (load 15 on 2 cores) stretched honest runs past a wall-clock limit. A wall-clock backstop of
# WALL_FACTOR times the limit still catches a run that hangs without using CPU (a blocked worker).
TIME_LIMIT = float(os.environ.get("NSGSOLVE_FUZZ_TIME_LIMIT", "20"))
WALL_FACTOR = 10

# Profiles: CI runs a fixed, small, derandomized set (same inputs every run, ~60 s in all); a local campaign
# sets NSGSOLVE_FUZZ=long (or --hypothesis-profile=fuzz, registered in tests/conftest.py) for many more,
# random each run.
LONG = os.environ.get("NSGSOLVE_FUZZ", "") == "long" or getattr(settings, "_current_profile", "") == "fuzz"


def fuzz_settings(ci_examples: int, long_examples: int | None = None) -> settings:
    if LONG:
        return settings(max_examples=long_examples or ci_examples * 50, deadline=None, derandomize=False,
                        suppress_health_check=list(HealthCheck), database=None)
    return settings(max_examples=ci_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


RUNS: Counter = Counter()  # target -> command runs (for tests/fuzz/README.md)
STATUSES: Counter = Counter()  # (target, exit status) -> runs
SECONDS: Counter = Counter()  # (target, command) -> seconds spent


class Hang(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - only on a hang
    raise Hang(f"no answer within {TIME_LIMIT} s of CPU time ({TIME_LIMIT * WALL_FACTOR:g} s of wall time)")


_CODE = re.compile(r"(?:error|warning)\[([EW]\d{3})\]")
CODES: dict = defaultdict(set)  # target -> codes seen


@functools.lru_cache(maxsize=1)
def documented_codes() -> frozenset:
    """Codes named in docs/errors.md or docs/import.md, ranges (E621–E623) expanded."""
    out = set()
    for doc in ("errors.md", "import.md"):
        text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
        for m in re.finditer(r"\b([EW])(\d{3})(?:\s*[–-]\s*[EW]?(\d{3}))?\b", text):
            lo = int(m.group(2))
            hi = int(m.group(3)) if m.group(3) else lo
            out.update(f"{m.group(1)}{n:03d}" for n in range(lo, hi + 1) if hi - lo < 50)
    return frozenset(out)


FORBIDDEN = ("Traceback (most recent call last)", "internal error", "[E012]", "[E013]")


def run_cli(target: str, argv: Sequence[str], stdin_ok: bool = False) -> tuple[int, str, str]:
    """Run ``nsgsolve ARGV`` in-process; fail the test on any broken promise. Returns (status, out, err)."""
    from nsgsolve.cli import run

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm), signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, TIME_LIMIT)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT * WALL_FACTOR)
    start = time.perf_counter()
    try:
        try:
            status = run(list(argv), out, err)
        except SystemExit as e:  # argparse's usage errors
            status = e.code if isinstance(e.code, int) else 2
    except Hang:
        raise AssertionError(f"nsgsolve {' '.join(map(str, argv))[:300]}: no answer within {TIME_LIMIT} s "
                             "of CPU time") from None
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old[0])
        signal.signal(signal.SIGPROF, old[1])
    elapsed = time.perf_counter() - start
    RUNS[target] += 1
    SECONDS[(target, argv[0] if argv else "")] += elapsed
    STATUSES[(target, status)] += 1
    o, e = out.getvalue(), err.getvalue()
    shown = " ".join(map(str, argv))[:300]
    assert status in (0, 1, 2, 3), f"nsgsolve {shown}: exit status {status}\n{e[-2000:]}"
    for bad in FORBIDDEN:
        assert bad not in e and bad not in o, f"nsgsolve {shown}: {bad!r} in the output\n{e[-3000:]}"
    for code in set(_CODE.findall(e + o)):
        assert code in documented_codes(), \
            f"nsgsolve {shown}: {code} is not documented in docs/errors.md or docs/import.md"
        CODES[target].add(code)
    if status == 2:
        # Invalid input is explained: a code (error[E...]) or argparse's/the command's own usage message.
        assert "error" in e, f"nsgsolve {shown}: exit 2 without an error message\n{e[-2000:]}"
    assert elapsed < TIME_LIMIT
    return status, o, e


# Commands run on a policy-like input (a .nsg or a JSON file), each with what it needs.
def policy_commands(path: str, tmp: Path) -> list[list[str]]:
    return [
        ["show", path],
        ["show", "--json", path],
        ["fmt", path],
        ["lint", path],
        ["check", path, "--allow-empty"],
        ["query", path, "can any reach any port 22 tcp"],
        ["verify", path, "--src", "203.0.113.7", "--dst", "10.0.1.4", "--protocol", "tcp", "--dport", "443"],
        ["diff", path, path],
        ["import", path, "-o", str(tmp / "out.nsg")],
    ]


# Values an attacker or a broken export would put where Azure expects something else (issue 18).
HOSTILE_SCALARS = [
    None, True, False, 0, -1, 99, 100, 4096, 4097, 65535, 65536, 2 ** 31, 2 ** 63, 10 ** 30, -10 ** 30, 1e308, 0.5,
    "", " ", "100", "99", "4097", "*", "0", "80", "80-70", "70-80", "0-65535", "65536", "-1", "1-", "-",
    "10.0.0.0/33", "10.0.0.0/-1", "300.1.1.1", "10.0.1.4", "10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::/0",
    "10.0.1.5-10.0.1.1", "Internet", "VirtualNetwork", "Storage.WestUS", "AzureLoadBalancer", "any", "Tcp", "Icmp",
    "Allow", "Deny", "Inbound", "Outbound", "Sideways", "\u0000", "\ufeff", "x" * 300, "é" * 81,
    "[concat('a'", "[[literal", "[parameters('nope')]", "[variables('v')]", "[copyIndex()]", "[json('[1,2')]",
    "[range(0, 1000000000)]", "[padLeft('a', 1000000000)]", "[mul(4611686018427387904, 4)]",
    "[format('{0:D999999999}', 1)]", "[json('" + "[" * 5000 + "')]", "[reference('x').outputs]",
    "[" + "concat(" * 3000 + "'a'" + ")" * 3000 + "]", "[" + "[" * 100 + "]",
    "https://example.com/template.json",
]


def huge_prefix_list(n: int) -> list[str]:
    return [f"10.{(i >> 8) & 255}.{i & 255}.0/24" for i in range(n)]


SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network"


def arm_seed() -> dict:
    """A small template touching every importer path: parameters, variables, expressions, a rule copy loop,
    ASGs, a VNet with a subnet and an NSG, a NIC in an ASG, a nested deployment and a linked one."""
    rule = {"name": "[concat('rule-', copyIndex('securityRules'))]",
            "properties": {"priority": "[add(100, copyIndex('securityRules'))]", "direction": "Inbound",
                           "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "[parameters('src')]",
                           "sourcePortRange": "*", "destinationAddressPrefix": "*",
                           "destinationPortRange": "[string(variables('ports')[copyIndex('securityRules')])]"}}
    asg_rule = {"name": "to-web", "properties": {
        "priority": 200, "direction": "Inbound", "access": "Allow", "protocol": "*",
        "sourceAddressPrefixes": ["203.0.113.0/24", "198.51.100.7"], "sourcePortRanges": ["1024-65535"],
        "destinationApplicationSecurityGroups": [
            {"id": "[resourceId('Microsoft.Network/applicationSecurityGroups', 'web')]"}],
        "destinationPortRanges": ["80", "443"], "description": "web"}}
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"src": {"type": "string", "defaultValue": "Internet"},
                       "count": {"type": "int", "defaultValue": 2}},
        "variables": {"ports": [22, 443, 8080], "prefix": "[concat('10.0.', '1.0/24')]"},
        "resources": [
            {"type": "Microsoft.Network/applicationSecurityGroups", "apiVersion": "2023-04-01", "name": "web",
             "location": "[resourceGroup().location]"},
            {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "web-nsg",
             "location": "[resourceGroup().location]",
             "properties": {"copy": [{"name": "securityRules", "count": "[parameters('count')]", "input": rule}]}},
            {"type": "Microsoft.Network/networkSecurityGroups/securityRules", "apiVersion": "2023-04-01",
             "name": "web-nsg/to-web", "properties": asg_rule["properties"]},
            {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "hub",
             "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                            "subnets": [{"name": "web", "properties": {
                                "addressPrefix": "[variables('prefix')]",
                                "networkSecurityGroup": {
                                    "id": "[resourceId('Microsoft.Network/networkSecurityGroups', 'web-nsg')]"}}}]}},
            {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": "web1",
             "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
                 "privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.1.4",
                 "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'hub', 'web')]"},
                 "applicationSecurityGroups": [
                     {"id": "[resourceId('Microsoft.Network/applicationSecurityGroups', 'web')]"}]}}]}},
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "linked",
             "properties": {"mode": "Incremental",
                            "templateLink": {"uri": "https://example.com/nested/azuredeploy.json"}}},
        ],
    }


def az_seed() -> list:
    """'az network nsg list' + 'vnet list' + 'nic list' merged into one list (the importer accepts that)."""
    return [
        {"name": "web-nsg", "id": f"{SUB}/networkSecurityGroups/web-nsg",
         "type": "Microsoft.Network/networkSecurityGroups",
         "securityRules": [
             {"name": "ssh", "protocol": "TCP", "access": "Allow", "direction": "Inbound", "priority": 100,
              "sourceAddressPrefix": None, "sourceAddressPrefixes": ["203.0.113.0/24", "198.51.100.7"],
              "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": None,
              "destinationPortRanges": ["22", "2222-2223"]},
             {"name": "to-app", "protocol": "Tcp", "access": "Deny", "direction": "Inbound", "priority": 110,
              "sourceAddressPrefix": "VirtualNetwork", "sourcePortRange": "*",
              "destinationApplicationSecurityGroups": [{"id": f"{SUB}/applicationSecurityGroups/app-asg"}],
              "destinationPortRange": "8080"}],
         "subnets": [{"id": f"{SUB}/virtualNetworks/hub/subnets/web"}]},
        {"name": "hub", "id": f"{SUB}/virtualNetworks/hub", "type": "Microsoft.Network/virtualNetworks",
         "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
         "subnets": [{"name": "web", "id": f"{SUB}/virtualNetworks/hub/subnets/web", "addressPrefix": "10.0.1.0/24"}]},
        {"name": "web1", "id": f"{SUB}/networkInterfaces/web1", "type": "Microsoft.Network/networkInterfaces",
         "ipConfigurations": [{"name": "ipconfig1", "privateIPAddress": "10.0.1.4",
                               "privateIPAllocationMethod": "Static",
                               "subnet": {"id": f"{SUB}/virtualNetworks/hub/subnets/web"},
                               "applicationSecurityGroups": [{"id": f"{SUB}/applicationSecurityGroups/app-asg"}]}]},
    ]


def tags_seed() -> dict:
    return {"changeNumber": 1, "cloud": "Public", "values": [
        {"name": "Storage", "id": "Storage", "properties": {
            "changeNumber": 1, "region": "", "platform": "Azure", "systemService": "AzureStorage",
            "addressPrefixes": ["20.38.96.0/19", "2603:1000::/40"]}},
        {"name": "Storage.WestUS", "id": "Storage.WestUS", "properties": {
            "changeNumber": 1, "region": "westus", "addressPrefixes": ["20.38.96.0/24"]}},
    ]}


def dump(doc, style: int) -> str:
    if style == 0:
        return json.dumps(doc)
    if style == 1:
        return json.dumps(doc, indent=2)
    return json.dumps(doc, indent="\t", ensure_ascii=False).replace("\n", "\r\n")


# ---------------------------------------------------------------- JSON mutations (every JSON target)

def _slots(node, out, depth=0):
    """Every (container, key) of the document, so a mutation can land anywhere."""
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            _slots(node[k], out, depth + 1)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out, depth + 1)
    return out


# Huge arrays cost ~0.5 s per command: CI checks them once per side in test_limits.py, campaigns everywhere.
OPS = ("drop", "hostile", "wrong-type", "duplicate", "deep", "wrap") + (("huge-array",) if LONG else ())


def mutate(data, doc):
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        slots = _slots(doc, [])
        if not slots:
            break
        container, key = data.draw(st.sampled_from(slots), label="where")
        op = data.draw(st.sampled_from(OPS), label="op")
        if op == "drop":
            del container[key]
        elif op == "hostile":
            container[key] = data.draw(st.sampled_from(HOSTILE_SCALARS), label="value")
        elif op == "wrong-type":
            v = container[key]
            container[key] = [v] if isinstance(v, dict) else {"value": v} if isinstance(v, list) else [v, v]
        elif op == "duplicate" and isinstance(container, list):
            container.insert(key, json.loads(json.dumps(container[key])))
        elif op == "huge-array":
            container[key] = huge_prefix_list(
                data.draw(st.sampled_from([4000, 4001] + ([20000] if LONG else [])), label="n"))
        elif op == "deep":
            n = data.draw(st.sampled_from([50, 127, 129, 600]), label="depth")
            v = container[key]
            for _ in range(n):
                v = [v]
            container[key] = v
        elif op == "wrap":
            container[key] = {"value": container[key], "type": "object"}
    return doc


def damage_text(data, text: str) -> str:
    """Byte-level damage after serialising: cut, delete or duplicate a span, a BOM, a NUL."""
    op = data.draw(st.sampled_from(["none", "none", "cut", "delete", "dup", "bom", "nul"]), label="text-op")
    if op == "none" or not text:
        return text
    i = data.draw(st.integers(0, len(text) - 1), label="at")
    j = min(len(text), i + data.draw(st.integers(1, 40), label="len"))
    return {"cut": text[:i], "delete": text[:i] + text[j:], "dup": text[:j] + text[i:j] + text[j:],
            "bom": "\ufeff" + text, "nul": text[:i] + "\x00" + text[i:]}[op]


def mutate_tokens(data, text: str, token: re.Pattern, hostile: list[str]) -> str:
    """1-4 token edits (delete, duplicate, swap, a hostile value, random text) of a seed file: near-valid
    input that reaches the evaluators, where random bytes stop at the parser."""
    from hypothesis import strategies as st

    toks = token.findall(text)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        i = data.draw(st.integers(0, max(0, len(toks) - 1)), label="at")
        op = data.draw(st.sampled_from(["delete", "duplicate", "swap", "hostile", "text"]), label="op")
        if not toks:
            toks = [""]
        if op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks.insert(i, toks[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(toks) - 1), label="with")
            toks[i], toks[j] = toks[j], toks[i]
        elif op == "hostile":
            toks[i] = data.draw(st.sampled_from(hostile), label="hostile")
        else:
            toks.insert(i, data.draw(st.text(max_size=12), label="text"))
    return "".join(toks)
