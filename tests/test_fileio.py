"""Writes are atomic (nsgsolve/fileio.py): a failure at any step leaves the user's file as it was.

Every writer goes through atomic_write_*: `import -o`, `fmt --write`, `check --output`, `report -o` (and
`diff --format html -o`) and the service tag cache. Each is run here against a read-only directory and a disk
that fills up half way through the write.
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import pytest

from nsgsolve import fileio as files
from nsgsolve.cli import run

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "examples" / "webservers.nsg"
ORIGINAL = "# the user's file, which nothing may damage\n"
UNFORMATTED = "nsg   a {\n inbound {\n100 allow r tcp from any to any port 22\n}\n}\n"

TEMPLATE = json.dumps({
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "resources": [{"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "n",
                   "properties": {"securityRules": []}}]})
TAGS = json.dumps({"values": [{"name": "Storage", "properties": {"addressPrefixes": ["20.38.96.0/19"]}}]})


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    return run(list(argv), out, err), out.getvalue(), err.getvalue()


def writers(tmp: Path):
    """(what is written, the command) for every command that writes a file."""
    src = tmp / "src"
    src.mkdir(exist_ok=True)
    tpl = src / "t.json"
    tpl.write_text(TEMPLATE)
    tags = src / "tags.json"
    tags.write_text(TAGS)
    out_dir = tmp / "out"
    out_dir.mkdir(exist_ok=True)
    fmt_target = out_dir / "policy.nsg"
    return {
        "import -o": (out_dir / "estate.nsg", ["import", str(tpl), "-o", str(out_dir / "estate.nsg")]),
        "fmt --write": (fmt_target, ["fmt", "--write", str(fmt_target)]),
        "check --output": (out_dir / "report.sarif", ["check", str(WEB), "--format", "sarif", "--output",
                                                      str(out_dir / "report.sarif")]),
        "tags import": (out_dir / "ServiceTags.json", ["tags", "import", str(tags)]),
        "report -o": (out_dir / "report.html", ["report", str(WEB), "-o", str(out_dir / "report.html")]),
    }


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("NSGSOLVE_DATA_DIR", str(tmp_path / "out"))
    return tmp_path


WRITERS = ["import -o", "fmt --write", "check --output", "tags import", "report -o"]


@pytest.mark.parametrize("writer", WRITERS)
def test_each_writer_succeeds_and_replaces_the_file(setup, writer):
    target, argv = writers(setup)[writer]
    target.write_text(UNFORMATTED if writer == "fmt --write" else ORIGINAL)
    status, _, err = cli(*argv)
    assert status in (0, 1), err
    assert target.read_text() not in (ORIGINAL, UNFORMATTED)
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == []


class _FullDisk:
    """A file object that takes part of the data and then fails as a full disk does."""

    def __init__(self, f):
        self.f = f
        self.calls = 0

    def write(self, data):
        self.calls += 1
        self.f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_leaves_the_original_untouched(setup, writer, monkeypatch):
    target, argv = writers(setup)[writer]
    before = UNFORMATTED if writer == "fmt --write" else ORIGINAL
    target.write_text(before)
    opened = []
    real_fdopen = os.fdopen

    def fdopen(fd, *a, **kw):
        opened.append(_FullDisk(real_fdopen(fd, *a, **kw)))
        return opened[-1]

    monkeypatch.setattr(files.os, "fdopen", fdopen)
    status, _, err = cli(*argv)
    monkeypatch.undo()
    assert opened and opened[0].calls, "the write did not go through nsgsolve.fileio"
    assert status == 2 and "No space left on device" in err and "left unchanged" in err, err
    assert target.read_text() == before
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("writer", WRITERS)
def test_a_read_only_file_system_leaves_the_original_untouched(setup, writer, monkeypatch):
    """What a read-only directory or file system answers (EROFS at the temporary file), as any user,
    root included (for whom the chmod test below cannot deny anything)."""
    target, argv = writers(setup)[writer]
    before = UNFORMATTED if writer == "fmt --write" else ORIGINAL
    target.write_text(before)

    def read_only(*a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    status, _, err = cli(*argv)
    monkeypatch.undo()
    assert status == 2 and "Read-only file system" in err, err
    assert target.read_text() == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
@pytest.mark.parametrize("writer", WRITERS)
def test_a_read_only_directory_leaves_the_original_untouched(setup, writer):
    target, argv = writers(setup)[writer]
    before = UNFORMATTED if writer == "fmt --write" else ORIGINAL
    target.write_text(before)
    os.chmod(target.parent, 0o555)
    try:
        status, _, err = cli(*argv)
    finally:
        os.chmod(target.parent, 0o755)
    assert status == 2 and "cannot write" in err, err
    assert target.read_text() == before


def test_a_failed_rename_leaves_the_original_and_no_temporary_file(tmp_path, monkeypatch):
    """The last step failing (os.replace, e.g. the target became a directory) is a failure like any other."""
    target = tmp_path / "policy.nsg"
    target.write_text(ORIGINAL)

    def no_rename(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(files.os, "replace", no_rename)
    with pytest.raises(Exception) as e:
        files.atomic_write_text(target, "new text")
    assert "left unchanged" in str(e.value)
    assert target.read_text() == ORIGINAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.nsg"]


def test_atomic_write_keeps_the_files_permissions(tmp_path):
    target = tmp_path / "policy.nsg"
    target.write_text(ORIGINAL)
    os.chmod(target, 0o640)
    files.atomic_write_text(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640


def test_every_writer_uses_the_one_helper():
    """No command writes a file any other way (open(..., 'w'), write_text, shutil.copy)."""
    offenders = []
    import re

    needles = re.compile(r"(?<!atomic_)write_(text|bytes)\(|open\([^)]*[\"'][wax]b?[\"']|shutil\.copy|os\.replace\(")
    for path in (ROOT / "nsgsolve").rglob("*.py"):
        if path.name == "fileio.py":
            continue
        for m in needles.finditer(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}: {m.group()}")
    # Not user files: a pipe to a forked worker, and Lark's grammar cache (Lark writes it to a temporary name
    # that syntax.py renames; a failed write only costs the cache).
    offenders = [o for o in offenders if o not in ('nsgsolve/parallel.py: open(write, "wb"',
                                                   "nsgsolve/lang/syntax.py: os.replace(")]
    assert offenders == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system to stand for a full disk")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_standard_output_on_a_full_disk_is_exit_2_not_an_internal_error(tmp_path, workers):
    """`nsgsolve ... > file` on a full disk: the machine's state, said as such, never "a bug in nsgsolve" (exit
    3). With two workers verify --flows writes from two processes: the one that meets the full disk says so once,
    and the other stays quiet."""
    import subprocess
    import sys

    policy = tmp_path / "p.nsg"
    policy.write_text("vnet v 10.0.0.0/16 {\n  subnet s 10.0.1.0/24 nsg a\n}\nnic a in v/s ip 10.0.1.4\n"
                      "nic b in v/s ip 10.0.1.5\n" + UNFORMATTED)
    flows = tmp_path / "f.csv"
    flows.write_text("src,dst,protocol,sport,dport\n" + "10.0.1.4,10.0.1.5,tcp,1000,22\n" * 60_000)
    env = dict(os.environ, NSGSOLVE_WORKERS=workers)
    for argv in (["show", str(policy)], ["verify", str(policy), "--flows", str(flows), "--json"]):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "nsgsolve", *argv], stdout=full, stderr=subprocess.PIPE,
                                  text=True, env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr == "nsgsolve: cannot write the output: No space left on device\n", done.stderr
