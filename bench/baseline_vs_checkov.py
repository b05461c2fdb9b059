"""nsgsolve's baseline beside Checkov on the real corpus: the table in docs/baseline-vs-checkov.md.

    python bench/baseline_vs_checkov.py [--checkov-version 3.3.30] [--venv /tmp/nsgsolve-checkov]
                                        [--output docs/baseline-vs-checkov.md]

Checkov is never a dependency of nsgsolve: this script makes a throw-away virtual environment (in /tmp by
default), pip-installs Checkov there, and runs it file by file (a directory run stops on a TypeError in
3.3.30) on every template of ../shared/corpus/arm and every configuration of ../shared/corpus/terraform.

For each file and each of Checkov's four NSG exposure checks the table puts nsgsolve's verdict for the same
question (the same port and protocols, from the Internet) beside Checkov's, and explains every
disagreement in one line, from the evidence nsgsolve has: the rule that lets a witness through (its source
as written, a port range holding the port, a '*' protocol) or, where nsgsolve proves the port closed, the
rule that blocks a packet Checkov's finding is about (a higher-priority deny, a subnet NSG), or the input
Checkov did not read (an NSG made by a copy loop, a file it could not parse).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from corpus import CORPUS  # noqa: E402

from nsgsolve.analyses.baseline import Baseline, Control  # noqa: E402
from nsgsolve.analyses.results import Status  # noqa: E402
from nsgsolve.errors import InputError  # noqa: E402
from nsgsolve.importers.loader import load_policy  # noqa: E402
from nsgsolve.model import AnyAddress, AsgSide, PortRange, PortSpec, PrefixSide, Protocol, Rule, TagSide, item_text  # noqa: E402,E501
from nsgsolve.semantics.servicetags import default_tag_db  # noqa: E402


@dataclass(frozen=True)
class Pair:
    """One of Checkov's checks and the nsgsolve control asking its question."""

    checkov: str
    label: str
    control: Control
    arm: bool  # Checkov has this check for ARM templates


# Checkov's questions, exactly: CKV_AZURE_9 and 10 look at Tcp or '*' rules, 77 at Udp or '*', 160 at port 80.
PAIRS = (
    Pair("CKV_AZURE_9", "RDP", Control("cmp-rdp", "cis", "RDP (3389/tcp) from the Internet", "comparison",
                                       ((3389, 3389),), Protocol.TCP), True),
    Pair("CKV_AZURE_10", "SSH", Control("cmp-ssh", "cis", "SSH (22/tcp) from the Internet", "comparison",
                                        ((22, 22),), Protocol.TCP), True),
    Pair("CKV_AZURE_77", "UDP", Control("cmp-udp", "cis", "UDP from the Internet", "comparison", None,
                                        Protocol.UDP), False),
    Pair("CKV_AZURE_160", "HTTP", Control("cmp-http", "cis", "HTTP (80/tcp) from the Internet", "comparison",
                                          ((80, 80),), Protocol.TCP), True),
)


def make_venv(venv: Path, version: str) -> Path:
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"checkov=={version}"], check=True)
    return exe


