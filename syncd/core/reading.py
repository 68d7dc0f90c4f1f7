"""Reading a file: bytes -> UTF-8 -> dialect -> cells, as a `RawTable`.

The fast path hands UTF-8 bytes straight to polars' CSV parser. When polars refuses the
file (a row longer than the first, a stray quote, an unclosed quote), or its lines do not
all end in LF or CRLF (bare CR, which polars' parser cannot mix with quoted line breaks),
the structural pass reads it with Python's `csv` module, which takes any line end and can
say exactly which row is wrong.
Either way the cells come out exactly as received; file-level problems raise
`FileRejected`, row-level ones (a row with too many cells, a cell too long) become
`RowError`s for validation to report with the rest.

A big file that the fast path reads can also be read a part at a time (`FileParts`), so
that only one part's cells are in memory at once.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import itertools
import re
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace

import polars as pl

from syncd.core.decoding import GZIP_MAGIC, ZSTD_MAGIC, Decoded, after_invalid_utf8, decode
from syncd.core.dialect import (
    DELIMITERS,
    SAMPLE_BYTES,
    delimiter_name,
    detect_delimiter,
    excel_sep_line,
    line_end,
    sample_records,
    sample_text,
)
from syncd.core.formula import undo, undo_expr
from syncd.core.limits import MAX_BYTES, MAX_ROWS
from syncd.core.table import (
    HEADER_SEARCH_ROWS,
    ROW,
    RawTable,
    RowError,
    is_errors_header,
    normalise_header,
)
from syncd.errors import FileRejected

_CONTENT = re.compile(rb"[^\r\n]")
_SENTINEL = "\x00"


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read a file; a profile's reading settings plus the safety caps."""

    delimiter: str = "auto"  # "auto" or one of "," ";" "\t" "|"
    encoding: str = "auto"  # "auto" or a Python codec name
    fallback_encoding: str = "cp1252"
    header: bool = True
    max_bytes: int = MAX_BYTES
    max_rows: int = MAX_ROWS
    max_columns: int = 1000
    max_cell_chars: int = 1_000_000  # longer cells are a row error, not a crash
    #: Whether a record reads as the header (the profile's key column among its cells):
    #: when the first record does not, the header is looked for in the records below
    #: it (a title line above it). None: the first record is the header.
    header_test: Callable[[Sequence[str]], bool] | None = None


def read_table(
    data: bytes,
    options: ReadOptions,
    *,
    column_count: int | None = None,
    header_names: Sequence[str] | None = None,
) -> RawTable:
    """Read a CSV file's bytes into a RawTable, or raise FileRejected saying what to do.

    For a header-less file (`options.header` False) every record is data, numbered from
    1, and the table's width and header come from `header_names` (the profile's headers)
    if given, else `column_count` with headers `c0`, `c1`, ..., else the file itself.
    Both are ignored for a file with a header.
    """
    _refuse_early(data, options)
    decoded = decode(data, options.encoding, options.fallback_encoding)
    names = None if options.header or header_names is None else tuple(header_names)
    width = len(names) if names is not None else column_count
    try:
        return _read(decoded, options, width, names)
    except _NotUtf8:
        decoded = after_invalid_utf8(data, decoded, options.fallback_encoding)
        return _read(decoded, options, width, names)


def _refuse_early(data: bytes, options: ReadOptions) -> None:
    """Raise FileRejected for what is refused before a byte is decoded: no bytes, more
    than the profile allows, a delimiter no CSV file can be read with."""
    if not data:
        raise FileRejected("the file is empty (0 bytes); check that the export wrote any data")
    if len(data) > options.max_bytes:
        raise FileRejected(  # read up to one byte past the cap: its whole size is unknown
            f"the file holds more than the {_size(options.max_bytes)} allowed; split it "
            "or raise max_bytes in the profile"
        )
    delimiter = options.delimiter
    if delimiter != "auto" and not (
        len(delimiter) == 1 and delimiter.isascii() and delimiter not in '"\r\n\x00'
    ):
        raise FileRejected(
            f"the profile's delimiter {delimiter!r} cannot be used; "
            "use one of ',', ';', '|', a tab, or 'auto'"
        )


