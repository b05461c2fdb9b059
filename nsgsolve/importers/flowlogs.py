"""Read Azure flow logs as Azure writes them to storage: NSG flow logs (versions 1 and 2) and VNet flow
logs (version 4), one ``{"records": [...]}`` document per blob, in directories laid out
``.../y=2026/m=12/d=05/h=10/m=00/macAddress=.../PT1H.json``.

Logs are large (an hour of a busy NIC is hundreds of megabytes), so a file is never parsed whole: a
chunked reader finds one record at a time with the C JSON scanner (``JSONDecoder.raw_decode``) and keeps
only that record and one chunk in memory. Bad input never stops the reading of the rest: a truncated or
invalid record, an unknown version and a record without flows are reported as :class:`BadRecord` with
the file and the line:column of the record, and the reader carries on with the next record (after a JSON
syntax error, with the next ``{"time": ...`` record start) and the next file.

The reader hands out :class:`FlowGroup` objects: the tuples that one NSG (or one ACL of a VNet flow
log) logged under one rule for one NIC. Tuples stay strings here; the replay splits them, because most
of them repeat and only distinct ones need parsing (nsgsolve.analyses.replay).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterator

CHUNK = 1 << 20  # characters read at a time
MAX_RECORD = 512 << 20  # a record larger than this is not a flow log record: stop the file instead of swallowing it

KNOWN_VERSIONS = (1, 2, 4)
# Where a record starts in an Azure blob: resynchronise there after a syntax error.
_RECORD_START = re.compile(r'\{\s*"time"\s*:')
_WS = re.compile(r"\s*")


def _skip_ws(buf: str, pos: int) -> int:
    m = _WS.match(buf, pos)
    assert m is not None  # \s* matches the empty string
    return m.end()


@dataclass(frozen=True)
class BadRecord:
    """Something in a flow log that was skipped, with where it is (1-based line and column)."""

    file: str
    line: int
    column: int
    what: str  # "truncated JSON", "invalid JSON", "unknown version", "not a flow log record", "malformed tuple"
    message: str
    code: str  # the warning code (docs/errors.md W900-W903)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.what}: {self.message}"


@dataclass
class FlowGroup:
    """Tuples one NSG (v1/v2) or one ACL (v4) logged under one rule for one NIC."""

    version: int  # 1, 2 or 4
    nsg: str | None  # v1/v2: the NSG's name from resourceId (upper-cased by Azure)
    acl: str | None  # v4: aclID, the resource GUID of the NSG or network manager whose rule decided
    mac: str
    rule: str  # as logged: "UserRule_x", "DefaultRule_x", or a bare name (v4 admin rules)
    tuples: list
    file: str
    record: int  # index of the record in its file
    _where: Callable[[str | None], tuple[int, int]]  # line, column of a tuple (or of the record)

    def position(self, text: str | None = None) -> tuple[int, int]:
        """Line and column of ``text`` (a tuple string) inside this group's record, else of the record."""
        return self._where(text)


def flow_log_files(paths: list[str]) -> tuple[list[str], list[str]]:
    """The ``.json`` files under ``paths`` (directories read recursively, in sorted order so runs and
    partitions are reproducible), and the paths that do not exist."""
    files: list[str] = []
    missing: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = []
            for root, dirs, names in os.walk(p):
                dirs.sort()
                found += [os.path.join(root, n) for n in names if n.lower().endswith(".json")]
            files += sorted(found)
        elif os.path.exists(p):
            files.append(p)
        else:
            missing.append(p)
    return files, missing


