"""Load a policy from any input nsgsolve reads, detected from the content.

* ``.nsg`` text (the policy language) → :func:`nsgsolve.lang.build.parse_policy`
* JSON (ARM template, ``az`` CLI export, REST example) → :mod:`nsgsolve.importers`

Several JSON files (``az network nsg list`` + ``az network vnet list`` + ...) make one policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from nsgsolve.errors import Diagnostic, InputError
from nsgsolve.model import Policy, Span


def read_text(path: str | Path) -> str:
    """Read an input file: byte order marks and CRLF line ends are normal in real files."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError.single("E001", f"no such file: {p}", Span(str(p), 0, 0), "check the path") from None
    except IsADirectoryError:
        raise InputError.single("E001", f"{p} is a directory, not a policy file", Span(str(p), 0, 0)) from None
    except OSError as e:
        raise InputError.single("E001", f"cannot read {p}: {e.strerror}", Span(str(p), 0, 0)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError.single("E002", f"{p} is not UTF-8 text (byte {e.start})", Span(str(p), 0, 0),
                                "save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def load_policy(paths: str | Path | Sequence[str | Path], params: dict[str, str] | None = None,
                params_file: str | Path | None = None, symbolic: bool = False,
                warnings: list[Diagnostic] | None = None) -> Policy:
    """Read one policy from one ``.nsg`` file or from one or more JSON files.

    Warnings (W codes) are appended to ``warnings`` when a list is given; they never stop a load.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [str(p) for p in paths]
    texts = {p: read_text(p) for p in paths}
    json_paths = [p for p in paths if looks_like_json(texts[p])]
    if not json_paths:
        if len(paths) != 1:
            raise InputError.single("E003", f"several .nsg files given ({', '.join(paths)}); a policy is one .nsg file",
                                    Span(paths[1], 0, 0),
                                    "put the whole policy in one .nsg file (the language has no 'include'); "
                                    "only JSON inputs (ARM templates, az exports) may be split over several files")
        from nsgsolve.lang.build import parse_policy

        return parse_policy(texts[paths[0]], paths[0], warnings)
    if len(json_paths) != len(paths):
        other = next(p for p in paths if p not in json_paths)
        raise InputError.single("E003", "cannot mix a .nsg policy file with JSON inputs", Span(other, 0, 0),
                                "give either one .nsg file or JSON files (ARM template or az exports)")
    from nsgsolve.importers import load_json_policy

    return load_json_policy({p: texts[p] for p in json_paths}, params=params or {}, params_file=params_file,
                            symbolic=symbolic, warnings=warnings)
