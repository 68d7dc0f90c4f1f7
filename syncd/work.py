"""Running the daemon's queued jobs: take the next one, fetch its file into the spool, run
it, settle the file.

`take_next` claims the next job any daemon may run now (`store.claim_next_job`: one job of
a source at a time, oldest file first, across daemons), first recovering the jobs of
daemons that died. The file is fetched again by whoever runs the job, so a job claimed by
one daemon and recovered by another loses nothing. `settle` moves the file once its job
ended; a scan settles again what a crash or a broken connection left in place.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

import structlog

from syncd import store
from syncd.config import Config, SourceConfig
from syncd.core.counts import Counts
from syncd.core.status import PROCESSED, JobStatus
from syncd.errors import FileRejected, SourceError
from syncd.flow import finish, recover, report_ended, run_job
from syncd.intake import Drop, Progress, quiet
from syncd.lease import LEASE, this_owner
from syncd.outcome import JobOutcome
from syncd.runtime import Runtime
from syncd.sources import RemoteFile, Source, open_source
from syncd.sources.spool import FileChanged, FileTooLarge, Spool
from syncd.support import retained_file

log = structlog.get_logger("syncd.work")


@dataclass(frozen=True, slots=True)
class Opened:
    """A configured source, opened. `lock` serialises its use: a scan and a job of one
    source never talk to it at once (an SFTP connection is one conversation)."""

    config: SourceConfig
    source: Source
    lock: threading.RLock = field(default_factory=threading.RLock)


def open_sources(
    config: Config, names: Collection[str] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Opened]:
    """The configured sources (all, or those `names`), opened; nothing connects yet."""
    environ = dict(os.environ) if env is None else env
    return {
        cfg.name: Opened(cfg, open_source(cfg, environ, config.profiles[cfg.profile].max_bytes))
        for cfg in config.sources
        if names is None or cfg.name in names
    }


class SourceDown(Exception):
    """A source could not hand over a job's file just now; the job went back to the queue."""

    def __init__(self, source: str, error: SourceError) -> None:
        super().__init__(f"{source}: {error}")
        self.source = source


def take_next(
    rt: Runtime,
    sources: Mapping[str, Opened],
    spool: Spool,
    *,
    progress: Progress = quiet,
    on_claim: Callable[[str], None] | None = None,
) -> JobOutcome | None:
    """Run the next queued job of `sources` that may run now; None when there is none.

    Raises SourceDown when the job's file could not be fetched (its source is down); the
    job is then back in the queue.
    """
    now = rt.clock()
    # (On SQLite the runtime's transactions take the write lock as they begin, so the
    # claim's check and start are one step for every daemon on the database.)
    with rt.engine.begin() as conn:
        given_up = recover(conn, rt, now)
        job = store.claim_next_job(
            conn, owner=this_owner(), now=now, lease_until=now + LEASE, sources=list(sources)
        )
    for ended in given_up:  # into failed/ now (a later scan would, if this fails)
        if ended.source in sources:
            listed = RemoteFile(ended.file_name, ended.size, ended.remote_mtime or 0.0)
            settle(rt, sources[ended.source], listed, ended.id, ended.status, redacted=False)
    if job is None:
        return None
    if on_claim is not None:
        on_claim(job.id)
    opened = sources[job.source]
    file = RemoteFile(job.file_name, job.size, job.remote_mtime or 0.0)
    log.info("file_taken", job_id=job.id, source=job.source, file=file.name, size=file.size)
    progress("fetching")
    try:
        with opened.lock:
            spooled = opened.source.fetch(file, spool, job.id)
    except SourceError as error:
        with rt.engine.begin() as conn:
            store.release_job(conn, job.id, owner=this_owner())
        raise SourceDown(job.source, error) from error
    except FileRejected as rejected:
        outcome = _refused(rt, job, rejected)
        if not isinstance(rejected, FileChanged):  # a changed file is listed anew
            settle(rt, opened, file, outcome.job_id or job.id, outcome.status, redacted=False)
        return outcome
    try:
        outcome = run_job(
            rt,
            opened.config,
            Drop(file.name, spooled.read(), path=spooled.path, sha256=spooled.sha256),
            claimed=job.id,
            progress=progress,
        )
    except Exception:
        # run_job recorded the job as rejected; the file goes to failed/, not round again
        # (as the copy it kept, with passwords blanked, if it kept one).
        with rt.engine.connect() as conn:
            kept = store.retained_file(conn, job.id)
        settle(rt, opened, file, job.id, "rejected", redacted=kept is not None and kept.redacted)
        raise
    finally:
        spooled.discard()
    settle(rt, opened, file, job.id, outcome.status, redacted=outcome.redacted)
    return outcome


def _refused(rt: Runtime, job: store.Job, rejected: FileRejected) -> JobOutcome:
    """A claimed job whose file could not be taken at all (too large, changed, gone)."""
    outcome = replace(
        JobOutcome.from_job(job),
        status="rejected",
        counts=Counts(),
        messages=(rejected.message,),
        finished_at=rt.clock(),
    )
    with rt.engine.begin() as conn:
        finish(conn, outcome)
        report_ended(conn, rt, outcome)
    reason = "file_too_large" if isinstance(rejected, FileTooLarge) else "file_changed"
    log.warning(reason, job_id=job.id, source=job.source, reason=rejected.message)
    return outcome


def settle(
    rt: Runtime,
    opened: Opened,
    file: RemoteFile,
    job_id: str,
    status: JobStatus | str,
    *,
    redacted: bool,
) -> str | None:
    """Move a file whose job ended to processed/ or failed/ (a file holding passwords as
    its copy with them blanked); None, logged, if the source refused: a later scan
    settles it again."""
    replacement = retained_file(rt, job_id)[1] if redacted else None
    try:
        with opened.lock:
            where = opened.source.settle(file, job_id, status in PROCESSED, replacement)
    except FileChanged as changed:
        # Settled by another daemon already, or written again since its job took it (the
        # new file is listed and claimed as a file of its own).
        log.info(
            "file_not_settled", job_id=job_id, source=opened.config.name, reason=changed.message
        )
        return None
    except SourceError as error:
        log.error("settle_failed", job_id=job_id, source=opened.config.name, error=str(error))
        return None
    log.info("file_settled", job_id=job_id, source=opened.config.name, to=where)
    return where