class NotInParts(Exception):
    """A file `FileParts` does not read: read it whole (`read_table`), which also says
    what is wrong with it, if anything is."""


#: How many bytes of a file make one part: about 240,000 rows of a 12-column export.
PART_BYTES = 32 * 1024 * 1024


class FileParts:
    """A file with a header read a part at a time, each part a `RawTable` of its own.

    What the parts hold together is exactly what `read_table` reads: the same header,
    cells, row numbers, row errors and notices. A file is read in parts only where that
    is sure: one polars parses whole (the fast path), its header on its first row, with
    no empty header cell at its end, and no more lines than the profile allows rows.
    Anything else raises `NotInParts`, at once or while the parts are read (a part that
    polars refuses), and the caller reads the file whole.

    A part ends at a line end outside quotes: the quotes before it counted from the
    part's start are even. A stray quote can fool the count, but then polars refuses
    the part that holds it (it refuses stray and unclosed quotes alike), so a part that
    parses begins and ends where the file's records do.
    """

    def __init__(self, data: bytes, options: ReadOptions, part_bytes: int = PART_BYTES) -> None:
        if not options.header:
            raise NotInParts
        given = data
        try:
            _refuse_early(data, options)
            decoded = decode(data, options.encoding, options.fallback_encoding)
            layout = _layout(decoded, options, None)
        except FileRejected as rejected:
            raise NotInParts from rejected
        if layout.lines is None or layout.lines - 1 > options.max_rows:
            raise NotInParts  # not one polars reads whole, or maybe too many rows
        decoded, delimiter = layout.decoded, layout.delimiter
        data = decoded.data
        # The text is most often the file's own bytes after a BOM or a `sep=` line, a
        # copy: the file is then not held besides (`given` puts it back together).
        self._given: bytes | None = None if data is given or given.endswith(data) else given
        self._before = given[: len(given) - len(data)]
        self._decoded = decoded
        self._options = options
        self._delimiter = delimiter
        self._part_bytes = max(1, part_bytes)
        #: each part read so far: where its bytes start and end, its first row's number
        self._spans: list[tuple[int, int, int]] = []
        self._header: list[str] | None = None
        self._width = 0

    def __iter__(self) -> Iterator[RawTable]:
        """Each part in turn, header and all; raises NotInParts as soon as one cannot be
        read in parts. Parts holding only blank rows come out empty."""
        data = self._decoded.data
        start, row, rows = 0, 1, 0
        self._spans = []
        while start < len(data):
            end = self._end(start)
            self._spans.append((start, end, row))
            table, row = self._part(start, end, row)
            rows += table.rows
            start = end
            yield table
            del table  # not held while the next part is read
        if rows == 0:
            raise NotInParts  # a header and no data rows: said by `read_table`

    def given(self) -> bytes:
        """The file's bytes as they were given (to read it whole after all)."""
        if self._given is not None:
            return self._given
        text = self._decoded.data
        return self._before + text if self._before else text

    def rows(self, wanted: Collection[int]) -> RawTable:
        """The rows numbered `wanted`, read again from the parts (all read before) that
        hold them, as one table in row order."""
        spans, ordered = self._spans, sorted(wanted)
        tables = []
        for i, (start, end, first) in enumerate(spans):
            after = bisect_left(ordered, spans[i + 1][2]) if i + 1 < len(spans) else None
            mine = ordered[bisect_left(ordered, first) : after]
            if mine:
                tables.append(self._part(start, end, first)[0].keep_rows(set(mine)))
        if not tables:
            raise ValueError("no rows wanted of parts read")
        overflow = {row: cells for t in tables for row, cells in t.overflow.items()}
        return replace(
            tables[-1],
            cells=pl.concat([t.cells for t in tables]),
            row_errors=tuple(e for t in tables for e in t.row_errors),
            overflow=overflow,
            total_rows=None,
        )

    def _end(self, start: int) -> int:
        """Where the part starting at `start` ends: after the first line end at least
        `part_bytes` on that has an even count of quotes before it."""
        data = self._decoded.data
        end = data.find(b"\n", start + self._part_bytes)
        quotes = data.count(b'"', start, end) if end != -1 else 0
        while end != -1 and quotes % 2:
            after = data.find(b'"', end)
            if after == -1:
                return len(data)  # an unclosed quote: the last part, which polars refuses
            following = data.find(b"\n", after)
            quotes += data.count(b'"', end, len(data) if following == -1 else following)
            end = following
        return len(data) if end == -1 else end + 1

    def _part(self, start: int, end: int, first_row: int) -> tuple[RawTable, int]:
        """The part of the file's bytes `start:end`, whose first record is `first_row`,
        and the number of the record after its last."""
        decoded, options, delimiter = self._decoded, self._options, self._delimiter
        first = start == 0
        if first:
            chunk = decoded.data[start:end]
        else:
            # Polars takes the column count from the first line: a part's own first line
            # may be shorter than the file's, so a line as wide as the header goes first.
            padding = delimiter.encode() * (self._width - 2) + b"\n"
            chunk = b"".join((padding, memoryview(decoded.data)[start:end]))
        try:
            records = _parse_fast(
                chunk,
                delimiter,
                "\n",
                verified=decoded.verified,
                first_row=first_row if first else first_row - 1,
                padded=not first,
            )
        except _NotUtf8 as not_utf8:
            raise NotInParts from not_utf8
        if records is None:
            raise NotInParts
        del chunk
        frame = records.frame
        if first:
            if frame.height == 0:
                raise NotInParts
            header = [_str(c) for c in frame.row(0)[: records.first_width]]
            test = options.header_test
            if (test is not None and not test(header)) or (len(header) > 1 and not header[-1]):
                raise NotInParts  # title rows, or columns that may be dropped if empty
            try:
                _check_columns(len(header), options, delimiter)
            except FileRejected as rejected:
                raise NotInParts from rejected
            self._header, self._width = header, frame.width
            frame = frame.slice(1)
        elif frame.width != self._width or self._header is None:
            raise NotInParts  # polars would have refused the whole file's longer row
        table = _table(
            frame,
            self._header,
            decoded,
            delimiter,
            options,
            True,
            decoded.notices,
            last=end == len(decoded.data),
        )
        return table, records.next_row


