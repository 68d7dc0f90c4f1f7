"""The systemd notify client speaks the datagram protocol systemd listens for."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from syncd.sdnotify import Notifier


def test_messages_reach_the_notify_socket_as_datagrams(tmp_path: Path) -> None:
    """READY, STATUS, WATCHDOG and STOPPING arrive as systemd expects them."""
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(2)
        notifier = Notifier(address)
        notifier.ready("watching 1 sources")
        notifier.watchdog()
        notifier.stopping()
        received = [listener.recv(4096).decode() for _ in range(3)]
    assert received == [
        "READY=1\nSTATUS=watching 1 sources",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_without_a_notify_socket_nothing_is_sent_and_nothing_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run outside systemd, the notifier is silent."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert notifier.address == ""
    notifier.ready("x")  # no socket, no error


def test_a_vanished_socket_does_not_break_the_daemon(tmp_path: Path) -> None:
    """systemd gone away: sending is skipped quietly."""
    Notifier(str(tmp_path / "gone")).status("still here")


def test_the_watchdog_is_pinged_at_half_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """WATCHDOG_USEC=120 s means a ping at least every 60 s."""
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    assert Notifier("x").watchdog_interval == 60
