"""``nsgsolve verify``: decide concrete flows, with the rule that decided at every layer."""

from __future__ import annotations

import argparse
import csv
from functools import partial
from typing import TextIO

from nsgsolve.errors import Diagnostic, InputError, UsageError
from nsgsolve.semantics.evaluate import Evaluator, Packet, resolve_endpoint
from nsgsolve.semantics.flows import FlowEngine
from nsgsolve.model import PORTED_PROTOCOLS, Protocol, Span
from nsgsolve.semantics.resolve import IpcKey, ResolvedPolicy
from nsgsolve.semantics.addresses import ip_to_int, is_v6
from nsgsolve.reports.json import dumps
from nsgsolve.reports.trace import format_flow
from nsgsolve.commands.common import add_policy_args, formatter, load_and_resolve
from nsgsolve.parallel import fork_call, workers

EPILOG = """examples:
  nsgsolve verify examples/webservers.nsg --src 203.0.113.7 --dst web1 --protocol tcp --dport 443
  nsgsolve verify examples/three-tier.nsg --src web1 --dst db1 --protocol tcp --dport 1433 --json
  nsgsolve verify examples/webservers.nsg --flows examples/webservers-flows.csv --json   # JSON Lines
  nsgsolve verify nsgs.json vnets.json nics.json --src 203.0.113.7 --dst web1 --protocol tcp --dport 22

--flows reads CSV with the header src,dst,protocol,sport,dport (ports empty for icmp/esp/ah).
Several JSON files (ARM template, az exports) make one POLICY; see docs/import.md.

exit status: 0 when the command ran (whatever the decisions), 2 for invalid input or usage."""

PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="decide concrete flows, with the rule trace",
                       description="Decide one flow (or a CSV of flows) exactly as Azure would: every NSG layer met "
                                   "(source NIC and subnet outbound, destination subnet and NIC inbound), the rule "
                                   "that decided there, and platform rules.",
                       epilog=EPILOG, formatter_class=formatter())
    add_policy_args(p)
    p.add_argument("--src", help="source IPv4 address or NIC name")
    p.add_argument("--dst", help="destination IPv4 address or NIC name")
    p.add_argument("--protocol", type=str.lower, choices=PROTOCOLS, help="protocol of the flow")
    p.add_argument("--dport", type=_port, help="destination port (tcp/udp)")
    p.add_argument("--sport", type=_port, help="source port (tcp/udp; default 49152)")
    p.add_argument("--flows", metavar="FILE.csv", help="many flows: CSV with header src,dst,protocol,sport,dport")
    p.add_argument("--assume-ip", action="append", default=[], metavar="NIC=ADDRESS",
                   help="an address for a NIC whose private IP is dynamic (repeatable)")
    p.add_argument("--json", action="store_true", help="JSON output (JSON Lines with --flows)")
    p.set_defaults(func=run)


DEFAULT_SPORT = 49152  # first ephemeral port; any value decides the same unless a rule names source ports


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (0-65535)") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port {v} is outside 0-65535")
    return v


