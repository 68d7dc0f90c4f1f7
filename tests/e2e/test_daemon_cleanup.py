"""The retention clean-up run by the real `syncd run` at start: an errors CSV older than
retention_days goes, a newer one stays, and the log names what went, never a row."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.e2e.cli import syncd, syncd_json
from tests.e2e.test_daemon_exactly_once import Running

WITH_ERRORS = Path(__file__).resolve().parents[2] / "config" / "examples" / "with-errors"
DAY = 86400


def test_the_daemon_drops_what_outlived_retention_at_start_and_logs_it(tmp_path: Path) -> None:
    """retention_days = 1: the errors CSV a job wrote, made two days old, is removed by
    the daemon's first clean-up and listed in `retention_cleaned`; a fresh one stays;
    the job's kept copy (expiring a day after the job) still gives `syncd jobs errors`."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\nretention_days = 1\n'
        f'[[sources]]\nname = "drop"\nkind = "local"\npath = "{tmp_path / "drop"}"\n',
        encoding="utf-8",
    )
    imported, outcome = syncd_json(
        "--config", config, "import", WITH_ERRORS / "people.csv", "--json", cwd=tmp_path
    )
    assert imported.code == 1, imported.stderr
    old = Path(outcome["errors_csv"])
    two_days_ago = time.time() - 2 * DAY
    os.utime(old, (two_days_ago, two_days_ago))
    fresh = old.with_name("dry-run-people.csv")
    fresh.write_bytes(old.read_bytes())

    daemon = Running(tmp_path, config)
    daemon.wait_for("the clean-up", lambda: bool(daemon.events("retention_cleaned")))
    assert daemon.stop() == 0

    (event,) = daemon.events("retention_cleaned")
    assert event["errors_csvs"] == 1
    assert event["paths"] == [str(old)]
    assert (event["retained_files"], event["job_files"]) == (0, 0)
    assert event["retention_days"] == 1
    assert not old.exists()
    assert fresh.exists()
    log = daemon.log.read_text(encoding="utf-8")
    assert "bruno.costa" not in log
    assert "Kovač" not in log
    again = syncd(
        "--config", config, "jobs", "errors", outcome["job_id"], "-o", tmp_path / "again.csv",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.code == 0, again.stderr
    assert (tmp_path / "again.csv").read_bytes() == fresh.read_bytes()
