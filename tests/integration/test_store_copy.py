"""PostgreSQL's COPY in both formats (`syncd.store.pgcopy`): binary for rows that carry
text, CSV for narrow rows of numbers, and every kind of value stored exactly either way;
two nights applied leave on PostgreSQL the directory they leave on SQLite.

The COPY statements are recorded as syncd sends them (the real `_copy` runs), so each
test knows which format carried its rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.exc import DataError

from syncd.store import apply, bulk, ensure_schema, make_engine, pgcopy
from syncd.store.apply import apply_plan
from syncd.store.bulk import insert_frame
from syncd.store.directory import directory_id, list_users, snapshot
from syncd.store.schema import UtcDateTime, users
from tests.integration.test_store_directory import ANN, make_plan, records, with_ids

KINDS = Table(
    "kinds",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("name", String),
    Column("note", Text),
    Column("small", SmallInteger),
    Column("count", Integer),
    Column("flag", Boolean),
    Column("at", UtcDateTime),
    Column("tags", ARRAY(Text)),
)
# A microsecond, and an instant given in another zone than UTC: both must survive.
AT = datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-5)))
ROWS = [
    (1, "Zoë Łukasz 日本", "", 0, 0, True, AT),
    (2, 'a "quoted", text', "line one\nline two\ttabbed", -32768, -(2**31), False, None),
    (3, "\\ back\\slash ' and \x01", None, 32767, 2**31 - 1, None, AT.astimezone(UTC)),
    (2**40, None, "{}", None, None, True, datetime(1970, 1, 1, tzinfo=UTC)),
]
SCALARS = pl.Schema(
    {
        "id": pl.Int64,
        "name": pl.String,
        "note": pl.String,
        "small": pl.Int16,
        "count": pl.Int64,
        "flag": pl.Boolean,
        "at": pl.Datetime("us", "UTC"),
    }
)


@pytest.fixture
def conn(postgres_url: str) -> Iterator[Connection]:
    """A transaction on a fresh PostgreSQL database with the `kinds` table."""
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        KINDS.metadata.create_all(conn)
        yield conn
    engine.dispose()


@pytest.fixture
def formats(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The format of every COPY ... FROM STDIN sent, in order."""
    sent: list[str] = []
    real = pgcopy._copy

    def recording(conn: Connection, statement: str, params: object = None) -> object:
        if "FROM STDIN" in statement:
            sent.append(statement.rsplit("FORMAT ", 1)[1].rstrip(")"))
        return real(conn, statement, params)  # type: ignore[arg-type]

    monkeypatch.setattr(pgcopy, "_copy", recording)
    return sent


def stored(conn: Connection, *columns: str) -> list[tuple[object, ...]]:
    """The rows of `kinds`, by id."""
    query = select(*(KINDS.c[name] for name in columns)).order_by(KINDS.c.id)
    return [tuple(row) for row in conn.execute(query)]


@pytest.mark.parametrize("chosen", ["binary", "csv"])
def test_every_kind_of_value_is_stored_exactly_in_either_format(
    conn: Connection, formats: list[str], monkeypatch: pytest.MonkeyPatch, chosen: str
) -> None:
    """Text (non-ASCII, quotes, newlines, backslashes, empty apart from null), integers
    at the edges of their types, booleans, nulls and timestamps (to the microsecond,
    given in any zone) come back as they went in, in rows sent as `chosen`."""
    monkeypatch.setattr(pgcopy, "_BINARY_FROM_TEXT_BYTES", 0 if chosen == "binary" else 10**9)
    insert_frame(conn, KINDS, pl.DataFrame(ROWS, schema=SCALARS, orient="row"))
    assert formats == [chosen]
    assert stored(conn, *SCALARS) == ROWS


