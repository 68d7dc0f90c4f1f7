"""A throwaway SMTP server for integration tests that keeps every message it receives.

aiosmtpd runs in a thread on a free loopback port, one server per test, so each test sees
only its own mail. It offers AUTH PLAIN/LOGIN without TLS for one known username and
password, so tests can check that syncd logs in; sending without logging in works too,
except on `smtp_server_requiring_login`, which answers 530 to a sender that did not log in.
"""

from __future__ import annotations

import contextlib
import email.policy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers import LOOPBACK, free_port

USERNAME = "syncd"
PASSWORD = "smtp-test-password"


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as the server took it: envelope sender, recipients and raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None = None

    def parsed(self) -> EmailMessage:
        """The message parsed with the modern email policy, for headers and parts."""
        message = BytesParser(policy=email.policy.default).parsebytes(self.data)
        assert isinstance(message, EmailMessage)
        return message


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where the server listens, the login it accepts, and what it has received so far."""

    host: str
    port: int
    messages: list[ReceivedMessage] = field(default_factory=list)
    username: str = USERNAME
    password: str = PASSWORD


class _KeepingHandler:
    """Accepts every message and appends it to a list the test reads."""

    def __init__(self, messages: list[ReceivedMessage]) -> None:
        self.messages = messages

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        self.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return "250 Message accepted for delivery"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Let in exactly USERNAME/PASSWORD, so a wrong password fails as it would for real."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    if ok:
        return AuthResult(success=True, auth_data=auth_data)
    # handled=False makes aiosmtpd answer 535 itself.
    return AuthResult(success=False, handled=False)


class _Controller(Controller):
    def factory(self) -> SMTP:
        # aiosmtpd warns that a login without TLS can be overheard; on loopback, in a test,
        # that is the point (what syncd does with the password is what is tested).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


@contextlib.contextmanager
def serving_smtp(*, auth_required: bool = False) -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port while the block runs (fixtures below; a
    module that wants one for all its tests uses this)."""
    messages: list[ReceivedMessage] = []
    # aiosmtpd cannot bind port 0, so a port is picked first.
    port = free_port()
    controller = _Controller(
        _KeepingHandler(messages),
        hostname=LOOPBACK,
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
        auth_required=auth_required,
    )
    try:
        controller.start()
    except Exception as exc:  # aiosmtpd raises bare Exceptions and timeouts alike
        pytest.fail(f"the SMTP server did not start on {LOOPBACK}:{port}: {exc!r}", pytrace=False)
    try:
        yield SmtpServer(host=LOOPBACK, port=port, messages=messages)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port for one test, holding what it receives."""
    with serving_smtp() as server:
        yield server


@pytest.fixture
def smtp_server_requiring_login() -> Iterator[SmtpServer]:
    """The same, but a message is taken only from a sender that logged in (530 else)."""
    with serving_smtp(auth_required=True) as server:
        yield server
