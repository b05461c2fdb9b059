"""Every resource limit, one hostile input each, through the commands (so a new JSON parser, a new expression
evaluator or a new reader cannot silently lose a limit): the code, exit status 2, and no time wasted first.

The first three are the failures issue 18 measured on main: a JSON file nested 500 deep (RecursionError,
exit 1 in lint), an ARM expression nested 3,000 deep (the same in lint, verify and query) and a copy loop of
10^9 (a hang of more than 20 s).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from fuzz_harness import EXAMPLES, LONG, run_cli
from nsgsolve import limits

VERIFY = ["--src", "203.0.113.7", "--dst", "10.0.1.4", "--protocol", "tcp", "--dport", "22"]


def template(resources=(), variables=None, parameters=None) -> dict:
    return {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0", "parameters": parameters or {}, "variables": variables or {},
            "resources": list(resources)}


def nsg(name="n", rules=(), **extra) -> dict:
    return {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": name,
            "properties": {"securityRules": list(rules)}, **extra}


def rule(name="r", **props) -> dict:
    p = {"priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*",
         "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22", **props}
    return {"name": name, "properties": p}


def write(tmp_path, doc, name="azuredeploy.json") -> str:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(p)


def refused(argv, code, seconds=10.0):
    # CPU seconds of this process: the work a limit must cut short, steady on a loaded machine.
    start = time.process_time()
    status, _, err = run_cli("limits", argv)
    elapsed = time.process_time() - start
    assert status == 2, err
    assert f"[{code}]" in err, err[-1500:]
    assert elapsed < seconds, f"{code} took {elapsed:.1f} s of CPU: the limit must stop the work, not follow it"
    return err


@pytest.mark.parametrize("command", ["lint", "show", "verify", "query", "check", "diff", "import"])
def test_json_nested_500_deep_is_E011_in_every_command(tmp_path, command):
    path = write(tmp_path, "[" * 500 + "]" * 500)
    argv = {"verify": ["verify", path, *VERIFY], "query": ["query", path, "can any reach any port 22"],
            "diff": ["diff", path, path]}.get(command, [command, path])
    refused(argv, "E011")


def test_json_at_the_depth_limit_is_read(tmp_path):
    """The limit is a limit, not an off-by-one: MAX_JSON_DEPTH levels parse (and 'not a template' is E603)."""
    d = limits.MAX_JSON_DEPTH
    err = refused(["show", write(tmp_path, "[" * d + "]" * d)], "E603")
    assert "E011" not in err
    refused(["show", write(tmp_path, "[" * (d + 1) + "]" * (d + 1), "deeper.json")], "E011")


def test_deep_json_in_objects_parameters_files_and_tag_files(tmp_path):
    deep = '{"a": ' * 1000 + "null" + "}" * 1000  # json.dumps itself would overflow the stack
    t = write(tmp_path, json.dumps(template([nsg()], variables={"v": "DEEP"})).replace('"DEEP"', deep))
    refused(["lint", t], "E011")
    ok = write(tmp_path, template([nsg(rules=[rule()])]), "ok.json")
    pf = write(tmp_path, '{"parameters": {"p": {"value": ' + deep + "}}}", "params.json")
    refused(["show", ok, "--params-file", pf], "E011")
    tags = write(tmp_path, "[" * 100_000 + "]" * 100_000, "tags.json")
    refused(["show", str(EXAMPLES / "webservers.nsg"), "--service-tags", tags], "E011")


@pytest.mark.parametrize("command", ["lint", "verify", "query"])
def test_expression_nested_3000_deep_is_E690(tmp_path, command):
    expr = "[" + "concat(" * 3000 + "'a'" + ")" * 3000 + "]"
    path = write(tmp_path, template([nsg(rules=[rule(name=expr)])]))
    argv = {"verify": ["verify", path, *VERIFY], "query": ["query", path, "can any reach any port 22"]}.get(
        command, [command, path])
    refused(argv, "E690")


def test_expression_at_the_nesting_limit_is_evaluated(tmp_path):
    d = limits.MAX_EXPRESSION_DEPTH
    expr = "[" + "concat(" * (d - 1) + "'a'" + ")" * (d - 1) + "]"
    path = write(tmp_path, template([nsg(rules=[rule(name="x", description=expr)])]))
    status, out, err = run_cli("limits", ["show", path])
    assert status == 0, err


def test_variables_read_through_variables_cannot_exhaust_the_stack(tmp_path):
    """A chain of 3,000 variables, each reading the next, nests evaluation without nesting any expression."""
    n = 3000
    variables = {f"v{i}": f"[variables('v{i + 1}')]" for i in range(n)}
    variables[f"v{n}"] = "x"
    path = write(tmp_path, template([nsg(rules=[rule(name="[variables('v0')]")])], variables=variables))
    refused(["show", path], "E690")


def test_deepest_json_with_deepest_expression_under_the_default_stack(tmp_path):
    """The worst legal combination must not reach Python's recursion limit (E012) even under pytest's frames."""
    d = limits.MAX_EXPRESSION_DEPTH
    value = "[" + "createArray(" * (d - 1) + "1" + ")" * (d - 1) + "]"
    for _ in range(limits.MAX_JSON_DEPTH - 10):
        value = [value]
    path = write(tmp_path, template([nsg(rules=[rule()])], variables={"v": value}))
    status, _, err = run_cli("limits", ["show", path])
    assert status in (0, 2) and "E012" not in err, err[-1000:]


def test_expression_longer_than_azure_allows_is_E691(tmp_path):
    expr = "[concat('" + "a" * limits.ARM_MAX_EXPRESSION_CHARS + "')]"
    refused(["show", write(tmp_path, template([nsg(rules=[rule(name=expr)])]))], "E691")


@pytest.mark.parametrize("where", ["resource", "property", "variable"])
@pytest.mark.parametrize("count", [10 ** 9, 801, -1])
def test_copy_counts_outside_azures_range_are_E692_at_once(tmp_path, where, count):
    if where == "resource":
        doc = template([nsg(name="[concat('n', copyIndex())]", copy={"name": "c", "count": count})])
    elif where == "property":
        n = nsg()
        n["properties"] = {"copy": [{"name": "securityRules", "count": count,
                                     "input": rule(name="[concat('r', copyIndex('securityRules'))]")}]}
        doc = template([n])
    else:
        doc = template([nsg(rules=[rule()])], variables={"copy": [{"name": "v", "count": count, "input": "x"}]})
    refused(["show", write(tmp_path, doc)], "E692", seconds=5)


def test_copy_count_800_is_accepted(tmp_path):
    n = nsg()
    n["properties"] = {"copy": [{"name": "securityRules", "count": 800, "input": rule(
        name="[concat('r', copyIndex('securityRules'))]", priority="[add(100, copyIndex('securityRules'))]")}]}
    status, _, err = run_cli("limits", ["show", write(tmp_path, template([n]))])
    assert status == 0, err


@pytest.mark.parametrize("expr", [
    "[range(0, 1000000000)]", "[padLeft('a', 1000000000)]", "[format('{0:D999999999}', 1)]",
    "[length(range(0, 100001))]"])
def test_values_too_large_to_build_are_E693(tmp_path, expr):
    refused(["show", write(tmp_path, template([nsg(rules=[rule(description=expr)])]))], "E693", seconds=5)


def test_doubling_through_variables_is_E693(tmp_path):
    variables = {"v0": "abcdefghijklmnop"}
    for i in range(1, 40):
        variables[f"v{i}"] = f"[concat(variables('v{i - 1}'), variables('v{i - 1}'))]"
    path = write(tmp_path, template([nsg(rules=[rule(description="[variables('v39')]")])], variables=variables))
    refused(["show", path], "E693", seconds=10)


def test_integer_overflow_is_unknown_not_a_huge_number(tmp_path):
    variables = {"v0": 3}
    for i in range(1, 10):  # 3^(2^9): far beyond 64 bits, and megabytes as a Python integer
        variables[f"v{i}"] = f"[mul(variables('v{i - 1}'), variables('v{i - 1}'))]"
    path = write(tmp_path, template([nsg(rules=[rule(priority="[variables('v9')]")])], variables=variables))
    err = refused(["show", path], "E610", seconds=10)
    assert "64-bit" in err


def test_work_bomb_is_E694(tmp_path):
    """Loops whose counts are each legal but whose product of work is not: 8 variable loops of 800, each
    evaluating 60 nested calls (384,000 steps)."""
    expr = "[" + "add(" * 60 + "copyIndex('L')" + ", 1)" * 60 + "]"
    loops = [{"name": f"v{k}", "count": 800, "input": expr.replace("'L'", f"'v{k}'")} for k in range(8)]
    path = write(tmp_path, template([nsg(rules=[rule()])], variables={"copy": loops}))
    refused(["show", path], "E694", seconds=20)


@pytest.mark.skipif(not LONG, reason="~6 s of CPU to reach the step limit; run with NSGSOLVE_FUZZ=long")
def test_work_bomb_of_legal_copy_counts_stops(tmp_path):
    """800 NSGs x 800 rules: stopped by E694 after ~12,000 rules (~6 s of CPU)."""
    n = nsg(name="[concat('n', copyIndex())]", copy={"name": "nsgs", "count": 800})
    n["properties"] = {"copy": [{"name": "securityRules", "count": 800, "input": rule(
        name="[concat('r', copyIndex('securityRules'))]", priority="[add(100, copyIndex('securityRules'))]")}]}
    status, _, err = run_cli("limits", ["show", write(tmp_path, template([n]))])
    assert status == 2 and "[E694]" in err


@pytest.mark.parametrize("name,body", [
    ("p.nsg", "nsg a { inbound { 100 allow r tcp from any to any port 22 } }\n"),
    ("t.json", json.dumps(template([nsg(rules=[rule()])]))),
])
def test_files_over_the_size_limit_are_E010_before_reading(tmp_path, monkeypatch, name, body):
    monkeypatch.setenv("NSGSOLVE_MAX_INPUT_BYTES", "32")
    path = write(tmp_path, body, name)
    err = refused(["show", path], "E010")
    assert "NSGSOLVE_MAX_INPUT_BYTES" in err


def test_a_2_gb_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:  # sparse: no disk space used, and nsgsolve must not read it either
        f.truncate(2 * 1024 ** 3)
    refused(["lint", str(path)], "E010", seconds=2)
    refused(["verify", str(EXAMPLES / "webservers.nsg"), "--flows", str(path)], "E010", seconds=2)
    refused(["show", str(EXAMPLES / "webservers.nsg"), "--service-tags", str(path)], "E010", seconds=2)
    refused(["import", str(path)], "E010", seconds=2)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")
def test_endless_device_is_read_only_up_to_the_limit(monkeypatch):
    monkeypatch.setenv("NSGSOLVE_MAX_INPUT_BYTES", "1000000")
    refused(["show", "/dev/zero"], "E010", seconds=5)


def test_huge_numbers_are_range_errors_not_tracebacks(tmp_path):
    big = "9" * 20000
    refused(
        ["show", write(tmp_path, f"nsg a {{ inbound {{ {big} allow r tcp from any to any port 22 }} }}\n", "p.nsg")],
        "E401",
    )
    refused(
        ["show", write(tmp_path, f"nsg a {{ inbound {{ 100 allow r tcp from any to any port {big} }} }}\n", "q.nsg")],
        "E403",
    )
    doc = json.dumps(template([nsg(rules=[rule()])])).replace('"priority": 100', f'"priority": {big}')
    refused(["show", write(tmp_path, doc)], "E613")
    doc = json.dumps(template([nsg(rules=[rule(destinationPortRange=big)])]))
    refused(["show", write(tmp_path, doc, "ports.json")], "E618")


def test_thousands_of_errors_render_quickly_and_are_capped(tmp_path):
    """20,000 bad prefixes on one minified line: each file is read once for all its errors, 100 are shown."""
    doc = template([nsg(rules=[rule(sourceAddressPrefix=None,
                                    sourceAddressPrefixes=[f"300.0.{i >> 8}.{i & 255}" for i in range(20000)])])])
    err = refused(["show", write(tmp_path, doc)], "E617", seconds=30)
    assert "more not shown" in err and err.count("error[E617]") == 100


def test_the_last_resort_recursion_net_reports_E012(monkeypatch, tmp_path):
    """If a limit were missed, RecursionError still becomes a clear error and exit 2 (the fuzzers fail on it)."""
    import io

    from nsgsolve import cli
    from nsgsolve.commands import show

    def bomb(args, out, err):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(show, "run", bomb)
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(["show", str(EXAMPLES / "webservers.nsg")], out, err) == 2
    assert "error[E012]" in err.getvalue() and "Traceback" not in err.getvalue()


@pytest.mark.parametrize("n,code", [(4000, None), (4001, "E411")])
@pytest.mark.parametrize("kind", ["arm", "az"])
def test_4000_addresses_per_side_is_azures_limit(tmp_path, n, code, kind):
    from fuzz_harness import az_seed, huge_prefix_list

    if kind == "arm":
        doc = template([nsg(rules=[rule(sourceAddressPrefix=None, sourceAddressPrefixes=huge_prefix_list(n))])])
    else:
        doc = az_seed()
        doc[0]["securityRules"][0]["sourceAddressPrefixes"] = huge_prefix_list(n)
    path = write(tmp_path, doc)
    if code:
        refused(["show", path], code)
    else:
        status, _, err = run_cli("limits", ["show", path])
        assert status == 0, err


TF_NSG = """resource "azurerm_network_security_group" "n" {
  %s
  name = "n"
}
"""


@pytest.mark.parametrize("line,code", [
    ("count = 1000000000", "E696"),  # hung for minutes building instances
    ("count = " + "9" * 5000, "E696"),  # int() of 5,000 digits: ValueError, an internal error
    ("count = 10001", "E696"),
])
def test_terraform_counts_beyond_the_limit_are_E696_at_once(tmp_path, line, code):
    refused(["show", write(tmp_path, TF_NSG % line, "main.tf")], code, seconds=10)


@pytest.mark.parametrize("line", ['name = format("%0999999999d", 1)', "name = join(\"\", range(1000000000))",
                                  "name = " + "max(" * 3000 + "1" + ")" * 3000, 'name = "' + "${" * 2000 + '"'])
def test_terraform_expression_bombs_are_errors_not_hangs(tmp_path, line):
    status, _, err = run_cli("limits", ["show", write(tmp_path, TF_NSG % line, "main.tf")])
    assert status in (0, 2), err


@pytest.mark.parametrize("what,ok,bad,code", [
    ("priority", 100, 99, "E613"), ("priority", 4096, 4097, "E613"), ("priority", 200, "100x", "E613"),
    ("name", "r" * 80, "r" * 81, "E409"),
    ("asgs", 10, 11, "E407"),
    ("rules", 1000, 1001, "E410"),
])
def test_azures_own_limits_hold_for_imported_templates(tmp_path, what, ok, bad, code):
    """The limits Azure itself enforces are errors for ARM imports as for .nsg files (boundary accepted)."""
    def doc(v):
        if what == "priority":
            return template([nsg(rules=[rule(priority=v)])])
        if what == "name":
            return template([nsg(rules=[rule(name=v)])])
        if what == "asgs":
            ids = [{"id": f"[resourceId('Microsoft.Network/applicationSecurityGroups', 'a{i}')]"} for i in range(v)]
            asgs = [{"type": "Microsoft.Network/applicationSecurityGroups", "apiVersion": "2023-04-01",
                     "name": f"a{i}"} for i in range(v)]
            return template(asgs + [nsg(rules=[rule(destinationAddressPrefix=None,
                                                    destinationApplicationSecurityGroups=ids)])])
        return template([nsg(rules=[rule(name=f"r{i}", priority=100 + i % 3997, direction="Inbound" if i < 3997
                                         else "Outbound") for i in range(v)])])
    status, _, err = run_cli("limits", ["show", write(tmp_path, doc(ok), "ok.json")])
    assert status == 0, err[-800:]
    refused(["show", write(tmp_path, doc(bad), "bad.json")], code)
