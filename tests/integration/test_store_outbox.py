"""The outbox table: whole report messages queued with the job result, claimed under a
lease, then sent, retried or given up; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, text

from syncd.store import job_records, outbox
from syncd.store.engine import ensure_schema, make_engine, upgrade

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _message(job_id: str = "AAAAA-00001", *, attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["Subject"] = f"Applied: job {job_id}"
    message["From"] = "syncd@example.com"
    message["To"] = "it@example.com"
    message["Message-ID"] = f"<{job_id}@example.com>"
    message.set_content("plain")
    message.add_alternative("<p>html</p>", subtype="html")
    if attachment is not None:
        message.add_attachment(attachment, maintype="text", subtype="csv", filename=f"{job_id}.csv")
    return bytes(message)


def _add(conn: Connection, n: int, *, now: datetime = T0, content: bytes | None = None) -> int:
    return outbox.add_message(
        conn,
        message_id=f"<m{n}@example.com>",
        recipients=["it@example.com"],
        subject=f"report {n}",
        content=content or _message(),
        now=now,
    )


def _job(conn: Connection, job_id: str = "AAAAA-00001") -> None:
    job_records.insert_job(
        conn,
        job_id=job_id,
        source="hr",
        mode="full",
        file_name="u.csv",
        sha256="0" * 64,
        size=1,
        now=T0,
    )


def test_a_message_reads_back_whole_with_its_attachment(conn: Connection) -> None:
    """Message-ID, recipients, kind and the bytes come back as queued, pending; the
    attachment is read back from the bytes exactly."""
    _job(conn)
    csv = "\ufeffemail,errors\r\nx,email: bad\r\n".encode()
    content = _message(attachment=csv)
    outbox_id = outbox.add_message(
        conn,
        message_id="<AAAAA-00001@example.com>",
        recipients=["it@example.com", "hr@example.com"],
        subject="Applied: job AAAAA-00001",
        content=content,
        now=T0,
        job_id="AAAAA-00001",
        kind="applied_with_errors",
    )
    (message,) = outbox.list_messages(conn, job_id="AAAAA-00001")
    assert message.id == outbox_id
    assert (message.message_id, message.kind, message.status, message.attempts) == (
        "<AAAAA-00001@example.com>",
        "applied_with_errors",
        "pending",
        0,
    )
    assert message.recipients == ("it@example.com", "hr@example.com")
    assert message.content == content
    assert message.attachments() == (outbox.Attachment("AAAAA-00001.csv", csv),)
    assert (message.next_attempt_at, message.created_at, message.sent_at) == (T0, T0, None)


def test_two_messages_cannot_share_a_message_id(engine: Engine) -> None:
    """The Message-ID is unique: the same report is never queued twice."""
    with engine.begin() as conn:
        _add(conn, 1)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _add(conn, 1)


def test_a_claimed_message_is_held_by_its_lease_and_due_again_when_it_runs_out(
    conn: Connection,
) -> None:
    """claim_due marks the oldest due message sending and counts the attempt; nobody else
    takes it until the lease is over, as if its sender had died."""
    first, second = _add(conn, 1), _add(conn, 2, now=T0 + timedelta(seconds=1))
    claimed = outbox.claim_due(conn, now=T0 + timedelta(seconds=1), lease=LEASE)
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.attempts) == (first, "sending", 1)
    assert claimed.next_attempt_at == T0 + timedelta(seconds=1) + LEASE
    again = outbox.claim_due(conn, now=T0 + timedelta(seconds=2), lease=LEASE)
    assert again is not None
    assert again.id == second
    assert outbox.claim_due(conn, now=T0 + timedelta(minutes=5), lease=LEASE) is None
    late = outbox.claim_due(conn, now=T0 + timedelta(minutes=6), lease=LEASE)
    assert late is not None
    assert (late.id, late.attempts, late.message_id) == (first, 2, "<m1@example.com>")


def test_failed_attempts_wait_or_give_up_and_a_sent_message_is_never_due_again(
    conn: Connection,
) -> None:
    """A retry moves the next attempt later; None gives up; sent stays sent whatever a
    late failure says."""
    sent, retry, given_up = _add(conn, 1), _add(conn, 2), _add(conn, 3)
    outbox.mark_sent(conn, sent, now=T0 + timedelta(seconds=1))
    later = T0 + timedelta(minutes=5)
    outbox.mark_failed(conn, retry, error="421 try later", retry_at=later)
    outbox.mark_failed(conn, given_up, error="550 no such user", retry_at=None)
    outbox.mark_failed(conn, sent, error="a late timeout", retry_at=later)
    assert outbox.list_messages(conn, due_at=T0 + timedelta(minutes=1)) == []
    (due,) = outbox.list_messages(conn, due_at=later)
    assert (due.id, due.status, due.last_error) == (retry, "pending", "421 try later")
    (done,) = outbox.list_messages(conn, status="sent")
    assert (done.id, done.sent_at, done.last_error) == (sent, T0 + timedelta(seconds=1), None)
    (failed,) = outbox.list_messages(conn, status="failed")
    assert (failed.id, failed.last_error) == (given_up, "550 no such user")
    assert outbox.count_outbox(conn) == {"sent": 1, "pending": 1, "failed": 1}


def test_the_outbox_list_shows_the_newest_first_without_the_bytes(conn: Connection) -> None:
    """list_outbox is what `syncd outbox list` prints: newest first, limited."""
    ids = [_add(conn, n) for n in range(3)]
    entries = outbox.list_outbox(conn, limit=2)
    assert [e.id for e in entries] == ids[:0:-1]
    assert not hasattr(entries[0], "content")
    assert entries[0].subject == "report 2"
    assert [e.id for e in outbox.list_outbox(conn, limit=None)] == ids[::-1]


@pytest.fixture
def two_engines(postgres_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one PostgreSQL database, as two daemons have."""
    engines = (make_engine(postgres_url), make_engine(postgres_url))
    ensure_schema(engines[0])
    yield engines
    for engine in engines:
        engine.dispose()


