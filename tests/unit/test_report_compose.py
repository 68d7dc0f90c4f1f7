"""Composing a report: its recipients, parts, attachments and their size cap, from files
read, validated and planned as a job does it."""

from __future__ import annotations

import csv
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import polars as pl
import pytest

from syncd.config import Config, MailConfig, SourceConfig, load_config
from syncd.core.changes import CHANGE_COLUMNS, archived_users, plan_changes, render_changes_csv
from syncd.core.errors_csv import render_errors_csv
from syncd.core.guard import GuardLimits, judge
from syncd.core.passwords import password_tags
from syncd.core.plan import build_plan, slim_snapshot
from syncd.core.records import Validated
from syncd.core.table import RowError
from syncd.intake import Drop, check
from syncd.outcome import JobOutcome
from syncd.report import JobReport, ReportKind, compose_report, recipients, report_kind
from syncd.report.content import received_values

RECEIVED = datetime(2026, 11, 22, 3, 0, 4, tzinfo=UTC)
NOW = RECEIVED + timedelta(seconds=5)
MAIL = MailConfig(sender="syncd@example.com", install_name="hr-prod")
HR_HEADER = (
    "Employee ID,Primary Email,First Name,Last Name,Display Name,Current Status,Role,Groups,"
    "Department,Start Date,Cost Center,Phone"
)
#: Yesterday's users of the HR directory: E-1001 gets a new email, E-0900 left.
STORED = [
    {"key": "E-1001", "email": "zoe.k@example.com", "first_name": "Zoë", "status": "active"},
    {"key": "E-1002", "email": "jose.nunez@example.com", "first_name": "Jose", "status": "active"},
    {"key": "E-0900", "email": "left@example.com", "first_name": "Lee", "status": "active"},
]
#: Tonight's file: two good rows, one that fails in two columns, one that would run a
#: formula in a spreadsheet and one that would run a script in a browser.
HR_FILE = "\r\n".join(
    [
        HR_HEADER,
        "E-1001,zoe.kowalczyk@example.com,Zoë,Kowalczyk,Zoë Kowalczyk,Active,Admin,"
        '"Engineering,Support",Engineering,2019-03-04,CC-100,+48 22 555 0101',
        "E-1002,jose.nunez@example.com,José,Núñez,José Núñez,Active,User,Sales,Sales,"
        "2021-11-15,CC-200,+34 91 555 0102",
        "E-1003,anna.berg@example,Anna,Berg,Anna Berg,Active,User,Sales,Sales,2024-02-30,CC-200,",
        'E-1004,=HYPERLINK("x"),Hugo,Lind,Hugo Lind,Active,User,Sales,Sales,2024-01-02,CC-200,',
        "E-1005,eve@example.com,Eve,Ek,Eve Ek,Active,<script>alert(1)</script>,Sales,Sales,"
        "2024-01-02,CC-200,",
    ]
).encode()


def source(**values: Any) -> SourceConfig:
    settings: dict[str, Any] = {
        "name": "hr",
        "kind": "local",
        "profile": "hr_full",
        "mode": "full",
        "directory": "hr",
        "processed_dir": "processed",
        "failed_dir": "failed",
        "notify": ("it@example.com", "hr-systems@example.com"),
        "approvers": ("head-of-it@example.com",),
        "send_changes": True,
    }
    return SourceConfig(**(settings | values))


def config() -> Config:
    return replace(load_config(None, env={}), mail=MAIL, sources=(source(),))


def _directory(users: list[dict[str, Any]], validated: Validated) -> tuple[pl.DataFrame, ...]:
    """The snapshot and details frames of `users` (no fingerprints: all compared)."""
    fields = [f for f in validated.fields if f != "password"]
    snapshot = slim_snapshot(pl.DataFrame(
        {
            "user_id": list(range(1, len(users) + 1)),
            "key": [u["key"] for u in users],
            "email_lc": [u["email"].lower() for u in users],
            "status": [u["status"] for u in users],
            "fingerprint": [None] * len(users),
        },
        schema={"user_id": pl.Int64, "key": pl.String, "email_lc": pl.String,
                "status": pl.String, "fingerprint": pl.Int64},
    ))  # fmt: skip
    columns: dict[str, Any] = {"user_id": snapshot["user_id"]}
    for name in fields:
        dtype = validated.records.schema[name]
        columns[name] = pl.Series(name, [u.get(name) for u in users], dtype=dtype)
    columns["password_tag"] = pl.Series("password_tag", [None] * len(users), pl.String)
    return snapshot, pl.DataFrame(columns)


