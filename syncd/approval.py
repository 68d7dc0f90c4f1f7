"""Deciding a held job: `syncd jobs approve ID` applies it, `syncd jobs reject ID` drops it.

Approval re-plans the retained file against the directory as it is now and applies only
if the plan archives exactly the users it would have archived when it was held: the
person approving saw those numbers, and nothing else may slip through under their name.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from syncd import store
from syncd.checking import Drop, check
from syncd.errors import JobStateError
from syncd.jobs import archive_digest, finish, load_retained, plan_against
from syncd.outcome import JobOutcome
from syncd.runtime import Runtime


def approve(rt: Runtime, job_id: str) -> JobOutcome:
    with rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
    if job.status != "held":
        raise JobStateError(
            f"job {job.id} is {job.status}, not held; only a held job can be approved"
        )
    source = rt.config.source(job.source)
    name, data = load_retained(rt, job.id)
    checked = check(rt.config, rt.config.profiles[source.profile], Drop(name, data))
    if checked.validated is None:
        raise JobStateError(
            f"the file retained for job {job.id} cannot be read again: {checked.rejection}"
        )
    validated = checked.validated
    now = rt.clock()
    with rt.engine.begin() as conn:
        held = store.held_passwords(conn, job.id)  # key -> (hash, tag)
        if held:
            tags = pl.DataFrame({"key": list(held), "password_tag": [t for _, t in held.values()]})
            validated = replace(
                validated, records=validated.records.join(tags, on="key", how="left")
            )
        directory_id = store.lock_directory(conn, source.directory)
        plan, conflicts = plan_against(conn, directory_id, validated, job.mode)
        if archive_digest(plan) != store.held_digest(conn, job.id):
            raise JobStateError(
                f"the directory changed since job {job.id} was held: it would now archive "
                f"{plan.archive_count} users, not the ones shown when it was held; reject it "
                "and drop the file again for a fresh job"
            )
        errors = (*validated.errors, *conflicts)
        store.apply_plan(
            conn,
            directory_id,
            plan,
            job_id=job.id,
            now=now,
            password_hashes={key: h for key, (h, _) in held.items()},
        )
        status = "applied_with_errors" if errors else "applied"
        outcome = replace(
            JobOutcome.from_job(job),
            status=status,
            counts=plan.counts,
            finished_at=now,
            messages=(*job.messages, f"approved at {now.isoformat()}"),
        )
        finish(conn, outcome)
        store.forget_held(conn, job.id)
    return outcome


def dismiss(rt: Runtime, job_id: str) -> JobOutcome:
    now = rt.clock()
    with rt.engine.begin() as conn:
        job = store.require_job(conn, job_id)
        if job.status != "held":
            raise JobStateError(
                f"job {job.id} is {job.status}, not held; only a held job can be rejected"
            )
        outcome = replace(
            JobOutcome.from_job(job),
            status="dismissed",
            finished_at=now,
            messages=(*job.messages, f"rejected at {now.isoformat()}; nothing was applied"),
        )
        finish(conn, outcome)
        store.forget_held(conn, job.id)
    return outcome
