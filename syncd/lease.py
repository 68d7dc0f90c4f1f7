"""Who runs a job, whether they still do, and the lease a running job holds.

A running job names its owner: `host:pid:start`, the process's start time (in clock
ticks since boot) telling a live process from a later one that reuses its pid. Whether
an owner is alive can be told for owners on this host (`owner_alive`); another host's
job counts as abandoned once its lease has run out. `Lease` renews the lease of a
running job from a thread of its own, so a long job is never taken for a dead one.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from types import TracebackType

import structlog
from sqlalchemy import Engine

log = structlog.get_logger("syncd.lease")

#: How long a running job's lease lasts without renewal, and how often it is renewed.
LEASE = timedelta(minutes=5)
RENEW_EVERY = timedelta(minutes=1)


def _start_ticks(pid: int) -> str | None:
    """The start time of process `pid` (field 22 of /proc/PID/stat), None if it is gone
    or this system has no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[19]


@cache
def this_owner() -> str:
    """This process as a job owner: `host:pid:start`."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by `owner` still runs: None when it is another host's
    (or an owner this syncd cannot read), which only its lease can tell."""
    parts = owner.split(":")
    if len(parts) < 3 or not parts[-2].isdigit():
        return None
    host, pid, start = ":".join(parts[:-2]), int(parts[-2]), parts[-1]
    if host != socket.gethostname():
        return None
    ticks = _start_ticks(pid)
    if ticks is None:
        return False
    return start == "?" or ticks == start


class Lease:
    """Renews the lease of a running job until the `with` block ends.

    Renewal goes through its own connection; a failed renewal is tried again at the next
    turn, and logged: as a warning on PostgreSQL, where a job on another host is told
    alive by its lease alone; for debugging only on SQLite, where a renewal waits behind
    the job's own write and a lease never decides. A renewal that waited for the job's
    own commit finds the job ended: renewing stops then, quietly (only a job still
    running under another owner has lost its lease).
    """

    def __init__(
        self,
        engine: Engine,
        job_id: str,
        clock: Callable[[], datetime],
        every: timedelta = RENEW_EVERY,
    ) -> None:
        self._engine, self._job_id, self._clock = engine, job_id, clock
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from syncd.store import get_job, renew_lease

        while not self._stop.wait(self._every.total_seconds()):
            try:
                with self._engine.begin() as conn:
                    renewed = renew_lease(
                        conn,
                        self._job_id,
                        owner=this_owner(),
                        lease_until=self._clock() + LEASE,
                    )
                    job = None if renewed else get_job(conn, self._job_id)
                if renewed:
                    continue
                if job is not None and job.status == "running":
                    log.warning("lease_lost", job_id=self._job_id, owner=job.lease_owner)
                return
            except Exception as exc:  # the job goes on; the next turn tries again
                # On SQLite every owner runs on this host and is told alive by its
                # process, never by its lease (`owner_alive`): a renewal kept out by the
                # job's own long write (past the busy timeout) is no news for an admin.
                say = log.debug if self._engine.dialect.name == "sqlite" else log.warning
                say("lease_not_renewed", job_id=self._job_id, error=str(exc))
