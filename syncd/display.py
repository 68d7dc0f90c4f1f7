"""How the CLI shows jobs, users and sources to a person (JSON is `JobOutcome.as_json`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from syncd.core.printable import printable
from syncd.core.status import STATUS_WORDS
from syncd.outcome import JobOutcome

if TYPE_CHECKING:
    from syncd.overview import SourceOverview

STAGES = ("reading", "validating", "planning", "applying")

_STATUS_WORDS: dict[str, str] = {
    **dict(STATUS_WORDS.items()),
    "valid": "valid",
    "invalid": "some rows have errors",
}
_DRY_RUN_WORDS = {
    "applied": "would be applied",
    "applied_with_errors": "would be applied, some rows failed",
    "held": "would be held for approval",
    "rejected": "would be rejected",
}


def _heading(outcome: JobOutcome) -> str:
    if outcome.dry_run:
        words = _DRY_RUN_WORDS.get(outcome.status, outcome.status)
        return f"Dry run of {printable(outcome.file)}: {words} (nothing was written)"
    words = _STATUS_WORDS.get(outcome.status, outcome.status)
    if outcome.job_id is None:  # `syncd validate`: nothing is stored
        return f"Check of {printable(outcome.file)}: {words}"
    return f"Job {outcome.job_id}: {words}"


def next_step(outcome: JobOutcome) -> str | None:
    """What a person does next about a job, from its status as it is now."""
    if outcome.status == "held" and outcome.job_id is not None and not outcome.dry_run:
        return (
            f"approve it with `syncd jobs approve {outcome.job_id}` if these users are to be "
            f"archived, or drop it with `syncd jobs reject {outcome.job_id}`"
        )
    return None


def job_text(outcome: JobOutcome, *, verbose: bool = False) -> str:
    """A job as support reads it: what, where, how it ended, the numbers, what to do."""
    c = outcome.counts
    lines = [
        _heading(outcome),
        f"  source {outcome.source} ({outcome.mode}), file {printable(outcome.file)}"
        + (f", read as {outcome.encoding}" if outcome.encoding else ""),
    ]
    if outcome.created_at and verbose:
        finished = outcome.finished_at.isoformat(timespec="seconds") if outcome.finished_at else "-"
        lines.append(
            f"  started {outcome.created_at.isoformat(timespec='seconds')}, finished {finished}"
        )
    if outcome.skipped_of:
        lines.append(f"  same file as job {outcome.skipped_of}")
    if c.rows:
        lines.append(f"  rows {c.rows}: {c.valid} valid, {c.invalid} with errors")
    if outcome.status not in ("valid", "invalid", "rejected", "skipped"):
        lines.append(
            f"  created {c.created}, updated {c.updated} ({c.email_changed} email changes), "
            f"unchanged {c.unchanged}, archived {c.archived}, reactivated {c.reactivated}"
        )
    lines += [f"  ! {printable(message)}" for message in outcome.messages]
    step = next_step(outcome)
    if step:
        lines.append(f"  Next: {step}")
    if outcome.row_errors:
        lines.append(
            "  Row errors"
            + (
                f" (first {len(outcome.row_errors)} of {outcome.row_error_total})"
                if outcome.row_error_total > len(outcome.row_errors)
                else ""
            )
            + ":"
        )
        lines += [f"    row {e.row}: {printable(e.render())}" for e in outcome.row_errors]
    if outcome.errors_csv:
        lines.append(
            f"  Errors CSV: {outcome.errors_csv} (fix the rows there and upload "
            "that file again; its errors column is ignored)"
        )
    return "\n".join(lines)


def jobs_table(outcomes: Sequence[JobOutcome], total: int | None = None) -> str:
    """Jobs as a table; `total` (all jobs) adds a line saying how many are not shown."""
    if not outcomes:
        return "No jobs yet."
    rows = [("JOB", "WHEN", "SOURCE", "STATUS", "ROWS", "INVALID", "FILE")]
    for o in outcomes:
        when = o.created_at.strftime("%Y-%m-%d %H:%M") if o.created_at else ""
        rows.append(
            (
                o.job_id or "-",
                when,
                o.source,
                o.status,
                str(o.counts.rows),
                str(o.counts.invalid),
                printable(o.file),
            )
        )
    return _columns(rows) + _more(len(outcomes), total, "job")


def users_table(users: Sequence[dict[str, Any]], total: int | None = None) -> str:
    """Users as a table; `total` (all that match) adds a line saying how many are not shown."""
    if not users:
        return "No users."
    rows = [("KEY", "EMAIL", "STATUS", "NAME", "ROLE", "GROUPS")]
    for u in users:
        name = u.get("display_name") or " ".join(
            p for p in (u.get("first_name"), u.get("last_name")) if p
        )
        rows.append(
            (
                str(u["key"]),
                str(u["email"]),
                str(u["status"]),
                name or "",
                u.get("role") or "",
                ",".join(u.get("groups") or ()),
            )
        )
    return _columns(rows) + _more(len(users), total, "user")


def _more(shown: int, total: int | None, noun: str) -> str:
    """The last line of a table cut at its limit: how many more, and how to see them."""
    if total is None or total <= shown:
        return ""
    more = total - shown
    return (
        f"\n{more:,} more {noun}{'s' if more > 1 else ''} not shown ({shown:,} of {total:,}): "
        f"add --limit {total} to see them all"
    )


def user_text(user: dict[str, Any]) -> str:
    lines = [f"{user['email']} ({user['status']})"]
    for name, value in user.items():
        if name in ("email", "status") or value in (None, [], {}):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        lines.append(f"  {name}: {value}")
    return "\n".join(lines)


def _columns(rows: Sequence[Sequence[str]]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


@contextmanager
def progress_display(label: str) -> Iterator[Any]:
    """A progress bar over the job's stages on a terminal; nothing when piped."""
    if not sys.stderr.isatty():
        yield lambda _stage: None
        return
    # rich costs a tenth of a second to import: only on a terminal, where it is shown.
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _stage: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=len(STAGES), stage="")

        def advance(stage: str) -> None:
            done = STAGES.index(stage) if stage in STAGES else 0
            bar.update(task, completed=done, stage=stage)

        yield advance


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def outbox_table(entries: Sequence[Any], totals: dict[str, int]) -> str:
    """`syncd outbox list`: one line a message, then how many there are by status."""
    if not entries:
        return "No report messages."
    rows = [("ID", "QUEUED", "STATUS", "TRIES", "JOB", "TO", "SUBJECT / LAST ERROR")]
    for e in entries:
        detail = e.subject if e.status != "failed" and not e.last_error else (e.last_error or "")
        rows.append(
            (
                str(e.id),
                e.created_at.strftime("%Y-%m-%d %H:%M"),
                e.status,
                str(e.attempts),
                e.job_id or "-",
                ", ".join(e.recipients),
                detail,
            )
        )
    summary = ", ".join(f"{n} {status}" for status, n in sorted(totals.items()))
    return _columns(rows) + f"\nIn all: {summary}"


