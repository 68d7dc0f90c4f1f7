"""A throwaway PostgreSQL cluster for integration tests, and database URLs on it.

`postgres_server` runs one cluster per test session (initdb + pg_ctl in a temp dir, trust
auth on 127.0.0.1, fsync off); `postgres_url` gives each test its own fresh database on it;
`db_url` runs a test once on SQLite and once on PostgreSQL, the two databases syncd supports.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.servers import (
    LOOPBACK,
    START_TIMEOUT_SECONDS,
    free_port,
    log_tail,
    running_as_root,
    wait_until,
)

SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; as root we hand the cluster to this account.
SERVER_ACCOUNT = "postgres"
# C.UTF-8 so lower()/upper() handle non-ASCII the way a production cluster does; plain C
# is the fallback for a libc without it.
LOCALES = ("C.UTF-8", "C")


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """Where the throwaway cluster listens and whom to connect as (no password: trust auth)."""

    host: str
    port: int
    user: str

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        """A SQLAlchemy URL for `database` (pass driver="postgresql" for a libpq URI)."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """A libpq URI for `database`, as psycopg.connect takes it."""
        return self.url(database, driver="postgresql")


def _version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>/bin, newest version first when reversed."""
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        # pg_config can come from a libpq-dev of another version than the server, so every
        # candidate is checked for the binaries rather than trusted.
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _as_server_account(command: list[str]) -> list[str]:
    """The command, run as the postgres account when we are root (PostgreSQL insists)."""
    if not running_as_root():
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", SERVER_ACCOUNT, "--", *command]
    return ["su", SERVER_ACCOUNT, "-s", "/bin/sh", "-c", shlex.join(command)]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the server account, capturing its output for messages."""
    return subprocess.run(
        _as_server_account(command),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS * 2,
    )


def _prepare_base_dir() -> Path:
    """A temp dir the server account owns (root's pytest tmp dirs are closed to it)."""
    base = Path(tempfile.mkdtemp(prefix="syncd-pg-"))
    if running_as_root():
        try:
            account = pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            shutil.rmtree(base, ignore_errors=True)
            pytest.fail(
                f"PostgreSQL refuses to run as root and there is no {SERVER_ACCOUNT!r} user "
                f"to run it as: create one (useradd --system {SERVER_ACCOUNT}) or run the "
                "tests as an ordinary user",
                pytrace=False,
            )
        os.chown(base, account.pw_uid, account.pw_gid)
    return base


def _initdb(bindir: Path, base: Path, data: Path) -> None:
    """Create the cluster with trust auth, trying each locale until one is available."""
    problems: list[str] = []
    for locale in LOCALES:
        result = _run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                locale,
                "--no-sync",
            ],
            cwd=base,
        )
        if result.returncode == 0:
            return
        problems.append(f"--locale {locale}: {(result.stderr or result.stdout).strip()}")
        shutil.rmtree(data, ignore_errors=True)
    pytest.fail("initdb failed:\n" + "\n".join(problems), pytrace=False)


def _configure(data: Path, base: Path, port: int) -> None:
    """Listen on loopback only, keep the socket in our temp dir, and skip durability."""
    settings = {
        "listen_addresses": f"'{LOOPBACK}'",
        "port": str(port),
        "unix_socket_directories": f"'{base}'",
        # Tests throw the cluster away, so durability only costs time.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
    }
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# syncd test fixture\n")
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())


def _accepts_connections(server: PostgresServer) -> bool:
    """Whether the cluster answers a real login over TCP, not just a listening socket."""
    try:
        with psycopg.connect(server.conninfo(), connect_timeout=2) as conn:
            conn.execute("select 1")
    except psycopg.Error:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster on a free loopback port for the whole session."""
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL is not installed (no initdb/pg_ctl via pg_config, "
            "/usr/lib/postgresql/*/bin or PATH): run `make system-deps`",
            pytrace=False,
        )
    base = _prepare_base_dir()
    data = base / "data"
    log = base / "postgres.log"
    pg_ctl = str(bindir / "pg_ctl")
    started = False
    try:
        _initdb(bindir, base, data)
        port = free_port()
        _configure(data, base, port)
        timeout = str(int(START_TIMEOUT_SECONDS))
        start = [pg_ctl, "start", "--pgdata", str(data), "--log", str(log), "--wait"]
        result = _run([*start, "--timeout", timeout, "--silent"], cwd=base)
        started = result.returncode == 0
        server = PostgresServer(host=LOOPBACK, port=port, user=SUPERUSER)
        problem = (
            wait_until(lambda: _accepts_connections(server))
            if started
            else (result.stderr or result.stdout).strip()
        )
        if problem is not None:
            pytest.fail(
                f"PostgreSQL did not start on {LOOPBACK}:{port}: {problem}\n"
                f"--- {log.name} ---\n{log_tail(log)}",
                pytrace=False,
            )
        yield server
    finally:
        if started:
            _run([pg_ctl, "stop", "--pgdata", str(data), "--mode", "immediate", "--wait"], base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test, as a postgresql+psycopg:// URL; dropped after."""
    name = f"syncd_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield postgres_server.url(name)
    finally:
        # FORCE: a test that forgot to dispose its engine must not make teardown fail.
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn,
        ):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each database syncd supports: SQLite in tmp_path, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'syncd.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
