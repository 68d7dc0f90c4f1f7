"""Every file exactly once, through the real `syncd run`: a daemon killed with SIGKILL at
any point applies the file once after a restart, leaving the directory as an unbroken
run would; SIGTERM rolls back a job past the stop timeout and exits 0; SIGHUP re-reads
the configuration; a folder watched by polling works as inotify does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.e2e.cli import spawn, syncd_json
from tests.servers.sshd import SshdServer

DEADLINE_SECONDS = 60


class Running:
    """One `syncd run` process, its log (stderr) and stdout, and ways to wait on it."""

    def __init__(
        self,
        root: Path,
        config: Path,
        name: str = "daemon",
        env: Mapping[str, str] | None = None,
        umask: int = -1,
    ) -> None:
        self.root, self.config = root, config
        self.log = root / f"{name}.log"
        self.stdout = root / f"{name}.out"
        with self.log.open("ab") as stderr, self.stdout.open("ab") as stdout:
            self.process = spawn(
                "--config", config, "run", cwd=root, stderr=stderr, stdout=stdout, env=env,
                umask=umask,
            )  # fmt: skip
        self.wait_for("it started", lambda: '"started"' in self.log.read_text())

    def wait_for(
        self, what: str, done: Callable[[], bool], seconds: float = DEADLINE_SECONDS
    ) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            if self.process.poll() is not None:
                pytest.fail(
                    f"syncd run exited ({self.process.returncode}) before {what}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [e for e in map(json.loads, filter(None, lines)) if e.get("event") == name]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Where is it stuck? SIGUSR1 writes every thread's stack to its log.
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.process.kill()
            pytest.fail(f"syncd run did not stop within {timeout} s:\n{self.tail()}")


def _config(root: Path, db_url: str, stop_timeout: float = 3, **source: object) -> Path:
    values = {"settle_seconds": 0.3, "interval_seconds": 1, "profile": "default", "mode": "full"}
    values.update(source)
    body = "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
    config = root / "syncd.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\nstop_timeout_seconds = {stop_timeout}\n'
        f'[database]\nurl = "{db_url}"\n'
        f'[[sources]]\nname = "drop"\nkind = "local"\npath = "{root / "drop"}"\n{body}\n',
        encoding="utf-8",
    )
    return config


def _export(path: Path, rows: int, *, tag: str = "") -> Path:
    lines = ["Email,First Name,Last Name"]
    lines += [f"user{n}@example.com,Zoë{n}{tag},Ødegård" for n in range(rows)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def _drop(root: Path, name: str, rows: int, *, tag: str = "") -> None:
    staging = _export(root / f"{name}.staging", rows, tag=tag)
    os.replace(staging, root / "drop" / name)


def _jobs(db_url: str) -> list[dict[str, Any]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, file_name, status, created, rows FROM jobs"))
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def _users(root: Path, config: Path) -> list[dict[str, Any]]:
    finished, users = syncd_json("--config", config, "users", "list", "--json", cwd=root)
    assert finished.code == 0, finished.stderr
    return list(users)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "drop").mkdir()
    return tmp_path


@pytest.mark.parametrize("after", [0.2, 0.7])
def test_a_daemon_killed_at_any_point_applies_the_file_once_after_a_restart(
    root: Path, db_url: str, after: float
) -> None:
    """SIGKILL `after` seconds into a job: a restarted daemon recovers the job, the file
    is applied once (one job, applied), settled into processed/, and the directory holds
    every user once, as an unbroken run leaves it."""
    rows = 15_000
    config = _config(root, db_url)
    daemon = Running(root, config)
    _drop(root, "users.csv", rows)
    daemon.wait_for("the job to run", lambda: any(j["status"] == "running" for j in _jobs(db_url)))
    time.sleep(after)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()

    again = Running(root, config, "again")
    processed = root / "drop" / "processed"
    again.wait_for("the file to be settled", lambda: any(processed.glob("users.*.csv")), 120)
    assert again.stop() == 0
    jobs = _jobs(db_url)
    assert [(j["file_name"], j["status"], j["created"]) for j in jobs] == [
        ("users.csv", "applied", rows)
    ], jobs
    [settled] = processed.glob("users.*.csv")
    assert jobs[0]["id"] in settled.name
    users = _users(root, config)
    assert len(users) == rows
    assert len({u["email"] for u in users}) == rows
    assert {u["status"] for u in users} == {"active"}


def _reports(db_url: str) -> list[Any]:
    """The reports queued in the outbox: `job_id`, `kind`, `recipients` (JSON)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT job_id, kind, recipients FROM outbox")))
    finally:
        engine.dispose()


