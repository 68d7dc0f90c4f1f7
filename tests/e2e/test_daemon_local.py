"""`syncd run` with a local drop folder: files are taken when complete, settled, logged.

One daemon runs for the whole module (starting it and waiting for its scans is what
takes time): files are dropped the ways senders drop them, the daemon settles them, the
job list is read while it still runs, then it gets SIGTERM. Each test checks one part of
what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import spawn, syncd_json

#: How long any one wait may take before the test gives up.
DEADLINE_SECONDS = 30
#: SIGTERM to exit, for an idle daemon: well under the 60 s stop timeout even on a
#: loaded machine (the interpreter alone takes seconds to wind down under load).
STOP_SECONDS = 15

SETTLE_SECONDS = 0.5
CONFIG = """
state_dir = "state"

[database]
url = "sqlite:///{root}/syncd.db"

[[sources]]
name = "drop"
kind = "local"
path = "drop"
profile = "default"
settle_seconds = {settle}
interval_seconds = 1
"""

RENAMED = (
    "Email,First Name,Last Name\r\n"
    "renamed.one@example.com,Ana,Łukasiewicz\r\n"
    "renamed.two@example.com,Bo,Ström\r\n"
)
#: Written in steps: a cut after any step leaves a file that is not this one (fewer rows,
#: a half email), so taking it early would show in the job's counts.
SLOW_STEPS = (
    "Email,First Name\n",
    "slow.one@example.com,Cy\nslow.tw",
    "o@example.com,Di\nslow.three@exa",
    "mple.com,Ed\n",
    "slow.four@example.com,Fé\n",
)
STEP_PAUSE_SECONDS = 0.3  # under settle_seconds: the writer never pauses long enough
NEVER_TAKEN = ("upload.csv.part", "export.csv.tmp", ".hidden.csv")
DROPPED = ("slow.csv", "renamed.csv", "junk.csv")


@dataclass(frozen=True, slots=True)
class DaemonRun:
    """What one daemon run left behind."""

    root: Path
    processed: dict[str, str]  # dropped name -> job ID in the settled name
    failed: dict[str, str]
    left_in_drop: set[str]
    jobs: list[dict[str, Any]]
    exit_code: int | None
    stop_seconds: float
    log: str


def _wait(what: str, done: Callable[[], bool], process: Any, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done():
        if process.poll() is not None:
            pytest.fail(
                f"the daemon exited ({process.returncode}) before {what}:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.1)


def _settled(folder: Path) -> dict[str, str]:
    """Settled files by original name: `people.7K3M9-QX2AB.csv` -> {"people.csv": ID}."""
    found = {}
    for path in folder.glob("*.csv"):
        stem, job_id, suffix = path.name.rsplit(".", 2)
        found[f"{stem}.{suffix}"] = job_id
    return found


def _drop_by_rename(drop: Path, name: str, data: bytes) -> None:
    part = drop / f"{name}.part"
    part.write_bytes(data)
    os.replace(part, drop / name)


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonRun]:
    root = tmp_path_factory.mktemp("daemon")
    config = root / "syncd.toml"
    config.write_text(CONFIG.format(root=root, settle=SETTLE_SECONDS), encoding="utf-8")
    drop = root / "drop"
    drop.mkdir()
    log = root / "stderr.log"
    with log.open("wb") as stderr:
        process = spawn("--config", config, "run", cwd=root, stderr=stderr)
    try:
        _wait("it started", lambda: '"started"' in log.read_text(), process, log)

        # Files that are never to be taken go first, so every later scan sees them.
        for name in NEVER_TAKEN:
            (drop / name).write_bytes(RENAMED.encode("utf-8"))
        # Stock sftp/scp write to the final name as the bytes arrive.
        with (drop / "slow.csv").open("w", encoding="utf-8") as slow:
            for step in SLOW_STEPS:
                slow.write(step)
                slow.flush()
                time.sleep(STEP_PAUSE_SECONDS)
        _drop_by_rename(drop, "renamed.csv", RENAMED.encode("utf-8"))
        _drop_by_rename(drop, "junk.csv", bytes(range(256)) * 8)

        processed, failed = drop / "processed", drop / "failed"
        _wait(
            "the files to be settled",
            lambda: {*_settled(processed), *_settled(failed)} == set(DROPPED),
            process,
            log,
        )
        listed, jobs = syncd_json("--config", config, "jobs", "list", "--json", cwd=root)
        assert listed.code == 0, listed.stderr

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            exit_code: int | None = process.wait(timeout=STOP_SECONDS * 2)
        except subprocess.TimeoutExpired:
            exit_code = None
        stopped = time.monotonic() - started
        yield DaemonRun(
            root=root,
            processed=_settled(processed),
            failed=_settled(failed),
            left_in_drop={p.name for p in drop.iterdir() if p.is_file()},
            jobs=jobs,
            exit_code=exit_code,
            stop_seconds=stopped,
            log=log.read_text(encoding="utf-8"),
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _job(run: DaemonRun, job_id: str) -> dict[str, Any]:
    matching = [job for job in run.jobs if job["job_id"] == job_id]
    assert len(matching) == 1, run.jobs
    return matching[0]


def test_a_file_renamed_from_a_part_name_is_applied_and_settled_under_its_job_id(
    daemon_run: DaemonRun,
) -> None:
    """A file renamed into the drop lands in processed/ named with its job, listed as applied."""
    job = _job(daemon_run, daemon_run.processed["renamed.csv"])
    assert job["status"] == "applied"
    assert job["source"] == "drop"
    assert job["file"] == "renamed.csv"
    assert job["counts"]["rows"] == 2
    assert job["counts"]["created"] == 2


def test_a_file_written_slowly_is_taken_only_once_complete(daemon_run: DaemonRun) -> None:
    """A file written in steps shorter than settle_seconds apart is taken whole, not cut."""
    assert "slow.csv" in daemon_run.processed, f"taken too early: {daemon_run.jobs}"
    job = _job(daemon_run, daemon_run.processed["slow.csv"])
    assert job["status"] == "applied", job
    assert job["counts"]["rows"] == 4
    assert job["counts"]["created"] == 4


def test_a_rejected_file_lands_in_failed(daemon_run: DaemonRun) -> None:
    """A binary file is rejected, moved to failed/ under its job ID, and its job says why."""
    job = _job(daemon_run, daemon_run.failed["junk.csv"])
    assert job["status"] == "rejected"
    assert job["messages"]
    assert "junk.csv" not in daemon_run.processed


def test_part_tmp_and_hidden_files_are_never_taken(daemon_run: DaemonRun) -> None:
    """Upload-in-progress and hidden names stay in the drop, untouched and without a job."""
    assert set(NEVER_TAKEN) <= daemon_run.left_in_drop
    for name in NEVER_TAKEN:
        assert (daemon_run.root / "drop" / name).read_bytes() == RENAMED.encode("utf-8")
    assert {job["file"] for job in daemon_run.jobs} == set(DROPPED)


def test_sigterm_stops_the_daemon_with_exit_code_0(daemon_run: DaemonRun) -> None:
    """SIGTERM makes an idle daemon exit 0 within a few seconds."""
    assert daemon_run.exit_code == 0, daemon_run.log
    assert daemon_run.stop_seconds < STOP_SECONDS


def test_logs_are_json_lines_naming_job_and_source(daemon_run: DaemonRun) -> None:
    """Off a terminal every log line is JSON; job events carry job_id and source, no row data."""
    events = [json.loads(line) for line in daemon_run.log.splitlines() if line.strip()]
    assert events, "the daemon logged something"
    assert "Traceback" not in daemon_run.log
    job_events = [event for event in events if "job_id" in event]
    job_ids = {*daemon_run.processed.values(), *daemon_run.failed.values()}
    assert {event["job_id"] for event in job_events} == job_ids
    assert all(event["source"] == "drop" for event in job_events)
    assert {"started", "stopping", "stopped"} <= {event["event"] for event in events}
    assert "@example.com" not in daemon_run.log


def _events(run: DaemonRun, name: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in run.log.splitlines() if line.strip()]
    return [event for event in events if event["event"] == name]


def test_taking_a_file_is_logged_with_its_source_name_and_size(daemon_run: DaemonRun) -> None:
    """Each file taken is one `file_taken` event: source, file name and size in bytes."""
    taken = {event["file"]: event for event in _events(daemon_run, "file_taken")}
    assert set(taken) == set(DROPPED)
    assert taken["renamed.csv"]["size"] == len(RENAMED.encode("utf-8"))
    assert taken["junk.csv"]["size"] == 256 * 8
    assert taken["slow.csv"]["size"] == len("".join(SLOW_STEPS).encode("utf-8"))
    assert all(event["source"] == "drop" for event in taken.values())
    assert all(event["level"] == "info" for event in taken.values())


def test_a_rejected_job_logs_why_at_warning_level(daemon_run: DaemonRun) -> None:
    """The rejected job's `job_done` event carries its first message as `reason`."""
    job_id = daemon_run.failed["junk.csv"]
    done = {event["job_id"]: event for event in _events(daemon_run, "job_done")}
    rejected = done[job_id]
    assert rejected["status"] == "rejected"
    assert rejected["level"] == "warning"
    assert rejected["file"] == "junk.csv"
    assert rejected["reason"] == _job(daemon_run, job_id)["messages"][0]
    applied = done[daemon_run.processed["renamed.csv"]]
    assert (applied["level"], "reason" in applied) == ("info", False)
