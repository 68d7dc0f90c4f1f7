"""Run one file through the flow: read, validate, plan, guard, apply, record.

`run_job` serves
`syncd import` and the daemon alike: the CLI and the daemon differ only in where the
bytes come from. `approve` and `dismiss` decide a held job. Everything between reading
and guarding is the pure core; this module gathers its inputs and acts on its answer.
"""

from __future__ import annotations

import gzip
import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Connection

from syncd import store
from syncd.checking import (
    SHOWN_ROW_ERRORS,
    Drop,
    Progress,
    check,
    counts_of,
    errors_csv_bytes,
    password_columns,
    quiet,
)
from syncd.config import SourceConfig
from syncd.core.guard import GuardLimits, judge
from syncd.core.job_id import new_job_id
from syncd.core.passwords import password_tags
from syncd.core.plan import Plan, build_plan, candidates, fingerprint, match
from syncd.core.profile import Mode
from syncd.core.records import Validated
from syncd.core.table import ROW, RawTable, RowError
from syncd.errors import FileRejected, JobStateError, UsageError
from syncd.hashing import hash_passwords
from syncd.outcome import JobOutcome
from syncd.runtime import Runtime


def mint_job_id(rt: Runtime) -> str:
    return new_job_id(int(rt.clock().timestamp() * 1000), rt.entropy(2))


def _redacted(validated: Validated) -> bytes:
    """The file as kept for support when it holds passwords: re-written with those cells
    blanked, compressed."""
    table = validated.table
    blanked = table.cells.with_columns(
        pl.lit("").alias(table.column_name(i)) for i in password_columns(validated)
    )
    redacted = RawTable(table.header, blanked, "utf-8", table.delimiter, table.has_header)
    return gzip.compress(render_all_rows(redacted), compresslevel=1)


def render_all_rows(table: RawTable) -> bytes:
    """A table back to CSV text (UTF-8), every row: used for redacted retained files."""
    frame = table.cells.select(table.column_name(i) for i in range(len(table.header)))
    if table.has_header:
        frame.columns = (
            list(table.header)
            if len(set(table.header)) == len(table.header)
            else [f"{name}\u200b{i}" for i, name in enumerate(table.header)]
        )
    return frame.write_csv(include_header=table.has_header, line_terminator="\r\n").encode()


#: Compresses the retained copy of a file while the job reads and validates it (zlib
#: releases the GIL, so this runs on the second core).
_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-retain")


class _Job:
    """One job's bookkeeping while it runs: what gets recorded when it ends.

    The file's bytes are handed over once (`take_data`) and not kept: a million-row file
    is 140 MB, and the compressed copy for support is all the job needs afterwards.
    """

    def __init__(
        self, rt: Runtime, source: SourceConfig, drop: Drop, mode: Mode, dry_run: bool
    ) -> None:
        self.rt, self.source, self.mode, self.dry_run = rt, source, mode, dry_run
        self.name, self.size, self.sha256 = drop.name, len(drop.data), drop.sha256
        self._data: bytes | None = drop.take()
        self._retained: Future[bytes] | None = None
        self.job_id = mint_job_id(rt)
        self.started = rt.clock()

    def take_data(self) -> bytes:
        data, self._data = self._data, None
        if data is None:
            raise RuntimeError("the file's bytes were already taken")
        if not self.dry_run:
            self._retained = _BACKGROUND.submit(gzip.compress, data, 1)
        return data

    def keep_redacted(self, validated: Validated) -> None:
        """Retain the password-free rewrite instead of the original bytes."""
        if self._retained is not None:
            self._retained.cancel()
        self._retained = _BACKGROUND.submit(_redacted, validated)

    def retained(self) -> bytes:
        if self._retained is None:
            raise RuntimeError("nothing to retain: take_data was not called")
        return self._retained.result()

    def outcome(
        self,
        status: str,
        validated: Validated | None,
        *,
        plan: Plan | None = None,
        messages: tuple[str, ...] = (),
        errors: tuple[RowError, ...] = (),
        errors_csv: str | None = None,
        skipped_of: str | None = None,
    ) -> JobOutcome:
        return JobOutcome(
            job_id=self.job_id,
            status=status,
            source=self.source.name,
            mode=self.mode,
            file=self.name,
            encoding=validated.table.encoding if validated else None,
            counts=counts_of(validated, plan),
            errors_csv=errors_csv,
            messages=messages,
            row_errors=errors[:SHOWN_ROW_ERRORS],
            row_error_total=len(errors),
            skipped_of=skipped_of,
            dry_run=self.dry_run,
            created_at=self.started,
            finished_at=self.rt.clock(),
        )

    def write_errors_csv(self, validated: Validated, errors: tuple[RowError, ...]) -> str | None:
        if not errors:
            return None
        missing = {e.row for e in errors} - set(validated.table.cells.get_column(ROW).to_list())
        if missing and self._retained is not None:
            # Rows the planner refused (email conflicts) were valid, so their cells were
            # let go after validation: read them back from the retained copy.
            again = check(
                self.rt.config,
                self.rt.config.profiles[self.source.profile],
                Drop(self.name, gzip.decompress(self.retained())),
            )
            validated = again.validated or validated
        path = self.rt.errors_dir / f"{self.job_id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(errors_csv_bytes(validated, errors))
        return str(path)

    def record(
        self,
        conn: Connection,
        outcome: JobOutcome,
        errors: tuple[RowError, ...],
    ) -> None:
        """Store the job's end state, its row errors and the retained file."""
        finish(conn, outcome)
        store.add_row_errors(conn, self.job_id, errors)
        retention = timedelta(days=self.rt.config.retention_days)
        store.retain_file(
            conn,
            self.job_id,
            file_name=self.name,
            content=self.retained(),
            now=self.started,
            expires_at=self.started + retention,
        )
        store.purge_expired(conn, now=self.started)


