"""A late source through the real `syncd run` and a real SMTP server: one late alert
(not one per scan, not again after a restart), `syncd status` showing it, then one
resumed alert when a file is dropped."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import syncd_json
from tests.e2e.test_daemon_exactly_once import Running
from tests.servers.smtp import SmtpServer

EXPECT_EVERY = "3s"
#: How long the daemon is watched for a second alert it must not send: several scans
#: (one a second), each followed by a check.
QUIET_SECONDS = 3
PEOPLE = "Email,First Name,Last Name\r\nana@example.com,Ana,Ödegaard\r\n"


def _config(root: Path, smtp: SmtpServer) -> Path:
    config = root / "syncd.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n'
        f'[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
        f'[mail]\nfrom = "syncd@example.com"\nsmtp_host = "{smtp.host}"\n'
        f'smtp_port = {smtp.port}\ntls = "none"\ninstall_name = "test-install"\n'
        f'[[sources]]\nname = "hr"\nkind = "local"\npath = "{root / "drop"}"\n'
        'notify = ["it@example.com"]\nsettle_seconds = 0.3\ninterval_seconds = 1\n'
        f'expect_every = "{EXPECT_EVERY}"\n',
        encoding="utf-8",
    )
    return config


def _alerts(smtp: SmtpServer, kind: str) -> list[EmailMessage]:
    parsed = [m.parsed() for m in list(smtp.messages)]
    return [m for m in parsed if m["X-Syncd-Report"] == kind and m["X-Syncd-Source"] == "hr"]


def _status(root: Path, config: Path) -> dict[str, Any]:
    finished, shown = syncd_json("--config", config, "status", "--json", cwd=root)
    assert finished.code == 0, finished.stderr
    (hr,) = shown
    assert isinstance(hr, dict)
    return hr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "drop").mkdir()
    return tmp_path


def test_a_late_source_gets_one_alert_and_one_more_when_a_file_comes(
    root: Path, smtp_server: SmtpServer
) -> None:
    """No file within expect_every of the daemon's start: one late alert, which neither
    later scans nor a restart repeat; `syncd status` says late since when; a dropped
    file brings exactly one resumed alert."""
    config = _config(root, smtp_server)
    daemon = Running(root, config)
    daemon.wait_for("the late alert", lambda: len(_alerts(smtp_server, "late")) >= 1)
    time.sleep(QUIET_SECONDS)
    assert len(_alerts(smtp_server, "late")) == 1, daemon.tail()
    (late,) = _alerts(smtp_server, "late")
    assert late["Subject"].startswith("[test-install] Late, no file since ")
    assert late["Subject"].endswith(f"(expected every {EXPECT_EVERY}): source hr")
    assert late["To"] == "it@example.com"
    text = late.get_body(("plain",))
    assert text is not None
    assert f"writes into the folder {root / 'drop'}" in text.get_content()
    assert [e["source"] for e in daemon.events("source_late")] == ["hr"]

    status = _status(root, config)
    assert status["late"] is True
    assert status["alerted_at"] is not None
    assert status["last_file"] is None
    assert status["expect_every"] == EXPECT_EVERY
    # Late expect_every after the moment the subject names (the start of watching).
    watched = datetime.strptime(late["Subject"].split(" since ")[1][:23], "%Y-%m-%d %H:%M:%S UTC")
    assert status["late_since"] == (watched + timedelta(seconds=3)).isoformat() + "+00:00"

    assert daemon.stop() == 0
    again = Running(root, config, "again")
    # Longer than expect_every: a restart that started the clock afresh would alert.
    time.sleep(QUIET_SECONDS + 1)
    assert len(_alerts(smtp_server, "late")) == 1, again.tail()
    assert again.events("source_late") == []

    staging = root / "people.csv.part"
    staging.write_text(PEOPLE, encoding="utf-8")
    os.replace(staging, root / "drop" / "people.csv")
    again.wait_for("the resumed alert", lambda: len(_alerts(smtp_server, "resumed")) >= 1)
    assert again.stop() == 0
    (resumed,) = _alerts(smtp_server, "resumed")
    assert resumed["Subject"].startswith("[test-install] Files again, people.csv came (late since ")
    # Lateness counts again from the file: any later alert is a new lateness, never a
    # second resumption, and no late alert came between the first and the file.
    kinds = [
        m["X-Syncd-Report"]
        for m in (msg.parsed() for msg in smtp_server.messages)
        if m["X-Syncd-Source"] == "hr"
    ]
    assert kinds[:2] == ["late", "resumed"], kinds
    events = [json.loads(line) for line in again.log.read_text().splitlines() if line.strip()]
    assert [e["event"] for e in events if e["event"] == "source_resumed"] == ["source_resumed"]
