"""The column reader (importers/columns.py) against Python's own reading of each cell."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nsgsolve.importers import columns
from nsgsolve.semantics.addresses import MAX_IP, ip_to_int

_OCTETS = st.sampled_from(["0", "1", "9", "10", "99", "100", "255", "256", "300", "01", "007", "1000", ""])
_QUADS = st.lists(_OCTETS, min_size=2, max_size=5).map(".".join)
_JUNK = st.text(alphabet="0123456789.:\0ab -", max_size=18)
_CELLS = st.one_of(_QUADS, _JUNK, st.sampled_from(["1.2.3.4", "1.2.3.4\0", "255.255.255.255", "fd00::1", "web1"]))


def _reference(cell: str) -> tuple[int, bool, bool]:
    """(value, ok, has_colon) of one cell as ip_to_int reads it: a dotted quad of IPv4 alone is ok."""
    try:
        value = ip_to_int(cell)
        ok = ":" not in cell and "\0" not in cell and 0 <= value <= MAX_IP
    except ValueError:
        value, ok = 0, False
    return (value if ok else 0), ok, ":" in cell


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_CELLS, min_size=3, max_size=3), max_size=30))
def test_ipv4_columns_read_each_cell_as_ip_to_int(rows):
    # Rows repeat their cells (the reader parses each distinct text once): repeat some rows whole.
    rows = rows + rows[: len(rows) // 2]
    data = "".join(",".join(r) + "\n" for r in rows).encode()
    c = columns.split(data, 3)
    got = columns.ipv4_columns(c, (0, 2))
    for (value, ok, colon), j in zip(got, (0, 2)):
        for i, r in enumerate(rows):
            assert (int(value[i]), bool(ok[i]), bool(colon[i])) == _reference(r[j]), r[j]
    for j in range(3):  # one column alone reads the same
        value, ok, colon = columns.ipv4(c, j)
        assert [(int(v), bool(k), bool(x)) for v, k, x in zip(value, ok, colon)] == [_reference(r[j]) for r in rows]
