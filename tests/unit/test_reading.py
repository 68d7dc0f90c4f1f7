"""Reading files: encodings, dialects, row numbers, and hostile input that must only be rejected."""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import polars as pl
import pytest
import zstandard
from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd.core.errors_csv import render_errors_csv
from syncd.core.formula import neutralise, undo, undo_expr
from syncd.core.reading import WHITESPACE, ReadOptions, _parse_structural, read_table, sniff_header
from syncd.core.table import ROW, RawTable, RowError
from syncd.errors import FileRejected

AUTO = ReadOptions()


def _rows(table: RawTable) -> list[list[str]]:
    cells = [f"c{i}" for i in range(len(table.header))]
    return [list(r) for r in table.cells.select(cells).iter_rows()]


def _numbers(table: RawTable) -> list[int]:
    return table.cells[ROW].to_list()


def _rejected(data: bytes, options: ReadOptions = AUTO, **kwargs: object) -> str:
    with pytest.raises(FileRejected) as caught:
        read_table(data, options, **kwargs)  # type: ignore[arg-type]
    return caught.value.message


def _csv(
    rows: list[list[str]],
    delimiter: str = ",",
    lineterminator: str = "\r\n",
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=lineterminator, quoting=quoting)
    writer.writerows(rows)
    return out.getvalue()


# Encodings


def test_plain_utf8_is_read_as_utf8_with_accents_intact() -> None:
    """A UTF-8 file without BOM reads as utf-8 and keeps non-ASCII cells as written."""
    table = read_table("Name,City\nZoë,Kraków\n".encode(), AUTO)
    assert (table.encoding, table.header, _rows(table)) == (
        "utf-8",
        ("Name", "City"),
        [["Zoë", "Kraków"]],
    )
    assert table.notices == ()


def test_a_utf8_bom_is_reported_and_kept_out_of_the_first_header() -> None:
    """The UTF-8 BOM decides the encoding (utf-8-sig) and does not stick to the header."""
    table = read_table(b"\xef\xbb\xbfEmail,Name\na@x.com,Jos\xc3\xa9\n", AUTO)
    assert table.encoding == "utf-8-sig"
    assert table.header == ("Email", "Name")
    assert _rows(table) == [["a@x.com", "José"]]


@pytest.mark.parametrize(
    ("codec", "name"), [("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")]
)
def test_excel_unicode_text_with_a_utf16_bom_and_tabs_is_read(codec: str, name: str) -> None:
    """UTF-16 with a BOM (Excel's "Unicode text") is decoded, and its tabs are detected."""
    text = "Email\tName\r\na@x.com\tZoë\r\n"
    bom = "\ufeff".encode(codec)
    table = read_table(bom + text.encode(codec), AUTO)
    assert (table.encoding, table.delimiter) == (name, "\t")
    assert _rows(table) == [["a@x.com", "Zoë"]]


def test_a_utf32_bom_is_honoured() -> None:
    """UTF-32 LE with its BOM is read too."""
    table = read_table("\ufeffa,b\n1,ü\n".encode("utf-32-le"), AUTO)
    assert (table.encoding, _rows(table)) == ("utf-32-le", [["1", "ü"]])


def test_utf16_without_a_bom_is_recognised_by_its_nul_bytes_with_a_notice() -> None:
    """Every other byte NUL in the first KB means UTF-16; the report says it was guessed."""
    table = read_table("Email\tName\na@x.com\tZoë\n".encode("utf-16-le"), AUTO)
    assert table.encoding == "utf-16-le"
    assert _rows(table) == [["a@x.com", "Zoë"]]
    assert "no byte order mark" in table.notices[0]


def test_a_cp1252_file_falls_back_with_a_notice() -> None:
    """Invalid UTF-8 is decoded with the fallback codec, and a notice says so."""
    table = read_table("Name;Note\nZoë;€5\n".encode("cp1252"), AUTO)
    assert table.encoding == "cp1252"
    assert _rows(table) == [["Zoë", "€5"]]
    assert table.notices[0].startswith("decoded as cp1252: the file is not valid UTF-8")


def test_the_fallback_codec_is_configurable() -> None:
    """`fallback_encoding` names the codec used when UTF-8 fails."""
    data = "a,b\n1,Ω\n".encode("iso8859-7")
    table = read_table(data, ReadOptions(fallback_encoding="iso8859-7"))
    assert (table.encoding, _rows(table)) == ("iso8859-7", [["1", "Ω"]])


def test_a_configured_encoding_is_used_strictly() -> None:
    """A configured codec decodes the file even when the bytes would be valid UTF-8."""
    data = "a,b\n1,Ã©\n".encode()  # UTF-8 bytes of mojibake read back as latin-1
    table = read_table(data, ReadOptions(encoding="latin-1"))
    assert table.encoding == "latin-1"
    assert _rows(table) == [["1", "Ã\x83Â©"]]


def test_a_configured_utf8_marks_invalid_bytes_instead_of_guessing() -> None:
    """Configured UTF-8 never falls back: each invalid byte stands as a lost byte in its
    cell (for validation to refuse that row), and a notice says where the first was."""
    table = read_table("a,b\n1,Zoë\n".encode("cp1252"), ReadOptions(encoding="utf-8"))
    assert table.encoding == "utf-8"
    assert not table.guessed_encoding
    assert _rows(table) == [["1", "Zo\U0010ffeb"]]
    assert "byte 0xEB at offset 8, line 2" in table.notices[0]


def test_a_utf8_bom_with_invalid_bytes_marks_them_not_guesses() -> None:
    """A UTF-8 BOM says the file is UTF-8; invalid bytes are marked, never decoded as cp1252."""
    table = read_table(b"\xef\xbb\xbfa,b\n1,\xe9\n", AUTO)
    assert (table.encoding, _rows(table)) == ("utf-8-sig", [["1", "\U0010ffe9"]])


