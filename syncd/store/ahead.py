"""A directory's snapshot read ahead, on a second connection, while the job reads and
validates its file; kept only if it is exactly what the job would read under its lock.
And, before it, the directory's fingerprint sums, which prove a quiet night without any
snapshot (`syncd.core.plan.quiet_plan`).

On a night that changes little, reading the snapshot is most of the planning: about a
second at a million users. Most of that work is the database's and polars', done
without holding Python's GIL, and the file's validation leaves a core partly idle, so
the two overlap almost entirely (measured on a million users on SQLite: the snapshot
0.87 s alone, 1.04 s beside `syncd validate`, which took no longer for it). The price
is memory: the snapshot (about 42 MiB a million users) is held while the file is
checked, where it used to be read after. A night proved quiet takes no snapshot: the
read still running stops (SQLite's progress handler).

The read is kept only if no other connection committed anything between it and the
moment the job holds the directory's lock (the database's write lock): the reading
connection asks SQLite's `PRAGMA data_version` before its read and again once the job is
locked, and that number changes with every commit of any other connection. Equal, the
snapshot is the directory as the lock keeps it; otherwise (or if the read failed) the
job reads it again itself, as it would without this.

The sums (one row) are read ahead on both databases and proved current under the lock
(`sums_current`): on SQLite by the `data_version` of a connection kept idle from before
they were read; on PostgreSQL by the transactions that wrote `users` (`users_writes`,
noted by a trigger), none of which the sums' REPEATABLE READ snapshot did not see may
have committed. Not proved, the job reads them again under its lock (0.3 to 1 s a
million users) when they match its file.

On PostgreSQL no snapshot is read ahead. Its snapshot comes by COPY, a message per row,
and the loop that gathers them holds the GIL: beside a 5,000,000-row validation it made
the validation 6.9 s instead of 4.7 and the job 0.2 to 0.5 GiB bigger at its peak. A
SQLite database in memory has no second connection onto the same data: nothing is read
ahead there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import structlog
from sqlalchemy import Connection, Engine, Select, delete, func, select, text

from syncd.core.plan import FingerprintSums
from syncd.store.directory import SNAPSHOT_SCHEMA, fingerprint_sums, snapshot
from syncd.store.schema import directories, users_writes

log = structlog.get_logger("syncd.store")


@dataclass(frozen=True, slots=True)
class _Read:
    directory_id: int | None  # None: the directory did not exist yet
    frame: pl.DataFrame


class SnapshotAhead:
    """The snapshot of the directory `directory`, being read on a connection of `engine`
    of its own (on a SQLite file; elsewhere `take` reads it on the job's connection), and
    its fingerprint sums before it (on any database file). `take` it, or ask for the sums,
    once the directory is locked; `close` it in any case."""

    def __init__(self, engine: Engine, directory: str) -> None:
        self._engine = engine
        self._directory = directory
        self._locked = threading.Event()  # set by `take` (the job holds the lock) or `close`
        self._closed = False
        self._read: _Read | None = None
        self.ended = threading.Event()  # the read is done (or failed, or never began)
        self.current: bool | None = None  # after `take`: whether the read ahead was used
        self._sums: FingerprintSums | None = None
        self._summed = threading.Event()  # the sums are read (or failed, or never began)
        self._thread: threading.Thread | None = None
        self._sum_thread: threading.Thread | None = None
        # PostgreSQL: the snapshot the sums were read in, and when (the server's clock).
        self._seen: tuple[str, datetime] | None = None
        in_memory = (engine.url.database or "") in ("", ":memory:")
        self._sentinel: Any = None
        self._version = 0
        if engine.dialect.name == "sqlite" and not in_memory:
            # Idle all along, so its `data_version` can be asked whenever: unchanged, no
            # other connection committed since before the read began (`sums_current`).
            try:
                self._sentinel = engine.raw_connection()
                self._version = _data_version(self._sentinel)
            except Exception:  # the sums are then read again under the lock
                log.warning("sums_sentinel_failed", directory=directory, exc_info=True)
                self._close_sentinel()
            self._thread = threading.Thread(
                target=self._read_ahead, name=f"snapshot-ahead:{directory}", daemon=False
            )
            self._thread.start()
        elif engine.dialect.name != "sqlite":
            # Only the sums: one row, read without the GIL.
            self.ended.set()
            self._sum_thread = threading.Thread(
                target=self._sum_ahead, name=f"sums-ahead:{directory}", daemon=False
            )
            self._sum_thread.start()
        else:
            self.ended.set()
            self._summed.set()

    def guessed_sums(self) -> FingerprintSums | None:
        """The directory's active users' fingerprints summed as they were when the job
        began (`syncd.core.plan.quiet_plan`), or None if they could not be read ahead. A
        guess until `sums_current` proves it; a mismatch with the file's spares the job
        the proof on a night that changes something."""
        self._summed.wait()
        return self._sums

    def sums_current(self, conn: Connection) -> bool:
        """Whether the sums read ahead are the directory's as the lock `conn` holds keeps
        it: nobody else committed a change to it since before they were read.
        - SQLite: `data_version`, asked of a connection kept idle for it, is unchanged
          (no commit at all, to any table, by another connection).
        - PostgreSQL: the sums were read in a REPEATABLE READ transaction, whose snapshot
          (`pg_current_snapshot()`) says which transactions it saw; of the transactions
          that wrote `users` (`users_writes`), none it did not see (running then, or
          begun since) has committed by now, as `conn` sees it. Commits that wrote no
          user (autovacuum's, the jobs table's, other databases') do not count. A read
          older than `_PROOF_AGE` is not proved: the rows kept may no longer say.
        """
        if self._sums is None:
            return False
        if self._sentinel is not None:
            return bool(_data_version(self._sentinel) == self._version)
        return self._seen is not None and not users_written_since(conn, *self._seen)

    def take(self, conn: Connection, directory_id: int) -> pl.DataFrame:
        """The snapshot of the directory, locked as `directory_id` on `conn`: the one read
        ahead if nothing was committed since it was read, else read now on `conn`."""
        self._locked.set()
        if self._thread is not None:
            self._thread.join()
        read, self._read = self._read, None
        # A directory missing when it was read, and unchanged since, was created by the
        # caller's own lock (not yet committed): it has no users.
        self.current = read is not None and read.directory_id in (None, directory_id)
        if read is None or not self.current:
            del read  # not held beside the one read now (210 MiB at 5,000,000 users)
            if self._thread is not None:
                log.debug("snapshot_read_again", directory=self._directory)
            return snapshot(conn, directory_id)
        log.debug("snapshot_read_ahead", directory=self._directory, users=read.frame.height)
        return read.frame

    def close(self) -> None:
        """Let the read go (if `take` did not take it): a read still running stops."""
        self._closed = True
        self._read = None
        self._locked.set()
        if self._sum_thread is not None:  # one row: its connection is back in the pool
            self._sum_thread.join()
        self._close_sentinel()

    def _close_sentinel(self) -> None:
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            sentinel.close()

    def _stopped(self) -> int:
        """SQLite's progress handler: non-zero stops the running statement."""
        return int(self._closed)

    def _read_ahead(self) -> None:
        try:
            with self._engine.connect() as conn:
                driver: Any = conn.connection.driver_connection
                # A job that needs no snapshot (`close` before `take`) stops the read,
                # which would take a core from what the job still does.
                driver.set_progress_handler(self._stopped, 100_000)
                try:
                    self._read_in(conn, driver)
                finally:  # before the connection goes back to the pool
                    driver.set_progress_handler(None, 0)
        except Exception:  # the job reads the snapshot itself, as without this
            if not self._closed:
                log.warning("snapshot_read_ahead_failed", directory=self._directory, exc_info=True)
        finally:
            self._summed.set()
            self.ended.set()

    def _read_in(self, conn: Connection, driver: Any) -> None:
        before = _data_version(driver)
        # A read transaction, whatever the engine's default: the database's write lock
        # stays free for the job (and anyone else) while this reads.
        conn.execution_options(sqlite_begin="DEFERRED")
        with conn.begin():
            found, frame = self._snapshot(conn)
        self.ended.set()
        self._locked.wait()
        if not self._closed and _data_version(driver) == before:
            self._read = _Read(found, frame)

    def _sum_ahead(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    seen, began = conn.execute(
                        text("SELECT pg_current_snapshot()::text, now()")
                    ).one()
                    found = conn.scalar(self._directory_query())
                    if found is not None:
                        self._sums = fingerprint_sums(conn, int(found))
                        self._seen = (str(seen), began)
        except Exception:  # the job reads them under its lock instead
            log.warning("sums_read_ahead_failed", directory=self._directory, exc_info=True)
        finally:
            self._summed.set()

    def _directory_query(self) -> Select[Any]:
        return select(directories.c.id).where(directories.c.name == self._directory)

    def _snapshot(self, conn: Connection) -> tuple[int | None, pl.DataFrame]:
        found = conn.scalar(self._directory_query())
        if found is None:
            self._summed.set()
            return None, pl.DataFrame(schema=SNAPSHOT_SCHEMA)
        self._sums = fingerprint_sums(conn, int(found))
        self._summed.set()
        return int(found), snapshot(conn, int(found))


def _data_version(driver: Any) -> int:
    """SQLite's count of other connections' commits, as this connection has seen them."""
    return int(driver.execute("PRAGMA data_version").fetchone()[0])


#: How long the rows of `users_writes` are kept (`prune_users_writes`); a read ahead
#: older than half that when its job holds the lock is never proved current.
USERS_WRITES_KEPT = timedelta(days=1)
_PROOF_AGE = USERS_WRITES_KEPT / 2


_UNSEEN_WRITE = text(
    "SELECT EXISTS (SELECT 1 FROM users_writes WHERE NOT pg_visible_in_snapshot("
    " CAST(CAST(xid AS text) AS xid8), CAST(:seen AS pg_snapshot))),"
    " now() - CAST(:began AS timestamptz) > :age"
)


def prune_users_writes(conn: Connection) -> None:
    """Forget the transactions that wrote `users` more than `USERS_WRITES_KEPT` ago (on
    PostgreSQL; nothing writes them elsewhere)."""
    if conn.dialect.name == "postgresql":
        conn.execute(delete(users_writes).where(users_writes.c.at < func.now() - USERS_WRITES_KEPT))


def users_written_since(conn: Connection, seen: str, began: datetime) -> bool:
    """Whether a transaction that wrote `users` and that PostgreSQL's snapshot `seen` did
    not see has committed by now, as `conn`'s next statement sees it (`users_writes`),
    or the read is too old for the rows kept to say."""
    written, stale = conn.execute(
        _UNSEEN_WRITE, {"seen": seen, "began": began, "age": _PROOF_AGE}
    ).one()
    return bool(written or stale)


@contextmanager
def snapshot_ahead(engine: Engine, directory: str) -> Iterator[SnapshotAhead]:
    """The snapshot of `directory` read ahead on `engine` (see the module), let go on
    leaving whether it was taken or not."""
    ahead = SnapshotAhead(engine, directory)
    try:
        yield ahead
    finally:
        ahead.close()
