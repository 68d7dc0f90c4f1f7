"""The daemon's queue: files claimed as jobs, taken one at a time per source in file order,
under leases, and recovered when their daemon dies.

A scan claims each complete file it lists by inserting a `queued` job whose unique `claim`
is the listing (source, size, modification time, name): known before any byte is fetched,
so two daemons that list the same file never both take it, and a file left in place
(its settling failed) is never taken again. A daemon takes the next job with
`claim_next_job`: a source's jobs run one at a time, oldest file first, across daemons
(on PostgreSQL a per-source advisory lock makes the check and the start one step; SQLite
takes its write lock first). A running job holds a lease its daemon renews; a job whose
daemon died (its process gone on this host, or its lease run out) is recovered: a claimed
file's job goes back to the queue, a command line job becomes `interrupted`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from syncd.core.profile import Mode
from syncd.store.bulk import insert_unless_exists
from syncd.store.job_records import COUNT_NAMES, Job, get_job
from syncd.store.schema import jobs


def claim_key(source: str, name: str, size: int, mtime: float) -> str:
    """The claim of a listed file: the same listing always gives the same claim."""
    return f"{source}/{size}/{mtime!r}/{name}"


def queue_file(
    conn: Connection,
    *,
    job_id: str,
    source: str,
    directory: str,
    mode: Mode,
    name: str,
    size: int,
    mtime: float,
    now: datetime,
) -> bool:
    """Claim a listed file as a queued job; False when it was claimed already, or when
    `job_id` is taken (IDs are random within a tenth of a second: see
    `syncd.core.job_id`), which the caller tells apart with `claimed_job`."""
    inserted = conn.scalar(
        insert_unless_exists(conn, jobs)
        .values(
            id=job_id,
            source=source,
            directory=directory,
            mode=mode,
            file_name=name,
            sha256=None,
            size=size,
            remote_mtime=mtime,
            status="queued",
            claim=claim_key(source, name, size, mtime),
            messages=[],
            created_at=now,
            **dict.fromkeys(COUNT_NAMES, 0),
        )
        .returning(jobs.c.id)
    )
    return inserted is not None


def claimed_job(conn: Connection, source: str, name: str, size: int, mtime: float) -> Job | None:
    """The job that claimed this listing, if any."""
    found = conn.scalar(
        select(jobs.c.id).where(jobs.c.claim == claim_key(source, name, size, mtime))
    )
    return None if found is None else get_job(conn, found)


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
        .values(
            status="running",
            started_at=now,
            lease_owner=owner,
            lease_until=lease_until,
            attempts=jobs.c.attempts + 1,
        )
    )
    return result.rowcount == 1


def claim_next_job(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    sources: Collection[str] | None = None,
) -> Job | None:
    """Take the next job that may run now and mark it running under `owner`'s lease: of
    the sources (all, or `sources`) with no job running, the one whose oldest queued
    file was claimed first, and that file. Jobs of one source thus run one at a time,
    in file order (modification time, then name), whichever daemon runs them.

    Call it in a transaction of its own: on SQLite one that took the write lock
    (`sqlite_begin="IMMEDIATE"`), so no other daemon claims between the check and the
    start.
    """
    running = select(jobs.c.source).where(jobs.c.status == "running")
    query = select(jobs.c.id, jobs.c.source, jobs.c.created_at).where(
        jobs.c.status == "queued", jobs.c.source.not_in(running)
    )
    if sources is not None:
        query = query.where(jobs.c.source.in_(list(sources)))
    order = (jobs.c.remote_mtime, jobs.c.file_name, jobs.c.created_at, jobs.c.id)
    firsts: dict[str, tuple[datetime, str]] = {}
    for job_id, source, created_at in conn.execute(query.order_by(*order)):
        firsts.setdefault(source, (created_at, job_id))
    for source, (_, job_id) in sorted(firsts.items(), key=lambda item: item[1]):
        if conn.dialect.name == "postgresql":
            # One daemon at a time checks and starts a source's job; the lock ends with
            # the transaction, by when the started job blocks the others.
            key = zlib.crc32(f"syncd-source:{source}".encode())
            if not conn.scalar(select(func.pg_try_advisory_xact_lock(key))):
                continue
            if conn.scalar(
                select(func.count()).where(jobs.c.source == source, jobs.c.status == "running")
            ):
                continue
        if start_job(conn, job_id, now=now, owner=owner, lease_until=lease_until):
            return get_job(conn, job_id)
    return None


def renew_lease(conn: Connection, job_id: str, *, owner: str, lease_until: datetime) -> bool:
    """Extend a running job's lease; False if `owner` no longer holds it."""
    result = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == owner)
        .values(lease_until=lease_until)
    )
    return result.rowcount == 1


