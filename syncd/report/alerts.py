"""Alerts about a source rather than a job: no file came in time (`late`), and files
came again (`resumed`); see `syncd.staleness`, which decides when one is due.

An alert goes to the source's `notify` list through the outbox, like a job's report,
queued in the transaction that records the source's new state, so it exists exactly
when that state does. Its templates (`late.*`, `resumed.*`) share the reports' layout
and macros; their context has `source` and `alert` where a report's has `job`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import structlog
from sqlalchemy import Connection

from syncd.config import Config, MailConfig, SourceConfig
from syncd.report.compose import WIRE, recipients, sender_domain
from syncd.report.content import AlertKind, when
from syncd.report.templates import install_name, render_report
from syncd.store import outbox

log = structlog.get_logger("syncd.report")

TITLES: dict[AlertKind, str] = {
    "late": "No file in time",
    "resumed": "Files are coming again",
}
TONES: dict[AlertKind, str] = {"late": "bad", "resumed": "ok"}


@dataclass(frozen=True, slots=True)
class SourceAlert:
    """What an alert is made from.

    - `late_since`: when the source became late (its file was due);
    - `measured_from`: what that was counted from: its newest file (`last_file`,
      received then) or, when it never sent one (`last_file` None), the start of
      watching;
    - for `resumed`: the file that came (`file`) and when (`came_at`).
    """

    kind: AlertKind
    source: str
    late_since: datetime
    measured_from: datetime
    last_file: str | None = None
    file: str | None = None
    came_at: datetime | None = None


def expected_text(source: SourceConfig) -> str:
    """How often the source's files are expected, in words: "every 24h", which days count."""
    days = ", counting Monday to Friday only (UTC)" if source.business_days else ""
    return f"every {source.expect_every}{days}"


def alert_context(alert: SourceAlert, source: SourceConfig, install: str) -> dict[str, Any]:
    """The values an alert's templates are rendered with."""
    where = source.where
    return {
        "install_name": install,
        "kind": alert.kind,
        "title": TITLES[alert.kind],
        "tone": TONES[alert.kind],
        "source": {
            "name": source.name,
            "kind": source.kind,
            "mode": source.mode,
            "where": where,
            "expected": expected_text(source),
            "expect_every": source.expect_every or "",
            "business_days": source.business_days,
        },
        "alert": {
            "late_since": when(alert.late_since),
            "measured_from": when(alert.measured_from),
            "last_file": alert.last_file or "",
            "file": alert.file or "",
            "came_at": when(alert.came_at),
            "check": _what_to_check(source),
        },
        "attachments": [],
        "withheld": [],
    }


def _what_to_check(source: SourceConfig) -> list[str]:
    """Where an admin looks first when no file came, most likely cause first."""
    steps = ["that the export which sends these files ran, and did not fail"]
    if source.kind == "sftp":
        steps.append(
            f"that it uploads to {source.host} (port {source.port}) into "
            f"{source.remote_dir or '.'}, and that `syncd check` can log in there"
        )
    else:
        steps.append(f"that it writes into the folder {source.path}")
    steps.append(
        f"that the file's name matches {source.pattern} and does not end in .part or .tmp "
        "(those are never taken, nor are hidden files)"
    )
    steps.append("`syncd status` and `syncd jobs list` for what syncd last saw")
    return steps


def compose_alert(
    mail: MailConfig, source: SourceConfig, alert: SourceAlert, *, now: datetime
) -> EmailMessage | None:
    """The alert as a message, or None when the source names nobody to send it to."""
    to = recipients(source, alert.kind)
    if not to:
        return None
    rendered = render_report(mail, alert.kind, alert_context(alert, source, install_name(mail)))
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = mail.sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(
        idstring=f"{source.name}.{alert.kind}", domain=sender_domain(mail.sender)
    )
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834
    message["X-Syncd-Source"] = source.name
    message["X-Syncd-Report"] = alert.kind
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message


def queue_alert(
    conn: Connection, config: Config, alert: SourceAlert, *, now: datetime
) -> int | None:
    """Compose the alert and queue it in the outbox in the caller's transaction; its
    outbox id, or None when nobody is to get it. An alert that cannot be composed (a
    bug) is logged and left out rather than undoing the state it reports."""
    source = config.source(alert.source)
    try:
        message = compose_alert(config.mail, source, alert, now=now)
    except Exception:
        log.exception("alert_not_queued", source=source.name, kind=alert.kind)
        return None
    if message is None:
        log.info(
            "alert_not_queued",
            source=source.name,
            kind=alert.kind,
            reason="the source has no notify list",
        )
        return None
    to = str(message["To"]).split(", ")
    outbox_id = outbox.add_message(
        conn,
        message_id=str(message["Message-ID"]),
        recipients=to,
        subject=str(message["Subject"]),
        content=message.as_bytes(policy=WIRE),
        now=now,
        kind=alert.kind,
    )
    log.info(
        "alert_queued", source=source.name, kind=alert.kind, outbox_id=outbox_id,
        recipients=len(to),
    )  # fmt: skip
    return outbox_id
