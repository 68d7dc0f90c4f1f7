"""A directory's snapshot read ahead, on a second connection, while the job reads and
validates its file; kept only if it is exactly what the job would read under its lock.

On a night that changes little, reading the snapshot is most of the planning: about a
second at a million users. Most of that work is the database's and polars', done
without holding Python's GIL, and the file's validation leaves a core partly idle, so
the two overlap almost entirely (measured on a million users on SQLite: the snapshot
0.87 s alone, 1.04 s beside `syncd validate`, which took no longer for it). The price
is memory: the snapshot (about 90 MiB a million users) is held while the file is
checked, where it used to be read after.

The read is kept only if no other transaction committed anything between it and the
moment the job holds the directory's lock; otherwise (or if the read failed) the job
reads the snapshot again itself, as it would without this. How that is known:
- SQLite: the reading connection asks `PRAGMA data_version` before its read and again
  once the job holds the lock (the database's write lock). The number changes with every
  commit of any other connection.
- PostgreSQL: the read runs in a REPEATABLE READ transaction, whose snapshot
  (`pg_current_snapshot()`) says which transactions it sees. Once locked, the job takes
  its own; a transaction that one sees and the other does not (running at the first,
  or begun since) must not have committed (`pg_xact_status`). Past `_MOST_UNSURE` such
  transactions (a busy server) the job reads again rather than ask about each.
A SQLite database in memory has no second connection onto the same data: nothing is
read ahead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
import structlog
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError

from syncd.store.directory import SNAPSHOT_SCHEMA, snapshot
from syncd.store.schema import directories

log = structlog.get_logger("syncd.store")

# PostgreSQL: past this many transactions that may have committed between the read and
# the lock, the job reads again rather than ask about each.
_MOST_UNSURE = 100_000


@dataclass(frozen=True, slots=True)
class _Read:
    directory_id: int | None  # None: the directory did not exist yet
    frame: pl.DataFrame
    seen: str | None  # PostgreSQL: the snapshot it was read in (pg_current_snapshot)


class SnapshotAhead:
    """The snapshot of the directory `directory`, being read on a connection of `engine`
    of its own (not on a SQLite database in memory: there `take` reads it). `take` it
    once the directory is locked; `close` it in any case."""

    def __init__(self, engine: Engine, directory: str) -> None:
        self._engine = engine
        self._directory = directory
        self._locked = threading.Event()  # set by `take` (the job holds the lock) or `close`
        self._closed = False
        self._read: _Read | None = None
        self.ended = threading.Event()  # the read is done (or failed, or never began)
        self.current: bool | None = None  # after `take`: whether the read ahead was used
        self._thread: threading.Thread | None = None
        if engine.dialect.name == "postgresql" or (engine.url.database or "") not in (
            "",
            ":memory:",
        ):
            self._thread = threading.Thread(
                target=self._read_ahead, name=f"snapshot-ahead:{directory}", daemon=False
            )
            self._thread.start()
        else:
            self.ended.set()

    def take(self, conn: Connection, directory_id: int) -> pl.DataFrame:
        """The snapshot of the directory, locked as `directory_id` on `conn`: the one read
        ahead if nothing was committed since it was read, else read now on `conn`."""
        self._locked.set()
        if self._thread is not None:
            self._thread.join()
        read, self._read = self._read, None
        # A directory missing when it was read, and unchanged since, was created by the
        # caller's own lock (not yet committed): it has no users.
        self.current = (
            read is not None
            and read.directory_id in (None, directory_id)
            and (read.seen is None or not _committed_since(conn, read.seen))
        )
        if read is None or not self.current:
            return snapshot(conn, directory_id)
        log.debug("snapshot_read_ahead", directory=self._directory, users=read.frame.height)
        return read.frame

    def close(self) -> None:
        """Let the read go (if `take` did not take it): its thread ends once it is read."""
        self._closed = True
        self._read = None
        self._locked.set()

    def _read_ahead(self) -> None:
        try:
            with self._engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                    with conn.begin():
                        seen = conn.scalar(text("SELECT pg_current_snapshot()::text"))
                        found, frame = self._snapshot(conn)
                    if not self._closed:
                        self._read = _Read(found, frame, str(seen))
                    return
                driver = conn.connection.driver_connection
                before = _data_version(driver)
                # A read transaction, whatever the engine's default: the database's write
                # lock stays free for the job (and anyone else) while this reads.
                conn.execution_options(sqlite_begin="DEFERRED")
                with conn.begin():
                    found, frame = self._snapshot(conn)
                self.ended.set()
                self._locked.wait()
                if not self._closed and _data_version(driver) == before:
                    self._read = _Read(found, frame, None)
        except Exception:  # the job reads the snapshot itself, as without this
            log.warning("snapshot_read_ahead_failed", directory=self._directory, exc_info=True)
        finally:
            self.ended.set()

    def _snapshot(self, conn: Connection) -> tuple[int | None, pl.DataFrame]:
        query = select(directories.c.id).where(directories.c.name == self._directory)
        found = conn.scalar(query)
        if found is None:
            return None, pl.DataFrame(schema=SNAPSHOT_SCHEMA)
        return int(found), snapshot(conn, int(found))


def _data_version(driver: Any) -> int:
    """SQLite's count of other connections' commits, as this connection has seen them."""
    return int(driver.execute("PRAGMA data_version").fetchone()[0])


def _committed_since(conn: Connection, seen: str) -> bool:
    """Whether a transaction that PostgreSQL's snapshot `seen` did not see has committed
    by now, as `conn`'s next statement sees it (or, past `_MOST_UNSURE`, may have)."""
    now = str(conn.scalar(text("SELECT pg_current_snapshot()::text")))
    if _snapshot_parts(now)[1] - _snapshot_parts(seen)[1] > _MOST_UNSURE:
        return True  # not even counted: that many transactions began since
    unsure = finished_between(seen, now)
    if len(unsure) > _MOST_UNSURE:
        return True
    return bool(unsure) and bool(committed(conn, unsure))


