"""Delivering the outbox to real SMTP servers: refusals, retries with backoff, an outage,
a crash mid-send, two senders, and .eml files without SMTP.

The servers are aiosmtpd on free loopback ports, as `tests.servers.smtp` starts them,
in the variants a mail relay shows in production: one that answers 5xx or 4xx, one
that is down and comes back (`relay_on` also starts the TLS ones of `test_report_tls`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import Engine
from structlog.testing import capture_logs

from syncd.report import deliver_pending
from syncd.report.sending import retry_delay
from syncd.store import outbox
from syncd.store.engine import ensure_schema, make_engine
from tests.integration.test_report_outcomes import (
    PASSWORD_ENV,
    T0,
    config_for,
    mail_for,
    queue,
    report_of,
)
from tests.servers import LOOPBACK, free_port
from tests.servers.smtp import PASSWORD, USERNAME, ReceivedMessage, SmtpServer

# --- servers --------------------------------------------------------------------------


class Handler:
    """Keeps what it accepts; `refuse_rcpt` refuses recipients (all, or `refused`),
    `refuse_data` the message (an SMTP reply such as "550 ..."), and `pause` slows each
    message down."""

    def __init__(self, messages: list[ReceivedMessage]) -> None:
        self.messages = messages
        self.refuse_rcpt: str | None = None
        self.refused: str | None = None  # only this recipient, when set
        self.refuse_data: str | None = None
        self.pause = 0.0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_rcpt and (self.refused is None or address == self.refused):
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_data:
            return self.refuse_data
        if self.pause:
            time.sleep(self.pause)  # blocks this server's loop, as a slow relay would
        self.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
            )
        )
        return "250 Message accepted for delivery"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """The test server's one login, as `tests.servers.smtp` accepts it."""
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False if not ok else None, auth_data=auth_data)


@dataclass
class Relay:
    """A controllable SMTP server: start and stop it on the same port, change answers."""

    server: SmtpServer
    handler: Handler
    start: Callable[[], None]
    stop: Callable[[], None]


def relay_on(**controller: Any) -> Iterator[Relay]:
    """A Relay on a free port; `controller`: aiosmtpd Controller options (TLS)."""
    messages: list[ReceivedMessage] = []
    handler = Handler(messages)
    port = free_port()
    running: list[Controller] = []

    def start() -> None:
        server = Controller(
            handler,
            hostname=LOOPBACK,
            port=port,
            authenticator=_authenticate,
            **({"auth_require_tls": False} | controller),
        )
        server.start()
        running.append(server)

    def stop() -> None:
        while running:
            running.pop().stop()

    start()
    try:
        yield Relay(SmtpServer(LOOPBACK, port, messages), handler, start, stop)
    finally:
        stop()


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A plain SMTP server whose answers and up time a test controls."""
    yield from relay_on()


# --- tests ----------------------------------------------------------------------------


def _sent_ids(relay: Relay) -> list[str]:
    return [str(m.parsed()["Message-ID"]) for m in relay.server.messages]


def test_a_permanent_refusal_fails_the_report_at_once_with_the_reason(
    engine: Engine, relay: Relay
) -> None:
    """A 5xx to every recipient: `failed`, the server's answer in last_error and the log,
    and the next report still goes out."""
    config = config_for(mail_for(relay.server))
    refused = queue(engine, config, report_of("applied", "0HZMJ-00001"))
    relay.handler.refuse_rcpt = "550 5.1.1 Mailbox does not exist"
    with capture_logs() as logs:
        assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0) == (0, 1, 0)
    relay.handler.refuse_rcpt = None
    queue(engine, config, report_of("applied", "0HZMJ-00002"))
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0).sent == 1
    with engine.connect() as conn:
        (failed,) = outbox.list_messages(conn, status="failed")
    assert failed.id == refused
    assert failed.attempts == 1
    assert failed.last_error == (
        "every recipient refused: it@example.com: 550 5.1.1 Mailbox does not exist; "
        "hr-systems@example.com: 550 5.1.1 Mailbox does not exist"
    )
    (event,) = [e for e in logs if e["event"] == "report_failed"]
    assert (event["job_id"], event["log_level"]) == ("0HZMJ-00001", "error")
    assert "550 5.1.1" in event["error"]


def test_a_report_some_recipients_refuse_is_sent_to_the_others_and_says_so(
    engine: Engine, relay: Relay
) -> None:
    """One bad address of two: the other gets it, the report is sent, and its
    last_error names the refused address and the server's answer."""
    config = config_for(mail_for(relay.server))
    outbox_id = queue(engine, config, report_of("applied"))
    assert outbox_id is not None
    relay.handler.refuse_rcpt, relay.handler.refused = (
        "550 5.1.1 No such user",
        ("hr-systems@example.com"),
    )
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0) == (1, 0, 0)
    (received,) = relay.server.messages
    assert received.rcpt_tos == ("it@example.com",)
    with engine.connect() as conn:
        message = outbox.get_message(conn, outbox_id)
    assert message is not None
    assert (message.status, message.last_error) == (
        "sent",
        "refused by the server: hr-systems@example.com: 550 5.1.1 No such user",
    )