#: How many times a claimed file's job is begun before a daemon that dies while running
#: it (killed, out of memory) makes syncd give up on the file.
MAX_ATTEMPTS = 3


def given_up_message(attempts: int) -> str:
    """What a job given up on says (`recover_abandoned`)."""
    return (
        f"syncd stopped {attempts} times while running this file (killed, most likely "
        "for want of memory: see the service's log) and does not try it again; nothing "
        "of it was applied. Split the file, or give syncd more memory, and send it again"
    )


def interrupted_message(owner: str | None) -> str:
    """What a command line job whose process died says (`recover_abandoned`)."""
    return (
        f"the process running this job ({owner or 'unknown'}) stopped before the job "
        "ended; nothing of it was applied, and the same file runs again when it is sent"
    )


def recover_abandoned(
    conn: Connection, *, now: datetime, is_alive: Callable[[str], bool | None]
) -> list[str]:
    """Recover every running job whose owner is gone: `is_alive(owner)` says False (a
    process of this host that no longer runs), or cannot tell (None: another host) and
    the lease has run out. Nothing of such a job was applied: apply and the job's end
    are one transaction, which never committed. A claimed file's job goes back to the
    queue, to run again, unless it was begun `MAX_ATTEMPTS` times: such a file stops its
    daemon each time (most likely it needs more memory than the machine has), so it is
    ended `rejected`, saying so (the daemon that finds it settles its file into failed/,
    or else the next scan). A command line job, whose file nobody holds, is
    `interrupted`."""
    running = conn.execute(
        select(
            jobs.c.id, jobs.c.lease_owner, jobs.c.lease_until, jobs.c.claim, jobs.c.attempts
        ).where(jobs.c.status == "running")
    ).all()
    gone = []
    for job_id, owner, until, claim, attempts in running:
        alive = is_alive(owner) if owner else None
        if alive is False or (alive is None and (until is None or until < now)):
            gone.append((job_id, owner, claim, attempts))
    for job_id, owner, claim, attempts in gone:
        if claim is not None and attempts < MAX_ATTEMPTS:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(status="queued", started_at=None, lease_owner=None, lease_until=None)
            )
            continue
        status = "rejected" if claim is not None else "interrupted"
        note = given_up_message(attempts) if claim is not None else interrupted_message(owner)
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == "running")
            .values(
                status=status,
                finished_at=now,
                lease_owner=None,
                lease_until=None,
                messages=[note],
            )
        )
    return [job_id for job_id, *_ in gone]


def release_job(conn: Connection, job_id: str, *, owner: str) -> bool:
    """Give a running job back to the queue (its file could not be fetched just now),
    its attempt uncounted: it never began."""
    result = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == owner)
        .values(
            status="queued",
            started_at=None,
            lease_owner=None,
            lease_until=None,
            attempts=jobs.c.attempts - 1,
        )
    )
    return result.rowcount == 1


def set_content(conn: Connection, job_id: str, *, sha256: str, size: int, mode: Mode) -> None:
    """What a claimed job's file turned out to be, once fetched."""
    conn.execute(
        update(jobs).where(jobs.c.id == job_id).values(sha256=sha256, size=size, mode=mode)
    )
