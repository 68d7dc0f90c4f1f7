"""What reading a file produces: the header and the cells, as received, plus how it was read.

Reading (bytes -> text -> dialect -> cells) is done by `syncd.core.reading`; validation
and the errors CSV consume a `RawTable`. Cells stay exactly as received (no trimming) so
the errors CSV can give them back untouched.
"""

from __future__ import annotations

import io
import itertools
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import polars as pl

_NO_OVERFLOW: Mapping[int, tuple[str, ...]] = MappingProxyType({})

#: Name of the column holding each data row's spreadsheet row number: the header is row 1
#: in a file with a header, blank rows count, a quoted newline does not start a new row.
ROW = "_row"
#: How many rows below a first row that is not the header are looked at for it (a
#: report export's title rows above its header).
HEADER_SEARCH_ROWS = 20
#: The header of the column an errors CSV adds (compared case- and space-insensitively).
ERRORS_HEADER = "errors"


#: Below this share of a table's rows, the rows kept (`RawTable.keep_rows`) are copied
#: out of its text; above it, most of the text is theirs anyway.
_FEW = 0.25


def _own_text(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` holding its own copy of its text, through an Arrow IPC round trip (a
    rechunk, `shrink_to_fit` or a cast keeps pointing into the same buffers)."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    buffer.seek(0)
    return pl.read_ipc(buffer)


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of one row, in words a person can act on.

    `column` is the column's header as it is in the file ("" when the problem is the row
    itself, such as a ragged row).
    """

    row: int
    column: str
    message: str

    def render(self) -> str:
        return f"{self.column}: {self.message}" if self.column else self.message


@dataclass(frozen=True, slots=True)
class RawTable:
    """A file's cells as received.

    `cells` has one `pl.String` column per header position, named `c0`, `c1`, ..., in
    file order, plus `ROW` (`pl.UInt32`). Blank rows are dropped (their numbers are
    skipped). Rows shorter than the header are padded with empty strings; rows longer
    are cut to the header's width, reported in `row_errors`, and their cells past the
    header kept in `overflow` (row -> those cells), so the errors CSV loses none.
    An input column named `errors` (an errors CSV coming back) is kept in `header` and
    `cells` so it can be recognised, and the formula neutralisation syncd applied when
    writing it has been undone.

    `guessed_encoding`: the file was decoded whole with the fallback codec (see
    `syncd.core.decoding`). `cut_row`: the row the file ends in the middle of (fewer
    cells than the header and no line end after it: an export cut short), if any.
    `secret_columns`: positions of columns that hold passwords, mapped or not; their
    cells are never shown, kept or sent (`syncd.core.secrets`).
    """

    header: tuple[str, ...]
    cells: pl.DataFrame
    encoding: str
    delimiter: str
    has_header: bool
    row_errors: tuple[RowError, ...] = ()
    notices: tuple[str, ...] = ()
    overflow: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: _NO_OVERFLOW)
    guessed_encoding: bool = False
    cut_row: int | None = None
    secret_columns: frozenset[int] = frozenset()
    #: Set when `cells` was cut down to the rows still needed (the failed ones, for the
    #: errors CSV) to free memory: the data rows the file had.
    total_rows: int | None = None

    @property
    def rows(self) -> int:
        """Data rows (blank rows excluded)."""
        return self.cells.height if self.total_rows is None else self.total_rows

    def keep_rows(self, rows: set[int]) -> RawTable:
        """The same table holding only the cells of `rows` (spreadsheet row numbers).

        A few rows kept hold only their own text: a filter's cells still point into the
        text of every row they were cut from, so the 25,000 failed rows of a file of
        5,000,000 kept all its cells' text alive (about 300 MB) until the job ended.
        """
        if not rows:
            return replace(self, cells=self.cells.clear(), total_rows=self.rows)
        kept = self.cells.filter(pl.col(ROW).is_in(sorted(rows)))
        if kept.height < self.cells.height * _FEW:
            kept = _own_text(kept)
        return replace(self, cells=kept, total_rows=self.rows)

    def column_name(self, index: int) -> str:
        return f"c{index}"

    @property
    def is_errors_csv(self) -> bool:
        """Whether the file carries an `errors` column: an errors CSV sent back."""
        return self.has_header and any(is_errors_header(h) for h in self.header)


def normalise_header(text: str) -> str:
    """The form headers are compared in: NFC, case folded, letters and digits only (so
    "Primary Email", "primary_email" and "PRIMARY-EMAIL " are one name, whatever the
    Unicode normal form of an accented one)."""
    return "".join(ch for ch in unicodedata.normalize("NFC", text).casefold() if ch.isalnum())


def is_errors_header(text: str) -> bool:
    """Whether a header names the column an errors CSV adds."""
    return normalise_header(text) == ERRORS_HEADER


def chunked_like(column: pl.Series, lengths: list[int]) -> pl.Series:
    """`column` in chunks of `lengths` (zero-copy slices of it, once it is in one
    chunk). A frame whose columns are chunked alike stays as it is; polars first copies
    every column of one chunked otherwise, and of one chunked unlike a filter's mask, to
    line them up (at 5,000,000 rows, 300 MiB for each look at the rows matched to the
    directory). Computed columns come in one chunk; the parser's cells in many.
    """
    if column.chunk_lengths() == lengths:
        return column
    whole = column.rechunk()
    if len(lengths) < 2:  # one chunk, or none (an empty frame)
        return whole
    starts = itertools.accumulate(lengths[:-1], initial=0)
    return pl.concat(
        [whole.slice(start, size) for start, size in zip(starts, lengths, strict=True)],
        rechunk=False,
    )
