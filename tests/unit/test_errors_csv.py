"""The errors CSV: failed rows as received, `errors` last, safe to open, lossless to re-read."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from syncd.core.decoding import shown_lost
from syncd.core.errors_csv import render_errors_csv
from syncd.core.formula import neutralise, neutralised, undo
from syncd.core.reading import ReadOptions, read_table
from syncd.core.table import ROW, RawTable, RowError


def _table(header: list[str], rows: list[list[str]], first_row: int = 2) -> RawTable:
    columns = {f"c{i}": [r[i] for r in rows] for i in range(len(header))}
    cells = pl.DataFrame(columns, schema={f"c{i}": pl.String for i in range(len(header))})
    cells = cells.with_columns(
        pl.Series(ROW, range(first_row, first_row + len(rows)), dtype=pl.UInt32)
    )
    return RawTable(tuple(header), cells, "utf-8", ",", has_header=True)


def _parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def test_only_failed_rows_are_written_with_their_messages_last() -> None:
    """Rows without errors are left out; each failed row gets one `column: message` line
    per problem, so a message may hold any punctuation, `;` included."""
    table = _table(["Email", "Role"], [["a@x.com", "User"], ["bad", "Admn"], ["c@x.com", "Admin"]])
    errors = [
        RowError(3, "Email", "'bad' is not an email address"),
        RowError(3, "Role", "'Admn' is not one of User, Admin, Supervisor"),
    ]
    rows = _parse(render_errors_csv(table, errors))
    assert rows == [
        ["Email", "Role", "errors"],
        [
            "bad",
            "Admn",
            "Email: 'bad' is not an email address\nRole: 'Admn' is not one of User, Admin, "
            "Supervisor",
        ],
    ]


def test_lines_end_in_crlf_and_cells_keep_their_spaces_and_newlines() -> None:
    """CRLF between records; a cell's own spacing and quoted newline survive."""
    table = _table(["name", "note"], [["  Zoë ", "two\nlines"]])
    data = render_errors_csv(table, [RowError(2, "name", "too odd")])
    assert data.count(b"\r\n") == 2
    assert _parse(data)[1][:2] == ["  Zoë ", "two\nlines"]


def test_an_incoming_errors_column_is_replaced_not_repeated() -> None:
    """A re-uploaded errors CSV that fails again keeps one `errors` column, the new one."""
    table = _table(["email", "errors"], [["bad", "old message"]])
    rows = _parse(render_errors_csv(table, [RowError(2, "email", "new message")]))
    assert rows == [["email", "errors"], ["bad", "email: new message"]]


def test_password_cells_are_blanked() -> None:
    """No clear password leaves syncd, also not in the errors CSV."""
    table = replace(_table(["email", "password"], [["bad", "hunter22"]]), secret_columns={1})
    rows = _parse(render_errors_csv(table, [RowError(2, "email", "bad")]))
    assert rows[1][:2] == ["bad", ""]


def test_the_input_delimiter_is_kept_so_the_fixed_file_reads_back() -> None:
    """A `;` file gets a `;` errors CSV: a profile with `delimiter = ";"` reads it back."""
    table = replace(_table(["email", "name"], [["bad", "Zoë, Jr"]]), delimiter=";")
    data = render_errors_csv(table, [RowError(2, "email", "x; y")])
    assert data.decode("utf-8-sig").splitlines()[1] == 'bad;Zoë, Jr;"email: x; y"'
    options = ReadOptions(delimiter=";")
    back = read_table(data, options)
    assert back.header == ("email", "name", "errors")
    assert back.cells.row(0)[:2] == ("bad", "Zoë, Jr")


def test_a_ragged_rows_extra_cells_are_kept_before_its_errors() -> None:
    """A row with more cells than the header keeps them all: nothing the sender wrote is
    lost, and `errors` stays the last cell."""
    table = replace(_table(["email", "name"], [["a@x.com", "Smith"]]), overflow={2: (" John", "x")})
    rows = _parse(render_errors_csv(table, [RowError(2, "", "row has 4 cells")]))
    assert rows[1] == ["a@x.com", "Smith", " John", "x", "row has 4 cells"]


def test_a_ragged_row_blanks_every_cell_right_of_a_password() -> None:
    """An unquoted comma splits a password: its fragments spill into the cells to its
    right, so all of those are blanked, never written."""
    table = replace(
        _table(["email", "password", "role"], [["a@x.com", "hun", "ter,22"]]),
        secret_columns={1},
        overflow={2: ("User",)},
    )
    rows = _parse(render_errors_csv(table, [RowError(2, "", "row has 4 cells")]))
    assert rows[1] == ["a@x.com", "", "", "", "row has 4 cells"]


def test_lost_bytes_show_as_the_replacement_character() -> None:
    """A byte that was not UTF-8 shows as U+FFFD, which reading refuses until retyped."""
    table = _table(["email", "name"], [["a@x.com", "Ren\U0010ffe9e"]])
    rows = _parse(render_errors_csv(table, [RowError(2, "name", "lost")]))
    assert rows[1][1] == "Ren\ufffde"


def test_formula_cells_are_neutralised() -> None:
    """Cells a spreadsheet would run get a leading apostrophe."""
    table = _table(["phone", "name"], [["+15551234", "=HYPERLINK(1)"]])
    rows = _parse(render_errors_csv(table, [RowError(2, "phone", "x")]))
    assert rows[1][:2] == ["'+15551234", "'=HYPERLINK(1)"]


@given(st.text())
def test_undo_restores_every_neutralised_cell_exactly(cell: str) -> None:
    """Neutralising then undoing is the identity on any text."""
    assert undo(neutralise(cell)) == cell


@given(st.text())
def test_neutralised_cells_never_start_a_formula(cell: str) -> None:
    """After neutralising, no cell starts with a formula trigger."""
    assert not neutralise(cell).startswith(("=", "+", "-", "@", "\t", "\r"))


#: Text with what the writer changes (formula triggers, quotes, lost bytes, U+FFFD) in
#: most cells, then any other characters.
_CELLS = st.builds(
    str.__add__,
    st.text(st.sampled_from("=+-@\t\r' a,\"é\U0010ff80\U0010ffe9\ufffd"), max_size=4),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=3),
)


@given(st.lists(st.lists(_CELLS, min_size=3, max_size=3), min_size=1, max_size=4))
def test_every_cell_is_written_as_the_rule_for_one_cell_says(rows: list[list[str]]) -> None:
    """The writer works column by column; each cell still comes out exactly as the rule
    for one cell (`neutralise(shown_lost(cell))`) writes it, in file order."""
    table = _table(["a", "b", "c"], rows)
    errors = [RowError(row, "a", f"row {row}") for row in range(2, 2 + len(rows))]
    written = _parse(render_errors_csv(table, errors))[1:]
    assert written == [
        [*(neutralise(shown_lost(cell)) for cell in row), f"a: row {n}"]
        for n, row in enumerate(rows, start=2)
    ]


@given(st.lists(st.lists(st.none() | _CELLS, min_size=3, max_size=3), max_size=8))
def test_whole_columns_are_neutralised_as_each_cell_would_be(rows: list[list[str | None]]) -> None:
    """Columnar neutralising (the changes CSV's) gives every cell what `neutralise`
    gives it, whichever columns hold a cell that needs it; blank stays blank."""
    names = ["a", "b", "c"]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
    got = frame.select(neutralised(frame, names)).rows()
    assert got == [tuple(None if c is None else neutralise(c) for c in row) for row in rows]