def _is(read: Callable[[str], object], db_url: str, expected: object) -> bool:
    return read(db_url) == expected


def _attempts(db_url: str) -> list[tuple[str, int]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT status, attempts FROM jobs"))]
    finally:
        engine.dispose()


def test_a_file_that_kills_its_daemon_three_times_is_given_up_into_failed(
    root: Path, db_url: str
) -> None:
    """A file whose daemon is killed while running it (as the kernel kills one out of
    memory) runs again after each restart, three times in all; the next daemon gives up
    on it: the job ends rejected saying why, nothing is applied, the file goes to
    failed/ and its report is queued, instead of the daemon dying on it for ever."""
    config = _config(root, db_url, notify=["it@example.com"])
    _drop(root, "users.csv", 15_000)
    for attempt in range(1, 4):
        daemon = Running(root, config, f"attempt{attempt}")
        begun: list[tuple[str, int]] = [("running", attempt)]
        daemon.wait_for(f"attempt {attempt}", partial(_is, _attempts, db_url, begun))
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait()

    last = Running(root, config, "last")
    failed = root / "drop" / "failed"
    last.wait_for("the file to be given up", lambda: any(failed.glob("users.*.csv")))
    assert last.stop() == 0
    [job] = _jobs(db_url)
    assert (job["status"], job["created"]) == ("rejected", 0)
    assert [p.name for p in failed.iterdir()] == [f"users.{job['id']}.csv"]
    assert _attempts(db_url) == [("rejected", 3)]
    finished, shown = syncd_json("--config", config, "jobs", "show", job["id"], "--json", cwd=root)
    assert finished.code == 0, finished.stderr
    assert "stopped 3 times while running this file" in shown["messages"][0]
    assert last.events("job_given_up")[0]["job_id"] == job["id"]
    assert [(r.job_id, r.kind) for r in _reports(db_url)] == [(job["id"], "rejected")]
    assert _users(root, config) == []


def test_sigterm_past_the_stop_timeout_rolls_the_job_back_and_exits_0(
    root: Path, db_url: str
) -> None:
    """SIGTERM while a long job runs: after stop_timeout_seconds (1 here) the job is
    rolled back, the daemon exits 0, nothing of the job is in the directory, and the next
    daemon applies the file whole. (A 1,000,000-row job is stopped the same way in
    `make soak`.)"""
    rows = 300_000
    config = _config(root, db_url, stop_timeout=1)
    daemon = Running(root, config)
    _drop(root, "big.csv", rows)
    daemon.wait_for("the job to run", lambda: any(j["status"] == "running" for j in _jobs(db_url)))
    started = time.monotonic()
    code = daemon.stop(signal.SIGTERM, timeout=120)
    stopped = time.monotonic() - started
    assert code == 0, daemon.tail()
    # Rolled back: nothing of it is in the directory; its process is gone, so the next
    # daemon to look puts it back in the queue.
    assert [j["status"] for j in _jobs(db_url)] == ["running"]
    assert stopped >= 1
    assert daemon.events("rolled_back")
    assert _users(root, config) == []
    again = Running(root, config, "again")
    processed = root / "drop" / "processed"
    again.wait_for("the file to be settled", lambda: any(processed.glob("big.*.csv")), 180)
    assert again.stop() == 0
    assert [(j["status"], j["created"]) for j in _jobs(db_url)] == [("applied", rows)]


def test_sighup_rereads_the_configuration_and_keeps_it_when_broken(root: Path) -> None:
    """SIGHUP with a broken file: logged, the daemon keeps going on the old one; SIGHUP
    with a new source: that source is scanned from then on."""
    db_url = f"sqlite:///{root / 'syncd.db'}"
    config = _config(root, db_url)
    daemon = Running(root, config)
    good = config.read_text(encoding="utf-8")
    config.write_text(good + "\nnot toml at all [[\n", encoding="utf-8")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for("the failed reload", lambda: bool(daemon.events("reload_failed")))
    (root / "more").mkdir()
    config.write_text(
        good
        + f'\n[[sources]]\nname = "more"\nkind = "local"\npath = "{root / "more"}"\n'
        + 'settle_seconds = 0.3\ninterval_seconds = 1\nmode = "partial"\n',
        encoding="utf-8",
    )
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for("the reload", lambda: bool(daemon.events("reloaded")))
    _export(root / "more" / "new.csv", 3)
    processed = root / "more" / "processed"
    daemon.wait_for("the new source's file", lambda: any(processed.glob("new.*.csv")))
    assert daemon.stop() == 0


@pytest.mark.parametrize("watch", ["inotify", "poll"])
def test_a_folder_on_inotify_or_polling_takes_a_slowly_written_file_whole(
    root: Path, watch: str
) -> None:
    """Written in pieces with pauses shorter than settle_seconds, a file is taken only
    once whole; a change in the folder starts a scan (the schedule here is an hour)."""
    db_url = f"sqlite:///{root / 'syncd.db'}"
    config = _config(root, db_url, watch=watch, interval_seconds=3600, settle_seconds=1.0)
    daemon = Running(root, config)
    time.sleep(1.5)  # past the scan at start: from here only events start scans
    with (root / "drop" / "slow.csv").open("w", encoding="utf-8") as slow:
        slow.write("Email,First Name\n")
        for n in range(6):
            slow.write(f"slow{n}@example.com,Ann{n}\n")
            slow.flush()
            time.sleep(0.4)
    processed = root / "drop" / "processed"
    daemon.wait_for("the file to be settled", lambda: any(processed.glob("slow.*.csv")), 30)
    assert daemon.stop() == 0
    [job] = _jobs(db_url)
    assert (job["status"], job["rows"]) == ("applied", 6)


def test_syncd_scan_takes_what_is_complete_runs_it_and_settles_it(root: Path) -> None:
    """`syncd scan` is one pass: files are taken once settled, run in file order,
    settled, and the exit code is the highest of the jobs'."""
    db_url = f"sqlite:///{root / 'syncd.db'}"
    config = _config(root, db_url, mode="partial")
    _export(root / "drop" / "a.csv", 2)
    (root / "drop" / "b.csv").write_text("Email\nnot-an-email\nok@example.com\n", encoding="utf-8")
    os.utime(root / "drop" / "b.csv", (time.time() + 5, time.time() + 5))
    done = subprocess.run(
        [str(Path(os.sys.executable).with_name("syncd")), "--config", str(config), "scan"],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.index("a.csv") < done.stdout.index("b.csv")
    assert sorted(p.name.split(".")[0] for p in (root / "drop" / "processed").iterdir()) == [
        "a",
        "b",
    ]


def test_a_file_past_the_byte_cap_is_rejected_into_failed_with_its_report(root: Path) -> None:
    """A file claimed but never fetched, being past its profile's max_bytes, ends as a
    rejected job, settled into failed/, and its report is queued like any job's."""
    db_url = f"sqlite:///{root / 'syncd.db'}"
    config = _config(root, db_url, mode="partial", profile="capped", notify=["it@example.com"])
    config.write_text(
        config.read_text(encoding="utf-8")
        + '[profiles.capped]\nkey = "email"\nmax_bytes = 100\n'
        + 'columns = [{ field = "email", header = "Email", type = "email", required = true }]\n',
        encoding="utf-8",
    )
    _export(root / "drop" / "big.csv", 20)
    os.utime(root / "drop" / "big.csv", (time.time() - 5, time.time() - 5))
    done = subprocess.run(
        [str(Path(os.sys.executable).with_name("syncd")), "--config", str(config), "scan"],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    [job] = _jobs(db_url)
    assert job["status"] == "rejected"
    assert [p.name for p in (root / "drop" / "failed").iterdir()] == [f"big.{job['id']}.csv"]
    assert [(r.job_id, r.kind, json.loads(r.recipients)) for r in _reports(db_url)] == [
        (job["id"], "rejected", ["it@example.com"])
    ]


def test_two_daemons_on_one_postgresql_apply_a_hundred_files_once_in_file_order(
    tmp_path: Path, postgres_url: str, sshd_server: SshdServer
) -> None:
    """Two `syncd run` on one PostgreSQL database, 50 files dropped over SFTP and 50 in a
    local folder: 100 jobs, each file applied once by one of them, and each source's
    files applied in file order (modification time, then name)."""
    remote = sshd_server.root / "two-daemons"
    remote.mkdir()
    (tmp_path / "drop").mkdir()
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[database]\nurl = "{postgres_url}"\n'
        f'[[sources]]\nname = "folder"\nkind = "local"\npath = "{tmp_path / "drop"}"\n'
        'settle_seconds = 0.5\ninterval_seconds = 1\nmode = "partial"\n'
        f'[[sources]]\nname = "sftp"\nkind = "sftp"\nhost = "{sshd_server.host}"\n'
        f"port = {sshd_server.port}\n"
        f'username = "{sshd_server.username}"\nkey_file = "{sshd_server.client_key}"\n'
        f'known_hosts = "{sshd_server.known_hosts}"\nremote_dir = "{remote}"\n'
        'settle_seconds = 1\ninterval_seconds = 1\nmode = "partial"\n',
        encoding="utf-8",
    )
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = Running(tmp_path / "one", config, "one")
    two = Running(tmp_path / "two", config, "two")
    base = time.time() - 1000
    # Each file is written and dated beside its folder, then renamed into it whole, as a
    # careful exporter does: a file dated after the daemons could list it is a new file
    # (another listing), which they would rightly take again.
    staged = {
        tmp_path / "drop": tmp_path / "staging",
        remote: remote.with_name("two-daemons-staging"),
    }
    for folder in staged.values():
        folder.mkdir()
    for n in range(50):
        for folder, tag in ((tmp_path / "drop", "f"), (remote, "s")):
            path = staged[folder] / f"file{n:02d}.csv"
            path.write_text(f"Email,First Name\r\n{tag}{n}@example.com,Ann\r\n", encoding="utf-8")
            os.utime(path, (base + n * 2, base + n * 2))
            os.replace(path, folder / path.name)
    settled = [tmp_path / "drop" / "processed", remote / "processed"]
    one.wait_for(
        "every file to be settled",
        lambda: sum(len(list(p.glob("*.csv"))) for p in settled if p.is_dir()) == 100,
        240,
    )
    assert one.stop() == 0
    assert two.stop() == 0
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT source, file_name, status, started_at FROM jobs ORDER BY started_at")
            ).all()
            users = conn.execute(text("SELECT count(*) FROM users")).scalar()
    finally:
        engine.dispose()
    assert len(rows) == 100
    assert {r.status for r in rows} == {"applied"}
    assert users == 100
    for source in ("folder", "sftp"):
        names = [r.file_name for r in rows if r.source == source]
        assert names == sorted(names), names
        assert len(set(names)) == 50
    taken = [e["job_id"] for d in (one, two) for e in d.events("file_taken")]
    assert len(taken) == len(set(taken)) == 100
    assert one.events("file_taken")
    assert two.events("file_taken")


def _allow_connections(url: str, allow: bool) -> None:
    """Let clients connect to `url`'s database, or not (ending the connections it has):
    to its clients, the database is down."""
    target = make_url(url)
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            name = conn.execute(text("SELECT quote_ident(:n)"), {"n": target.database}).scalar()
            conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allow).lower()}"))
            if not allow:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": target.database},
                )
    finally:
        engine.dispose()