def job_report(
    data: bytes,
    *,
    profile: str = "hr_full",
    stored: list[dict[str, Any]] | None = None,
    kind: ReportKind | None = None,
    limits: GuardLimits | None = None,
    file: str = "users_2026-11-22.csv",
) -> JobReport:
    """A file read, validated, planned and guarded as a job does it, as its report's
    input; `kind` forces the report (approved, dismissed) or a rejection."""
    settings = config()
    checked = check(settings, settings.profiles[profile], Drop(file, data))
    validated = checked.validated
    assert validated is not None, checked.problems
    records = validated.records
    if "password" in records.columns:
        tags = password_tags(records["key"], records["password"], b"secret")
        validated = replace(validated, records=records.with_columns(tags))
    snapshot, details = _directory(stored or [], validated)
    plan, conflicts = build_plan(validated, snapshot, details, mode="full")
    errors = tuple(sorted((*validated.errors, *conflicts), key=lambda e: e.row))
    verdict = judge(plan, limits or GuardLimits(None, None))
    changes = plan_changes(plan, details)
    status = "held" if verdict.hold else ("applied_with_errors" if errors else "applied")
    if kind in ("rejected", "skipped", "dismissed"):
        status = kind
    outcome = JobOutcome(
        job_id="0HZMJ-MWQ42",
        status=status,
        source="hr",
        mode="full",
        file=file,
        encoding=validated.table.encoding,
        counts=plan.counts,
        messages=(*verdict.reasons, *validated.notices),
        row_errors=errors[:20],
        row_error_total=len(errors),
        skipped_of="0HZKQ-1B2C3" if kind == "skipped" else None,
        created_at=RECEIVED,
        finished_at=NOW,
    )
    return JobReport(
        outcome=outcome,
        kind=kind or status,  # type: ignore[arg-type]
        errors_csv=render_errors_csv(validated.table, errors) if errors else None,
        changes_csv=render_changes_csv(changes),
        archived=archived_users(changes) if verdict.hold else None,
        thresholds=verdict.reasons,
        delimiter=validated.table.delimiter,
    )


def parsed(report: JobReport, mail: MailConfig = MAIL, **values: Any) -> EmailMessage:
    """The composed message, serialised and parsed back as a mail client would."""
    composed = compose_report(mail, source(**values), report, now=NOW)
    assert composed is not None
    message = BytesParser(policy=email.policy.default).parsebytes(composed.as_bytes())
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str, dict[str, bytes]]:
    """The plain text, the HTML and the attachments (name -> bytes) of a message."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    files = {}
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        files[part.get_filename() or ""] = payload
    return text.get_content(), html.get_content(), files


def test_a_report_with_failed_rows_carries_the_errors_csv_byte_for_byte() -> None:
    """Subject, headers, both parts and `<job_id>.csv` exactly as the job wrote it."""
    report = job_report(HR_FILE, stored=STORED)
    message = parsed(report)
    assert message["Subject"] == "[hr-prod] Applied, 3 rows failed: source hr, job 0HZMJ-MWQ42"
    assert (message["From"], message["To"]) == (
        "syncd@example.com",
        "it@example.com, hr-systems@example.com",
    )
    assert message["Message-ID"].endswith("@example.com>")
    assert "0HZMJ-MWQ42" in message["Message-ID"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Sun, 22 Nov 2026 03:00:09 +0000"
    text, html, files = parts(message)
    assert list(files) == ["0HZMJ-MWQ42.csv", "0HZMJ-MWQ42-changes.csv"]
    assert files["0HZMJ-MWQ42.csv"] == report.errors_csv
    assert files["0HZMJ-MWQ42-changes.csv"] == report.changes_csv
    for part in (text, html):
        assert "Quote job" in part
        assert "0HZMJ-MWQ42" in part
        assert "users_2026-11-22.csv" in part
        assert "2026-11-22 03:00:04 UTC" in part
        assert "comma (,)" in part
        assert "syncd on hr-prod" in part


def test_the_changes_csv_says_who_was_renamed_and_archived() -> None:
    """The attached changes list E-1001's new email and E-0900, absent from the file."""
    files = parts(parsed(job_report(HR_FILE, stored=STORED)))[2]
    changes = files["0HZMJ-MWQ42-changes.csv"].decode("utf-8-sig")
    assert "rename,E-1001,zoe.kowalczyk@example.com,email,zoe.k@example.com," in changes
    assert "archive,E-0900,left@example.com,reason,,absent from the file" in changes


def test_row_errors_show_the_value_as_received_escaped_in_html() -> None:
    """Row, column, value from the errors CSV, message; a script is text in the HTML and
    a formula keeps its `'` in the attached CSV."""
    report = job_report(HR_FILE, stored=STORED)
    text, html, files = parts(parsed(report))
    assert '- row 4, Primary Email = "anna.berg@example":' in text
    assert '- row 5, Primary Email = "=HYPERLINK("x")":' in text
    assert "<script>alert(1)</script>" in text  # plain text: nothing runs it
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "=HYPERLINK(&#34;x&#34;)" in html
    assert b'\'=HYPERLINK(""x"")' in files["0HZMJ-MWQ42.csv"]


