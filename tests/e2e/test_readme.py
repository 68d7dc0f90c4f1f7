"""The README's commands work on a fresh clone: every line of its ```sh blocks is run.

The repository's tracked files (`git ls-files`) are copied to a temporary folder, as a
fresh clone would have them, and each command of the README's ```sh blocks runs there in
order, exactly as written, through bash. What is allowed to differ from a person's run:

- `.venv` is a folder of links to the interpreter and `syncd` script running these tests
  (what `make run` would have installed), with `make`'s install stamp, so `make run`
  starts at once instead of installing;
- `<JOB_ID>` is replaced by the job ID the latest command printing one printed first
  (a job list is newest first); any other `<PLACEHOLDER>` fails the test;
- `make test` is skipped: it is what runs this test;
- `make run` starts the daemon in the background; while it runs, each command is
  followed by a wait until `var/drop` is empty, as a person waits for the file they
  dropped to be taken. It is stopped (Ctrl-C: SIGINT) after the last command.

A command must exit 0, or the code its comment names ("exits 3"). Nothing generic about
the README is known here: a command added to it is run, and must work. Examples that
are not meant to be run go in another kind of block (```text, ```console).
Last, the copy is a git repository: whatever the commands generated must be ignored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from syncd.config import SYSTEM_CONFIG_PATH

REPO = Path(__file__).resolve().parents[2]
#: One command may take this long; the daemon this long to take a dropped file.
COMMAND_TIMEOUT_SECONDS = 120
DAEMON_DEADLINE_SECONDS = 90
FENCE = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXIT_CODE = re.compile(r"\bexits? (\d+)\b")
PLACEHOLDER = re.compile(r"<([A-Za-z_]+)>")
JOB_ID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}\b")
#: The README's first block: how to start. Kept first, as it is.
FIRST_BLOCK = ("make run", "make test")


@dataclass(frozen=True, slots=True)
class Command:
    """One command of the README: the shell text, its comment, and the exit code it implies."""

    text: str
    comment: str
    block: int

    @property
    def expected_exit(self) -> int:
        found = EXIT_CODE.search(self.comment)
        return int(found.group(1)) if found else 0


def _split_comment(line: str) -> tuple[str, str]:
    """`cmd args  # comment` -> ("cmd args", "comment"); a `#` inside quotes is no comment."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def readme_commands(text: str) -> list[Command]:
    """Every command of the ```sh blocks, in order (a trailing backslash continues a line)."""
    commands = []
    for block, found in enumerate(FENCE.finditer(text)):
        pending = ""
        for line in found.group(1).splitlines():
            if pending:
                line = pending + " " + line.strip()
                pending = ""
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1].rstrip()
                continue
            command, comment = _split_comment(line)
            if command:
                commands.append(Command(command, comment, block))
        assert not pending, f"a command of block {block} ends with a backslash"
    return commands


def test_the_readme_parser_reads_commands_comments_and_exit_codes() -> None:
    """The parser sees each command with its comment, and "exits N" in it as the code."""
    text = (
        "intro\n```sh\nmake run   # starts\n\n# a comment line\necho '#not a comment' \\\n"
        "  again  # exits 3: held\n```\n```text\nnot run\n```\n"
    )
    assert readme_commands(text) == [
        Command("make run", "starts", 0),
        Command("echo '#not a comment' again", "exits 3: held", 0),
    ]
    assert [c.expected_exit for c in readme_commands(text)] == [0, 3]


def _tracked_copy(destination: Path) -> None:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout, so no list of tracked files: {exc}")
    for name in listed.decode("utf-8").split("\0"):
        source = REPO / name
        if name and source.is_file():  # a tracked file deleted in the checkout is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _installed_venv(clone: Path) -> None:
    """`.venv` as `make run` leaves it: bin/python and bin/syncd, and the install stamp."""
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "syncd").symlink_to(Path(sys.executable).with_name("syncd"))
    stamp = clone / ".venv" / ".installed"
    stamp.touch()
    later = (clone / "pyproject.toml").stat().st_mtime + 10
    os.utime(stamp, (later, later))  # newer than pyproject.toml: make installs nothing