def _without_sep_line(decoded: Decoded) -> tuple[str | None, Decoded]:
    """The delimiter Excel's `sep=` first line names, if the file starts with one (and
    one syncd reads: a comma, semicolon, tab or bar), and the file without that line,
    numbered as Excel shows it: the header is row 1. Another profile delimiter wins."""
    found = excel_sep_line(decoded.data)
    if found is None:
        return None, decoded
    named, length = found
    hinted = named if named in DELIMITERS else None
    return hinted, replace(decoded, data=decoded.data[length:])


class _NotUtf8(Exception):
    """The bytes assumed to be UTF-8 are not; the caller falls back or rejects."""


@dataclass(frozen=True, slots=True)
class _Records:
    """Non-blank records as cells `c0..` (short ones padded with "") plus `ROW`.

    `first_width` is how many cells the first record has as written, which for a file
    with a header is the header's width.
    """

    frame: pl.DataFrame
    first_width: int
    #: the number the record after the last would have (blank records counted)
    next_row: int = 0


def _read(
    decoded: Decoded, options: ReadOptions, width: int | None, names: tuple[str, ...] | None
) -> RawTable:
    layout = _layout(decoded, options, width)
    decoded, delimiter = layout.decoded, layout.delimiter
    records = None
    if layout.lines is not None:
        records = _parse_fast(decoded.data, delimiter, "\n", verified=decoded.verified)
    if records is None:
        records = _parse_structural(decoded.data, delimiter, options)
    return _shape(records, decoded, delimiter, options, width, names)


@dataclass(frozen=True, slots=True)
class _Layout:
    """A decoded file's text (without Excel's `sep=` line), its delimiter and, when
    polars' parser may read it, how many records it would read (blank ones too)."""

    decoded: Decoded
    delimiter: str
    lines: int | None


