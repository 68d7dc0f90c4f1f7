"""The benchmark scenarios: syncd's real command on generated nights, per size and database.

For each size N the nights are generated once: a first export, the same users shuffled
(an identical file would be skipped by its checksum), a night of churn after the first,
and a dirty night after that. For each database and each run the scenarios then run in
order on a fresh directory: validate the clean first export, validate the dirty night,
first full load, no-change re-import, churn, dirty night. Each gives a `Sample`: the
command's wall time and peak RSS and whatever was wrong with its exit code, its JSON
counts (known from how the nights were made) or its errors CSV; `bench.targets` judges
the samples of all runs together.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import Run, measure, say, syncd_command
from bench.anchors import run_anchor
from bench.generate import dirty, first_export, next_night, planted_rows, shuffled
from bench.targets import CSV_READER, SCENARIOS, Sample, time_target

CONFIG = Path(__file__).with_name("config") / "sqlite.toml"
SQLITE_URL = 'url = "sqlite:///var/syncd.db"'
SOURCE = "hr"
# next_night's default shares, which the churn scenario's counts are checked against.
LEAVERS, JOINERS, CHANGES, RENAMES = 0.01, 0.01, 0.01, 0.001
DIRTY_RATE = 0.005


@dataclass(frozen=True, slots=True)
class Generated:
    """How long the generator took for one file, and its size."""

    file: str
    n: int
    seconds: float
    megabytes: float


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


def make_nights(n: int, folder: Path, seed: int = 2026) -> tuple[Nights, list[Generated]]:
    """Generate and write the nights for size `n`; the generator's own timings.

    Each file goes to disk as soon as it is made, so at 5M rows the harness holds two
    files of ~700 MB at a time rather than four.
    """
    timings: list[Generated] = []
    folder.mkdir(parents=True, exist_ok=True)

    def made(name: str, make: Callable[..., bytes], *args: Any, **kwargs: Any) -> bytes:
        started = time.perf_counter()
        data = make(*args, **kwargs)
        timings.append(Generated(name, n, time.perf_counter() - started, len(data) / 1e6))
        (folder / name).write_bytes(data)
        return data

    say(f"generating nights of {n:,} rows")
    first = made("first.csv", first_export, n, seed)
    made("first_reordered.csv", shuffled, first, seed + 2)
    night = made("night2_churn.csv", next_night, first, seed + 1)
    del first
    later = next_night(night, seed + 3)
    del night
    made("night3_dirty.csv", dirty, later, DIRTY_RATE, seed + 4)
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


def _problems(run: Run, exit_code: int, expected: dict[str, int]) -> list[str]:
    """What is wrong with a command's exit code and JSON counts; nothing when all is right."""
    if run.exit_code != exit_code:
        # A rejected file says why in its JSON messages; a crash on stderr.
        messages = (run.json() or {}).get("messages") or []
        why = " | ".join(map(str, messages))[:160] or run.stderr_tail()
        return [f"exit {run.exit_code}, expected {exit_code}: {why}"]
    if run.json() is None:
        return [f"no JSON on stdout: {run.stdout[-200:]!r}"]
    counts = _counts(run)
    return [
        f"{name}={counts.get(name)} (expected {want})"
        for name, want in expected.items()
        if counts.get(name) != want
    ]


def _errors_csv(run: Run, workdir: Path) -> tuple[str, list[str]]:
    """A note on the errors CSV the command says it wrote, or the problem if it did not."""
    errors_csv = (run.json() or {}).get("errors_csv")
    path = workdir / str(errors_csv)
    if errors_csv and path.is_file():
        return f"errors CSV written ({path.stat().st_size / 1e3:,.0f} kB)", []
    return "", [f"errors_csv {errors_csv!r} is not a file"]


def run_scenarios(nights: Nights, database: str, url: str, workdir: Path) -> dict[str, Sample]:
    """The scenarios in order on one fresh database: one sample each."""
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

    def check(path: Path) -> list[str]:
        return ["validate", str(path), "--source", SOURCE]

    unchanged = {"created": 0, "updated": 0, "archived": 0, "reactivated": 0, "unchanged": n}
    dirty_counts = {"invalid": nights.dirty_invalid}
    steps: list[tuple[str, list[str], int, dict[str, int]]] = [
        ("validate clean", check(nights.first), 0, {"rows": n, "valid": n, "invalid": 0}),
        ("validate dirty", check(nights.dirty), 1, dirty_counts),
        ("first load", load(nights.first), 0, {"rows": n, "created": n, "invalid": 0}),
        ("no-change", load(nights.reordered), 0, unchanged),
        ("churn", load(nights.churn), 0, nights.churn_counts),
        ("dirty night", load(nights.dirty), 1, dirty_counts),
    ]  # fmt: skip
    assert tuple(step[0] for step in steps) == SCENARIOS
    samples = {}
    for scenario, args, exit_code, expected in steps:
        # The machine's speed drifts within a run (csv.reader once took 7.4, 14.0 and 18.9 s
        # at 5M in one `make bench`): a scenario held to csv.reader has one timed just
        # before it, on the same file, and is judged against that.
        paired = None
        if time_target(scenario, database, n)[0] == CSV_READER:
            paired = run_anchor(CSV_READER, nights.first, n, workdir / "anchors").seconds
        run = syncd(scenario, *args)
        problems = _problems(run, exit_code, expected)
        note = ""
        if scenario == "no-change":
            # An identical file would be skipped by its checksum and prove nothing.
            if (run.json() or {}).get("status") == "skipped":
                problems.append("skipped by checksum")
            note = "0 user rows written"
        if scenario in ("validate dirty", "dirty night") and not problems:
            note, problems = _errors_csv(run, workdir)
        samples[scenario] = Sample(
            run.wall_seconds, run.peak_rss_mib, tuple(problems), note, anchor_seconds=paired
        )
    return samples


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
        """An empty database `name` (dropped first if there is one); its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{PG_ACCOUNT}@127.0.0.1:{self.port}/{name}"

    def conninfo(self, database: str) -> str:
        """How psycopg connects to `database` on this cluster."""
        return f"postgresql://{PG_ACCOUNT}@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """Start a cluster with trust auth on loopback, durability on; stop and remove it after."""
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
