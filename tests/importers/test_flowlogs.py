"""The flow log reader: Azure's formats (NSG flow logs v1/v2, VNet flow logs v4), directories as Azure lays
them out, and bad input that is reported with its position and never stops the rest."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from nsgsolve.importers import flowlogs
from nsgsolve.importers.flowlogs import flow_log_files, read_flow_log

from corpus import CANDIDATES, CORPUS


def v2_record(nsg: str, rule: str, tuples: list[str], version: int = 2, time: str = "2026-12-05T10:00:00Z") -> dict:
    return {"time": time, "category": "NetworkSecurityGroupFlowEvent",
            "resourceId": f"/SUBSCRIPTIONS/X/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/{nsg}",
            "properties": {"Version": version, "flows": [{"rule": rule, "flows": [{"mac": "000D3AF87856",
                                                                                 "flowTuples": tuples}]}]}}


def v4_record(acl: str, rule: str, tuples: list[str]) -> dict:
    return {"time": "2026-12-05T10:00:00Z", "flowLogVersion": 4, "macAddress": "00224871C205",
            "targetResourceID": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
            "flowRecords": {"flows": [{"aclID": acl, "flowGroups": [{"rule": rule, "flowTuples": tuples}]}]}}


def write(path, records, indent=None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"records": records}, indent=indent), encoding="utf-8")
    return str(path)


def read_all(path: str):
    bad = []
    groups = [(g.version, g.nsg, g.acl, g.rule, list(g.tuples), g.position(g.tuples[0] if g.tuples else None))
              for g in read_flow_log(path, bad.append)]
    return groups, bad


@pytest.mark.skipif(CORPUS is None, reason=f"flow log corpus not found (looked in {', '.join(map(str, CANDIDATES))})")
def test_reads_microsofts_samples_of_both_formats():
    v2, bad2 = read_all(str(CORPUS / "flowlogs" / "msdocs-nsg-flow-logs-overview-v2-sample.json"))
    v4, bad4 = read_all(str(CORPUS / "flowlogs" / "msdocs-vnet-flow-logs-v4-sample.json"))
    assert bad2 == [] and bad4 == []
    assert [(g[0], g[1], g[3], len(g[4])) for g in v2] == [
        (2, "FABRIAKMVM1-NSG", "DefaultRule_DenyAllInBound", 3),
        (2, "FABRIAKMVM1-NSG", "DefaultRule_AllowInternetOutBound", 4),
        (2, "FABRIAKMVM1-NSG", "DefaultRule_DenyAllInBound", 4)]
    assert [(g[0], g[2], g[3], len(g[4])) for g in v4] == [
        (4, "00000000-1234-abcd-ef00-c1c2c3c4c5c6", "DefaultRule_AllowInternetOutBound", 10),
        (4, "01020304-abcd-ef00-1234-102030405060", "BlockHighRiskTCPPortsFromInternet", 2),
        (4, "01020304-abcd-ef00-1234-102030405060", "Internet", 7)]
    # the position of a tuple is where its text starts in the file
    line, col = v2[0][5]
    text = (CORPUS / "flowlogs" / "msdocs-nsg-flow-logs-overview-v2-sample.json").read_text().splitlines()[line - 1]
    assert text[col - 1:].startswith(v2[0][4][0])


def test_version_1_and_bare_lists(tmp_path):
    p = tmp_path / "v1.json"
    p.write_text(json.dumps([v2_record("NSG1", "UserRule_web", ["1487282421,192.0.2.95,10.1.0.4,51529,80,T,I,A"],
                                       version=1)]))
    groups, bad = read_all(str(p))
    assert bad == [] and groups[0][:4] == (1, "NSG1", None, "UserRule_web")


def test_directories_are_read_recursively_in_azure_layout(tmp_path):
    root = tmp_path / "insights-logs-networksecuritygroupflowevent"
    a = write(root / "resourceId=/X/y=2026/m=12/d=05/h=10/m=00/macAddress=000D3AF87856/PT1H.json",
              [v2_record("A", "UserRule_x", ["1,10.0.0.4,10.0.0.5,1,2,T,O,A,B,,,,"])])
    b = write(root / "resourceId=/X/y=2026/m=12/d=05/h=11/m=00/macAddress=000D3AF87856/PT1H.json",
              [v2_record("A", "UserRule_x", ["2,10.0.0.4,10.0.0.5,1,2,T,O,A,B,,,,"])])
    (root / "notes.txt").write_text("not a log")
    files, missing = flow_log_files([str(tmp_path), str(tmp_path / "nope")])
    assert files == [a, b] and missing == [str(tmp_path / "nope")]


def test_truncated_file_keeps_the_records_before_and_says_where(tmp_path):
    recs = [v2_record("A", "UserRule_x", [f"{i},10.0.0.4,10.0.0.5,1,2,T,O,A,B,,,,"]) for i in range(3)]
    text = json.dumps({"records": recs}, indent=2)
    cut = text.index('"1,10.0.0.4') + 5  # inside the second record's tuple
    p = tmp_path / "PT1H.json"
    p.write_text(text[:cut])
    groups, bad = read_all(str(p))
    assert [g[4] for g in groups] == [["0,10.0.0.4,10.0.0.5,1,2,T,O,A,B,,,,"]]
    assert len(bad) == 1 and bad[0].what == "truncated JSON" and bad[0].code == "W900"
    assert bad[0].line == text[:cut].count("\n") + 1 or bad[0].line > 1


def test_syntax_error_skips_to_the_next_record(tmp_path):
    recs = [v2_record("A", "UserRule_x", [f"{i},10.0.0.4,10.0.0.5,1,2,T,O,A,B,,,,"]) for i in range(3)]
    text = json.dumps({"records": recs}, indent=2)
    broken = text.replace('"Version": 2', '"Version": 2 2', 1)  # the first record is not JSON
    p = tmp_path / "PT1H.json"
    p.write_text(broken)
    groups, bad = read_all(str(p))
    assert [g[4][0][0] for g in groups] == ["1", "2"]
    assert [b.what for b in bad] == ["invalid JSON"]
    line_text = broken.splitlines()[bad[0].line - 1]
    assert '"Version": 2 2' in line_text


def test_unknown_version_and_foreign_records_are_skipped_with_position(tmp_path):
    recs = [v2_record("A", "UserRule_x", ["1,10.0.0.4,10.0.0.5,1,2,T,O,A,B,,,,"], version=3),
            {"time": "x", "category": "Something"},
            v4_record("g", "r", ["1663146003599,10.0.0.6,52.239.184.180,23956,443,6,O,B,NX,0,0,0,0"]),
            {"flowLogVersion": 4, "macAddress": "00"}]
    p = write(tmp_path / "PT1H.json", recs, indent=1)
    groups, bad = read_all(p)
    assert [g[0] for g in groups] == [4]
    assert [(b.what, b.code) for b in bad] == [("unknown version", "W901"), ("not a flow log record", "W901"),
                                             ("not a flow log record", "W901")]
    lines = open(p).read().splitlines()
    for b in bad:  # each points at the '{' that opens its record
        assert lines[b.line - 1][b.column - 1] == "{"
    assert "flow log version 3" in bad[0].message


def test_small_chunks_read_the_same_as_one_chunk(tmp_path, monkeypatch):
    recs = [v2_record("N%d" % i, "UserRule_x", [f"{i},10.0.0.{i % 250},10.0.0.5,1,2,T,O,A,B,,,,"] * 5)
            for i in range(60)]
    p = write(tmp_path / "PT1H.json", recs, indent=2)
    whole = read_all(p)
    monkeypatch.setattr(flowlogs, "CHUNK", 97)
    chunked = read_all(p)
    assert chunked == whole and len(whole[0]) == 60
    lines = open(p).read().splitlines()
    for g in whole[0]:
        line, col = g[5]
        assert lines[line - 1][col - 1:].startswith(g[4][0])


def _peak(path: str) -> tuple[int, int]:
    tracemalloc.start()
    n = 0
    for g in read_flow_log(path, lambda b: None):
        n += len(g.tuples)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return n, peak


def test_memory_stays_flat_however_large_the_file(tmp_path, monkeypatch):
    """Three times the log, the same memory: one chunk and one record at a time, never the file."""
    tuples = [f"1700000000,10.0.{i % 200}.4,203.0.113.{i % 250},4{i % 9999},443,T,O,A,B,,,," for i in range(400)]
    monkeypatch.setattr(flowlogs, "CHUNK", 1 << 16)
    warm = write(tmp_path / "warm.json", [v2_record("N", "UserRule_x", tuples[:2])])
    _peak(warm)  # first-use caches (regular expressions, the decoder) are not the file's
    peaks = []
    for n_records in (60, 180):
        p = tmp_path / f"PT1H-{n_records}.json"
        with open(p, "w") as f:
            f.write('{"records":[')
            for i in range(n_records):
                f.write(("," if i else "") + json.dumps(v2_record("N", "UserRule_x", tuples)))
            f.write("]}")
        n, peak = _peak(str(p))
        assert n == 400 * n_records
        assert peak < p.stat().st_size / 2
        peaks.append(peak)
    assert peaks[1] < peaks[0] * 1.25, peaks
