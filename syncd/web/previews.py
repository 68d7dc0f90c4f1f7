"""An upload's preview and its apply, both through `run_job`, the function behind
`syncd import`.

The preview is `syncd import --dry-run` with the columns mapped as the admin chose: it
keeps what the plan would do (counts, samples of the users created, updated with the
fields that change, archived, the row errors) and what it was planned against: the
directory's stamp (`store.directory_stamp`, which every job that applies changes) and
a digest of the whole plan. Applying runs the job for real and checks, under the
directory's lock and before anything is written, that both are still the same: if
the directory changed since the preview, nothing is applied, no job is recorded, and
the file is planned again for a new preview.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import polars as pl
from sqlalchemy import Connection

from syncd import store
from syncd.core.changes import SECRET_FIELDS
from syncd.core.headers import with_mapping
from syncd.core.plan import Plan
from syncd.flow import PlanRefused, run_job
from syncd.outcome import JobOutcome
from syncd.runtime import Runtime
from syncd.web.staging import Staged, Uploads

#: How many users of each kind a preview shows.
SAMPLES = 20
#: How many row errors a preview shows (the job page shows them all, a page at a time).
PREVIEW_ERRORS = 50


def mapped_runtime(rt: Runtime, staged: Staged) -> Runtime:
    """`rt` with the upload's source profile reading its headers as mapped."""
    source = rt.config.source(staged.source)
    profile = with_mapping(rt.config.profiles[source.profile], staged.mapping)
    profiles = MappingProxyType({**rt.config.profiles, source.profile: profile})
    return replace(rt, config=replace(rt.config, profiles=profiles))


def plan_digest(plan: Plan, changes: pl.DataFrame) -> str:
    """One value for everything a plan changes: every line of its changes (old and new
    values), and its counts."""
    digest = hashlib.sha256(repr(plan.counts).encode())
    digest.update(changes.write_csv().encode("utf-8"))
    return digest.hexdigest()


def _samples(changes: pl.DataFrame) -> dict[str, Any]:
    kind = pl.col("change")
    created = changes.filter(kind == "create").head(SAMPLES)
    archived = changes.filter(kind == "archive").head(SAMPLES)
    touched = changes.filter(kind.is_in(["update", "rename", "reactivate"]))
    keys = touched.get_column("key").unique(maintain_order=True).head(SAMPLES).to_list()
    updated = []
    for key in keys:
        lines = touched.filter(pl.col("key") == key)
        updated.append(
            {
                "key": key,
                "email": lines.get_column("email")[0],
                "fields": [
                    {
                        "change": line["change"],
                        "field": line["field"],
                        "old": "" if line["field"] in SECRET_FIELDS else line["old"],
                        "new": "(changed)" if line["field"] in SECRET_FIELDS else line["new"],
                    }
                    for line in lines.iter_rows(named=True)
                ],
            }
        )
    return {
        "created": created.select("key", "email").to_dicts(),
        "updated": updated,
        "archived": archived.select("key", "email", reason="new").to_dicts(),
    }


def preview(
    rt: Runtime, uploads: Uploads, staged: Staged, progress: Callable[[str], None]
) -> Staged:
    """Plan the upload without writing anything and keep what the plan does."""
    seen: dict[str, Any] = {}

    def keep(conn: Connection, directory: str, plan: Plan, changes: pl.DataFrame) -> None:
        seen["stamp"] = store.directory_stamp(conn, directory)
        seen["digest"] = plan_digest(plan, changes)
        seen["samples"] = _samples(changes)

    mapped = mapped_runtime(rt, staged)
    outcome = run_job(
        mapped,
        mapped.config.source(staged.source),
        uploads.drop(staged),
        mode=staged.mode,
        dry_run=True,
        progress=progress,
        check_plan=keep,
    )
    staged.preview = {
        "outcome": outcome.as_json(),
        "status": outcome.status,
        "row_errors": [
            {"row": e.row, "column": e.column, "message": e.message}
            for e in outcome.row_errors[:PREVIEW_ERRORS]
        ],
        "row_error_total": outcome.row_error_total,
        "planned_at": rt.clock().isoformat(),
        **seen,
    }
    uploads.save(staged)
    return staged


def apply(
    rt: Runtime, uploads: Uploads, staged: Staged, progress: Callable[[str], None]
) -> JobOutcome:
    """Apply the upload as previewed; `PlanRefused` (nothing applied, no job) when the
    directory or the plan is no longer what the preview showed."""
    shown = staged.preview or {}
    if "digest" not in shown:
        raise PlanRefused("this upload has no plan to apply: preview it first")

    def same_as_shown(conn: Connection, directory: str, plan: Plan, changes: pl.DataFrame) -> None:
        stamp = store.directory_stamp(conn, directory)
        if stamp != shown["stamp"]:
            last = stamp.split("@", 1)[0]
            raise PlanRefused(
                f"the directory changed since the preview (job {last} applied to it); "
                "nothing was applied"
            )
        if plan_digest(plan, changes) != shown["digest"]:
            raise PlanRefused(
                "the plan is no longer the one previewed (the configuration changed?); "
                "nothing was applied"
            )

    mapped = mapped_runtime(rt, staged)
    outcome = run_job(
        mapped,
        mapped.config.source(staged.source),
        uploads.drop(staged),
        mode=staged.mode,
        progress=progress,
        check_plan=same_as_shown,
    )
    staged.job_id = outcome.job_id
    uploads.save(staged)
    return outcome
