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
WINDOW = 16  # zero bytes after the data, so that a cell's first 16 bytes can be read without a bounds test
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
# Odd 64-bit multipliers (wrapping), mixing a cell's two halves into one key.
_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


def _first_and_inverse(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(one index per distinct key, each element's distinct id)."""
    distinct, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.empty(len(distinct), dtype=np.int64)
    first[inverse] = np.arange(len(key))
    return first, inverse


def _words(padded: np.ndarray) -> np.ndarray:
    """Overlapping little-endian uint64 windows at every offset of ``padded`` (its last 7 bytes excepted)."""
    if len(padded) < 8:
        padded = np.concatenate([padded, np.zeros(8 - len(padded), dtype=np.uint8)])
    return np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))


@dataclass
class Cells:
    """Where the first ``need`` cells of every row lie: ``start[:, j]``/``end[:, j]`` (end exclusive) are
    offsets into ``data``; ``complete`` says the row has at least ``need`` cells (``cells`` counts them)."""

    data: np.ndarray  # uint8, followed in memory by WINDOW zero bytes (see split)
    start: np.ndarray  # (rows, need) int64
    end: np.ndarray
    cells: np.ndarray  # cells per row
    complete: np.ndarray  # bool per row
    words: np.ndarray | None = None  # the 8 bytes from every offset of data as one little-endian integer

    def word(self, s: np.ndarray, length: np.ndarray) -> np.ndarray:
        """The first (up to) 8 bytes of the cells starting at ``s``, as one integer each (zeros past a cell's
        ``length``): a short cell's whole text in one number, compared or deduplicated in one operation."""
        if self.words is None:  # cells not made by split(): a padded copy of the data
            self.words = _words(np.concatenate([self.data, np.zeros(WINDOW, dtype=np.uint8)]))
        return self.words[s] & _MASKS[np.clip(length, 0, 8)]

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
    buf = np.zeros(len(data) + WINDOW, dtype=np.uint8)
    buf[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    a = buf[:len(data)]
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
    return Cells(a, start, end, count + 1, count + 1 >= need, _words(buf))


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
    return ipv4_columns(c, (j,))[0]


def _dotted(data: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells [s, e) of ``data`` as dotted quads, one character position at a time: (values, ok)."""
    n = e - s
    rows = len(s)
    ok = (n >= 7) & (n <= 15)
    # 32 bits hold the first three octets (the fourth joins at the end, in 64); a run of digits too long
    # to be an octet may wrap, but it is refused by its length first.
    acc = np.zeros(rows, dtype=np.int32)
    cur = np.zeros(rows, dtype=np.int32)
    nd = np.zeros(rows, dtype=np.int8)
    dots = np.zeros(rows, dtype=np.int8)
    top = len(data) - 1
    for k in range(min(int(n.max()) if rows else 0, 15)):
        inside = k < n
        ch = np.where(inside, data[np.minimum(s + k, top)], 0)
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
    return np.where(ok, acc.astype(np.int64) * 256 + cur, 0), ok


def ipv4_columns(c: Cells, js: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`ipv4` of several columns: (values, ok, has_colon) per column. A column of flows repeats a few
    addresses (a NIC's peers, the Internet hosts of a log), so only the distinct texts of 7 to 15 bytes are
    parsed, all columns in one pass (replay's batches are some 20,000 rows, where numpy's calls' own cost
    shows); 400,000 flows' two address columns: 0.3 -> 0.1 s."""
    n = len(c)
    s = np.concatenate([c.start[:, j] for j in js])
    e = np.concatenate([c.end[:, j] for j in js])
    length = e - s
    # A colon anywhere in the cell: an IPv6 address (flow logs carry them; nsgsolve counts, not decides them).
    at = np.flatnonzero(c.data == _COLON)
    colon = np.searchsorted(at, s) < np.searchsorted(at, e)
    value = np.zeros(len(s), dtype=np.int64)
    ok = np.zeros(len(s), dtype=bool)
    shaped = np.flatnonzero((length >= 7) & (length <= 15))
    if len(shaped):
        ls = length[shaped]
        lo = c.word(s[shaped], ls)
        # The top byte of the second half is past any cell of 15 bytes: it holds the length, so that the two
        # halves are the text exactly (a NUL byte inside a cell included).
        hi = c.word(s[shaped] + 8, ls - 8) | (ls.astype(np.uint64) << np.uint64(56))
        # Both halves hashed into one integer for a single sort; the cells of one hash are then checked to
        # be one text (a collision falls back to sorting each half).
        key = lo * _MIX1 + hi * _MIX2
        first, inverse = _first_and_inverse(key)
        rep = first[inverse]
        if not ((lo[rep] == lo) & (hi[rep] == hi)).all():  # pragma: no cover - a 64-bit hash collision
            _, li = np.unique(lo, return_inverse=True)
            _, hi_ids = np.unique(hi, return_inverse=True)
            first, inverse = _first_and_inverse(li.reshape(-1) * len(hi) + hi_ids.reshape(-1))
        first = shaped[first]
        v, k = _dotted(c.data, s[first], e[first])
        value[shaped] = v[inverse]
        ok[shaped] = k[inverse]
    return [(value[k * n:(k + 1) * n], ok[k * n:(k + 1) * n], colon[k * n:(k + 1) * n]) for k in range(len(js))]
