"""Fixtures shared by the store's integration tests (both databases, through `db_url`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine

from syncd.store import ensure_schema, make_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated database."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """One connection in one transaction, as a job's apply step has it."""
    with engine.begin() as conn:
        yield conn
