"""What a report says: a job's outcome and files turned into the values templates show.

`JobReport` is what a report is made from: the job's outcome and what the job keeps (its
errors CSV and changes CSV as written, and for a held job the users it would archive and
the thresholds it crossed). `report_context` turns it into the plain values every
template is rendered with (the same keys for every kind of report, so an admin's
template may use any of them), and `plan_attachments` decides which files go with the
message and which are too big and are named with the command that gives them instead.

Row errors are shown with the value as received: the errors CSV holds the failed rows in
file order under the original header, so the n-th failed row named by the row errors is
its n-th line. Secret cells are already blank there, and no message quotes one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import polars as pl

from syncd.config import MailConfig, SourceConfig
from syncd.core.changes import ARCHIVED_COLUMNS, render_archived_csv
from syncd.core.counts import Counts
from syncd.core.formula import neutralise, undo
from syncd.core.printable import printable
from syncd.core.table import ERRORS_HEADER, RowError
from syncd.outcome import JobOutcome
from syncd.store.outbox import Attachment

ReportKind = Literal[
    "applied", "applied_with_errors", "rejected", "held", "skipped", "approved", "dismissed"
]
REPORT_KINDS: tuple[ReportKind, ...] = get_args(ReportKind)
#: Alerts about a source rather than a job (`syncd.report.alerts`): no file came in
#: time, and files came again.
AlertKind = Literal["late", "resumed"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
#: Every kind of message syncd mails, each with its three templates.
MailKind = ReportKind | AlertKind
MAIL_KINDS: tuple[MailKind, ...] = (*REPORT_KINDS, *ALERT_KINDS)

#: How many users a held job's report lists; the rest are in `<job_id>-archived.csv`.
ARCHIVED_SHOWN = 20
#: How many row errors a report shows (the job keeps the first 20 at hand).
ROW_ERRORS_SHOWN = 20
#: A value as received longer than this is cut in the report (the CSV has it whole).
VALUE_SHOWN = 120

DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)"}

#: Each kind of report in words: its title, and the tone its header is drawn in.
TITLES: dict[ReportKind, str] = {
    "applied": "Applied",
    "applied_with_errors": "Applied, some rows failed",
    "rejected": "Rejected: nothing was applied",
    "held": "Held for approval",
    "skipped": "Skipped: identical to an earlier file",
    "approved": "Approved and applied",
    "dismissed": "Dismissed: nothing was applied",
}
TONES: dict[ReportKind, str] = {
    "applied": "ok",
    "applied_with_errors": "warn",
    "rejected": "bad",
    "held": "warn",
    "skipped": "info",
    "approved": "ok",
    "dismissed": "info",
}
#: Kinds whose job changed the directory: their changes CSV goes with the report.
CHANGED: frozenset[ReportKind] = frozenset({"applied", "applied_with_errors", "approved"})

_KIND_OF_STATUS: dict[str, ReportKind] = {
    "applied": "applied",
    "applied_with_errors": "applied_with_errors",
    "rejected": "rejected",
    "held": "held",
    "skipped": "skipped",
    "dismissed": "dismissed",
}


def report_kind(outcome: JobOutcome, *, approved: bool = False) -> ReportKind | None:
    """The report a job's end calls for; None for a status that ends nothing (running,
    queued, interrupted). `approved`: the outcome is that of `syncd jobs approve`."""
    if approved:
        return "approved"
    return _KIND_OF_STATUS.get(outcome.status)


@dataclass(frozen=True, slots=True)
class JobReport:
    """What one report is made from.

    - `outcome`: the job as people see it (`syncd.outcome.JobOutcome`), with its row
      errors (the first ones) and their total.
    - `kind`: which report (`report_kind(outcome)`; "approved" after approval).
    - `errors_csv`: the job's errors CSV as written, if rows failed.
    - `changes_csv`: `<job_id>-changes.csv` (`syncd.core.changes.render_changes_csv`).
    - `archived`: for a held job, the users it would archive (`key`, `email`, `reason`:
      `syncd.core.changes.archived_users`), and `thresholds`: the guard's reasons.
    - `delimiter`: the delimiter the file was read with, if it was read.
    """

    outcome: JobOutcome
    kind: ReportKind
    errors_csv: bytes | None = None
    changes_csv: bytes | None = None
    archived: pl.DataFrame | None = None
    thresholds: tuple[str, ...] = ()
    delimiter: str | None = None

    @property
    def job_id(self) -> str:
        if self.outcome.job_id is None:
            raise ValueError("a report is for a stored job; this outcome has no job ID")
        return self.outcome.job_id


@dataclass(frozen=True, slots=True)
class Withheld:
    """A file too big to attach, and the command that gives it."""

    name: str
    size: int
    what: str
    command: str


@dataclass(frozen=True, slots=True)
class Enclosures:
    """What goes with a message (`attached`, with what each is) and what does not."""

    attached: tuple[tuple[Attachment, str], ...]
    withheld: tuple[Withheld, ...]


def errors_file(job_id: str) -> str:
    return f"{job_id}.csv"


def changes_file(job_id: str) -> str:
    return f"{job_id}-changes.csv"


def archived_file(job_id: str) -> str:
    return f"{job_id}-archived.csv"


def plan_attachments(report: JobReport, source: SourceConfig, mail: MailConfig) -> Enclosures:
    """The files a report carries, in order of use to its reader, while their sizes
    add up to `attach_max_bytes`; each one past it is named with its CLI command."""
    job_id, outcome = report.job_id, report.outcome
    wanted: list[tuple[str, bytes, str, str]] = []  # name, content, what, command
    if report.errors_csv and outcome.row_error_total:
        name = errors_file(job_id)
        wanted.append(
            (
                name,
                report.errors_csv,
                "the rows that failed, as received, with an errors column last",
                f"syncd jobs errors {job_id} -o {name}",
            )
        )
    archived = report.archived
    if report.kind == "held" and archived is not None and archived.height > ARCHIVED_SHOWN:
        wanted.append(
            (
                archived_file(job_id),
                render_archived_csv(archived.select(ARCHIVED_COLUMNS)),
                "every user this file would archive",
                f"syncd jobs changes {job_id} -o {changes_file(job_id)}",
            )
        )
    changes = report.changes_csv
    if report.kind in CHANGED and source.send_changes and changes and _has_rows(changes):
        name = changes_file(job_id)
        wanted.append(
            (
                name,
                changes,
                "every user created, updated, renamed, reactivated or archived",
                f"syncd jobs changes {job_id} -o {name}",
            )
        )
    attached: list[tuple[Attachment, str]] = []
    withheld: list[Withheld] = []
    budget = mail.attach_max_bytes
    for name, content, what, command in wanted:
        if len(content) <= budget:
            attached.append((Attachment(name, content), what))
            budget -= len(content)
        else:
            withheld.append(Withheld(name, len(content), what, command))
    return Enclosures(tuple(attached), tuple(withheld))


def _has_rows(content: bytes) -> bool:
    """Whether a CSV holds a line after its header."""
    end_of_header = content.find(b"\n")
    return end_of_header != -1 and end_of_header + 1 < len(content)


def received_values(
    errors_csv: bytes | None, errors: Sequence[RowError], rows: Sequence[int] | None = None
) -> dict[int, dict[str, str]]:
    """The cells as received of the rows `errors` name, by row then header, read from
    the errors CSV (the n-th failed row is its n-th line). `rows`: every failed row of
    the job in row order; by default `errors` are the first row errors in row order, so
    their rows are its first lines."""
    wanted = {e.row for e in errors}
    if rows is None:
        rows = sorted(wanted)
    if not errors_csv or not wanted:
        return {}
    text = errors_csv.decode("utf-8-sig", errors="replace")
    first = text.split("\n", 1)[0].rstrip("\r")
    # The header ends in `<delimiter>errors`: that names the delimiter surely.
    delimiter = first[-len(ERRORS_HEADER) - 1] if first.endswith(ERRORS_HEADER) else ","
    if len(first) <= len(ERRORS_HEADER) or delimiter not in DELIMITER_NAMES:
        delimiter = ","
    # A cell may be longer than csv's default limit (128 KiB): reading allows up to
    # max_cell_chars and flags the rest, which still come back here as received.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 2))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, [])
    values: dict[int, dict[str, str]] = {}
    last = max(wanted)
    for row, cells in zip(rows, reader, strict=False):
        if row > last:
            break
        if row not in wanted:
            continue
        values[row] = {
            name: undo(cell)
            for name, cell in zip(header[:-1], cells[: len(header) - 1], strict=False)
        }
    return values


def received_value(values: dict[int, dict[str, str]], error: RowError) -> str:
    """The cell an error names, as received (cut past `VALUE_SHOWN` characters)."""
    cells = values.get(error.row, {})
    value = cells.get(neutralise(error.column), cells.get(error.column, ""))
    return value if len(value) <= VALUE_SHOWN else value[: VALUE_SHOWN - 1] + "…"


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1_000_000:.1f} MB"


def _counts(kind: ReportKind, counts: Counts) -> list[dict[str, Any]]:
    """The counts table: a file's rows always; what it changed (or would) once planned."""
    lines = [
        ("Rows in the file", counts.rows, ""),
        ("Valid", counts.valid, ""),
        ("Failed", counts.invalid, "listed below" if counts.invalid else ""),
    ]
    if kind not in ("rejected", "skipped"):
        lines += [
            ("Created", counts.created, ""),
            (
                "Updated",
                counts.updated,
                f"{counts.email_changed:,} with a new email" if counts.email_changed else "",
            ),
            ("Unchanged", counts.unchanged, ""),
            ("Reactivated", counts.reactivated, ""),
            ("Archived", counts.archived, ""),
        ]
    return [{"label": label, "value": f"{value:,}", "note": note} for label, value, note in lines]


