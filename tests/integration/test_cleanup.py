"""The retention clean-up on a real database (SQLite and PostgreSQL), with explicit
clocks: what outlived `retention_days` goes, what did not stays, and the log says what
went by job ID, outbox id and path, never with a row's contents."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.cleanup import clean_up
from syncd.config import load_config
from syncd.runtime import Runtime, open_runtime
from syncd.store import job_files, job_records, outbox

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=31)
RETENTION = timedelta(days=30)
SECRET_ROW = b"E-1007,anna.berg@example.com,Anna"


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    base = load_config(None, env={})
    config = replace(
        base,
        database=replace(base.database, url=db_url),
        state_dir=tmp_path / "state",
        secret_env="SYNCD_TEST_SECRET",
        secret_file=None,
        retention_days=30,
    )
    runtime = open_runtime(config, {"SYNCD_TEST_SECRET": "s"})
    yield runtime
    runtime.engine.dispose()


def _job(rt: Runtime, job_id: str, started: datetime) -> None:
    """A job that kept its input file and errors CSV for 30 days from `started`."""
    with rt.engine.begin() as conn:
        job_records.insert_job(
            conn, job_id=job_id, source="drop", mode="partial", file_name="people.csv",
            sha256="0" * 64, size=len(SECRET_ROW), now=started,
        )  # fmt: skip
        job_files.retain_file(
            conn, job_id, file_name="people.csv", content=SECRET_ROW, now=started,
            expires_at=started + RETENTION,
        )  # fmt: skip
        job_files.put_job_file(
            conn, job_id, "errors.csv.gz", SECRET_ROW, expires_at=started + RETENTION
        )


def _message(rt: Runtime, job_id: str, queued: datetime, *, sent: bool) -> int:
    with rt.engine.begin() as conn:
        outbox_id = outbox.add_message(
            conn, message_id=f"<{job_id}.{queued.timestamp()}@example.com>",
            recipients=["it@example.com"], subject=f"report {job_id}", content=SECRET_ROW,
            now=queued, job_id=job_id, kind="applied",
        )  # fmt: skip
        if sent:
            outbox.mark_sent(conn, outbox_id, now=queued)
    return outbox_id


def _errors_csv(rt: Runtime, name: str, written: datetime) -> Path:
    rt.errors_dir.mkdir(parents=True, exist_ok=True)
    path = rt.errors_dir / name
    path.write_bytes(SECRET_ROW)
    os.utime(path, (written.timestamp(), written.timestamp()))
    return path


def test_what_outlived_retention_goes_and_the_rest_stays(rt: Runtime) -> None:
    """At T0 + 31 days: the T0 job's kept file and errors CSV, its report (sent) and its
    errors CSV on disk go; a job of yesterday keeps all of it, and a report never sent
    stays however old."""
    _job(rt, "0HZA1-00001", T0)
    _job(rt, "0HZB2-00002", NOW - timedelta(days=1))
    old_sent = _message(rt, "0HZA1-00001", T0, sent=True)
    old_pending = _message(rt, "0HZA1-00001", T0 + timedelta(seconds=1), sent=False)
    new_sent = _message(rt, "0HZB2-00002", NOW - timedelta(days=1), sent=True)
    old_csv = _errors_csv(rt, "0HZA1-00001.csv", T0)
    new_csv = _errors_csv(rt, "0HZB2-00002.csv", NOW - timedelta(days=1))
    other = rt.errors_dir / "notes.txt"
    other.write_text("not an errors CSV")
    os.utime(other, (T0.timestamp(), T0.timestamp()))

    with capture_logs() as logs:
        cleaned = clean_up(rt, now=NOW)

    assert cleaned.retained == ("0HZA1-00001",)
    assert cleaned.job_files == (("0HZA1-00001", "errors.csv.gz"),)
    assert cleaned.messages == (old_sent,)
    assert cleaned.paths == (old_csv,)
    assert not old_csv.exists()
    assert new_csv.exists()
    assert other.exists()
    with rt.engine.connect() as conn:
        assert job_files.retained_file(conn, "0HZA1-00001") is None
        assert job_files.job_file(conn, "0HZA1-00001", "errors.csv.gz") is None
        assert job_files.retained_file(conn, "0HZB2-00002") is not None
        assert job_files.job_file(conn, "0HZB2-00002", "errors.csv.gz") is not None
        assert [m.id for m in outbox.list_messages(conn)] == [old_pending, new_sent]
        assert job_records.get_job(conn, "0HZA1-00001") is not None  # the record stays

    (event,) = [e for e in logs if e["event"] == "retention_cleaned"]
    assert event["retained_files"] == event["job_files"] == event["messages"] == 1
    assert event["errors_csvs"] == 1
    assert event["job_ids"] == ["0HZA1-00001"]
    assert event["outbox_ids"] == [old_sent]
    assert event["paths"] == [str(old_csv)]
    assert "anna" not in repr(logs).lower()


def test_a_second_clean_up_finds_nothing_and_logs_nothing(rt: Runtime) -> None:
    """Nothing left to drop: an empty result and no log event (an hourly no-op is quiet)."""
    _job(rt, "0HZA1-00001", T0)
    clean_up(rt, now=NOW)
    with capture_logs() as logs:
        cleaned = clean_up(rt, now=NOW + timedelta(hours=1))
    assert cleaned.nothing
    assert logs == []


def test_retention_days_zero_drops_every_finished_report_and_errors_csv(rt: Runtime) -> None:
    """retention_days = 0 keeps nothing past the clean-up that follows."""
    zero = replace(rt, config=replace(rt.config, retention_days=0))
    _job(zero, "0HZA1-00001", NOW - timedelta(seconds=5))
    sent = _message(zero, "0HZA1-00001", NOW - timedelta(seconds=5), sent=True)
    csv = _errors_csv(zero, "dry-run-people.csv", NOW - timedelta(seconds=5))
    cleaned = clean_up(zero, now=NOW)
    assert (cleaned.messages, cleaned.paths) == ((sent,), (csv,))