def parse_assignment(rp: ResolvedPolicy, items: list[str]) -> dict[IpcKey, int]:
    out: dict[IpcKey, int] = {}
    for item in items:
        nic, sep, addr = item.partition("=")
        if not sep:
            raise UsageError(f"--assume-ip '{item}' is not NIC=ADDRESS", "for example --assume-ip web2=10.0.1.9")
        dyn = [i for i in rp.nic_ipcs(nic) if i.ip is None]
        if not dyn:
            raise UsageError(f"--assume-ip: '{nic}' is not a NIC with a dynamic IP")
        try:
            ip = ip_to_int(addr)
        except ValueError:
            raise UsageError(f"--assume-ip: '{addr}' is not an IPv4 address") from None
        if ip not in dyn[0].usable:
            raise UsageError(f"--assume-ip: {addr} is not a usable address of subnet {dyn[0].subnet_label}",
                             "Azure reserves the first four and the last address of a subnet")
        if ip in rp.static_ip_index or ip in out.values():
            raise UsageError(f"--assume-ip: {addr} is already the address of another NIC")
        out[dyn[0].key] = ip
    return out


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # The flow file is read into columns by a forked child while this process loads the policy (its only
    # answer is the arrays, or None, which sends the reading back here, where any error is located).
    pre = fork_call(partial(_parsed_file, args.flows)) if args.flows and workers() > 1 else None
    try:
        return _run(args, out, err, pre)
    finally:
        if pre is not None and pre.child is not None:  # an error before the flows were needed: reap the child
            pre.result()


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, pre) -> int:
    rp = load_and_resolve(args, err)
    assignment = parse_assignment(rp, args.assume_ip)
    ev = Evaluator(rp, assignment)
    if args.flows:
        if any(v is not None for v in (args.src, args.dst, args.protocol, args.dport, args.sport)):
            raise UsageError("--flows replaces --src/--dst/--protocol/--sport/--dport; give one or the other")
        return _run_flows(rp, ev, args.flows, assignment, args.json, out, pre)
    missing = [f"--{n}" for n in ("src", "dst", "protocol") if getattr(args, n) is None]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}", "or give --flows FILE.csv")
    proto = Protocol.parse(args.protocol).number
    assert proto is not None  # --protocol's choices are single protocols, each with its number
    if proto in PORTED_PROTOCOLS and args.dport is None:
        raise UsageError(f"--dport is required for {args.protocol}")
    if proto not in PORTED_PROTOCOLS and (args.dport is not None or args.sport is not None):
        raise UsageError(f"{args.protocol} has no ports; drop --dport/--sport")
    src, src_key = resolve_endpoint(rp, args.src, assignment)
    dst, dst_key = resolve_endpoint(rp, args.dst, assignment)
    sport = args.sport if args.sport is not None else DEFAULT_SPORT
    result = ev.evaluate(Packet(proto, src, sport if proto in PORTED_PROTOCOLS else None, dst,
                                args.dport if proto in PORTED_PROTOCOLS else None), src_key, dst_key)
    if args.json:
        out.write(dumps("verify", result.to_dict()))
    else:
        out.write(format_flow(result) + "\n")
    return 0


MEMO_LIMIT = 200_000  # distinct flows whose output the reference-evaluator path keeps

ROW_HINT = ("each row is src,dst,protocol,sport,dport, e.g. 203.0.113.7,web1,tcp,50000,443 "
            "(ports empty for icmp/esp/ah)")


class _BadCell(ValueError):
    """A flow row's cell that is not what its column needs; ``column`` names the cell for the caret."""

    def __init__(self, message: str, column: str | None, hint: str = ""):
        super().__init__(message)
        self.column = column
        self.hint = hint


def _parsed_file(path: str):
    """The flow file's header line and its body read by :func:`_parse_columns`, or None (a file that is not
    read there: read again by the caller, which locates its errors)."""
    from nsgsolve.importers.loader import read_text

    try:
        text = read_text(path)
        head = text.split("\n", 1)[0].rstrip("\r")
        first = next(csv.reader([head]), None)
        if first is None:
            return None
        header = [h.strip().lower() for h in first]
        body = _body(text, head)
        if header.count("src") != 1 or len(set(header)) != len(header) or not _plain(body):
            return None
        col = {h: header.index(h) for h in header}
        return head, _parse_columns(body.encode("utf-8", "replace"), len(header), col)
    except Exception:  # noqa: BLE001 - whatever it is, the caller's own reading reports it
        return None


def _body(text: str, head: str) -> str:
    """The rows after the header line, with \n line ends and one final \n."""
    body = text[len(head):].lstrip("\r").removeprefix("\n")
    if "\r" in body:
        body = body.replace("\r\n", "\n")
    return body.rstrip("\n") + "\n"


def _plain(body: str) -> bool:
    """Cells that lie between commas (no quoting, no padding) and no blank line: what the column reading
    needs (the row-by-row reading skips blank lines, and explains every other problem with its position)."""
    return bool(body.strip()) and not any(ch in body for ch in '"\0 \t\r') and "\n\n" not in body


