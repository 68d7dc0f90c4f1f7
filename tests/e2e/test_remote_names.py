"""Hostile file names through a real `syncd run` and a real OpenSSH sshd: names with a
newline, a carriage return, a tab, a backslash, an escape sequence, a bidi override, a
leading dash, leading dots, and names as long as the filesystem allows. Each file is
taken once, recorded under its name as sent, and settled into processed/ as one plain
name; nothing is written anywhere but the spool, syncd's state folder and the remote
processed/ folder; every log line stays one JSON line."""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import syncd, syncd_json
from tests.e2e.test_daemon_exactly_once import Running
from tests.servers.sshd import SshdServer

#: Taken: each must become one job, applied, settled into processed/.
TAKEN = (
    "line\nbreak.csv",
    "cr\r.csv",
    "tab\there.csv",
    "back\\slash.csv",
    "up\\..\\..\\win.csv",
    "\x1b[2J\x1b[31mred.csv",
    "invoice\u202evsc.csv",
    "-rf.csv",
    "--help.csv",
    " spaced  out .csv",
    "x" * 251 + ".csv",  # 255 bytes: the longest name ext4 allows
    "p" * 251 + ".csv",  # the same, holding a password (odd: see below)
    "é" * 125 + ".csv",  # 254 bytes
)
#: Never taken: hidden names (a leading dot), whatever follows.
HIDDEN = ("..dots.csv", "...csv", ".%2e%2fescape.csv", "..\\..\\win.csv")
NAME_MAX = 255


@dataclass(frozen=True, slots=True)
class Run:
    jobs: dict[str, dict[str, Any]]  # by the file name as recorded
    processed: list[str]
    remote: Path
    before: set[Path]
    after: set[Path]
    roots: tuple[Path, Path]
    log: str
    config: Path


def _tree(*roots: Path) -> set[Path]:
    return {p for root in roots for p in root.rglob("*")}


def _config(root: Path, server: SshdServer, remote: Path) -> Path:
    config = root / "syncd.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
        f'[[sources]]\nname = "hr"\nkind = "sftp"\nhost = "{server.host}"\n'
        f'port = {server.port}\nusername = "{server.username}"\n'
        f'key_file = "{server.client_key}"\nknown_hosts = "{server.known_hosts}"\n'
        f'remote_dir = "{remote}"\ntimeout_seconds = 5\nsettle_seconds = 1\n'
        'interval_seconds = 1\nprofile = "default"\nmode = "partial"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, sshd_server: SshdServer) -> Run:
    root = tmp_path_factory.mktemp("names")
    remote = sshd_server.root / root.name
    remote.mkdir()
    config = _config(root, sshd_server, remote)
    for n, name in enumerate(TAKEN + HIDDEN):
        # Every other file holds a password: it is settled as a copy written in its
        # place (with the password blanked), the others are renamed.
        content = (
            f"Email,First Name,Password\r\nperson{n}@example.com,P{n},Secret-{n}-pw\r\n"
            if n % 2
            else f"Email,First Name\r\nperson{n}@example.com,P{n}\r\n"
        )
        (remote / name).write_text(content, encoding="utf-8")
    before = _tree(root, sshd_server.root)
    daemon = Running(root, config)
    processed = remote / "processed"
    try:
        daemon.wait_for(
            "every file to be settled",
            lambda: processed.is_dir() and len(os.listdir(processed)) >= len(TAKEN),
            120,
        )
    finally:
        assert daemon.stop() == 0
    listed, jobs = syncd_json("--config", config, "jobs", "list", "--json", cwd=root)
    assert listed.code == 0, listed.stderr
    return Run(
        jobs={job["file"]: job for job in jobs},
        processed=os.listdir(processed),
        remote=remote,
        before=before,
        after=_tree(root, sshd_server.root),
        roots=(root, remote),
        log=daemon.log.read_text(encoding="utf-8"),
        config=config,
    )


def test_each_name_is_one_job_recorded_under_the_name_as_sent(run: Run) -> None:
    assert sorted(run.jobs) == sorted(TAKEN)
    assert {job["status"] for job in run.jobs.values()} == {"applied"}


def test_each_file_is_settled_as_one_plain_name_in_processed(run: Run) -> None:
    """The job ID in the name, at most NAME_MAX bytes, no control or invisible
    character, no backslash, not hidden; the files left in the folder are the hidden
    ones, untouched."""
    assert len(run.processed) == len(TAKEN)
    for job in run.jobs.values():
        [settled] = [name for name in run.processed if job["job_id"] in name]
        assert len(settled.encode("utf-8")) <= NAME_MAX
        assert not settled.startswith(".")
        assert "\\" not in settled
        assert all(unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp"} for ch in settled)
    assert sorted(p.name for p in run.remote.iterdir() if p.is_file()) == sorted(HIDDEN)
    settled = [(run.remote / "processed" / name).read_text("utf-8") for name in run.processed]
    assert sum("Secret-" in content for content in settled) == 0
    assert sum("Password" in content for content in settled) == len(TAKEN) // 2


def test_nothing_is_written_outside_syncds_folders(run: Run) -> None:
    """What appeared is in the state folder (spool, errors), the database, the daemon's
    own log, or processed/; what went away is exactly the files taken."""
    root, remote = run.roots
    allowed = (root / "state", remote / "processed")
    own = {root / "syncd.db", root / "syncd.db-wal", root / "syncd.db-shm"}
    own |= {root / "daemon.log", root / "daemon.out"}
    appeared = run.after - run.before
    stray = [p for p in appeared if p not in own and not any(p.is_relative_to(a) for a in allowed)]
    assert stray == []
    assert {p.name for p in run.before - run.after} == set(TAKEN)
    assert list((root / "state" / "spool").iterdir()) == []


def test_every_log_line_stays_one_json_object(run: Run) -> None:
    """A name's newline or escape is escaped inside the JSON line, never a line break."""
    events = [json.loads(line) for line in run.log.splitlines() if line]
    taken = [e["file"] for e in events if e.get("event") == "file_taken"]
    assert sorted(taken) == sorted(TAKEN)
    assert "\x1b" not in run.log


def test_the_commands_show_a_name_as_escapes_never_as_terminal_controls(run: Run) -> None:
    """`syncd jobs list` and `jobs show` print a name's newline, escape sequence and
    bidi override as `\\n`, `\\x1b`, `\\u202e`: a sender cannot clear or recolour the
    admin's terminal, or make a name read backwards."""
    root = run.roots[0]
    listed = syncd("--config", run.config, "jobs", "list", "--limit", "50", cwd=root)
    assert listed.code == 0, listed.stderr
    job_id = run.jobs["\x1b[2J\x1b[31mred.csv"]["job_id"]
    shown = syncd("--config", run.config, "jobs", "show", job_id, cwd=root)
    assert shown.code == 0, shown.stderr
    for output in (listed.stdout, shown.stdout):
        assert not any(unicodedata.category(ch) in {"Cf", "Zl", "Zp"} for ch in output)
        assert not set(output) & {"\x1b", "\r", "\t"}
    assert "\\x1b[2J\\x1b[31mred.csv" in shown.stdout
    assert "line\\nbreak.csv" in listed.stdout
    assert "invoice\\u202evsc.csv" in listed.stdout
