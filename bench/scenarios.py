"""The benchmark scenarios: syncd's real command on generated nights, per size and database.

For each size N the nights are generated once: a first export, the same users shuffled
(an identical file would be skipped by its checksum), a night of churn after the first,
and a dirty night after that. For each database the scenarios then run in order on a
fresh directory: validate only, first full load, no-change re-import, churn, dirty night.
Each yields a `Result` against its target (the targets are for a million rows; smaller
sizes are held to the memory cap only). What each command's JSON counts should be is
known from how the nights were made, and a wrong count fails the scenario too.

PostgreSQL runs on a throwaway cluster, as in the tests: initdb into a temp dir, as the
`postgres` account when we are root, on a free loopback port, removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import Run, measure, say, syncd_command
from bench.generate import dirty, first_export, next_night, planted_rows, shuffled

CONFIG = Path(__file__).with_name("config") / "sqlite.toml"
SQLITE_URL = 'url = "sqlite:///var/syncd.db"'
SOURCE = "hr"
RSS_TARGET_MIB = 1024.0
TARGET_ROWS = 1_000_000
# Seconds at a million rows; None: measured, no target.
TARGET_SECONDS: dict[str, dict[str, float | None]] = {
    "validate": {"sqlite": 1.0, "postgresql": 1.0},
    "first load": {"sqlite": 20.0, "postgresql": 15.0},
    "no-change": {"sqlite": 5.0, "postgresql": 5.0},
    "churn": {"sqlite": 8.0, "postgresql": 8.0},
    "dirty night": {"sqlite": None, "postgresql": None},
}
# next_night's default shares, which the churn scenario's counts are checked against.
LEAVERS, JOINERS, CHANGES, RENAMES = 0.01, 0.01, 0.01, 0.001
DIRTY_RATE = 0.005


@dataclass(frozen=True, slots=True)
class Result:
    """One line of the results table."""

    scenario: str
    n: int
    database: str
    wall_seconds: float | None
    peak_rss_mib: float | None
    target_seconds: float | None
    met: bool | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Nights:
    """The files of one size, on disk, and the counts each should produce."""

    n: int
    first: Path
    reordered: Path
    churn: Path
    dirty: Path
    churn_counts: dict[str, int]
    dirty_invalid: int


def make_nights(n: int, folder: Path, seed: int = 2026) -> tuple[Nights, list[Result]]:
    """Generate and write the nights for size `n`; the generator's own timings as results."""
    timings: list[Result] = []

    def timed(what: str, make: Any, *args: Any, **kwargs: Any) -> bytes:
        started = time.perf_counter()
        data: bytes = make(*args, **kwargs)
        seconds = time.perf_counter() - started
        timings.append(
            Result(
                f"generate: {what}", n, "-", seconds, None, None, None, f"{len(data) / 1e6:.0f} MB"
            )
        )
        return data

    say(f"generating nights of {n:,} rows")
    first = timed("first export", first_export, n, seed)
    night = timed("next night", next_night, first, seed + 1)
    files = {
        "first.csv": first,
        "first_reordered.csv": timed("shuffled", shuffled, first, seed + 2),
        "night2_churn.csv": night,
        "night3_dirty.csv": timed(
            "dirty", dirty, next_night(night, seed + 3), rate=DIRTY_RATE, seed=seed + 4
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    renames = round(n * RENAMES)
    nights = Nights(
        n=n,
        first=folder / "first.csv",
        reordered=folder / "first_reordered.csv",
        churn=folder / "night2_churn.csv",
        dirty=folder / "night3_dirty.csv",
        churn_counts={
            "created": round(n * JOINERS),
            "archived": round(n * LEAVERS),
            "updated": round(n * CHANGES) + renames,
            "email_changed": renames,
            "reactivated": 0,
        },
        dirty_invalid=sum(planted_rows(n, DIRTY_RATE).values()),
    )
    return nights, timings


def _counts(run: Run) -> dict[str, Any]:
    payload = run.json() or {}
    counts = payload.get("counts")
    return counts if isinstance(counts, dict) else {}


def _mismatches(run: Run, expected: dict[str, int]) -> list[str]:
    counts = _counts(run)
    return [
        f"{name}={counts.get(name)} (expected {want})"
        for name, want in expected.items()
        if counts.get(name) != want
    ]


def _result(
    scenario: str,
    nights: Nights,
    database: str,
    run: Run,
    *,
    exit_code: int,
    expected: dict[str, int],
    note: str = "",
) -> Result:
    """A scenario's verdict: the right exit code and counts, in time, under the memory cap."""
    target = TARGET_SECONDS[scenario][database] if nights.n >= TARGET_ROWS else None
    problems = _mismatches(run, expected) if run.exit_code == exit_code else []
    if run.exit_code != exit_code:
        problems.append(f"exit {run.exit_code}, expected {exit_code}: {run.stderr_tail()}")
    elif run.json() is None:
        problems.append(f"no JSON on stdout: {run.stdout[-200:]!r}")
    misses = []
    if target is not None and run.wall_seconds > target:
        misses.append(f"over time: {run.wall_seconds:.2f} s > {target:g} s")
    if run.peak_rss_mib > RSS_TARGET_MIB:
        misses.append(f"over memory: {run.peak_rss_mib:.0f} MiB > {RSS_TARGET_MIB:g} MiB")
    met = not problems and not misses
    # A scenario's own note (e.g. "0 user rows written") only holds when nothing went wrong.
    notes = problems + misses if problems else [note, *misses]
    return Result(
        scenario,
        nights.n,
        database,
        run.wall_seconds,
        run.peak_rss_mib,
        target,
        met,
        "; ".join(n for n in notes if n),
    )


def run_scenarios(nights: Nights, database: str, url: str, workdir: Path) -> list[Result]:
    """The five scenarios in order on one fresh database."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "var" / "drop").mkdir(parents=True, exist_ok=True)
    config_text = CONFIG.read_text(encoding="utf-8")
    config = workdir / "syncd.toml"
    config.write_text(config_text.replace(SQLITE_URL, f'url = "{url}"'), encoding="utf-8")
    base = [syncd_command(), "--config", str(config)]
    n = nights.n

    def syncd(scenario: str, *args: str) -> Run:
        say(f"{scenario}: N={n:,} on {database}")
        run = measure([*base, *args, "--json"], cwd=workdir)
        say(
            f"{scenario}: exit {run.exit_code} in {run.wall_seconds:.2f} s, "
            f"{run.peak_rss_mib:.0f} MiB"
        )
        return run

    def load(path: Path) -> list[str]:
        return ["import", str(path), "--source", SOURCE, "--mode", "full"]

    unchanged = {"created": 0, "updated": 0, "archived": 0, "reactivated": 0, "unchanged": n}
    steps: list[tuple[str, list[str], int, dict[str, int]]] = [
        ("validate", ["validate", str(nights.first), "--source", SOURCE], 0,
         {"rows": n, "valid": n, "invalid": 0}),
        ("first load", load(nights.first), 0, {"rows": n, "created": n, "invalid": 0}),
        ("no-change", load(nights.reordered), 0, unchanged),
        ("churn", load(nights.churn), 0, nights.churn_counts),
        ("dirty night", load(nights.dirty), 1, {"invalid": nights.dirty_invalid}),
    ]  # fmt: skip
    results = []
    for scenario, args, exit_code, expected in steps:
        run = syncd(scenario, *args)
        payload = run.json() or {}
        note = ""
        if scenario == "no-change":
            # An identical file would be skipped by its checksum and prove nothing.
            skipped = payload.get("status") == "skipped"
            note = "skipped by checksum!" if skipped else "0 user rows written"
        result = _result(
            scenario, nights, database, run, exit_code=exit_code, expected=expected, note=note
        )
        if scenario == "dirty night" and run.exit_code == exit_code:
            errors_csv = payload.get("errors_csv")
            if errors_csv and (workdir / str(errors_csv)).is_file():
                size = (workdir / str(errors_csv)).stat().st_size
                result = _with_note(result, f"errors CSV written ({size / 1e3:,.0f} kB)")
            else:
                result = _with_note(result, f"errors_csv {errors_csv!r} is not a file", False)
        results.append(result)
    return results


def _with_note(result: Result, note: str, met: bool | None = None) -> Result:
    """The result with one more note and, when given, another verdict."""
    return Result(
        result.scenario,
        result.n,
        result.database,
        result.wall_seconds,
        result.peak_rss_mib,
        result.target_seconds,
        result.met if met is None else met,
        "; ".join(part for part in (result.note, note) if part),
    )


def failed(scenario: str, n: int, database: str, why: str) -> Result:
    """A scenario that could not run at all, e.g. no PostgreSQL."""
    return Result(scenario, n, database, None, None, None, False, why)


# --- the throwaway PostgreSQL cluster ---------------------------------------------------

PG_BINDIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"))
PG_ACCOUNT = "postgres"  # PostgreSQL refuses to run as root; as root it runs as this user


class PostgresUnavailable(Exception):
    """The cluster could not be started; the message says why."""


def _bindir() -> Path:
    found = shutil.which("initdb")
    candidates = [*PG_BINDIRS, *([Path(found).parent] if found else [])]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb and pg_ctl found)")


def _as_account(command: list[str]) -> list[str]:
    return ["runuser", "-u", PG_ACCOUNT, "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Cluster:
    """A running throwaway cluster; `fresh_database` makes an empty database on it."""

    port: int

    def fresh_database(self, name: str) -> str:
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{PG_ACCOUNT}@127.0.0.1:{self.port}/{name}"

    def _conninfo(self, database: str) -> str:
        return f"postgresql://{PG_ACCOUNT}@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """Start a cluster with trust auth on loopback, durability off; stop and remove it after."""
    bindir = _bindir()
    base = Path(tempfile.mkdtemp(prefix="syncd-bench-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(PG_ACCOUNT)
        os.chown(base, account.pw_uid, account.pw_gid)
    data, log = base / "data", base / "postgres.log"
    pg_ctl = [str(bindir / "pg_ctl"), "--pgdata", str(data)]
    started = False
    try:
        initdb = [
            str(bindir / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            PG_ACCOUNT,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        ]
        done = subprocess.run(_as_account([*initdb, "--locale", "C.UTF-8"]), capture_output=True)
        if done.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            done = subprocess.run(_as_account([*initdb, "--locale", "C"]), capture_output=True)
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.decode(errors='replace')}")
        port = _free_port()
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            # Durability stays on (unlike the test fixture): the targets are for a real
            # server, where a commit waits for fsync.
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{base}'\n"
                "shared_buffers = 256MB\nmax_wal_size = 4GB\n"
            )
        say(f"starting PostgreSQL on port {port}")
        done = subprocess.run(
            _as_account([*pg_ctl, "start", "--log", str(log), "--wait", "--silent"]),
            capture_output=True,
        )
        started = done.returncode == 0
        if not started:
            tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr!r} {tail}")
        yield Cluster(port)
    finally:
        if started:
            subprocess.run(
                _as_account([*pg_ctl, "stop", "--mode", "immediate", "--wait"]),
                capture_output=True,
            )
        shutil.rmtree(base, ignore_errors=True)
