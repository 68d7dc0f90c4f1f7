"""A throwaway OpenSSH sshd for integration tests, the same server HR systems upload to.

One sshd per test session, in the foreground on a free loopback port, with its own host key,
a client key for the current user, a known_hosts file that pins the host key, and a temp
folder tests use as the remote drop folder over SFTP. A test that stops and starts its
server gets one of its own from `sshd_factory`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
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
    authorized_keys: Path


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


class Sshd:
    """One throwaway sshd: its keys, config and drop folder under `base`, and its process,
    which a test may stop (the sessions it serves included) and start again on its port."""

    def __init__(self, base: Path) -> None:
        sshd = _find_sshd()
        if sshd is None:
            pytest.fail("OpenSSH sshd is not installed: run `make system-deps`", pytrace=False)
        if running_as_root() and not PRIVSEP_DIR.exists():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
        self.binary = sshd
        self.base = base
        self.process: subprocess.Popen[bytes] | None = None
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
        self.config = base / "sshd_config"
        self.config.write_text(_config(base, port, host_key, authorized_keys))
        self.log = base / "sshd.log"
        self.server = SshdServer(
            host=LOOPBACK,
            port=port,
            username=current_user(),
            client_key=client_key,
            known_hosts=known_hosts,
            root=root,
            authorized_keys=authorized_keys,
        )

        checked = subprocess.run(
            [str(sshd), "-t", "-f", str(self.config)], capture_output=True, text=True
        )
        if checked.returncode != 0:
            pytest.fail(f"sshd rejected its config: {checked.stderr.strip()}", pytrace=False)

    def start(self) -> None:
        """Start sshd (again) and wait until it greets on its port."""
        port = self.server.port
        with self.log.open("ab") as log_file:
            self.process = process = subprocess.Popen(
                [str(self.binary), "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.base,
            )
        problem = wait_until(
            lambda: answers_tcp(LOOPBACK, port, expect_prefix=b"SSH-"),
            alive=lambda: process.poll() is None,
        )
        if problem is not None:
            pytest.fail(
                f"sshd did not start on {LOOPBACK}:{port}: {problem}\n"
                f"--- {self.log.name} ---\n{log_tail(self.log)}",
                pytrace=False,
            )

    def stop(self) -> None:
        """Stop sshd and end every session it serves, as a server going down does.

        sshd runs each connection in a child of its own session (setsid), which outlives
        the listener; they are found by parent id before the listener stops.
        """
        if self.process is None:
            return
        sessions = _descendants(self.process.pid)
        _stop(self.process)
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process = None

    def freeze(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or resume sshd and its sessions: a server that hangs, its
        connections open, answering nothing."""
        if self.process is None:
            return
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)


def _descendants(pid: int) -> list[int]:
    """The processes below `pid`, children first, read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the command name (in parentheses) may hold spaces: the fields follow its end
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = list(parents.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += parents.get(child, [])
    return found


@contextlib.contextmanager
def running_sshd() -> Iterator[Sshd]:
    """A throwaway sshd of its own, stopped and removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="syncd-sshd-"))
    server: Sshd | None = None
    try:
        server = Sshd(base)
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd_server() -> Iterator[SshdServer]:
    """An OpenSSH sshd on a free loopback port for the whole session, SFTP enabled."""
    with running_sshd() as sshd:
        yield sshd.server


@pytest.fixture
def sshd_factory() -> Iterator[Callable[[], Sshd]]:
    """Starts sshds of the test's own, to stop and start again; all stop at its end."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(running_sshd())


def client_key_with_passphrase(
    server: SshdServer, path: Path, passphrase: str, key_type: str = "ed25519"
) -> Path:
    """A client key of `key_type` (ed25519, ecdsa, rsa: the last in PEM format, as older
    tools write it) protected by `passphrase`, authorized on `server`."""
    extra = ["-m", "PEM", "-b", "2048"] if key_type == "rsa" else []
    command = ["ssh-keygen", "-q", "-t", key_type, *extra, "-N", passphrase, "-f", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    with server.authorized_keys.open("a", encoding="ascii") as keys:
        keys.write(path.with_suffix(".pub").read_text(encoding="ascii"))
    return path
