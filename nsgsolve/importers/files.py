"""Reading input files: the one place that turns a path into text, below every reader and command.

Real files come with byte order marks and CRLF line ends; both are normalised here so positions in
messages count lines and columns the way an editor does. Unreadable, binary and non-UTF-8 files are
input errors (E001, E004, E002) naming the path, never tracebacks. The loader
(:func:`nsgsolve.importers.loader.read_text`) adds what nsgsolve reads to the binary-file hint; the
JSON importer reads parameters files through it when the loader calls it.
"""

from __future__ import annotations

from pathlib import Path

from nsgsolve.errors import InputError
from nsgsolve.fileio import read_input_bytes
from nsgsolve.model import Span

_BINARY_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"%PDF", b"\x7fELF", b"MZ", b"\x89PNG", b"BZh", b"7z\xbc\xaf")


def read_text(path: str | Path, reads: str = "JSON (ARM templates, parameters files, az CLI / REST output) "
                                            "and nsgsolve policy files") -> str:
    """Read an input file: byte order marks and CRLF line ends are normal in real files. ``reads`` says
    what nsgsolve reads, for the message about a binary file."""
    p = Path(path)
    data = read_input_bytes(p, "policy file")  # E001, and E010 for a file too large to read
    if data.startswith(_BINARY_MAGIC) or b"\0" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError.single("E004", f"{p} is a binary file, not text, so not a policy nsgsolve reads",
                                Span(str(p), 0, 0), f"nsgsolve reads: {reads}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError.single("E002", f"{p} is not UTF-8 text (byte {e.start})", Span(str(p), 0, 0),
                                "save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")
