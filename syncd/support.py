"""What support asks of a job besides its record: the errors CSV again, the changes CSV,
the file it came from. The CLI (and the back office) call these; nothing here changes a job.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from syncd import store
from syncd.core.table import RowError
from syncd.errors import JobStateError, UsageError
from syncd.flow import ERRORS_CSV
from syncd.packing import unpack
from syncd.private import write_private
from syncd.runtime import Runtime


def errors_csv(rt: Runtime, job_id: str) -> tuple[str, bytes, int]:
    """A job's errors CSV, byte for byte as it was written when the job ran (or was
    approved): (job ID, content, rows with errors)."""
    with rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        rows = len({e.row for e in store.row_errors(conn, job.id)})
        content = store.job_file(conn, job.id, ERRORS_CSV)
    if not rows:
        raise JobStateError(f"job {job.id} has no row errors; there is no errors CSV")
    if content is None:
        raise JobStateError(
            f"the errors CSV of job {job.id} is no longer kept (retention_days = "
            f"{rt.config.retention_days}); `syncd jobs show {job.id}` still lists its row errors"
        )
    return job.id, gzip.decompress(content), rows


def write_errors_csv(rt: Runtime, job_id: str, out: Path | None) -> tuple[Path, int]:
    """`syncd jobs errors ID`: the errors CSV written to `out` (default ./<job_id>.csv)."""
    found, content, rows = errors_csv(rt, job_id)
    path = out or Path(f"{found}.csv")
    try:
        write_private(path, content, make_folder=False)
    except OSError as exc:
        raise UsageError(f"cannot write the errors CSV to {path}: {exc.strerror}") from exc
    return path, rows


def changes_csv(rt: Runtime, job_id: str) -> tuple[str, bytes]:
    """A job's changes CSV (who was created, updated, archived, reactivated, renamed), byte
    for byte as its report attached it: (job ID, content)."""
    from syncd.report import CHANGES_CSV

    with rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        content = store.job_file(conn, job.id, CHANGES_CSV)
    if content is None:
        why = (
            "it changed nothing that was recorded (rejected, skipped, or held and not approved)"
            if job.status not in ("applied", "applied_with_errors")
            else f"it is no longer kept (retention_days = {rt.config.retention_days})"
        )
        raise JobStateError(f"job {job.id} has no changes CSV: {why}")
    return job.id, gzip.decompress(content)


def write_changes_csv(rt: Runtime, job_id: str, out: Path | None) -> Path:
    """`syncd jobs changes ID`: the changes CSV written to `out` (default
    ./<job_id>-changes.csv)."""
    found, content = changes_csv(rt, job_id)
    path = out or Path(f"{found}-changes.csv")
    try:
        write_private(path, content, make_folder=False)
    except OSError as exc:
        raise UsageError(f"cannot write the changes CSV to {path}: {exc.strerror}") from exc
    return path


def retained_file(rt: Runtime, job_id: str) -> tuple[str, bytes]:
    """The file a job came from, as kept for support (secret cells blanked)."""
    with rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        retained = store.retained_file(conn, job.id)
    if retained is None:
        raise JobStateError(
            f"the file of job {job.id} is not kept (retention_days = "
            f"{rt.config.retention_days}, or it could hold passwords it could not blank)"
        )
    return retained.file_name, unpack(retained.content)


@dataclass(frozen=True, slots=True)
class ShownError:
    """One row error as support reads it: with the cell as it was received."""

    row: int
    column: str
    value: str
    message: str


@dataclass(frozen=True, slots=True)
class ErrorsPage:
    """One page of a job's row errors (pages count from 1)."""

    job_id: str
    errors: tuple[ShownError, ...]
    total: int
    page: int
    pages: int
    per_page: int


def row_errors_page(rt: Runtime, job_id: str, page: int, per_page: int = 50) -> ErrorsPage:
    """Page `page` of a job's row errors, each with its cell as received (read from the
    errors CSV the job kept, whose n-th line is its n-th failed row)."""
    from syncd.report.content import received_value, received_values

    with rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        total = store.count_row_errors(conn, job.id)
        pages = max(1, math.ceil(total / per_page))
        page = min(max(page, 1), pages)
        errors: list[RowError] = store.row_errors(
            conn, job.id, offset=(page - 1) * per_page, limit=per_page
        )
        kept = store.job_file(conn, job.id, ERRORS_CSV) if errors else None
        rows = store.failed_rows(conn, job.id) if kept is not None else []
    values = received_values(gzip.decompress(kept) if kept else None, errors, rows)
    shown = tuple(ShownError(e.row, e.column, received_value(values, e), e.message) for e in errors)
    return ErrorsPage(job.id, shown, total, page, pages, per_page)


#: How many of a directory's latest jobs that keep a changes CSV a user search reads.
TOUCH_SEARCH_JOBS = 50


def jobs_touching(rt: Runtime, directory: str, key: str) -> list[str]:
    """The IDs of the jobs whose changes CSV names the user `key` of `directory`
    (created, updated, archived, reactivated or renamed it), among its latest
    `TOUCH_SEARCH_JOBS` jobs that keep one, newest first."""
    import csv
    import io

    from syncd.core.formula import undo
    from syncd.report import CHANGES_CSV

    with rt.engine.connect() as conn:
        kept = store.latest_files(conn, CHANGES_CSV, directory=directory, limit=TOUCH_SEARCH_JOBS)
    found = []
    wanted = key.encode("utf-8")
    for job_id, content in kept:
        text = gzip.decompress(content)
        if wanted not in text:
            continue
        reader = csv.reader(io.StringIO(text.decode("utf-8-sig"), newline=""))
        next(reader, None)
        if any(len(line) > 1 and undo(line[1]) == key for line in reader):
            found.append(job_id)
    return found


def held_archives(rt: Runtime, job_id: str) -> tuple[str, pl.DataFrame]:
    """The users held job `job_id` would archive, as it was held with them (approval
    archives exactly these, or is refused): (job ID, frame of `key`, `email`,
    `reason`), read from the changes CSV the job kept."""
    import io

    from syncd.core.changes import CHANGE_COLUMNS, archived_users
    from syncd.core.formula import undo_expr
    from syncd.report import CHANGES_CSV

    with rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        content = store.job_file(conn, job.id, CHANGES_CSV)
    if job.status != "held":
        raise JobStateError(f"job {job.id} is {job.status}, not held")
    if content is None:
        raise JobStateError(f"job {job.id} keeps no list of the users it would archive")
    text = gzip.decompress(content).decode("utf-8-sig")
    changes = pl.read_csv(
        io.StringIO(text), schema=dict.fromkeys(CHANGE_COLUMNS, pl.String), quote_char='"'
    ).select(undo_expr(pl.col(name).fill_null("")).alias(name) for name in CHANGE_COLUMNS)
    return job.id, archived_users(changes)