def _moment(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _scans(overview: SourceOverview) -> str:
    source = overview.source
    if source.schedule:
        words = f"on the schedule {source.schedule}, next at {_moment(overview.next_scan)}"
    else:
        words = f"every {source.interval_seconds or 60} s while `syncd run` runs"
    if source.kind == "local":
        words += "; and whenever the folder changes"
    return words


def _lateness(overview: SourceOverview) -> tuple[str, str]:
    source = overview.source
    if source.expect_every is None:
        return "not set (expect_every)", "-"
    days = ", Monday to Friday only (UTC)" if source.business_days else ""
    expected = f"every {source.expect_every}{days}"
    if overview.late_since is not None:
        told = (
            f"alert sent {_moment(overview.alerted_at)}"
            if overview.alerted_at is not None
            else "no alert yet: `syncd run` sends it"
        )
        return expected, f"LATE since {_moment(overview.late_since)} ({told})"
    if overview.due is None:
        return expected, "no (no file yet; the clock starts when `syncd run` first watches it)"
    return expected, f"no (next file due by {_moment(overview.due)})"


def status_text(overviews: Sequence[SourceOverview]) -> str:
    """`syncd status`: one block per source."""
    if not overviews:
        return "No sources configured."
    blocks = []
    for o in overviews:
        source, file, job = o.source, o.last_file, o.last_job
        expected, late = _lateness(o)
        lines = [
            f"{source.name} ({source.kind} {source.where}, {source.mode} mode)",
            "  last file  "
            + (
                "none yet" if file is None else f"{file.name}, received {_moment(file.received_at)}"
            ),
            "  last job   "
            + (
                "none ended yet"
                if job is None
                else f"{job.job_id} {job.status}, finished {_moment(job.finished_at)}"
            ),
            f"  scans      {_scans(o)}",
            f"  expected   {expected}",
            f"  late       {late}",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