def _checkov_json(exe: Path, paths: list[Path], framework: str) -> tuple[list, str]:
    ids = ",".join(p.checkov for p in PAIRS)
    cmd = [str(exe), "--framework", framework, "--check", ids, "-o", "json", "--compact", "--skip-download"]
    for p in paths:
        cmd += ["-f", str(p)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        err = [x for x in proc.stderr.strip().splitlines() if "Error" in x] or proc.stderr.strip().splitlines()
        return [], (err or ["no output"])[-1][:140]
    return (doc if isinstance(doc, list) else [doc]), ""


def run_checkov(exe: Path, paths: list[Path], framework: str) -> dict[str, tuple[dict[str, str], str]]:
    """Checkov's verdict per file and check id (FAILED or PASSED; absent when it judged nothing), and a note
    for a file it stopped on. One process for all files (Checkov starts slowly); when the run breaks, the
    files are run one by one to find the one it stops on."""
    docs, broke = _checkov_json(exe, paths, framework)
    out: dict[str, tuple[dict[str, str], str]] = {}
    if broke and len(paths) > 1:
        for p in paths:
            out.update(run_checkov(exe, [p], framework))
        return out
    for p in paths:
        out[str(p.resolve())] = ({}, broke)
    for d in docs:
        res = d.get("results", {}) if isinstance(d, dict) else {}
        for key, verdict in (("passed_checks", "PASSED"), ("failed_checks", "FAILED")):
            for r in res.get(key, []):
                f = r.get("file_abs_path") or r.get("file_path", "")
                got = out.setdefault(str(Path(f).resolve()), ({}, ""))[0]
                if verdict == "FAILED" or r["check_id"] not in got:
                    got[r["check_id"]] = verdict
    return out


def from_table(text: str, files: list[Path]) -> dict[str, tuple[dict[str, str], str]]:
    """Checkov's verdicts as an earlier run of this script wrote them (cells `nsgsolve / Checkov`)."""
    by_name = {f"{f.parent.name}/{f.name}": f for f in files}
    stopped = dict(re.findall(r"^\| ([^|]+?) \| \w+ \| [^|]+ \| Checkov stopped: ([^|]+?) \|$", text, re.M))
    out: dict[str, tuple[dict[str, str], str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 1 + len(PAIRS) or cells[0] not in by_name:
            continue
        f = by_name[cells[0]]
        got = {}
        broke = ""
        for pair, cell in zip(PAIRS, cells[1:]):
            theirs = cell.split(" / ", 1)[1]
            if theirs in ("fail", "pass"):
                got[pair.checkov] = "FAILED" if theirs == "fail" else "PASSED"
            elif theirs == "error":
                broke = stopped.get(f.name, "stopped")
        out[str(f.resolve())] = (got, broke)
    return out


def _side_text(side: object) -> str:
    if isinstance(side, AnyAddress):
        return "*"
    if isinstance(side, TagSide):
        return side.tag.name
    if isinstance(side, PrefixSide):
        return ", ".join(item_text(i) for i in side.items)[:60]
    if isinstance(side, AsgSide):
        return "asg " + ", ".join(a.name for a in side.asgs)
    return type(side).__name__


def _ports_text(p: PortSpec) -> str:
    if p.items is None:
        return "*"
    return ",".join((f"{i.lo}" if i.lo == i.hi else f"{i.lo}-{i.hi}") if isinstance(i, PortRange) else i.define.name
                    for i in p.items)


def why_open(policy, b: Baseline, result, pair: Pair) -> str:
    """nsgsolve fails, Checkov does not: the rule that lets the witness through, as written, and what about it
    a string match misses."""
    c = result.contract
    dest = result.target
    if c is None:
        return f"nsgsolve: open at {dest}"
    resp = [r for r in c.responsible if r.nsg]
    if not resp:
        return (f"no NSG in front of {dest} (its subnet and NIC have none), so every packet reaches it; Checkov "
                "judges NSG rules only")
    r0 = resp[0]
    nsg = policy.nsg(r0.nsg)
    rule: Rule | None = next((x for x in nsg.rules if x.name == r0.rule), None) if nsg else None
    if rule is None:
        return f"allow rule {r0.rule} of nsg {r0.nsg} lets it through to {dest}"
    src = _side_text(rule.source)
    ports = _ports_text(rule.destination_ports)
    proto = rule.protocol.value
    facts = f"allow rule {rule.name} of nsg {r0.nsg} (source `{src}`, ports `{ports}`, protocol `{proto}`) to {dest}"
    bits = []
    opened = [o for o in b.open_values if o.rule == rule.name and o.nsg == r0.nsg]
    if opened:
        bits.append(f"its {opened[0].side} is the template value `{opened[0].source}`, unset: some value opens it")
    elif src.lower() == "internet" and src != "internet":
        bits.append(f"Checkov's ARM check compares the source case-sensitively with 'internet', `{src}` misses")
    elif src not in ("*", "0.0.0.0/0", "internet", "any", "Any"):
        bits.append(f"`{src}` holds public addresses (Internet by address, not by name)")
    if pair.control.ports is not None and ports not in ("*", str(pair.control.ports[0][0])):
        bits.append(f"the ports `{ports}` hold {pair.control.ports[0][0]}")
    if rule.protocol is Protocol.ANY and pair.control.protocol is Protocol.UDP:
        bits.append("protocol `*` includes UDP")
    if result.destination is not None and result.destination.kind == "nsg":
        bits.append("the NSG is attached to nothing in the input; nsgsolve checks it on its own")
    if not bits:
        bits.append("Checkov did not flag this rule (it was not among the resources it read: a copy loop, a nested "
                    "deployment or a computed name)")
    return f"{facts}: " + "; ".join(bits)


def why_closed(b: Baseline, pair: Pair) -> str:
    """nsgsolve passes, Checkov fails: which rule stops the traffic Checkov's finding names."""
    from nsgsolve.semantics.evaluate import Evaluator, Packet

    port = pair.control.ports[0][0] if pair.control.ports else 53
    proto = "tcp" if pair.control.protocol is Protocol.TCP else "udp"
    reasons = []
    for d in b.destinations:
        key = next(iter(d.keys))
        info = b.rp.ipcs[key]
        ip = info.ip if info.ip is not None else info.usable.min()
        assignment = {} if info.ip is not None else {key: ip}
        flow = Evaluator(b.rp, assignment, fast=False).evaluate(Packet.parse(proto, "203.0.113.7", 49152,
                                                                             _ip(ip), port))
        deny = next((s for s in flow.trace if s.evaluated and s.access.value == "Deny"), None)
        if deny is not None and not deny.is_default:
            reasons.append(f"deny rule {deny.rule} (priority {deny.priority}) of nsg {deny.nsg} on {deny.attached_to}")
        elif deny is not None:
            reasons.append(f"no allow rule of {d.label} matches Internet traffic to {port}/{proto} "
                           "(its source or protocol is narrower than Checkov reads it)")
    if not reasons:
        return "nsgsolve: closed on every destination"
    first = sorted(set(reasons))[0]
    return f"a packet from the Internet is stopped by {first}"


def _ip(n: int) -> str:
    return ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0))


def nsgsolve_verdicts(path: Path, db) -> tuple[dict[str, tuple[str, str]], str]:
    try:
        policy = load_policy([str(path)], warnings=[])
        b = Baseline(policy, db)
        out: dict[str, tuple[str, str]] = {}
        for pair in PAIRS:
            results = b.run([pair.control])
            statuses = {r.status for r in results}
            if not results:
                out[pair.checkov] = ("none", "")
            elif Status.FAIL in statuses:
                failing = next(r for r in results if r.status is Status.FAIL)
                out[pair.checkov] = ("FAIL", why_open(policy, b, failing, pair))
            elif Status.UNKNOWN in statuses:
                out[pair.checkov] = ("UNKNOWN", next(r.summary for r in results if r.status is Status.UNKNOWN))
            else:
                out[pair.checkov] = ("PASS", why_closed(b, pair))
        return out, ""
    except InputError as e:
        d = e.diagnostics[0]
        return {}, f"{d.code} {d.message[:80]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkov-version", default="3.3.30")
    ap.add_argument("--venv", default="/tmp/nsgsolve-checkov", help="the throw-away environment for Checkov")
    ap.add_argument("--output", default=str(ROOT / "docs" / "baseline-vs-checkov.md"))
    ap.add_argument("--only", default="", help="only files whose name contains this")
    ap.add_argument("--checkov-from", metavar="TABLE",
                    help="reuse Checkov's verdicts from a table this script wrote before (Checkov takes about a "
                         "minute per file on a loaded 2-core machine) instead of running it again")
    args = ap.parse_args(argv)
    if CORPUS is None:
        print("the shared corpus is not here (../shared/corpus or $NSGSOLVE_SHARED): nothing to compare",
              file=sys.stderr)
        return 2
    if args.checkov_from:
        previous = Path(args.checkov_from).read_text(encoding="utf-8")
        version = re.search(r"with (Checkov )?([0-9.]+)", previous).group(2)  # type: ignore[union-attr]
    else:
        exe = make_venv(Path(args.venv), args.checkov_version)
        version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip()
    db = default_tag_db(str(next((CORPUS / "servicetags").glob("*.json"))))
    files = sorted((CORPUS / "arm").glob("*.json")) + sorted((CORPUS / "terraform").glob("*.tf"))
    files = [f for f in files if not f.name.endswith(".parameters.json") and args.only in f.name]
    rows = []
    disagreements = []
    checkov: dict[str, tuple[dict[str, str], str]] = {}
    if args.checkov_from:
        checkov = from_table(previous, files)
    else:
        for framework, group in (("arm", [f for f in files if f.suffix == ".json"]),
                                 ("terraform", [f for f in files if f.suffix == ".tf"])):
            if group:
                checkov.update(run_checkov(exe, group, framework))
    for f in files:
        framework = "arm" if f.suffix == ".json" else "terraform"
        ck, broke = checkov.get(str(f.resolve()), ({}, "no result"))
        ns, err = nsgsolve_verdicts(f, db)
        cells = []
        for pair in PAIRS:
            if framework == "arm" and not pair.arm:
                c = "no check"
            else:
                c = {"FAILED": "fail", "PASSED": "pass"}.get(ck.get(pair.checkov, ""), "—")
                if broke:
                    c = "error"
            n, why = ns.get(pair.checkov, ("error", err))
            n = n.lower()
            cells.append(f"{n} / {c}")
            agree = not broke and (n == c or (n == "pass" and c == "—"))
            if not agree:
                if c == "error":
                    reason = f"Checkov stopped: {broke}"
                elif c == "no check" and n == "fail":
                    reason = f"Checkov has no ARM check for {pair.label}; nsgsolve: {why}"
                elif c == "no check":
                    continue
                elif n == "fail":
                    reason = why
                elif n == "pass":
                    reason = why
                else:
                    reason = why or err
                disagreements.append((f.name, pair.label, n, c, reason))
        rows.append((f"{f.parent.name}/{f.name}", cells))
        print(f"{f.name}: {' | '.join(cells)}", file=sys.stderr)
    lines = [
        "# nsgsolve's baseline beside Checkov on the shared corpus",
        "",
        f"Produced by `python bench/baseline_vs_checkov.py` with Checkov {version or args.checkov_version} "
        f"(installed in a throw-away virtual environment, never a dependency of nsgsolve) on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {len(files)} files. Each cell is "
        "`nsgsolve / Checkov` for the same question from the Internet: RDP = CKV_AZURE_9 (3389/tcp), "
        "SSH = CKV_AZURE_10 (22/tcp), UDP = CKV_AZURE_77 (any UDP port; Checkov has it for Terraform only), "
        "HTTP = CKV_AZURE_160 (80/tcp). `pass` = closed, `fail` = open, `—` = Checkov found no NSG rule to "
        "judge, `error` = the tool stopped on the file. nsgsolve's verdict is over every place a host can be "
        "(NICs, subnets behind their NSG, NSGs attached to nothing); template values left open are read at "
        "their worst (docs/baseline.md).",
        "",
        "| file | RDP | SSH | UDP | HTTP |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, cells in rows:
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"## Every disagreement ({len(disagreements)}), in one line each", "",
              "| file | check | nsgsolve / Checkov | why |", "| --- | --- | --- | --- |"]
    for fname, label, n, c, reason in disagreements:
        lines.append(f"| {fname} | {label} | {n} / {c} | {reason.replace('|', '/')} |")
    Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {os.path.relpath(args.output)} ({len(disagreements)} disagreements)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
