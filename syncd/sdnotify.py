"""systemd's notify protocol: READY, STATUS, WATCHDOG and STOPPING on $NOTIFY_SOCKET.

A datagram per message; without $NOTIFY_SOCKET (not run by systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from contextlib import suppress


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        usec = os.environ.get("WATCHDOG_USEC", "")
        #: how often to ping the watchdog: half its timeout, or never
        self.watchdog_interval = int(usec) / 2_000_000 if usec.isdigit() else None

    def send(self, *fields: str) -> None:
        if not self.address:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        # If systemd went away there is nothing a daemon can do about it.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, suppress(OSError):
            sock.sendto("\n".join(fields).encode("utf-8"), target)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")