def test_a_held_report_goes_to_the_approvers_with_the_users_and_the_commands() -> None:
    """Who would be archived (the first 20 listed, all in an attached CSV), the thresholds
    crossed, and the approve and reject commands."""
    stored = STORED + [
        {"key": f"E-2{i:03}", "email": f"p{i}@example.com", "status": "active"} for i in range(25)
    ]
    report = job_report(HR_FILE, stored=stored, limits=GuardLimits(10, 500))
    assert report.kind == "held"
    message = parsed(report)
    assert message["To"] == "head-of-it@example.com"
    assert message["Subject"] == (
        "[hr-prod] Held for approval: would archive 26 users: source hr, job 0HZMJ-MWQ42"
    )
    text, html, files = parts(message)
    assert list(files) == ["0HZMJ-MWQ42.csv", "0HZMJ-MWQ42-archived.csv"]
    archived = files["0HZMJ-MWQ42-archived.csv"].decode("utf-8-sig").splitlines()
    assert archived[0] == "key,email,reason"
    assert len(archived) == 27
    for part in (text, html):
        assert "syncd jobs approve 0HZMJ-MWQ42" in part
        assert "syncd jobs reject 0HZMJ-MWQ42" in part
        assert "above max_archive_percent = 10" in part
        assert "E-0900" in part
        assert "p18@example.com" in part
        assert "p19@example.com" not in part  # the 21st user is in the attached CSV only
    assert "and 6 more" in text


def test_a_held_report_of_few_users_lists_them_all_without_a_csv() -> None:
    """Twenty users or fewer: all in the message, no archived CSV."""
    report = job_report(HR_FILE, stored=STORED, limits=GuardLimits(None, 0))
    assert report.kind == "held"
    text, _, files = parts(parsed(report))
    assert "0HZMJ-MWQ42-archived.csv" not in files
    assert "E-0900  left@example.com  (absent from the file)" in text


@pytest.mark.parametrize(
    ("kind", "to"),
    [
        ("applied", ("it@example.com", "hr-systems@example.com")),
        ("held", ("head-of-it@example.com",)),
        ("approved", ("it@example.com", "hr-systems@example.com", "head-of-it@example.com")),
        ("dismissed", ("it@example.com", "hr-systems@example.com", "head-of-it@example.com")),
    ],
)
def test_reports_go_to_notify_and_held_ones_to_the_approvers(
    kind: ReportKind, to: tuple[str, ...]
) -> None:
    """A decision is told to both lists, each address once."""
    assert recipients(source(), kind) == to
    assert recipients(source(approvers=("IT@example.com",)), "approved") == (
        "it@example.com",
        "hr-systems@example.com",
    )


def test_a_source_that_notifies_nobody_gets_no_message() -> None:
    """No notify list: nothing is composed (and so nothing queued)."""
    report = job_report(HR_FILE, stored=STORED)
    assert compose_report(MAIL, source(notify=(), approvers=()), report, now=NOW) is None


def test_the_changes_csv_follows_send_changes_and_is_left_out_when_empty() -> None:
    """send_changes = false leaves the changes CSV out; a job that changed nobody has
    none to send."""
    report = job_report(HR_FILE, stored=STORED)
    assert "0HZMJ-MWQ42-changes.csv" not in parts(parsed(report, send_changes=False))[2]
    empty = pl.DataFrame(schema=dict.fromkeys(CHANGE_COLUMNS, pl.String))
    unchanged = replace(report, changes_csv=render_changes_csv(empty))
    assert list(parts(parsed(unchanged))[2]) == ["0HZMJ-MWQ42.csv"]
    rejected = job_report(HR_FILE, stored=STORED, kind="rejected")
    assert list(parts(parsed(rejected))[2]) == ["0HZMJ-MWQ42.csv"]


def test_files_past_the_size_cap_are_named_with_the_command_that_gives_them() -> None:
    """attach_max_bytes counts all attachments: what does not fit is left out, and the
    report says how to get it."""
    report = job_report(HR_FILE, stored=STORED)
    assert report.errors_csv is not None
    small = replace(MAIL, attach_max_bytes=len(report.errors_csv))
    text, html, files = parts(parsed(report, small))
    assert list(files) == ["0HZMJ-MWQ42.csv"]
    assert "syncd jobs changes 0HZMJ-MWQ42 -o 0HZMJ-MWQ42-changes.csv" in text
    assert "syncd jobs changes 0HZMJ-MWQ42 -o 0HZMJ-MWQ42-changes.csv" in html
    nothing = replace(MAIL, attach_max_bytes=0)
    text, _, files = parts(parsed(report, nothing))
    assert files == {}
    assert "syncd jobs errors 0HZMJ-MWQ42 -o 0HZMJ-MWQ42.csv" in text