def test_a_file_neither_utf8_nor_the_fallback_is_rejected() -> None:
    """Bytes cp1252 leaves undefined (0x81) make the file unreadable, with advice."""
    message = _rejected(b"a,b\n1,\x81\x8d\n")
    assert "neither as UTF-8" in message
    assert "cp1252" in message
    assert "CSV UTF-8" in message


def test_an_unknown_configured_encoding_is_rejected_with_examples() -> None:
    """A codec name Python does not know is explained, not a crash."""
    assert "not a known encoding" in _rejected(b"a\n1\n", ReadOptions(encoding="utf-9"))


def test_a_configured_utf16_that_does_not_decode_is_rejected() -> None:
    """An odd number of bytes cannot be UTF-16; the message says what to do."""
    message = _rejected(b"a,b\n1,2\n\n", ReadOptions(encoding="utf-16-le"))
    assert "cannot be read as utf-16-le" in message


# Delimiters


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_read_when_configured(delimiter: str) -> None:
    """Each of the four delimiters splits cells when the profile names it."""
    text = _csv([["Email", "Name", "Role"], ["a@x.com", "Ann", "User"]], delimiter)
    table = read_table(text.encode(), ReadOptions(delimiter=delimiter))
    assert table.delimiter == delimiter
    assert _rows(table) == [["a@x.com", "Ann", "User"]]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(delimiter: str) -> None:
    """With "auto", the delimiter giving a consistent column count is picked."""
    text = _csv([["Email", "Name", "Role"], ["a@x.com", "Ann", "User"], ["b@x.com", "Bo", "Admin"]])
    table = read_table(text.replace(",", delimiter).encode(), AUTO)
    assert table.delimiter == delimiter
    assert table.header == ("Email", "Name", "Role")


def test_detection_ignores_delimiters_inside_quoted_cells() -> None:
    """Commas inside quotes do not count, so a semicolon file with quoted commas is ';'."""
    data = b'Name;Note\n"Smith, J";"a, b, c, d"\n"Lee, K";"e, f"\n'
    table = read_table(data, AUTO)
    assert table.delimiter == ";"
    assert _rows(table) == [["Smith, J", "a, b, c, d"], ["Lee, K", "e, f"]]


def test_european_excel_semicolons_win_over_decimal_commas() -> None:
    """A ';' file whose numbers use decimal commas is still read as ';'."""
    data = b"Name;Amount;Rate\nAnn;1,5;2,25\nBo;3;4,75\n"
    assert read_table(data, AUTO).delimiter == ";"


_CELL = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)


@settings(max_examples=150)
@given(
    header=st.lists(
        st.text("abcdefgh", min_size=1, max_size=5), min_size=1, max_size=4, unique=True
    ),
    cells=st.lists(st.lists(_CELL, min_size=4, max_size=4), min_size=1, max_size=5),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    eol=st.sampled_from(["\r\n", "\n"]),
    spelling=st.sampled_from(["sep={}", "SEP={}", '"sep={}"', "Sep={}"]),
    bom=st.booleans(),
)
def test_an_excel_sep_line_names_the_delimiter_and_is_no_row(
    header: list[str], cells: list[list[str]], delimiter: str, eol: str, spelling: str, bom: bool
) -> None:
    """A file that starts with Excel's `sep=X` line reads as the same file without it
    read with delimiter X: the same header, cells and row numbers (the header is row 1,
    as Excel shows it), whatever the cells hold."""
    rows = [
        header,
        *(
            [*row[: len(header) - 1], row[-1] if row[-1].strip(WHITESPACE) else "x"]
            for row in cells
        ),
    ]
    body = _csv(rows, delimiter, eol).encode()
    with_line = (codecs.BOM_UTF8 if bom else b"") + (spelling.format(delimiter) + eol).encode()
    try:
        expected = read_table(body, ReadOptions(delimiter=delimiter))
    except FileRejected as rejected:
        refused = rejected.message
    else:
        refused = None
    if refused is not None:
        assert _rejected(with_line + body) == refused
        return
    table = read_table(with_line + body, AUTO)
    assert table.delimiter == delimiter
    assert table.header == expected.header
    assert _rows(table) == _rows(expected)
    assert _numbers(table) == _numbers(expected)
    assert table.row_errors == expected.row_errors
    assert sniff_header(with_line + body, AUTO) == expected.header


def test_a_sep_line_decides_what_the_cells_alone_would_not() -> None:
    """`a,b;c` splits evenly on ',' and on ';': the sep line says which."""
    table = read_table(b"sep=;\na,b;c\n1,2;3\n", AUTO)
    assert (table.delimiter, table.header, _rows(table)) == (";", ("a,b", "c"), [["1,2", "3"]])


def test_a_profile_delimiter_wins_over_a_sep_line_which_is_still_no_row() -> None:
    table = read_table(b"sep=;\r\nEmail,Name\r\na@x.com,Ann\r\n", ReadOptions(delimiter=","))
    assert (table.header, _rows(table), _numbers(table)) == (
        ("Email", "Name"),
        [["a@x.com", "Ann"]],
        [2],
    )


def test_a_cp1252_file_with_a_sep_line_is_read() -> None:
    data = "sep=;\r\nE-Mail;Nachname\r\nj@x.com;Müller\r\n".encode("cp1252")
    table = read_table(data, AUTO)
    assert (table.encoding, table.header, _rows(table)) == (
        "cp1252",
        ("E-Mail", "Nachname"),
        [["j@x.com", "Müller"]],
    )


def test_a_file_of_only_a_sep_line_holds_no_data() -> None:
    assert "holds only blank lines" in _rejected(b"sep=,\r\n")
    assert "holds only blank lines" in _rejected(b"sep=;")


def test_a_sep_line_further_down_is_data() -> None:
    """Excel honours the line only as the file's first; anywhere else it is a cell."""
    table = read_table(b"Email\nsep=;\n", AUTO)
    assert _rows(table) == [["sep=;"]]


def _names_email(record: Sequence[str]) -> bool:
    return "Email" in record


_FINDS_EMAIL = ReadOptions(header_test=_names_email)


