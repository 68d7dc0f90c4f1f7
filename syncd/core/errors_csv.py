"""The errors CSV `<job_id>.csv`: the failed rows as received, with `errors` last.

It is written for a person to open in a spreadsheet, fix and upload again, so it is
UTF-8 with a BOM (Excel then reads accents right), CRLF line ends, the input's own
delimiter (a profile that reads `;` reads the fixed file back), the original header and
cells untouched, except:
- cells a spreadsheet would run as a formula (`= + - @`, tab, CR at the start) get one
  leading `'` (`formula.neutralise`); reading a file that has an `errors` column undoes
  exactly that, so the round trip is lossless;
- cells of secret columns (`syncd.core.secrets`) are blanked: no clear password ever
  leaves syncd;
- a row with more cells than the header keeps them all, before its `errors` cell;
- a byte that was not UTF-8 shows as U+FFFD (which reading refuses until it is retyped);
- an `errors` column the input already had is replaced by the new one;
- a header-less file's errors CSV still gets a header row (the profile's headers, then
  `errors`), so a person can tell the columns apart; reading recognises that row when
  the file comes back.

The `errors` cell holds one line per problem (`column: message`): messages may hold any
punctuation, a line break never.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable

import polars as pl

from syncd.core.decoding import shown_lost
from syncd.core.formula import neutralise
from syncd.core.secrets import secret_cells
from syncd.core.table import ERRORS_HEADER, ROW, RawTable, RowError, is_errors_header

BOM = "\ufeff"
#: Between two problems in one `errors` cell.
MESSAGE_SEPARATOR = "\n"


def messages_by_row(errors: Iterable[RowError]) -> dict[int, str]:
    """Each row's problems as one cell: one `column: message` line each."""
    grouped: defaultdict[int, list[str]] = defaultdict(list)
    for error in errors:
        grouped[error.row].append(error.render())
    return {row: MESSAGE_SEPARATOR.join(parts) for row, parts in grouped.items()}


def render_errors_csv(table: RawTable, errors: Iterable[RowError]) -> bytes:
    """The errors CSV for `table`'s rows named in `errors`, in file order."""
    by_row = messages_by_row(errors)
    keep = [i for i, name in enumerate(table.header) if not is_errors_header(name)]
    failed = table.cells.filter(pl.col(ROW).is_in(list(by_row)))

    out = io.StringIO()
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator="\r\n")
    writer.writerow([neutralise(table.header[i]) for i in keep] + [ERRORS_HEADER])
    names = [table.column_name(i) for i in keep]
    for row, *cells in failed.select([ROW, *names]).iter_rows():
        extra = table.overflow.get(row, ())
        values = [*(cell or "" for cell in cells), *extra]
        hidden = secret_cells(
            table.secret_columns, len(table.header) + len(extra), ragged=bool(extra)
        )
        positions = [*keep, *range(len(table.header), len(table.header) + len(extra))]
        written = [
            "" if i in hidden else neutralise(shown_lost(value))
            for i, value in zip(positions, values, strict=True)
        ]
        writer.writerow([*written, neutralise(by_row[row])])
    return (BOM + out.getvalue()).encode("utf-8")
