"""The job records: one row per file, its row errors, retained input, files and held state.

Statuses are defined in `syncd.core.status`. A running job names its owner (host, process
and start time) and holds a lease; a job whose owner died is marked `interrupted` when
found (`interrupt_abandoned`). Several daemons may share a PostgreSQL database, so:
a file is claimed by a unique `claim` value (the loser's insert does nothing), queued work
is picked with `FOR UPDATE SKIP LOCKED`, and a running job holds a lease that another
daemon re-queues once it has expired (its owner crashed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Connection, Row, and_, delete, exists, insert, or_, select, update
from sqlalchemy.orm import aliased

from syncd.core.counts import Counts
from syncd.core.job_id import normalise_job_id
from syncd.core.profile import Mode
from syncd.core.status import SKIPS_IDENTICAL, JobStatus
from syncd.core.table import RowError
from syncd.errors import JobNotFound
from syncd.store import schema
from syncd.store.bulk import insert_frame, insert_unless_exists
from syncd.store.schema import job_files, jobs, retained_files

COUNT_NAMES = tuple(Counts.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored."""

    id: str
    source: str
    directory: str | None
    mode: Mode
    file_name: str
    sha256: str
    size: int
    status: JobStatus
    skipped_of: str | None
    claim: str | None
    counts: Counts
    encoding: str | None
    messages: tuple[str, ...]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    errors_csv: str | None
    held_digest: str | None

    def as_json(self) -> dict[str, object]:
        """The object `--json` prints for a job (CLI contract)."""
        return {
            "job_id": self.id,
            "status": self.status,
            "source": self.source,
            "mode": self.mode,
            "file": self.file_name,
            "encoding": self.encoding,
            "counts": self.counts.as_dict(),
            "errors_csv": self.errors_csv,
            "messages": list(self.messages),
        }


def _job(row: Row[Any]) -> Job:
    values = row._asdict()
    counts = Counts(**{name: values.pop(name) for name in COUNT_NAMES})
    values["messages"] = tuple(values["messages"])
    return Job(counts=counts, **values)


def insert_job(
    conn: Connection,
    *,
    job_id: str,
    source: str,
    mode: Mode,
    file_name: str,
    sha256: str,
    size: int,
    now: datetime,
    directory: str | None = None,
    status: JobStatus = "queued",
    skipped_of: str | None = None,
    claim: str | None = None,
    messages: Sequence[str] = (),
    owner: str | None = None,
    lease_until: datetime | None = None,
) -> bool:
    """Record a new job; False (and nothing written) when another job holds `claim`.
    A job inserted `running` names its `owner` and lease."""
    statement = insert(jobs)
    if claim is not None:
        statement = insert_unless_exists(conn, jobs, ("claim",))
    inserted = conn.scalar(
        statement.values(
            id=job_id,
            source=source,
            directory=directory,
            mode=mode,
            file_name=file_name,
            sha256=sha256,
            size=size,
            status=status,
            skipped_of=skipped_of,
            claim=claim,
            messages=list(messages),
            created_at=now,
            started_at=now if status == "running" else None,
            lease_owner=owner,
            lease_until=lease_until,
            **dict.fromkeys(COUNT_NAMES, 0),
        ).returning(jobs.c.id)
    )
    # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT DO NOTHING.
    return inserted is not None


def start_job(
    conn: Connection,
    job_id: str,
    *,
    now: datetime,
    owner: str | None = None,
    lease_until: datetime | None = None,
) -> bool:
    """Mark a queued job running (under a lease, if given); False if it was not queued."""
    result = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "queued")
        .values(status="running", started_at=now, lease_owner=owner, lease_until=lease_until)
    )
    return result.rowcount == 1


def claim_next_job(
    conn: Connection, *, owner: str, now: datetime, lease_until: datetime
) -> Job | None:
    """Take the oldest queued job that may run now and mark it running under a lease.

    Jobs of one source apply in file order: a job waits while an earlier job of its
    source is queued or running. `SKIP LOCKED` lets two daemons pick different jobs
    without waiting on each other (SQLite serialises writers anyway).
    """
    earlier = aliased(jobs)
    blocked = exists().where(
        earlier.c.source == jobs.c.source,
        or_(
            earlier.c.status == "running",
            and_(
                earlier.c.status == "queued",
                or_(
                    earlier.c.created_at < jobs.c.created_at,
                    and_(earlier.c.created_at == jobs.c.created_at, earlier.c.id < jobs.c.id),
                ),
            ),
        ),
    )
    pick = (
        select(jobs.c.id)
        .where(jobs.c.status == "queued", ~blocked)
        .order_by(jobs.c.created_at, jobs.c.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=jobs)
    )
    job_id = conn.scalar(pick)
    if job_id is None or not start_job(conn, job_id, now=now, owner=owner, lease_until=lease_until):
        return None
    return get_job(conn, job_id)