def nsg_name(resource_id: str) -> str:
    """``/SUBSCRIPTIONS/.../NETWORKSECURITYGROUPS/WEB-NSG`` -> ``WEB-NSG``."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


class _Source:
    """One file, read a chunk at a time; positions are kept as (line at buf[0], buf)."""

    def __init__(self, path: str):
        self.path = path
        self.f = open(path, encoding="utf-8-sig", errors="strict", newline="")
        self.buf = ""
        self.base_line = 1  # line number of buf[0]
        self.base_col_at = 0  # offset in the consumed text of the last newline before buf[0] (for columns)
        self.col_base = 1  # column of buf[0]
        self.eof = False
        self.bytes_read = 0

    def close(self) -> None:
        self.f.close()

    def more(self, at_least: int = 0) -> bool:
        if self.eof:
            return False
        data = self.f.read(max(CHUNK, at_least))
        if not data:
            self.eof = True
            return False
        self.bytes_read += len(data)
        self.buf += data
        return True

    def drop(self, pos: int) -> None:
        """Forget ``buf[:pos]``, keeping line and column accounting."""
        if pos <= 0:
            return
        gone = self.buf[:pos]
        nl = gone.count("\n")
        if nl:
            self.base_line += nl
            self.col_base = pos - gone.rfind("\n")
        else:
            self.col_base += pos
        self.buf = self.buf[pos:]

    def line_col(self, buf: str, base_line: int, col_base: int, pos: int) -> tuple[int, int]:
        nl = buf.count("\n", 0, pos)
        if nl:
            return base_line + nl, pos - buf.rfind("\n", 0, pos)
        return base_line, col_base + pos


def read_flow_log(path: str, bad: Callable[[BadRecord], None],
                  progress: Callable[[int], None] | None = None) -> Iterator[FlowGroup]:
    """The flow groups of one file, in file order; problems go to ``bad`` and reading goes on."""
    try:
        src = _Source(path)
    except OSError as e:
        bad(BadRecord(path, 0, 0, "unreadable file", e.strerror or str(e), "W900"))
        return
    try:
        yield from _read(src, bad, progress)
    except UnicodeDecodeError as e:
        bad(BadRecord(path, src.base_line, 1, "not UTF-8", f"byte {e.start} of a chunk is not UTF-8; the rest of "
                      "the file is skipped", "W900"))
    finally:
        src.close()


def _read(src: _Source, bad: Callable[[BadRecord], None], progress) -> Iterator[FlowGroup]:
    decoder = json.JSONDecoder()
    raw_decode = decoder.raw_decode
    path = src.path
    src.more()
    pos = _skip_ws(src.buf, 0)
    while pos >= len(src.buf) and src.more():
        pos = _skip_ws(src.buf, pos)
    if pos >= len(src.buf):
        bad(BadRecord(path, 1, 1, "truncated JSON", "the file is empty", "W900"))
        return
    # The envelope: {"records": [ ... ]} as Azure writes it; a bare list of records is read too.
    head = src.buf[pos]
    if head == "{":
        m = re.compile(r'\{\s*"records"\s*:\s*\[').match(src.buf, pos)
        if m is None and not src.eof:
            src.more()
            m = re.compile(r'\{\s*"records"\s*:\s*\[').match(src.buf, pos)
        if m is None:
            line, col = src.line_col(src.buf, src.base_line, src.col_base, pos)
            bad(BadRecord(path, line, col, "not a flow log record",
                          'a flow log file is {"records": [...]} as Azure writes it to storage', "W901"))
            return
        pos = m.end()
    elif head == "[":
        pos += 1
    else:
        line, col = src.line_col(src.buf, src.base_line, src.col_base, pos)
        bad(BadRecord(path, line, col, "invalid JSON", f"a flow log file starts with '{{', not {head!r}", "W900"))
        return
    index = 0
    while True:
        # between records: whitespace, ',' separators, ']' at the end
        while True:
            pos = _skip_ws(src.buf, pos)
            if pos < len(src.buf):
                c = src.buf[pos]
                if c == ",":
                    pos += 1
                    continue
                break
            if pos > CHUNK:
                src.drop(pos)
                pos = 0
            if not src.more():
                break
        if pos >= len(src.buf):
            line, col = src.line_col(src.buf, src.base_line, src.col_base, pos)
            bad(BadRecord(path, line, col, "truncated JSON", f"the file ends after {index} record"
                          f"{'' if index == 1 else 's'}, without the closing ']}}'", "W900"))
            return
        if src.buf[pos] == "]":
            return
        if pos > CHUNK:  # keep the buffer about one chunk plus one record
            src.drop(pos)
            pos = 0
        while True:
            try:
                record, end = raw_decode(src.buf, pos)
                break
            except RecursionError:
                # A record nested beyond the C scanner's stack is no flow log record (they nest 6 levels);
                # the scanner unwinds cleanly, so skip it like invalid JSON.
                e = json.JSONDecodeError("nested too deeply (flow log records nest 6 levels)", src.buf, pos + 1)
                line, col = src.line_col(src.buf, src.base_line, src.col_base, pos)
                bad(BadRecord(path, line, col, "invalid JSON", f"record {index}: {e.msg}; skipped to the next "
                              "record", "W900"))
                index += 1
                nxt = _RECORD_START.search(src.buf, pos + 1)
                while nxt is None and src.more():
                    nxt = _RECORD_START.search(src.buf, pos + 1)
                if nxt is None:
                    return
                pos = nxt.start()
            except json.JSONDecodeError as e:
                incomplete = e.pos >= len(src.buf) - 1 or e.msg.startswith("Unterminated string")
                if incomplete and not src.eof and len(src.buf) - pos < MAX_RECORD:
                    src.more(len(src.buf) - pos)
                    continue
                line, col = src.line_col(src.buf, src.base_line, src.col_base, min(e.pos, len(src.buf)))
                if incomplete:
                    bad(BadRecord(path, line, col, "truncated JSON", f"record {index} is cut off ({e.msg}); "
                                  "the records before it were read", "W900"))
                    return
                bad(BadRecord(path, line, col, "invalid JSON", f"record {index}: {e.msg}; skipped to the next "
                              "record", "W900"))
                index += 1
                nxt = _RECORD_START.search(src.buf, e.pos)
                while nxt is None and src.more():
                    nxt = _RECORD_START.search(src.buf, e.pos)
                if nxt is None:
                    return
                pos = nxt.start()
        if progress is not None:
            progress(src.bytes_read)
        yield from _groups(record, index, src, pos, end, bad)
        index += 1
        pos = end


def _locator(src: _Source, start: int, end: int) -> Callable[[str | None], tuple[int, int]]:
    buf, base_line, col_base = src.buf, src.base_line, src.col_base

    def where(text: str | None) -> tuple[int, int]:
        pos = start
        if text is not None:
            found = buf.find(json.dumps(text), start, end)
            if found >= 0:
                pos = found + 1  # the tuple's first character, inside the quotes
        return src.line_col(buf, base_line, col_base, pos)

    return where


def record_version(record: dict) -> int | None | str:
    """4 for VNet flow logs, 1 or 2 for NSG flow logs, the unknown value as found, None if neither shape."""
    if "flowLogVersion" in record:
        return record.get("flowLogVersion")
    props = record.get("properties")
    if isinstance(props, dict) and "Version" in props:
        return props.get("Version")
    return None


def _groups(record, index: int, src: _Source, start: int, end: int, bad) -> Iterator[FlowGroup]:
    where = _locator(src, start, end)
    path = src.path

    def skip(what: str, message: str, code: str) -> None:
        line, col = where(None)
        bad(BadRecord(path, line, col, what, f"record {index}: {message}", code))

    if not isinstance(record, dict):
        skip("not a flow log record", f"a record is a JSON object, not {type(record).__name__}", "W901")
        return
    version = record_version(record)
    if version is None:
        skip("not a flow log record", "neither properties.Version (NSG flow logs) nor flowLogVersion (VNet flow "
             "logs)", "W901")
        return
    if isinstance(version, bool) or version not in KNOWN_VERSIONS:
        skip("unknown version", f"flow log version {json.dumps(version)}; nsgsolve reads NSG flow logs versions 1 "
             "and 2 and VNet flow logs version 4", "W901")
        return
    try:
        if version == 4:
            mac = str(record.get("macAddress", ""))
            for flow in record["flowRecords"]["flows"]:
                acl = flow.get("aclID")
                for g in flow["flowGroups"]:
                    tuples = g["flowTuples"]
                    if not isinstance(tuples, list):
                        raise TypeError("flowTuples is not a list")
                    yield FlowGroup(4, None, None if acl is None else str(acl), mac, str(g["rule"]), tuples, path,
                                    index, where)
        else:
            nsg = nsg_name(str(record["resourceId"]))
            for rf in record["properties"]["flows"]:
                rule = str(rf["rule"])
                for mf in rf["flows"]:
                    tuples = mf["flowTuples"]
                    if not isinstance(tuples, list):
                        raise TypeError("flowTuples is not a list")
                    yield FlowGroup(int(version), nsg, None, str(mf.get("mac", "")), rule, tuples, path, index, where)
    except (KeyError, TypeError, AttributeError) as e:
        what = f"no {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
        skip("not a flow log record", f"{what} in a version {version} record; its remaining flows are skipped",
             "W901")


__all__ = ["BadRecord", "FlowGroup", "flow_log_files", "read_flow_log", "nsg_name", "record_version"]
