"""Flow logs (`nsgsolve replay --flow-logs`), mutated: NSG flow log v1/v2 and VNet flow log v4 documents
with keys dropped, wrong types, hostile values in tuples (ports 65536, 300.1.1.1, 5,000-digit numbers),
records nested 50-600 deep, duplicated, cut and damaged text. A bad record is skipped with a W900-W903
warning; nothing may stop the run with a traceback."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from fuzz_harness import EXAMPLES, ROOT, damage_text, dump, fuzz_settings, mutate, run_cli

POLICY = str(EXAMPLES / "replay" / "fabrikam.nsg")
SEEDS = {p.name + str(i): json.loads(p.read_text(encoding="utf-8-sig"))
         for i, p in enumerate(sorted((EXAMPLES / "replay" / "logs").rglob("*.json")))}
CORPUS_DIR = ROOT.parent / "shared" / "corpus" / "flowlogs"
if CORPUS_DIR.is_dir():
    for p in sorted(CORPUS_DIR.glob("*.json")):
        try:
            SEEDS[p.name] = json.loads(p.read_text(encoding="utf-8-sig"))
        except ValueError:
            pass
TUPLE_PARTS = ["1487282421", "192.0.2.95", "10.1.0.4", "51529", "5358", "T", "U", "I", "O", "A", "D", "B", "C", "E",
               "65536", "-1", "300.1.1.1", "2001:db8::1", "9" * 5000, "", "X", "1021", "588096"]


@fuzz_settings(20)
@given(data=st.data())
def test_flow_logs(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flowlogs")
    doc = json.loads(json.dumps(SEEDS[data.draw(st.sampled_from(sorted(SEEDS)), label="seed")]))
    if data.draw(st.booleans(), label="hostile-tuple"):
        parts = data.draw(st.lists(st.sampled_from(TUPLE_PARTS), min_size=0, max_size=16), label="tuple")
        doc = json.loads(json.dumps(doc).replace('"1', '"' + ",".join(parts) + '1', 1))
    doc = mutate(data, doc)
    path = tmp / "PT1H.json"
    path.write_text(damage_text(data, dump(doc, data.draw(st.integers(0, 2), label="style"))), encoding="utf-8")
    run_cli("flowlogs", ["replay", POLICY, "--flow-logs", str(path), "--no-progress"])
    run_cli("flowlogs", ["replay", POLICY, "--flow-logs", str(path), "--no-progress", "--json"])


def test_a_record_nested_100000_deep_is_skipped_not_a_crash(tmp_path):
    path = tmp_path / "PT1H.json"
    path.write_text('{"records": [' + "[" * 100000 + "]" * 100000 + "]}", encoding="utf-8")
    status, out, err = run_cli("flowlogs", ["replay", POLICY, "--flow-logs", str(path), "--no-progress"])
    assert status in (0, 1) and "nested too deeply" in out + err