def _layout(decoded: Decoded, options: ReadOptions, width: int | None) -> _Layout:
    """How a decoded file is laid out, or FileRejected: nothing but blank lines, or too
    many columns in its first records. Polars' parser may read it when its lines end in
    LF or CRLF, it does not look compressed, and it is not mostly blank lines."""
    hinted, stripped = _without_sep_line(decoded)
    sep_line, decoded = stripped is not decoded, stripped
    data = decoded.data
    if _content_start(data) == len(data):
        if not data and not sep_line:
            raise FileRejected("the file is empty: it holds nothing but a byte order mark")
        raise FileRejected("the file holds only blank lines; check that the export wrote data")
    sample = sample_text(data)
    complete = len(data) <= SAMPLE_BYTES
    delimiter = options.delimiter
    if delimiter == "auto":
        delimiter = hinted or detect_delimiter(sample, complete=complete, expected_columns=width)
    sampled = sample_records(sample, delimiter, complete=complete)
    for record in sampled:
        _check_columns(_width(record), options, delimiter)
    lines = None
    eol = line_end(data)
    if eol is not None and not _decompressed_by_polars(data):
        counted = _lines(data, delimiter, eol)
        if not _mostly_blank(counted, len(data), max(map(len, sampled), default=1)):
            lines = counted
    return _Layout(decoded, delimiter, lines)


#: How polars tells compressed input, which it decompresses instead of parsing: gzip,
#: zlib ("x" then one of four bytes, "x^" among them) and zstd. Text that starts so (a
#: first cell "x^2") goes to the structural pass, which reads it as text.
_COMPRESSED = (GZIP_MAGIC, b"x\x01", b"x^", b"x\x9c", b"x\xda", ZSTD_MAGIC)


def _decompressed_by_polars(data: bytes) -> bool:
    """Whether polars would take `data` (or what follows its leading blank lines, which
    the fast pass cuts off) for compressed input."""
    return data.startswith(_COMPRESSED) or data[_content_start(data) :].startswith(_COMPRESSED)


#: Polars holds every line as a row, blank ones too (16 bytes a cell), before they are
#: dropped: 10 million blank lines (20 MB) took 840 MB. A file whose lines would cost
#: it this much, and far more than the file's own size, goes to the structural pass,
#: which keeps nothing of a blank line.
_FAST_PATH_ROWS_BYTES = 256 * 1024 * 1024


def _mostly_blank(lines: int, size: int, columns: int) -> bool:
    """Whether polars would spend far more on a file's `lines` than its `size`: millions
    of blank lines (real rows cost about what their bytes do)."""
    return lines * (columns * 16 + 4) > max(_FAST_PATH_ROWS_BYTES, 8 * size)


def _lines(data: bytes, delimiter: str, eol: str) -> int:
    """The records (blank ones too) polars would read in `data`.

    Polars counts the rows it would hold without holding them, several times faster
    than `bytes.count` counts line ends.
    """
    try:
        lines: int = (
            pl.scan_csv(
                data,
                has_header=False,
                infer_schema=False,
                separator=delimiter,
                quote_char='"',
                eol_char=eol,
            )
            .select(pl.len())
            .collect()
            .item()
        )
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        lines = data.count(eol.encode())
    return lines


def _parse_fast(
    data: bytes,
    delimiter: str,
    eol: str,
    *,
    verified: bool,
    first_row: int = 1,
    padded: bool = False,
) -> _Records | None:
    """Polars' parser over the whole file (or a part of it whose first record is
    `first_row`); None when it refuses the file's structure.

    Unless the bytes are `verified` UTF-8, polars is what checks them. A `padded` part
    starts with a record of empty cells as wide as the file's first line, which polars
    takes the column count from, numbered `first_row` and dropped.
    """
    # Polars takes the column count from the first line, so blank lines before the header
    # are cut off here; they still count in the row numbers.
    start = _content_start(data)
    body = data[start:] if start else data
    if body.startswith(codecs.BOM_UTF8):
        return None  # polars would drop it; here it is a character of the first cell
    skipped = data.count(eol.encode(), 0, start)
    try:
        frame = pl.read_csv(
            body,
            has_header=False,
            infer_schema=False,
            empty_string_is_null=False,
            separator=delimiter,
            quote_char='"',
            eol_char=eol,
            raise_if_empty=False,
            # The parser's own row index is chunked like the cells; a column added
            # afterwards is not, and every later filter would then copy the whole frame.
            row_index_name=ROW,
            row_index_offset=first_row + skipped,
        )
    except pl.exceptions.ComputeError as exc:
        if not verified and str(exc).startswith("invalid utf-8"):
            raise _NotUtf8 from exc
        return None
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        return None
    if frame.width <= 1:
        return None
    next_row = first_row + skipped + frame.height
    if padded:
        frame = frame.slice(1)
    parsed = [c for c in frame.columns if c != ROW]
    cells = [f"c{i}" for i in range(len(parsed))]
    frame = frame.rename(dict(zip(parsed, cells, strict=True))).select(*cells, ROW)
    if frame.schema[ROW] != pl.UInt32:
        frame = frame.with_columns(pl.col(ROW).cast(pl.UInt32))
    return _Records(_without_blank_rows(frame, cells), len(cells), next_row)


