"""Job records: outcomes, lookups, row errors, retained and job files, held passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, update

from syncd.core.counts import Counts
from syncd.core.table import RowError
from syncd.errors import JobNotFound
from syncd.store import job_files, job_records, schema

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
SHA = "ab" * 32


def add(conn: Connection, job_id: str, **overrides: Any) -> None:
    """Insert a job with sensible defaults."""
    values: dict[str, Any] = {
        "job_id": job_id,
        "source": "hr",
        "mode": "full",
        "file_name": "users.csv",
        "sha256": SHA,
        "size": 1234,
        "now": T0,
    } | overrides
    job_records.insert_job(conn, **values)


def test_a_job_reads_back_as_inserted_and_finished(conn: Connection) -> None:
    """Every recorded value, counts and messages included, comes back from get_job."""
    add(conn, "7K3M9-QX2AB", directory="main")
    conn.execute(
        update(schema.jobs)
        .where(schema.jobs.c.id == "7K3M9-QX2AB")
        .values(status="running", started_at=T0 + timedelta(seconds=1))
    )
    counts = Counts(rows=3, valid=2, invalid=1, created=2)
    job_records.finish_job(
        conn,
        "7K3M9-QX2AB",
        status="applied_with_errors",
        now=T0 + timedelta(seconds=2),
        counts=counts,
        messages=["row 3 was skipped"],
        encoding="utf-8-sig",
        errors_csv="/var/outbox/7K3M9-QX2AB.csv",
    )
    job = job_records.get_job(conn, "7K3M9-QX2AB")
    assert job is not None
    assert (job.status, job.counts, job.messages, job.encoding) == (
        "applied_with_errors",
        counts,
        ("row 3 was skipped",),
        "utf-8-sig",
    )
    assert (job.created_at, job.started_at, job.finished_at) == (
        T0,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
    )
    assert (job.directory, job.claim, job.size, job.sha256) == ("main", None, 1234, SHA)
    assert job.as_json() == {
        "job_id": "7K3M9-QX2AB",
        "status": "applied_with_errors",
        "source": "hr",
        "mode": "full",
        "file": "users.csv",
        "encoding": "utf-8-sig",
        "counts": counts.as_dict(),
        "errors_csv": "/var/outbox/7K3M9-QX2AB.csv",
        "messages": ["row 3 was skipped"],
    }


@pytest.mark.parametrize("typed", ["7k3m9-qx2ab", "7K3M9QX2AB", " 7k3m9 qx2ab ", "7K3M9-QX2AB"])
def test_a_job_is_found_whatever_case_and_dash_were_typed(conn: Connection, typed: str) -> None:
    """Support can type the ID in lower case, without the dash or with spaces."""
    add(conn, "7K3M9-QX2AB")
    job = job_records.get_job(conn, typed)
    assert job is not None
    assert job.id == "7K3M9-QX2AB"


def test_an_unknown_job_id_is_none_or_a_job_not_found(conn: Connection) -> None:
    """get_job says None; require_job raises JobNotFound naming the ID."""
    assert job_records.get_job(conn, "00000-00000") is None
    with pytest.raises(JobNotFound, match="00000-00000"):
        job_records.require_job(conn, "00000-00000")


def test_jobs_are_listed_newest_first(conn: Connection) -> None:
    """list_jobs orders by creation time, newest first, and honours the limit."""
    for i in range(3):
        add(conn, f"AAAAA-0000{i}", now=T0 + timedelta(minutes=i))
    assert [j.id for j in job_records.list_jobs(conn)] == [
        "AAAAA-00002",
        "AAAAA-00001",
        "AAAAA-00000",
    ]
    assert [j.id for j in job_records.list_jobs(conn, limit=1)] == ["AAAAA-00002"]


def test_an_identical_file_is_found_among_the_sources_applied_and_held_jobs(
    conn: Connection,
) -> None:
    """find_processed names the first job of that source, content and mode that applied or
    holds its file; rejected, skipped, running and interrupted jobs, other sources and
    the other mode do not count."""
    add(conn, "AAAAA-00001", status="rejected")
    add(conn, "AAAAA-00002", source="other", status="applied")
    add(conn, "AAAAA-00005", status="running")
    add(conn, "AAAAA-00006", status="interrupted")
    add(conn, "AAAAA-00007", status="applied", mode="partial")
    assert job_records.find_processed(conn, "hr", SHA, "full") is None
    add(conn, "AAAAA-00003", status="held", now=T0 + timedelta(minutes=1))
    add(conn, "AAAAA-00004", status="skipped", now=T0 + timedelta(minutes=2))
    assert job_records.find_processed(conn, "hr", SHA, "full") == "AAAAA-00003"
    assert job_records.find_processed(conn, "hr", SHA, "partial") == "AAAAA-00007"
    assert job_records.find_processed(conn, "hr", "cd" * 32, "full") is None


def test_job_files_are_kept_replaced_and_purged_when_they_expire(conn: Connection) -> None:
    """A job's named files read back as written, a second write replaces the first, and
    purge_expired drops those past their expiry but never one without."""
    add(conn, "AAAAA-00001")
    job_files.put_job_file(conn, "AAAAA-00001", "a", b"one", expires_at=T0)
    job_files.put_job_file(conn, "AAAAA-00001", "a", b"two", expires_at=T0)
    job_files.put_job_file(conn, "AAAAA-00001", "b", b"kept", expires_at=None)
    assert job_files.job_file(conn, "AAAAA-00001", "a") == b"two"
    job_files.purge_expired(conn, now=T0 + timedelta(seconds=1))
    assert job_files.job_file(conn, "AAAAA-00001", "a") is None
    assert job_files.job_file(conn, "AAAAA-00001", "b") == b"kept"
    job_files.drop_job_files(conn, "AAAAA-00001", ["b"])
    assert job_files.job_file(conn, "AAAAA-00001", "b") is None


def test_row_errors_round_trip_in_order_across_calls(conn: Connection) -> None:
    """Row errors added in two batches come back in the order they were added."""
    add(conn, "AAAAA-00001")
    first = [RowError(3, "Primary Email", "'x' is not an email"), RowError(3, "Role", "no")]
    job_records.add_row_errors(conn, "AAAAA-00001", first)
    job_records.add_row_errors(conn, "AAAAA-00001", [RowError(2, "", "row has 7 cells, not 6")])
    job_records.add_row_errors(conn, "AAAAA-00001", [])
    assert job_records.row_errors(conn, "AAAAA-00001") == [
        *first,
        RowError(2, "", "row has 7 cells, not 6"),
    ]
    assert job_records.row_errors(conn, "AAAAA-00002") == []


def test_a_retained_file_is_kept_until_it_expires(conn: Connection) -> None:
    """The input file reads back byte for byte; purge_expired drops it once expired."""
    add(conn, "AAAAA-00001")
    content = "email,password\r\nann@example.com,***\r\n".encode("utf-16")
    expires = T0 + timedelta(days=30)
    job_files.retain_file(
        conn, "AAAAA-00001", file_name="u.csv", content=content, now=T0, expires_at=expires
    )
    kept = job_files.retained_file(conn, "AAAAA-00001")
    assert kept is not None
    assert (kept.content, kept.expires_at) == (content, expires)
    assert job_files.purge_expired(conn, now=expires - timedelta(seconds=1)) == 0
    assert job_files.purge_expired(conn, now=expires) == 1
    assert job_files.retained_file(conn, "AAAAA-00001") is None


def test_a_held_plan_keeps_its_digest_and_password_hashes_until_forgotten(
    conn: Connection,
) -> None:
    """hold_plan keeps the archive digest and (hash, tag) by key; forget_held drops both."""
    add(conn, "AAAAA-00001", status="held")
    job_files.hold_plan(
        conn,
        "AAAAA-00001",
        "digest-1",
        [("e1", "$argon2id$a", "tag-a"), ("e2", "$argon2id$b", None)],
    )
    assert job_files.held_digest(conn, "AAAAA-00001") == "digest-1"
    assert job_files.held_passwords(conn, "AAAAA-00001") == {
        "e1": ("$argon2id$a", "tag-a"),
        "e2": ("$argon2id$b", None),
    }
    job_files.forget_held(conn, "AAAAA-00001")
    assert job_files.held_passwords(conn, "AAAAA-00001") == {}
    assert job_files.held_digest(conn, "AAAAA-00001") is None


def test_finishing_an_unknown_job_is_a_job_not_found(conn: Connection) -> None:
    """finish_job on an ID nobody recorded raises instead of silently doing nothing."""
    with pytest.raises(JobNotFound):
        job_records.finish_job(conn, "AAAAA-99999", status="applied", now=T0)
