"""Throwaway real servers for integration tests: what they share.

Each server module starts a real process (PostgreSQL, OpenSSH sshd) or thread (aiosmtpd) on a
free loopback port. This module owns the pieces they have in common: picking a port, reading
a log's tail for a failure message, and waiting for a server to answer.
"""

from __future__ import annotations

import os
import pwd
import socket
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Long enough for a cold PostgreSQL on a loaded CI machine, short enough to fail visibly.
START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The port is released before the server binds it, so another process could take it in
    between; on a test machine that race is rare enough to accept.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def running_as_root() -> bool:
    """Whether this process is root, which PostgreSQL refuses and sshd treats differently."""
    return os.geteuid() == 0


def current_user() -> str:
    """The login name of the user this process runs as."""
    return pwd.getpwuid(os.geteuid()).pw_name


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a server log, for a failure message a person can act on."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {path} is empty)"


def wait_until(
    ready: Callable[[], bool],
    *,
    alive: Callable[[], bool] = lambda: True,
    timeout: float = START_TIMEOUT_SECONDS,
) -> str | None:
    """Poll `ready` until it is true; return None then, or why it never became true.

    `alive` lets a caller stop waiting as soon as the server process has died, instead of
    sitting out the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return None
        if not alive():
            return "the server process exited"
        time.sleep(0.05)
    return f"it did not answer within {timeout:.0f} s"


def answers_tcp(host: str, port: int, expect_prefix: bytes = b"") -> bool:
    """Whether host:port accepts a connection and, if asked, greets with `expect_prefix`."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            if not expect_prefix:
                return True
            greeting = sock.recv(256)
    except OSError:
        return False
    return greeting.startswith(expect_prefix)
