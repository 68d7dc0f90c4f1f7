"""The errors CSV `<job_id>.csv`: the failed rows as received, with `errors` last.

It is written for a person to open in a spreadsheet, fix and upload again, so it is
UTF-8 with a BOM (Excel then reads accents right), CRLF line ends, the original header
and cells untouched, except:
- cells a spreadsheet would run as a formula (`= + - @`, tab, CR at the start) get one
  leading `'` (`formula.neutralise`); reading a file that has an `errors` column undoes
  exactly that, so the round trip is lossless;
- password cells are blanked: no clear password ever leaves syncd;
- an `errors` column the input already had is replaced by the new one;
- a header-less file's errors CSV still gets a header row (the profile's headers, then
  `errors`), so a person can tell the columns apart; reading recognises that row when
  the file comes back.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Collection, Iterable

import polars as pl

from syncd.core.formula import neutralise
from syncd.core.table import ROW, RawTable, RowError

BOM = "\ufeff"
ERRORS_HEADER = "errors"


def messages_by_row(errors: Iterable[RowError]) -> dict[int, str]:
    """Each row's problems as one cell: `column: message; column: message`."""
    grouped: defaultdict[int, list[str]] = defaultdict(list)
    for error in errors:
        grouped[error.row].append(error.render())
    return {row: "; ".join(parts) for row, parts in grouped.items()}


def render_errors_csv(
    table: RawTable, errors: Iterable[RowError], *, redact: Collection[int] = ()
) -> bytes:
    """The errors CSV for `table`'s rows named in `errors`, in file order.

    `redact` holds the positions of columns whose cells must not be written (passwords).
    """
    by_row = messages_by_row(errors)
    keep = [i for i, name in enumerate(table.header) if name.strip().lower() != ERRORS_HEADER]
    failed = table.cells.filter(pl.col(ROW).is_in(list(by_row)))

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(table.header[i]) for i in keep] + [ERRORS_HEADER])
    names = [table.column_name(i) for i in keep]
    for row in failed.select([ROW, *names]).iter_rows():
        cells = [
            "" if i in redact else neutralise(cell or "")
            for i, cell in zip(keep, row[1:], strict=True)
        ]
        writer.writerow([*cells, neutralise(by_row[row[0]])])
    return (BOM + out.getvalue()).encode("utf-8")
