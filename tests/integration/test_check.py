"""`syncd check` against a real OpenSSH server and a real SMTP server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from syncd.config import load_config
from syncd.probes import CheckResult, run_checks
from tests.servers import free_port
from tests.servers.smtp import SmtpServer
from tests.servers.sshd import SshdServer


def _config(
    tmp_path: Path,
    sshd: SshdServer,
    smtp_port: int,
    *,
    known_hosts: Path | None = None,
    smtp_password: str = "",
) -> Path:
    (tmp_path / "smtp-password").write_text(smtp_password)
    path = tmp_path / "syncd.toml"
    path.write_text(
        f"""
state_dir = "{tmp_path / "var"}"

[database]
url = "sqlite:///{tmp_path / "syncd.db"}"

[mail]
from = "syncd@example.com"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
starttls = false
username = "syncd"
password_file = "{tmp_path / "smtp-password"}"
timeout_seconds = 5

[[sources]]
name = "hr"
kind = "sftp"
profile = "hr_full"
mode = "full"
host = "{sshd.host}"
port = {sshd.port}
username = "{sshd.username}"
key_file = "{sshd.client_key}"
known_hosts = "{known_hosts or sshd.known_hosts}"
remote_dir = "{sshd.root}"
timeout_seconds = 5
""",
        encoding="utf-8",
    )
    return path


def _by_name(results: list[CheckResult], prefix: str) -> CheckResult:
    return next(r for r in results if r.name.startswith(prefix))


def test_every_service_answers_and_the_host_key_matches(
    tmp_path: Path, sshd_server: SshdServer, smtp_server: SmtpServer
) -> None:
    """With the right host key and SMTP login, every check passes."""
    config = load_config(
        _config(tmp_path, sshd_server, smtp_server.port, smtp_password=smtp_server.password), {}
    )
    results = run_checks(config, {})
    assert [r for r in results if not r.ok] == []
    assert _by_name(results, "source hr").detail.endswith("entries")
    assert _by_name(results, "mail").detail == "reachable, login accepted"


def test_a_changed_host_key_fails_and_is_never_added(
    tmp_path: Path, sshd_server: SshdServer, smtp_server: SmtpServer
) -> None:
    """A server offering another key than the one known_hosts pins for it is refused (78:
    the admin must look), and the file stays as it was."""
    other = tmp_path / "other_known_hosts"
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    other.write_text(f"[127.0.0.1]:{sshd_server.port} {key.with_suffix('.pub').read_text()}")
    before = other.read_text()
    config = load_config(
        _config(
            tmp_path,
            sshd_server,
            smtp_server.port,
            known_hosts=other,
            smtp_password=smtp_server.password,
        ),
        {},
    )
    sftp = _by_name(run_checks(config, {}), "source hr")
    assert (sftp.ok, sftp.exit_code) == (False, 78)
    assert "known_hosts" in sftp.detail
    assert other.read_text() == before


def test_a_refused_smtp_login_is_a_configuration_problem(
    tmp_path: Path, sshd_server: SshdServer, smtp_server: SmtpServer
) -> None:
    """A wrong SMTP password is for the admin to fix: 78, not 69."""
    config = load_config(
        _config(tmp_path, sshd_server, smtp_server.port, smtp_password="wrong"), {}
    )
    mail = _by_name(run_checks(config, {}), "mail")
    assert (mail.ok, mail.exit_code) == (False, 78)
    assert "login refused" in mail.detail


def test_the_command_exits_69_when_the_smtp_server_is_down(
    tmp_path: Path, sshd_server: SshdServer
) -> None:
    """Nothing listening on the SMTP port: `syncd check` says so and exits 69."""
    path = _config(tmp_path, sshd_server, free_port())
    syncd = Path(sys.executable).with_name("syncd")
    done = subprocess.run(
        [str(syncd), "--config", str(path), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 69, done.stdout + done.stderr
    assert "FAIL  mail" in done.stdout
    assert "ok    source hr" in done.stdout