def test_a_database_down_for_a_while_costs_only_time(root: Path, postgres_url: str) -> None:
    """With its database unreachable the daemon waits, longer each time (no loop logging
    without pause, as it once did at full speed); once the database is back it takes the
    file that came meanwhile."""
    config = _config(root, postgres_url, mode="partial")
    daemon = Running(root, config)
    _drop(root, "before.csv", 3)
    daemon.wait_for("the first job", lambda: len(daemon.events("job_done")) == 1)
    _allow_connections(postgres_url, False)
    try:
        lines = len(daemon.log.read_bytes().splitlines())
        _drop(root, "during.csv", 5)
        time.sleep(8)
        logged = daemon.log.read_bytes().splitlines()[lines:]
        failures = daemon.events("cannot_take_jobs")
        # Tried at once, then after 1, 2 and 4 seconds (one more, if the machine dawdled).
        assert 3 <= len(failures) <= 5, failures
        assert [f["retry_in_seconds"] for f in failures[:3]] == [1.0, 2.0, 4.0]
        assert "Traceback" in failures[0]["exception"]
        assert all("exception" not in f for f in failures[1:])
        # the scans (one a second) fail as plainly, in one line each
        scans = daemon.events("scan_failed")
        assert scans, logged[-5:]
        assert all("check that the database is up" in e["hint"] for e in scans)
        assert not daemon.events("scan_crashed")
        # the failed tries, the scans' (one a second) and little else
        assert len(logged) < 40, logged[-5:]
    finally:
        _allow_connections(postgres_url, True)
    daemon.wait_for("the file that came meanwhile", lambda: len(daemon.events("job_done")) == 2)
    assert daemon.events("taking_jobs_again")
    assert daemon.stop() == 0
    assert sorted((j["file_name"], j["status"], j["rows"]) for j in _jobs(postgres_url)) == [
        ("before.csv", "applied", 3),
        ("during.csv", "applied", 5),
    ]
