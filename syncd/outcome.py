"""What a job reports: the JSON shape of `validate`, `import` and `jobs show`, and exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncd.core.counts import Counts
from syncd.core.table import RowError

if TYPE_CHECKING:  # the store is not loaded for `syncd validate`
    from syncd.store import Job

#: Exit codes of the CLI contract, by job status.
EXIT_CODES: dict[str, int] = {
    "applied": 0,
    "valid": 0,
    "skipped": 0,
    "dismissed": 0,
    "applied_with_errors": 1,
    "invalid": 1,
    "rejected": 2,
    "held": 3,
}


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """One job as people see it."""

    #: None for what is not stored (`syncd validate`, a dry run): an ID syncd prints is
    #: one support can look up
    job_id: str | None
    status: str
    source: str
    mode: str
    file: str
    encoding: str | None
    counts: Counts
    errors_csv: str | None = None
    messages: tuple[str, ...] = ()
    row_errors: tuple[RowError, ...] = ()
    row_error_total: int = 0
    skipped_of: str | None = None
    dry_run: bool = False
    #: what syncd kept of the file is a copy with its secret cells blanked, and so is
    #: what a source settles into processed/ or failed/
    redacted: bool = False
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_job(cls, job: Job, errors: tuple[RowError, ...] = (), total: int = 0) -> JobOutcome:
        """A stored job as people see it; `errors` are the first row errors to show."""
        return cls(
            job_id=job.id,
            status=job.status,
            source=job.source,
            mode=job.mode,
            file=job.file_name,
            encoding=job.encoding,
            counts=job.counts,
            errors_csv=job.errors_csv,
            messages=job.messages,
            row_errors=errors,
            row_error_total=total,
            skipped_of=job.skipped_of,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )

    @property
    def exit_code(self) -> int:
        if self.status in ("applied", "valid", "skipped") and self.row_error_total:
            return 1
        return EXIT_CODES.get(self.status, 0)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "source": self.source,
            "mode": self.mode,
            "file": self.file,
            "encoding": self.encoding,
            "counts": self.counts.as_dict(),
            "errors_csv": self.errors_csv,
            "messages": list(self.messages),
        }
        if self.skipped_of:
            data["skipped_of"] = self.skipped_of
        if self.dry_run:
            data["dry_run"] = True
        if self.created_at:
            data["created_at"] = self.created_at.isoformat()
        if self.finished_at:
            data["finished_at"] = self.finished_at.isoformat()
        data["row_errors"] = [
            {"row": e.row, "column": e.column, "message": e.message} for e in self.row_errors
        ]
        return data
