"""``nsgsolve replay``: Azure flow logs replayed against a policy -- rule hits, unused rules, log/model
mismatches, and what a change to the policy would break."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Callable, TextIO

from nsgsolve.commands.common import add_policy_args, formatter, load_and_resolve, load_files, tag_db
from nsgsolve.errors import Diagnostic, InputError, UsageError
from nsgsolve.model import Span

EPILOG = """examples:
  nsgsolve replay policy.nsg --flow-logs insights-logs-flowlogflowevent/      # a directory, read recursively
  nsgsolve replay examples/replay/fabrikam.nsg --flow-logs examples/replay/logs \
      --against examples/replay/fabrikam-https.nsg
  nsgsolve replay old.nsg --flow-logs logs/ --against new.nsg --fail-on breaking   # what the change breaks
  nsgsolve replay policy.nsg --flow-logs logs/ --json > replay.json
  nsgsolve replay policy.nsg --flow-logs logs/ --against new.nsg --format sarif > replay.sarif
  nsgsolve replay policy.nsg --flow-logs logs/ --workers 8            # the local cores
  nsgsolve replay policy.nsg --flow-logs logs/ --dask tcp://scheduler:8786    # pip install "nsgsolve[dask]"

Reads NSG flow logs (versions 1, 2) and VNet flow logs (version 4) as Azure writes them to storage;
see docs/replay.md. Bad records are skipped with a warning (W900-W903) and counted in the last line.

