"""The planner's snapshot read ahead on a second connection (`syncd.store.ahead`): what a
job takes is always the directory as its lock keeps it, whatever was committed meanwhile;
and so are the fingerprint sums that prove a quiet night (`syncd.core.plan.quiet_plan`)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, insert, select, text, update

from syncd import flow
from syncd.config import load_config
from syncd.core import plan as planner
from syncd.intake import Drop
from syncd.runtime import Runtime, open_runtime
from syncd.store.ahead import (
    USERS_WRITES_KEPT,
    SnapshotAhead,
    prune_users_writes,
    snapshot_ahead,
    users_written_since,
)
from syncd.store.apply import apply_plan
from syncd.store.directory import (
    SNAPSHOT_SCHEMA,
    directory_id,
    fingerprint_sums,
    lock_directory,
    snapshot,
)
from syncd.store.engine import ensure_schema, make_engine
from syncd.store.schema import users, users_writes
from tests.integration.test_flow_memory import _runtime
from tests.integration.test_store_directory import T0, make_plan, records

# Where another connection's commit falls in the read ahead's life.
BEFORE, AFTER_READ, NEVER = "before the read", "after the read, before the lock", "never"
# What it commits.
WRITES = (
    "create",
    "change",
    "archive",
    "delete",
    "other directory",
    "new directory",
    "statistics",
)
# The kinds that write no user: PostgreSQL's proof of the sums holds across them.
NO_USER_WRITTEN = ("new directory", "statistics")


def _people(keys: list[str]) -> pl.DataFrame:
    return records([{"key": k, "email": f"{k}@example.com"} for k in keys])


def _commit(engine: Engine, write: str, serial: int) -> None:
    """One commit on a connection of its own, changing what `hr`'s snapshot holds (or,
    for the last three kinds, a directory beside it, the directories, or only the
    table's statistics, as autovacuum's ANALYZE does)."""
    if write == "statistics":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE users")
        return
    with engine.begin() as conn:
        hr = directory_id(conn, "hr")
        first = users.c.key == "k0"
        if write == "create":
            apply_plan(conn, hr, make_plan(creates=_people([f"new{serial}"])), job_id="W", now=T0)
        elif write == "change":
            conn.execute(update(users).where(first).values(fingerprint=10_000 + serial))
        elif write == "archive":
            conn.execute(update(users).where(first).values(status="archived"))
        elif write == "delete":
            conn.execute(delete(users).where(first))
        elif write == "other directory":
            other = directory_id(conn, "other")
            apply_plan(conn, other, make_plan(creates=_people([f"o{serial}"])), job_id="W", now=T0)
        else:
            directory_id(conn, f"dir{serial}")


def _rows(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return sorted(frame.rows())


SERIALS = count()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    existing=st.integers(min_value=1, max_value=30),
    when=st.sampled_from((BEFORE, AFTER_READ, NEVER)),
    write=st.sampled_from(WRITES),
)
def test_the_snapshot_taken_is_the_directory_under_the_lock(
    engine: Engine, existing: int, when: str, write: str
) -> None:
    """Whatever another connection commits (each kind changes something), and whenever:
    the snapshot a job takes is the one it would read itself under its lock. The read
    ahead is used exactly when no commit came between it and the lock (so this property
    tests both branches). On PostgreSQL nothing is read ahead: the job reads it. The
    fingerprint sums read ahead are said current exactly then too (on PostgreSQL, also
    after a commit that wrote no user), and are then the sums under the lock."""
    # (On SQLite an ANALYZE that finds the statistics unchanged commits nothing.)
    assume(write != "statistics" or engine.dialect.name == "postgresql")
    serial = next(SERIALS)
    with engine.begin() as conn:
        conn.execute(delete(users))
        hr = directory_id(conn, "hr")
        people = _people([f"k{i}" for i in range(existing)])
        apply_plan(conn, hr, make_plan(creates=people), job_id="J", now=T0)
    if when == BEFORE:
        _commit(engine, write, serial)
    with snapshot_ahead(engine, "hr") as ahead:
        assert ahead.ended.wait(30)
        ahead.guessed_sums()  # (PostgreSQL reads only these ahead: they are read too)
        if when == AFTER_READ:
            _commit(engine, write, serial)
        with engine.begin() as conn:
            hr = lock_directory(conn, "hr")
            guessed, current = ahead.guessed_sums(), ahead.sums_current(conn)
            under_lock = fingerprint_sums(conn, hr)
            taken = ahead.take(conn, hr)
            assert taken.schema == SNAPSHOT_SCHEMA
            assert _rows(taken) == _rows(snapshot(conn, hr))
    read_ahead = engine.dialect.name == "sqlite" and when != AFTER_READ
    assert ahead.current is read_ahead
    if current:
        assert guessed == under_lock
    unseen = when == AFTER_READ
    if engine.dialect.name == "postgresql":
        unseen = unseen and write not in NO_USER_WRITTEN
    assert current is not unseen
    if when != AFTER_READ:
        assert guessed == under_lock


def test_a_directory_created_by_the_lock_itself_has_an_empty_snapshot(tmp_path: str) -> None:
    """A first job on a new database: the directory does not exist when the snapshot is
    read ahead; the job's own lock creates it, and the (empty) read ahead stands."""
    engine = make_engine(f"sqlite:///{tmp_path}/syncd.db")
    ensure_schema(engine)
    with snapshot_ahead(engine, "hr") as ahead, engine.begin() as conn:
        hr = lock_directory(conn, "hr")
        taken = ahead.take(conn, hr)
    assert ahead.current is True
    assert taken.height == 0
    assert taken.schema == SNAPSHOT_SCHEMA