def _without_blank_rows(frame: pl.DataFrame, cells: list[str]) -> pl.DataFrame:
    """The records but the blank ones: every cell empty or whitespace.

    Only the rows whose first cell is blank are looked at whole: stripping every cell of
    a million rows to find none blank costs a tenth of a second. Filtering copies every
    cell, so the frame is filtered only when a row is blank (most files have none)."""
    maybe = frame.filter(pl.col(cells[0]).str.strip_chars().str.len_bytes() == 0)
    if maybe.is_empty():
        return frame
    blank = (maybe.filter(_blank(cells[1:])) if len(cells) > 1 else maybe)[ROW]
    return frame.filter(~pl.col(ROW).is_in(blank.implode())) if len(blank) else frame


#: How many records the structural pass holds as Python lists before it makes them
#: columns: a list of strings costs about 60 bytes a cell, a polars column about 20.
_STRUCTURAL_BATCH = 65_536


def _parse_structural(
    data: bytes, delimiter: str, options: ReadOptions, *, batch: int = _STRUCTURAL_BATCH
) -> _Records:
    """Python's csv module record by record: slower, but it can name the broken row.

    The text is decoded as it is read and the records are made columns `batch` at a
    time, so a big file costs about what its columns do (a file of 5,000,000 rows read
    whole as text and lists took 12 GB).
    """
    # Cells longer than csv's default limit (128 KiB) are a row error, not a csv crash.
    csv.field_size_limit(max(csv.field_size_limit(), len(data) + 2))
    # A sentinel record after the text: if the file ends inside a quoted cell, the
    # sentinel ends up in that cell instead of in a record of its own. NUL cannot occur
    # in the text (decoding rejects it).
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    lines = itertools.chain(text, ("\n", _SENTINEL))
    frames: list[pl.DataFrame] = []
    records: list[list[str]] = []
    rows: list[int] = []
    number = 0
    first_width: int | None = None
    # Millions of small lists would set off the cyclic garbage collector over and over
    # (4x slower); none of them can form a cycle.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for record in csv.reader(lines, delimiter=delimiter, quotechar='"'):
            number += 1
            if len(record) > options.max_columns:
                _check_columns(_width(record), options, delimiter, row=number)
            if any(cell.strip(WHITESPACE) for cell in record):
                if first_width is None:
                    first_width = len(record)
                if len(records) > batch:  # the last record stays: it may be the sentinel
                    frames.append(_columns(records[:-1], rows[:-1]))
                    records, rows = records[-1:], rows[-1:]
                records.append(record)
                rows.append(number)
    except UnicodeDecodeError as exc:
        raise _NotUtf8 from exc
    finally:
        if collecting:
            gc.enable()
    if records[-1] != [_SENTINEL]:
        raise FileRejected(
            f"unbalanced quotes: the quoted cell that opens in row {rows[-1]} is never "
            'closed; add the missing closing " (a " inside a cell is written "") '
            "and upload again"
        )
    records.pop()
    rows.pop()
    real = bool(records or frames)
    if records or not frames:
        frames.append(_columns(records, rows))
    span = max(f.width for f in frames) - 1
    frame = pl.concat([_padded(f, span) for f in frames], rechunk=False)
    return _Records(frame, first_width if real and first_width is not None else 0)


