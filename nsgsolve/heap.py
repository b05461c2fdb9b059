"""Keep freed memory in the process for the array-heavy commands (``verify --flows``, ``replay``).

Their numpy temporaries (hundreds of KB to tens of MB, one per step of every batch) are above glibc's
threshold for memory handed back to the kernel on ``free``: each new one is fresh pages, and faulting them
in cost 0.3-0.5 s of system time per run on 400,000 flows or 1,000,000 tuples (bench/README.md,
2026-12-08). Raising the trim threshold and the top padding keeps freed memory for the next temporary;
the resident set grows by about 13 MB. Only glibc has ``mallopt``; elsewhere this does nothing.
"""

from __future__ import annotations

import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h


def keep_freed_memory() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest; blocks above it are mapped as before
    mallopt(_M_TRIM_THRESHOLD, 512 << 20)
    mallopt(_M_TOP_PAD, 64 << 20)