def test_a_directory_created_meanwhile_by_another_job_is_read_again(tmp_path: str) -> None:
    """Missing when read ahead, then created with users by someone else: read again."""
    engine = make_engine(f"sqlite:///{tmp_path}/syncd.db")
    ensure_schema(engine)
    with snapshot_ahead(engine, "hr") as ahead:
        assert ahead.ended.wait(30)
        with engine.begin() as conn:
            hr = directory_id(conn, "hr")
            apply_plan(conn, hr, make_plan(creates=_people(["a", "b"])), job_id="W", now=T0)
        with engine.begin() as conn:
            taken = ahead.take(conn, lock_directory(conn, "hr"))
    assert ahead.current is False
    assert sorted(taken["key"].to_list()) == ["a", "b"]


@contextmanager
def _postgres_with(url: str, keys: list[str]) -> Iterator[Engine]:
    """An engine on the PostgreSQL database `url`, migrated, whose directory `hr` holds
    users `keys`; disposed of after."""
    engine = make_engine(url)
    ensure_schema(engine)
    try:
        with engine.begin() as conn:
            hr = directory_id(conn, "hr")
            apply_plan(conn, hr, make_plan(creates=_people(keys)), job_id="J", now=T0)
        yield engine
    finally:
        engine.dispose()


def test_postgresql_reads_nothing_ahead(postgres_url: str) -> None:
    """On PostgreSQL no second connection reads: `take` reads on the job's connection,
    under its lock, what another connection committed just before."""
    with _postgres_with(postgres_url, ["a"]) as engine, snapshot_ahead(engine, "hr") as ahead:
        assert ahead.ended.is_set()
        _commit(engine, "create", 0)
        with engine.begin() as conn:
            taken = ahead.take(conn, lock_directory(conn, "hr"))
    assert sorted(taken["key"].to_list()) == ["a", "new0"]
    assert ahead.current is False


def _night(keys: range, name: str) -> bytes:
    rows = [f"user{i}@example.com,{name}" for i in keys]
    return ("Email,First Name\r\n" + "\r\n".join(rows) + "\r\n").encode()


def _watched_aheads(monkeypatch: pytest.MonkeyPatch) -> list[SnapshotAhead]:
    """The read aheads of the jobs run from now on, in order."""
    aheads: list[SnapshotAhead] = []
    real = flow.store.snapshot_ahead

    @contextmanager
    def watched(engine: Engine, directory: str) -> Iterator[SnapshotAhead]:
        with real(engine, directory) as ahead:
            aheads.append(ahead)
            yield ahead

    monkeypatch.setattr(flow.store, "snapshot_ahead", watched)
    return aheads