def test_a_refused_message_body_fails_too_but_a_4xx_is_tried_again_later(
    engine: Engine, relay: Relay
) -> None:
    """554 to DATA gives up; 451 to DATA waits a minute and then goes through."""
    config = config_for(mail_for(relay.server))
    queue(engine, config, report_of("rejected", "0HZMJ-00001"))
    relay.handler.refuse_data = "554 5.6.0 Message content rejected"
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0) == (0, 1, 0)
    queue(engine, config, report_of("rejected", "0HZMJ-00002"))
    relay.handler.refuse_data = "451 4.3.0 Try again later"
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0) == (0, 0, 1)
    relay.handler.refuse_data = None
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0 + timedelta(seconds=59)) == (
        0,
        0,
        1,
    )
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0 + timedelta(minutes=1)) == (
        1,
        0,
        0,
    )


def test_retries_wait_one_minute_doubling_to_an_hour_then_give_up_after_retry_for_hours(
    engine: Engine, relay: Relay
) -> None:
    """Against a server that always answers 421, each retry is scheduled 1, 2, 4, ...
    minutes later, never more than 60, and the report fails once retry_for_hours (6
    here) are over, with the last answer as its reason."""
    config = config_for(mail_for(relay.server, retry_for_hours=6))
    outbox_id = queue(engine, config, report_of("held"))
    assert outbox_id is not None
    relay.handler.refuse_data = "421 4.7.0 Try again later, closing connection"
    now, waits = T0, []
    for _ in range(40):
        delivery = deliver_pending(engine, config.mail, PASSWORD_ENV, now)
        with engine.connect() as conn:
            message = outbox.get_message(conn, outbox_id)
        assert message is not None
        if message.status == "failed":
            break
        waits.append(int((message.next_attempt_at - now).total_seconds() // 60))
        now = message.next_attempt_at
    assert waits[:8] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert delivery == (0, 1, 0)
    assert now == T0 + timedelta(hours=6)
    assert message.last_error == (
        "gave up after 6 hours: 421 4.7.0 Try again later, closing connection"
    )
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 7, 8, 30)] == [
        60, 120, 240, 3600, 3600, 3600,
    ]  # fmt: skip


def test_a_night_of_reports_queued_while_the_server_is_down_is_delivered_once_each(
    engine: Engine, relay: Relay
) -> None:
    """Twelve hours of a daemon's rounds every ten minutes against a dead server lose
    nothing; once it is back, each report arrives exactly once."""
    config = config_for(mail_for(relay.server))
    relay.stop()
    job_ids = [f"0HZMJ-{n:05}" for n in range(8)]
    now = T0
    for n, job_id in enumerate(job_ids):
        queue(engine, config, report_of("applied", job_id), now=T0 + timedelta(minutes=n))
    for _ in range(72):
        delivery = deliver_pending(engine, config.mail, PASSWORD_ENV, now)
        assert (delivery.sent, delivery.failed, delivery.waiting) == (0, 0, 8)
        now += timedelta(minutes=10)
    relay.start()
    for _ in range(12):
        deliver_pending(engine, config.mail, PASSWORD_ENV, now)
        now += timedelta(minutes=10)
    sent = [m.parsed()["X-Syncd-Job"] for m in relay.server.messages]
    assert sorted(sent) == job_ids
    with engine.connect() as conn:
        assert outbox.count_outbox(conn) == {"sent": 8}
        messages = outbox.list_messages(conn)
    assert sorted(_sent_ids(relay)) == sorted(m.message_id for m in messages)


