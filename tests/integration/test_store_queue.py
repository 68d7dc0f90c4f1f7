"""The daemon's queue on both databases: a listed file is claimed once, a source's jobs run
one at a time in file order across daemons, and a dead daemon's job is recovered."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection

from syncd.store import job_records, queue
from syncd.store.engine import ensure_schema, make_engine

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
LEASE = T0 + timedelta(minutes=5)


def listed(conn: Connection, job_id: str, name: str, mtime: float, source: str = "hr") -> bool:
    """Claim a listed file as a queued job, as a scan does."""
    return queue.queue_file(
        conn,
        job_id=job_id,
        source=source,
        directory=source,
        mode="full",
        name=name,
        size=100,
        mtime=mtime,
        now=T0,
    )


def take(conn: Connection, owner: str = "d1") -> str | None:
    job = queue.claim_next_job(conn, owner=owner, now=T0, lease_until=LEASE)
    return None if job is None else job.id


def test_a_listed_file_is_claimed_once_and_found_by_its_listing(conn: Connection) -> None:
    """The same listing (name, size, mtime) claimed twice queues one job; another mtime
    (the file dropped again) is another claim."""
    assert listed(conn, "AAAAA-00001", "users.csv", 1000.0)
    assert not listed(conn, "AAAAA-00002", "users.csv", 1000.0)
    assert listed(conn, "AAAAA-00003", "users.csv", 2000.0)
    found = queue.claimed_job(conn, "hr", "users.csv", 100, 1000.0)
    assert found is not None
    assert (found.id, found.status, found.sha256, found.remote_mtime) == (
        "AAAAA-00001",
        "queued",
        None,
        1000.0,
    )
    assert queue.claimed_job(conn, "other", "users.csv", 100, 1000.0) is None


def test_jobs_of_a_source_run_one_at_a_time_oldest_file_first(conn: Connection) -> None:
    """Whatever order files were claimed in, the oldest file runs first; the next waits
    for it; another source's job goes ahead meanwhile."""
    listed(conn, "AAAAA-00001", "b.csv", 2000.0)
    listed(conn, "AAAAA-00002", "a.csv", 1000.0)
    listed(conn, "AAAAA-00003", "c.csv", 1000.0)
    listed(conn, "AAAAA-00004", "x.csv", 5000.0, source="uploads")
    assert take(conn) == "AAAAA-00002"
    assert take(conn, "d2") == "AAAAA-00004"
    assert take(conn, "d2") is None
    job_records.finish_job(conn, "AAAAA-00002", status="applied", now=T0)
    assert [take(conn), take(conn)] == ["AAAAA-00003", None]
    job_records.finish_job(conn, "AAAAA-00003", status="applied", now=T0)
    assert take(conn) == "AAAAA-00001"
    job = job_records.get_job(conn, "AAAAA-00001")
    assert job is not None
    assert (job.status, job.lease_owner, job.lease_until) == ("running", "d1", LEASE)


def test_a_dead_daemons_claimed_job_goes_back_to_the_queue(conn: Connection) -> None:
    """A claimed file's job whose owner died is queued again (its file runs again); a
    command line job whose owner died is interrupted; a live owner's job, or a lease
    not yet run out on another host, is left running."""
    listed(conn, "AAAAA-00001", "a.csv", 1.0)
    listed(conn, "AAAAA-00002", "b.csv", 1.0, source="two")
    listed(conn, "AAAAA-00003", "c.csv", 1.0, source="three")
    for job_id, owner in [("AAAAA-00001", "dead"), ("AAAAA-00002", "live")]:
        queue.start_job(conn, job_id, now=T0, owner=owner, lease_until=LEASE)
    queue.start_job(conn, "AAAAA-00003", now=T0, owner="far", lease_until=LEASE)
    job_records.insert_job(
        conn, job_id="AAAAA-00009", source="cli", mode="full", file_name="f.csv", sha256="x",
        size=1, now=T0, status="running", owner="dead", lease_until=LEASE,
    )  # fmt: skip
    alive = {"dead": False, "live": True, "far": None}
    found = queue.recover_abandoned(conn, now=T0, is_alive=alive.__getitem__)
    assert sorted(found) == ["AAAAA-00001", "AAAAA-00009"]
    statuses = {j.id: j.status for j in job_records.list_jobs(conn, limit=None)}
    assert statuses == {
        "AAAAA-00001": "queued",
        "AAAAA-00002": "running",
        "AAAAA-00003": "running",
        "AAAAA-00009": "interrupted",
    }
    interrupted = job_records.get_job(conn, "AAAAA-00009")
    assert interrupted is not None
    assert "stopped before the job ended" in interrupted.messages[0]
    later = LEASE + timedelta(seconds=1)
    assert queue.recover_abandoned(conn, now=later, is_alive=alive.__getitem__) == ["AAAAA-00003"]


