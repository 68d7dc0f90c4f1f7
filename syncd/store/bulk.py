"""Moving whole frames in and out of the database, fast, on SQLite and PostgreSQL.

The hot path of an apply writes up to millions of rows, so nothing here goes through an
ORM object or a dict per row:

- `insert_frame`: PostgreSQL `COPY ... FROM STDIN`, binary for rows that carry text, CSV
  for narrow rows of numbers (`syncd.store.pgcopy`); SQLite `executemany` of multi-row
  `INSERT ... VALUES (...), (...)` statements.
- `staged`: a frame loaded into a temporary table, so one `UPDATE ... FROM` or
  `DELETE ... WHERE id IN (SELECT ...)` handles any number of rows.
- `read_frame`: a SELECT straight into a typed polars frame: PostgreSQL `COPY ... TO
  STDOUT` read by polars' CSV reader, SQLite one JSON array per column decoded by polars.
- `new_ids`: ids for rows about to be inserted, so their child rows need no read-back
  (reserved in one step for a table loaded alone).
- For a big load into a table this transaction has alone (`lock_alone`):
  `without_indexes` drops indexes (and primary keys, on PostgreSQL) and builds them
  again after the rows, and `constants_as_defaults` spares COPY the values every row
  shares.

Frames handed to `insert_frame` hold database-ready values: timestamps as `db_time` gives
them, no Python objects the driver would have to adapt. The types PostgreSQL's binary COPY
sends are the target table's column types, never the frame's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Insert,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    Table,
    Text,
    cast,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlalchemy.types import TypeEngine

from syncd.store.pgcopy import as_read, copy_in, copy_out

# SQLite: rows turned into Python tuples at a time, and rows per INSERT statement (it
# allows 32,766 bound values). Many rows per statement halve the time of narrow rows
# (memberships); a few hundred already remove nearly all per-statement overhead.
_SQLITE_BATCH_ROWS = 10_000
_SQLITE_MAX_VARIABLES = 32_000
_SQLITE_ROWS_PER_STATEMENT = 500
# Above this many rows a temporary table gets statistics, so PostgreSQL joins it sensibly.
_ANALYZE_ROWS = 10_000
STAGE = "syncd_stage"


def db_time(
    conn: Connection, column: Column[datetime], value: datetime | None
) -> datetime | str | None:
    """`value` as the database stores `column`, for frames written by `insert_frame`: on
    PostgreSQL the instant in UTC (a polars Datetime, which binary COPY sends as it is),
    on SQLite the text SQLAlchemy would store."""
    if value is None:
        return None
    if conn.dialect.name == "postgresql":
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        return value.astimezone(UTC)
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
    `db_time` gives it): written into SQLite's statements, not bound for every row; on
    PostgreSQL in every COPY row (cheap to write, but the server reads each one: see
    `constants_as_defaults`). Columns of `frame` that are entirely null are left out, so
    the table's default (NULL) applies: fewer values to convert and bind, same rows.
    """
    if frame.height == 0:
        return
    constants = dict(constants or {})
    kept = [c for c in frame.columns if frame.get_column(c).null_count() < frame.height]
    frame = frame.select(kept or frame.columns[:1])
    quote = conn.dialect.identifier_preparer.quote
    name = quote(table if isinstance(table, str) else table.name)
    columns = ", ".join(quote(c) for c in (*frame.columns, *constants))
    if conn.dialect.name == "postgresql":
        copy_in(conn, table, f"{name} ({columns})", frame, constants)
        return
    # Constants go into the statement as literals: binding them again for every row
    # costs a fifth of a million-row insert.
    fixed = [_sql_literal(conn, value) for value in constants.values()]
    one = "(" + ", ".join(["?"] * frame.width + fixed) + ")"

    def statement(rows: int) -> str:
        return f"INSERT INTO {name} ({columns}) VALUES " + ", ".join([one] * rows)

    width = frame.width
    per = max(1, min(_SQLITE_ROWS_PER_STATEMENT, _SQLITE_MAX_VARIABLES // width))
    full = statement(per)
    for offset in range(0, frame.height, _SQLITE_BATCH_ROWS):
        part = frame.slice(offset, _SQLITE_BATCH_ROWS)
        # The statements' values, row after row, filled a column at a time: polars hands
        # over a column as Python objects in one go, at half the cost of row by row.
        values: list[object] = [None] * (part.height * width)
        for i, column in enumerate(part.get_columns()):
            values[i::width] = column.to_list()
        whole = (part.height - part.height % per) * width
        step = per * width
        params = [tuple(values[i : i + step]) for i in range(0, whole, step)]
        if params:
            conn.exec_driver_sql(full, params)
        if whole < len(values):
            rest = tuple(values[whole:])
            conn.exec_driver_sql(statement(len(rest) // width), rest)


def _sql_literal(conn: Connection, value: object) -> str:
    return str(literal(value).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


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
    conn: Connection,
    query: Select[tuple[object, ...]],
    schema: pl.Schema,
    each: Callable[[pl.DataFrame], pl.DataFrame] = as_read,
) -> pl.DataFrame:
    """The rows of `query` as a frame with `schema` (names in the query's column order).

    No Python object is made per row or value: PostgreSQL sends the rows as CSV (`COPY
    ... TO STDOUT`) for polars' reader; SQLite aggregates each column into one JSON array
    for polars to decode (measured on a million users: 0.7 s against 1.5 s through
    `fetchall`). So the query's columns must be plain integers and strings, which need no
    result processing. `each` turns the rows as they are read (on PostgreSQL, a part at a
    time: `copy_out`), before the frame is put together.
    """
    if conn.dialect.name == "postgresql":
        return copy_out(conn, query, schema, each)
    rows = query.subquery()
    arrays = select(*(func.json_group_array(column) for column in rows.c))
    found = conn.execute(arrays).one()
    # The arrays are decoded together, so polars decodes the columns in parallel.
    raw = pl.DataFrame(
        [pl.Series(name, [value], pl.String) for name, value in zip(schema, found, strict=True)]
    )
    decoded = raw.select(pl.col(name).str.json_decode(pl.List(schema[name])) for name in schema)
    return each(decoded.explode(list(schema)))


def new_ids(conn: Connection, table: Table, count: int, *, alone: bool = False) -> pl.Series:
    """`count` unused ids of `table`'s integer primary key `id`, for rows about to be
    inserted with them (and their child rows with no read-back of the ids).

    PostgreSQL: drawn from the column's sequence, so concurrent inserts never collide
    (the table's rows must all take their ids from it: default or `new_ids`). Only the
    lowest and highest come back when nobody else drew meanwhile, as is usual. `alone`
    (this transaction has `table` to itself: `lock_alone`) reserves them in one step
    instead (see `_reserve`).
    SQLite: the ones after the current maximum, which are this transaction's alone: it
    holds the database's only write lock (or, having read before another writer
    committed, fails with "database is locked" rather than reuse an id).
    """
    if count <= 0:
        return pl.Series("id", [], pl.Int64)
    if conn.dialect.name == "postgresql":
        sequence = conn.scalar(text(f"SELECT pg_get_serial_sequence('{table.name}', 'id')"))
        if alone:
            return _reserve(conn, sequence, count)
        drawn = select(func.nextval(sequence).label("id")).select_from(
            func.generate_series(1, count)
        )
        ids = drawn.subquery()
        low, high = conn.execute(select(func.min(ids.c.id), func.max(ids.c.id))).one()
        if high - low + 1 == count:  # no one else drew meanwhile: they are all ours
            return pl.int_range(low, high + 1, dtype=pl.Int64, eager=True).alias("id")
        # Interleaved with another transaction's: draw again, and read every one (as one
        # JSON array: COPY would send a message per id).
        found = conn.scalar(select(cast(func.json_agg(ids.c.id), Text)))
        return pl.Series("id", [found], pl.String).str.json_decode(pl.List(pl.Int64)).explode()
    last = conn.scalar(select(func.coalesce(func.max(table.c.id), 0)))
    start = int(last or 0) + 1
    return pl.int_range(start, start + count, dtype=pl.Int64, eager=True).alias("id")


def _reserve(conn: Connection, sequence: str, count: int) -> pl.Series:
    """`count` consecutive values of `sequence`, taken in one step by stretching its
    increment over them for one `nextval` (drawing a million one by one takes 1.5 s).

    ALTER SEQUENCE makes every other transaction's `nextval` of it wait until this one
    ends, so nobody draws between our first value and our last. That is no new wait for
    a table this transaction has alone: inserting into it waits anyway. The increment
    is set back at once (and would be by a rollback: it is transactional; the values
    drawn are not, as with any `nextval`).
    """
    step = conn.execute(
        text("SELECT seqincrement FROM pg_sequence WHERE seqrelid = CAST(:s AS regclass)"),
        {"s": sequence},
    ).scalar_one()
    alter = f"ALTER SEQUENCE {sequence} INCREMENT BY "
    conn.exec_driver_sql(alter + str(step))  # the lock, before the first value
    first = int(conn.execute(select(func.nextval(sequence))).scalar_one())
    if count > 1:
        conn.exec_driver_sql(alter + str(count - 1))
        last = int(conn.execute(select(func.nextval(sequence))).scalar_one())
        conn.exec_driver_sql(alter + str(step))
        if last != first + count - 1:
            raise RuntimeError(f"{sequence} gave {first} then {last}, not {count} values")
    return pl.int_range(first, first + count, dtype=pl.Int64, eager=True).alias("id")


def lock_alone(conn: Connection, table: Table) -> bool:
    """Whether this transaction now has `table` to itself until it ends. On PostgreSQL,
    only if no other transaction uses the table right now: one that reads it and then
    wants to write would deadlock with us. SQLite's one writer always has it (readers
    keep their snapshots)."""
    if conn.dialect.name != "postgresql":
        return True
    try:
        with conn.begin_nested():  # a refused lock must not abort the transaction
            conn.execute(text(f"LOCK TABLE {table.name} IN ACCESS EXCLUSIVE MODE NOWAIT"))
    except OperationalError:
        return False
    return True


@contextmanager
def constants_as_defaults(
    conn: Connection, table: Table, constants: Mapping[str, object]
) -> Iterator[dict[str, object]]:
    """For the block, `constants` become their columns' defaults on PostgreSQL, so that
    COPY neither sends them nor parses them again for every row (two timestamps cost 1.1
    s a million rows). Yields the constants `insert_frame` must still be given: none on
    PostgreSQL; all on SQLite, which puts them in its statements once anyway.

    Changing a default locks the table: only for a table this transaction has alone
    (`lock_alone`), and columns without a default of their own.
    """
    for name in constants:
        if table.c[name].server_default is not None:
            raise ValueError(f"{table.name}.{name} has a default of its own")
    if conn.dialect.name != "postgresql" or not constants:
        yield dict(constants)
        return
    quote = conn.dialect.identifier_preparer.quote
    alter = f"ALTER TABLE {quote(table.name)} "
    conn.exec_driver_sql(
        alter
        + ", ".join(
            f"ALTER COLUMN {quote(name)} SET DEFAULT {_sql_literal(conn, value)}"
            for name, value in constants.items()
        )
    )
    yield {}
    conn.exec_driver_sql(
        alter + ", ".join(f"ALTER COLUMN {quote(name)} DROP DEFAULT" for name in constants)
    )


@contextmanager
def without_indexes(
    conn: Connection, indexes: Iterable[Index | PrimaryKeyConstraint]
) -> Iterator[None]:
    """Drop `indexes` for the block, then build them again, inside the caller's
    transaction: one sort per index instead of a million random inserts into each
    (measured on SQLite, a million users: 3.8 s + 2.1 s to build against 8.4 s). Primary
    keys too, on PostgreSQL (SQLite cannot drop one): a million users' memberships load
    with their key built after them in 3.0-3.3 s against 4.4-4.5 s.

    A unique index built again checks every row, so nothing escapes its constraint;
    when that fails, the transaction fails with it and rolls back the drop as well.
    """
    # A key without a name (none of ours) could not be added back under the same one.
    dropped = [
        index
        for index in indexes
        if isinstance(index, Index) or (conn.dialect.name == "postgresql" and index.name)
    ]
    for index in dropped:
        _drop(conn, index)
    yield
    for index in dropped:
        _build(conn, index)


# Primary keys are altered in written-out SQL: SQLAlchemy's AddConstraint (and its
# DropConstraint before 2.1) marks a key as created apart from its table, and every later
# CREATE TABLE of that metadata in the process would then leave the key out.


def _drop(conn: Connection, index: Index | PrimaryKeyConstraint) -> None:
    if isinstance(index, Index):
        conn.execute(DropIndex(index))
    else:
        conn.exec_driver_sql(
            f"ALTER TABLE {_key_table(conn, index)} DROP CONSTRAINT {_key_name(conn, index)}"
        )


def _build(conn: Connection, index: Index | PrimaryKeyConstraint) -> None:
    if isinstance(index, Index):
        conn.execute(CreateIndex(index))
        return
    columns = ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in index.columns)
    conn.exec_driver_sql(
        f"ALTER TABLE {_key_table(conn, index)} ADD CONSTRAINT {_key_name(conn, index)} "
        f"PRIMARY KEY ({columns})"
    )


def _key_table(conn: Connection, key: PrimaryKeyConstraint) -> str:
    return conn.dialect.identifier_preparer.quote(key.table.name)


def _key_name(conn: Connection, key: PrimaryKeyConstraint) -> str:
    return conn.dialect.identifier_preparer.quote(str(key.name))


def insert_unless_exists(
    conn: Connection, table: Table, conflict_columns: Sequence[str] | None = None
) -> Insert:
    """An INSERT into `table` that quietly does nothing when a unique constraint (the one
    on `conflict_columns`, or any) says the row is already there. `ON CONFLICT DO NOTHING`
    reads the same on both databases, but SQLAlchemy builds it per dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
