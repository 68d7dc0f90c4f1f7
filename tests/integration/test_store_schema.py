"""The store's engine and schema: migrations on first use, versions, SQLite settings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from syncd.errors import ConfigError, ServiceUnavailable
from syncd.store import job_files, job_records
from syncd.store.engine import (
    SCHEMA_HEAD,
    SchemaState,
    _alembic_config,
    connect,
    ensure_schema,
    make_engine,
    require_schema,
    schema_state,
    upgrade,
)
from syncd.store.schema import metadata
from tests.servers import free_port


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database, disposed after the test."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_an_empty_database_gets_the_whole_schema_on_first_use(engine: Engine) -> None:
    """ensure_schema on an empty database creates every table, with no manual step."""
    assert schema_state(engine).current is None
    ensure_schema(engine)
    assert schema_state(engine).at_head
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_ensuring_or_upgrading_a_current_schema_changes_nothing(engine: Engine) -> None:
    """A second ensure_schema and a `db upgrade` at head leave the database at head."""
    ensure_schema(engine)
    ensure_schema(engine)
    upgrade(engine)
    assert schema_state(engine).at_head


def test_the_migrations_create_exactly_the_tables_the_code_queries(engine: Engine) -> None:
    """Alembic finds no difference between the migrated database and schema.py."""
    ensure_schema(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_a_reader_leaves_an_empty_database_empty_and_names_db_upgrade(db_url: str) -> None:
    """require_schema on a reading engine creates no table and says `syncd db upgrade`."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).touch()  # empty, as a stray file would be
    reader = make_engine(db_url, create=False)
    try:
        with pytest.raises(ConfigError, match=r"no syncd schema yet: run `syncd db upgrade`"):
            require_schema(reader, "the database")
        assert schema_state(reader).current is None
        assert inspect(reader).get_table_names() == []
    finally:
        reader.dispose()
    if db_url.startswith("sqlite:///"):
        assert Path(db_url.removeprefix("sqlite:///")).stat().st_size == 0


def test_a_reader_reads_a_database_at_head(engine: Engine, db_url: str) -> None:
    """Once a writer made the schema, a reading engine accepts it and reads it."""
    ensure_schema(engine)
    reader = make_engine(db_url, create=False)
    try:
        require_schema(reader, "the database")
        with reader.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM jobs").scalar() == 0
    finally:
        reader.dispose()


def test_the_shipped_head_is_the_newest_migration() -> None:
    """SCHEMA_HEAD, which lets a database at head be used without alembic, names the
    newest migration: a migration added without moving it fails here."""
    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == SCHEMA_HEAD


#: In a process of its own: ensure and require the schema of the database at argv[1],
#: then say whether alembic was loaded.
_ALEMBIC_LOADED = """
import sys
from syncd.store.engine import ensure_schema, make_engine, require_schema
engine = make_engine(sys.argv[1])
ensure_schema(engine)
require_schema(make_engine(sys.argv[1], create=False), "the database")
print("alembic" in sys.modules)
"""


def test_a_database_at_head_is_used_without_loading_alembic(engine: Engine, db_url: str) -> None:
    """Every job command checks the schema; at head that costs a query, not alembic's
    0.2 s of imports. An empty database still gets its schema through alembic."""

    def loaded() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _ALEMBIC_LOADED, db_url],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert loaded() == "True"  # empty: migrated
    assert schema_state(engine).at_head
    assert loaded() == "False"


def test_a_reading_engine_creates_no_sqlite_file_nor_its_folder(tmp_path: Path) -> None:
    """create=False: connecting to a missing SQLite file fails, and nothing appears."""
    reader = make_engine(f"sqlite:///{tmp_path / 'var' / 'syncd.db'}", create=False)
    try:
        with (
            pytest.raises(ServiceUnavailable, match="cannot reach the database"),
            connect(reader),
        ):
            pass
    finally:
        reader.dispose()
    assert list(tmp_path.iterdir()) == []


def test_a_schema_revision_this_syncd_does_not_know_is_refused(engine: Engine) -> None:
    """A database migrated by a newer syncd stops with a ConfigError naming the revision."""
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigError, match="9999"):
        ensure_schema(engine)


def test_a_schema_behind_head_asks_for_syncd_db_upgrade() -> None:
    """A known older revision is `behind`, which ensure_schema turns into that advice."""
    state = SchemaState(current="0001", head="0002", known=("0002", "0001"))
    assert state.behind
    assert not SchemaState(current="0003", head="0002", known=("0002", "0001")).behind


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    """Every SQLite connection gets the pragmas the daemon relies on, and the parent dir."""
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'lib' / 'syncd.db'}")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        engine.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 10000,
        "synchronous": 1,
    }
    assert (tmp_path / "var" / "lib").is_dir()


