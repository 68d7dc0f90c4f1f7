"""A throwaway OpenSSH sshd for integration tests, the same server HR systems upload to.

One sshd per test session, in the foreground on a free loopback port, with its own host key,
a client key for the current user, a known_hosts file that pins the host key, and a temp
folder tests use as the remote drop folder over SFTP.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import (
    LOOPBACK,
    answers_tcp,
    current_user,
    free_port,
    log_tail,
    running_as_root,
    wait_until,
)

# Where Debian's sshd wants its privilege separation directory when started as root; the
# package creates it only through systemd, which a container or CI runner may not have run.
PRIVSEP_DIR = Path("/run/sshd")


@dataclass(frozen=True, slots=True)
class SshdServer:
    """How to log in to the throwaway sshd, and where its drop folder is."""

    host: str
    port: int
    username: str
    client_key: Path
    known_hosts: Path
    root: Path


def _find_sshd() -> Path | None:
    """The sshd binary as an absolute path (sshd refuses to re-exec from a relative one)."""
    default = Path("/usr/sbin/sshd")
    if default.is_file():
        return default
    found = shutil.which("sshd")
    return Path(found).resolve() if found else None


def _keygen(path: Path, comment: str) -> None:
    """A fresh ed25519 key pair without a passphrase at `path` and `path`.pub."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.fail("ssh-keygen is not installed: run `make system-deps`", pytrace=False)
    command = [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"ssh-keygen failed: {result.stderr.strip()}", pytrace=False)


def _config(base: Path, port: int, host_key: Path, authorized_keys: Path) -> str:
    """An sshd_config that lets only our client key in, over loopback."""
    lines = [
        f"ListenAddress {LOOPBACK}",
        f"Port {port}",
        f"HostKey {host_key}",
        f"PidFile {base / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        # PAM needs root and a service file; keys alone are what the tests use.
        "UsePAM no",
        # The temp dir's owner and modes are whatever mkdtemp made them.
        "StrictModes no",
        f"PermitRootLogin {'yes' if running_as_root() else 'no'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "Subsystem sftp internal-sftp",
        "UseDNS no",
        "PrintMotd no",
        "LogLevel VERBOSE",
    ]
    return "\n".join(lines) + "\n"


def _known_hosts_line(port: int, host_public_key: Path) -> str:
    """The host key as OpenSSH records a non-22 port: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`."""
    key_type, key_data = host_public_key.read_text(encoding="ascii").split()[:2]
    return f"[{LOOPBACK}]:{port} {key_type} {key_data}\n"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop sshd, politely first."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def sshd_server() -> Iterator[SshdServer]:
    """An OpenSSH sshd on a free loopback port for the whole session, SFTP enabled."""
    sshd = _find_sshd()
    if sshd is None:
        pytest.fail("OpenSSH sshd is not installed: run `make system-deps`", pytrace=False)
    if running_as_root() and not PRIVSEP_DIR.exists():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
    base = Path(tempfile.mkdtemp(prefix="syncd-sshd-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        host_key = base / "host_ed25519"
        client_key = base / "client_ed25519"
        _keygen(host_key, "syncd-test-host")
        _keygen(client_key, "syncd-test-client")
        authorized_keys = base / "authorized_keys"
        shutil.copyfile(client_key.with_suffix(".pub"), authorized_keys)
        port = free_port()
        known_hosts = base / "known_hosts"
        known_hosts.write_text(_known_hosts_line(port, host_key.with_suffix(".pub")))
        root = base / "drop"
        root.mkdir()
        config = base / "sshd_config"
        config.write_text(_config(base, port, host_key, authorized_keys))

        checked = subprocess.run(
            [str(sshd), "-t", "-f", str(config)], capture_output=True, text=True
        )
        if checked.returncode != 0:
            pytest.fail(f"sshd rejected its config: {checked.stderr.strip()}", pytrace=False)

        log = base / "sshd.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [str(sshd), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=base,
            )
        running = process
        problem = wait_until(
            lambda: answers_tcp(LOOPBACK, port, expect_prefix=b"SSH-"),
            alive=lambda: running.poll() is None,
        )
        if problem is not None:
            pytest.fail(
                f"sshd did not start on {LOOPBACK}:{port}: {problem}\n"
                f"--- {log.name} ---\n{log_tail(log)}",
                pytrace=False,
            )
        yield SshdServer(
            host=LOOPBACK,
            port=port,
            username=current_user(),
            client_key=client_key,
            known_hosts=known_hosts,
            root=root,
        )
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)
