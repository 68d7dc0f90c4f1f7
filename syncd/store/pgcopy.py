"""PostgreSQL's COPY, through psycopg: frames in (binary or CSV), query results out (CSV).

`syncd.store.bulk` decides what to move; this module moves it. Rows that carry text go
in binary, typed by the target table's column types, so the server parses no CSV; narrow
rows of numbers go as CSV from polars' writer, faster for them than a Python tuple per
row. Errors are raised as SQLAlchemy's, like every other statement's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import BigInteger, Connection, Integer, Select, SmallInteger, Table, Text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator, TypeEngine

# Rows turned into CSV text or Python tuples at a time for COPY: bounds memory on a
# million-row load.
_BATCH_ROWS = 100_000
# From this many bytes of text per row (on average), binary COPY is faster than CSV: the
# server parses no CSV, which outweighs a Python tuple per row. Measured with a million
# rows: users (~230 bytes of text) 8.4-9.0 s against 9.8-10.6 s; row errors (~64 bytes)
# 1.45 s against 1.8 s; labels (~14 bytes) 1.1-1.4 s against 0.85-1.0 s; memberships (no
# text) 3.7-4.4 s against 3.0-3.3 s.
_BINARY_FROM_TEXT_BYTES = 32
# Text of COPY ... TO STDOUT parsed at a time (`copy_out`).
_OUT_BYTES = 32 * 2**20


def copy_in(
    conn: Connection,
    table: Table | str,
    target: str,
    frame: pl.DataFrame,
    constants: Mapping[str, object],
) -> None:
    """Every row of `frame`, with `constants` in each, into `target` ("table (columns)")."""

    def with_constants(part: pl.DataFrame) -> pl.DataFrame:
        # Constants cost next to nothing in polars.
        return part.with_columns(pl.lit(value).alias(c) for c, value in constants.items())

    # CSV cannot carry a list (an array column): those go in binary whatever their width.
    nested = any(isinstance(dtype, pl.List) for dtype in frame.schema.values())
    values = {name: frame.get_column(name) for name in frame.columns}
    values |= {name: pl.Series(name, [value]) for name, value in constants.items()}
    types = _binary_types(conn, table, values) if nested or _wordy(frame) else None
    if types is None:
        # polars writes null as an empty field and "" as a quoted empty string, which is
        # exactly how COPY's CSV format tells NULL from the empty string.
        with _copy(conn, f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
            for offset in range(0, frame.height, _BATCH_ROWS):
                part = with_constants(frame.slice(offset, _BATCH_ROWS))
                copy.write(part.write_csv(include_header=False))
        return
    with _copy(conn, f"COPY {target} FROM STDIN (FORMAT binary)") as copy:
        copy.set_types(types)
        for offset in range(0, frame.height, _BATCH_ROWS):
            # psycopg formats each row in C and sends it as it goes, so the server
            # stores one part of the rows while the next is being formatted.
            for row in with_constants(frame.slice(offset, _BATCH_ROWS)).iter_rows():
                copy.write_row(row)


def _wordy(frame: pl.DataFrame) -> bool:
    """Whether the rows of `frame` carry enough text for binary COPY to pay."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text or frame.height == 0:
        return False
    sizes = frame.select(pl.sum_horizontal(pl.col(text).str.len_bytes().sum()))
    return int(sizes.item() or 0) >= _BINARY_FROM_TEXT_BYTES * frame.height


def _binary_types(
    conn: Connection, table: Table | str, values: Mapping[str, pl.Series]
) -> list[int] | None:
    """The types (OIDs) binary COPY sends the columns of `table` named by `values` as: the
    table's own column types. None, for CSV, when some values are not held the way
    binary COPY sends their column's type (the server then parses their text, as it
    would in any statement), or when a type is not one psycopg knows."""
    if isinstance(table, str):
        return None
    driver = conn.connection.driver_connection
    registry = getattr(driver, "adapters", None)
    if registry is None:
        return None
    oids: list[int] = []
    for name, series in values.items():
        if name not in table.c:  # the server names the mistake
            return None
        column_type = _plain(table.c[name].type.dialect_impl(conn.dialect))
        # "VARCHAR(20)" is a varchar; psycopg knows PostgreSQL's names in lower case.
        spelled = re.sub(r"\(.*?\)", "", column_type.compile(dialect=conn.dialect)).lower()
        try:
            oid = registry.types.get_oid(spelled)
        except KeyError:
            return None
        if not _holds(series, column_type):
            return None
        oids.append(oid)
    return oids


