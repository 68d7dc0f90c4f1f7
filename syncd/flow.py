"""Run one file through the flow: read, validate, plan, guard, apply, record.

`run_job` serves `syncd import` and the daemon alike: the CLI and the daemon differ only in
where the bytes come from. Everything between reading and guarding is the pure core; this
module gathers its inputs and acts on its answer.

A job is recorded `running`, with its owner and a lease, before any work (the daemon's
jobs are claimed before their file is even fetched, `syncd.store.queue`): if its process
dies, the job is found (`store.recover_abandoned`) and, since a job's changes and its end
are one transaction, nothing of it was applied and its file runs again. A file is skipped
only when a job of the same source applied (or holds) the same content in the same mode.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import structlog
from sqlalchemy import Connection

from syncd import held, store
from syncd.config import SourceConfig
from syncd.core.changes import (
    archived_users,
    missing_users,
    no_changes,
    plan_changes,
    render_changes_csv,
)
from syncd.core.counts import Counts
from syncd.core.errors_csv import render_errors_csv
from syncd.core.guard import GuardLimits, Previous, judge
from syncd.core.job_id import new_job_id
from syncd.core.passwords import password_tags
from syncd.core.plan import (
    COMPARE_PART,
    NothingValid,
    Plan,
    build_plan,
    candidates,
    fingerprint,
    legacy_rows,
    match,
    quiet_plan,
    quiet_sums,
)
from syncd.core.profile import Mode
from syncd.core.records import Validated, take_valid
from syncd.core.status import JobStatus
from syncd.core.table import ROW, RawTable, RowError
from syncd.errors import SyncdError
from syncd.hashing import plan_hashes, plan_tags
from syncd.intake import (
    SHOWN_ROW_ERRORS,
    Checked,
    Drop,
    Progress,
    check,
    counts_of,
    effective_mode,
    quiet,
    read_file,
    rejected,
    secrets_of,
    sniffed_header,
)
from syncd.lease import LEASE, Lease, owner_alive, this_owner
from syncd.outcome import JobOutcome
from syncd.packing import pack, unpack
from syncd.private import write_private
from syncd.report import CHANGES_CSV, JobReport, queue_report, report_kind
from syncd.retention import (
    NOT_KEPT,
    Kept,
    compressed_file,
    file_bytes,
    keep_plan,
    redacted_copy,
)
from syncd.runtime import Runtime
from syncd.sources.spool import FileChanged
from syncd.store import SnapshotAhead
from syncd.tracebacks import describe

log = structlog.get_logger("syncd.flow")

#: The name a job's errors CSV is kept under (gzip-compressed), for `syncd jobs errors`.
ERRORS_CSV = "errors.csv.gz"

#: Looks at a job's plan under its directory's lock, before the guard and before
#: anything is written: (connection, directory name, plan, changes frame). A back office
#: preview (a dry run) keeps what it saw; applying that upload raises `PlanRefused`
#: when the plan is not the one previewed.
PlanCheck = Callable[[Connection, str, Plan, pl.DataFrame], None]


class PlanRefused(SyncdError):
    """A `PlanCheck` refused the plan: nothing was applied, and no job is recorded."""


#: Compresses the copies a job keeps while it reads and validates (zlib releases the
#: GIL, so this runs on the second core).
_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-retain")


def mint_job_id(rt: Runtime) -> str:
    return new_job_id(int(rt.clock().timestamp() * 1000), rt.entropy(2))


@dataclass(frozen=True, slots=True)
class _Changes:
    """A job's changes CSV, rendered before anything is applied so that the changes frame
    (a first load's holds every user) is let go of first; compressed on the second core
    while the job applies."""

    csv: bytes
    compressed: Future[bytes]
    archived: pl.DataFrame | None  # the users a held job would archive, for its report

    @classmethod
    def of(cls, changes: pl.DataFrame, *, held: bool) -> _Changes:
        csv = render_changes_csv(changes)
        return cls(
            csv=csv,
            compressed=_BACKGROUND.submit(gzip.compress, csv, 1),
            archived=archived_users(changes) if held else None,
        )


class _Job:
    """One job's bookkeeping while it runs: what gets recorded when it ends.

    The file's bytes are handed over once (`take_data`) and not kept: a million-row file
    is 140 MB; a compressed copy is all the job needs afterwards, to keep for support or
    to read rows again (a held job's cells, an errors CSV naming rows the planner refused).
    """

    def __init__(
        self,
        rt: Runtime,
        source: SourceConfig,
        drop: Drop,
        mode: Mode,
        dry_run: bool,
        notes: tuple[str, ...],
        job_id: str | None = None,
        check_plan: PlanCheck | None = None,
    ) -> None:
        self.rt, self.source, self.mode, self.dry_run = rt, source, mode, dry_run
        self.notes = notes
        self.check_plan = check_plan
        self.profile = rt.config.profiles[source.profile]
        self.name, self.size, self.sha256 = drop.name, len(drop.data), drop.sha256
        self._path = drop.path
        self._data: bytes | None = drop.take()
        self._original: Future[bytes] | None = None
        self._redacted: Future[bytes] | None = None
        self.kept: Kept = "original"
        # A dry run is not stored, so it gets no ID: an ID syncd prints is one support
        # can look up.
        self.job_id = None if dry_run else (job_id or mint_job_id(rt))
        self.started = rt.clock()
        self.errors_csv: bytes | None = None

    @property
    def stored_id(self) -> str:
        if self.job_id is None:
            raise RuntimeError("a dry run has no job record")
        return self.job_id

    def take_data(self) -> bytes:
        """The file's bytes, for the caller alone: the compressed copy is made from the
        file on disk when it lies there, so nothing holds the bytes once they are parsed
        (and a dry run, which keeps nothing, reads it again from there if it must)."""
        data, self._data = self._data, None
        if data is None:
            raise RuntimeError("the file's bytes were already taken")
        if self._path is None:
            self._original = _BACKGROUND.submit(pack, data)
        elif not self.dry_run:
            self._original = _BACKGROUND.submit(compressed_file, self._path, self.sha256)
        return data

    def keep(self, checked: Checked) -> None:
        """Decide what is retained of the file for support (`syncd.retention`)."""
        if checked.password_below:
            plan = keep_plan(None, None)  # its columns, as read, cannot say which are secret
        else:
            read = checked.table is not None
            secrets = None if read else secrets_of(checked.header, self.profile)
            plan = keep_plan(checked.table, secrets)
        self.kept = plan.kind
        if plan.table is not None and not self.dry_run:
            self._redacted = _BACKGROUND.submit(redacted_copy, plan.table)

    def retained(self) -> bytes | None:
        """The compressed copy kept for support, if any."""
        if self.kept == "none":
            return None
        source = self._redacted if self.kept == "redacted" else self._original
        if source is None:
            raise RuntimeError("nothing to retain: take_data was not called")
        return source.result()

    def cells_again(self) -> RawTable:
        """Every row's cells, read again from the file's bytes exactly as the job read
        them (the job let go of the cells of valid rows once validated): from the disk,
        checked, when the file lies there; else from the compressed copy."""
        if self._path is not None:
            return read_file(self.profile, file_bytes(self._path, self.sha256))
        if self._original is None:
            raise RuntimeError("take_data was not called")
        return read_file(self.profile, unpack(self._original.result()))

    def errors_table(self, table: RawTable, errors: tuple[RowError, ...]) -> RawTable:
        """A table holding the cells of every row in `errors`."""
        missing = {e.row for e in errors} - set(table.cells.get_column(ROW).to_list())
        return self.cells_again() if missing else table

    def outcome(
        self,
        status: JobStatus,
        validated: Validated | None,
        *,
        plan: Plan | None = None,
        counts: Counts | None = None,
        messages: tuple[str, ...] = (),
        errors: tuple[RowError, ...] = (),
        errors_csv: str | None = None,
        skipped_of: str | None = None,
    ) -> JobOutcome:
        if counts is None:
            counts = plan.counts if plan is not None else counts_of(validated)
        not_kept = (NOT_KEPT,) if self.kept == "none" and not self.dry_run else ()
        return JobOutcome(
            job_id=self.job_id,
            status=status,
            source=self.source.name,
            mode=self.mode,
            file=self.name,
            encoding=validated.table.encoding if validated else None,
            counts=counts,
            errors_csv=errors_csv,
            messages=(*self.notes, *messages, *not_kept),
            row_errors=errors[:SHOWN_ROW_ERRORS],
            row_error_total=len(errors),
            skipped_of=skipped_of,
            dry_run=self.dry_run,
            redacted=self.kept == "redacted",
            created_at=self.started,
            finished_at=self.rt.clock(),
        )

    def write_errors_csv(self, table: RawTable, errors: tuple[RowError, ...]) -> str | None:
        """Render the errors CSV, write it to the errors folder, keep it for the record."""
        if not errors:
            return None
        self.errors_csv = render_errors_csv(self.errors_table(table, errors), errors)
        if self.job_id is None:
            path = self.rt.errors_dir / f"dry-run-{Path(self.name).stem}.csv"
        else:
            path = self.rt.errors_dir / f"{self.job_id}.csv"
        write_private(path, self.errors_csv)
        return str(path)

    def record(
        self,
        conn: Connection,
        outcome: JobOutcome,
        errors: tuple[RowError, ...],
        *,
        changes: _Changes | None = None,
        thresholds: tuple[str, ...] = (),
        delimiter: str | None = None,
    ) -> None:
        """Store the job's end state, its row errors, errors CSV, changes CSV and retained
        file, and queue its report: all in the caller's transaction, so a report is sent
        exactly for what was recorded."""
        job_id = self.stored_id
        finish(conn, outcome)
        store.add_row_errors(conn, job_id, errors)
        expires = self.started + timedelta(days=self.rt.config.retention_days)
        if changes is not None:
            store.put_job_file(
                conn, job_id, CHANGES_CSV, changes.compressed.result(), expires_at=expires
            )
        kind = report_kind(outcome)
        if kind is not None:
            report = JobReport(
                outcome=outcome,
                kind=kind,
                errors_csv=self.errors_csv,
                changes_csv=None if changes is None else changes.csv,
                archived=changes.archived if changes is not None and kind == "held" else None,
                thresholds=thresholds,
                delimiter=delimiter,
            )
            queue_report(conn, self.rt.config, report, now=outcome.finished_at or self.started)
        if self.errors_csv is not None:
            store.put_job_file(
                conn, job_id, ERRORS_CSV, gzip.compress(self.errors_csv, 1), expires_at=expires
            )
        self.retain(conn, self.retained())
        store.purge_expired(conn, now=self.started)
        store.prune_users_writes(conn)

    def retain(self, conn: Connection, retained: bytes | None) -> None:
        """Keep the file for support as `keep` decided (redacted, as it came, or not at
        all); a file holding passwords is settled as this redacted copy too."""
        if retained is not None:
            store.retain_file(
                conn,
                self.stored_id,
                file_name=self.name,
                content=retained,
                now=self.started,
                expires_at=self.started + timedelta(days=self.rt.config.retention_days),
                redacted=self.kept == "redacted",
            )


def run_job(
    rt: Runtime,
    source: SourceConfig,
    drop: Drop,
    *,
    mode: Mode | None = None,
    dry_run: bool = False,
    progress: Progress = quiet,
    claimed: str | None = None,
    check_plan: PlanCheck | None = None,
) -> JobOutcome:
    """The whole flow for one file; every outcome is recorded (unless `dry_run`).

    `claimed`: the ID of the job the daemon claimed for this file and runs now (already
    `running` under its lease); without it a job is recorded here. `check_plan` sees the
    plan before anything is written, and may refuse it (`PlanRefused`): then nothing is
    recorded, as for a dry run.
    """
    profile = rt.config.profiles[source.profile]
    # An errors CSV sent back is partial whatever was asked: decided before the job is
    # recorded, since the mode is part of what makes two files the same.
    effective, note = effective_mode(mode or source.mode, sniffed_header(profile, drop.data))
    notes = (note,) if note else ()
    # (the job takes the bytes over)
    job = _Job(rt, source, drop, effective, dry_run, notes, job_id=claimed, check_plan=check_plan)
    if not dry_run:
        job_id = job.stored_id
        with rt.engine.begin() as conn:
            if claimed is None:
                recover(conn, rt, job.started)
            earlier = store.find_processed(conn, source.name, job.sha256, job.mode)
            skipped_message = (
                f"this file is identical to the one of job {earlier}; nothing was done",
            )
            if claimed is not None:
                store.set_content(conn, job_id, sha256=job.sha256, size=job.size, mode=job.mode)
                if earlier:
                    store.finish_job(
                        conn,
                        job_id,
                        status="skipped",
                        now=job.started,
                        messages=skipped_message,
                        skipped_of=earlier,
                    )
            else:
                store.insert_job(
                    conn,
                    job_id=job_id,
                    source=source.name,
                    directory=source.directory,
                    mode=job.mode,
                    file_name=job.name,
                    sha256=job.sha256,
                    size=job.size,
                    status="skipped" if earlier else "running",
                    now=job.started,
                    skipped_of=earlier,
                    messages=skipped_message if earlier else job.notes,
                    owner=None if earlier else this_owner(),
                    lease_until=None if earlier else job.started + LEASE,
                )
            if earlier:
                # Same bytes, same mode as a file this source already applied or holds:
                # nothing to do, and the job says which earlier job to look at.
                skipped = job.outcome("skipped", None, skipped_of=earlier, messages=skipped_message)
                report_ended(conn, rt, skipped)
                return skipped
    try:
        with nullcontext() if dry_run else Lease(rt.engine, job.stored_id, rt.clock):
            outcome = _process(job, progress)
    except PlanRefused:
        if not dry_run and claimed is None:
            with rt.engine.begin() as conn:
                store.forget_job(conn, job.stored_id)
        raise
    except Exception as exc:
        # A file that changed on disk under the job (`compressed_file`) is the sender's
        # doing: its job is rejected, with what to do, rather than reported as syncd's crash.
        if isinstance(exc, FileChanged):
            log.warning("file_changed", job_id=job.job_id, source=source.name)
            message = exc.message
        else:
            log.exception("job_crashed", job_id=job.job_id, source=source.name)
            message = (
                f"syncd failed while processing this file ({describe(exc)}); nothing "
                f"was applied; please report job {job.job_id}"
            )
        crashed = job.outcome("rejected", None, messages=(message,))
        if not dry_run:
            try:
                retained = job.retained()
            except Exception:  # the copy failed too (or was never begun): none is kept
                retained = None
            with rt.engine.begin() as conn:
                finish(conn, crashed)
                # Kept as for any job: support can look at it, and a file holding
                # passwords is settled as this copy with them blanked.
                job.retain(conn, retained)
                report_ended(conn, rt, crashed)
        if isinstance(exc, FileChanged):
            return crashed
        raise
    return outcome


def _process(job: _Job, progress: Progress) -> JobOutcome:
    rt = job.rt
    # The directory's snapshot is read while the file is read and checked (see
    # `syncd.store.ahead`): on a quiet night it is most of the planning.
    with store.snapshot_ahead(rt.engine, job.source.directory) as ahead:
        checked = check(
            rt.config, job.profile, Drop(job.name, job.take_data()), progress, flag_failed=True
        )
        job.keep(checked)
        if checked.validated is None:
            return _finish(job, job.outcome("rejected", None, messages=checked.problems), ())
        return _validated(job, checked, progress, ahead)


def _validated(job: _Job, checked: Checked, progress: Progress, ahead: SnapshotAhead) -> JobOutcome:
    # Taken over (not passed): no caller's frame keeps the cells or the records alive
    # after this lets go of them.
    validated = checked.take()
    rt, profile = job.rt, job.profile
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
            errors_csv=job.write_errors_csv(validated.table, errors),
        )
        return _finish(job, outcome, errors)

    # From here on only the failed rows' cells are needed (for the errors CSV): letting
    # go of the others keeps a million-row job within its memory budget. Only then are
    # the failed rows' records taken out, a column at a time (`take_valid`): a filter
    # beside the cells would copy every valid row's.
    validated = replace(validated, table=validated.table.keep_rows({e.row for e in errors}))
    validated = replace(
        validated,
        records=_with_password_tags(take_valid(validated.records), rt.secret),
        valid_rows=None,
    )
    with rt.engine.connect() as conn, conn.begin() as transaction:
        directory_id = store.lock_directory(conn, job.source.directory)
        progress("planning")
        try:
            plan, conflicts, changes = plan_against(
                conn, directory_id, validated, job.mode, ahead=ahead
            )
        except NothingValid as rejected:
            # Nothing was written: the directory's lock (on SQLite, the database's write
            # lock) goes now, not after the errors CSV of every row is written.
            transaction.rollback()
            refused = rejected
        else:
            if job.check_plan is not None:
                job.check_plan(conn, job.source.directory, plan, changes)
            errors = tuple(sorted((*errors, *conflicts), key=lambda e: e.row))
            messages = (
                *plan.messages,
                *((plan.archive_blocked,) if plan.archive_blocked else ()),
                *notices,
            )
            last = store.last_full_file(conn, job.source.name)
            limits = GuardLimits(
                job.source.max_archive_percent,
                job.source.max_archive_count,
                job.source.min_rows_percent,
            )
            verdict = judge(plan, limits, Previous(*last) if last else None)
            status: JobStatus = (
                "held" if verdict.hold else ("applied_with_errors" if errors else "applied")
            )
            rendered = None if job.dry_run else _Changes.of(changes, held=verdict.hold)
            del changes  # a first load's is a million rows: not kept while applying
            frozen = None
            if verdict.hold and not job.dry_run:
                # Everything approval applies is kept now (see `syncd.held`).
                frozen = held.freeze(replace(validated, table=job.cells_again()))
            validated = replace(validated, records=validated.records.clear())
            outcome = job.outcome(
                status,
                validated,
                plan=plan,
                errors=errors,
                errors_csv=job.write_errors_csv(validated.table, errors),
                messages=(*verdict.reasons, *messages),
            )
            if job.dry_run:
                transaction.rollback()
                return outcome
            job_id = job.stored_id
            if frozen is not None:
                tags = plan_tags(plan)
                hashes = plan_hashes(plan)
                store.hold_plan(
                    conn,
                    job_id,
                    archive_digest(plan),
                    [(key, hashes[key], tags.get(key)) for key in hashes],
                )
                for name, content in frozen.items():
                    store.put_job_file(conn, job_id, name, content, expires_at=None)
                store.put_job_file(
                    conn, job_id, held.THRESHOLDS, held.thresholds(verdict.reasons), expires_at=None
                )
            else:
                progress("applying")
                store.apply_plan(
                    conn,
                    directory_id,
                    plan,
                    job_id=job_id,
                    now=job.started,
                    password_hashes=plan_hashes(plan),
                )
            # A first load's plan holds every user's record: recording the job (the
            # retained copy, the report) does not need it.
            del plan
            job.record(
                conn,
                outcome,
                errors,
                changes=rendered,
                thresholds=verdict.reasons,
                delimiter=validated.table.delimiter,
            )
            return outcome
    errors = tuple(sorted((*errors, *refused.row_errors), key=lambda e: e.row))
    outcome = job.outcome(
        "rejected",
        validated,
        counts=Counts(rows=validated.rows, valid=0, invalid=validated.rows),
        errors=errors,
        messages=(refused.message, *refused.problems, *notices),
        errors_csv=job.write_errors_csv(validated.table, errors),
    )
    return _finish(job, outcome, errors)


def finish(conn: Connection, outcome: JobOutcome) -> None:
    """Store a job's end state."""
    if outcome.job_id is None:
        raise RuntimeError("a dry run has no job record to finish")
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


def recover(conn: Connection, rt: Runtime, now: datetime) -> list[store.Job]:
    """Recover the jobs whose process died (`store.recover_abandoned`); the ones given up
    on, whose reports this queues (their senders must hear that nothing was applied),
    and whose files the caller settles."""
    given_up = []
    for job_id in store.recover_abandoned(conn, now=now, is_alive=owner_alive):
        job = store.get_job(conn, job_id)
        if job is None or job.status != "rejected":
            continue
        given_up.append(job)
        log.error("job_given_up", job_id=job.id, source=job.source, file=job.file_name)
        report_ended(conn, rt, JobOutcome.from_job(job))
    return given_up


def report_ended(conn: Connection, rt: Runtime, outcome: JobOutcome) -> None:
    """Queue the report of a job that ended without a plan (skipped, crashed, or its
    file could not be taken at all), in the caller's transaction."""
    kind = report_kind(outcome)
    if kind is not None:
        report = JobReport(outcome=outcome, kind=kind)
        queue_report(conn, rt.config, report, now=outcome.finished_at or datetime.now(UTC))


def refuse_unread(
    rt: Runtime,
    source: SourceConfig,
    file: str,
    size: int,
    *,
    mode: Mode,
    message: str,
    dry_run: bool = False,
) -> JobOutcome:
    """A file refused before a byte of it was read (larger than its profile allows):
    recorded as a rejected job whose report is queued, as the daemon records such a file;
    a dry run's is only the outcome."""
    now = rt.clock()
    outcome = replace(
        rejected(source, file, mode, (message,)),
        dry_run=dry_run,
        created_at=now,
        finished_at=now,
    )
    if dry_run:
        return outcome
    job_id = mint_job_id(rt)
    outcome = replace(outcome, job_id=job_id)
    with rt.engine.begin() as conn:
        store.insert_job(
            conn,
            job_id=job_id,
            source=source.name,
            directory=source.directory,
            mode=mode,
            file_name=file,
            sha256=None,  # never read
            size=size,
            status="rejected",
            now=now,
            messages=outcome.messages,
        )
        finish(conn, outcome)
        report_ended(conn, rt, outcome)
    log.warning("file_too_large", job_id=outcome.job_id, source=source.name, reason=message)
    return outcome


def _finish(job: _Job, outcome: JobOutcome, errors: tuple[RowError, ...]) -> JobOutcome:
    if not job.dry_run:
        with job.rt.engine.begin() as conn:
            job.record(conn, outcome, errors)
    return outcome


def _with_password_tags(records: pl.DataFrame, secret: bytes) -> pl.DataFrame:
    if "password" not in records.columns:
        return records
    return records.with_columns(
        password_tags(records["key"], records["password"], secret).alias("password_tag")
    )


def plan_against(
    conn: Connection,
    directory_id: int,
    validated: Validated,
    mode: Mode,
    *,
    ahead: SnapshotAhead | None = None,
) -> tuple[Plan, tuple[RowError, ...], pl.DataFrame]:
    """The plan of `validated` against the directory as it is, its refused rows, and
    what it changes, user by user (`syncd.core.changes`). `ahead`: the directory's
    snapshot being read ahead, taken if still current."""
    records = validated.records
    fingerprints = fingerprint(records, validated.fields)
    sums = quiet_sums(validated, fingerprints)
    if sums is not None:
        # A night that may change nothing is proved so, when it does, by the active
        # users' fingerprints summed (`quiet_plan`): no snapshot is read or matched. The
        # sums are read ahead; they are read again under the lock (0.3 to 1 s a million
        # users) only when they match and cannot be shown current.
        guessed = None if ahead is None else ahead.guessed_sums()
        if guessed is None or guessed == sums:
            stored = guessed
            if stored is None or ahead is None or not ahead.sums_current(conn):
                log.debug("sums_read_again", directory_id=directory_id)
                stored = store.fingerprint_sums(conn, directory_id)
            quiet = quiet_plan(validated, mode, sums, stored)
            if quiet is not None:
                if ahead is not None:
                    ahead.close()  # its snapshot is not needed: the read stops
                return quiet, (), no_changes()
    if ahead is None:
        snapshot = store.snapshot(conn, directory_id)
    else:
        snapshot = ahead.take(conn, directory_id)
    matched = match(records, snapshot, fingerprints)
    legacy = legacy_rows(records, validated.fields, matched)
    wanted = candidates(records, validated.fields, snapshot, matched=matched, legacy=legacy)
    population = snapshot.height

    def details_of(user_ids: pl.Series) -> pl.DataFrame:
        return store.details(conn, directory_id, user_ids, population=population)

    if wanted.len() > max(COMPARE_PART, population // 4):
        # Most users to compare (after a polars upgrade, every one): compared in parts,
        # each with its own users' details; the changes CSV needs the changed users'.
        # (A night that changes fewer, however many, reads their details at once.)
        plan, conflicts = build_plan(
            validated, snapshot, details_of, mode=mode, matched=matched, legacy=legacy
        )
        details = details_of(plan.updates["user_id"].cast(pl.Int64))
    else:
        details = details_of(wanted)
        plan, conflicts = build_plan(
            validated, snapshot, details, mode=mode, matched=matched, legacy=legacy
        )
    missing = missing_users(plan, details)
    extra = store.details(conn, directory_id, missing, fields=("email",), population=population)
    return plan, conflicts, plan_changes(plan, details, extra)


def archive_digest(plan: Plan) -> str:
    """What a plan archives, as one value: approval must archive exactly the same users."""
    keys = sorted(plan.archives["key"].to_list()) if plan.archives.height else []
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()
