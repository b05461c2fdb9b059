"""Comma-separated text to integer columns, in arrays: the reading of flow tuples (``replay``) and of flow
CSV files (``verify --flows``), where millions of short rows make a Python split per row the larger cost.

A buffer of rows (each ending with a newline) is cut at its commas once; each column is then parsed for
all rows at once, one character position at a time (a cell is at most 15 characters), and every cell
that is not what its column needs is flagged, never guessed: callers report those rows with their
positions through their row-by-row path, which says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_NL, _COMMA, _DOT, _COLON, _ZERO = 10, 44, 46, 58, 48


@dataclass
class Cells:
    """Where the first ``need`` cells of every row lie: ``start[:, j]``/``end[:, j]`` (end exclusive) are
    offsets into ``data``; ``complete`` says the row has at least ``need`` cells (``cells`` counts them)."""

    data: np.ndarray  # uint8
    start: np.ndarray  # (rows, need) int64
    end: np.ndarray
    cells: np.ndarray  # cells per row
    complete: np.ndarray  # bool per row

    def __len__(self) -> int:
        return len(self.cells)

    def length(self, j: int) -> np.ndarray:
        return self.end[:, j] - self.start[:, j]

    def char(self, j: int) -> np.ndarray:
        """The first character of cell ``j`` (0 where the cell is empty)."""
        s = self.start[:, j]
        return np.where(self.length(j) > 0, self.data[np.minimum(s, len(self.data) - 1)], 0)

    def text(self, row: int, j: int) -> str:
        return bytes(self.data[self.start[row, j]:self.end[row, j]]).decode("utf-8", "replace")


def split(data: bytes, need: int) -> Cells:
    """Cut ``data`` (rows ending with ``\\n``) into rows and the first ``need`` cells of each."""
    a = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(a == _NL)
    rows = len(nl)
    row_start = np.zeros(rows, dtype=np.int64)
    row_start[1:] = nl[:-1] + 1
    commas = np.flatnonzero(a == _COMMA)
    first = np.searchsorted(commas, row_start)  # the row's first comma, if it has one
    count = np.searchsorted(commas, nl) - first
    start = np.empty((rows, need), dtype=np.int64)
    end = np.empty((rows, need), dtype=np.int64)
    last = max(len(commas) - 1, 0)
    padded = commas if len(commas) else np.zeros(1, dtype=np.int64)
    start[:, 0] = row_start
    for j in range(need):
        if j:
            start[:, j] = np.where(count >= j, padded[np.minimum(first + j - 1, last)] + 1, nl)
        end[:, j] = np.where(count > j, padded[np.minimum(first + j, last)], nl)
    return Cells(a, start, end, count + 1, count + 1 >= need)


def unsigned(c: Cells, j: int, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell ``j`` as a decimal number of 1 to ``digits`` digits: (values, ok)."""
    s, e = c.start[:, j], c.end[:, j]
    n = e - s
    ok = (n >= 1) & (n <= digits)
    value = np.zeros(len(s), dtype=np.int64)
    top = len(c.data) - 1
    scale = 1
    for k in range(min(digits, int(n.max()) if len(n) else 0)):  # k-th digit from the right
        inside = k < n
        d = c.data[np.clip(e - 1 - k, 0, top)] - np.uint8(_ZERO)  # wraps for non-digits: > 9
        ok &= ~inside | (d <= 9)
        value += np.where(inside, d, 0).astype(np.int64) * scale
        scale *= 10
    return value, ok


def ipv4(c: Cells, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell ``j`` as a dotted-quad IPv4 address (four decimal octets 0-255, no leading zeros, as
    ``addresses.ip_to_int`` reads them): (values, ok, has_colon -- an IPv6 address)."""
    s, e = c.start[:, j], c.end[:, j]
    n = e - s
    rows = len(s)
    ok = (n >= 7) & (n <= 15)
    # A colon anywhere in the cell: an IPv6 address (flow logs carry them; nsgsolve counts, not decides them).
    at = np.flatnonzero(c.data == _COLON)
    colon = np.searchsorted(at, s) < np.searchsorted(at, e)
    # 32 bits hold the first three octets (the fourth joins at the end, in 64); a run of digits too long
    # to be an octet may wrap, but it is refused by its length first.
    acc = np.zeros(rows, dtype=np.int32)
    cur = np.zeros(rows, dtype=np.int32)
    nd = np.zeros(rows, dtype=np.int8)
    dots = np.zeros(rows, dtype=np.int8)
    top = len(c.data) - 1
    for k in range(min(int(n.max()) if rows else 0, 15)):
        inside = k < n
        ch = np.where(inside, c.data[np.minimum(s + k, top)], 0)
        dot = ch == _DOT
        d = ch - np.uint8(_ZERO)  # wraps for non-digits: > 9
        digit = inside & (d <= 9)
        ok &= ~inside | dot | digit
        ok &= ~dot | ((nd > 0) & (cur <= 255))
        ok &= ~(digit & (nd == 1) & (cur == 0))  # a digit after a leading zero
        acc = np.where(dot, acc * 256 + cur, acc)
        dots += dot
        cur = np.where(dot, 0, np.where(digit, cur * 10 + d, cur))
        nd = np.where(dot, 0, nd + digit)
        ok &= nd <= 3
    ok &= (dots == 3) & (nd > 0) & (cur <= 255)
    return np.where(ok, acc.astype(np.int64) * 256 + cur, 0), ok, colon


def ipv4_columns(c: Cells, js: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`ipv4` of several columns in one pass, one numpy call per character position for all of them:
    replay's batches are one file's tuples (some 20,000 rows), where the calls' own cost shows."""
    n = len(c)
    cells = Cells(c.data, np.concatenate([c.start[:, j] for j in js])[:, None],
                  np.concatenate([c.end[:, j] for j in js])[:, None], np.tile(c.cells, len(js)),
                  np.tile(c.complete, len(js)))
    value, ok, colon = ipv4(cells, 0)
    return [(value[k * n:(k + 1) * n], ok[k * n:(k + 1) * n], colon[k * n:(k + 1) * n]) for k in range(len(js))]
