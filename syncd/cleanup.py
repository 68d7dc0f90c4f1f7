"""Dropping what syncd keeps once `retention_days` have passed, and saying what went.

What a job keeps for support has an expiry (`retention_days` after the job began):
its input file (password cells blanked) and its errors and changes CSVs, in the
database. Each job's end drops what has expired by then; `syncd run` also runs
`clean_up` at start and every hour, so nothing outlives its retention on a quiet
source. Besides those it drops, once `retention_days` old:

- errors CSVs written to `state_dir/errors` (by jobs and dry runs), by modification time;
- report emails sent or given up on (the outbox keeps each message whole, errors CSVs
  attached); messages still to be sent stay.

The job records, their row errors and the users stay. What went is logged (counts, job
IDs, outbox ids, paths), never a row's contents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from syncd.runtime import Runtime
from syncd.store import job_files, outbox

log = structlog.get_logger("syncd.cleanup")

#: How many job IDs, ids or paths one log event lists (the counts are always whole).
LISTED = 100


@dataclass(frozen=True, slots=True)
class Cleaned:
    """What one clean-up dropped."""

    retained: tuple[str, ...]  # jobs whose retained input file went
    job_files: tuple[tuple[str, str], ...]  # (job ID, name): errors and changes CSVs, ...
    messages: tuple[int, ...]  # outbox ids
    paths: tuple[Path, ...]  # errors CSVs in state_dir/errors

    @property
    def nothing(self) -> bool:
        return not (self.retained or self.job_files or self.messages or self.paths)


def old_errors_csvs(folder: Path, *, before: datetime) -> list[Path]:
    """The CSVs in `folder` last written at or before `before`, oldest first."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    cutoff = before.timestamp()
    old = [
        (entry.stat().st_mtime, Path(entry.path))
        for entry in entries
        if entry.name.endswith(".csv") and entry.is_file(follow_symlinks=False)
    ]
    return [path for mtime, path in sorted(old) if mtime <= cutoff]


def clean_up(rt: Runtime, *, now: datetime) -> Cleaned:
    """Drop everything whose retention ran out by `now`; see the module docstring."""
    cutoff = now - timedelta(days=rt.config.retention_days)
    with rt.engine.begin() as conn:
        expired = job_files.drop_expired(conn, now=now)
        messages = outbox.drop_done(conn, queued_before=cutoff)
    removed = []
    for path in old_errors_csvs(rt.errors_dir, before=cutoff):
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # another syncd on this host got there first
        except OSError as exc:
            log.error("cleanup_failed", path=str(path), error=exc.strerror)
            continue
        removed.append(path)
    cleaned = Cleaned(expired.retained, expired.job_files, tuple(messages), tuple(removed))
    if not cleaned.nothing:
        log.info(
            "retention_cleaned",
            retention_days=rt.config.retention_days,
            retained_files=len(cleaned.retained),
            job_files=len(cleaned.job_files),
            messages=len(cleaned.messages),
            errors_csvs=len(cleaned.paths),
            job_ids=sorted({*cleaned.retained, *(j for j, _ in cleaned.job_files)})[:LISTED],
            outbox_ids=list(cleaned.messages[:LISTED]),
            paths=[str(p) for p in cleaned.paths[:LISTED]],
        )
    return cleaned
