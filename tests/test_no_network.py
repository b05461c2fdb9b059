"""No input makes nsgsolve open a socket or run code: every example and every corpus file, through every
command, with socket creation and name lookups made to fail the test if anything tries."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from corpus import CORPUS, NEEDS
from nsgsolve.cli import run

ROOT = Path(__file__).resolve().parents[1]


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **kw):
        raise NetworkUsed(f"network access attempted: {a[:2]}")

    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname", "create_server", "socketpair"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setenv("NSGSOLVE_WORKERS", "1")


def _inputs():
    paths = sorted((ROOT / "examples").glob("*.nsg"))
    if CORPUS is not None:
        for sub in ("arm", "az-cli", "bicep", "terraform", "flowlogs", "flow-logs"):
            d = CORPUS / sub
            if d.is_dir():
                paths += sorted(p for p in d.rglob("*") if p.is_file())
    return paths


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    return run(list(argv), out, err), err.getvalue()


def test_no_socket_or_eval_over_examples_and_corpus(no_network, tmp_path):
    if CORPUS is None:
        print("corpus not found beside the repository: only examples/ are run")
    ran = 0
    for path in _inputs():
        params = [f"--param={k}={v}" for k, v in NEEDS.get(path.name, ("", {}, False))[1].items()]
        for argv in (["show", str(path), *params], ["lint", str(path), *params],
                     ["import", str(path), *params, "-o", str(tmp_path / "out.nsg")]):
            status, err = _run(*argv)  # NetworkUsed propagates and fails the test
            assert status in (0, 1, 2, 3), err
            assert "NetworkUsed" not in err
            ran += 1
    status, err = _run("query", str(ROOT / "examples" / "webservers.nsg"), "can Internet reach WebServers port 22")
    assert status == 0, err
    assert ran >= 9


def test_the_guard_itself_catches_a_connection(no_network):
    with pytest.raises(NetworkUsed):
        socket.create_connection(("example.com", 80))


def test_linked_templates_are_reported_with_their_url_not_fetched(no_network, tmp_path):
    import json

    doc = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
           "contentVersion": "1.0.0.0", "resources": [
               {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "linked",
                "properties": {"mode": "Incremental",
                               "templateLink": {"uri": "https://example.com/nested/azuredeploy.json"}}},
               {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "n",
                "properties": {"securityRules": []}}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    status, err = _run("import", str(path), "-o", str(tmp_path / "out.nsg"))
    assert status == 0, err
    out = (tmp_path / "out.nsg").read_text()
    assert "https://example.com/nested/azuredeploy.json" in out and "not read" in out


def test_no_eval_exec_pickle_or_subprocess_in_the_package():
    """Static: input text can only ever be data. (Imports and dataclasses use exec internally, so the
    builtins cannot be patched at run time; the source is checked instead.)"""
    import re

    pattern = re.compile(
        r"(?<![.\w])(?<!def )(eval|exec|compile|__import__)\(|\bpickle\.loads?\(|\bsubprocess\b|\bos\.system\("
    )
    found = []
    for path in (ROOT / "nsgsolve").rglob("*.py"):
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(ROOT)}: {m.group()}")
    # parallel.py unpickles results its own forked child wrote into a private pipe, never input; diff runs
    # 'git show REV:PATH' (an argument list, no shell; a REV starting with '-' is refused, and lazy fetches
    # from a partial clone's remote are turned off).
    allowed = ("nsgsolve/parallel.py: pickle.load", "nsgsolve/commands/diff.py: subprocess")
    assert [f for f in found if not f.startswith(allowed)] == []
