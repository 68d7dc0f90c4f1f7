"""Moving whole frames in and out of the database (`syncd.store.bulk`), on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from syncd.store import bulk, pgcopy
from syncd.store.bulk import (
    constants_as_defaults,
    insert_frame,
    lock_alone,
    new_ids,
    read_frame,
    without_indexes,
)
from syncd.store.engine import make_engine
from syncd.store.schema import Id

SCHEMA = pl.Schema({"id": pl.Int64, "name": pl.String, "note": pl.String})


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database, with the `things` table (and its index)."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        THINGS.metadata.create_all(conn)
    yield engine
    engine.dispose()


THINGS = Table(
    "things",
    MetaData(naming_convention={"pk": "pk_%(table_name)s"}),
    Column("id", Id, primary_key=True),
    Column("name", String),
    Column("note", String),
    Column("batch", String),
)
UNIQUE_NAME = Index("uq_things_name", THINGS.c.name, unique=True)


def things(conn: Connection) -> pl.DataFrame:
    """Every row of `things`, by id."""
    query = select(THINGS.c.id, THINGS.c.name, THINGS.c.note).order_by(THINGS.c.id)
    return read_frame(conn, query, SCHEMA)


def test_values_come_back_exactly_as_stored(conn: Connection) -> None:
    """Nulls stay apart from empty strings; quotes, commas, newlines, tabs, non-ASCII
    text and ids beyond 32 bits survive the round trip."""
    awkward = [
        (1, None, ""),
        (2, 'a "quoted", text', "line one\nline two\ttabbed"),
        (3, "Zoë Łukasz 日本", "\\ back\\slash ' and \x01"),
        (2**40, "[1, 2]", "{}"),
    ]
    frame = pl.DataFrame(awkward, schema=SCHEMA, orient="row")
    insert_frame(conn, THINGS, frame)
    assert things(conn).rows() == awkward


# Any text PostgreSQL stores (no NUL) and SQLite too; quotes, commas and line ends above all.
_TEXT = st.none() | st.text(
    st.sampled_from("\"\n\r,a' é")
    | st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(_TEXT, _TEXT), max_size=12, unique_by=lambda row: row[0]),
    part=st.sampled_from([1, 2, 5, 40]),
)
def test_values_read_in_parts_come_back_exactly_as_stored(
    conn: Connection,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[tuple[str | None, str | None]],
    part: int,
) -> None:
    """Read a few bytes of text at a time (PostgreSQL parses COPY's text in parts, each
    cut where a record ends), any text comes back exactly, in order; each part read is
    handed to `each`, and together they are every row."""
    monkeypatch.setattr(pgcopy, "_OUT_BYTES", part)
    conn.execute(THINGS.delete())
    stored = [(i + 1, name, note) for i, (name, note) in enumerate(rows)]
    insert_frame(conn, THINGS, pl.DataFrame(stored, schema=SCHEMA, orient="row"))
    seen: list[int] = []

    def each(part: pl.DataFrame) -> pl.DataFrame:
        seen.append(part.height)
        return part.with_columns(pl.col("name").str.len_chars().alias("length"))

    query = select(THINGS.c.id, THINGS.c.name, THINGS.c.note).order_by(THINGS.c.id)
    got = read_frame(conn, query, SCHEMA, each)
    assert got.drop("length").rows() == stored
    assert got["length"].to_list() == [None if n is None else len(n) for _, n, _ in stored]
    assert sum(seen) == len(stored)
    if conn.dialect.name == "postgresql" and part == 1 and len(stored) > 1:
        assert len(seen) > 1


def test_reading_nothing_gives_an_empty_frame_with_the_schema(conn: Connection) -> None:
    """A query without rows still gives the frame's columns and types."""
    got = things(conn)
    assert got.height == 0
    assert got.schema == SCHEMA