def finished_between(seen: str, now: str) -> set[int]:
    """The transactions that PostgreSQL's snapshot `seen` did not see and `now` no longer
    sees running (text `xmin:xmax:xip,...`): running at `seen` or begun since, and not
    running at `now`. Whichever of them committed, `now` sees and `seen` did not. The
    transaction `now` was taken in is among them (a snapshot never lists its own)."""
    _, seen_end, seen_running = _snapshot_parts(seen)
    _, now_end, now_running = _snapshot_parts(now)
    return (seen_running | set(range(seen_end, max(seen_end, now_end)))) - now_running


def committed(conn: Connection, xids: set[int]) -> set[int]:
    """Those of the transactions `xids` that have committed (`pg_xact_status`); all of
    them if PostgreSQL refuses to say (it keeps the status of recent ones only)."""
    query = text(
        "SELECT x::text FROM unnest(CAST(:xids AS xid8[])) AS x"
        " WHERE pg_xact_status(x) = 'committed'"
    )
    try:
        with conn.begin_nested():  # a refusal leaves the job's transaction usable
            found = conn.scalars(query, {"xids": "{" + ",".join(map(str, xids)) + "}"})
            return {int(x) for x in found}
    except DBAPIError:
        log.warning("snapshot_read_ahead_unchecked", exc_info=True)
        return set(xids)


def _snapshot_parts(value: str) -> tuple[int, int, set[int]]:
    """`xmin:xmax:xip,...` (pg_snapshot's text) as xmin, xmax and the running xids."""
    low, end, running = value.split(":")
    return int(low), int(end), {int(x) for x in running.split(",") if x}


@contextmanager
def snapshot_ahead(engine: Engine, directory: str) -> Iterator[SnapshotAhead]:
    """The snapshot of `directory` read ahead on `engine` (see the module), let go on
    leaving whether it was taken or not."""
    ahead = SnapshotAhead(engine, directory)
    try:
        yield ahead
    finally:
        ahead.close()