def test_a_job_plans_on_the_snapshot_read_while_its_file_was_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A night's job takes the snapshot read ahead; one whose directory gained a user
    between that read and its lock (a command-line upload committed meanwhile) plans on
    the directory as it is then, and updates that user instead of creating it twice."""
    rt = _runtime(tmp_path)
    source = rt.config.sources[0]
    aheads = _watched_aheads(monkeypatch)

    def meanwhile(stage: str) -> None:
        if stage == "validating":  # the read ahead is done: someone else commits
            assert aheads[-1].ended.wait(30)
            with rt.engine.begin() as conn:
                hr = directory_id(conn, "hr")
                late = records([{"key": "user100@example.com", "email": "user100@example.com"}])
                apply_plan(conn, hr, make_plan(creates=late), job_id="OTHER", now=T0)

    try:
        first = flow.run_job(rt, source, Drop("hr.csv", _night(range(100), "Ann")))
        night = flow.run_job(rt, source, Drop("hr.csv", _night(range(99, -1, -1), "Bo")))
        busy = flow.run_job(
            rt, source, Drop("hr.csv", _night(range(101), "Bo")), progress=meanwhile
        )
    finally:
        rt.engine.dispose()
    assert [a.current for a in aheads] == [True, True, False]
    assert (first.counts.created, night.counts.updated) == (100, 100)
    assert busy.status == "applied"
    assert (busy.counts.created, busy.counts.updated, busy.counts.unchanged) == (0, 1, 100)


def test_reading_ahead_leaves_the_write_lock_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an engine whose transactions take SQLite's write lock at once (the daemon's and
    the command line's), the read ahead still only reads: while it is in its transaction
    another connection commits without waiting."""
    path = tmp_path / "syncd.db"
    engine = make_engine(f"sqlite:///{path}").execution_options(sqlite_begin="IMMEDIATE")
    ensure_schema(engine)
    with engine.begin() as conn:
        hr = directory_id(conn, "hr")
        apply_plan(conn, hr, make_plan(creates=_people(["a"])), job_id="J", now=T0)
    writes: list[str] = []
    read = SnapshotAhead._snapshot

    def reading(self: SnapshotAhead, conn: Connection) -> tuple[int | None, pl.DataFrame]:
        found = read(self, conn)
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("COMMIT")
            writes.append("committed")
        except sqlite3.OperationalError as refused:
            writes.append(str(refused))
        finally:
            other.close()
        return found

    monkeypatch.setattr(SnapshotAhead, "_snapshot", reading)
    with snapshot_ahead(engine, "hr") as ahead:
        assert ahead.ended.wait(30)
    engine.dispose()
    assert writes == ["committed"]


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    people=st.lists(
        st.tuples(
            st.none() | st.sampled_from([-(2**63), -1, 0, 2**63 - 1]) | INT64,
            st.sampled_from(["active", "active", "archived"]),
            st.sampled_from(["hr", "hr", "other"]),
        ),
        max_size=12,
    )
)
def test_the_stored_sums_are_the_active_users_fingerprints_summed(
    engine: Engine, people: list[tuple[int | None, str, str]]
) -> None:
    """The database's sums (SQL's `&` and `>>` on BIGINT) are polars' sums of the same
    fingerprints, at either end of their range and without one: over the directory's
    active users only."""
    with engine.begin() as conn:
        conn.execute(delete(users))
        ids = {name: directory_id(conn, name) for name in ("hr", "other")}
        for name in ids:
            mine = [
                {"key": f"k{i}", "email": f"k{i}@example.com", "fingerprint": fp, "status": st_}
                for i, (fp, st_, where) in enumerate(people)
                if where == name
            ]
            if mine:
                frame = records(mine, fingerprint=pl.Int64())
                apply_plan(conn, ids[name], make_plan(creates=frame), job_id="J", now=T0)
        found = fingerprint_sums(conn, ids["hr"])
    active = [fp for fp, status, where in people if where == "hr" and status == "active"]
    assert found == planner.fingerprint_sums(pl.Series("fingerprint", active, pl.Int64))


