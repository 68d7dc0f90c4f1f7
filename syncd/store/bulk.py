"""Moving whole frames in and out of the database, fast, on SQLite and PostgreSQL.

The hot path of an apply writes up to millions of rows, so nothing here goes through an
ORM object or a dict per row:

- `insert_frame`: PostgreSQL `COPY ... FROM STDIN (FORMAT csv)` fed by polars' CSV writer;
  SQLite `executemany` of multi-row `INSERT ... VALUES (...), (...)` statements.
- `staged`: a frame loaded into a temporary table, so one `UPDATE ... FROM` or
  `DELETE ... WHERE id IN (SELECT ...)` handles any number of rows.
- `read_frame`: a SELECT straight into a typed polars frame.

Frames handed to `insert_frame` hold database-ready values: timestamps as `db_time` gives
them, no Python objects the driver would have to adapt.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Insert,
    MetaData,
    Select,
    Table,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

# SQLite allows 32,766 bound variables per statement; a few hundred rows per statement
# already removes nearly all per-statement overhead.
_SQLITE_MAX_VARIABLES = 32_000
_SQLITE_ROWS_PER_STATEMENT = 500
# Rows turned into Python tuples at a time: bounds memory on a million-row load.
_BATCH_ROWS = 100_000
# Above this many rows a temporary table gets statistics, so PostgreSQL joins it sensibly.
_ANALYZE_ROWS = 10_000
STAGE = "syncd_stage"


def db_time(conn: Connection, column: Column[datetime], value: datetime | None) -> str | None:
    """`value` as the database stores `column`, for frames written by `insert_frame`."""
    if value is None:
        return None
    if conn.dialect.name == "postgresql":
        return value.isoformat()  # COPY parses ISO 8601 with its offset
    processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    stored = processor(value) if processor else value
    if not isinstance(stored, str):
        raise TypeError(f"{column} is not stored as text on {conn.dialect.name}")
    return stored


def insert_frame(
    conn: Connection,
    table: Table | str,
    frame: pl.DataFrame,
    constants: Mapping[str, object] | None = None,
) -> None:
    """Insert every row of `frame` into `table`; the frame's column names are the target's.

    `constants` are columns with one value for every row (a job ID, a timestamp as
    `db_time` gives it): sent once per statement, not once per row. Columns of `frame`
    that are entirely null are left out, so the table's default (NULL) applies: fewer
    values to convert and bind on the hot path, same rows.
    """
    if frame.height == 0:
        return
    constants = dict(constants or {})
    kept = [c for c in frame.columns if frame.get_column(c).null_count() < frame.height]
    frame = frame.select(kept or frame.columns[:1])
    quote = conn.dialect.identifier_preparer.quote
    name = quote(table if isinstance(table, str) else table.name)
    if conn.dialect.name == "postgresql":
        # Constants cost next to nothing in polars' CSV writer.
        frame = frame.with_columns(pl.lit(value).alias(c) for c, value in constants.items())
        _copy_in(conn, f"{name} ({', '.join(quote(c) for c in frame.columns)})", frame)
    else:
        _insert_values(conn, name, frame, constants)


def _copy_in(conn: Connection, target: str, frame: pl.DataFrame) -> None:
    # polars writes null as an empty field and "" as a quoted empty string, which is
    # exactly how COPY's CSV format tells NULL from the empty string.
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no driver connection to COPY through")
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy,
    ):
        for offset in range(0, frame.height, _BATCH_ROWS):
            copy.write(frame.slice(offset, _BATCH_ROWS).write_csv(include_header=False))


def _insert_values(
    conn: Connection, name: str, frame: pl.DataFrame, constants: Mapping[str, object]
) -> None:
    quote = conn.dialect.identifier_preparer.quote
    width = frame.width
    per_statement = max(1, min(_SQLITE_ROWS_PER_STATEMENT, _SQLITE_MAX_VARIABLES // width))
    one = "(" + ",".join("?" * width) + ")"
    columns = ", ".join(quote(c) for c in (*frame.columns, *constants))
    # SQLite names the columns of a VALUES subquery column1, column2, ...
    picked = [f"column{i + 1}" for i in range(width)] + ["?"] * len(constants)
    head = f"INSERT INTO {name} ({columns}) SELECT {', '.join(picked)} FROM (VALUES "
    fixed = tuple(constants.values())

    def statement(rows: int) -> str:
        return head + ",".join([one] * rows) + ")"

    full = statement(per_statement)
    batch = per_statement * max(1, _BATCH_ROWS // per_statement)
    for offset in range(0, frame.height, batch):
        rows = frame.slice(offset, batch).rows()
        whole = len(rows) - len(rows) % per_statement
        params = [
            fixed + tuple(chain.from_iterable(rows[i : i + per_statement]))
            for i in range(0, whole, per_statement)
        ]
        if params:
            conn.exec_driver_sql(full, params)
        if whole < len(rows):
            rest = rows[whole:]
            conn.exec_driver_sql(statement(len(rest)), fixed + tuple(chain.from_iterable(rest)))


@contextmanager
def staged(
    conn: Connection, frame: pl.DataFrame, types: Mapping[str, TypeEngine[Any]]
) -> Iterator[Table]:
    """`frame` in a temporary table (columns typed by `types`, `id` BigInteger by default).

    The table is dropped after use. When the block fails it is left to the transaction's
    rollback, which removes it on both databases (a DROP in an aborted PostgreSQL
    transaction would only hide the real error).
    """
    columns = [
        Column(name, types.get(name, BigInteger()), primary_key=name == "id")
        for name in frame.columns
    ]
    table = Table(STAGE, MetaData(), *columns, prefixes=["TEMPORARY"])
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    table.create(conn)
    insert_frame(conn, table, frame)
    if conn.dialect.name == "postgresql" and frame.height > _ANALYZE_ROWS:
        conn.exec_driver_sql(f"ANALYZE {STAGE}")
    yield table
    conn.exec_driver_sql(f"DROP TABLE {STAGE}")


def read_frame(
    conn: Connection, query: Select[tuple[object, ...]], schema: pl.Schema
) -> pl.DataFrame:
    """The rows of `query` as a frame with `schema` (names in the query's column order).

    Rows come straight from the driver's cursor, skipping SQLAlchemy's per-row objects
    (a third of the time on a million rows); so the query's columns must be plain
    numbers and strings, which need no result processing.
    """
    result = conn.execute(query)
    try:
        rows = result.cursor.fetchall() if result.cursor is not None else []
    finally:
        result.close()
    return pl.DataFrame(rows, schema=schema, orient="row")


def insert_unless_exists(
    conn: Connection, table: Table, conflict_columns: Sequence[str] | None = None
) -> Insert:
    """An INSERT into `table` that quietly does nothing when a unique constraint (the one
    on `conflict_columns`, or any) says the row is already there. `ON CONFLICT DO NOTHING`
    reads the same on both databases, but SQLAlchemy builds it per dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
