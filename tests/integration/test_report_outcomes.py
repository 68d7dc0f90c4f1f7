"""Every outcome's report, queued with its job and delivered to a real SMTP server, read
back with the standard library's parser as a mail client reads it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import Connection, Engine
from structlog.testing import capture_logs

from syncd.config import Config, MailConfig, load_config
from syncd.core.counts import Counts
from syncd.core.guard import GuardLimits
from syncd.report import REPORT_KINDS, JobReport, ReportKind, deliver_pending, queue_report
from syncd.store import job_records, outbox
from tests.servers.smtp import SmtpServer
from tests.unit.test_report_compose import HR_FILE, STORED, job_report, parts, source

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
PASSWORD_ENV = {"SYNCD_SMTP_PASSWORD": "smtp-test-password"}
NOTIFY = ("it@example.com", "hr-systems@example.com")
APPROVERS = ("head-of-it@example.com",)
MANY = STORED + [
    {"key": f"E-2{i:03}", "email": f"p{i}@example.com", "status": "active"} for i in range(25)
]


def mail_for(server: SmtpServer | None, **values: Any) -> MailConfig:
    """Mail settings for the test server (no TLS, with its login), or .eml files."""
    settings: dict[str, Any] = {"sender": "syncd@example.com", "install_name": "hr-prod"}
    if server is not None:
        settings |= {
            "smtp_host": server.host,
            "smtp_port": server.port,
            "tls": "none",
            "starttls": False,
            "username": server.username,
            "password_env": "SYNCD_SMTP_PASSWORD",
            "timeout_seconds": 5,
        }
    return MailConfig(**(settings | values))


def config_for(mail: MailConfig, **source_values: Any) -> Config:
    return replace(load_config(None, env={}), mail=mail, sources=(source(**source_values),))


def insert_job(conn: Connection, job_id: str) -> None:
    job_records.insert_job(
        conn,
        job_id=job_id,
        source="hr",
        mode="full",
        file_name="users_2026-11-22.csv",
        sha256="0" * 64,
        size=1,
        now=T0,
    )


def queue(engine: Engine, config: Config, report: JobReport, *, now: datetime = T0) -> int | None:
    """Queue a report as a job's end does: the job and its report in one transaction."""
    with engine.begin() as conn:
        insert_job(conn, report.job_id)
        return queue_report(conn, config, report, now=now)


def report_of(kind: ReportKind, job_id: str = "0HZMJ-MWQ42") -> JobReport:
    """A report of `kind` for the HR file of the unit tests, as its job would make it."""
    if kind == "held":
        report = job_report(HR_FILE, stored=MANY, limits=GuardLimits(10, 500))
    elif kind == "dismissed":
        report = job_report(HR_FILE, stored=MANY, kind="dismissed")
    else:
        report = job_report(HR_FILE, stored=STORED, kind=kind)
    if kind in ("applied", "skipped"):  # every row valid: the good rows only
        clean = b"\r\n".join(HR_FILE.split(b"\r\n")[:3])
        report = job_report(clean, stored=STORED)
    if kind == "skipped":  # nothing ran: no counts, no files
        skipped = replace(report.outcome, status="skipped", skipped_of="0HZKQ-1B2C3")
        report = JobReport(outcome=replace(skipped, counts=Counts()), kind="skipped")
    return replace(report, outcome=replace(report.outcome, job_id=job_id))


#: What each kind's message carries, by attachment name suffix.
ATTACHED: dict[ReportKind, tuple[str, ...]] = {
    "applied": ("-changes.csv",),
    "applied_with_errors": (".csv", "-changes.csv"),
    "rejected": (".csv",),
    "held": (".csv", "-archived.csv"),
    "skipped": (),
    "approved": (".csv", "-changes.csv"),
    "dismissed": (".csv",),
}
SUBJECTS: dict[ReportKind, str] = {
    "applied": "Applied",
    "applied_with_errors": "Applied, 3 rows failed",
    "rejected": "Rejected, nothing applied",
    "held": "Held for approval: would archive 26 users",
    "skipped": "Skipped, identical to job 0HZKQ-1B2C3",
    "approved": "Approved and applied",
    "dismissed": "Dismissed, nothing applied",
}


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_each_outcome_arrives_with_its_subject_recipients_parts_and_attachments(
    kind: ReportKind, engine: Engine, smtp_server: SmtpServer
) -> None:
    """Queued in the job's transaction, sent by deliver_pending with a login: the server
    gets one message with the outcome's subject, both parts and the job's files."""
    report = report_of(kind)
    config = config_for(mail_for(smtp_server))
    outbox_id = queue(engine, config, report)
    assert outbox_id is not None
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0) == (1, 0, 0)
    (received,) = smtp_server.messages
    assert received.login == "syncd"
    assert received.mail_from == "syncd@example.com"
    expected_to = {
        "held": APPROVERS,
        "approved": NOTIFY + APPROVERS,
        "dismissed": NOTIFY + APPROVERS,
    }.get(kind, NOTIFY)
    assert received.rcpt_tos == expected_to
    message = received.parsed()
    assert message["Subject"] == f"[hr-prod] {SUBJECTS[kind]}: source hr, job 0HZMJ-MWQ42"
    assert message["To"] == ", ".join(expected_to)
    text, html, files = parts(message)
    for part in (text, html):
        assert "Quote job" in part
        assert "0HZMJ-MWQ42" in part
        assert "syncd on hr-prod" in part
    assert list(files) == [f"0HZMJ-MWQ42{suffix}" for suffix in ATTACHED[kind]]
    if "0HZMJ-MWQ42.csv" in files:
        assert files["0HZMJ-MWQ42.csv"] == report.errors_csv
    if "0HZMJ-MWQ42-changes.csv" in files:
        assert files["0HZMJ-MWQ42-changes.csv"] == report.changes_csv
    with engine.connect() as conn:
        stored = outbox.get_message(conn, outbox_id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.sent_at) == ("sent", 1, T0)
    assert stored.message_id == message["Message-ID"]
    assert received.data.replace(b"\r\n", b"\n") == stored.content.replace(b"\r\n", b"\n")


