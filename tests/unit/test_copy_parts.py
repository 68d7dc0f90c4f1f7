"""Where COPY's CSV text is cut into parts for polars (`syncd.store.pgcopy.copy_out`).

PostgreSQL happens to send a row per message, so a real server never has `copy_out` cut
inside a quoted field; a connection that split its messages otherwise would. The cut is
checked here on every prefix of text written as COPY writes CSV.
"""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.store.pgcopy import _records_end

_FIELDS = st.none() | st.text(st.sampled_from('"\n\r,a é'), max_size=5)


def _record(fields: list[str | None]) -> bytes:
    """One record as COPY's CSV writes it: a field with a quote, comma or line end
    quoted, its quotes doubled; NULL empty and unquoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["" if f is None else f for f in fields])
    return out.getvalue().encode("utf-8")


@settings(max_examples=300)
@given(st.lists(st.lists(_FIELDS, min_size=1, max_size=3), max_size=6))
def test_text_is_cut_after_the_last_whole_record_of_any_prefix(
    records: list[list[str | None]],
) -> None:
    """For every prefix of the text, the cut falls at the end of the last record the
    prefix holds whole (0 when it holds none): never inside a quoted line end."""
    written = [_record(r) for r in records]
    text = b"".join(written)
    ends = [0]
    for record in written:
        ends.append(ends[-1] + len(record))
    for size in range(len(text) + 1):
        whole = max(end for end in ends if end <= size)
        assert _records_end(bytearray(text[:size])) == whole, (text[:size], whole)