def test_a_file_whose_daemon_dies_every_time_is_given_up_after_max_attempts(
    conn: Connection,
) -> None:
    """A claimed job begun MAX_ATTEMPTS times whose daemon died each time (a file too big
    for the machine's memory is killed every time) is ended rejected, saying why and that
    nothing was applied; before that it goes back to the queue. A fetch that failed
    (`release_job`) does not count as an attempt."""
    alive = {"dead": False, "d1": True}
    listed(conn, "AAAAA-00001", "huge.csv", 1.0)
    assert take(conn) == "AAAAA-00001"
    assert queue.release_job(conn, "AAAAA-00001", owner="d1")  # the source was down
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        assert take(conn, "dead") == "AAAAA-00001", attempt
        assert queue.recover_abandoned(conn, now=T0, is_alive=alive.__getitem__) == ["AAAAA-00001"]
        job = job_records.get_job(conn, "AAAAA-00001")
        assert job is not None
        if attempt < queue.MAX_ATTEMPTS:
            assert (job.status, job.messages) == ("queued", ())
    assert job is not None
    assert job.status == "rejected"
    assert job.finished_at == T0
    assert job.lease_owner is None
    assert job.messages == (queue.given_up_message(queue.MAX_ATTEMPTS),)
    assert "stopped 3 times while running this file" in job.messages[0]
    assert "nothing of it was applied" in job.messages[0]
    assert take(conn) is None  # never run again


#: What can happen to a claimed job once a daemon took it: its fetch failed and it was
#: released; its daemon died and it was recovered; it ended.
_EVENTS = st.lists(st.sampled_from(["released", "died", "ended"]), max_size=10)
_EXAMPLES = itertools.count()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=_EVENTS)
def test_a_claimed_file_is_never_lost_and_given_up_only_after_max_attempts_deaths(
    conn: Connection, events: list[str]
) -> None:
    """Whatever mix of failed fetches, daemon deaths and endings a claimed job meets, it
    is queued again after each failed fetch and after each of its first MAX_ATTEMPTS - 1
    deaths, given up (rejected) at the MAX_ATTEMPTS-th death and never taken after an
    end; a failed fetch never counts towards giving up."""
    # Each example's own job and source (the examples share one database).
    n = next(_EXAMPLES)
    source, job_id = f"s{n}", f"P{n:010d}"
    assert listed(conn, job_id, "f.csv", 1.0, source=source)
    deaths, ended = 0, False
    for event in events:
        job = queue.claim_next_job(conn, owner="d1", now=T0, lease_until=LEASE, sources=[source])
        if ended:
            assert job is None
            continue
        assert job is not None
        assert job.id == job_id
        if event == "released":
            assert queue.release_job(conn, job_id, owner="d1")
        elif event == "died":
            deaths += 1
            assert queue.recover_abandoned(conn, now=T0, is_alive={"d1": False}.__getitem__) == [
                job_id
            ]
            ended = deaths == queue.MAX_ATTEMPTS
        else:
            job_records.finish_job(conn, job_id, status="applied", now=T0)
            ended = True
        stored = job_records.get_job(conn, job_id)
        assert stored is not None
        if not ended:
            assert stored.status == "queued"
        elif event == "died":
            assert stored.status == "rejected"
            assert stored.messages == (queue.given_up_message(queue.MAX_ATTEMPTS),)
        else:
            assert stored.status == "applied"


def test_a_lease_is_renewed_by_its_owner_only_and_a_job_can_be_released(
    conn: Connection,
) -> None:
    """renew_lease answers whether the owner still holds the job; release_job puts it
    back in the queue (its file could not be fetched just now)."""
    listed(conn, "AAAAA-00001", "a.csv", 1.0)
    assert take(conn) == "AAAAA-00001"
    assert queue.renew_lease(conn, "AAAAA-00001", owner="d1", lease_until=LEASE)
    assert not queue.renew_lease(conn, "AAAAA-00001", owner="d2", lease_until=LEASE)
    assert not queue.release_job(conn, "AAAAA-00001", owner="d2")
    assert queue.release_job(conn, "AAAAA-00001", owner="d1")
    assert take(conn, "d2") == "AAAAA-00001"


def test_two_daemons_claiming_at_once_never_run_one_source_twice(postgres_url: str) -> None:
    """On PostgreSQL, two daemons claiming at the same moment in open transactions: one
    takes the source's oldest file, the other leaves that source alone (not its next
    file either) and takes another source's."""
    engine = make_engine(postgres_url)
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            listed(conn, "AAAAA-00001", "a.csv", 1.0)
            listed(conn, "AAAAA-00002", "b.csv", 2.0)
            listed(conn, "AAAAA-00003", "c.csv", 3.0, source="uploads")
        with engine.connect() as one, engine.connect() as two, one.begin(), two.begin():
            first = take(one, "d1")
            second = take(two, "d2")
        assert (first, second) == ("AAAAA-00001", "AAAAA-00003")
    finally:
        engine.dispose()
