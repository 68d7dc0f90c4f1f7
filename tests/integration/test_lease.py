"""A running job's lease, renewed by `Lease` from a thread of its own (both databases)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, update
from structlog.testing import capture_logs

from syncd.lease import LEASE, Lease, this_owner
from syncd.store import job_records
from syncd.store.engine import make_engine
from syncd.store.schema import jobs

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3)
TURN = timedelta(seconds=0.05)  # how often the tests' leases renew


def _running(engine: Engine) -> str:
    """A job running under this process's lease, which runs out at T0 + LEASE."""
    with engine.begin() as conn:
        job_records.insert_job(
            conn,
            job_id="AAAAA-00001",
            source="hr",
            mode="full",
            file_name="users.csv",
            sha256="0" * 64,
            size=1,
            now=T0,
            status="running",
            owner=this_owner(),
            lease_until=T0 + LEASE,
        )
    return "AAAAA-00001"


def _eventually(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _lease_until(engine: Engine, job_id: str) -> datetime | None:
    with engine.connect() as conn:
        job = job_records.get_job(conn, job_id)
    assert job is not None
    return job.lease_until


def test_a_running_job_s_lease_is_renewed_from_the_clock(engine: Engine) -> None:
    job_id = _running(engine)
    with Lease(engine, job_id, lambda: T1, every=TURN):
        assert _eventually(lambda: _lease_until(engine, job_id) == T1 + LEASE)


def test_a_renewal_that_waited_for_the_job_s_own_end_stops_without_a_warning(
    engine: Engine,
) -> None:
    """A long apply holds the database (SQLite) or the job's row (PostgreSQL) until it
    commits, ending the job; the renewal waiting behind it then finds the job ended. That
    is the job's end, not a lost lease: nothing is logged, nothing is written."""
    job_id = _running(engine)
    with capture_logs() as logs, Lease(engine, job_id, lambda: T1, every=TURN):
        with engine.begin() as conn:  # the job's last transaction
            job_records.finish_job(conn, job_id, status="applied", now=T1)
            time.sleep(6 * TURN.total_seconds())  # renewals queue up behind it
        time.sleep(6 * TURN.total_seconds())  # and run once it has committed
    assert [e for e in logs if e["log_level"] == "warning"] == []
    assert _lease_until(engine, job_id) is None


def test_a_job_taken_by_another_owner_is_a_lost_lease_and_renewing_stops(
    engine: Engine,
) -> None:
    job_id = _running(engine)
    with capture_logs() as logs, Lease(engine, job_id, lambda: T1, every=TURN):
        with engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(lease_owner="other:1:2"))
        assert _eventually(lambda: any(e["event"] == "lease_lost" for e in logs))
    lost = [e for e in logs if e["event"] == "lease_lost"]
    assert lost == [
        {"event": "lease_lost", "job_id": job_id, "owner": "other:1:2", "log_level": "warning"}
    ]
    assert _lease_until(engine, job_id) == T0 + LEASE, "the other owner's lease stands"


def test_a_renewal_kept_out_by_the_job_s_own_write_warns_only_where_leases_decide(
    engine: Engine, db_url: str
) -> None:
    """A 5,000,000-user apply holds SQLite's write lock (PostgreSQL: the job's row) for
    longer than a renewal waits; renewals fail meanwhile, and the lease is renewed once
    the write ends. On SQLite a job is told alive by its process, never by its lease, so
    that is no warning for an admin; on PostgreSQL, where a job on another host is told
    alive by its lease alone, it is. (Here a renewal waits 20 ms, the write 0.3 s.)"""
    job_id = _running(engine)
    impatient = make_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(impatient, "connect")
    def _short_wait(dbapi_connection: Any, _record: Any) -> None:
        wait = "PRAGMA busy_timeout=20" if sqlite else "SET lock_timeout = '20ms'"
        dbapi_connection.cursor().execute(wait)

    try:
        with capture_logs() as logs, Lease(impatient, job_id, lambda: T1, every=TURN):
            with engine.begin() as conn:  # the job's long write
                conn.execute(update(jobs).where(jobs.c.id == job_id).values(size=2))
                assert _eventually(lambda: any(e["event"] == "lease_not_renewed" for e in logs))
            assert _eventually(lambda: _lease_until(engine, job_id) == T1 + LEASE)
    finally:
        impatient.dispose()
    failed = {e["log_level"] for e in logs if e["event"] == "lease_not_renewed"}
    assert failed == ({"debug"} if sqlite else {"warning"})
    assert [e for e in logs if e["event"] != "lease_not_renewed"] == []