def _run_flows(rp: ResolvedPolicy, ev: Evaluator, path: str, assignment, as_json: bool, out: TextIO,
               pre=None) -> int:
    from nsgsolve.heap import keep_freed_memory
    from nsgsolve.importers.loader import read_text

    keep_freed_memory()

    text = read_text(path)
    head = text.split("\n", 1)[0].rstrip("\r")
    first = next(csv.reader([head]), None) if text.strip() else None
    if first is None:
        raise InputError.single("E901", "the flow file is empty", Span(path, 1, 1),
                                "the first line is the header src,dst,protocol,sport,dport")
    header = [h.strip().lower() for h in first]
    need = ["src", "dst", "protocol", "sport", "dport"]
    if sorted(header) != sorted(need):
        raise InputError.single("E902", f"flow file header is {','.join(first)!r}",
                                Span(path, 1, 1, 1, len(head) + 1),
                                "the header must name the columns src,dst,protocol,sport,dport")
    col = {h: header.index(h) for h in need}
    engine = FlowEngine(rp, assignment)
    columns = None
    done = pre.result() if pre is not None else None
    if done is not None and done[0] == head:  # the header this process checked: the child read this file
        columns = _fast_columns(rp, engine, done[1], col, assignment) if done[1] is not None else None
    else:
        body = _body(text, head)
        if _plain(body):
            parsed = _parse_columns(body.encode("utf-8", "replace"), len(header), col)
            columns = _fast_columns(rp, engine, parsed, col, assignment) if parsed is not None else None
        del body
    if columns is None:  # quoted cells, or some row blank, short or wrong: the row-by-row reading explains it
        lines = text.splitlines()
        rows = list(csv.reader(lines))
        flows = _slow_flows(rp, ev, path, lines, rows, header, col, assignment)
        del rows, lines
        if any(is_v6(p.src) for p, _, _ in flows):
            # The vectorised engine's columns are int64, which IPv6 addresses overflow: IPv6 flows (and the
            # IPv4 flows of the same file) go through the reference evaluator, once per distinct flow (a
            # flow file repeats its flows; the memo is bounded, so memory stays flat on any file).
            write = out.write
            seen: dict[tuple[Packet, IpcKey | None, IpcKey | None], str] = {}
            for flow in flows:
                line = seen.get(flow)
                if line is None:
                    r = ev.evaluate(*flow)
                    line = dumps("verify", r.to_dict(), indent=None) if as_json else format_flow(r) + "\n"
                    if len(seen) < MEMO_LIMIT:
                        seen[flow] = line
                write(line)
            return 0
        columns = _flow_columns(engine, flows)
    del text  # the flows are arrays now; the text was the larger part of the memory
    write = out.write
    proto_a, src_a, sport_a, dst_a, dport_a, src_key_a, dst_key_a = columns
    fd = _output_fd(out) if as_json and len(proto_a) >= PARALLEL_FLOWS and workers() > 1 else None
    if fd is not None:
        _write_parallel(engine, columns, out, fd)
        return 0
    d = engine.decide(proto_a, src_a, sport_a, dst_a, dport_a, src_key_a, dst_key_a, settled=True)
    if as_json:  # JSON Lines: one verify document per flow, never all of them in memory at once
        from nsgsolve.reports.flows import json_chunks

        for chunk in json_chunks(d):
            write(chunk)
    else:
        for i in range(len(d)):
            write(format_flow(d.result(i)) + "\n")
    return 0


# From this many flows, deciding and writing JSON lines is spread over the cores (forking two processes
# costs ~10 ms; 50,000 flows take ~0.15 s).
PARALLEL_FLOWS = 50_000
CHUNK_FLOWS = 4096  # flows per written chunk (reports.flows.json_chunks' own size)


def _output_fd(out: TextIO) -> int | None:
    """The descriptor ``out`` writes to, when the JSON lines may bypass it (a real file or pipe), else None."""
    try:
        return out.fileno()
    except (AttributeError, OSError, ValueError):  # io.StringIO and the like
        return None