def test_a_script_or_a_formula_in_a_cell_arrives_harmless(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    """`<script>alert(1)</script>` is escaped text in the HTML part; `=HYPERLINK("x")`
    keeps its leading `'` in the attached errors CSV, and shows as received in the body."""
    config = config_for(mail_for(smtp_server))
    queue(engine, config, report_of("applied_with_errors"))
    deliver_pending(engine, config.mail, PASSWORD_ENV, T0)
    message: EmailMessage = smtp_server.messages[0].parsed()
    text, html, files = parts(message)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "=HYPERLINK(&#34;x&#34;)" in html
    errors_csv = files["0HZMJ-MWQ42.csv"].decode("utf-8-sig")
    assert '"\'=HYPERLINK(""x"")"' in errors_csv
    assert ",<script>alert(1)</script>," in errors_csv  # text in a CSV, for a spreadsheet
    assert '"=HYPERLINK("x")"' in text


def test_no_clear_password_appears_in_any_delivered_message_or_log(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    """An agents file whose rows carry passwords, one failing: neither the message's
    bytes nor any logged event holds a password, the file's or the SMTP login's."""
    agents = (
        "email,first_name,last_name,password,active\r\n"
        "maria.garcia@example.com,María,García,Pl4ya-del-Sol,true\r\n"
        "thomas.mueller@example,Thomas,Müller,Z7ugspitze!,true\r\n"
    ).encode()
    report = job_report(agents, profile="agents")
    config = config_for(mail_for(smtp_server), profile="agents")
    with capture_logs() as logs:
        queue(engine, config, report)
        deliver_pending(engine, config.mail, PASSWORD_ENV, T0)
    (received,) = smtp_server.messages
    text, html, files = parts(received.parsed())
    everything = [received.data.decode("ascii", "replace"), text, html, repr(logs)]
    everything += [content.decode("utf-8") for content in files.values()]
    for secret in ("Pl4ya-del-Sol", "Z7ugspitze!", "smtp-test-password"):
        assert not any(secret in chunk for chunk in everything)
    assert "\r\nthomas.mueller@example,Thomas,Müller,,true," in files["0HZMJ-MWQ42.csv"].decode()


def test_a_job_whose_source_notifies_nobody_queues_nothing(engine: Engine) -> None:
    """No recipients, no message: the outbox stays empty."""
    config = config_for(mail_for(None), notify=(), approvers=())
    assert queue(engine, config, report_of("applied")) is None
    with engine.connect() as conn:
        assert outbox.list_outbox(conn) == []


def test_a_report_rolled_back_with_its_job_is_never_sent(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    """The report is written in the job's transaction: no job end, no report."""
    config = config_for(mail_for(smtp_server))

    def failing_job() -> None:
        with engine.begin() as conn:
            insert_job(conn, "0HZMJ-MWQ42")
            queue_report(conn, config, report_of("applied"), now=T0)
            raise RuntimeError("the job failed")

    with pytest.raises(RuntimeError, match="the job failed"):
        failing_job()
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0 + timedelta(minutes=1)) == (
        0,
        0,
        0,
    )
    assert smtp_server.messages == []


def test_a_report_that_cannot_be_composed_is_logged_and_the_job_still_ends(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while rendering leaves the job's transaction alone: the job is stored,
    no report is queued, and the log says which job went without one."""
    from syncd.report import compose

    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(compose, "render_report", broken)
    config = config_for(mail_for(None))
    with capture_logs() as logs:
        assert queue(engine, config, report_of("applied")) is None
    with engine.connect() as conn:
        assert job_records.get_job(conn, "0HZMJ-MWQ42") is not None
        assert outbox.list_outbox(conn) == []
    (event,) = [e for e in logs if e["event"] == "report_not_queued"]
    assert (event["job_id"], event["log_level"]) == ("0HZMJ-MWQ42", "error")
