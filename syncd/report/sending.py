"""Sending the outbox: SMTP (or .eml files), retries with backoff, and giving up.

`deliver_pending` takes due messages one at a time (`syncd.store.outbox.claim_due`:
marked `sending` under a short lease, so two senders never send one message, and one
that dies mid-way leaves it to be sent again once the lease runs out, with the same
Message-ID), sends each over one SMTP session, and records the result:

- accepted: `sent`;
- a temporary failure (a 4xx answer, the server refusing connections or timing out, a
  TLS or login problem an admin can fix): tried again after 1 minute, then 2, 4, ...
  at most 1 hour apart, for `[mail] retry_for_hours` (3 days) after it was queued, then
  `failed`. When the server cannot be reached at all the round stops there: the others
  wait for the next round rather than each waiting out a timeout;
- a permanent failure (a 5xx answer to the message: sender, recipients or content
  refused): `failed` at once.

With no `smtp_host`, each message is written to `outbox_dir` as `<job_id>-<kind>.eml`
(a source alert, which has no job, as `<kind>-<outbox id>.eml`), readable by syncd's
user only. Logs say which message and why, never a password or a
row's contents (a message's bytes are never logged).
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import structlog
from sqlalchemy import Connection, Engine

from syncd.config import MailConfig
from syncd.errors import ConfigError
from syncd.private import private_folder
from syncd.report.smtp import smtp_session
from syncd.store import outbox

log = structlog.get_logger("syncd.report")

FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)
#: Messages one call sends at most, so a daemon's loop comes back to its other work.
ROUND = 200
_ERROR_MAX = 300


class Delivery(NamedTuple):
    """What one round did: messages sent, given up, and still waiting."""

    sent: int
    failed: int
    waiting: int


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: 1 min, doubling, ≤ 1 h."""
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, LAST_RETRY)


def lease(mail: MailConfig) -> timedelta:
    """How long a sender holds a message: long enough to send it (several timeouts),
    short enough that a dead sender's message goes out again soon."""
    return max(timedelta(minutes=2), timedelta(seconds=10 * mail.timeout_seconds))