def _plain(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """The type the database stores, under any `TypeDecorator`."""
    while isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    return column_type


# psycopg's binary dumpers take a Python int for any integer type and keep its lowest
# bytes: 70,000 sent as a smallint would be stored as 4,464. So an integer is sent in
# binary only when it fits; otherwise CSV, and the server refuses it as out of range.
_INTEGER_BITS = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))


def _holds(values: pl.Series, column_type: TypeEngine[Any]) -> bool:
    """Whether `values` are Python values psycopg dumps exactly as `column_type`."""
    try:
        kind = column_type.python_type
    except NotImplementedError:
        return False
    dtype = values.dtype
    if kind is list:
        item_type = _plain(getattr(column_type, "item_type", None) or Text())
        return isinstance(dtype, pl.List) and _holds(values.explode(), item_type)
    if kind is int:
        if not dtype.is_integer():
            return False
        bits = next(bits for cls, bits in _INTEGER_BITS if isinstance(column_type, cls))
        low, high, limit = values.min(), values.max(), 2 ** (bits - 1)
        if low is None:  # all null
            return True
        return isinstance(low, int) and isinstance(high, int) and -limit <= low and high < limit
    if kind is datetime:
        # Python datetimes hold microseconds: nanoseconds would be cut, not rounded.
        aware = bool(getattr(column_type, "timezone", False))
        return (
            isinstance(dtype, pl.Datetime)
            and dtype.time_unit != "ns"
            and (dtype.time_zone is not None) == aware
        )
    expected = {str: pl.String, bool: pl.Boolean, bytes: pl.Binary, date: pl.Date}
    return kind in expected and dtype == expected[kind]


@contextmanager
def _copy(
    conn: Connection, statement: str, params: Mapping[str, Any] | None = None
) -> Iterator[Any]:
    """A COPY through psycopg's cursor, in the connection's transaction; its errors are
    raised as SQLAlchemy's (`IntegrityError`, ...), like every other statement's."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no driver connection to COPY through")
    error_class = conn.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor, cursor.copy(statement, params) as copy:
            yield copy
    except error_class as error:
        wrapped = DBAPIError.instance(statement, params, error, error_class, dialect=conn.dialect)
        if isinstance(wrapped, BaseException):
            raise wrapped from error
        raise


def as_read(part: pl.DataFrame) -> pl.DataFrame:
    """What a reader's `each` is when the caller gives none: every part as it was read."""
    return part


def copy_out(
    conn: Connection,
    query: Select[tuple[object, ...]],
    schema: pl.Schema,
    each: Callable[[pl.DataFrame], pl.DataFrame] = as_read,
) -> pl.DataFrame:
    """The rows of `query` as a frame with `schema`, read by polars from COPY's CSV, as
    `each` turns every part parsed (if given). The text is parsed as it comes, about
    `_OUT_BYTES` at a time, each part cut at the end of a record: at 5,000,000 users the
    snapshot's 400 MB of text was held whole, and copied once more for polars."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    parts: list[pl.DataFrame] = []
    with _copy(conn, f"COPY ({compiled}) TO STDOUT (FORMAT csv)", compiled.params) as copy:
        pending = bytearray()  # a message per row: appending is the cheapest way in
        due = _OUT_BYTES
        for block in copy:
            pending += block
            if len(pending) >= due:
                cut = _records_end(pending)
                if cut:
                    parts.append(each(_parsed(bytes(memoryview(pending)[:cut]), schema)))
                    del pending[:cut]
                # (a record longer than the rest: looked at again once the text doubled)
                due = max(_OUT_BYTES, 2 * len(pending))
        parts.append(each(_parsed(bytes(pending), schema)))
    return pl.concat(parts) if len(parts) > 1 else parts[0]


def _records_end(text: bytearray) -> int:
    """The length of the longest prefix of `text` (CSV that starts a record) made of
    whole records: up to a line end outside quotes, which is one with an even number of
    quote characters before it (a quote inside a quoted field is doubled); 0 if none."""
    end = text.rfind(b"\n")
    quotes = text.count(b'"', 0, end) if end >= 0 else 0
    while end >= 0 and quotes % 2:
        before = text.rfind(b"\n", 0, end)
        quotes -= text.count(b'"', max(before, 0), end)
        end = before
    return end + 1


def _parsed(text: bytes, schema: pl.Schema) -> pl.DataFrame:
    if not text:
        return pl.DataFrame(schema=schema)
    return pl.read_csv(text, has_header=False, schema=schema)
