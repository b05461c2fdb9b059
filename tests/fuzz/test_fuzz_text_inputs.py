"""Query text, CSV flow files, ServiceTags files and effective-rules exports, mutated."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from fuzz_harness import EXAMPLES, damage_text, dump, fuzz_settings, mutate, run_cli, tags_seed

POLICY = str(EXAMPLES / "webservers.nsg")
QUERIES = ["can Internet reach WebServers port 443 tcp", "can 203.0.113.0/24 reach web1 port 22",
           "can any reach myVirtualNetwork/mySubnet port 80-90, 443 udp", "can web1 reach Internet icmp",
           "can 10.0.1.4 reach 10.0.0.0/16 port 0-65535 tcp"]
QUERY_TOKENS = ["can", "reach", "port", "tcp", "udp", "icmp", "esp", "ah", "any", "Internet", "WebServers", "web1",
                "web2", "asg", "nic", "subnet", "vnet", "tag", ",", "-", "/", "(", ")", "{", "65536", "80-70", "0",
                "99999999999999999999999", "10.0.0.0/33", "300.1.1.1", "2001:db8::1", "*", "\x00", "é", "`x`", "\n"]


@fuzz_settings(40)
@given(data=st.data())
def test_query_text(data):
    words = data.draw(st.sampled_from(QUERIES), label="seed").split(" ")
    for _ in range(data.draw(st.integers(0, 4), label="mutations")):
        i = data.draw(st.integers(0, len(words)), label="at")
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "repeat"]), label="op")
        tok = data.draw(st.one_of(st.sampled_from(QUERY_TOKENS), st.text(max_size=8)), label="token")
        if op == "delete" and i < len(words):
            del words[i]
        elif op == "replace" and i < len(words):
            words[i] = tok
        elif op == "repeat":
            words.insert(i, " ".join([tok] * data.draw(st.sampled_from([2, 500, 5000]), label="times")))
        else:
            words.insert(i, tok)
    text = " ".join(words)
    run_cli("query", ["query", POLICY, text])
    run_cli("query", ["query", POLICY, "--json", text])


FLOWS = (EXAMPLES / "webservers-flows.csv").read_text(encoding="utf-8")
CELLS = ["", " ", "*", "tcp", "TCP", "udp", "icmp", "esp", "ah", "gre", "web1", "web3", "10.0.1.4", "300.1.1.1",
         "10.0.0.0/24", "2001:db8::1", "0", "65535", "65536", "-1", "80-70", "9" * 5000, "\x00", "\"", "\"a,b\"",
         "é", "x" * 10000]


@fuzz_settings(30)
@given(data=st.data())
def test_flow_files(data, tmp_path_factory):
    rows = [r.split(",") for r in FLOWS.splitlines()]
    for _ in range(data.draw(st.integers(1, 5), label="mutations")):
        r = data.draw(st.integers(0, len(rows) - 1), label="row")
        op = data.draw(st.sampled_from(["cell", "drop-cell", "add-cell", "dup-row", "drop-row", "many-rows"]),
                       label="op")
        if op == "cell" and rows[r]:
            col = data.draw(st.integers(0, len(rows[r]) - 1), label="col")
            rows[r][col] = data.draw(st.sampled_from(CELLS), label="v")
        elif op == "drop-cell" and rows[r]:
            rows[r].pop()
        elif op == "add-cell":
            rows[r].append(data.draw(st.sampled_from(CELLS), label="v"))
        elif op == "dup-row":
            rows.insert(r, list(rows[r]))
        elif op == "drop-row":
            del rows[r]
            if not rows:
                rows = [[]]
        else:
            rows += [list(rows[-1])] * data.draw(st.sampled_from([100, 5000]), label="n")
    text = damage_text(data, "\n".join(",".join(r) for r in rows) + "\n")
    path = tmp_path_factory.mktemp("flows") / "flows.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    run_cli("flows", ["verify", POLICY, "--flows", str(path)])
    run_cli("flows", ["verify", POLICY, "--flows", str(path), "--json"])


@fuzz_settings(20)
@given(data=st.data())
def test_service_tag_files(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tags")
    text = damage_text(data, dump(mutate(data, tags_seed()), data.draw(st.integers(0, 2), label="style")))
    path = tmp / "ServiceTags_Public.json"
    path.write_text(text, encoding="utf-8")
    run_cli("servicetags", ["tags", "show", "Storage", "--service-tags", str(path)])
    run_cli("servicetags", ["show", POLICY, "--service-tags", str(path)])
    run_cli("servicetags", ["query", POLICY, "can web1 reach Storage port 443 tcp", "--service-tags", str(path)])
    run_cli("servicetags", ["tags", "import", str(path)])


EFFECTIVE = {"value": [{
    "networkSecurityGroup": {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"},
    "association": {"networkInterface": {"id": "x"}},
    "effectiveSecurityRules": [
        {"name": "securityRules/to-storage", "protocol": "Tcp", "sourcePortRange": "0-65535",
         "destinationPortRange": "443-443", "sourceAddressPrefix": "0.0.0.0/0", "destinationAddressPrefix": "Storage",
         "expandedDestinationAddressPrefix": ["20.38.96.0/19", "2603:1000::/40"], "access": "Allow",
         "priority": 100, "direction": "Outbound"}]}]}


@fuzz_settings(15)
@given(data=st.data())
def test_effective_rules_exports(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eff")
    tags = tmp / "tags.json"
    tags.write_text(json.dumps(tags_seed()), encoding="utf-8")
    doc = mutate(data, json.loads(json.dumps(EFFECTIVE)))
    path = tmp / "effective.json"
    path.write_text(damage_text(data, dump(doc, 0)), encoding="utf-8")
    run_cli("effective", ["tags", "compare", str(path), "--service-tags", str(tags)])
