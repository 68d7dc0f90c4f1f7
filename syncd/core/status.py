"""Job statuses: the one definition every module, the database and the CLI use.

A job moves `queued -> running -> applied | applied_with_errors | rejected | held`; a held
job ends `applied`/`applied_with_errors` (approved) or `dismissed`; `skipped` marks a
file identical to one already applied or held; `interrupted` a job whose process died
before it ended (nothing of it was applied, so its file runs again).
"""

from __future__ import annotations

from typing import Literal, get_args

JobStatus = Literal[
    "queued", "running", "applied", "applied_with_errors", "rejected", "held", "dismissed",
    "skipped", "interrupted",
]  # fmt: skip
JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)

#: Statuses of a job still in progress; every other status is an end.
UNDER_WAY: frozenset[JobStatus] = frozenset({"queued", "running"})
#: A later file identical to one of a job ended so (same source, content and mode) is
#: skipped: it was applied, or waits for approval. Rejected, dismissed and interrupted
#: files changed nothing, so sending the same file again runs it.
SKIPS_IDENTICAL: tuple[JobStatus, ...] = ("applied", "applied_with_errors", "held")
#: Job statuses whose file is settled into processed/ (the others into failed/).
PROCESSED: frozenset[JobStatus] = frozenset({"applied", "applied_with_errors", "held", "skipped"})

#: Each status as support reads it.
STATUS_WORDS: dict[JobStatus, str] = {
    "queued": "queued: waiting to run",
    "running": "running",
    "applied": "applied",
    "applied_with_errors": "applied, some rows failed",
    "rejected": "rejected: nothing was applied",
    "held": "held for approval: nothing was applied yet",
    "dismissed": "dismissed: nothing was applied",
    "skipped": "skipped: identical to an earlier file",
    "interrupted": "interrupted: its process stopped before it ended; nothing was applied",
}