def _padded(frame: pl.DataFrame, span: int) -> pl.DataFrame:
    """`frame`'s cells padded with "" to `span` columns."""
    have = frame.width - 1
    return frame.select(
        *(pl.col(f"c{i}") if i < have else pl.lit("").alias(f"c{i}") for i in range(span)), ROW
    )


def _columns(records: list[list[str]], rows: list[int]) -> pl.DataFrame:
    """Records as columns `c0..` (short ones padded with "") plus `ROW`."""
    span = max(map(len, records), default=1)
    for record in records:
        if len(record) < span:
            record.extend([""] * (span - len(record)))
    columns = list(zip(*records, strict=True)) or [() for _ in range(span)]
    frame = pl.DataFrame(
        [pl.Series(f"c{i}", column, dtype=pl.String) for i, column in enumerate(columns)]
    )
    return frame.with_columns(pl.Series(ROW, rows, dtype=pl.UInt32))


def _shape(
    records: _Records,
    decoded: Decoded,
    delimiter: str,
    options: ReadOptions,
    width: int | None,
    names: tuple[str, ...] | None,
) -> RawTable:
    """Header, width, row errors and un-neutralised cells from the parsed records."""
    frame = records.frame
    notices = list(decoded.notices)
    has_header = options.header or _is_errors_csv_header(records, names)
    if has_header:
        if frame.height == 0:
            raise FileRejected("the file holds only blank lines; check that the export wrote data")
        header = [_str(c) for c in frame.row(0)[: records.first_width]]
        above = _rows_above_header(frame, header, options.header_test)
        if above:
            # The header is further down; what is above it (titles) is no data. Its
            # width is up to its last named column: a row longer is a cell too many.
            found = [_str(c) for c in frame.row(above)[: _span(frame)]]
            header = found[: _width(found)]
            notices.append(_skipped_notice(frame, above))
        frame = frame.slice(above + 1)
        if frame.height == 0:
            raise FileRejected(
                "the file has a header row but no data rows; check that the export wrote data"
            )
        # Excel exports keep columns that once held something: empty header, empty cells.
        while len(header) > 1 and header[-1] == "" and _empty(frame, len(header) - 1):
            header.pop()
    elif frame.height == 0:
        raise FileRejected("the file has no data rows, only blank lines")
    else:
        span = _span(frame)
        if width is None:
            width = span
            while width > 1 and _empty(frame, width - 1):
                width -= 1
        header = list(names) if names is not None else [f"c{i}" for i in range(width)]
    if frame.height > options.max_rows:
        raise FileRejected(
            f"the file has {frame.height:,} data rows, more than the {options.max_rows:,} "
            "allowed; split it or raise max_rows in the profile"
        )
    _check_columns(len(header), options, delimiter)
    return _table(frame, header, decoded, delimiter, options, has_header, tuple(notices))


def _table(
    frame: pl.DataFrame,
    header: list[str],
    decoded: Decoded,
    delimiter: str,
    options: ReadOptions,
    has_header: bool,
    notices: tuple[str, ...],
    *,
    last: bool = True,
) -> RawTable:
    """The table of a file's data records (or of a part of them, its `last` or not):
    cut to the header, their row errors found, their cells as written."""
    frame, row_errors, overflow = _fit(frame, len(header), delimiter, has_header)
    row_errors += _long_cells(frame, header, options.max_cell_chars, len(decoded.data))
    cut_row = None
    if last and frame.height and _ends_cut_short(decoded.data, delimiter, len(header)):
        cut_row = int(frame[ROW][-1])
        row_errors.append(
            RowError(
                cut_row,
                "",
                "the file ends in the middle of this row (it has fewer cells than the header "
                "and no line end): the export was probably cut short; send the whole file",
            )
        )
    if has_header and any(is_errors_header(h) for h in header):
        frame = frame.with_columns(undo_expr(pl.col(f"c{i}")) for i in range(len(header)))
        header = [undo(h) for h in header]
        overflow = {row: tuple(undo(c) for c in cells) for row, cells in overflow.items()}
    return RawTable(
        header=tuple(header),
        cells=frame,
        encoding=decoded.encoding,
        delimiter=delimiter,
        has_header=has_header,
        row_errors=tuple(sorted(row_errors, key=lambda e: e.row)),
        notices=notices,
        overflow=overflow,
        guessed_encoding=decoded.guessed,
        cut_row=cut_row,
    )