def _git(clone: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


@dataclass
class Daemon:
    """`make run`, started in a session of its own so that it stops with all it started."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, object]]:
        found = []
        for line in self.text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue  # make's own lines
        return found

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DAEMON_DEADLINE_SECONDS
        while not done():
            if self.process.poll() is not None:
                pytest.fail(
                    f"`make run` exited ({self.process.returncode}) before {what}:\n{self.text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.text()}")
            time.sleep(0.2)

    def stop(self) -> int | None:
        """Ctrl-C, as the README says: SIGINT to make and the daemon. (SIGTERM to both
        would reach the daemon twice, since make passes SIGTERM on: "stop now".)"""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None


def _waiting_in(drop: Path) -> list[str]:
    """Files the daemon has still to take (it never takes hidden, .part or .tmp files)."""
    if not drop.is_dir():
        return []
    return sorted(
        p.name
        for p in drop.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix not in (".part", ".tmp")
    )


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh copy of the tracked files, as a git repository with all of them added."""
    if SYSTEM_CONFIG_PATH.exists():
        pytest.skip(f"{SYSTEM_CONFIG_PATH} exists: the README's embedded defaults would not apply")
    root = tmp_path / "syncd"
    root.mkdir()
    _tracked_copy(root)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _installed_venv(root)
    return root


def _start_daemon(clone: Path, log_file: IO[bytes], log: Path) -> Daemon:
    """`make run`, once it logged that it started and made var/drop."""
    process = subprocess.Popen(
        ["bash", "-c", "make run"],
        cwd=clone,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    daemon = Daemon(process, log)
    drop = clone / "var" / "drop"
    daemon.wait_for(
        "the daemon to start watching var/drop",
        lambda: drop.is_dir() and any(e.get("event") == "started" for e in daemon.events()),
    )
    return daemon


def test_every_readme_command_runs_on_a_fresh_clone(clone: Path, tmp_path: Path) -> None:
    """Each ```sh command of the README exits as the README says, in a copy of the repo."""
    commands = readme_commands((clone / "README.md").read_text(encoding="utf-8"))
    assert tuple(c.text for c in commands if c.block == 0) == FIRST_BLOCK
    drop = clone / "var" / "drop"
    daemon: Daemon | None = None
    last_ids: list[str] = []
    ran: list[str] = []
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log_file:
        try:
            for command in commands:
                if command.text == "make test":
                    continue  # it runs the tests, this one among them
                if command.text == "make run":
                    daemon = _start_daemon(clone, log_file, log_path)
                    ran.append(command.text)
                    continue
                text = command.text
                for name in PLACEHOLDER.findall(text):
                    assert name == "JOB_ID", f"unknown placeholder <{name}> in: {text}"
                    assert last_ids, f"no earlier command printed a job ID for: {text}"
                    text = text.replace(f"<{name}>", last_ids[0])
                done = subprocess.run(
                    ["bash", "-c", text],
                    cwd=clone,
                    env=_environment(),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT_SECONDS,
                    check=False,
                )
                ran.append(text)
                assert done.returncode == command.expected_exit, (
                    f"README command `{text}` exited {done.returncode}, the README implies "
                    f"{command.expected_exit}\n--- stdout ---\n{done.stdout}\n"
                    f"--- stderr ---\n{done.stderr}"
                )
                assert "Traceback" not in done.stderr, done.stderr
                last_ids = JOB_ID.findall(done.stdout) or last_ids
                if daemon is not None:
                    daemon.wait_for(
                        f"the daemon to take what `{text}` left in var/drop",
                        lambda: not _waiting_in(drop),
                    )
        finally:
            exit_code = daemon.stop() if daemon is not None else None

    assert daemon is not None, "the README starts the daemon with `make run`"
    assert exit_code is not None, f"`make run` did not stop on Ctrl-C:\n{daemon.text()}"
    # What the README's "Trying it" shows: the files dropped were taken and processed.
    events = daemon.events()
    jobs = {e["file"]: e for e in events if e.get("event") == "job_done"}
    assert jobs, f"the daemon took no file from var/drop:\n{daemon.text()}"
    settled = sorted(p.name for p in (drop / "processed").iterdir())
    assert settled == sorted(
        f"{Path(name).stem}.{job['job_id']}{Path(name).suffix}" for name, job in jobs.items()
    ), daemon.text()
    assert "stopped" in {e.get("event") for e in events}, daemon.text()
    assert len(ran) == len(commands) - 1

    # Generated output stays out of git: errors CSVs, var/ and the venv are all ignored,
    # and no tracked file was changed.
    untracked = _git(clone, "ls-files", "--others", "--exclude-standard")
    assert untracked == "", f"the README's commands left files git would track:\n{untracked}"
    assert _git(clone, "diff", "--name-only") == ""
