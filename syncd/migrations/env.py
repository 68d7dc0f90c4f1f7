"""Alembic's entry point: run the migrations on the connection syncd hands in.

`syncd.store.engine` passes an open connection in `config.attributes["connection"]` (so
the version check, a lock and the migration share one transaction). Run from the `alembic`
command instead, it connects to `sqlalchemy.url` of the Alembic config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from syncd.store.engine import make_engine
from syncd.store.schema import metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    if context.is_offline_mode():
        raise RuntimeError("syncd migrations run online only: give Alembic a database URL")
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _migrate(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database to migrate: set sqlalchemy.url in the Alembic config")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


_run()