def _rows_above_header(
    frame: pl.DataFrame, first: list[str], test: Callable[[Sequence[str]], bool] | None
) -> int:
    """How many records come before the header: 0 when the first record is the header
    (or cannot be told from one); else the position of the first record among the
    next `HEADER_SEARCH_ROWS` that reads as the header, if one does."""
    if test is None or test(first):
        return 0
    for position, record in enumerate(frame.head(HEADER_SEARCH_ROWS + 1).iter_rows()):
        if position and test([_str(c) for c in record[:-1]]):
            return position
    return 0


def _skipped_notice(frame: pl.DataFrame, above: int) -> str:
    """What a job says of the records it skipped above the header."""
    rows = frame[ROW].head(above + 1).to_list()
    title = next((c for c in frame.row(0)[:-1] if c), "")
    shown = title if len(title) <= 60 else title[:57] + "..."
    which = f"row {rows[0]} was" if above == 1 else f"rows {rows[0]} to {rows[above - 1]} were"
    return f"the header is on row {rows[above]}, so {which} skipped ({shown!r})"


def _ends_cut_short(data: bytes, delimiter: str, width: int) -> bool:
    """Whether the file ends in the middle of a row: no line end after its last line,
    and that line has fewer cells than the header. (A last line holding an odd number of
    quotes closes a cell opened on an earlier line; its count says nothing.)"""
    if data.endswith((b"\n", b"\r")):
        return False
    start = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
    line = data[start:].decode("utf-8", errors="replace")
    if line.count('"') % 2 or not line.strip(WHITESPACE):
        return False  # a blank last line is a blank row, whatever row is above it
    cells = next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])
    return 0 < len(cells) < width


def _is_errors_csv_header(records: _Records, names: tuple[str, ...] | None) -> bool:
    """Whether a header-less file is an errors CSV coming back: its first record is the
    profile's headers plus `errors`, the header row `errors_csv` gives such a file.

    No data row reads like that (the key column would hold its own header), and without
    this the `errors` column would make every row one cell too long.
    """
    if names is None or records.frame.height == 0 or records.first_width != len(names) + 1:
        return False
    first = [_str(c) for c in records.frame.row(0)[: records.first_width]]
    return _errors_csv_record(first, names)


def _errors_csv_record(first: Sequence[str], names: Sequence[str]) -> bool:
    """Whether a header-less file's first record is the header an errors CSV gives it."""
    cells = [undo(c) for c in first]
    return (
        bool(cells)
        and is_errors_header(cells[-1])
        and [normalise_header(c) for c in cells[:-1]] == [normalise_header(n) for n in names]
    )


def _fit(
    frame: pl.DataFrame, width: int, delimiter: str, has_header: bool
) -> tuple[pl.DataFrame, list[RowError], dict[int, tuple[str, ...]]]:
    """Cut or pad the cells to `width` columns; rows that lose a non-empty cell are errors,
    and the cells they lose are kept apart (row -> cells past the header)."""
    span = _span(frame)
    cells = [f"c{i}" for i in range(width)]
    if span < width:
        padded = frame.with_columns(pl.lit("").alias(c) for c in cells[span:])
        return padded.select(*cells, ROW), [], {}
    errors: list[RowError] = []
    overflow: dict[int, tuple[str, ...]] = {}
    extra = [f"c{i}" for i in range(width, span)]
    if extra:
        against = f"the header has {width}" if has_header else f"the profile has {width} columns"
        for row in frame.filter(~_blank(extra)).iter_rows(named=True):
            count = max(i for i in range(span) if row[f"c{i}"]) + 1
            overflow[row[ROW]] = tuple(_str(row[f"c{i}"]) for i in range(width, count))
            errors.append(
                RowError(
                    row[ROW],
                    "",
                    f"row has {count} cells but {against}; "
                    f"a cell probably holds an unquoted {delimiter_name(delimiter)}",
                )
            )
    return frame.select(*cells, ROW), errors, overflow


