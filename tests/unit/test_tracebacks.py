"""Tracebacks and error descriptions leave out what errors quote of people's data: the
parameters of a refused statement, PostgreSQL's DETAIL lines, polars' cells. The errors
are real ones, raised by SQLite, psycopg's classes and polars."""

from __future__ import annotations

import sys

import polars as pl
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from syncd.tracebacks import ExcInfo, describe, safe_traceback

ROW = "qzrowmark.one@example.com"


def _refused_insert() -> IntegrityError:
    """What SQLAlchemy raises when SQLite refuses a row (parameters not hidden, as an
    engine made elsewhere might have them)."""
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE users (email TEXT UNIQUE)"))
            conn.execute(text("INSERT INTO users VALUES (:e)"), {"e": ROW})
        with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
            conn.execute(text("INSERT INTO users VALUES (:e)"), {"e": ROW})
    finally:
        engine.dispose()
    assert ROW in str(raised.value)  # what there is to leave out
    return raised.value


def _info(error: BaseException) -> ExcInfo:
    return (type(error), error, error.__traceback__)


def test_a_database_error_is_described_by_its_first_line() -> None:
    error = _refused_insert()
    assert (
        describe(error)
        == "IntegrityError: (sqlite3.IntegrityError) UNIQUE constraint failed: users.email"
    )


def test_postgresql_detail_lines_are_left_out() -> None:
    error = psycopg.errors.UniqueViolation(
        'duplicate key value violates unique constraint "users_email_key"\n'
        f"DETAIL:  Key (email)=({ROW}) already exists."
    )
    assert describe(error) == (
        'UniqueViolation: duplicate key value violates unique constraint "users_email_key"'
    )


def test_a_polars_error_quoting_cells_is_named_without_its_message() -> None:
    with pytest.raises(pl.exceptions.PolarsError) as raised:
        pl.Series(["qzrowmark-cell"]).cast(pl.Int64)
    assert "qzrowmark-cell" in str(raised.value)
    assert "qzrowmark" not in describe(raised.value)
    assert describe(raised.value).startswith(type(raised.value).__name__)


def test_other_errors_keep_their_message() -> None:
    assert describe(ValueError("no such profile 'x'")) == "ValueError: no such profile 'x'"
    assert describe(KeyError()) == "KeyError"


def test_a_traceback_names_every_error_of_the_chain_and_none_of_the_row() -> None:
    try:
        try:
            raise _refused_insert()
        except IntegrityError as error:
            raise RuntimeError("the job failed") from error
    except RuntimeError as error:
        rendered = safe_traceback(_info(error))
    assert ROW not in rendered
    assert "sqlalchemy.exc.IntegrityError: (sqlite3.IntegrityError) UNIQUE constraint" in rendered
    assert "The above exception was the direct cause of the following exception:" in rendered
    assert rendered.rstrip().endswith("RuntimeError: the job failed")
    assert "test_a_traceback_names_every_error" in rendered  # the frames are there


def test_an_error_raised_while_handling_another_is_chained_as_python_does() -> None:
    try:
        try:
            raise ValueError("first")
        except ValueError:
            raise KeyError("second")  # noqa: B904 (the implicit chain is the point)
    except KeyError as error:
        rendered = safe_traceback(_info(error))
    assert "During handling of the above exception, another exception occurred:" in rendered
    assert rendered.index("ValueError: first") < rendered.index("KeyError: 'second'")


def test_the_excepthook_prints_the_safe_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    from syncd.tracebacks import excepthook

    error = _refused_insert()
    excepthook(type(error), error, error.__traceback__)
    printed = capsys.readouterr().err
    assert "UNIQUE constraint failed" in printed
    assert ROW not in printed
    assert sys.excepthook is not excepthook  # only the CLI installs it