@settings(max_examples=150)
@given(
    titles=st.lists(
        st.lists(st.text("Report 2026-12 by HR", min_size=1, max_size=12), min_size=1, max_size=3),
        min_size=1,
        max_size=4,
    ),
    blank=st.booleans(),
    others=st.lists(st.text("abcdefgh", min_size=1, max_size=5), max_size=3, unique=True),
    cells=st.lists(st.lists(_CELL, min_size=4, max_size=4), min_size=1, max_size=5),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_title_rows_above_the_header_are_skipped_and_still_counted(
    titles: list[list[str]], blank: bool, others: list[str], cells: list[list[str]], delimiter: str
) -> None:
    """A file with title rows above its header (what report exports write) reads as the
    same file without them: the same header and cells, with row numbers that still count
    the title rows (row 12 is row 12 in the spreadsheet), and a notice naming them."""
    header = ["Email", *others]
    rows = [
        header,
        *(
            [*row[: len(header) - 1], row[-1] if row[-1].strip(WHITESPACE) else "x"]
            for row in cells
        ),
    ]
    body = _csv(rows, delimiter).encode()
    above = _csv(titles, delimiter) + ("\r\n" if blank else "")
    expected = read_table(body, ReadOptions(delimiter=delimiter))
    table = read_table(above.encode() + body, replace(_FINDS_EMAIL, delimiter=delimiter))
    shift = len(titles) + blank
    assert table.header == expected.header
    assert _rows(table) == _rows(expected)
    assert _numbers(table) == [n + shift for n in _numbers(expected)]
    assert f"the header is on row {1 + shift}" in table.notices[-1]
    assert sniff_header(above.encode() + body, replace(_FINDS_EMAIL, delimiter=delimiter)) == (
        expected.header
    )


def test_without_a_header_in_reach_the_first_row_stays_the_header() -> None:
    """No row among the first ones names the key column: the first row is the header (and
    validation says the key column is missing), as without a header test."""
    data = b"Name,Role\nAnn,User\n" + b"Bo,User\n" * 30 + b"Email,Name\n"
    assert read_table(data, _FINDS_EMAIL).header == ("Name", "Role")
    assert sniff_header(data, _FINDS_EMAIL) == ("Name", "Role")
    far = b"Title\n" * 21 + b"Email,Name\na@x.com,Ann\n"
    assert read_table(far, _FINDS_EMAIL).header == ("Title",)


def test_a_first_row_that_is_the_header_is_taken_whatever_follows() -> None:
    table = read_table(b"Email,Name\nEmail,Bo\n", _FINDS_EMAIL)
    assert (table.header, _rows(table), table.notices) == (("Email", "Name"), [["Email", "Bo"]], ())


def test_a_tie_goes_to_the_earlier_delimiter_in_the_list() -> None:
    """When ',' and ';' both split every record evenly, ',' wins."""
    assert read_table(b"a,b;c\n1,2;3\n", AUTO).delimiter == ","


def test_a_single_column_file_is_fine() -> None:
    """A file no delimiter splits is one column, read with ','."""
    table = read_table(b"Email\na@x.com\nb@x.com\n", AUTO)
    assert (table.delimiter, table.header, _rows(table)) == (
        ",",
        ("Email",),
        [["a@x.com"], ["b@x.com"]],
    )


def test_a_headerless_file_prefers_the_delimiter_giving_the_profile_width() -> None:
    """Without a header, the profile's column count breaks what the counts alone cannot."""
    data = b"a@x.com;Ann,Lee;x\nb@x.com;Bo,Li;y\n"
    by_counts = read_table(data, ReadOptions(header=False))
    by_profile = read_table(data, ReadOptions(header=False), column_count=3)
    assert (by_counts.delimiter, by_profile.delimiter) == (",", ";")


# Line ends and quoting


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"])
def test_crlf_lf_and_bare_cr_line_ends_read_alike(end: str) -> None:
    """Windows, Unix and old-Mac line ends give the same cells and row numbers."""
    text = end.join(["Email,Name", "a@x.com,Ann", "", "b@x.com,Bo"]) + end
    table = read_table(text.encode(), AUTO)
    assert _rows(table) == [["a@x.com", "Ann"], ["b@x.com", "Bo"]]
    assert _numbers(table) == [2, 4]


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"])
def test_quoted_newlines_stay_in_their_cell_as_written(end: str) -> None:
    """A quoted line break is part of the cell, byte for byte, and adds no row."""
    text = f'Email,Address{end}a@x.com,"1 Main St{end}Springfield"{end}b@x.com,x{end}'
    table = read_table(text.encode(), AUTO)
    assert _rows(table) == [["a@x.com", f"1 Main St{end}Springfield"], ["b@x.com", "x"]]
    assert _numbers(table) == [2, 3]


def test_quoted_delimiters_and_doubled_quotes_are_unescaped() -> None:
    """`"a, b"` keeps its comma, `""` inside quotes is one quote."""
    table = read_table(b'Name,Nick\n"Lee, Ann","The ""Boss"""\n', AUTO)
    assert _rows(table) == [["Lee, Ann", 'The "Boss"']]


def test_cells_are_kept_exactly_as_received() -> None:
    """Spaces around cells are not trimmed and empty cells stay empty strings."""
    table = read_table(b"a,b,c\n  x , ,\n", AUTO)
    assert _rows(table) == [["  x ", " ", ""]]


def test_a_stray_quote_inside_an_unquoted_cell_is_kept() -> None:
    """`5" screen` is a cell with a quote in it, not a broken file."""
    table = read_table(b'Item,Size\nMonitor,27" screen\nCable,2m\n', AUTO)
    assert _rows(table) == [["Monitor", '27" screen'], ["Cable", "2m"]]


# Rows, numbering, widths


def test_blank_rows_are_dropped_but_still_counted() -> None:
    """Row numbers are spreadsheet rows: header is 1, blank rows keep their numbers."""
    table = read_table(b"Email\n\na@x.com\n\n\nb@x.com\n", AUTO)
    assert _rows(table) == [["a@x.com"], ["b@x.com"]]
    assert _numbers(table) == [3, 6]
    assert table.cells.schema[ROW] == pl.UInt32


def test_rows_of_only_empty_cells_count_as_blank() -> None:
    """Excel writes empty rows as `,,`; they are blank rows too."""
    table = read_table(b"a,b,c\n1,2,3\n,,\n4,5,6\n", AUTO)
    assert _numbers(table) == [2, 4]


def test_whitespace_is_what_polars_strips_off_a_cell() -> None:
    """The structural pass and the fast one call the same rows blank: `WHITESPACE` is
    exactly what `str.strip_chars()` (which validation runs on every cell) takes off."""
    every = [chr(i) for i in range(0x110000) if not 0xD800 <= i <= 0xDFFF]
    stripped = pl.Series(every).str.strip_chars().str.len_bytes() == 0
    assert {ch for ch, blank in zip(every, stripped, strict=True) if blank} == set(WHITESPACE)


@settings(max_examples=150)
@given(
    cells=st.lists(st.lists(_CELL, min_size=3, max_size=3), min_size=1, max_size=5),
    inserted=st.lists(
        st.tuples(
            st.integers(0, 5), st.lists(st.text(WHITESPACE, max_size=3), min_size=1, max_size=4)
        ),
        min_size=1,
        max_size=3,
    ),
    structural=st.booleans(),
)
def test_rows_of_only_whitespace_are_blank_rows(
    cells: list[list[str]], inserted: list[tuple[int, list[str]]], structural: bool
) -> None:
    """Rows whose cells hold nothing but whitespace (an export that pads its empty rows)
    read as the blank rows they are: the file reads as it does without them, its rows
    keeping their numbers, on either pass (a bare CR line end takes the structural one)."""
    rows = [["Email", "Name", "Note"]]
    rows += ([*row[:2], row[2] if row[2].strip(WHITESPACE) else "x"] for row in cells)
    padded: list[list[str]] = [rows[0]]
    numbers: list[int] = []
    for n, row in enumerate(rows[1:]):
        for at, blank in inserted:
            if at == n:
                padded.append(blank)
        padded.append(row)
        numbers.append(len(padded))
    eol = "\r" if structural else "\r\n"
    options = ReadOptions(delimiter=",")
    expected = read_table(_csv(rows, lineterminator=eol, quoting=csv.QUOTE_ALL).encode(), options)
    table = read_table(_csv(padded, lineterminator=eol, quoting=csv.QUOTE_ALL).encode(), options)
    assert _rows(table) == _rows(expected)
    assert _numbers(table) == [numbers[_numbers(expected).index(n)] for n in _numbers(expected)]


def test_blank_lines_before_the_header_are_skipped_and_counted() -> None:
    """The header is the first non-blank record; rows keep their spreadsheet numbers."""
    table = read_table(b"\r\n\r\nEmail,Name\r\na@x.com,Ann\r\n", AUTO)
    assert table.header == ("Email", "Name")
    assert _numbers(table) == [4]


def test_a_quoted_newline_does_not_shift_later_row_numbers() -> None:
    """A record spanning three lines is one row; the next record is the next row."""
    table = read_table(b'a,b\n1,"x\ny\nz"\n2,w\n', AUTO)
    assert _numbers(table) == [2, 3]


def test_short_rows_are_padded_with_empty_cells() -> None:
    """A row with fewer cells than the header has empty trailing cells, no error."""
    table = read_table(b"a,b,c\n1\n2,3\n", AUTO)
    assert _rows(table) == [["1", "", ""], ["2", "3", ""]]
    assert table.row_errors == ()


def test_trailing_empty_columns_from_excel_are_dropped() -> None:
    """Empty trailing header cells over empty columns are not columns."""
    table = read_table(b"Email,Name,,\r\na@x.com,Ann,,\r\nb@x.com,Bo,,\r\n", AUTO)
    assert table.header == ("Email", "Name")
    assert _rows(table) == [["a@x.com", "Ann"], ["b@x.com", "Bo"]]


def test_an_empty_header_cell_over_data_is_kept() -> None:
    """An unnamed column that holds data stays, for validation to report."""
    table = read_table(b"Email,\na@x.com,x\n", AUTO)
    assert table.header == ("Email", "")
    assert _rows(table) == [["a@x.com", "x"]]


def test_a_longer_row_with_only_empty_extra_cells_is_fine() -> None:
    """Extra cells that are all empty are trailing empty columns, not an error."""
    table = read_table(b"a,b\n1,2,,\n3,4\n", AUTO)
    assert _rows(table) == [["1", "2"], ["3", "4"]]
    assert table.row_errors == ()


def test_a_longer_row_with_data_in_extra_cells_is_a_row_error_and_is_cut() -> None:
    """A row with more cells than the header gets a row error naming the likely cause."""
    table = read_table(b"a,b,c\n1,2,3\nLee, Ann,x,y\n4,5,6\n", AUTO)
    assert _rows(table) == [["1", "2", "3"], ["Lee", " Ann", "x"], ["4", "5", "6"]]
    assert table.row_errors == (
        RowError(
            3, "", "row has 4 cells but the header has 3; a cell probably holds an unquoted ','"
        ),
    )


def test_a_ragged_tab_file_names_the_tab() -> None:
    """The row error says "tab", not an invisible character."""
    table = read_table(b"a\tb\n1\t2\t3\n", ReadOptions(delimiter="\t"))
    assert table.row_errors[0].message.endswith("a cell probably holds an unquoted tab")


# Header-less files


def test_a_headerless_file_numbers_rows_from_one() -> None:
    """With `header` off every record is data and the first one is row 1."""
    table = read_table(b"a@x.com,Ann\n\nb@x.com,Bo\n", ReadOptions(header=False), column_count=2)
    assert table.header == ("c0", "c1")
    assert not table.has_header
    assert _rows(table) == [["a@x.com", "Ann"], ["b@x.com", "Bo"]]
    assert _numbers(table) == [1, 3]


def test_a_headerless_file_takes_the_profile_headers() -> None:
    """`header_names` become the header, and short rows are padded to their width."""
    table = read_table(b"a@x.com\n", ReadOptions(header=False), header_names=["Email", "Name"])
    assert table.header == ("Email", "Name")
    assert _rows(table) == [["a@x.com", ""]]


def test_a_headerless_row_wider_than_the_profile_is_a_row_error() -> None:
    """Cells beyond the profile's columns are reported against the profile."""
    table = read_table(b"a,b\nc,d,e\n", ReadOptions(header=False), column_count=2)
    assert _rows(table) == [["a", "b"], ["c", "d"]]
    assert table.row_errors == (
        RowError(
            2,
            "",
            "row has 3 cells but the profile has 2 columns; a cell probably holds an unquoted ','",
        ),
    )


def test_a_headerless_file_without_a_profile_width_takes_the_widest_row() -> None:
    """With no width given, the widest row decides, without its empty trailing columns."""
    table = read_table(b"a,b,\nc,d,e,\n", ReadOptions(header=False))
    assert table.header == ("c0", "c1", "c2")
    assert _rows(table) == [["a", "b", ""], ["c", "d", "e"]]


# Errors CSV coming back


def test_an_errors_column_undoes_formula_neutralisation_everywhere() -> None:
    """In a file with an `errors` column, each `'`-prefixed formula cell loses one `'`."""
    data = b"Phone,Note,Errors\n'+15551234,''=x,'-oops\n'plain,'@home,\n"
    table = read_table(data, AUTO)
    assert _rows(table) == [["+15551234", "'=x", "-oops"], ["'plain", "@home", ""]]


def test_without_an_errors_column_apostrophes_are_left_alone() -> None:
    """Ordinary files keep their cells as received, `'=` included."""
    table = read_table(b"Phone,Note\n'+15551234,x\n", AUTO)
    assert _rows(table) == [["'+15551234", "x"]]


def test_an_errors_csv_reads_back_to_the_cells_it_was_written_from() -> None:
    """Writing the errors CSV and reading it back gives the original cells: lossless."""
    original = ["=SUM(A1)", "'=quoted", "+1", "-", "@x", "\tt", "plain", "'"]
    header = [f"h{i}" for i in range(len(original))]
    source = read_table(_csv([header, original]).encode(), AUTO)
    written = render_errors_csv(source, [RowError(2, "h0", "bad")])
    back = read_table(written, AUTO)
    assert back.header[:-1] == tuple(header)
    assert _rows(back)[0][:-1] == original


@given(st.text())
def test_neutralising_then_reading_back_is_the_identity(cell: str) -> None:
    """The vectorised undo used by reading agrees with `undo(neutralise(cell))`."""
    frame = pl.DataFrame({"c": [neutralise(cell)]})
    assert frame.select(undo_expr(pl.col("c"))).item() == undo(neutralise(cell)) == cell


# File-level rejections and hostile input


def test_an_empty_file_is_rejected() -> None:
    """Zero bytes is a file-level problem with advice."""
    assert "empty (0 bytes)" in _rejected(b"")


def test_a_file_of_just_a_bom_is_rejected_as_empty() -> None:
    """A BOM and nothing else is empty too."""
    assert "nothing but a byte order mark" in _rejected(b"\xef\xbb\xbf")
    assert "nothing but a byte order mark" in _rejected(b"\xff\xfe")


def test_a_file_of_only_blank_lines_is_rejected() -> None:
    """Line ends and nothing else: no header, no rows."""
    assert "only blank lines" in _rejected(b"\r\n\r\n\n")
    assert "only blank lines" in _rejected(b",,\n,,\n")


def test_a_header_without_data_rows_is_rejected() -> None:
    """A header and blank lines have no data to apply."""
    assert "header row but no data rows" in _rejected(b"Email,Name\r\n\r\n")


def test_an_excel_workbook_is_recognised_and_explained() -> None:
    """An .xlsx (a ZIP with xl/ parts) is named as such, with how to save it as CSV."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as workbook:
        workbook.writestr("[Content_Types].xml", "<Types/>")
        workbook.writestr("xl/workbook.xml", "<workbook/>")
    message = _rejected(buffer.getvalue())
    assert "this looks like an Excel workbook (.xlsx); save it as CSV" in message


@given(st.binary(max_size=2_000), st.sampled_from(["gzip", "zstd"]))
def test_a_compressed_file_is_named_and_refused_whatever_it_holds(data: bytes, kind: str) -> None:
    """gzip or zstd, whatever was compressed (a CSV, nothing, noise): refused as that
    archive, with what to do, never read as text nor a crash."""
    packed = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    assert f"this is a {kind} archive, not a CSV file; decompress it first" in _rejected(packed)


def test_an_old_xls_workbook_is_recognised() -> None:
    """The OLE2 signature of .xls files is named as an old Excel workbook."""
    assert "old Excel workbook (.xls)" in _rejected(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64
    )


def _any_case(text: str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in text)).map("".join)


#: How a page or an XML document may start, the start of what syncd says of it, and what
#: it tells the sender to do.
_HTML = ("this is a web page (HTML), not a CSV file", "File > Save As > CSV UTF-8")
_MARKUP = [
    ("<!doctype html>", *_HTML),
    ("<html>", *_HTML),
    ('<html xmlns:x="urn:x">', *_HTML),
    ("<table>", *_HTML),
    (
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>',
        "this looks like an Excel XML spreadsheet",
        "File > Save As > CSV UTF-8",
    ),
    ('<?xml version="1.0"?><people>', "this is an XML document, not a CSV file", "export"),
]


@given(
    bom=st.booleans(),
    blank=st.text(alphabet=" \t\r\n", max_size=6),
    markup=st.sampled_from(_MARKUP).flatmap(
        lambda m: st.tuples(_any_case(m[0]), st.just(m[1]), st.just(m[2]))
    ),
)
def test_a_web_page_or_xml_saved_as_csv_is_named_as_such(
    bom: bool, blank: str, markup: tuple[str, str, str]
) -> None:
    """An "Excel" export that is an HTML table or Excel's XML Spreadsheet 2003, or any
    other XML, in any case, after a BOM or blank lines or neither, is named for what it
    is, with how to get a CSV, instead of being read as a header without data rows."""
    tag, said, advice = markup
    head = (codecs.BOM_UTF8 if bom else b"") + (blank + tag).encode()
    message = _rejected(head + b"<tr><td>E1</td><td>ann@example.com</td></tr></table>\n")
    assert message.startswith(said)
    assert advice in message


def test_a_csv_whose_first_cell_holds_markup_is_read() -> None:
    """Only a file that starts as a page does: a cell holding a tag is a cell."""
    table = read_table(b"Notes,Email\n<b>new</b>,ann@example.com\n", ReadOptions())
    assert table.header == ("Notes", "Email")


def test_nul_bytes_in_a_utf8_file_mean_it_is_not_text() -> None:
    """NUL bytes outside UTF-16 are binary data, rejected with advice."""
    assert "not text" in _rejected(b"a,b\n1,\x00\x00\x002\n")


#: Reads a file of 2 million blank lines between two rows, in a process of its own, and
#: prints the rows read and how much the read added to the process's peak memory. The peak
#: is the kernel's VmHWM of this process's own memory: ru_maxrss would start at the peak of
#: the pytest worker it was spawned from, and hide a read smaller than that.
_BLANK_LINES_READER = """
import re
from pathlib import Path
from syncd.core.reading import WHITESPACE, ReadOptions, _parse_structural, read_table, sniff_header
def peak_kib():
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
header = ",".join(f"Column {i}" for i in range(12)).encode()
data = header + b"\\r\\na@x.com" + b",x" * 11 + b"\\r\\n" * 2_000_001 + b"b@x.com,y\\r\\n"
before = peak_kib()
table = read_table(data, ReadOptions())
after = peak_kib()
print(table.cells["__row__"].to_list(), (after - before) // 1024)
"""


def test_millions_of_blank_lines_cost_no_memory_of_their_own() -> None:
    """2 million blank lines (4 MB) between two rows: read with their row numbers
    counted, without holding a row for each (polars would: 16 bytes a cell, some 400 MB
    for twelve columns)."""
    done = subprocess.run(
        [sys.executable, "-c", _BLANK_LINES_READER.replace("__row__", ROW)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows, grown_mib = done.stdout.rsplit(" ", 1)
    assert rows == "[2, 2000003]"
    assert int(grown_mib) < 100, done.stdout


def test_unbalanced_quotes_are_rejected_naming_the_row_where_the_quote_opens() -> None:
    """An opening quote that never closes names its row, counted as spreadsheet rows."""
    message = _rejected(b'Email,Name\na@x.com,Ann\n\nb@x.com,"Bo\nc@x.com,Cy\n')
    assert "unbalanced quotes" in message
    assert "opens in row 4" in message


def test_a_file_over_max_bytes_is_rejected() -> None:
    """The size cap is checked before anything else is done."""
    message = _rejected(b"a\n" + b"x\n" * 100, ReadOptions(max_bytes=100))
    assert "more than the 100 bytes allowed" in message


def test_a_file_over_max_rows_is_rejected() -> None:
    """More data rows than the cap reject the file, counting rows not lines."""
    assert read_table(b'a\n"1\n1"\n2\n', ReadOptions(max_rows=2)).rows == 2
    assert "3 data rows, more than the 2 allowed" in _rejected(
        b"a\n1\n2\n3\n", ReadOptions(max_rows=2)
    )


def test_ten_thousand_columns_are_rejected_as_a_likely_wrong_delimiter() -> None:
    """A header wider than max_columns is rejected before parsing the whole file."""
    header = ",".join(f"h{i}" for i in range(10_000))
    message = _rejected(f"{header}\n{',' * 9_999}x\n".encode())
    assert "10,000 columns, more than the 1,000 allowed" in message
    assert "check that the delimiter (',') is right" in message


def test_a_wide_row_deep_in_the_file_is_rejected_too() -> None:
    """A row over max_columns after the sampled start is caught by the structural pass."""
    filler = "".join(f"{i},x\n" for i in range(20_000))
    data = f"a,b\n{filler}{'y,' * 2_000}\n".encode()
    assert f"row {20_002} has 2,000 columns" in _rejected(data)


def test_a_ten_megabyte_cell_is_a_row_error_not_a_crash() -> None:
    """A cell over max_cell_chars fails its row with the column named."""
    data = b"Email,Bio\na@x.com,ok\nb@x.com," + b"x" * 10_000_000 + b"\n"
    table = read_table(data, AUTO)
    assert table.rows == 2
    assert table.row_errors == (
        RowError(3, "Bio", "the cell has 10,000,000 characters, more than the 1,000,000 allowed"),
    )


def test_a_huge_cell_in_a_malformed_file_survives_the_structural_pass() -> None:
    """Cells past the csv module's own field limit do not crash the slow path."""
    data = b'a,b\n1,"' + b"y" * 300_000 + b'"\n2,3,4\n'
    table = read_table(data, ReadOptions(max_cell_chars=1000))
    assert [e.row for e in table.row_errors] == [2, 3]


@settings(max_examples=300)
@given(st.binary(max_size=400))
@example(b"(\xb5/\xfd")  # zstd's magic: polars would decompress it, and failed
@example(b"x\x9c,a\r\n")  # zlib's
def test_arbitrary_bytes_are_read_or_rejected_never_crash(data: bytes) -> None:
    """Whatever the bytes, reading returns a table or raises FileRejected."""
    with contextlib.suppress(FileRejected):
        read_table(data, AUTO)


_PIECES = [
    b",",
    b";",
    b"\t",
    b"|",
    b'"',
    b'""',
    b"\r",
    b"\n",
    b"\r\n",
    b"a",
    b" ",
    b"\xc3\xa9",
    b"\xff",
    b"\x00",
    b"'=",
    b"errors",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_PIECES), max_size=60).map(b"".join), st.booleans())
