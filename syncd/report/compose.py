"""Composing a job's report and queueing it in the outbox, in the job's transaction.

A report is one `EmailMessage`: a plain-text and an HTML part (multipart/alternative)
and the files that go with it (`syncd.report.content.plan_attachments`). It goes to the
source's `notify` list, except the report of a held job, which goes to its `approvers`
(the people who decide it); the outcome of that decision goes to both. A job nobody is
to hear about queues nothing.

The message is rendered whole when it is queued, with its `Message-ID` and `Date`, and
stored as bytes: whatever sends it later (and however often a crash makes it try) sends
these same bytes, so a reader's mail client shows a duplicate once.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import structlog
from sqlalchemy import Connection

from syncd.config import Config, MailConfig, SourceConfig
from syncd.report.content import (
    JobReport,
    MailKind,
    ReportKind,
    plan_attachments,
    report_context,
)
from syncd.report.templates import install_name, render_report
from syncd.store import outbox

log = structlog.get_logger("syncd.report")

#: Headers are written on one line each (RFC 5322 allows 998 characters): Python's
#: folding breaks some subjects before their first word, which its own parser (and so a
#: reader's script) then reads with a leading space. Bodies are encoded in short lines.
WIRE = email.policy.SMTP.clone(max_line_length=998)
#: Who hears about each kind of report: a source's notify list, or its approvers.
_DECIDERS: frozenset[ReportKind] = frozenset({"held"})
_BOTH: frozenset[ReportKind] = frozenset({"approved", "dismissed"})


@dataclass(frozen=True, slots=True)
class ComposedReport:
    """A report ready to queue: who gets it, and the message."""

    job_id: str
    kind: ReportKind
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def as_bytes(self) -> bytes:
        """The message as RFC 5322 bytes, CRLF line ends, as SMTP sends it."""
        return self.message.as_bytes(policy=WIRE)


def recipients(source: SourceConfig, kind: MailKind) -> tuple[str, ...]:
    """Who gets a report (or an alert) of `kind` from `source`, each address once."""
    if kind in _DECIDERS:
        wanted: tuple[str, ...] = source.approvers or source.notify
    elif kind in _BOTH:
        wanted = (*source.notify, *source.approvers)
    else:
        wanted = source.notify
    seen: set[str] = set()
    unique = []
    for address in wanted:
        if address.casefold() not in seen:
            seen.add(address.casefold())
            unique.append(address)
    return tuple(unique)


def sender_domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "localhost"


def compose_report(
    mail: MailConfig, source: SourceConfig, report: JobReport, *, now: datetime
) -> ComposedReport | None:
    """The report of one job, or None when its source names nobody to send it to."""
    to = recipients(source, report.kind)
    if not to:
        return None
    enclosures = plan_attachments(report, source, mail)
    context = report_context(report, source, mail, install_name(mail), enclosures)
    rendered = render_report(mail, report.kind, context)
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = mail.sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(idstring=report.job_id, domain=sender_domain(mail.sender))
    # RFC 3834: an automatic message, which auto-responders leave alone.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Syncd-Job"] = report.job_id
    message["X-Syncd-Report"] = report.kind
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    for attachment, _ in enclosures.attached:
        # As bytes, base64: the CSV arrives byte for byte (BOM, CRLF and all).
        message.add_attachment(
            attachment.content, maintype="text", subtype="csv", filename=attachment.name
        )
    return ComposedReport(report.job_id, report.kind, to, message)


def queue_report(
    conn: Connection, config: Config, report: JobReport, *, now: datetime
) -> int | None:
    """Compose the report of a job and queue it in the outbox, in the caller's
    transaction (the one that ends the job, so the report exists exactly when the job's
    end does); its outbox id, or None when nobody is to get it. A report that cannot be
    composed (a bug) is logged and left out rather than rolling back the job; a database
    error is the transaction's and is raised."""
    source = next((s for s in config.sources if s.name == report.outcome.source), None)
    if source is None:
        log.warning(
            "report_not_queued",
            job_id=report.job_id,
            source=report.outcome.source,
            reason="the source is no longer configured",
        )
        return None
    try:
        composed = compose_report(config.mail, source, report, now=now)
    except Exception:
        # A report that cannot be made must not undo the job it reports on.
        log.exception("report_not_queued", job_id=report.job_id, source=source.name)
        return None
    if composed is None:
        log.info(
            "report_not_queued",
            job_id=report.job_id,
            source=source.name,
            reason="the source has no notify list",
        )
        return None
    outbox_id = outbox.add_message(
        conn,
        message_id=composed.message_id,
        recipients=composed.recipients,
        subject=composed.subject,
        content=composed.as_bytes(),
        now=now,
        job_id=report.job_id,
        kind=report.kind,
    )
    log.info(
        "report_queued",
        job_id=report.job_id,
        source=source.name,
        kind=report.kind,
        outbox_id=outbox_id,
        recipients=len(composed.recipients),
    )
    return outbox_id
