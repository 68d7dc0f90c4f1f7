"""The benchmark harness for syncd: how one run of the real `syncd` command is measured.

`measure` starts a command, waits for it with `os.wait4` and keeps its wall time, exit
code, output and peak resident memory (the kernel's exact `ru_maxrss` of the command,
not a sample). A failing or hanging command is a result like any other, never an exception,
so one broken scenario cannot stop the rest of a benchmark run.

`generate` builds the input files, `anchors` times the plainest reading and loading of
them, `scenarios` runs syncd on them against SQLite and PostgreSQL, `targets` judges
syncd's times as ratios to the anchors, `plot` draws how they scale, `compare` times
other validators on the same file; `python -m bench` runs it all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024

#: Importing polars puts its own allocator options into this process's environment,
#: where every measured command would inherit them and run unlike `syncd` started from a
#: shell or by systemd. Read before any of the benchmark imports polars: only a value the
#: user set is passed on.
_ALLOCATOR = "_RJEM_MALLOC_CONF"
_USER_ALLOCATOR = os.environ.get(_ALLOCATOR)


def command_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) as a measured command should get it."""
    out = dict(os.environ if env is None else env)
    if _USER_ALLOCATOR is None:
        out.pop(_ALLOCATOR, None)
    else:
        out[_ALLOCATOR] = _USER_ALLOCATOR
    return out


def say(message: str) -> None:
    """A progress line on stderr, so stdout keeps only the tables."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def syncd_command() -> str:
    """The `syncd` script of the interpreter running the benchmark (the venv's own)."""
    beside = Path(sys.executable).with_name("syncd")
    return str(beside) if beside.exists() else "syncd"


@dataclass(frozen=True, slots=True)
class Run:
    """What one command did: exit code, wall time, peak RSS and its output."""

    command: tuple[str, ...]
    exit_code: int
    wall_seconds: float
    peak_rss_bytes: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / MIB

    def stderr_tail(self, lines: int = 2, width: int = 160) -> str:
        """The last non-blank lines of stderr, joined and cut short, for a table cell."""
        tail = [line.strip() for line in self.stderr.splitlines() if line.strip()][-lines:]
        text = " | ".join(tail)
        return text if len(text) <= width else "…" + text[-width:]

    def json(self) -> dict[str, Any] | None:
        """stdout parsed as the one JSON object `--json` prints, or None if it is not."""
        try:
            value = json.loads(self.stdout)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


# Runs in a bare interpreter between the harness and the measured command. The kernel
# folds the RSS of whatever image a process exec'd from into its ru_maxrss, and a child
# spawned straight from the harness starts as a copy of the harness with its generated
# files in memory; from this launcher it starts as a copy of a ~10 MiB interpreter, so
# ru_maxrss is the command's own peak.
_LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
try:
    pid = os.posix_spawnp(command[0], command, os.environ)
except OSError as exc:
    print(f"cannot start {command[0]}: {exc}", file=sys.stderr)
    sys.exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "wall": wall,
               "maxrss_kib": usage.ru_maxrss}, out)
"""


def measure(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
) -> Run:
    """Run `command` to its end and measure it; a command that cannot start gets exit 127."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        report = Path(scratch) / "usage.json"
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *command]
        # A session of its own, so a timeout can stop the command with its launcher.
        process = subprocess.Popen(
            launcher,
            cwd=cwd,
            env=command_environment(env),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        try:
            usage = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            usage = {"exit": process.returncode or 127, "wall": 0.0, "maxrss_kib": 0}
    if timed_out:
        stderr += f"\nkilled after {timeout:.0f} s"
        usage = {"exit": -signal.SIGKILL, "wall": timeout, "maxrss_kib": 0}
    return Run(
        command=tuple(command),
        exit_code=int(usage["exit"]),
        wall_seconds=float(usage["wall"]),
        peak_rss_bytes=int(usage["maxrss_kib"]) * 1024,  # Linux reports KiB
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
    )