def test_csv_shaped_garbage_is_read_or_rejected_never_crash(data: bytes, header: bool) -> None:
    """Quotes, delimiters and line ends in any order only ever raise FileRejected."""
    try:
        table = read_table(data, ReadOptions(header=header))
    except FileRejected:
        return
    assert table.rows > 0
    assert table.cells.width == len(table.header) + 1


# Round trip

_CELL = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
_NAME = st.text("ABCDEFGHIJ klmnop_", min_size=1, max_size=8).filter(
    lambda s: s.strip().lower() != "errors"
)


@st.composite
def _files(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    width = draw(st.integers(1, 5))
    # A header of nothing but spaces is a blank line, skipped like any other.
    named = st.lists(_NAME, min_size=width, max_size=width).filter(lambda h: any(map(str.strip, h)))
    header = draw(named)
    row = st.lists(_CELL, min_size=width, max_size=width)
    rows = draw(st.lists(row.filter(lambda r: any(c.strip(WHITESPACE) for c in r)), max_size=8))
    return header, rows


@settings(max_examples=200)
@given(
    _files(),
    st.sampled_from([",", ";", "\t", "|"]),
    st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\r\n", csv.QUOTE_ALL), ("\n", csv.QUOTE_ALL)]),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
    st.booleans(),
)
def test_cells_written_by_csv_writer_read_back_unchanged(
    file: tuple[list[str], list[list[str]]],
    delimiter: str,
    ending: tuple[str, Literal[0, 1, 2, 3]],
    encoding: str,
    malformed: bool,
) -> None:
    """Any text csv.writer writes reads back cell for cell, on the fast and the slow path.

    (With a "\n" line end csv.writer leaves a lone "\r" unquoted, which no reader can
    tell from a line end; such files are written with every cell quoted.)
    """
    header, rows = file
    end, quoting = ending
    # A last row with an extra non-empty cell makes polars refuse the file, so the
    # structural pass reads it instead; it must agree on every other row.
    extra = [["z"] * (len(header) + 1)] if malformed else []
    text = _csv([header, *rows, *extra], delimiter, end, quoting)
    if rows or extra:
        table = read_table(text.encode(encoding), ReadOptions(delimiter=delimiter))
        assert table.header == tuple(header)
        assert _rows(table)[: len(rows)] == rows
        assert [e.row for e in table.row_errors] == ([len(rows) + 2] if malformed else [])


# Line ends of every kind, in one file


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.lists(
            st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=6,
    ),
    ends=st.lists(st.sampled_from(["\r\n", "\n", "\r"]), min_size=8, max_size=8),
    last_end=st.booleans(),
)
def test_any_mix_of_line_ends_reads_every_cell_as_written(
    rows: list[list[str]], ends: list[str], last_end: bool
) -> None:
    """CR, LF and CRLF line ends, mixed in one file, quoted line breaks of any kind inside
    cells, with or without a line end after the last row: every non-blank row reads back
    cell for cell (a bare-CR file with one LF at its end was once read as one row)."""
    rows = [r for r in rows if any(c.strip(WHITESPACE) for c in r)]  # the others are blank
    if not rows:
        return
    lines = [_csv([["a", "b", "c"]], lineterminator="")]
    lines += [_csv([r], lineterminator="", quoting=csv.QUOTE_ALL) for r in rows]
    text = "".join(line + ends[i % len(ends)] for i, line in enumerate(lines))
    if not last_end:
        text = text.rstrip("\r\n")
    table = read_table(text.encode(), ReadOptions(delimiter=","))
    assert _rows(table) == rows


