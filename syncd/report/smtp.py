"""An SMTP session as `[mail]` describes it: TLS, certificate checks, login, timeouts.

`tls = "starttls"` upgrades a plain connection before anything else is said (and fails
if the server does not offer it: a report never crosses the network in clear because a
server forgot to); `"implicit"` speaks TLS from the first byte (port 465); `"none"` is
for a relay on the same host. Certificates and host names are always checked, against
`ca_file` when set (a private CA), else against the system's CAs. The password comes
from the environment or a file, read when the session opens.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from syncd.config import MailConfig


def tls_context(mail: MailConfig) -> ssl.SSLContext:
    """Certificate and host name checks on; `ca_file` replaces the system's CAs."""
    return ssl.create_default_context(cafile=str(mail.ca_file) if mail.ca_file else None)


@contextmanager
def smtp_session(mail: MailConfig, env: Mapping[str, str]) -> Iterator[smtplib.SMTP]:
    """A logged-in SMTP session to `[mail] smtp_host`, closed on leaving.

    Raises OSError (refused, timed out, TLS or certificate failure), smtplib's errors
    (no STARTTLS, login refused) and ConfigError (a password variable not set)."""
    if mail.smtp_host is None:
        raise ValueError("no smtp_host: reports are written to outbox_dir instead")
    smtp: smtplib.SMTP
    if mail.tls == "implicit":
        smtp = smtplib.SMTP_SSL(
            mail.smtp_host, mail.smtp_port, timeout=mail.timeout_seconds, context=tls_context(mail)
        )
    else:
        smtp = smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=mail.timeout_seconds)
    try:
        smtp.ehlo()
        if mail.tls == "starttls":
            smtp.starttls(context=tls_context(mail))
            smtp.ehlo()
        if mail.username:
            smtp.login(mail.username, mail.password(env) or "")
        yield smtp
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
