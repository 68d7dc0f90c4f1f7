"""A job killed part way never loses its file: the job is marked `interrupted` when found,
nothing of it was applied, and the same file sent again runs (it is not `skipped`),
leaving the directory as an uninterrupted import would have."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.cli import SYNCD, environment
from tests.e2e.conftest import Syncd, write_config

ROWS = 20_000


def _export(path: Path) -> Path:
    lines = ["Email,First Name,Last Name"]
    lines += [f"user{n}@example.com,Zoë{n},Ødegård" for n in range(ROWS)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


@pytest.fixture
def syncd(tmp_path: Path, db_url: str) -> Syncd:
    config = write_config(
        tmp_path,
        db_url,
        sources=[
            {
                "name": "hr",
                "kind": "local",
                "path": str(tmp_path / "drop"),
                "profile": "default",
                "mode": "full",
            },
        ],
        directory={"roles": ["User"], "groups": []},
    )
    return Syncd(config, tmp_path)


def _running(db_url: str) -> bool:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT count(*) FROM jobs WHERE status = 'running'"))
            return bool(found.scalar())
    except Exception:  # the schema is not there yet
        return False
    finally:
        engine.dispose()


@pytest.mark.parametrize("after", [0.1, 0.5])
def test_a_job_killed_at_any_point_runs_again_and_applies_once(
    syncd: Syncd, tmp_path: Path, db_url: str, after: float
) -> None:
    """SIGKILL `after` seconds into a running import: the next import of the same file
    finds the dead job, marks it interrupted, and applies the file; the directory then
    holds every user once, as a clean import leaves it."""
    file = _export(tmp_path / "users.csv")
    process = subprocess.Popen(
        [str(SYNCD), "--config", str(syncd.config), "import", str(file), "--json"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not _running(db_url) and process.poll() is None:
        assert time.monotonic() < deadline, "the import never started"
        time.sleep(0.05)
    time.sleep(after)
    process.send_signal(signal.SIGKILL)
    process.wait()

    again = syncd("import", file, "--json")
    listed = syncd("jobs", "list", "--json").json
    statuses = sorted(job["status"] for job in listed)
    if statuses == ["applied", "skipped"]:  # the first import ended before the kill
        assert again.json["status"] == "skipped"
    else:
        assert statuses == ["applied", "interrupted"], listed
        assert again.json["status"] == "applied", again.describe()
        assert again.json["counts"]["created"] == ROWS
        dead = next(job for job in listed if job["status"] == "interrupted")
        assert "stopped before the job ended" in dead["messages"][0]
    users = syncd("users", "list", "--json").json
    assert len(users) == ROWS
    assert {u["status"] for u in users} == {"active"}
    assert len({u["email"] for u in users}) == ROWS
