"""Deciding a held job: `syncd jobs approve ID` applies it, `syncd jobs reject ID` drops it.

Approval plans what the job was held with (`syncd.held`: its records as validated then,
never the file read again) against the directory as it is now, and applies only if the
plan archives exactly the users it would have archived when it was held: the person
approving saw those numbers, and nothing else may slip through under their name. Rows the
planner refuses now (an email another user took since) are recorded as row errors, and
the errors CSV is written again with them.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from syncd import held, store
from syncd.core.changes import render_changes_csv
from syncd.core.errors_csv import render_errors_csv
from syncd.core.plan import NothingValid
from syncd.errors import JobStateError
from syncd.flow import ERRORS_CSV, archive_digest, finish, plan_against
from syncd.hashing import password_keys
from syncd.outcome import JobOutcome
from syncd.private import write_private
from syncd.report import CHANGES_CSV, JobReport, queue_report
from syncd.runtime import Runtime


def _held_job(conn: Connection, job_id: str, verb: str) -> store.Job:
    job = store.require_job(conn, job_id)
    if job.status != "held":
        raise JobStateError(
            f"job {job.id} is {job.status}, not held; only a held job can be {verb}"
        )
    return job


def decision(verb: str, when: datetime, by: str | None, reason: str | None) -> str:
    """The line a decision adds to a held job's messages: what, when, who and why."""
    said = f"{verb} at {when.isoformat(timespec='seconds')}"
    if by:
        said += f" by {by}"
    return f"{said}: {reason.strip()}" if reason and reason.strip() else said


def approve(
    rt: Runtime, job_id: str, *, by: str | None = None, reason: str | None = None
) -> JobOutcome:
    """Apply held job `job_id`; `by` and `reason` (who decided, and why) go into the
    job's messages and its report."""
    with rt.engine.connect() as conn:
        job = _held_job(conn, job_id, "approved")
        files = {name: store.job_file(conn, job.id, name) for name in held.FILES}
    if any(content is None for content in files.values()):
        raise JobStateError(
            f"what job {job.id} was held with is no longer kept; reject it with "
            f"`syncd jobs reject {job.id}` and send the file again for a fresh job"
        )
    validated = held.thaw({name: content for name, content in files.items() if content})
    now = rt.clock()
    with rt.engine.begin() as conn:
        directory_id = store.lock_directory(
            conn, job.directory or rt.config.source(job.source).directory
        )
        job = _held_job(conn, job.id, "approved")  # still, now that the directory is ours
        passwords = store.held_passwords(conn, job.id)  # key -> (hash, tag)
        try:
            plan, conflicts, changes = plan_against(conn, directory_id, validated, job.mode)
        except NothingValid as nothing:
            raise JobStateError(
                f"job {job.id} would apply nothing now: {nothing.message}; reject it with "
                f"`syncd jobs reject {job.id}`"
            ) from None
        if archive_digest(plan) != store.held_digest(conn, job.id):
            raise JobStateError(
                f"the directory changed since job {job.id} was held: it would now archive "
                f"{plan.archive_count} users, not the ones shown when it was held; reject it "
                "and drop the file again for a fresh job"
            )
        unhashed = [key for key in password_keys(plan) if key not in passwords]
        if unhashed:
            raise JobStateError(
                f"the directory changed since job {job.id} was held: it would now set "
                f"{len(unhashed)} passwords it did not set then; reject it and drop the "
                "file again for a fresh job"
            )
        store.apply_plan(
            conn,
            directory_id,
            plan,
            job_id=job.id,
            now=now,
            password_hashes={key: passwords[key][0] for key in password_keys(plan)},
        )
        errors = tuple(sorted((*validated.errors, *conflicts), key=lambda e: e.row))
        errors_csv = job.errors_csv
        if errors:
            content = render_errors_csv(validated.table, errors)
            path = rt.errors_dir / f"{job.id}.csv"
            write_private(path, content)
            errors_csv = str(path)
            store.put_job_file(
                conn,
                job.id,
                ERRORS_CSV,
                gzip.compress(content),
                expires_at=job.created_at + timedelta(days=rt.config.retention_days),
            )
        store.replace_row_errors(conn, job.id, errors)
        outcome = replace(
            JobOutcome.from_job(job),
            status="applied_with_errors" if errors else "applied",
            counts=plan.counts,
            errors_csv=errors_csv,
            finished_at=now,
            messages=(*job.messages, decision("approved", now, by, reason)),
            row_errors=errors[:20],
            row_error_total=len(errors),
        )
        finish(conn, outcome)
        changes_csv = render_changes_csv(changes)
        expires = job.created_at + timedelta(days=rt.config.retention_days)
        store.put_job_file(
            conn, job.id, CHANGES_CSV, gzip.compress(changes_csv, 1), expires_at=expires
        )
        report = JobReport(
            outcome=outcome,
            kind="approved",
            errors_csv=_kept_errors_csv(conn, job.id),
            changes_csv=changes_csv,
            delimiter=validated.table.delimiter,
        )
        queue_report(conn, rt.config, report, now=now)
        store.forget_held(conn, job.id)
        store.drop_job_files(conn, job.id, (*held.FILES, held.THRESHOLDS))
    return outcome


def _kept_errors_csv(conn: Connection, job_id: str) -> bytes | None:
    kept = store.job_file(conn, job_id, ERRORS_CSV)
    return None if kept is None else gzip.decompress(kept)


def dismiss(
    rt: Runtime, job_id: str, *, by: str | None = None, reason: str | None = None
) -> JobOutcome:
    """Drop held job `job_id`: nothing of it is applied (`by`, `reason` as for `approve`)."""
    now = rt.clock()
    with rt.engine.begin() as conn:
        job = _held_job(conn, job_id, "rejected")
        outcome = replace(
            JobOutcome.from_job(job),
            status="dismissed",
            finished_at=now,
            messages=(
                *job.messages,
                decision("rejected", now, by, reason) + "; nothing was applied",
            ),
        )
        finish(conn, outcome)
        errors = store.row_errors(conn, job.id)
        shown = replace(outcome, row_errors=tuple(errors[:20]), row_error_total=len(errors))
        report = JobReport(
            outcome=shown, kind="dismissed", errors_csv=_kept_errors_csv(conn, job.id)
        )
        queue_report(conn, rt.config, report, now=now)
        store.forget_held(conn, job.id)
        store.drop_job_files(conn, job.id, (*held.FILES, held.THRESHOLDS))
    return outcome
