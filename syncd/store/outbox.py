"""The outbox: report emails written in the same transaction as the job result.

A message is `pending` until sent; a failed attempt stays `pending` with a later
`next_attempt_at`, until the sender gives up and marks it `failed`. So an SMTP outage only
delays reports; none is lost, and none is sent for a job whose transaction rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, insert, select, update

from syncd.store.schema import outbox

OutboxStatus = Literal["pending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a report: the errors CSV."""

    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One report email as stored."""

    id: int
    job_id: str | None
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str | None
    attachment: Attachment | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def _message(row: Row[Any]) -> OutboxMessage:
    values = row._asdict()
    name, content = values.pop("attachment_name"), values.pop("attachment")
    attachment = None if name is None or content is None else Attachment(name, content)
    values["recipients"] = tuple(values["recipients"])
    return OutboxMessage(attachment=attachment, **values)


def add_message(
    conn: Connection,
    *,
    recipients: Sequence[str],
    subject: str,
    text: str,
    now: datetime,
    html: str | None = None,
    attachment: Attachment | None = None,
    job_id: str | None = None,
) -> int:
    """Queue a message for sending as soon as possible; returns its id."""
    message_id = conn.scalar(
        insert(outbox)
        .values(
            job_id=job_id,
            recipients=list(recipients),
            subject=subject,
            text=text,
            html=html,
            attachment_name=None if attachment is None else attachment.name,
            attachment=None if attachment is None else attachment.content,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(outbox.c.id)
    )
    if message_id is None:
        raise RuntimeError("the database did not return the new outbox message's id")
    return int(message_id)


def list_messages(
    conn: Connection,
    *,
    status: OutboxStatus | None = None,
    due_at: datetime | None = None,
    job_id: str | None = None,
    limit: int | None = None,
) -> list[OutboxMessage]:
    """Messages, oldest first; `due_at` keeps only pending ones whose next attempt is due."""
    query = select(outbox).order_by(outbox.c.id)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if due_at is not None:
        query = query.where(outbox.c.status == "pending", outbox.c.next_attempt_at <= due_at)
    if job_id is not None:
        query = query.where(outbox.c.job_id == job_id)
    return [_message(row) for row in conn.execute(query.limit(limit))]


def mark_sent(conn: Connection, message_id: int, *, now: datetime) -> None:
    """Record that a message went out."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id)
        .values(status="sent", sent_at=now, attempts=outbox.c.attempts + 1, last_error=None)
    )


def mark_failed(
    conn: Connection, message_id: int, *, error: str, retry_at: datetime | None
) -> None:
    """Record a failed attempt: retry at `retry_at`, or give up (status failed) if None."""
    values: dict[str, object] = {"attempts": outbox.c.attempts + 1, "last_error": error}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    conn.execute(update(outbox).where(outbox.c.id == message_id).values(values))
