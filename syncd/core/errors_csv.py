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

from syncd.core.decoding import LOST_BYTE, shown_lost
from syncd.core.formula import neutralise, neutralise_expr
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
    """The errors CSV for `table`'s rows named in `errors`, in file order.

    The cells are made safe column by column in polars (lost bytes shown, formulas
    neutralised, secret columns blanked); only the few ragged rows' extra cells are
    handled one by one.
    """
    by_row = messages_by_row(errors)
    keep = [i for i, name in enumerate(table.header) if not is_errors_header(name)]
    width = len(table.header)
    hidden = secret_cells(table.secret_columns, width, ragged=False)
    failed = table.cells.filter(pl.col(ROW).is_in(list(by_row))).select(
        ROW,
        *(pl.lit("") if i in hidden else _written(pl.col(table.column_name(i))) for i in keep),
    )

    out = io.StringIO()
    writer = csv.writer(out, delimiter=table.delimiter, lineterminator="\r\n")
    writer.writerow([neutralise(table.header[i]) for i in keep] + [ERRORS_HEADER])
    writer.writerows(
        [*_ragged(table, row, cells, keep, width), neutralise(by_row[row])]
        if row in table.overflow
        else [*cells, neutralise(by_row[row])]
        for row, *cells in failed.iter_rows()
    )
    return (BOM + out.getvalue()).encode("utf-8")


def _written(cells: pl.Expr) -> pl.Expr:
    """`neutralise(shown_lost(cell))` over a whole column, blank for null."""
    return neutralise_expr(cells.fill_null("").str.replace_all(LOST_BYTE, "\ufffd"))


def _ragged(table: RawTable, row: int, cells: list[str], keep: list[int], width: int) -> list[str]:
    """A ragged row's written cells, its extra cells after the header's `width`: a ragged
    row blanks more than its secret columns (see `secret_cells`)."""
    extra = table.overflow[row]
    hidden = secret_cells(table.secret_columns, width + len(extra), ragged=True)
    written = ["" if i in hidden else cell for i, cell in zip(keep, cells, strict=True)]
    return written + [
        "" if i in hidden else neutralise(shown_lost(cell))
        for i, cell in enumerate(extra, start=width)
    ]