def test_every_row_is_inserted_with_the_constants_in_slices(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are written in slices and statements of many rows, the remainders included;
    constants reach every row; a column that is all null is left to its default."""
    monkeypatch.setattr(bulk, "_SQLITE_BATCH_ROWS", 7)
    monkeypatch.setattr(bulk, "_SQLITE_ROWS_PER_STATEMENT", 3)
    monkeypatch.setattr(pgcopy, "_BATCH_ROWS", 7)
    frame = pl.DataFrame(
        {"id": range(1, 24), "name": [f"n{i}" for i in range(1, 24)], "note": [None] * 23},
        schema=SCHEMA,
    )
    insert_frame(conn, THINGS, frame, {"batch": "it's b1"})
    assert things(conn).equals(frame)
    batches = conn.execute(select(THINGS.c.batch, func.count()).group_by(THINGS.c.batch)).all()
    assert [tuple(row) for row in batches] == [("it's b1", 23)]


def test_new_ids_are_unused_and_taken_by_the_rows_given_them(conn: Connection) -> None:
    """Ids drawn for new rows clash with no row there is (given its id by the column's
    default), nor with ids drawn later."""
    insert_frame(conn, THINGS, pl.DataFrame({"name": ["old"]}))
    (old,) = conn.scalars(select(THINGS.c.id)).all()
    first = new_ids(conn, THINGS, 3)
    assert first.len() == 3
    assert first.n_unique() == 3
    assert old not in first.to_list()
    insert_frame(conn, THINGS, pl.DataFrame({"id": first, "name": ["a", "b", "c"]}))
    second = new_ids(conn, THINGS, 2)
    assert set(second.to_list()).isdisjoint({old, *first.to_list()})
    assert new_ids(conn, THINGS, 0).len() == 0


@pytest.mark.parametrize("count", [1, 5])
def test_ids_reserved_alone_are_unused_and_the_ones_after_follow_them(
    engine: Engine, count: int
) -> None:
    """Ids reserved for a table this transaction has alone clash with no row there is,
    and rows added after it (drawn ids, or the column's default) clash with none of
    them."""
    with engine.begin() as conn:
        insert_frame(conn, THINGS, pl.DataFrame({"name": ["old"]}))
    with engine.begin() as conn:
        assert lock_alone(conn, THINGS)
        ids = new_ids(conn, THINGS, count, alone=True)
        assert ids.n_unique() == count
        names = [f"new{i}" for i in range(count)]
        insert_frame(conn, THINGS, pl.DataFrame({"id": ids, "name": names}))
    with engine.begin() as conn:
        later = new_ids(conn, THINGS, 2)
        insert_frame(conn, THINGS, pl.DataFrame({"id": later, "name": ["a", "b"]}))
        insert_frame(conn, THINGS, pl.DataFrame({"name": ["by default"]}))
        assert things(conn)["id"].n_unique() == count + 4


@pytest.mark.postgres
def test_nobody_draws_an_id_while_ids_are_reserved(postgres_url: str) -> None:
    """While a transaction holds ids it reserved alone, another that would take one
    waits (here: gives up after its lock timeout) instead of drawing inside them; once
    the first ends, it gets one after them."""
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        THINGS.metadata.create_all(conn)
    with engine.begin() as conn, engine.connect() as other:
        assert lock_alone(conn, THINGS)
        ids = new_ids(conn, THINGS, 1000, alone=True)
        other.exec_driver_sql("SET lock_timeout = '200ms'")
        other.commit()
        with pytest.raises(OperationalError, match="lock timeout"), other.begin():
            new_ids(other, THINGS, 1)
    with engine.begin() as conn:
        (after,) = new_ids(conn, THINGS, 1).to_list()
    assert after > ids.max()  # type: ignore[operator]
    engine.dispose()


def test_indexes_dropped_for_a_load_are_built_again(conn: Connection) -> None:
    """After the block the unique index is back and refuses a duplicate."""
    with without_indexes(conn, [UNIQUE_NAME]):
        insert_frame(conn, THINGS, pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}))
    with pytest.raises(IntegrityError), conn.begin_nested():
        insert_frame(conn, THINGS, pl.DataFrame({"id": [3], "name": ["a"]}))


def test_a_duplicate_loaded_without_the_index_fails_its_rebuild(engine: Engine) -> None:
    """Rows that break a unique index dropped for the load make the rebuild fail, and the
    rollback leaves the table and its index as they were."""
    with (
        pytest.raises(IntegrityError),
        engine.begin() as conn,
        without_indexes(conn, [UNIQUE_NAME]),
    ):
        insert_frame(conn, THINGS, pl.DataFrame({"id": [1, 2], "name": ["a", "a"]}))
    with engine.begin() as conn:
        assert things(conn).height == 0
        insert_frame(conn, THINGS, pl.DataFrame({"id": [1], "name": ["a"]}))
        with pytest.raises(IntegrityError), conn.begin_nested():
            insert_frame(conn, THINGS, pl.DataFrame({"id": [2], "name": ["a"]}))


def test_a_table_another_transaction_uses_is_not_taken_alone(engine: Engine) -> None:
    """On PostgreSQL a table another transaction is reading is not locked (that could
    deadlock), and the refusal leaves this transaction usable; free, it is taken."""
    with engine.connect() as other, other.begin():
        things(other)
        with engine.begin() as conn:
            alone = lock_alone(conn, THINGS)
            assert alone is (conn.dialect.name != "postgresql")
            assert things(conn).height == 0
    with engine.begin() as conn:
        assert lock_alone(conn, THINGS)


def test_shared_values_are_defaults_only_for_the_load(conn: Connection) -> None:
    """Rows loaded while the constants are column defaults get them; after the block a
    row without them gets NULL again, and a column with a default of its own is refused."""
    with constants_as_defaults(conn, THINGS, {"batch": "b1"}) as sent:
        insert_frame(conn, THINGS, pl.DataFrame({"id": [1], "name": ["a"]}), sent)
    insert_frame(conn, THINGS, pl.DataFrame({"id": [2], "name": ["b"]}))
    got = conn.execute(select(THINGS.c.id, THINGS.c.batch).order_by(THINGS.c.id)).all()
    assert [tuple(row) for row in got] == [(1, "b1"), (2, None)]
    defaulted = Table("defaulted", MetaData(), Column("kind", String, server_default="x"))
    with (
        pytest.raises(ValueError, match="default of its own"),
        constants_as_defaults(conn, defaulted, {"kind": "y"}),
    ):
        pass


def test_a_primary_key_dropped_for_a_load_is_built_again(conn: Connection) -> None:
    """A primary key left out of a load (PostgreSQL drops it, SQLite keeps it) is there
    after the block and refuses a duplicate."""
    with without_indexes(conn, [THINGS.primary_key]):
        insert_frame(conn, THINGS, pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}))
    with pytest.raises(IntegrityError), conn.begin_nested():
        insert_frame(conn, THINGS, pl.DataFrame({"id": [2], "name": ["c"]}))


def test_a_duplicate_key_loaded_without_its_primary_key_fails_the_load(engine: Engine) -> None:
    """Rows sharing a primary key fail the load (on PostgreSQL when the key is built again)
    and nothing of them stays."""
    with (
        pytest.raises(IntegrityError),
        engine.begin() as conn,
        without_indexes(conn, [THINGS.primary_key]),
    ):
        insert_frame(conn, THINGS, pl.DataFrame({"id": [1, 1], "name": ["a", "b"]}))
    with engine.begin() as conn:
        assert things(conn).height == 0