def _write_parallel(engine: FlowEngine, columns, out: TextIO, fd: int) -> None:
    """JSON lines of the flows in ``columns``, chunk ``k`` (CHUNK_FLOWS flows) decided and formatted by worker
    ``k % n`` and written in turn (parallel.write_in_turn): the same bytes as the serial path, since a flow's
    line depends on that flow alone."""
    import numpy as np

    from nsgsolve.parallel import write_in_turn
    from nsgsolve.reports.flows import json_chunks, port_texts

    total = len(columns[0])
    # Before the fork, what each worker would otherwise build again for itself: the compiled layers (one
    # flow per pair of ends meets the layers of nearly every flow; a layer missed is compiled where it is
    # met) and the port texts.
    _, one_each = np.unique(columns[5] * len(engine.keys) + columns[6], return_index=True)
    _decide(engine, columns, one_each)
    port_texts()

    def chunks(w: int, n: int):
        rows = np.arange(total, dtype=np.int64)
        rows = rows[(rows // CHUNK_FLOWS) % n == w]  # this worker's chunks, back to back
        d = _decide(engine, columns, rows)
        for text in json_chunks(d, CHUNK_FLOWS):
            yield text.encode("ascii")  # json.dumps escapes every non-ASCII character

    out.flush()  # what `out` holds goes first
    write_in_turn(chunks, fd)


def _decide(engine: FlowEngine, columns, rows):
    """The decisions of the flows ``rows`` of ``columns``."""
    proto, src, sport, dst, dport, src_key, dst_key = (c[rows] for c in columns)
    return engine.decide(proto, src, sport, dst, dport, src_key, dst_key, settled=True)


def _parse_columns(data: bytes, width: int, col: dict[str, int]):
    """What the column reading needs of the policy-free part of the rows: the protocol numbers, each end's
    IPv4 addresses with the rows (and their texts) that are no address, and the two port columns; None
    unless every row is complete and valid (then :func:`_slow_flows` reports the rows at fault with their
    positions). The caller made sure no cell is quoted or padded, so cells are what lie between commas."""
    import numpy as np

    from nsgsolve.importers import columns as colparse

    c = colparse.split(data, width)
    n = len(c)
    if not n or (c.cells != width).any():
        return None
    pj = col["protocol"]
    plen = c.length(pj)
    if (plen < 1).any() or (plen > 8).any():
        return None
    # A protocol cell as up to eight bytes in one integer: its distinct values are a handful of words.
    codes, pinv = np.unique(c.word(c.start[:, pj], plen), return_inverse=True)
    numbers = []
    for v in codes.tolist():
        word = int(v).to_bytes(8, "little").rstrip(b"\0").decode("ascii", "replace")
        try:
            number = Protocol.parse(word).number
        except ValueError:
            return None
        if number is None:
            return None
        numbers.append(number)
    proto = np.array(numbers, dtype=np.int64)[pinv.reshape(-1)]
    ends = []
    for which, (ip, ok, _) in zip(("src", "dst"), colparse.ipv4_columns(c, (col["src"], col["dst"]))):
        named = np.flatnonzero(~ok)
        ends.append((ip, named, [c.text(i, col[which]) for i in named.tolist()]))
    ported = np.isin(proto, PORTED_PROTOCOLS)
    ports = []
    for which in ("sport", "dport"):
        j = col[which]
        value, ok = colparse.unsigned(c, j, 5)
        empty = c.length(j) == 0
        if (ported & ~empty & (~ok | (value > 65535))).any():
            return None
        ports.append((np.where(empty, -1, value), empty))
    (sport, sport_empty), (dport, dport_empty) = ports
    if (ported & dport_empty).any():
        return None
    return proto, ends, np.where(sport_empty, DEFAULT_SPORT, sport), dport


def _fast_columns(rp: ResolvedPolicy, engine: FlowEngine, parsed, col: dict[str, int], assignment):
    """The flow columns as arrays from :func:`_parse_columns`' reading; a NIC name (any address cell that is
    no IPv4 address) is resolved once per distinct name; None when an end is not one the engine decides
    (IPv6, an unknown name: the row-by-row reading decides or explains those)."""
    import numpy as np

    proto, parsed_ends, sport, dport = parsed
    n = len(proto)
    try:
        ends = []
        for ip, named, texts in parsed_ends:
            key = np.zeros(n, dtype=np.int64)
            if len(named):  # NIC names (or bad cells): each distinct text resolved once
                seen: dict[str, tuple[int, int]] = {}
                for t in set(texts):
                    addr, ipc = resolve_endpoint(rp, t, assignment)
                    if is_v6(addr):
                        return None  # IPv6 flows: the row-by-row path decides them with the reference evaluator
                    seen[t] = (addr, engine.key_ids[ipc] if ipc is not None else 0)
                ip[named] = np.fromiter((seen[t][0] for t in texts), np.int64, len(texts))
                key[named] = np.fromiter((seen[t][1] for t in texts), np.int64, len(texts))
            ends.append((ip, key))
    except (UsageError, ValueError):
        return None
    (src, src_key), (dst, dst_key) = ends
    try:
        src_key, dst_key = engine.endpoint_ids(src, dst, src_key, dst_key)
    except UsageError:
        return None
    return proto, src, sport, dst, dport, src_key, dst_key


def _slow_flows(rp, ev, path, lines, rows, header, col, assignment
                ) -> list[tuple[Packet, IpcKey | None, IpcKey | None]]:
    """Row by row, collecting every bad row's E903 with the cell at fault; the flows when all are good."""
    errors: list[Diagnostic] = []
    flows: list[tuple[Packet, IpcKey | None, IpcKey | None]] = []
    endpoint_cache: dict[str, tuple[int, IpcKey | None]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            try:
                p, src_key, dst_key = _row_packet(rp, row, col, endpoint_cache, assignment)
            except IndexError:  # a short row is fine while the cells its protocol needs are there
                raise _BadCell(f"{len(row)} cells, the header has {len(header)}", None) from None
            if is_v6(p.src) != is_v6(p.dst):
                raise _BadCell("a flow is IPv4 or IPv6, and its source and destination are of different "
                               "families", None, "give two IPv4 or two IPv6 addresses")
            try:
                # Settled per row, so an address several VNets' NICs share is reported with its row.
                flows.append((p, *ev.endpoints(p, src_key, dst_key)))
            except UsageError as e:
                raise _BadCell(str(e), None, e.hint) from None
        except _BadCell as e:
            errors.append(Diagnostic("E903", f"flow row {n}: {e}",
                                     _cell_span(path, n, lines[n - 1], row, col.get(e.column or "")),
                                     e.hint or ROW_HINT))
    if errors:
        raise InputError(errors)
    return flows


def _flow_columns(engine, flows):
    """The vectorised engine's int64 columns (IPv4 flows only)."""
    import numpy as np

    ids = engine.key_ids
    proto = np.array([p.protocol for p, _, _ in flows], dtype=np.int64)
    src = np.array([p.src for p, _, _ in flows], dtype=np.int64)
    dst = np.array([p.dst for p, _, _ in flows], dtype=np.int64)
    sport = np.array([p.sport or 0 for p, _, _ in flows], dtype=np.int64)
    dport = np.array([p.dport or 0 for p, _, _ in flows], dtype=np.int64)
    src_key = np.array([ids[k] if k is not None else 0 for _, k, _ in flows], dtype=np.int64)
    dst_key = np.array([ids[k] if k is not None else 0 for _, _, k in flows], dtype=np.int64)
    return proto, src, sport, dst, dport, src_key, dst_key


def _cell_span(path: str, n: int, line: str, row: list[str], index: int | None) -> Span:
    """The span of cell ``index`` in ``line`` (the whole line when no cell is to blame)."""
    if index is None:
        return Span(path, n, 1, n, len(line) + 1)
    start = 0
    for i, cell in enumerate(row):
        # Cells are found left to right, so an empty or repeated cell never matches an earlier one.
        found = line.find(cell, start)
        if found < 0:
            break
        if i == index:
            return Span(path, n, found + 1, n, found + 1 + max(len(cell), 1))
        start = found + len(cell) + 1
    return Span(path, n, 1, n, len(line) + 1)


def _row_packet(rp, row, col, cache, assignment) -> tuple[Packet, IpcKey | None, IpcKey | None]:
    def addr(which: str) -> tuple[int, IpcKey | None]:
        text = row[col[which]].strip()
        if text not in cache:
            try:
                cache[text] = resolve_endpoint(rp, text, assignment)
            except (UsageError, ValueError) as e:
                raise _BadCell(f"{which}: {e}", which, getattr(e, "hint", "")) from None
        return cache[text]

    def port(which: str, text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise _BadCell(f"{which} '{text}' is not a port number (0-65535)", which) from None
        if not 0 <= v <= 65535:
            raise _BadCell(f"{which} {v} is outside 0-65535", which)
        return v

    try:
        proto = Protocol.parse(row[col["protocol"]]).number
    except ValueError as e:
        raise _BadCell(str(e), "protocol", "protocol is tcp, udp, icmp, esp or ah") from None
    if proto is None:
        raise _BadCell("protocol '*' is not a packet's protocol", "protocol", "use tcp, udp, icmp, esp or ah")
    (src, src_key), (dst, dst_key) = addr("src"), addr("dst")
    if proto not in PORTED_PROTOCOLS:
        return Packet(proto, src, None, dst, None), src_key, dst_key
    sp, dp = row[col["sport"]].strip(), row[col["dport"]].strip()
    sport = port("sport", sp) if sp else DEFAULT_SPORT
    if not dp:
        raise _BadCell("dport is required for tcp and udp", "dport")
    return Packet(proto, src, sport, dst, port("dport", dp)), src_key, dst_key