def renew_lease(conn: Connection, job_id: str, *, owner: str, lease_until: datetime) -> bool:
    """Extend a running job's lease; False if `owner` no longer holds it."""
    result = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == owner)
        .values(lease_until=lease_until)
    )
    return result.rowcount == 1


def requeue_expired(conn: Connection, *, now: datetime) -> list[str]:
    """Put running jobs whose lease ran out (their daemon died) back in the queue."""
    expired = select(jobs.c.id).where(jobs.c.status == "running", jobs.c.lease_until < now)
    ids = list(conn.scalars(expired.with_for_update(skip_locked=True)))
    if ids:
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids))
            .values(status="queued", started_at=None, lease_owner=None, lease_until=None)
        )
    return ids


def interrupt_abandoned(
    conn: Connection, *, now: datetime, is_alive: Callable[[str], bool | None]
) -> list[str]:
    """Mark `interrupted` every running job whose owner is gone: `is_alive(owner)` says
    False (a process of this host that no longer runs), or cannot tell (None: another
    host) and the lease has run out. Nothing of such a job was applied: apply and the
    job's end are one transaction, which never committed."""
    running = conn.execute(
        select(jobs.c.id, jobs.c.lease_owner, jobs.c.lease_until).where(jobs.c.status == "running")
    ).all()
    gone = []
    for job_id, owner, until in running:
        alive = is_alive(owner) if owner else None
        if alive is False or (alive is None and (until is None or until < now)):
            gone.append((job_id, owner))
    for job_id, owner in gone:
        note = (
            f"the process running this job ({owner or 'unknown'}) stopped before the job "
            "ended; nothing of it was applied, and the same file runs again when it is sent"
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "running")
            .values(
                status="interrupted",
                finished_at=now,
                lease_owner=None,
                lease_until=None,
                messages=[note],
            )
        )
    return [job_id for job_id, _ in gone]


def finish_job(
    conn: Connection,
    job_id: str,
    *,
    status: JobStatus,
    now: datetime,
    counts: Counts | None = None,
    messages: Sequence[str] | None = None,
    encoding: str | None = None,
    errors_csv: str | None = None,
    directory: str | None = None,
) -> None:
    """Record a job's outcome and release its lease; None leaves a value as it was."""
    values: dict[str, object] = {
        "status": status,
        "finished_at": now,
        "lease_owner": None,
        "lease_until": None,
    }
    if counts is not None:
        values.update(counts.as_dict())
    if messages is not None:
        values["messages"] = list(messages)
    optional = {"encoding": encoding, "errors_csv": errors_csv, "directory": directory}
    values.update({name: value for name, value in optional.items() if value is not None})
    result = conn.execute(update(jobs).where(jobs.c.id == job_id).values(values))
    if result.rowcount != 1:
        raise JobNotFound(f"no job has the ID {job_id!r}")


def get_job(conn: Connection, job_id: str) -> Job | None:
    """The job with this ID as a person typed it (any case, dash or not), if any."""
    canonical = normalise_job_id(job_id) or job_id.strip()
    row = conn.execute(select(jobs).where(jobs.c.id == canonical)).first()
    return None if row is None else _job(row)


def require_job(conn: Connection, job_id: str) -> Job:
    """Like `get_job`, but a missing job is a `JobNotFound` a person can act on."""
    job = get_job(conn, job_id)
    if job is None:
        raise JobNotFound(f"no job has the ID {job_id!r}: check it against `syncd jobs list`")
    return job


def list_jobs(conn: Connection, limit: int | None = 20) -> list[Job]:
    """The most recent jobs, newest first."""
    query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
    return [_job(row) for row in conn.execute(query)]


def find_processed(conn: Connection, source: str, sha256: str, mode: Mode) -> str | None:
    """The first job of `source` that applied or holds a file with this content in this
    mode, if any (`syncd.core.status.SKIPS_IDENTICAL`)."""
    query = (
        select(jobs.c.id)
        .where(
            jobs.c.source == source,
            jobs.c.sha256 == sha256,
            jobs.c.mode == mode,
            jobs.c.status.in_(SKIPS_IDENTICAL),
        )
        .order_by(jobs.c.created_at, jobs.c.id)
        .limit(1)
    )
    found: str | None = conn.scalar(query)
    return found


def add_row_errors(conn: Connection, job_id: str, errors: Iterable[RowError]) -> None:
    """Store a job's row errors (any number, in one bulk write), after any stored before."""
    found = list(errors)
    if not found:
        return
    start = conn.scalar(
        select(schema.row_errors.c.seq)
        .where(schema.row_errors.c.job_id == job_id)
        .order_by(schema.row_errors.c.seq.desc())
    )
    first = 0 if start is None else start + 1
    frame = pl.DataFrame(
        {
            "job_id": [job_id] * len(found),
            "seq": range(first, first + len(found)),
            "row": [e.row for e in found],
            "column": [e.column for e in found],
            "message": [e.message for e in found],
        },
        schema={
            "job_id": pl.String,
            "seq": pl.Int64,
            "row": pl.Int64,
            "column": pl.String,
            "message": pl.String,
        },
    )
    insert_frame(conn, schema.row_errors, frame)