def test_a_bare_cr_file_with_a_quoted_line_break_and_a_final_lf_is_read_whole() -> None:
    """Old-Mac line ends, an LF inside a quoted cell and one LF at the very end: two
    rows, the LF kept in its cell."""
    data = b'Email,Address\ra@x.com,"1 Main St\nSpringfield"\rb@x.com,x\r\n'
    table = read_table(data, AUTO)
    assert _rows(table) == [["a@x.com", "1 Main St\nSpringfield"], ["b@x.com", "x"]]
    assert _numbers(table) == [2, 3]


# Mixed encodings


@settings(max_examples=150, deadline=None)
@given(
    names=st.lists(
        st.sampled_from(["Renée", "Zoë", "Åsa", "José", "Ann", "Bo"]), min_size=2, max_size=8
    ),
    stray=st.sampled_from([0xE9, 0xFC, 0xA0, 0xFF, 0x80]),
    data=st.data(),
)
def test_a_utf8_file_with_a_stray_byte_is_never_decoded_as_cp1252(
    names: list[str], stray: int, data: st.DataObject
) -> None:
    """A UTF-8 file holding accented text and one byte that is not UTF-8 reads as UTF-8:
    every cell but the one holding the byte is exactly as written (no `renÃ©e`), and that
    cell holds the byte as a lost byte, for validation to refuse its row."""
    if all(n.isascii() for n in names):
        names = [*names, "Zoë"]
    row = data.draw(st.integers(0, len(names) - 1))
    encoded = [f"{n},x\n".encode() for n in names]
    encoded[row] = encoded[row][:-3] + bytes([stray]) + b",x\n"
    table = read_table(b"Name,Note\n" + b"".join(encoded), AUTO)
    assert table.encoding == "utf-8"
    assert not table.guessed_encoding
    cells = [r[0] for r in _rows(table)]
    assert cells[row] == names[row] + chr(0x10FF00 + stray)
    assert [c for i, c in enumerate(cells) if i != row] == [
        n for i, n in enumerate(names) if i != row
    ]
    assert "not UTF-8" in table.notices[0]


