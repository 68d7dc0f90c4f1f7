"""A scan of one source: each complete file it lists is claimed as a queued job (once,
whichever daemon lists it first), and a file whose job already ended but which is still
there (settling failed, or the daemon died in between) is settled again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection

from syncd import store
from syncd.config import SourceConfig
from syncd.core.status import UNDER_WAY
from syncd.flow import mint_job_id
from syncd.outcome import JobOutcome
from syncd.runtime import Runtime
from syncd.sources import RemoteFile
from syncd.sources.spool import Spool
from syncd.work import Opened, open_sources, settle, take_next

log = structlog.get_logger("syncd.scanning")

#: A pass waits this much longer than settle_seconds, so the second look is surely late enough.
FIRST_LOOK_SLACK = 0.5
#: A scan settles a file its job left in place only once the job ended this long ago.
RESETTLE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Scanned:
    """What a scan did: the jobs it queued, and whether a file is still settling."""

    queued: tuple[str, ...]
    waiting: bool


def scan(rt: Runtime, opened: Opened, *, wall: float) -> Scanned:
    """List `opened`'s complete files (at wall-clock time `wall`) and claim the new ones.

    Raises SourceError when the source cannot be listed.
    """
    cfg, source = opened.config, opened.source
    queued: list[str] = []
    with opened.lock:
        files = source.list_complete(wall)
        waiting = source.waiting
    for file in files:
        with rt.engine.begin() as conn:
            job = store.claimed_job(conn, cfg.name, file.name, file.size, file.mtime)
            if job is None:
                job_id = _queue(rt, conn, cfg, file)
                if job_id is not None:
                    queued.append(job_id)
                    log.info("file_queued", job_id=job_id, source=cfg.name, file=file.name)
                continue
            retained = store.retained_file(conn, job.id) if job.status not in UNDER_WAY else None
        if _unsettled(job, rt.clock()):
            # Its job ended a while ago, yet the file is still here: settling failed.
            redacted = retained is not None and retained.redacted
            settle(rt, opened, file, job.id, job.status, redacted=redacted)
    return Scanned(tuple(queued), waiting)


#: Fresh IDs tried for one file before giving up: each collides with one chance in 32,768
#: per job minted in the same tenth of a second.
_ID_TRIES = 8


def _queue(rt: Runtime, conn: Connection, cfg: SourceConfig, file: RemoteFile) -> str | None:
    """Claim `file` as a queued job under a fresh ID: its ID, or None when another daemon
    claimed it first. An ID already taken is minted again."""
    for _ in range(_ID_TRIES):
        job_id = mint_job_id(rt)
        if store.queue_file(
            conn,
            job_id=job_id,
            source=cfg.name,
            directory=cfg.directory,
            mode=cfg.mode,
            name=file.name,
            size=file.size,
            mtime=file.mtime,
            now=rt.clock(),
        ):
            return job_id
        if store.claimed_job(conn, cfg.name, file.name, file.size, file.mtime) is not None:
            return None
    raise RuntimeError(f"no free job ID after {_ID_TRIES} tries; is the entropy source stuck?")


def _unsettled(job: store.Job, now: datetime) -> bool:
    """Whether a listed file's job ended long enough ago that whoever ran it would have
    settled it by now (it settles right after the job ends)."""
    if job.status in UNDER_WAY or job.finished_at is None:
        return False
    return now - job.finished_at > RESETTLE_AFTER


def scan_and_run(
    rt: Runtime,
    names: Collection[str] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_outcome: Callable[[JobOutcome], None] | None = None,
) -> list[JobOutcome]:
    """`syncd scan [SOURCE]`: one pass over the sources (all, or `names`). A file counts as
    complete once two looks `settle_seconds` apart saw it unchanged, so the pass looks,
    waits that long if some file was seen, scans, then runs every job it can, in file
    order, settling each file. A daemon running beside it is no bother: files and jobs
    are claimed, never taken twice."""
    sources = open_sources(rt.config, names)
    spool = Spool(rt.config.state_dir / "spool")
    try:
        for opened in sources.values():
            opened.source.list_complete(time.time())
        settle = [o.config.settle_seconds for o in sources.values() if o.source.waiting]
        if settle:
            sleep(max(settle) + FIRST_LOOK_SLACK)
        for opened in sources.values():
            scan(rt, opened, wall=time.time())
        outcomes: list[JobOutcome] = []
        while (outcome := take_next(rt, sources, spool)) is not None:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        return outcomes
    finally:
        for opened in sources.values():
            opened.source.close()
