"""`syncd status` through the real command: every source's last file and job, its next
scan, what is expected and whether it is late; nothing created where nothing is."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.cli import syncd, syncd_json

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
CONFIG = """
state_dir = "state"

[database]
url = "sqlite:///{root}/state/syncd.db"

[[sources]]
name = "hr"
kind = "local"
path = "drop/hr"
schedule = "0 3 * * 1-5"
expect_every = "1d"
business_days = true

[[sources]]
name = "uploads"
kind = "local"
path = "drop/uploads"

[[sources]]
name = "nightly"
kind = "local"
path = "drop/nightly"
expect_every = "1s"
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "syncd.toml").write_text(CONFIG.format(root=tmp_path), encoding="utf-8")
    return tmp_path


def test_status_without_a_database_names_it_and_creates_nothing(root: Path) -> None:
    """Exit 69 (a service unreachable) naming the missing database; no folder or file."""
    finished = syncd("--config", "syncd.toml", "status", cwd=root)
    assert finished.code == 69, finished.stderr
    assert f"no database at {root}/state/syncd.db" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert sorted(p.name for p in root.iterdir()) == ["syncd.toml"]


def test_status_shows_each_source_its_last_file_and_job_and_whether_it_is_late(
    root: Path,
) -> None:
    """After one import into hr and one into nightly: hr is on time (due a weekday
    later), uploads expects nothing, nightly is late with no alert yet (no daemon)."""
    for source in ("hr", "nightly"):
        imported = syncd(
            "--config", "syncd.toml", "import", EXAMPLES / "people.csv", "--source", source,
            cwd=root,
        )  # fmt: skip
        assert imported.code == 0, imported.stderr
    time.sleep(1)  # nightly's second passes

    finished, shown = syncd_json("--config", "syncd.toml", "status", "--json", cwd=root)
    assert finished.code == 0, finished.stderr
    hr, uploads, nightly = shown
    assert [s["source"] for s in shown] == ["hr", "uploads", "nightly"]
    assert hr["last_file"]["name"] == "people.csv"
    assert hr["last_job"]["status"] == "applied"
    assert hr["last_job"]["job_id"] == hr["last_file"]["job_id"]
    assert (hr["expect_every"], hr["business_days"], hr["late"]) == ("1d", True, False)
    assert hr["schedule"] == "0 3 * * 1-5"
    next_scan = datetime.fromisoformat(hr["next_scan"])
    assert next_scan > datetime.now(UTC)
    assert (next_scan.hour, next_scan.minute, next_scan.weekday() < 5) == (3, 0, True)
    assert datetime.fromisoformat(hr["due_at"]).weekday() < 5
    assert uploads["last_file"] is None
    assert uploads["last_job"] is None
    assert (uploads["expect_every"], uploads["late"], uploads["due_at"]) == (None, False, None)
    assert uploads["next_scan"] is None
    assert uploads["interval_seconds"] == 60
    assert nightly["late"] is True
    assert nightly["alerted_at"] is None
    received = datetime.fromisoformat(nightly["last_file"]["received_at"])
    assert nightly["late_since"] == nightly["due_at"]
    assert datetime.fromisoformat(nightly["due_at"]) - received == timedelta(seconds=1)

    text = syncd("--config", "syncd.toml", "status", cwd=root)
    assert text.code == 0, text.stderr
    blocks = text.stdout.strip().split("\n\n")
    assert blocks[0].splitlines()[0] == "hr (local drop/hr, partial mode)"
    assert f"  last job   {hr['last_job']['job_id']} applied, finished " in blocks[0]
    assert "  expected   every 1d, Monday to Friday only (UTC)" in blocks[0]
    assert "  late       no (next file due by " in blocks[0]
    assert "on the schedule 0 3 * * 1-5, next at " in blocks[0]
    assert "  last file  none yet" in blocks[1]
    assert "  expected   not set (expect_every)" in blocks[1]
    assert "every 60 s while `syncd run` runs; and whenever the folder changes" in blocks[1]
    assert "  late       LATE since " in blocks[2]
    assert "(no alert yet: `syncd run` sends it)" in blocks[2]
