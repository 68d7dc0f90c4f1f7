"""Secret columns: which columns of a file hold passwords, so that no copy, message or
report syncd makes ever holds one.

A column is secret when the profile maps it to `password`, or when its header names a
password in any of the usual ways, mapped or not: a `Password` column that a profile
ignores still holds passwords. On a row with more cells than the header, every cell from
the first secret column on is treated as secret too: an unquoted comma inside a password
splits it, and its fragments land in the cells to its right.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import polars as pl

from syncd.core.table import HEADER_SEARCH_ROWS, ROW, RawTable, normalise_header

#: Header words (as `normalise_header` leaves them) that name a password, anywhere in
#: the header: "User Password", "passwd", "Mot de passe", "Contraseña"...
_WORDS = (
    "password",
    "passwd",
    "passwort",
    "passphrase",
    "passcode",
    "motdepasse",
    "contraseña",
    "contrasena",
    "senha",
    "wachtwoord",
    "salasana",
    "lösenord",
    "losenord",
    "hasło",
    "haslo",
    "parola",
    "kennwort",
)
#: Whole headers that name a password only on their own.
_ALONE = frozenset({"pwd", "pw", "pass", "pin"})


def names_a_password(header: str) -> bool:
    """Whether a column header says its cells are passwords."""
    name = normalise_header(header)
    return name in _ALONE or any(word in name for word in _WORDS)


def secret_columns(header: Sequence[str], password_names: Iterable[str] = ()) -> frozenset[int]:
    """Positions of the secret columns of a file with this `header`; `password_names` are
    the headers a profile maps to `password` (its header, aliases and field name)."""
    mapped = {normalise_header(n) for n in password_names}
    return frozenset(
        i for i, h in enumerate(header) if names_a_password(h) or normalise_header(h) in mapped
    )


def password_header_below(table: RawTable, password_names: Iterable[str] = ()) -> bool:
    """Whether one of the first data rows of `table` reads as a header naming a password
    column its header does not: the file's real header is further down (a title line
    above it), so its columns, as read, cannot say which cells are passwords."""
    names = tuple(password_names)
    width = len(table.header)
    head = table.cells.head(HEADER_SEARCH_ROWS)
    for *row, number in head.select(*map(table.column_name, range(width)), ROW).iter_rows():
        cells = [cell or "" for cell in row]
        cells += table.overflow.get(number, ())
        if secret_columns(cells, names) - table.secret_columns:
            return True
    return False


def secret_cells(columns: frozenset[int], width: int, *, ragged: bool) -> frozenset[int]:
    """The positions whose cells must be blanked on a row of `width` cells (see the module
    docstring for why a ragged row loses everything right of its first secret column)."""
    if not columns:
        return columns
    if not ragged:
        return frozenset(i for i in columns if i < width)
    return frozenset(range(min(columns), width))


def redacted(table: RawTable) -> RawTable:
    """The table with every secret cell blanked (see `secret_cells`), overflow included."""
    secrets = table.secret_columns
    if not secrets:
        return table
    first = min(secrets)
    ragged = pl.col(ROW).is_in(list(table.overflow))

    def cell(i: int) -> pl.Expr:
        name = table.column_name(i)
        if i in secrets:
            return pl.lit("").alias(name)
        if i < first or not table.overflow:
            return pl.col(name)
        return pl.when(ragged).then(pl.lit("")).otherwise(pl.col(name)).alias(name)

    cells = table.cells.select(*(cell(i) for i in range(len(table.header))), ROW)
    overflow = {row: tuple("" for _ in extra) for row, extra in table.overflow.items()}
    return replace(table, cells=cells, overflow=overflow)
