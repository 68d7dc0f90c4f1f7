"""The outbox table: report messages queued with the job result, then sent or retried."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine

from syncd.store import job_records, outbox
from syncd.store.engine import ensure_schema, make_engine

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture
def conn(db_url: str) -> Iterator[Connection]:
    """One connection in one transaction on a freshly migrated database."""
    engine: Engine = make_engine(db_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        yield conn
    engine.dispose()


def test_a_message_reads_back_with_its_attachment(conn: Connection) -> None:
    """Recipients, bodies and the errors CSV attachment come back as queued, pending."""
    job_records.insert_job(
        conn,
        job_id="AAAAA-00001",
        source="hr",
        mode="full",
        file_name="u.csv",
        sha256="0" * 64,
        size=1,
        now=T0,
    )
    csv = "\ufeffemail,errors\r\nx,email: bad\r\n".encode()
    message_id = outbox.add_message(
        conn,
        recipients=["it@example.com", "hr@example.com"],
        subject="Job AAAAA-00001: applied with 1 error",
        text="plain",
        html="<p>html</p>",
        attachment=outbox.Attachment("AAAAA-00001.csv", csv),
        job_id="AAAAA-00001",
        now=T0,
    )
    (message,) = outbox.list_messages(conn, job_id="AAAAA-00001")
    assert message.id == message_id
    assert message.recipients == ("it@example.com", "hr@example.com")
    assert (message.text, message.html, message.status, message.attempts) == (
        "plain",
        "<p>html</p>",
        "pending",
        0,
    )
    assert message.attachment == outbox.Attachment("AAAAA-00001.csv", csv)
    assert (message.next_attempt_at, message.created_at, message.sent_at) == (T0, T0, None)


def test_only_pending_messages_that_are_due_are_listed_as_due(conn: Connection) -> None:
    """A failed attempt moves the next attempt later; a sent message is never due again."""
    sent = outbox.add_message(conn, recipients=["a@x.org"], subject="s", text="t", now=T0)
    retry = outbox.add_message(conn, recipients=["a@x.org"], subject="s", text="t", now=T0)
    given_up = outbox.add_message(conn, recipients=["a@x.org"], subject="s", text="t", now=T0)
    outbox.mark_sent(conn, sent, now=T0 + timedelta(seconds=1))
    later = T0 + timedelta(minutes=5)
    outbox.mark_failed(conn, retry, error="421 try later", retry_at=later)
    outbox.mark_failed(conn, given_up, error="550 no such user", retry_at=None)
    assert outbox.list_messages(conn, due_at=T0 + timedelta(minutes=1)) == []
    (due,) = outbox.list_messages(conn, due_at=later)
    assert (due.id, due.attempts, due.last_error) == (retry, 1, "421 try later")
    (done,) = outbox.list_messages(conn, status="sent")
    assert (done.id, done.sent_at, done.attempts) == (sent, T0 + timedelta(seconds=1), 1)
    (failed,) = outbox.list_messages(conn, status="failed")
    assert (failed.id, failed.attachment) == (given_up, None)