def test_a_file_without_any_utf8_text_falls_back_and_says_it_guessed() -> None:
    """Only a file with no UTF-8 sequence at all is decoded whole with the fallback, and
    the table says the encoding was a guess (so keys read through it are checked)."""
    table = read_table("Name,Note\nRenée,x\nZoë,y\n".encode("cp1252"), AUTO)
    assert (table.encoding, table.guessed_encoding) == ("cp1252", True)
    assert _rows(table) == [["Renée", "x"], ["Zoë", "y"]]


# Rows that cannot be trusted


def test_a_rows_extra_cells_are_kept_apart_for_the_errors_csv() -> None:
    """A row with more cells than the header is cut to the header's width, and the cells
    past it are kept (the errors CSV gives them back)."""
    table = read_table(b"Email,Name\na@x.com,Lee, Ann,x\nb@x.com,Bo\n", AUTO)
    assert _rows(table) == [["a@x.com", "Lee"], ["b@x.com", "Bo"]]
    assert dict(table.overflow) == {2: (" Ann", "x")}


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        (b"Email,Name,Role\na@x.com,Ann,User\nb@x.com,B", 3),
        (b"Email,Name,Role\na@x.com,Ann,User\nb@x", 3),
        (b"Email,Name,Role\r\na@x.com,Ann,User\r\nb@x.com,Bo", 3),
        (b"Email,Name,Role\na@x.com,Ann,User\nb@x.com,Bo,User", None),
        (b"Email,Name,Role\na@x.com,Ann,User\nb@x.com,Bo\n", None),
        (b"Email,Name,Role\na@x.com,Ann,User\n   ", None),
        (b"Email,Name,Role\r\na@x.com,Ann,User\r\n\t", None),
    ],
)
def test_a_file_cut_short_in_a_row_names_that_row(data: bytes, cut: int | None) -> None:
    """A last row with fewer cells than the header and no line end after it is where an
    export was cut short: that row gets a row error. A whole last row, a short row
    that ends with a line end, or a last line of whitespace (a blank row) is not cut."""
    table = read_table(data, AUTO)
    assert table.cut_row == cut
    if cut is not None:
        assert "cut short" in next(e.message for e in table.row_errors if e.row == cut)


