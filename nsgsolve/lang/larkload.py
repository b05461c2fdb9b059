"""Lark, imported without the optional packages it would load and nsgsolve never uses when it parses.

Lark imports ``regex`` and ``interegular`` whenever they are installed (here: a test dependency, and
python-hcl2 needs ``regex``). Parsing uses neither: no grammar asks for ``regex=True``, and only the test
that proves the grammar conflict-free builds it in strict mode, which needs ``interegular``
(:func:`allow_strict`). Importing the two cost every run that reads a .nsg about 25 ms. Importing either
later, for its own sake, works as usual.
"""

from __future__ import annotations

import sys


def _import_lark() -> None:
    if "lark" in sys.modules:
        return
    hidden = [name for name in ("regex", "interegular") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError meanwhile
    try:
        import lark  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def allow_strict() -> None:
    """Give Lark's lexer ``interegular`` (strict mode's terminal-collision check) if it went without."""
    import lark.lexer

    if not lark.lexer.has_interegular:
        import interegular

        lark.lexer.interegular = interegular
        lark.lexer.has_interegular = True


_import_lark()
