"""What a job keeps besides its record: the retained input (secret cells blanked), named
job files (its errors CSV as written, a held job's validated state) and a held job's
password hashes. Each is kept until its expiry, or until the job is decided."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from syncd.store import schema
from syncd.store.schema import job_files, jobs, retained_files

#: How `kept_files` names a job's retained input.
RETAINED = "retained-input"


@dataclass(frozen=True, slots=True)
class RetainedFile:
    """A job's input file (passwords redacted), kept for support until `expires_at`."""

    job_id: str
    file_name: str
    content: bytes
    created_at: datetime
    expires_at: datetime
    redacted: bool


def retain_file(
    conn: Connection,
    job_id: str,
    *,
    file_name: str,
    content: bytes,
    now: datetime,
    expires_at: datetime,
    redacted: bool = False,
) -> None:
    """Keep a job's input file until `expires_at`; `redacted`: it is the rewrite with its
    secret cells blanked (which is also what a source settles in the file's place)."""
    conn.execute(
        insert(retained_files).values(
            job_id=job_id,
            file_name=file_name,
            content=content,
            created_at=now,
            expires_at=expires_at,
            redacted=redacted,
        )
    )


def retained_file(conn: Connection, job_id: str) -> RetainedFile | None:
    """The retained input of a job, if it is still kept."""
    row = conn.execute(select(retained_files).where(retained_files.c.job_id == job_id)).first()
    return None if row is None else RetainedFile(**row._asdict())


@dataclass(frozen=True, slots=True)
class Expired:
    """What `drop_expired` dropped: the jobs whose retained input went, and each job
    file as (job ID, name)."""

    retained: tuple[str, ...]
    job_files: tuple[tuple[str, str], ...]


def drop_expired(conn: Connection, *, now: datetime) -> Expired:
    """Drop retained files and job files whose retention has run out, saying which."""
    retained = conn.execute(
        delete(retained_files)
        .where(retained_files.c.expires_at <= now)
        .returning(retained_files.c.job_id)
    )
    files = conn.execute(
        delete(job_files)
        .where(job_files.c.expires_at <= now)
        .returning(job_files.c.job_id, job_files.c.name)
    )
    return Expired(tuple(sorted(retained.scalars())), tuple(sorted((j, n) for j, n in files.all())))


def kept_files(conn: Connection, job_id: str) -> set[str]:
    """The names of the files a job keeps (without reading them), the retained input as
    `RETAINED`."""
    names = set(conn.scalars(select(job_files.c.name).where(job_files.c.job_id == job_id)))
    retained = conn.scalar(select(retained_files.c.job_id).where(retained_files.c.job_id == job_id))
    return names | ({RETAINED} if retained is not None else set())


def purge_expired(conn: Connection, *, now: datetime) -> int:
    """Drop retained files and job files whose retention has run out; returns how many."""
    expired = drop_expired(conn, now=now)
    return len(expired.retained) + len(expired.job_files)


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


def latest_files(
    conn: Connection, name: str, *, directory: str, limit: int
) -> list[tuple[str, bytes]]:
    """The files called `name` of the latest `limit` jobs of `directory` that keep one:
    (job ID, content), newest job first."""
    query = (
        select(jobs.c.id, job_files.c.content)
        .join(job_files, job_files.c.job_id == jobs.c.id)
        .where(job_files.c.name == name, jobs.c.directory == directory)
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        .limit(limit)
    )
    return [(row.id, row.content) for row in conn.execute(query)]