@pytest.mark.parametrize("at", [4, 31, 40, 57])
def test_a_utf16_file_that_lost_or_gained_a_byte_is_refused_not_read_as_gibberish(at: int) -> None:
    """A byte added (and one lost at the end, so the length is even again) shifts every
    later character; the rows after it would be gibberish under other keys: refused."""
    data = "Employee ID,Email\r\n1,a@x.com\r\n2,b@x.com\r\n3,c@x.com\r\n".encode("utf-16")
    damaged = data[:at] + b"\xe9" + data[at:-1]
    message = _rejected(damaged)
    assert "byte is missing or extra" in message or "cannot be read as utf-16" in message


_CELL_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"'),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_CELL_TEXT, _CELL_TEXT), min_size=1, max_size=60),
    st.data(),
)
def test_the_rows_a_table_keeps_are_exactly_its_cells_of_them(
    rows: list[tuple[str, str]], data: st.DataObject
) -> None:
    """A job keeps the cells of its failed rows only (`keep_rows`); a few kept rows are
    copied out of the table's text, the rest filtered as they are. Either way, for any
    text (long, short, blank, non-ASCII) and any rows, the cells kept are exactly the
    table's cells of those rows, in order, typed alike, and the table still counts all
    its rows."""
    text = "N,A,B\r\n" + "".join(f'{i},"{a}","{b}"\r\n' for i, (a, b) in enumerate(rows))
    table = read_table(text.encode("utf-8"), AUTO)
    numbers = _numbers(table)
    kept = data.draw(st.sets(st.sampled_from([*numbers, len(rows) + 5])), label="kept")
    cut = table.keep_rows(kept)
    assert cut.cells.equals(table.cells.filter(pl.col(ROW).is_in(sorted(kept))))
    assert cut.cells.schema == table.cells.schema
    assert cut.rows == table.rows == len(numbers)