def replace_row_errors(conn: Connection, job_id: str, errors: Iterable[RowError]) -> None:
    """A job's row errors from now on: these, and none stored before."""
    conn.execute(delete(schema.row_errors).where(schema.row_errors.c.job_id == job_id))
    add_row_errors(conn, job_id, errors)


def row_errors(conn: Connection, job_id: str) -> list[RowError]:
    """A job's row errors in the order they were stored."""
    query = (
        select(schema.row_errors.c.row, schema.row_errors.c.column, schema.row_errors.c.message)
        .where(schema.row_errors.c.job_id == job_id)
        .order_by(schema.row_errors.c.seq)
    )
    return [RowError(row=r.row, column=r.column, message=r.message) for r in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class RetainedFile:
    """A job's input file (passwords redacted), kept for support until `expires_at`."""

    job_id: str
    file_name: str
    content: bytes
    created_at: datetime
    expires_at: datetime


def retain_file(
    conn: Connection,
    job_id: str,
    *,
    file_name: str,
    content: bytes,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Keep a job's (redacted) input file until `expires_at`."""
    conn.execute(
        insert(retained_files).values(
            job_id=job_id,
            file_name=file_name,
            content=content,
            created_at=now,
            expires_at=expires_at,
        )
    )


def retained_file(conn: Connection, job_id: str) -> RetainedFile | None:
    """The retained input of a job, if it is still kept."""
    row = conn.execute(select(retained_files).where(retained_files.c.job_id == job_id)).first()
    return None if row is None else RetainedFile(**row._asdict())


def purge_expired(conn: Connection, *, now: datetime) -> int:
    """Drop retained files and job files whose retention has run out; returns how many."""
    result = conn.execute(delete(retained_files).where(retained_files.c.expires_at <= now))
    files = conn.execute(delete(job_files).where(job_files.c.expires_at <= now))
    return result.rowcount + files.rowcount


def put_job_file(
    conn: Connection, job_id: str, name: str, content: bytes, *, expires_at: datetime | None
) -> None:
    """Keep (or replace) a job's file called `name`."""
    conn.execute(delete(job_files).where(job_files.c.job_id == job_id, job_files.c.name == name))
    conn.execute(
        insert(job_files).values(job_id=job_id, name=name, content=content, expires_at=expires_at)
    )


def job_file(conn: Connection, job_id: str, name: str) -> bytes | None:
    """A job's file called `name`, if it is kept."""
    found: bytes | None = conn.scalar(
        select(job_files.c.content).where(job_files.c.job_id == job_id, job_files.c.name == name)
    )
    return found


def drop_job_files(conn: Connection, job_id: str, names: Iterable[str]) -> None:
    """Forget a job's files of these names."""
    conn.execute(
        delete(job_files).where(job_files.c.job_id == job_id, job_files.c.name.in_(list(names)))
    )


def hold_plan(
    conn: Connection,
    job_id: str,
    archive_digest: str,
    passwords: Iterable[tuple[str, str, str | None]],
) -> None:
    """Keep what approving a held job needs: a digest of the users its plan archives (the
    approver must archive exactly those) and its new passwords as (key, hash, tag), since
    the retained file has no passwords."""
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(held_digest=archive_digest))
    rows = [
        {"job_id": job_id, "key": key, "password_hash": hashed, "password_tag": tag}
        for key, hashed, tag in passwords
    ]
    if rows:
        conn.execute(insert(schema.held_passwords), rows)


def held_digest(conn: Connection, job_id: str) -> str | None:
    """The archive digest `hold_plan` kept for a job, if it was held."""
    found: str | None = conn.scalar(select(jobs.c.held_digest).where(jobs.c.id == job_id))
    return found


def held_passwords(conn: Connection, job_id: str) -> dict[str, tuple[str, str | None]]:
    """A held job's new passwords: key -> (argon2 hash, password tag)."""
    table = schema.held_passwords
    query = select(table.c.key, table.c.password_hash, table.c.password_tag).where(
        table.c.job_id == job_id
    )
    return {row.key: (row.password_hash, row.password_tag) for row in conn.execute(query)}


def forget_held(conn: Connection, job_id: str) -> None:
    """Drop what `hold_plan` kept, once the job is approved or dismissed."""
    conn.execute(delete(schema.held_passwords).where(schema.held_passwords.c.job_id == job_id))
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(held_digest=None))