def test_a_sender_that_dies_after_sending_sends_again_at_most_once_with_the_same_id(
    engine: Engine, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server took the message but the sender died before marking it sent: it stays
    `sending` until its lease runs out, then goes out once more, as the same message."""
    config = config_for(mail_for(relay.server))
    outbox_id = queue(engine, config, report_of("applied"))
    assert outbox_id is not None

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed")

    with monkeypatch.context() as patched:
        patched.setattr(outbox, "mark_sent", crash)
        with pytest.raises(SystemExit):
            deliver_pending(engine, config.mail, PASSWORD_ENV, T0)
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0 + timedelta(minutes=1)) == (
        0,
        0,
        1,
    )
    later = T0 + timedelta(minutes=5)
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, later) == (1, 0, 0)
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, later + timedelta(hours=1)) == (
        0,
        0,
        0,
    )
    first, second = _sent_ids(relay)
    assert first == second
    with engine.connect() as conn:
        message = outbox.get_message(conn, outbox_id)
    assert message is not None
    assert (message.status, message.attempts) == ("sent", 2)


@pytest.fixture
def postgres_engines(postgres_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one PostgreSQL database, as two daemons have."""
    engines = (make_engine(postgres_url), make_engine(postgres_url))
    ensure_schema(engines[0])
    yield engines
    for engine in engines:
        engine.dispose()


def test_two_senders_on_one_postgresql_database_send_each_report_once(
    postgres_engines: tuple[Engine, Engine], relay: Relay
) -> None:
    """Two daemons' rounds at the same moment share the due reports between them."""
    one, two = postgres_engines
    config = config_for(mail_for(relay.server))
    job_ids = [f"0HZMJ-{n:05}" for n in range(30)]
    for job_id in job_ids:
        queue(one, config, report_of("applied", job_id))
    relay.handler.pause = 0.01
    results = []
    start = threading.Barrier(2)

    def sender(engine: Engine) -> None:
        start.wait()
        results.append(deliver_pending(engine, config.mail, PASSWORD_ENV, T0))

    threads = [threading.Thread(target=sender, args=(e,)) for e in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.sent for r in results) == 30
    assert sorted(m.parsed()["X-Syncd-Job"] for m in relay.server.messages) == job_ids
    assert len(set(_sent_ids(relay))) == 30


def test_without_smtp_host_each_report_is_an_eml_file_only_syncd_can_read(
    engine: Engine, tmp_path: Path
) -> None:
    """`<job_id>-<kind>.eml` in outbox_dir, mode 0600, holding the queued bytes."""
    mail = replace(mail_for(None), outbox_dir=tmp_path / "outbox")
    config = config_for(mail)
    queue(engine, config, report_of("held", "0HZMJ-00001"))
    queue(engine, config, report_of("approved", "0HZMJ-00002"))
    assert deliver_pending(engine, mail, {}, T0) == (2, 0, 0)
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == ["0HZMJ-00001-held.eml", "0HZMJ-00002-approved.eml"]
    with engine.connect() as conn:
        stored = {m.job_id: m.content for m in outbox.list_messages(conn)}
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_bytes() == stored[path.name[:11]]


def test_the_smtp_password_and_the_messages_never_reach_the_log(
    engine: Engine, relay: Relay
) -> None:
    """Sent, retried and failed reports are logged by job and outbox id only."""
    config = config_for(mail_for(relay.server))
    queue(engine, config, report_of("applied_with_errors", "0HZMJ-00001"))
    with capture_logs() as logs:
        deliver_pending(engine, config.mail, PASSWORD_ENV, T0)
        relay.handler.refuse_data = "451 later"
        queue(engine, config, report_of("applied_with_errors", "0HZMJ-00002"))
        deliver_pending(engine, config.mail, PASSWORD_ENV, T0)
    text = repr(logs)
    assert {e["event"] for e in logs} >= {"report_sent", "report_retry", "report_queued"}
    for leak in (PASSWORD, "anna.berg@example", "HYPERLINK", "Kowalczyk"):
        assert leak not in text
