"""What support asks of a job besides its record: the errors CSV again, the changes CSV,
the file it came from. The CLI (and the back office) call these; nothing here changes a job.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from syncd import store
from syncd.errors import JobStateError, UsageError
from syncd.flow import ERRORS_CSV
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
    return retained.file_name, gzip.decompress(retained.content)
