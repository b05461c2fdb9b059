"""Reading inputs within a size limit, and writing outputs atomically: every file nsgsolve touches goes here.

Reads: nsgsolve runs in CI on files from pull requests, so an input is untrusted. A file larger than
:data:`nsgsolve.limits.MAX_INPUT_BYTES` is refused (E010) *before* it is read: its size is checked with
``fstat`` on the open file, and the read itself is bounded, so a FIFO or ``/dev/zero`` (whose size says
nothing) cannot make nsgsolve read without end either.

Writes (``import -o``, ``fmt --write``, ``check --output``, the service tag cache): the text goes to a
temporary file in the target's directory, is flushed to disk, and replaces the target with ``os.replace``,
which is atomic on POSIX and Windows. A failure at any step (full disk, read-only directory, killed
process) leaves the target as it was and removes the temporary file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from nsgsolve.errors import InputError, UsageError
from nsgsolve.limits import MAX_INPUT_BYTES, max_input_bytes
from nsgsolve.model import Span


def read_input_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of an input file, refusing (E010) one larger than the input limit before reading it."""
    p = Path(path)
    span = Span(str(p), 0, 0)
    limit = max_input_bytes()
    try:
        with open(p, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if st.st_size > limit:
                raise _too_large(p, st.st_size, limit, what)
            # Bounded even when the size was 0 or wrong (a pipe, a device, a file still growing).
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise InputError.single("E001", f"no such file: {p}", span, "check the path") from None
    except IsADirectoryError:
        raise InputError.single("E001", f"{p} is a directory, not a {what}", span) from None
    except OSError as e:
        raise InputError.single("E001", f"cannot read {p}: {e.strerror or e}", span) from None
    if len(data) > limit:
        raise _too_large(p, None, limit, what)
    return data


def _too_large(p: Path, size: int | None, limit: int, what: str) -> InputError:
    how_big = f"{size:,} bytes" if size is not None else "more than that"
    return InputError.single(
        "E010", f"{p} is too large to read: {how_big}; nsgsolve reads input files of at most {limit:,} bytes",
        Span(str(p), 0, 0),
        f"check that this is the {what} you meant; to raise the limit set NSGSOLVE_MAX_INPUT_BYTES "
        f"(default {MAX_INPUT_BYTES:,}), knowing that memory use grows with the file")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: a failure leaves the old file (or no file) in place.

    Raises UsageError naming the file and why when it cannot be written."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd = -1
    tmp = ""
    try:
        # Keep the permissions a user gave the existing file (mkstemp makes 0600 files).
        mode = stat.S_IMODE(os.stat(target).st_mode) if target.is_file() else None
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as f:
            fd = -1  # owned by f from here on
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = ""
    except OSError as e:
        raise UsageError(f"cannot write {target}: {e.strerror or e}; the file was left unchanged",
                         "write to a file in an existing, writable directory with free space") from None
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text with ``\\n`` line ends, as nsgsolve writes every file."""
    atomic_write_bytes(path, text.encode("utf-8"))