def test_a_sqlite_transaction_reads_one_consistent_snapshot(tmp_path: Path) -> None:
    """A write committed elsewhere mid-transaction is not seen: BEGIN spans the reads."""
    engine = make_engine(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.connect() as reader, reader.begin():
            assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            with engine.begin() as writer:
                writer.exec_driver_sql("INSERT INTO t VALUES (1)")
            assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        engine.dispose()


def test_a_bare_postgresql_url_goes_through_psycopg() -> None:
    """postgresql:// is read as postgresql+psycopg://, the driver syncd ships with."""
    engine = make_engine("postgresql://syncd@127.0.0.1/syncd")
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


@pytest.mark.parametrize(
    "url", ["mysql://u@localhost/db", "postgresql+psycopg2://u@h/db", "not a url"]
)
def test_a_database_syncd_does_not_support_is_a_configuration_error(url: str) -> None:
    """Unsupported databases or drivers are reported as configuration, with what to use."""
    with pytest.raises(ConfigError, match="database url"):
        make_engine(url)


def test_an_unreachable_database_is_reported_as_unavailable() -> None:
    """Nothing listening on the port: ServiceUnavailable naming the database, no password."""
    engine = make_engine(f"postgresql+psycopg://syncd:s3cret@127.0.0.1:{free_port()}/syncd")
    try:
        with pytest.raises(ServiceUnavailable, match="cannot reach the database") as caught:
            ensure_schema(engine)
    finally:
        engine.dispose()
    assert "s3cret" not in str(caught.value)


def test_upgrading_from_0001_puts_stored_text_in_nfc_and_allows_interrupted_jobs(
    engine: Engine,
) -> None:
    """Users stored before syncd compared text in NFC (keys, emails, names in NFD) are
    rewritten in NFC, except one whose NFC key another user already has (a look-alike,
    for a person to merge); and jobs may then be `interrupted`."""
    from alembic import command

    from syncd.store.engine import _alembic_config

    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
        conn.execute(text("INSERT INTO directories (id, name) VALUES (1, 'main')"))
        now = "2026-11-01 00:00:00"
        rows = [
            (1, "E1", "rene\u0301e@x.com", "Rene\u0301e"),
            (2, "Jose\u0301", "jose@x.com", "Jose\u0301"),
            (3, "Jos\u00e9", "jose2@x.com", "Jos\u00e9"),  # the look-alike of user 2
        ]
        for user_id, key, email, name in rows:
            conn.execute(
                text(
                    "INSERT INTO users (id, directory_id, key, email, email_lc, first_name,"
                    " status, created_at, updated_at) VALUES (:id, 1, :key, :email, :lc,"
                    " :name, 'active', :now, :now)"
                ),
                {"id": user_id, "key": key, "email": email, "lc": email.lower(),
                 "name": name, "now": now},
            )  # fmt: skip
    upgrade(engine)
    with engine.connect() as conn:
        stored = {
            r.id: (r.key, r.email, r.email_lc, r.first_name)
            for r in conn.execute(text("SELECT * FROM users ORDER BY id"))
        }
    assert stored[1] == ("E1", "ren\u00e9e@x.com", "ren\u00e9e@x.com", "Ren\u00e9e")
    assert stored[2] == ("Jose\u0301", "jose@x.com", "jose@x.com", "Jose\u0301")  # left
    assert stored[3][0] == "Jos\u00e9"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, source, mode, file_name, sha256, size, status, rows,"
                " valid, invalid, created, updated, unchanged, archived, reactivated,"
                " email_changed, messages, created_at) VALUES ('J', 's', 'full', 'f', 'x', 1,"
                " 'interrupted', 0, 0, 0, 0, 0, 0, 0, 0, 0, '[]', :now)"
            ),
            {"now": "2026-11-01 00:00:00"},
        )


