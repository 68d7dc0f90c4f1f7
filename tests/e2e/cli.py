"""Running the real `syncd` console script, as a person or a cron job would.

The script is the one installed next to the interpreter running the tests, so the e2e
tests exercise the entry point, argument parsing and exit codes exactly as shipped. The
environment is the test's own minus `SYNCD_CONFIG`, so a developer's setting cannot leak
into a test; stdin is closed and stdout/stderr are pipes (syncd is "not on a terminal").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

#: The installed console script (`[project.scripts] syncd`).
SYNCD = Path(sys.executable).with_name("syncd")


@dataclass(frozen=True, slots=True)
class Finished:
    """How one `syncd` command ended."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as JSON; fails the test if it is not exactly one JSON document."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"stdout is not one JSON document ({exc}):\n{self.stdout}\n--- stderr:\n"
                f"{self.stderr}"
            ) from None


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a test's syncd runs in: ours, without SYNCD_CONFIG, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "SYNCD_CONFIG"}
    env.update(extra or {})
    return env


def syncd(
    *args: str | Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Finished:
    """Run `syncd ARGS...` in `cwd` and wait for it (at most `timeout` seconds)."""
    done = subprocess.run(
        [str(SYNCD), *map(str, args)],
        cwd=cwd,
        env=environment(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Finished(
        done.returncode,
        done.stdout.decode("utf-8", errors="replace"),
        done.stderr.decode("utf-8", errors="replace"),
    )


def syncd_json(
    *args: str | Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> tuple[Finished, Any]:
    """Run `syncd ARGS... --json`-style commands and parse what they print."""
    finished = syncd(*args, cwd=cwd, env=env, timeout=timeout)
    return finished, finished.json()


def spawn(
    *args: str | Path,
    cwd: Path,
    stderr: BinaryIO,
    env: Mapping[str, str] | None = None,
    stdout: BinaryIO | None = None,
    umask: int = -1,
) -> subprocess.Popen[bytes]:
    """Start `syncd ARGS...` (the daemon) without waiting; stderr goes to a file (and
    stdout too when given one, else nowhere); `umask`: the one it starts with (-1: ours).

    A file rather than a pipe: a daemon logging into a pipe nobody reads would block.
    """
    process = subprocess.Popen(
        [str(SYNCD), *map(str, args)],
        cwd=cwd,
        env=environment(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if stdout is None else stdout,
        stderr=stderr,
        umask=umask,
    )
    SPAWNED.append(process)
    return process


#: Every process `spawn` started, so that one a failed test left running is stopped.
SPAWNED: list[subprocess.Popen[bytes]] = []


def kill_left_running(since: int) -> None:
    """Kill the processes spawned since `SPAWNED` was `since` long that still run: a
    test that failed before stopping its daemon would leave it running (and logging)
    through every later test."""
    for process in SPAWNED[since:]:
        if process.poll() is None:
            process.kill()
            process.wait()
    del SPAWNED[since:]
