"""What syncd knows of each source between files: its newest file and last job, and
whether it is late (`source_state`), for `syncd.staleness` and `syncd status`.

Lateness moves by conditional UPDATEs, so two daemons checking one source at once
change its state once: `mark_late` only turns a source that is not late late, and
`mark_resumed` only ends the lateness it was shown. The caller queues the alert in the
same transaction, only when its UPDATE changed the row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from syncd.core.status import UNDER_WAY, JobStatus
from syncd.store.bulk import insert_unless_exists
from syncd.store.schema import jobs, source_state


@dataclass(frozen=True, slots=True)
class SourceState:
    """One `source_state` row (see `syncd.store.schema`)."""

    source: str
    watched_since: datetime
    late_since: datetime | None = None
    late_measured_from: datetime | None = None
    alerted_at: datetime | None = None
    resumed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LastFile:
    """The newest file a source sent: its job, name and when syncd took it."""

    job_id: str
    name: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LastJob:
    """The newest job of a source that ended."""

    job_id: str
    status: JobStatus
    finished_at: datetime | None


def source_states(conn: Connection, sources: Collection[str]) -> dict[str, SourceState]:
    """The state of each of `sources` that has one."""
    query = select(source_state).where(source_state.c.source.in_(list(sources)))
    return {row.source: SourceState(**row._asdict()) for row in conn.execute(query)}


def watch_source(conn: Connection, source: str, *, now: datetime) -> None:
    """Start watching `source` at `now`, unless some syncd already does."""
    conn.execute(
        insert_unless_exists(conn, source_state, ("source",)).values(
            source=source, watched_since=now
        )
    )


def mark_late(
    conn: Connection, source: str, *, since: datetime, measured_from: datetime, now: datetime
) -> bool:
    """Record that `source` is late since `since`, and that its alert is queued now;
    False when it was already recorded late (by another daemon)."""
    changed = conn.execute(
        update(source_state)
        .where(source_state.c.source == source, source_state.c.late_since.is_(None))
        .values(late_since=since, late_measured_from=measured_from, alerted_at=now)
    )
    return changed.rowcount == 1


def mark_resumed(conn: Connection, source: str, *, late_since: datetime, now: datetime) -> bool:
    """Record that the lateness of `source` since `late_since` ended now; False when it
    no longer stands (another daemon recorded its end first)."""
    changed = conn.execute(
        update(source_state)
        .where(source_state.c.source == source, source_state.c.late_since == late_since)
        .values(late_since=None, late_measured_from=None, alerted_at=None, resumed_at=now)
    )
    return changed.rowcount == 1


def newest_files(conn: Connection, sources: Collection[str]) -> dict[str, LastFile]:
    """The newest file (job or claim) of each of `sources` that sent one."""
    newest = (
        select(jobs.c.source, func.max(jobs.c.created_at).label("at"))
        .where(jobs.c.source.in_(list(sources)))
        .group_by(jobs.c.source)
        .subquery()
    )
    query = (
        select(jobs.c.source, jobs.c.id, jobs.c.file_name, jobs.c.created_at)
        .join(newest, (jobs.c.source == newest.c.source) & (jobs.c.created_at == newest.c.at))
        .order_by(jobs.c.id)
    )
    found: dict[str, LastFile] = {}
    for source, job_id, name, at in conn.execute(query):
        # Two jobs of one instant: the later ID (IDs are time-ordered) wins.
        found[source] = LastFile(job_id, name, at)
    return found


def last_ended_job(conn: Connection, source: str) -> LastJob | None:
    """The newest job of `source` that ended (whatever its outcome)."""
    query = (
        select(jobs.c.id, jobs.c.status, jobs.c.finished_at)
        .where(jobs.c.source == source, jobs.c.status.not_in(list(UNDER_WAY)))
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else LastJob(row.id, row.status, row.finished_at)


def file_received_at(conn: Connection, source: str, at: datetime) -> LastFile | None:
    """The file of `source` that syncd took at `at`, if one was."""
    query = (
        select(jobs.c.id, jobs.c.file_name, jobs.c.created_at)
        .where(jobs.c.source == source, jobs.c.created_at == at)
        .order_by(jobs.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else LastFile(row.id, row.file_name, row.created_at)