def test_upgrading_from_0005_clears_string_fingerprints_into_a_bigint_column(
    engine: Engine,
) -> None:
    """Fingerprints stored as strings cannot become integers: they are set to NULL (those
    users are compared in full next time) and the column holds any signed 64-bit value;
    the users' other values, unique indexes and status check survive the change."""
    from alembic import command
    from sqlalchemy.exc import IntegrityError

    from syncd.store.engine import _alembic_config

    insert = text(
        "INSERT INTO users (id, directory_id, key, email, email_lc, status, fingerprint,"
        " created_at, updated_at) VALUES (:id, 1, :key, :email, :email, :status, :fp,"
        " :now, :now)"
    )
    now = "2026-11-01 00:00:00"
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0005")
        conn.execute(text("INSERT INTO directories (id, name) VALUES (1, 'main')"))
        old = ((1, "f1-1.31.0:12345"), (2, None), (3, "f1-1.31.0:18446744073709551615"))
        for user_id, fp in old:
            values = {"id": user_id, "key": f"E{user_id}", "email": f"e{user_id}@x.com"}
            conn.execute(insert, values | {"status": "active", "fp": fp, "now": now})
    upgrade(engine)
    assert schema_state(engine).at_head
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT id, key, email, fingerprint FROM users ORDER BY id"))
        assert [tuple(r) for r in stored] == [
            (1, "E1", "e1@x.com", None),
            (2, "E2", "e2@x.com", None),
            (3, "E3", "e3@x.com", None),
        ]
        column = next(c for c in inspect(conn).get_columns("users") if c["name"] == "fingerprint")
        assert str(column["type"]) == "BIGINT"
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET fingerprint = :fp WHERE id = 1"), {"fp": -(2**63)})
        conn.execute(text("UPDATE users SET fingerprint = :fp WHERE id = 3"), {"fp": 2**63 - 1})
        fps = conn.execute(text("SELECT fingerprint FROM users ORDER BY id")).scalars().all()
        assert fps == [-(2**63), None, 2**63 - 1]
    for clash in ({"key": "E1", "email": "new@x.com"}, {"key": "E9", "email": "e1@x.com"}):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"id": 9, **clash, "status": "active", "fp": 1, "now": now})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": 9, "key": "E9", "email": "e9@x.com", "status": "gone",
                              "fp": 1, "now": now})  # fmt: skip


def test_upgrading_from_0006_counts_no_attempts_for_existing_jobs(engine: Engine) -> None:
    """Jobs stored before attempts were counted read 0 after the upgrade, and the
    downgrade drops the column and keeps the jobs."""
    from alembic import command

    from syncd.store.engine import _alembic_config

    insert_job = text(
        "INSERT INTO jobs (id, source, mode, file_name, sha256, size, status, rows,"
        " valid, invalid, created, updated, unchanged, archived, reactivated,"
        " email_changed, messages, created_at) VALUES (:id, 's', 'full', 'f', 'x', 1,"
        " 'queued', 0, 0, 0, 0, 0, 0, 0, 0, 0, '[]', '2026-11-01 00:00:00')"
    )
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0006")
        conn.execute(insert_job, {"id": "OLD"})
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert_job, {"id": "NEW"})  # the server default, as for any insert
        attempts = conn.execute(text("SELECT id, attempts FROM jobs ORDER BY id")).all()
        assert [tuple(r) for r in attempts] == [("NEW", 0), ("OLD", 0)]
        command.downgrade(_alembic_config(conn), "0006")
        columns = {c["name"] for c in inspect(conn).get_columns("jobs")}
        assert "attempts" not in columns
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 2


def test_postgresql_stores_the_compressed_files_without_compressing_them_again(
    postgres_url: str,
) -> None:
    """A retained file and a job file (both compressed already) are stored as given,
    never run through PostgreSQL's own compressor; even a value it could shrink, as
    this one, comes back whole."""
    engine = make_engine(postgres_url)
    ensure_schema(engine)
    content = b"name,email\r\n" * 50_000  # 600 kB that PostgreSQL's pglz would shrink
    now = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            job_records.insert_job(
                conn,
                job_id="7K3M9-QX2AB",
                source="hr",
                mode="full",
                file_name="users.csv",
                sha256="0" * 64,
                size=len(content),
                now=now,
            )
            job_files.retain_file(
                conn,
                "7K3M9-QX2AB",
                file_name="users.csv",
                content=content,
                now=now,
                expires_at=now,
            )
            job_files.put_job_file(conn, "7K3M9-QX2AB", "errors.csv.gz", content, expires_at=now)
        with engine.connect() as conn:
            for table in ("retained_files", "job_files"):
                stored = conn.execute(
                    text(f"SELECT content, pg_column_compression(content) FROM {table}")
                ).one()
                assert (bytes(stored[0]), stored[1]) == (content, None), table
    finally:
        engine.dispose()
