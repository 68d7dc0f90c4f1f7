"""Sample reports and alerts of every kind, for checking templates before a real job
(or a late source) needs them.

The samples go through `report_context` like a real job's, so a template that renders
them renders any report: each kind is rendered with its files attached and with them
too big to attach, and a held job with few and with many users to archive. An alert is
rendered for an SFTP source that sent files and for a local one that never did.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from syncd.config import MailConfig, SourceConfig
from syncd.core.changes import render_changes_csv
from syncd.core.counts import Counts
from syncd.core.table import RowError
from syncd.outcome import JobOutcome
from syncd.report.alerts import SourceAlert, alert_context
from syncd.report.content import (
    AlertKind,
    JobReport,
    MailKind,
    ReportKind,
    report_context,
)

SAMPLE_JOB_ID = "0HZMJ-MWQ42"
_RECEIVED = datetime(2026, 11, 22, 3, 0, 4, tzinfo=UTC)
_FINISHED = datetime(2026, 11, 22, 3, 0, 9, tzinfo=UTC)
_ERRORS_CSV = (
    "\ufeffEmployee ID,Primary Email,First Name,Start Date,errors\r\n"
    'E-1007,anna.berg@example,Anna,2024-02-30,"Primary Email: not an email address\n'
    'Start Date: not a date (yyyy-mm-dd)"\r\n'
    'E-1012,lars@example.com,\'=HYPERLINK("x"),2023-01-09,First Name: bad\r\n'
).encode()
_ERRORS = (
    RowError(3, "Primary Email", "'anna.berg@example' is not an email address"),
    RowError(3, "Start Date", "'2024-02-30' is not a date (yyyy-mm-dd)"),
    RowError(9, "First Name", "<script>alert(1)</script> is not a name"),
)


def _changes() -> pl.DataFrame:
    rows = [
        ("create", "E-1020", "mia.koch@example.com", "", "", ""),
        ("update", "E-1002", "jose.nunez@example.com", "department", "Sales", "Support"),
        ("rename", "E-1003", "b.astrom@example.com", "email", "bjorn@example.com",
         "b.astrom@example.com"),
        ("archive", "E-0999", "old@example.com", "reason", "", "absent from the file"),
    ]  # fmt: skip
    return pl.DataFrame(
        rows, schema=["change", "key", "email", "field", "old", "new"], orient="row"
    )


def _archived(count: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "key": [f"E-{2000 + i}" for i in range(count)],
            "email": [f"person{i}@example.com" for i in range(count)],
            "reason": ["absent from the file"] * count,
        }
    )


def sample_report(kind: ReportKind, archived: int = 25) -> JobReport:
    """A plausible report of `kind` for an hr_full file."""
    failed = kind in ("applied_with_errors", "rejected", "approved")
    counts = Counts(
        rows=240, valid=238 if failed else 240, invalid=2 if failed else 0, created=3,
        updated=5, unchanged=229, archived=archived if kind in ("held", "dismissed") else 1,
        reactivated=1, email_changed=1,
    )  # fmt: skip
    thresholds = (f"would archive {archived} of 240 active users, above max_archive_percent = 10",)
    outcome = JobOutcome(
        job_id=SAMPLE_JOB_ID,
        status={"approved": "applied_with_errors"}.get(kind, kind),
        source="hr",
        mode="full",
        file="users_2026-11-22.csv",
        encoding="utf-8",
        counts=counts,
        messages=(*(thresholds if kind == "held" else ()), "the column 'Badge' is not read"),
        row_errors=_ERRORS if failed else (),
        row_error_total=len(_ERRORS) if failed else 0,
        skipped_of="0HZKQ-1B2C3" if kind == "skipped" else None,
        created_at=_RECEIVED,
        finished_at=_FINISHED,
    )
    return JobReport(
        outcome=outcome,
        kind=kind,
        errors_csv=_ERRORS_CSV if failed else None,
        changes_csv=render_changes_csv(_changes()),
        archived=_archived(archived) if kind == "held" else None,
        thresholds=thresholds if kind == "held" else (),
        delimiter=",",
    )


def sample_source() -> SourceConfig:
    return SourceConfig(
        name="hr",
        kind="local",
        profile="hr_full",
        mode="full",
        directory="hr",
        processed_dir="processed",
        failed_dir="failed",
        notify=("it@example.com",),
        approvers=("it@example.com",),
        send_changes=True,
    )


def sample_alert(kind: AlertKind, *, last_file: str | None = "users_2026-11-21.csv") -> SourceAlert:
    """A plausible alert of `kind` for a source expecting a file every 24 hours."""
    return SourceAlert(
        kind=kind,
        source="hr",
        late_since=_RECEIVED,
        measured_from=_RECEIVED - timedelta(hours=24),
        last_file=last_file,
        file="users_2026-11-23.csv" if kind == "resumed" else None,
        came_at=_FINISHED + timedelta(days=1) if kind == "resumed" else None,
    )


def sample_sftp_source() -> SourceConfig:
    return SourceConfig(
        name="hr",
        kind="sftp",
        profile="hr_full",
        mode="full",
        directory="hr",
        processed_dir="/drop/processed",
        failed_dir="/drop/failed",
        notify=("it@example.com",),
        host="sftp.example.com",
        username="syncd",
        remote_dir="/drop",
        expect_every="24h",
        business_days=True,
    )


def sample_contexts(kind: MailKind, mail: MailConfig) -> list[dict[str, Any]]:
    """The contexts a template of `kind` is checked with."""
    name = mail.install_name or "syncd.example.com"
    if kind == "late" or kind == "resumed":
        local = replace(sample_source(), path=Path("/srv/drop/hr"), expect_every="2d")
        return [
            alert_context(sample_alert(kind), sample_sftp_source(), name),
            alert_context(sample_alert(kind, last_file=None), local, name),
        ]
    source = sample_source()
    reports = [sample_report(kind)]
    if kind == "held":
        reports.append(sample_report(kind, archived=4))
    contexts = [report_context(r, source, mail, name) for r in reports]
    small = replace(mail, attach_max_bytes=0)
    contexts.append(report_context(reports[0], source, small, name))
    return contexts