@pytest.mark.parametrize(
    "start", [b"x^", b"x\x01", b"x\x9c", b"x\xda", b"\r\n(\xb5/\xfd", b"\r\nx^"]
)
def test_text_that_starts_as_polars_tells_compressed_input_is_read_as_text(start: bytes) -> None:
    """polars decompresses input that starts with gzip's, zlib's or zstd's magic bytes
    ("x^" is zlib's): a CSV whose first cell starts so (after blank lines too) is still
    read as the text it is."""
    data = start + b"2,b\r\n3,4\r\n"
    table = read_table(data, ReadOptions(encoding="latin-1"))
    text = start.decode("latin-1").lstrip("\r\n")
    assert table.header == (text + "2", "b")
    assert table.cells.rows() == [("3", "4", 3 if start.startswith(b"\r\n") else 2)]


# The structural pass, a batch at a time


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(
        st.lists(st.sampled_from(["", " ", "a", "Zoë", 'x"y', "1,2", "l\r\nm", "\t"]), max_size=5),
        max_size=12,
    ),
    end=st.sampled_from(["\r\n", "\n", "\r"]),
    tail=st.sampled_from(["", "\r\n", '"open', "a,b"]),
    batch=st.integers(1, 4),
)
def test_the_structural_pass_reads_the_same_a_batch_at_a_time(
    records: list[list[str]], end: str, tail: str, batch: int
) -> None:
    """Records of any width, blank ones, quoted line ends, an unclosed quote at the end:
    made columns a few records at a time, they are the columns made all at once (the
    same cells, padding, row numbers and first width), or the same refusal."""
    data = (_csv(records, ",", end, csv.QUOTE_MINIMAL) + tail).encode()

    def parsed(size: int) -> object:
        try:
            got = _parse_structural(data, ",", AUTO, batch=size)
        except FileRejected as refused:
            return refused.message
        return got.frame.rows(), got.frame.columns, got.first_width

    assert parsed(batch) == parsed(10_000)