def test_no_clear_password_appears_in_any_part_or_attachment() -> None:
    """An agents file with passwords, one row failing: its password cell is blank in the
    errors CSV, and no password is in the message's bytes, decoded or not."""
    agents = (
        "email,first_name,last_name,password,active\r\n"
        "maria.garcia@example.com,María,García,Pl4ya-del-Sol,true\r\n"
        "thomas.mueller@example,Thomas,Müller,Z7ugspitze!,true\r\n"
        "eloise.martin@example.com,Éloïse,Martin,croissant42,maybe\r\n"
    ).encode()
    stored = [{"key": "maria.garcia@example.com", "email": "maria.garcia@example.com",
               "first_name": "María", "status": "active"}]  # fmt: skip
    report = job_report(agents, profile="agents", stored=stored)
    composed = compose_report(MAIL, source(profile="agents"), report, now=NOW)
    assert composed is not None
    raw = composed.as_bytes()
    text, html, files = parts(parsed(report, profile="agents"))
    everything = raw.decode("ascii", "replace") + text + html
    everything += "".join(f.decode("utf-8") for f in files.values())
    for secret in ("Pl4ya-del-Sol", "Z7ugspitze!", "croissant42"):
        assert secret not in everything
    assert "update,maria.garcia@example.com,maria.garcia@example.com,password,," in everything


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_values_as_received_are_read_from_an_errors_csv_of_any_delimiter(delimiter: str) -> None:
    """The n-th failed row is the n-th line; the delimiter is the one before `errors`."""
    d = delimiter
    content = (
        f'\ufeffEmail{d}Name{d}errors\r\nbad{d}"a{d}b"{d}Email: bad\r\nx@y{d}\'=1+1{d}Name: no\r\n'
    ).encode()
    errors = (RowError(7, "Email", "bad"), RowError(12, "Name", "no"))
    assert received_values(content, errors) == {
        7: {"Email": "bad", "Name": f"a{d}b"},
        12: {"Email": "x@y", "Name": "=1+1"},
    }


def test_a_file_name_with_line_breaks_and_escapes_is_shown_on_one_line_and_inert() -> None:
    """A sender's name cannot start a line of its own in the report, nor carry ESC or a
    direction override into it: those characters are shown escaped."""
    data = b"Employee ID,Primary Email\r\nE1,a@example.com\r\nE2,\x1b[31mb\r\n"
    name = "line\nbreak\rStatus: applied\x1b[2J\u202evsc.csv"
    text, html, _ = parts(parsed(job_report(data, file=name)))
    for part in (text, html):
        assert not [ch for ch in part if ch in "\x1b\u202e"]
    assert "File:       line\\nbreak\\rStatus: applied\\x1b[2J\\u202evsc.csv\r\n" in text
    assert "'\\x1b[31mb' is not a valid email address" in text


def test_a_cell_past_the_csv_modules_field_limit_is_read_and_shown_cut() -> None:
    """A 10 MB cell (a row error of its own) is read back from the errors CSV whatever
    limit an earlier file left Python's csv module with, and shown cut short."""
    cell = "x" * 10_000_000
    data = (
        f"Employee ID,Primary Email,Last Name\r\nE1,a@example.com,{cell}\r\n"
        "E2,b@example.com,Ødegård\r\n"
    ).encode()
    before = csv.field_size_limit(131_072)  # the module's default
    try:
        message = parsed(job_report(data, profile="hr_full"))
    finally:
        csv.field_size_limit(before)
    text, html, attached = parts(message)
    assert "more than the 1,000,000 allowed" in text
    assert "xxxx…" in html
    assert cell not in text + html
    assert "syncd jobs errors 0HZMJ-MWQ42" in text  # past attach_max_bytes: not attached
    assert "0HZMJ-MWQ42.csv" not in attached


@pytest.mark.parametrize(
    ("status", "approved", "kind"),
    [
        ("applied", False, "applied"),
        ("applied_with_errors", True, "approved"),
        ("held", False, "held"),
        ("dismissed", False, "dismissed"),
        ("running", False, None),
        ("interrupted", False, None),
    ],
)
def test_a_job_status_calls_for_the_report_of_its_outcome(
    status: str, approved: bool, kind: ReportKind | None
) -> None:
    """An ended job gets the report of its status; approval its own; no end, no report."""
    outcome = job_report(HR_FILE, stored=STORED).outcome
    assert report_kind(replace(outcome, status=status), approved=approved) == kind
