"""Smoke tests: each throwaway server the fixtures start is real and usable."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import paramiko
import psycopg
import pytest

from tests.servers.smtp import SmtpServer
from tests.servers.sshd import SshdServer


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as a libpq URI psycopg accepts."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_postgres_database_accepts_queries_and_keeps_rows(postgres_url: str) -> None:
    """A fresh PostgreSQL database answers select 1 and stores and returns rows."""
    with psycopg.connect(_libpq(postgres_url)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        conn.execute("create table users (email text primary key, name text not null)")
        conn.execute("insert into users values (%s, %s)", ("ana@example.com", "Ana Núñez"))
        rows = conn.execute("select email, name from users").fetchall()
    assert rows == [("ana@example.com", "Ana Núñez")]


def test_postgres_databases_are_fresh_for_each_test(postgres_url: str) -> None:
    """Each test gets an empty database, so tables from another test are not there."""
    with psycopg.connect(_libpq(postgres_url)) as conn:
        tables = conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public'"
        ).fetchall()
    assert tables == []


def test_db_url_names_a_database_syncd_supports(db_url: str) -> None:
    """db_url yields an absolute SQLite file URL or a psycopg URL, once per database."""
    if db_url.startswith("sqlite"):
        assert db_url.startswith("sqlite:////")
        assert db_url.endswith("/syncd.db")
    else:
        assert db_url.startswith("postgresql+psycopg://")


def _sftp_client(server: SshdServer) -> paramiko.SSHClient:
    """An SSH client that trusts only the host key in the server's known_hosts."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        server.host,
        port=server.port,
        username=server.username,
        key_filename=str(server.client_key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def test_sshd_accepts_the_client_key_and_serves_sftp(sshd_server: SshdServer) -> None:
    """paramiko logs in with the client key, verifies the host key, lists and writes over SFTP."""
    drop = sshd_server.root
    (drop / "existing.csv").write_text("email\n")
    client = _sftp_client(sshd_server)
    try:
        sftp = client.open_sftp()
        assert "existing.csv" in sftp.listdir(str(drop))
        with sftp.open(str(drop / "users.csv"), "w") as remote:
            remote.write("email\nana@example.com\n")
        sftp.close()
    finally:
        client.close()
    assert (drop / "users.csv").read_text() == "email\nana@example.com\n"


def test_sshd_host_key_is_rejected_when_not_in_known_hosts(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    """With an empty known_hosts, RejectPolicy refuses the server, so pinning is real."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    client = paramiko.SSHClient()
    client.load_host_keys(str(empty))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(
            sshd_server.host,
            port=sshd_server.port,
            username=sshd_server.username,
            key_filename=str(sshd_server.client_key),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


def _message(sender: str, recipient: str) -> EmailMessage:
    """A small report-like message with a non-ASCII subject."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = "Job 7K3M-9QX2 applied — 3 rows"
    message.set_content("created 3\n")
    return message


def test_smtp_server_holds_a_message_sent_to_it(smtp_server: SmtpServer) -> None:
    """smtplib sends a message and the server keeps its envelope and content."""
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.send_message(_message("syncd@example.com", "it@example.com"))
    [received] = smtp_server.messages
    assert received.mail_from == "syncd@example.com"
    assert received.rcpt_tos == ("it@example.com",)
    assert received.login is None
    assert received.parsed()["Subject"] == "Job 7K3M-9QX2 applied — 3 rows"


def test_smtp_server_records_who_logged_in(smtp_server: SmtpServer) -> None:
    """A client that logs in with the server's credentials is recorded on its messages."""
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.login(smtp_server.username, smtp_server.password)
        smtp.send_message(_message("syncd@example.com", "it@example.com"))
    assert [m.login for m in smtp_server.messages] == [smtp_server.username]


def test_smtp_server_refuses_a_wrong_password(smtp_server: SmtpServer) -> None:
    """A wrong password fails the login, as a real server would."""
    with (
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        smtp.login(smtp_server.username, "wrong")


def test_smtp_server_requiring_login_refuses_a_sender_that_did_not_log_in(
    smtp_server_requiring_login: SmtpServer,
) -> None:
    """530 without a login; with one, the message is taken."""
    server = smtp_server_requiring_login
    with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.send_message(_message("syncd@example.com", "it@example.com"))
        assert refused.value.smtp_code == 530
        smtp.login(server.username, server.password)
        smtp.send_message(_message("syncd@example.com", "it@example.com"))
    assert [m.login for m in server.messages] == [server.username]