def test_a_constant_timestamp_is_stored_exactly_in_either_format(
    conn: Connection, formats: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timestamp given as a constant (as `db_time` gives it) reaches every row exactly."""
    for chosen, ids in (("binary", [1, 2]), ("csv", [3])):
        monkeypatch.setattr(pgcopy, "_BINARY_FROM_TEXT_BYTES", 0 if chosen == "binary" else 10**9)
        frame = pl.DataFrame({"id": ids, "name": ["n"] * len(ids)})
        insert_frame(conn, KINDS, frame, {"at": bulk.db_time(conn, KINDS.c.at, AT)})
    assert formats == ["binary", "csv"]
    assert stored(conn, "id", "at") == [(1, AT), (2, AT), (3, AT)]


@pytest.mark.parametrize("chosen", ["binary", "csv"])
def test_rows_sent_in_batches_all_arrive_with_their_constants(
    conn: Connection, formats: list[str], monkeypatch: pytest.MonkeyPatch, chosen: str
) -> None:
    """Rows sent a few at a time, the last batch short, all arrive, each with the
    constants, in one COPY of the chosen format."""
    monkeypatch.setattr(pgcopy, "_BATCH_ROWS", 3)
    monkeypatch.setattr(pgcopy, "_BINARY_FROM_TEXT_BYTES", 0 if chosen == "binary" else 10**9)
    frame = pl.DataFrame({"id": range(1, 11), "name": [f"Zoë {i}" for i in range(1, 11)]})
    insert_frame(conn, KINDS, frame, {"note": "shared", "small": 7})
    assert formats == [chosen]
    expected = [(i, f"Zoë {i}", "shared", 7) for i in range(1, 11)]
    assert stored(conn, "id", "name", "note", "small") == expected


def test_lists_are_stored_as_arrays(conn: Connection, formats: list[str]) -> None:
    """A list column (which CSV cannot carry) goes in binary: empty lists, null lists,
    null and non-ASCII items come back as they went in."""
    tags = [["a", "b, c", '"q"', "{x}"], [], None, [None, "Łódź"]]
    frame = pl.DataFrame(
        {"id": [1, 2, 3, 4], "tags": tags}, schema={"id": pl.Int64, "tags": pl.List(pl.String)}
    )
    insert_frame(conn, KINDS, frame)
    assert formats == ["binary"]
    assert stored(conn, "tags") == [(t,) for t in tags]


def test_wide_rows_of_text_go_binary_and_narrow_rows_csv(
    conn: Connection, formats: list[str]
) -> None:
    """Rows with a few dozen bytes of text go in binary; rows of numbers and short text
    in CSV, which is faster for them."""
    wide = pl.DataFrame({"id": [1, 2], "name": ["x" * 40, "Zoë " * 10], "small": [1, 2]})
    narrow = pl.DataFrame({"id": [3, 4], "name": ["a", "b"], "small": [1, 2]})
    numbers = pl.DataFrame({"id": [5, 6], "small": [1, 2]})
    for frame in (wide, narrow, numbers):
        insert_frame(conn, KINDS, frame)
    assert formats == ["binary", "csv", "csv"]
    assert [row[0] for row in stored(conn, "id")] == [1, 2, 3, 4, 5, 6]


def test_an_integer_too_big_for_its_column_is_refused_not_cut(
    conn: Connection, formats: list[str]
) -> None:
    """70,000 for a smallint is refused by the server as out of range (binary COPY would
    have stored its lowest bytes, 4,464)."""
    frame = pl.DataFrame({"id": [1], "name": ["x" * 40], "small": [70_000]})
    with pytest.raises(DataError, match="out of range"):
        insert_frame(conn, KINDS, frame)
    assert formats == ["csv"]


def test_values_held_otherwise_than_their_column_still_load(
    conn: Connection, formats: list[str]
) -> None:
    """Numbers as text for an integer column, text for a timestamp and a number for a
    text column go in CSV, and the server reads them as their columns' types."""
    frame = pl.DataFrame(
        {
            "id": ["42"],
            "name": [12345],
            "note": ["x" * 40],
            "at": ["2026-11-30T23:59:59.999999-05:00"],
        }
    )
    insert_frame(conn, KINDS, frame)
    assert formats == ["csv"]
    assert stored(conn, "id", "name", "at") == [(42, "12345", AT)]


# Two nights of a directory: every kind of value a user holds, non-ASCII text, nulls,
# empty lists, an archived user; then changed emails, names, lists and custom fields, a
# reactivation, an archive, a refresh and creates into a table no longer empty.
T0 = datetime(2026, 11, 22, 3, 0, 0, 123_456, tzinfo=UTC)
T1 = T0 + timedelta(days=1, microseconds=1)
FIRST = [
    ANN | {"first_name": "Zoë", "last_name": "Łukasiewicz-Ødegård", "display_name": "日本 太郎"},
    {"key": "e2", "email": "bob@example.com", "status": "archived", "groups": []},
    {
        "key": "e3",
        "email": "Søren.Kierkegaard@Example.COM",
        "display_name": 'a "quoted", name\nwith a newline and \\ a backslash',
        "labels": [],
        "field:start_date": "2020-01-31",
    },
    {"key": "e4", "email": "dana@example.com"},
    {"key": "e5", "email": "eve@example.com", "groups": ["Sales"], "role": "User"},
]
LATER = [
    {"key": "e6", "email": "Ngọc.Nguyễn@example.com", "groups": ["Support", "Sales"]},
    {"key": "e7", "email": "ole@example.com", "labels": ["Ünïcode", "plain"]},
]


def two_nights(url: str) -> list[dict[str, Any]]:
    """The directory as `syncd users list --json` gives it after both nights on `url`."""
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        hr = directory_id(conn, "hr")
        plan = make_plan(creates=records(FIRST))
        apply_plan(conn, hr, plan, job_id="J1", now=T0, password_hashes={"e1": "$argon2id$a"})
    with engine.begin() as conn:
        changed = [
            FIRST[0] | {"email": "Ann.Lee-Park@Example.org", "groups": [], "field:remote": None},
            FIRST[2] | {"labels": ["Ünïcode"], "display_name": "Søren K."},
            FIRST[1] | {"status": "active"},
        ]
        updates = pl.concat(
            [
                with_ids(
                    conn, records(changed[:1]), hr, changed=["email", "groups", "field:remote"]
                ),
                with_ids(conn, records(changed[1:2]), hr, changed=["labels", "display_name"]),
                with_ids(conn, records(changed[2:]), hr, reactivate=True),
            ],
            how="diagonal_relaxed",
        )
        ids = snapshot(conn, hr).select("user_id", "key")
        archives = ids.filter(pl.col("key") == "e4").with_columns(reason=pl.lit("missing"))
        refresh = ids.filter(pl.col("key") == "e5").select(
            "user_id", fingerprint=pl.lit(-(2**63), pl.Int64)
        )
        plan = make_plan(
            creates=records(LATER), updates=updates, archives=archives, refresh=refresh
        )
        apply_plan(conn, hr, plan, job_id="J2", now=T1)
    with engine.connect() as conn:
        views = [view.as_json() for view in list_users(conn)]
        stored = conn.execute(
            select(
                users.c.key, users.c.email_lc, users.c.password_hash, users.c.fingerprint
            ).order_by(users.c.key)
        )
        extra = {row.key: row._asdict() for row in stored}
    engine.dispose()
    return [view | extra[str(view["key"])] for view in views]


@pytest.mark.parametrize("chosen", ["binary", "csv"])
def test_two_nights_leave_on_postgresql_the_directory_they_leave_on_sqlite(
    postgres_url: str,
    tmp_path: Path,
    formats: list[str],
    monkeypatch: pytest.MonkeyPatch,
    chosen: str,
) -> None:
    """A first load taking the tables alone (in slices) and a night of every kind of
    change store on PostgreSQL, in either COPY format, exactly what they store on
    SQLite: text, nulls, empty lists, custom fields and timestamps to the microsecond."""
    monkeypatch.setattr(apply, "_LOAD_ALONE_FROM", 1)
    monkeypatch.setattr(apply, "_SLICE", 2)
    expected = two_nights(f"sqlite:///{tmp_path / 'syncd.db'}")
    assert formats == []
    monkeypatch.setattr(pgcopy, "_BINARY_FROM_TEXT_BYTES", 0 if chosen == "binary" else 10**9)
    got = two_nights(postgres_url)
    assert got == expected
    # Rows without text (memberships, staged ids) go in CSV whatever the choice.
    assert chosen in formats
    assert chosen == "binary" or set(formats) == {"csv"}
    by_key = {user["key"]: user for user in got}
    assert (by_key["e1"]["created_at"], by_key["e1"]["updated_at"]) == (
        T0.isoformat(),
        T1.isoformat(),
    )
    assert by_key["e2"]["archived_at"] is None
    assert (by_key["e2"]["status"], by_key["e4"]["status"]) == ("active", "archived")
    assert by_key["e4"]["archived_at"] == T1.isoformat()
    assert by_key["e3"]["display_name"] == "Søren K."
    assert by_key["e6"]["groups"] == ["Support", "Sales"]
