"""Connecting to the database and keeping its schema at the version this syncd needs.

SQLite: the parent directory is created; every connection gets WAL (readers never block
the writer), a 10 s busy timeout, foreign keys and `synchronous=NORMAL` (durable at each
checkpoint, much faster than FULL). An engine made with `create=False`, for commands that
only read, creates nothing: no folder, no database file (SQLite opens it with `mode=rw`,
which fails on a missing file), and it leaves the journal mode to the writers.
syncd emits `BEGIN` itself so a transaction really spans all its statements (pysqlite
would begin one lazily, before the first write only);
`engine.execution_options(sqlite_begin="IMMEDIATE")` gives an engine whose transactions
take the write lock up front, for a read-then-write that must not be overtaken.
Engines hide statement parameters from their errors: they are rows of people's data.

PostgreSQL goes through psycopg 3; a bare `postgresql://` URL is read as `postgresql+psycopg`.

Schema: an empty database is migrated on first use, one at head is left alone, one behind
stops with a `ConfigError` telling the admin to run `syncd db upgrade`. Readers call
`require_schema`, which migrates nothing and says `syncd db upgrade` for an empty one too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from syncd.errors import ConfigError, ServiceUnavailable
from syncd.private import private_file

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = "syncd:migrations"
#: The newest migration this syncd ships (a test checks that it is alembic's head). A
#: database at it is used without loading alembic, which costs every command 0.2 s.
SCHEMA_HEAD = "0009"
BUSY_TIMEOUT_MS = 10_000
# Any constant works; it only has to be the same in every syncd process on a database.
_MIGRATION_LOCK = 0x5C_D0_0001

# Setting WAL writes to the file (it turns an empty file into a database), so only
# engines that may create set it; a syncd database is in WAL from its first writer on.
_SQLITE_WAL = "journal_mode=WAL"
_SQLITE_PRAGMAS = (
    f"busy_timeout={BUSY_TIMEOUT_MS}",
    "foreign_keys=ON",
    "synchronous=NORMAL",
    # Big enough for a night's updates to find the index pages they touch (SQLite's
    # default is 2 MiB); a first load builds its indexes after the rows instead. The
    # cache fills up as a snapshot reads the whole directory, and it is part of the
    # process's memory: 256 MiB made a million-user job 250 MiB bigger, no faster.
    "cache_size=-32768",
    # Index builds sort through temporary files: in memory they cost a first load 40
    # MiB more of the process's memory, and were no faster.
    "temp_store=FILE",
)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except exc.ArgumentError as error:
        raise ConfigError(
            f"database url: {url!r} is not a database URL; use sqlite:///PATH "
            "or postgresql+psycopg://USER@HOST/NAME"
        ) from error


def _on_sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    _set_pragmas(dbapi_connection, (_SQLITE_WAL, *_SQLITE_PRAGMAS))


def _on_sqlite_read_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    _set_pragmas(dbapi_connection, _SQLITE_PRAGMAS)


def _set_pragmas(dbapi_connection: Any, pragmas: tuple[str, ...]) -> None:
    dbapi_connection.isolation_level = None  # autocommit at the driver: BEGIN is ours
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def sqlite_file(url: str) -> Path | None:
    """The file a `sqlite:///PATH` URL names; None for other databases, memory and URIs."""
    parsed = _parse(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for a `sqlite:///...` or `postgresql+psycopg://...` URL; does not connect.

    `create=False` (commands that only read): a SQLite file is opened only if it exists,
    and nothing is written to it on connecting; its folder is not made either.
    """
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.get_driver_name() not in ("pysqlite", "sqlite"):
            raise ConfigError(f"database url: use plain sqlite:///PATH, not {parsed.drivername}")
        path = sqlite_file(url)
        if path is not None and create:
            private_file(path)
        elif path is not None:
            # A URI (percent-escaped by as_uri) with mode=rw: SQLite fails rather than
            # create a missing file, even if it vanished after the caller looked.
            parsed = parsed.set(
                database=path.absolute().as_uri(),
                query={**parsed.query, "mode": "rw", "uri": "true"},
            )
        engine = create_engine(parsed, hide_parameters=True)
        event.listen(engine, "connect", _on_sqlite_connect if create else _on_sqlite_read_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() != "psycopg":
            raise ConfigError(
                f"database url: syncd talks to PostgreSQL through psycopg 3; "
                f"use postgresql+psycopg:// instead of {parsed.drivername}://"
            )
        # pre_ping: the daemon holds connections across a database restart.
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    raise ConfigError(
        f"database url: {backend!r} databases are not supported; use sqlite:///PATH "
        "or postgresql+psycopg://USER@HOST/NAME"
    )


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """A connection, with "cannot reach the database" turned into `ServiceUnavailable`."""
    try:
        conn = engine.connect()
    except (exc.OperationalError, exc.InterfaceError, sqlite3.OperationalError) as error:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise ServiceUnavailable(
            f"cannot reach the database {where}: {reason}; check [database] url "
            "and that the server is running"
        ) from error
    with conn:
        yield conn


def _alembic_config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if conn is not None:
        config.attributes["connection"] = conn
    return config


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema is (`current`, None when empty) and where it should be."""

    current: str | None
    head: str
    known: tuple[str, ...]

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def behind(self) -> bool:
        return self.current is not None and self.current != self.head and self.current in self.known


def schema_state(engine: Engine) -> SchemaState:
    """The database's schema revision next to the one this syncd ships (for `syncd check`)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_alembic_config())
    head = scripts.get_current_head()
    if head is None:
        raise RuntimeError("syncd ships no migrations: the package is broken")
    known = tuple(rev.revision for rev in scripts.walk_revisions())
    with connect(engine) as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return SchemaState(current=current, head=head, known=known)


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest schema (`syncd db upgrade`); safe to run twice.

    The migration holds a lock (PostgreSQL advisory lock, SQLite write lock), so two
    daemons starting on one empty database do not both create the tables.
    """
    from alembic import command

    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with connect(engine) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        command.upgrade(_alembic_config(conn), "head")


def ensure_schema(engine: Engine) -> None:
    """Make sure the schema is usable: create it on an empty database, refuse an old one."""
    if _at_head(engine):
        return
    state = schema_state(engine)
    if state.current is None:
        upgrade(engine)
        return
    _refuse_unless_at_head(state)


def require_schema(engine: Engine, where: str) -> None:
    """For commands that only read: the schema must be at head; nothing is migrated.

    `where` names the database in the message (its path, or its URL without password).
    """
    if _at_head(engine):
        return
    state = schema_state(engine)
    if state.current is None:
        raise ConfigError(
            f"the database {where} has no syncd schema yet: run `syncd db upgrade` "
            "(or `syncd import` or `syncd run`, which create it)"
        )
    _refuse_unless_at_head(state)


def _at_head(engine: Engine) -> bool:
    """Whether the database's one recorded revision is SCHEMA_HEAD, read without alembic
    (anything else is left to `schema_state`)."""
    with connect(engine) as conn:
        revisions = []
        if inspect(conn).has_table("alembic_version"):
            revisions = list(conn.execute(text("SELECT version_num FROM alembic_version")))
        conn.rollback()
    return [tuple(r) for r in revisions] == [(SCHEMA_HEAD,)]


def _refuse_unless_at_head(state: SchemaState) -> None:
    if state.at_head:
        return
    if state.behind:
        raise ConfigError(
            f"the database schema is at revision {state.current} and this syncd needs "
            f"{state.head}: run `syncd db upgrade`"
        )
    raise ConfigError(
        f"the database schema is at revision {state.current}, which this syncd does not "
        "know (was the database upgraded by a newer syncd?): install that version of syncd"
    )
