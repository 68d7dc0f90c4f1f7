"""The job records: one row per file, and its row errors.

Statuses are defined in `syncd.core.status`. The daemon's queue (claims, file order,
leases, recovery) is `syncd.store.queue`; what a job keeps besides its record (retained
input, errors CSV, held state) is `syncd.store.job_files`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, select, update

from syncd.core.counts import Counts
from syncd.core.job_id import normalise_job_id
from syncd.core.profile import Mode
from syncd.core.status import SKIPS_IDENTICAL, JobStatus
from syncd.core.table import RowError
from syncd.errors import JobNotFound
from syncd.store import schema
from syncd.store.bulk import insert_frame
from syncd.store.schema import jobs

COUNT_NAMES = tuple(Counts.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored."""

    id: str
    source: str
    directory: str | None
    mode: Mode
    file_name: str
    sha256: str | None
    size: int
    remote_mtime: float | None
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
    attempts: int  # how many times a daemon began running it
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
    sha256: str | None,
    size: int,
    now: datetime,
    directory: str | None = None,
    status: JobStatus = "queued",
    skipped_of: str | None = None,
    messages: Sequence[str] = (),
    owner: str | None = None,
    lease_until: datetime | None = None,
) -> None:
    """Record a new job (the command line's; the daemon queues its own, `store.queue`).
    A job inserted `running` names its `owner` and lease."""
    conn.execute(
        insert(jobs).values(
            id=job_id,
            source=source,
            directory=directory,
            mode=mode,
            file_name=file_name,
            sha256=sha256,
            size=size,
            status=status,
            skipped_of=skipped_of,
            messages=list(messages),
            created_at=now,
            started_at=now if status == "running" else None,
            lease_owner=owner,
            lease_until=lease_until,
            **dict.fromkeys(COUNT_NAMES, 0),
        )
    )


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
    skipped_of: str | None = None,
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
    optional = {
        "encoding": encoding,
        "errors_csv": errors_csv,
        "directory": directory,
        "skipped_of": skipped_of,
    }
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


def job_filters(
    *,
    source: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions on jobs: of one source, in one status, created in [since, until)."""
    found: list[ColumnElement[bool]] = []
    if source is not None:
        found.append(jobs.c.source == source)
    if status is not None:
        found.append(jobs.c.status == status)
    if since is not None:
        found.append(jobs.c.created_at >= since)
    if until is not None:
        found.append(jobs.c.created_at < until)
    return found


def list_jobs(
    conn: Connection,
    limit: int | None = 20,
    *,
    offset: int = 0,
    source: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Job]:
    """The most recent jobs, newest first, optionally filtered (`job_filters`)."""
    query = (
        select(jobs)
        .where(*job_filters(source=source, status=status, since=since, until=until))
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_job(row) for row in conn.execute(query)]


def jobs_by_id(conn: Connection, ids: Iterable[str]) -> list[Job]:
    """The jobs with these (canonical) IDs that exist, newest first."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    query = (
        select(jobs)
        .where(jobs.c.id.in_(wanted))
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
    )
    return [_job(row) for row in conn.execute(query)]


def directory_stamp(conn: Connection, directory: str) -> str:
    """What changes whenever a job writes to `directory`: the newest job that applied to
    it and when it ended ("" for a directory no job applied to yet). Every write to a
    directory is a job applying (`run_job`, an approval), which ends it."""
    found = conn.execute(
        select(jobs.c.id, jobs.c.finished_at)
        .where(jobs.c.directory == directory, jobs.c.status.in_(("applied", "applied_with_errors")))
        .order_by(jobs.c.finished_at.desc(), jobs.c.id.desc())
        .limit(1)
    ).first()
    return "" if found is None else f"{found.id}@{found.finished_at.isoformat()}"


def forget_job(conn: Connection, job_id: str) -> None:
    """Drop the record of a running job that stopped before writing anything of its own
    (an upload refused because the directory changed since its preview): as for a dry
    run, there is nothing to look up."""
    conn.execute(delete(jobs).where(jobs.c.id == job_id, jobs.c.status == "running"))


def last_full_file(conn: Connection, source: str) -> tuple[str, int] | None:
    """The newest full file applied from `source`: its job ID and its rows."""
    query = (
        select(jobs.c.id, jobs.c.rows)
        .where(
            jobs.c.source == source,
            jobs.c.mode == "full",
            jobs.c.status.in_(("applied", "applied_with_errors")),
        )
        .order_by(jobs.c.finished_at.desc(), jobs.c.id.desc())
        .limit(1)
    )
    found = conn.execute(query).first()
    return None if found is None else (found.id, found.rows)


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


def row_errors(
    conn: Connection, job_id: str, *, offset: int = 0, limit: int | None = None
) -> list[RowError]:
    """A job's row errors in the order they were stored (or `limit` of them from
    `offset`: a page)."""
    query = (
        select(schema.row_errors.c.row, schema.row_errors.c.column, schema.row_errors.c.message)
        .where(schema.row_errors.c.job_id == job_id)
        .order_by(schema.row_errors.c.seq)
        .offset(offset)
        .limit(limit)
    )
    return [RowError(row=r.row, column=r.column, message=r.message) for r in conn.execute(query)]


def count_row_errors(conn: Connection, job_id: str) -> int:
    query = select(func.count()).where(schema.row_errors.c.job_id == job_id)
    return int(conn.scalar(query) or 0)


def failed_rows(conn: Connection, job_id: str) -> list[int]:
    """The rows of a job that have errors, in row order: the n-th is the n-th line of
    its errors CSV."""
    query = (
        select(schema.row_errors.c.row)
        .where(schema.row_errors.c.job_id == job_id)
        .distinct()
        .order_by(schema.row_errors.c.row)
    )
    return [int(row) for row in conn.scalars(query)]