def _long_cells(frame: pl.DataFrame, header: list[str], limit: int, size: int) -> list[RowError]:
    """Cells longer than `limit` characters; none can be when the whole file is shorter."""
    if size <= limit:
        return []
    errors: list[RowError] = []
    # One pass for every column's longest cell: almost never is any over the limit.
    longest = frame.select(pl.col(f"c{i}").str.len_bytes().max() for i in range(len(header)))
    for i, name in enumerate(header):
        if (longest.item(0, i) or 0) <= limit:
            continue
        column = pl.col(f"c{i}")
        long = frame.filter(column.str.len_bytes() > limit).filter(column.str.len_chars() > limit)
        for row, cell in long.select(ROW, f"c{i}").iter_rows():
            errors.append(
                RowError(
                    row,
                    name or f"column {i + 1}",
                    f"the cell has {len(cell):,} characters, more than the {limit:,} allowed",
                )
            )
    return errors


def _check_columns(
    count: int, options: ReadOptions, delimiter: str, *, row: int | None = None
) -> None:
    if count > options.max_columns:
        where = f"row {row} has" if row is not None else "the file has"
        raise FileRejected(
            f"{where} {count:,} columns, more than the {options.max_columns:,} allowed; "
            f"check that the delimiter ({delimiter_name(delimiter)}) is right"
        )


def _content_start(data: bytes) -> int:
    """Where the first line that is not blank starts (len(data) if there is none)."""
    found = _CONTENT.search(data)
    return len(data) if found is None else found.start()


#: What polars' `str.strip_chars()` takes off a cell (Unicode's White_Space), which
#: validation does to every cell: a row whose cells hold nothing else is blank.
WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _blank(cells: list[str]) -> pl.Expr:
    """True for a row whose `cells` are all empty or whitespace."""
    return pl.all_horizontal(pl.col(c).str.strip_chars().str.len_bytes() == 0 for c in cells)


def _empty(frame: pl.DataFrame, index: int) -> bool:
    column = f"c{index}"
    return column not in frame.columns or not (frame[column] != "").any()


def _span(frame: pl.DataFrame) -> int:
    return frame.width - 1


def _width(record: Sequence[str]) -> int:
    """Cells up to the last non-empty one: trailing empty cells are not columns."""
    for i in range(len(record) - 1, -1, -1):
        if record[i]:
            return i + 1
    return 0


def _str(cell: object) -> str:
    return "" if cell is None else str(cell)


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):,.1f} MB"
    return f"{count:,} bytes"


def sniff_header(
    data: bytes, options: ReadOptions, header_names: Sequence[str] | None = None
) -> tuple[str, ...] | None:
    """The header a file would be read with, from its first 64 KiB alone; None when that
    much is not text. Cheap, for deciding about a file before, or without, reading it
    whole (whether it is an errors CSV sent back; which columns to keep secret).

    A header-less file's header is the profile's (`header_names`), plus `errors` when its
    first record shows it is an errors CSV coming back.
    """
    try:
        decoded = decode(data[:SAMPLE_BYTES], options.encoding, options.fallback_encoding)
    except FileRejected:
        return None
    hinted, decoded = _without_sep_line(decoded)
    text = decoded.data.decode("utf-8", errors="replace")
    complete = len(data) <= SAMPLE_BYTES
    delimiter = options.delimiter
    if delimiter == "auto":
        width = None if options.header or header_names is None else len(header_names)
        delimiter = hinted or detect_delimiter(text, complete=complete, expected_columns=width)
    records = sample_records(text, delimiter, complete=True)
    first = records[0] if records else []
    if options.header:
        test = options.header_test
        if test is not None and not test(first):
            first = next((r for r in records[1 : HEADER_SEARCH_ROWS + 1] if test(r)), first)
        return tuple(undo(cell) for cell in first)
    names = tuple(header_names or ())
    return (*names, undo(first[-1])) if _errors_csv_record(first, names) else names