class TemporaryFailure(Exception):
    """Try again later. `unreachable`: the server itself failed; stop the round."""

    def __init__(self, reason: str, *, unreachable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class PermanentFailure(Exception):
    """The server refused this message for good (5xx)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_MAX else text[: _ERROR_MAX - 1] + "…"


def _answer(code: int, message: bytes | str) -> str:
    words = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return _clip(f"{code} {words}")


def _problem(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _answer(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, ConfigError):
        return _clip(str(exc))
    return _clip(f"{type(exc).__name__}: {exc}")


class _Smtp:
    """One SMTP session for a round, opened when the first message needs it."""

    def __init__(self, mail: MailConfig, env: Mapping[str, str]) -> None:
        self.mail, self.env = mail, env
        self._stack = ExitStack()
        self._smtp: smtplib.SMTP | None = None

    def _session(self) -> smtplib.SMTP:
        if self._smtp is None:
            try:
                self._smtp = self._stack.enter_context(smtp_session(self.mail, self.env))
            except (OSError, smtplib.SMTPException, ConfigError) as exc:
                self.close()
                raise TemporaryFailure(
                    f"cannot reach {self.mail.smtp_host}:{self.mail.smtp_port}: {_problem(exc)}",
                    unreachable=True,
                ) from None
        return self._smtp

    def send(self, message: outbox.OutboxMessage) -> str | None:
        """Send; what was refused, if some recipients were."""
        smtp = self._session()
        try:
            refused = smtp.sendmail(self.mail.sender, list(message.recipients), message.content)
        except smtplib.SMTPRecipientsRefused as exc:
            answers = {r: _answer(code, text) for r, (code, text) in exc.recipients.items()}
            reason = "every recipient refused: " + "; ".join(
                f"{r}: {a}" for r, a in answers.items()
            )
            if all(code >= 500 for code, _ in exc.recipients.values()):
                raise PermanentFailure(_clip(reason)) from None
            raise TemporaryFailure(_clip(reason), unreachable=False) from None
        except smtplib.SMTPResponseException as exc:
            # MAIL FROM or DATA answered with an error (SMTPSenderRefused, SMTPDataError).
            if exc.smtp_code >= 500:
                raise PermanentFailure(_problem(exc)) from None
            if exc.smtp_code == 421:  # the server is closing the session
                self.close()
            raise TemporaryFailure(_problem(exc), unreachable=exc.smtp_code == 421) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()  # disconnected or timed out mid-message: a new session next time
            raise TemporaryFailure(_problem(exc), unreachable=True) from None
        if refused:
            return _clip(
                "refused by the server: "
                + "; ".join(f"{r}: {_answer(code, text)}" for r, (code, text) in refused.items())
            )
        return None

    def close(self) -> None:
        self._smtp = None
        with suppress(OSError, smtplib.SMTPException):
            self._stack.close()
        self._stack = ExitStack()


class _Folder:
    """Writes each message as `<job_id>-<kind>.eml` into `outbox_dir`, mode 0600."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: outbox.OutboxMessage) -> str | None:
        stem = (
            f"{message.job_id}-{message.kind or 'report'}"
            if message.job_id
            else f"{message.kind or 'message'}-{message.id}"  # a source alert: late-12.eml
        )
        path = self.folder / f"{stem}.eml"
        partial = self.folder / f".{stem}.eml.part"
        try:
            private_folder(self.folder)
            partial.unlink(missing_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(message.content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except OSError as exc:
            raise TemporaryFailure(
                f"cannot write {path}: {exc.strerror or exc}", unreachable=True
            ) from None
        return None

    def close(self) -> None:
        pass


def _claiming(engine: Engine) -> AbstractContextManager[Connection]:
    """A transaction for claiming: on SQLite one that takes the write lock first, so
    two senders' claims run one after the other."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE").begin()
    return engine.begin()


@contextmanager
def _transport(mail: MailConfig, env: Mapping[str, str]) -> Iterator[_Smtp | _Folder]:
    transport: _Smtp | _Folder = _Smtp(mail, env) if mail.smtp_host else _Folder(mail.outbox_dir)
    try:
        yield transport
    finally:
        transport.close()


def deliver_pending(
    engine: Engine,
    mail: MailConfig,
    env: Mapping[str, str],
    now: datetime,
    *,
    limit: int = ROUND,
) -> Delivery:
    """Send the messages due at `now` (at most `limit`); see the module docstring."""
    sent = failed = 0
    hold = lease(mail)
    with _transport(mail, env) as transport:
        for _ in range(limit):
            with _claiming(engine) as conn:
                message = outbox.claim_due(conn, now=now, lease=hold)
            if message is None:
                break
            fields = {"job_id": message.job_id, "outbox_id": message.id, "kind": message.kind}
            try:
                note = transport.send(message)
            except PermanentFailure as exc:
                with engine.begin() as conn:
                    outbox.mark_failed(conn, message.id, error=exc.reason, retry_at=None)
                log.error("report_failed", **fields, attempts=message.attempts, error=exc.reason)
                failed += 1
                continue
            except TemporaryFailure as exc:
                deadline = message.created_at + timedelta(hours=mail.retry_for_hours)
                if now >= deadline:
                    reason = f"gave up after {mail.retry_for_hours:g} hours: {exc.reason}"
                    with engine.begin() as conn:
                        outbox.mark_failed(conn, message.id, error=reason, retry_at=None)
                    log.error("report_failed", **fields, attempts=message.attempts, error=reason)
                    failed += 1
                else:
                    retry_at = min(now + retry_delay(message.attempts), deadline)
                    with engine.begin() as conn:
                        outbox.mark_failed(conn, message.id, error=exc.reason, retry_at=retry_at)
                    log.warning(
                        "report_retry",
                        **fields,
                        attempts=message.attempts,
                        error=exc.reason,
                        retry_at=retry_at.isoformat(),
                    )
                if exc.unreachable:
                    break
                continue
            with engine.begin() as conn:
                outbox.mark_sent(conn, message.id, now=now, note=note)
            if note:
                log.warning("report_partly_refused", **fields, error=note)
            log.info("report_sent", **fields, attempts=message.attempts)
            sent += 1
    with engine.connect() as conn:
        counts = outbox.count_outbox(conn)
    return Delivery(sent, failed, counts.get("pending", 0) + counts.get("sending", 0))
