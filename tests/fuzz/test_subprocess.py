"""A few hostile inputs through the real entry point (a new process, as CI runs nsgsolve): the exit status
CI sees, no traceback, and a crash reported as exit 3 (never 1, "findings", or 0)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fuzz_harness import EXAMPLES


def nsgsolve(*argv, code=None, timeout=60):
    prog = ["-m", "nsgsolve"] if code is None else ["-c", code]
    return subprocess.run([sys.executable, *prog, *argv], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("command", ["lint", "verify", "query"])
def test_the_issues_three_hostile_files_exit_2_in_a_real_process(tmp_path, command):
    nest = tmp_path / "nest.json"
    nest.write_text("[" * 500 + "]" * 500)
    expr = tmp_path / "expr.json"
    expr.write_text(json.dumps({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0", "resources": [{
            "type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "n",
            "copy": {"name": "c", "count": 10 ** 9},
            "properties": {"securityRules": [{"name": "[" + "concat(" * 3000 + "'a'" + ")" * 3000 + "]"}]}}]}))
    extra = {"verify": ["--src", "1.2.3.4", "--dst", "10.0.1.4", "--dport", "22", "--protocol", "tcp"],
             "query": ["can any reach any port 22"]}.get(command, [])
    for path, code in ((nest, "E011"), (expr, "E692")):
        r = nsgsolve(command, str(path), *extra, timeout=20)
        assert r.returncode == 2, r.stderr
        assert f"[{code}]" in r.stderr and "Traceback" not in r.stderr


def test_a_crash_is_exit_3_with_a_short_message_not_a_traceback(tmp_path):
    code = ("import sys; from nsgsolve import cli; from nsgsolve.commands import show; "
            "show.run = lambda args, out, err: 1 / 0; sys.argv[0] = 'nsgsolve'; cli.main()")
    r = nsgsolve("show", str(EXAMPLES / "webservers.nsg"), code=code)
    assert r.returncode == 3, r.stderr
    assert "internal error: ZeroDivisionError" in r.stderr and "Traceback" not in r.stderr
    assert "NSGSOLVE_TRACEBACK=1" in r.stderr


def test_binary_garbage_on_every_command(tmp_path):
    junk = tmp_path / "junk.nsg"
    junk.write_bytes(bytes(range(256)) * 64)
    for command in ("show", "lint", "fmt", "import", "check"):
        r = nsgsolve(command, str(junk))
        assert r.returncode == 2 and "Traceback" not in r.stderr, (command, r.stderr)