def run_job(
    rt: Runtime,
    source: SourceConfig,
    drop: Drop,
    *,
    mode: Mode | None = None,
    dry_run: bool = False,
    progress: Progress = quiet,
) -> JobOutcome:
    """The whole flow for one file; every outcome is recorded (unless `dry_run`)."""
    job = _Job(rt, source, drop, mode or source.mode, dry_run)  # takes the bytes over
    if not dry_run:
        with rt.engine.begin() as conn:
            earlier = store.find_processed(conn, source.name, job.sha256)
            skipped_message = (
                f"this file is identical to the one of job {earlier}; nothing was done",
            )
            store.insert_job(
                conn,
                job_id=job.job_id,
                source=source.name,
                directory=source.directory,
                mode=job.mode,
                file_name=job.name,
                sha256=job.sha256,
                size=job.size,
                status="skipped" if earlier else "running",
                now=job.started,
                skipped_of=earlier,
                messages=skipped_message if earlier else (),
            )
        if earlier:
            # Same bytes as a file already processed from this source: nothing to do,
            # and the job says which earlier job to look at.
            return job.outcome("skipped", None, skipped_of=earlier, messages=skipped_message)
    try:
        return _process(job, progress)
    except Exception as exc:
        if not dry_run:
            with rt.engine.begin() as conn:
                finish(
                    conn,
                    job.outcome(
                        "rejected",
                        None,
                        messages=(
                            f"syncd failed while processing this file ({type(exc).__name__}:"
                            f" {exc}); nothing was applied; please report job {job.job_id}",
                        ),
                    ),
                )
        raise


def _process(job: _Job, progress: Progress) -> JobOutcome:
    rt, config = job.rt, job.rt.config
    profile = config.profiles[job.source.profile]
    checked = check(config, profile, Drop(job.name, job.take_data()), progress)
    validated, problems = checked.validated, checked.problems
    del checked  # `validated` alone holds the cells, so letting go of them frees them
    if validated is None:
        outcome = job.outcome("rejected", None, messages=problems)
        return _finish(job, outcome, ())
    if password_columns(validated) and not job.dry_run:
        job.keep_redacted(validated)

    errors = validated.errors
    notices = validated.notices
    if errors and profile.on_row_error == "reject":
        # The profile asks for all or nothing: any row error rejects the file.
        message = (
            f"{validated.invalid} rows have errors and the profile says on_row_error ="
            " reject: nothing was applied; fix the rows in the errors CSV and upload it again"
        )
        outcome = job.outcome(
            "rejected",
            validated,
            messages=(message, *notices),
            errors=errors,
            errors_csv=job.write_errors_csv(validated, errors),
        )
        return _finish(job, outcome, errors)

    # From here on only the failed rows' cells are needed (for the errors CSV): letting
    # go of the others keeps a million-row job within its memory budget.
    validated = replace(
        validated,
        records=_with_password_tags(validated, rt.secret),
        table=validated.table.keep_rows({e.row for e in errors}),
    )
    with rt.engine.connect() as conn, conn.begin() as transaction:
        directory_id = store.lock_directory(conn, job.source.directory)
        progress("planning")
        try:
            plan, conflicts = plan_against(conn, directory_id, validated, job.mode)
        except FileRejected as rejected:
            outcome = job.outcome(
                "rejected",
                validated,
                errors=errors,
                messages=(rejected.message, *rejected.problems, *notices),
                errors_csv=job.write_errors_csv(validated, errors),
            )
            if not job.dry_run:
                job.record(conn, outcome, errors)
            return outcome
        validated = replace(validated, records=validated.records.clear())
        errors = tuple(sorted((*errors, *conflicts), key=lambda e: e.row))
        messages = (
            *plan.messages,
            *((plan.archive_blocked,) if plan.archive_blocked else ()),
            *notices,
        )
        verdict = judge(
            plan,
            GuardLimits(job.source.max_archive_percent, job.source.max_archive_count),
            job_id=job.job_id,
        )
        status = "held" if verdict.hold else ("applied_with_errors" if errors else "applied")
        outcome = job.outcome(
            status,
            validated,
            plan=plan,
            errors=errors,
            errors_csv=job.write_errors_csv(validated, errors),
            messages=(*verdict.reasons, *messages),
        )
        if job.dry_run:
            transaction.rollback()
            return outcome
        if verdict.hold:
            store.hold_plan(conn, job.job_id, archive_digest(plan), _held_passwords(plan))
        else:
            progress("applying")
            store.apply_plan(
                conn,
                directory_id,
                plan,
                job_id=job.job_id,
                now=job.started,
                password_hashes=_hashes(plan),
            )
        job.record(conn, outcome, errors)
    return outcome