def _runtime_on(tmp_path: Path, url: str, source: str = "hr") -> Runtime:
    """A runtime on the database at `url`, with one full source (of the directory of
    its name)."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[database]\nurl = "{url}"\n'
        f'[[sources]]\nname = "{source}"\nkind = "local"\npath = "unused"\n'
        f'profile = "default"\nmode = "full"\ndirectory = "{source}"\n',
        encoding="utf-8",
    )
    return open_runtime(load_config(config))


def test_a_quiet_night_is_planned_without_the_snapshot_unless_someone_wrote_meanwhile(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that is the directory, in another order, is planned from the fingerprint
    sums: no snapshot is taken, nothing is written. The same file, while someone edits a
    user between the sums read ahead and the job's lock (as the back office does: a new
    name, the fingerprint cleared), is planned user by user, and puts that user back."""
    rt = _runtime_on(tmp_path, db_url)
    source = rt.config.sources[0]
    aheads = _watched_aheads(monkeypatch)

    def meanwhile(stage: str) -> None:
        if stage == "validating":  # the sums are read ahead: someone edits a user
            assert aheads[-1].guessed_sums() is not None
            with rt.engine.begin() as conn:
                edit = update(users).where(users.c.key == "user7@example.com")
                conn.execute(edit.values(first_name="Zed", fingerprint=None))

    def stamps() -> list[tuple[object, ...]]:
        with rt.engine.connect() as conn:
            return sorted(conn.execute(users.select()).all())

    try:
        flow.run_job(rt, source, Drop("hr.csv", _night(range(50), "Ann")))
        before = stamps()
        quiet = flow.run_job(rt, source, Drop("hr.csv", _night(range(49, -1, -1), "Ann")))
        assert stamps() == before
        edited = flow.run_job(
            rt, source, Drop("hr.csv", _night(range(50), "Ann") + b"\r\n"), progress=meanwhile
        )
        with rt.engine.connect() as conn:
            name = conn.scalar(
                users.select()
                .with_only_columns(users.c.first_name)
                .where(users.c.key == "user7@example.com")
            )
    finally:
        rt.engine.dispose()
    assert quiet.status == "applied"
    assert quiet.counts.unchanged == 50
    assert aheads[1].current is None  # the snapshot was not taken
    assert edited.status == "applied"
    assert (edited.counts.updated, edited.counts.unchanged) == (1, 49)
    assert name == "Ann"


def _writers(conn: Connection) -> set[int]:
    return set(conn.scalars(select(users_writes.c.xid)))


def test_postgresql_notes_each_transaction_that_writes_users_once(postgres_url: str) -> None:
    """Whatever writes `users` (COPY, UPDATE, DELETE, TRUNCATE), its transaction is noted
    once, as PostgreSQL numbers it; a transaction that writes only other tables is not."""
    engine = make_engine(postgres_url)
    ensure_schema(engine)

    def this_transaction(conn: Connection) -> int:
        return int(str(conn.scalar(text("SELECT pg_current_xact_id()::text"))))

    try:
        with engine.begin() as conn:
            hr = lock_directory(conn, "hr")  # the directories table only
            other = this_transaction(conn)
        with engine.begin() as conn:
            apply_plan(conn, hr, make_plan(creates=_people(["a", "b"])), job_id="J", now=T0)
            conn.execute(update(users).where(users.c.key == "a").values(fingerprint=1))
            conn.execute(delete(users).where(users.c.key == "b"))
            loaded = this_transaction(conn)
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE users")
            truncated = this_transaction(conn)
        with engine.connect() as conn:
            noted = sorted(_writers(conn))
    finally:
        engine.dispose()
    assert noted == [loaded, truncated]
    assert other not in noted


def test_postgresql_proves_no_read_older_than_the_writes_it_keeps(postgres_url: str) -> None:
    """A read ahead taken just now, with no user written since, is proved current; the
    same read said to be older than half of what `users_writes` keeps is not, since the
    rows that would disprove it may have been dropped; dropping keeps the recent rows."""
    with _postgres_with(postgres_url, ["a"]) as engine:
        with engine.begin() as conn:
            conn.execute(
                insert(users_writes).values(xid=1, at=datetime.now(UTC) - USERS_WRITES_KEPT)
            )
        with engine.begin() as conn:
            seen, now = conn.execute(text("SELECT pg_current_snapshot()::text, now()")).one()
            fresh = users_written_since(conn, str(seen), now)
            old = users_written_since(conn, str(seen), now - USERS_WRITES_KEPT)
            before = len(_writers(conn))
            prune_users_writes(conn)
            after = _writers(conn)
    assert (fresh, old) == (False, True)
    assert before == 2
    assert len(after) == 1
    assert 1 not in after


def test_postgresql_notes_a_write_by_a_role_that_may_not_write_the_notes(
    postgres_url: str,
) -> None:
    """The application the directory serves may write `users` under a role of its own,
    granted nothing on `users_writes`: its write succeeds and is noted all the same."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    with _postgres_with(postgres_url, ["a"]) as engine:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role}")
            conn.exec_driver_sql(f"GRANT SELECT, UPDATE ON users TO {role}")
        try:
            with engine.begin() as conn:
                before = _writers(conn)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
                conn.execute(update(users).where(users.c.key == "a").values(first_name="Ann"))
                mine = int(str(conn.scalar(text("SELECT pg_current_xact_id()::text"))))
            with engine.begin() as conn:
                after = _writers(conn)
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP OWNED BY {role}")
                conn.exec_driver_sql(f"DROP ROLE {role}")
    assert after - before == {mine}