def test_two_senders_on_postgresql_never_claim_the_same_message(
    two_engines: tuple[Engine, Engine],
) -> None:
    """While one transaction holds its claim, the other skips that row (SKIP LOCKED) and
    takes the next, without waiting."""
    one, two = two_engines
    with one.begin() as conn:
        first, second = _add(conn, 1), _add(conn, 2)
    with one.begin() as a, two.begin() as b:
        b.execute(text("SET LOCAL lock_timeout = '2s'"))
        taken_a = outbox.claim_due(a, now=T0, lease=LEASE)
        taken_b = outbox.claim_due(b, now=T0, lease=LEASE)
        assert taken_a is not None
        assert taken_b is not None
        assert (taken_a.id, taken_b.id) == (first, second)
        assert outbox.claim_due(b, now=T0, lease=LEASE) is None


def test_upgrading_from_0002_keeps_queued_messages_whole_and_downgrading_gives_them_back(
    db_url: str,
) -> None:
    """A message queued with separate text, HTML and attachment columns becomes one
    message with all three; a downgrade splits it again."""
    from alembic import command

    from syncd.store.engine import _alembic_config

    engine = make_engine(db_url)
    # Written as SQL: SQLite keeps naive UTC text, PostgreSQL a timestamptz.
    stamp = T0 if engine.dialect.name == "postgresql" else T0.replace(tzinfo=None)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0002")
            conn.execute(
                text(
                    "INSERT INTO outbox (id, recipients, subject, text, html, attachment_name,"
                    " attachment, status, attempts, next_attempt_at, created_at) VALUES (1,"
                    " :to, 'Old report', 'plain words', '<p>html</p>', 'A.csv', :csv,"
                    " 'pending', 0, :now, :now)"
                ),
                {"to": '["it@example.com"]', "csv": b"a,b\r\n1,2\r\n", "now": stamp},
            )
        upgrade(engine)
        with engine.connect() as conn:
            (message,) = outbox.list_messages(conn)
        parsed = message.parsed()
        assert (parsed["Subject"], parsed["To"], message.subject) == (
            "Old report",
            "it@example.com",
            "Old report",
        )
        body = parsed.get_body(("plain",))
        assert body is not None
        assert body.get_content().strip() == "plain words"
        assert message.attachments() == (outbox.Attachment("A.csv", b"a,b\r\n1,2\r\n"),)
        assert message.message_id.startswith("<")
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0002")
            row = conn.execute(text("SELECT * FROM outbox")).one()
        assert (row.text.strip(), row.html.strip(), row.attachment_name) == (
            "plain words",
            "<p>html</p>",
            "A.csv",
        )
        assert bytes(row.attachment) == b"a,b\r\n1,2\r\n"
    finally:
        engine.dispose()