def finish(conn: Connection, outcome: JobOutcome) -> None:
    """Store a job's end state."""
    store.finish_job(
        conn,
        outcome.job_id,
        status=outcome.status,  # type: ignore[arg-type]
        now=outcome.finished_at or outcome.created_at or datetime.now(UTC),
        counts=outcome.counts,
        messages=outcome.messages,
        encoding=outcome.encoding,
        errors_csv=outcome.errors_csv,
    )


def _finish(job: _Job, outcome: JobOutcome, errors: tuple[RowError, ...]) -> JobOutcome:
    if not job.dry_run:
        with job.rt.engine.begin() as conn:
            job.record(conn, outcome, errors)
    return outcome


def _with_password_tags(validated: Validated, secret: bytes) -> pl.DataFrame:
    records = validated.records
    if "password" not in records.columns:
        return records
    return records.with_columns(
        password_tags(records["key"], records["password"], secret).alias("password_tag")
    )


def plan_against(
    conn: Connection, directory_id: int, validated: Validated, mode: Mode
) -> tuple[Plan, tuple[RowError, ...]]:
    snapshot = store.snapshot(conn, directory_id)
    records = validated.records
    matched = match(records, snapshot, fingerprint(records, validated.fields))
    wanted = candidates(records, validated.fields, snapshot, matched=matched)
    details = store.details(conn, directory_id, wanted)
    return build_plan(validated, snapshot, details, mode=mode, matched=matched)


def archive_digest(plan: Plan) -> str:
    """What a plan archives, as one value: approval must archive exactly the same users."""
    keys = sorted(plan.archives["key"].to_list()) if plan.archives.height else []
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()


def _password_rows(plan: Plan) -> list[tuple[str, str]]:
    """(key, clear password) of the rows whose password is new or changed."""
    pairs: list[tuple[str, str]] = []
    if "password" not in plan.creates.columns:
        return pairs
    created = plan.creates.filter(pl.col("password").is_not_null())
    pairs += list(zip(created["key"].to_list(), created["password"].to_list(), strict=True))
    if plan.updates.height:
        changed = plan.updates.filter(pl.col("changed").list.contains("password"))
        pairs += list(zip(changed["key"].to_list(), changed["password"].to_list(), strict=True))
    return pairs


def _hashes(plan: Plan) -> dict[str, str]:
    return dict(hash_passwords(_password_rows(plan)))


def _held_passwords(plan: Plan) -> list[tuple[str, str, str]]:
    """(key, hash, tag) to keep while a job is held: the retained file has no passwords."""
    rows = _password_rows(plan)
    if not rows:
        return []
    hashes = hash_passwords(rows)
    tags = dict(
        zip(plan.creates["key"].to_list(), plan.creates["password_tag"].to_list(), strict=True)
    )
    if plan.updates.height:
        tags.update(
            zip(plan.updates["key"].to_list(), plan.updates["password_tag"].to_list(), strict=True)
        )
    return [(key, hashes[key], tags[key]) for key, _ in rows]


def load_retained(rt: Runtime, job_id: str) -> tuple[str, bytes]:
    with rt.engine.connect() as conn:
        retained = store.retained_file(conn, job_id)
    if retained is None:
        raise JobStateError(
            f"the file of job {job_id} is no longer retained (retention_days ="
            f" {rt.config.retention_days})"
        )
    return retained.file_name, gzip.decompress(retained.content)


def reissue_errors_csv(rt: Runtime, job_id: str, out: Path | None) -> tuple[Path, int]:
    """`syncd jobs errors ID`: the errors CSV again, from the stored rows and errors."""
    with rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        errors = tuple(store.row_errors(conn, job.id))
    if not errors:
        raise JobStateError(f"job {job.id} has no row errors; there is no errors CSV")
    source = rt.config.source(job.source)
    name, data = load_retained(rt, job.id)
    checked = check(rt.config, rt.config.profiles[source.profile], Drop(name, data))
    if checked.validated is None:
        raise JobStateError(
            f"the file retained for job {job.id} cannot be read again: {checked.rejection}"
        )
    path = out or Path(f"{job.id}.csv")
    try:
        path.write_bytes(errors_csv_bytes(checked.validated, errors))
    except OSError as exc:
        raise UsageError(f"cannot write the errors CSV to {path}: {exc.strerror}") from exc
    return path, len({e.row for e in errors})
