"""Shared end-to-end fixtures: a config file for a database, and the real `syncd` command.

Tests drive the installed console script as a subprocess, in a working directory of
their own, exactly as an admin runs it; nothing of syncd is imported or patched here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: The console script installed next to the interpreter running the tests.
SYNCD = Path(sys.executable).with_name("syncd")
#: A command that takes longer than this is stuck, not slow.
COMMAND_TIMEOUT_SECONDS = 60
#: The keys `--json` of `validate`, `import` and `jobs show` always has (DESIGN.md), written
#: out here rather than taken from syncd, so a change to the contract fails a test.
OUTCOME_KEYS = frozenset(
    {"job_id", "status", "source", "mode", "file", "encoding", "counts", "errors_csv", "messages"}
)
#: The counts of that object, in the contract's order.
COUNT_NAMES = (
    "rows", "valid", "invalid", "created", "updated", "unchanged", "archived", "reactivated",
    "email_changed",
)  # fmt: skip

TomlValue = str | int | float | bool | Sequence[str]


def _toml(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    return "[" + ", ".join(_toml(item) for item in value) + "]"


def _table(header: str, values: Mapping[str, TomlValue]) -> list[str]:
    return [header, *(f"{key} = {_toml(value)}" for key, value in values.items()), ""]


def write_config(
    root: Path,
    database_url: str,
    *,
    sources: Sequence[Mapping[str, TomlValue]],
    directory: Mapping[str, TomlValue],
    extra: Sequence[str] = (),
) -> Path:
    """Write `root/syncd.toml`: state (secret, errors CSVs, outbox) under `root/var`, the
    given database, `[[sources]]` tables and `[directory]` rules, then `extra` lines (a
    profile, say); return its path."""
    lines = [f"state_dir = {_toml(str(root / 'var'))}", ""]
    lines += _table("[database]", {"url": database_url})
    for source in sources:
        lines += _table("[[sources]]", source)
    lines += _table("[directory]", directory)
    lines += extra
    path = root / "syncd.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class Ran:
    """What one `syncd` command did: its exit code, its output, and that output parsed
    as JSON (None when it is not JSON, e.g. a command run without `--json`)."""

    code: int
    stdout: str
    stderr: str
    json: Any

    def describe(self) -> str:
        """The whole exchange, for an assertion message."""
        return f"exit {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def run_syncd(config: Path, *args: str | Path, cwd: Path) -> Ran:
    """Run `syncd --config CONFIG ARGS...` in `cwd`, as a person would, output piped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["NO_COLOR"] = "1"
    done = subprocess.run(
        [str(SYNCD), "--config", str(config), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    try:
        parsed = json.loads(done.stdout)
    except ValueError:
        parsed = None
    return Ran(done.returncode, done.stdout, done.stderr, parsed)


@dataclass(frozen=True, slots=True)
class Syncd:
    """The `syncd` command bound to one config file and working directory."""

    config: Path
    cwd: Path

    def __call__(self, *args: str | Path) -> Ran:
        ran = run_syncd(self.config, *args, cwd=self.cwd)
        assert "Traceback" not in ran.stderr, ran.describe()
        return ran


@pytest.fixture(scope="session")
def syncd_script() -> Path:
    """The installed `syncd` console script; the e2e tests cannot run without it."""
    if not SYNCD.is_file():
        pytest.fail(
            f"the syncd console script is not at {SYNCD}: install the project "
            "(pip install -e .) into the interpreter that runs the tests",
            pytrace=False,
        )
    return SYNCD
