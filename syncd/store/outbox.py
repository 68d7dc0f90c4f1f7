"""The outbox: report emails written in the same transaction as the job result.

Each message is stored whole: its `Message-ID`, recipients and the rendered RFC 5322
bytes (`content`), so every attempt sends the same bytes. Its life:

- `pending` until it is due (`next_attempt_at`);
- `sending` while one sender holds it: claiming sets a short lease in
  `next_attempt_at`, so a sender that dies mid-way leaves a message that is due again
  once the lease runs out (sent at most twice, with one Message-ID);
- `sent`, or back to `pending` with a later `next_attempt_at` after a temporary failure,
  or `failed` (given up, `last_error` says why).

So an SMTP outage only delays reports; none is lost, and none is sent for a job whose
transaction rolled back. `claim_due` takes the next due message with `FOR UPDATE SKIP
LOCKED` on PostgreSQL (two daemons never take the same one); SQLite has one writer at a
time, and the claim re-checks the message's state in its UPDATE on both.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Literal

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from syncd.store.schema import outbox

OutboxStatus = Literal["pending", "sending", "sent", "failed"]
#: Statuses a message may be taken in: pending, or sending with its lease run out.
_TAKEABLE = ("pending", "sending")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a report: its name and bytes."""

    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One queued report as `syncd outbox list` shows it (without its bytes)."""

    id: int
    job_id: str | None
    kind: str | None
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One report email as stored, with its bytes."""

    id: int
    job_id: str | None
    kind: str | None
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    content: bytes
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    def parsed(self) -> EmailMessage:
        """The stored bytes as a message (modern email policy)."""
        message = BytesParser(policy=email.policy.default).parsebytes(self.content)
        if not isinstance(message, EmailMessage):
            raise TypeError("the email parser did not give an EmailMessage")
        return message

    def attachments(self) -> tuple[Attachment, ...]:
        """The files the message carries, byte for byte."""
        found = []
        for part in self.parsed().iter_attachments():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append(Attachment(part.get_filename() or "", payload))
        return tuple(found)


_ENTRY_COLUMNS = [c for c in outbox.c if c.name != "content"]


def _values(row: Row[Any]) -> dict[str, Any]:
    values = row._asdict()
    values["recipients"] = tuple(values["recipients"])
    return values


def add_message(
    conn: Connection,
    *,
    message_id: str,
    recipients: Sequence[str],
    subject: str,
    content: bytes,
    now: datetime,
    job_id: str | None = None,
    kind: str | None = None,
) -> int:
    """Queue a rendered message for sending as soon as possible; returns its id."""
    outbox_id = conn.scalar(
        insert(outbox)
        .values(
            job_id=job_id,
            kind=kind,
            message_id=message_id,
            recipients=list(recipients),
            subject=subject,
            content=content,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(outbox.c.id)
    )
    if outbox_id is None:
        raise RuntimeError("the database did not return the new outbox message's id")
    return int(outbox_id)


def get_message(conn: Connection, outbox_id: int) -> OutboxMessage | None:
    """One message with its bytes."""
    row = conn.execute(select(outbox).where(outbox.c.id == outbox_id)).first()
    return None if row is None else OutboxMessage(**_values(row))


def list_messages(
    conn: Connection,
    *,
    status: OutboxStatus | None = None,
    due_at: datetime | None = None,
    job_id: str | None = None,
    limit: int | None = None,
) -> list[OutboxMessage]:
    """Messages with their bytes, oldest first; `due_at` keeps only those a sender
    would take at that moment."""
    query = select(outbox).order_by(outbox.c.id)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if due_at is not None:
        query = query.where(outbox.c.status.in_(_TAKEABLE), outbox.c.next_attempt_at <= due_at)
    if job_id is not None:
        query = query.where(outbox.c.job_id == job_id)
    return [OutboxMessage(**_values(row)) for row in conn.execute(query.limit(limit))]


def list_outbox(
    conn: Connection, limit: int | None = 50, *, job_id: str | None = None
) -> list[OutboxEntry]:
    """The latest queued reports (of one job, if given), newest first, without their
    bytes (`syncd outbox list`)."""
    query = select(*_ENTRY_COLUMNS).order_by(outbox.c.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(outbox.c.job_id == job_id)
    return [OutboxEntry(**_values(row)) for row in conn.execute(query)]


def count_outbox(conn: Connection) -> dict[str, int]:
    """How many messages are in each status (statuses with none are left out)."""
    query = select(outbox.c.status, func.count()).group_by(outbox.c.status)
    return {str(status): int(n) for status, n in conn.execute(query)}


def claim_due(conn: Connection, *, now: datetime, lease: timedelta) -> OutboxMessage | None:
    """Take the next due message for sending: mark it `sending` until `now + lease` and
    count the attempt. None when nothing is due (or all that is due is taken)."""
    due = or_(outbox.c.status == "pending", outbox.c.status == "sending")
    candidate = conn.scalar(
        select(outbox.c.id)
        .where(due, outbox.c.next_attempt_at <= now)
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if candidate is None:
        return None
    # The state is checked again: on SQLite nothing locked the row between the two.
    taken = conn.execute(
        update(outbox)
        .where(
            outbox.c.id == candidate,
            outbox.c.status.in_(_TAKEABLE),
            outbox.c.next_attempt_at <= now,
        )
        .values(status="sending", next_attempt_at=now + lease, attempts=outbox.c.attempts + 1)
    )
    if taken.rowcount != 1:
        return None
    return get_message(conn, candidate)


def mark_sent(conn: Connection, outbox_id: int, *, now: datetime, note: str | None = None) -> None:
    """Record that a message went out; `note`: what the server refused of it (some
    recipients), if anything."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == outbox_id)
        .values(status="sent", sent_at=now, last_error=note)
    )


def mark_failed(conn: Connection, outbox_id: int, *, error: str, retry_at: datetime | None) -> None:
    """Record a failed attempt: try again at `retry_at`, or give up (status `failed`)
    when it is None. A message already sent (by another sender) stays sent."""
    values: dict[str, object] = {"last_error": error}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values |= {"status": "pending", "next_attempt_at": retry_at}
    conn.execute(
        update(outbox).where(outbox.c.id == outbox_id, outbox.c.status != "sent").values(values)
    )


def drop_done(conn: Connection, *, queued_before: datetime) -> list[int]:
    """Forget the messages sent or given up on that were queued at or before
    `queued_before` (their bytes hold errors CSVs); their ids. Messages still to be
    sent stay, however old."""
    dropped = conn.execute(
        delete(outbox)
        .where(outbox.c.status.in_(("sent", "failed")), outbox.c.created_at <= queued_before)
        .returning(outbox.c.id)
    )
    return sorted(int(i) for i in dropped.scalars())
