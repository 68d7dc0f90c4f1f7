"""Delivering reports over TLS: STARTTLS and implicit TLS to a server whose certificate a
private CA signed, trusted through `[mail] ca_file`, and refused without it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from syncd.report import deliver_pending
from syncd.store import outbox
from tests.integration.test_report_delivery import Relay, relay_on
from tests.integration.test_report_outcomes import (
    PASSWORD_ENV,
    T0,
    config_for,
    mail_for,
    queue,
    report_of,
)
from tests.servers import LOOPBACK


@dataclass(frozen=True, slots=True)
class Certificates:
    """A CA the test trusts through ca_file, and a server certificate it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A private CA and a certificate for 127.0.0.1 and localhost, valid for a day."""
    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("syncd test CA"))
        .issuer_name(_name("syncd test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture
def starttls_relay(certificates: Certificates) -> Iterator[Relay]:
    """A server that insists on STARTTLS (and TLS before AUTH) with the CA's certificate."""
    yield from relay_on(
        tls_context=certificates.server_context(), require_starttls=True, auth_require_tls=True
    )


@pytest.fixture
def implicit_tls_relay(certificates: Certificates) -> Iterator[Relay]:
    """A server that speaks TLS from the first byte (port 465 style)."""
    yield from relay_on(ssl_context=certificates.server_context())


def test_starttls_with_a_private_ca_in_ca_file_delivers_and_logs_in_over_tls(
    engine: Engine, starttls_relay: Relay, certificates: Certificates
) -> None:
    """tls = starttls checks the server's certificate against ca_file, then logs in."""
    mail = mail_for(starttls_relay.server, tls="starttls", starttls=True)
    mail = replace(mail, ca_file=certificates.ca_file)
    config = config_for(mail)
    queue(engine, config, report_of("applied"))
    assert deliver_pending(engine, mail, PASSWORD_ENV, T0) == (1, 0, 0)
    assert len(starttls_relay.server.messages) == 1


def test_a_certificate_nobody_vouches_for_is_refused_and_the_report_waits(
    engine: Engine, starttls_relay: Relay
) -> None:
    """Without ca_file the system CAs do not know the test CA: nothing is sent, the
    report stays pending with the reason, and goes out once the admin trusts the CA."""
    mail = mail_for(starttls_relay.server, tls="starttls", starttls=True)
    config = config_for(mail)
    outbox_id = queue(engine, config, report_of("applied"))
    assert outbox_id is not None
    assert deliver_pending(engine, mail, PASSWORD_ENV, T0) == (0, 0, 1)
    with engine.connect() as conn:
        message = outbox.get_message(conn, outbox_id)
    assert message is not None
    assert message.status == "pending"
    assert message.last_error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in message.last_error
    assert message.next_attempt_at == T0 + timedelta(minutes=1)
    assert starttls_relay.server.messages == []


def test_a_plain_connection_to_a_server_that_requires_starttls_is_not_tried_in_clear(
    engine: Engine, starttls_relay: Relay
) -> None:
    """tls = none against a server that insists on TLS: refused before any mail data."""
    config = config_for(mail_for(starttls_relay.server))
    queue(engine, config, report_of("applied"))
    assert deliver_pending(engine, config.mail, PASSWORD_ENV, T0).sent == 0
    assert starttls_relay.server.messages == []


def test_implicit_tls_delivers_with_the_certificate_checked(
    engine: Engine, implicit_tls_relay: Relay, certificates: Certificates
) -> None:
    """tls = implicit wraps the connection in TLS from the start."""
    mail = replace(
        mail_for(implicit_tls_relay.server, tls="implicit", starttls=False),
        ca_file=certificates.ca_file,
    )
    queue(engine, config_for(mail), report_of("held"))
    assert deliver_pending(engine, mail, PASSWORD_ENV, T0) == (1, 0, 0)
    assert len(implicit_tls_relay.server.messages) == 1