def _archived_section(report: JobReport, enclosures: Enclosures) -> dict[str, Any] | None:
    if report.kind != "held":
        return None
    archived = report.archived
    total = 0 if archived is None else archived.height
    shown = [] if archived is None else archived.head(ARCHIVED_SHOWN).to_dicts()
    name = archived_file(report.job_id)
    withheld = next((w for w in enclosures.withheld if w.name == name), None)
    return {
        "total": f"{total:,}",
        "count": total,
        "shown": [{k: row.get(k) or "" for k in ARCHIVED_COLUMNS} for row in shown],
        "rest": f"{max(total - len(shown), 0):,}",
        "rest_count": max(total - len(shown), 0),
        "file": name if any(a.name == name for a, _ in enclosures.attached) else None,
        "command": withheld.command if withheld else None,
        "thresholds": list(report.thresholds),
        "approve": f"syncd jobs approve {report.job_id}",
        "reject": f"syncd jobs reject {report.job_id}",
    }


def report_context(
    report: JobReport,
    source: SourceConfig,
    mail: MailConfig,
    install_name: str,
    enclosures: Enclosures | None = None,
) -> dict[str, Any]:
    """The values every template is rendered with (see `syncd/templates/mail/`);
    `enclosures`: `plan_attachments(report, source, mail)` if the caller has it."""
    outcome, kind = report.outcome, report.kind
    if enclosures is None:
        enclosures = plan_attachments(report, source, mail)
    shown = outcome.row_errors[:ROW_ERRORS_SHOWN]
    values = received_values(report.errors_csv, shown)
    total_errors = max(outcome.row_error_total, len(outcome.row_errors))
    thresholds = set(report.thresholds)
    errors_name = errors_file(report.job_id)
    return {
        "install_name": install_name,
        "kind": kind,
        "title": TITLES[kind],
        "tone": TONES[kind],
        "job": {
            "id": report.job_id,
            "source": outcome.source,
            "file": printable(outcome.file),
            "mode": outcome.mode,
            "received": when(outcome.created_at),
            "finished": when(outcome.finished_at),
            "encoding": outcome.encoding or "not read",
            "delimiter": DELIMITER_NAMES.get(report.delimiter or "", "not read"),
            "skipped_of": outcome.skipped_of or "",
        },
        "counts": _counts(kind, outcome.counts),
        "messages": [printable(m) for m in outcome.messages if m not in thresholds],
        "row_errors": [
            {
                "row": e.row,
                "column": printable(e.column),
                "value": printable(received_value(values, e)),
                "message": printable(e.message),
            }
            for e in shown
        ],
        "rows_failed": f"{outcome.counts.invalid:,}",
        "row_error_total": f"{total_errors:,}",
        "row_errors_more": f"{total_errors - len(shown):,}" if total_errors > len(shown) else "",
        "errors_file": errors_name
        if any(a.name == errors_name for a, _ in enclosures.attached)
        else "",
        "errors_command": f"syncd jobs errors {report.job_id} -o {errors_name}"
        if total_errors
        else "",
        "attachments": [
            {"name": a.name, "size": _size(len(a.content)), "what": what}
            for a, what in enclosures.attached
        ],
        "withheld": [
            {"name": w.name, "size": _size(w.size), "what": w.what, "command": w.command}
            for w in enclosures.withheld
        ],
        "attach_max": _size(mail.attach_max_bytes),
        "held": _archived_section(report, enclosures),
    }