exit status: 0 ran; 1 a --fail-on condition holds; 2 invalid input or usage."""

FAIL_ON = ("changed", "breaking", "mismatch", "unused")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay Azure flow logs: rule hits, unused rules, what a change breaks",
                       description="Replay logged flows (NSG flow logs v1/v2, VNet flow logs v4) against the policy: "
                                   "how many logged flows each rule decides, the rules no flow used in the logged "
                                   "period, where the log and the policy disagree, and with --against which logged "
                                   "flows a new policy decides otherwise.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p)
    p.add_argument("--flow-logs", nargs="+", required=True, metavar="PATH",
                   help="flow log files (PT1H.json) or directories, read recursively")
    p.add_argument("--against", nargs="+", metavar="NEW_POLICY",
                   help="a changed policy: list the logged flows whose decision it changes")
    p.add_argument("--json", action="store_true", help="one JSON object (same as --format json; docs/json.md)")
    p.add_argument("--format", choices=("text", "json", "sarif", "github", "junit"), default="text",
                   help="text (default), json, or the CI reports (sarif: unused rules and breaking changes at the "
                        "rule in the policy file)")
    p.add_argument("--fail-on", action="append", choices=FAIL_ON, default=[],
                   help="exit 1 when: changed (any changed flow), breaking (an allowed flow denied), mismatch, "
                        "unused (an unused rule of your own); repeatable")
    p.add_argument("--group-prefix", type=int, default=24, metavar="BITS",
                   help="changed flows are grouped by source address prefix of this length (default 24)")
    p.add_argument("--acl", action="append", default=[], metavar="GUID=NSG",
                   help="the NSG a VNet flow log aclID (resource GUID) stands for, when the policy files do not "
                        "carry resourceGuid (repeatable)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes on this machine (default: the cores this process may use)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster: a scheduler address, or 'local' for a LocalCluster of --workers "
                        "processes (needs pip install \"nsgsolve[dask]\")")
    p.add_argument("--top", type=int, default=20, metavar="N", help="groups shown per section in text (default 20)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (shown on a terminal for long logs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from nsgsolve.analyses.replay import ALLOW, Replayer
    from nsgsolve.heap import keep_freed_memory
    from nsgsolve.reports import replay as rep
    from nsgsolve.semantics.resolve import resolve

    if not 0 <= args.group_prefix <= 32:
        raise UsageError(f"--group-prefix {args.group_prefix} is not 0-32")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers needs at least 1")
    fails = set(args.fail_on)
    if ("changed" in fails or "breaking" in fails) and not args.against:
        raise UsageError(f"--fail-on {'changed' if 'changed' in fails else 'breaking'} needs --against NEW_POLICY")
    files = flow_files(args.flow_logs)
    rp = load_and_resolve(args, err)
    new = resolve(load_files(args.against, args, err), tag_db(args)) if args.against else None
    guids = policy_guids(list(args.policy) + list(args.against or []))
    acls = parse_acls(args.acl)
    known = {n.name for n in rp.policy.nsgs} | ({n.name for n in new.policy.nsgs} if new is not None else set())
    for guid, name in acls.items():
        if name not in known:
            from nsgsolve.errors import did_you_mean

            raise UsageError(f"--acl {guid}={name}: the policy has no NSG named '{name}'",
                             did_you_mean(name, sorted(known)) or f"NSGs: {', '.join(sorted(known)[:10])}")
    guids.update(acls)
    replayer = Replayer(rp, new, guids, args.group_prefix)
    keep_freed_memory()  # before the batches' arrays: nsgsolve/heap.py says why

    started = time.perf_counter()
    if args.dask:
        from nsgsolve.analyses.replay_dask import replay_dask

        spec = spec_of(args, guids)
        part = replay_dask(spec, files, args.dask, args.workers)
    else:
        part = _local(replayer, files, args.workers, None if args.no_progress else _progress_bar(files, err))
    seconds = time.perf_counter() - started
    result = replayer.result(part)

    rep.render_bad(result.bad_records, result.bad, err)
    status = 0
    changed = result.changed or ()
    if ("changed" in fails and changed) or ("breaking" in fails and any(c.before == ALLOW for c in changed)) \
            or ("mismatch" in fails and result.mismatches) \
            or ("unused" in fails and any(not s.is_default for s in result.unused)):
        status = 1
    fmt = "json" if args.json else args.format
    if fmt == "json":
        out.write(json.dumps(rep.to_json(result, new is not None), indent=2) + "\n")
    elif fmt == "text":
        out.write(rep.render_text(result, " ".join(args.against) if args.against else None, args.top))
        if seconds >= 2 and result.tuples:
            err.write(f"{result.tuples:,} tuples in {seconds:.2f} s ({result.tuples / seconds:,.0f} tuples/s)\n")
    else:
        from nsgsolve.reports import render

        out.write(render(rep.report(result, list(args.policy), args.against, status,
                                    new.policy if new is not None else None), fmt))
    if fmt != "text":
        err.write(rep.summary_line(result) + "\n")
    return status


def flow_files(paths: list[str]) -> list[str]:
    """The log files under ``paths``; E910/E911 when a path is missing or holds none."""
    from nsgsolve.importers.flowlogs import flow_log_files

    files, missing = flow_log_files(paths)
    if missing:
        raise InputError([Diagnostic("E910", f"no such flow log file or directory: {m}", Span(m, 0, 0),
                                     "give PT1H.json files or the directory Azure writes them to") for m in missing])
    if not files:
        raise InputError.single("E911", f"no .json flow log files under {', '.join(paths)}", Span(paths[0], 0, 0),
                                "Azure writes flow logs as .../macAddress=.../PT1H.json; point --flow-logs there")
    return files


def _local(replayer, files: list[str], workers: int | None, progress) -> object:
    from nsgsolve.analyses.replay import Partial
    from nsgsolve.parallel import fork_map, workers as default_workers

    n = default_workers() if workers is None else workers
    if n <= 1 or len(files) == 1:
        total = Partial()
        for f in files:
            total.merge(replayer.replay_file(f, progress.file(f) if progress else None))
            if progress:
                progress.done(f)
        if progress:
            progress.close()
        return total
    if progress is None:
        parts = fork_map(replayer.replay_file, files, n, min_items=2)
    else:
        parts = _forked_with_progress(replayer, files, n, progress)
    total = Partial()
    for p in parts:
        total.merge(p)
    return total


def _forked_with_progress(replayer, files: list[str], n: int, progress: "_progress_bar") -> list:
    """fork_map with the bar: every process writes the bytes it has read of each file into a shared
    anonymous mapping (one slot per file, so no locking), and this process draws their sum while it replays
    its own share; its share done, it waits for the others with the bar near the end."""
    import mmap

    from nsgsolve.parallel import fork_map

    shared = mmap.mmap(-1, 8 * len(files))
    done = memoryview(shared).cast("q")
    drawer = os.getpid()  # the forked workers only count

    def one(i: int):
        f = files[i]
        size = progress.sizes[f]

        def update(read: int) -> None:
            done[i] = min(read, size)
            if os.getpid() != drawer:
                return
            now = time.perf_counter()
            if now - progress.shown >= 0.2:
                progress.shown = now
                progress.draw(sum(done), now)

        part = replayer.replay_file(f, update)
        done[i] = size
        return part

    try:
        return fork_map(one, list(range(len(files))), n, min_items=2)
    finally:
        progress.draw(sum(done), time.perf_counter())
        progress.close()
        done.release()
        shared.close()


class _progress_bar:
    """A one-line bar on standard error, by bytes read, for logs big enough to wait for on a terminal."""

    MIN_BYTES = 8 << 20
    err: TextIO
    sizes: dict[str, int]
    total: int
    base: int
    start: float
    shown: float

    def __new__(cls, files: list[str], err: TextIO):
        if not (hasattr(err, "isatty") and err.isatty()):
            return None
        sizes = {f: _size(f) for f in files}
        total = sum(sizes.values())
        if total < cls.MIN_BYTES:
            return None
        self = super().__new__(cls)
        self.err, self.sizes, self.total, self.base = err, sizes, max(total, 1), 0
        self.start = self.shown = time.perf_counter()
        return self

    def file(self, f: str) -> Callable[[int], None]:
        def update(read: int) -> None:
            now = time.perf_counter()
            if now - self.shown < 0.2:
                return
            self.shown = now
            self.draw(self.base + min(read, self.sizes[f]), now)

        return update

    def done(self, f: str) -> None:
        self.base += self.sizes[f]

    def draw(self, done: int, now: float) -> None:
        frac = min(done / self.total, 1.0)
        width = 30
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        rate = done / max(now - self.start, 1e-6) / (1 << 20)
        self.err.write(f"\rreplay [{bar}] {frac:4.0%} {done >> 20}/{self.total >> 20} MB {rate:.0f} MB/s ")
        self.err.flush()

    def close(self) -> None:
        self.err.write("\r" + " " * 79 + "\r")
        self.err.flush()


def _size(f: str) -> int:
    try:
        return os.path.getsize(f)
    except OSError:
        return 0


def parse_acls(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        guid, sep, name = it.partition("=")
        if not sep or not guid.strip() or not name.strip():
            raise UsageError(
                f"--acl {it!r} is not GUID=NSG", "for example --acl 00000000-1234-abcd-ef00-c1c2c3c4c5c6=web-nsg"
            )
        out[guid.strip().lower()] = name.strip()
    return out


def policy_guids(paths: list[str]) -> dict[str, str]:
    """resourceGuid -> NSG name from the JSON policy files (az/REST exports carry it; templates do not),
    so a VNet flow log's aclID names its NSG."""
    out: dict[str, str] = {}
    for p in paths:
        if not p.lower().endswith(".json"):
            continue
        try:
            with open(p, encoding="utf-8-sig") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue  # the loader has reported what is wrong with the file already
        stack = [doc]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                props = x["properties"] if isinstance(x.get("properties"), dict) else x
                guid = props.get("resourceGuid") or x.get("resourceGuid")
                kind = str(x.get("type", "")).lower()
                if isinstance(guid, str) and isinstance(x.get("name"), str) and (
                        "networksecuritygroups" in kind or "securityRules" in props):
                    out[guid.lower()] = x["name"]
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
    return out


def spec_of(args: argparse.Namespace, guids: dict[str, str]) -> dict:
    """What a Dask worker needs to rebuild the same replayer: file names and options, not the resolved
    policy (workers read the policy files themselves, so they must see the same paths)."""
    return {"policy": [os.path.abspath(p) for p in args.policy],
            "against": [os.path.abspath(p) for p in args.against] if args.against else None,
            "param": list(args.param), "params_file": args.params_file, "symbolic": args.symbolic,
            "service_tags": os.path.abspath(args.service_tags) if args.service_tags else None,
            "guids": guids, "group_prefix": args.group_prefix}


__all__ = ["register", "run", "policy_guids", "spec_of"]
