"""Hostile files through one running `syncd run` per transport (a local folder, and SFTP
on a real sshd): the corpus of tests/hostile_corpus.py is dropped on a directory loaded
with a valid full export, and every file must end in a job with a clear outcome and a
message, a report, and a settled file (processed/ or failed/, as its outcome says),
while no user of the export is archived and the daemon keeps running in bounded memory.

One daemon takes the whole corpus, as it would a bad week, so whatever a file leaves
behind (a connection, memory, a lock, a limit raised) meets the next one. Its resident
memory is sampled from /proc while it works; the curve is printed (`pytest -s`).
"""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.e2e.cli import syncd_json
from tests.e2e.test_daemon_exactly_once import Running
from tests.hostile_corpus import (
    BASE,
    CORPUS,
    HR,
    PASSWORDS,
    SCRIPTS,
    Export,
    Hostile,
    Writer,
    export,
    set_mtime,
    write_file,
)
from tests.servers.sshd import SshdServer

#: The whole corpus, heavy files included, is taken well within this, per transport.
DEADLINE_SECONDS = 600
#: How far the daemon's memory may grow over what it held after the base export.
MEMORY_HEADROOM_MIB = 300
#: What a job's messages or report never say: those are crashes, not outcomes.
CRASH_WORDS = ("Traceback", "syncd failed while processing", "Exception")
#: Statuses whose file is settled into processed/ (the others into failed/), as README says.
PROCESSED = frozenset({"applied", "applied_with_errors", "held", "skipped"})
#: What a spreadsheet runs as a formula when a cell starts with it.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Memory:
    """The daemon's resident memory (VmRSS, MiB) over time, sampled from /proc."""

    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        assert found is not None
        return int(found.group(1)) / 1024

    def start(self) -> None:
        started = time.monotonic()

        def sample() -> None:
            while not self._stop.wait(0.2):
                try:
                    self.samples.append((time.monotonic() - started, self.now()))
                except (OSError, AssertionError):
                    return

        threading.Thread(target=sample, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def peak(self) -> float:
        return max((m for _, m in self.samples), default=0.0)

    def curve(self, points: int = 30) -> str:
        """The samples at about `points` even steps (`t s: MiB`), and the peak."""
        step = max(1, len(self.samples) // points)
        shown = ", ".join(f"{t:.0f}s:{m:.0f}" for t, m in self.samples[::step])
        return f"{shown}; peak {self.peak:.0f} MiB"


@dataclass
class Run:
    """What one daemon did with the corpus."""

    transport: str
    cases: tuple[Hostile, ...]
    jobs: list[dict[str, Any]]  # `jobs list --json`, oldest first
    reports: dict[str, EmailMessage]  # job ID -> its report
    settled: dict[str, tuple[str, str]]  # settled name -> (folder, sha256)
    drop: Path
    left: dict[str, str]  # name still in the drop -> sha256
    written: dict[str, str]  # name -> sha256 of what was dropped last under it
    before: dict[str, str]  # key -> status, once the base export was applied
    after: dict[str, str]
    memory_base: float
    memory: Memory
    alive_at_end: bool
    exit_code: int
    events: list[dict[str, Any]]
    seconds: float

    def jobs_of(self, case: Hostile) -> list[dict[str, Any]]:
        return [j for j in self.jobs if j["file"] == case.name]

    def settled_of(self, job_id: str) -> list[tuple[str, str, str]]:
        return [(n, f, sha) for n, (f, sha) in self.settled.items() if f".{job_id}" in n]

    def text(self, job_id: str) -> str:
        """The plain text of a job's report, its white space made single spaces."""
        body = self.reports[job_id].get_body(("plain",))
        assert body is not None
        return " ".join(body.get_content().split())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write(path: Path, writer: Writer) -> str:
    write_file(path, writer)
    return _file_sha(path)


def _config(root: Path, source: dict[str, object]) -> Path:
    values = {
        "profile": "hr_full",
        "mode": "full",
        "interval_seconds": 1,
        "notify": ["it@example.com"],
        **source,
    }
    body = "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
    config = root / "syncd.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n'
        f'[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
        '[mail]\nfrom = "syncd@example.com"\n'
        f'[[sources]]\nname = "hr"\n{body}\n'
        '[directory]\nroles = ["User"]\ngroups = []\n',
        encoding="utf-8",
    )
    return config


def _statuses(root: Path, config: Path) -> dict[str, str]:
    finished, users = syncd_json(
        "--config", config, "users", "list", "--json", "--limit", "100000", cwd=root
    )
    assert finished.code == 0, finished.stderr
    return {u["key"]: u["status"] for u in users}


def _events(log: Path) -> list[dict[str, Any]]:
    """The log's complete lines (the daemon may be half way through writing the last)."""
    lines = log.read_text(encoding="utf-8").split("\n")[:-1]
    return [json.loads(line) for line in lines if line]


def _reports(outbox: Path) -> dict[str, EmailMessage]:
    found: dict[str, EmailMessage] = {}
    for path in outbox.glob("*.eml") if outbox.is_dir() else ():
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found[str(message["X-Syncd-Job"])] = message
    return found


class Reactions:
    """Does to a file what its case says (vanish, or be replaced) once the daemon's log
    shows its job queued, or taken."""

    def __init__(self, drop: Path, staging: Path, cases: tuple[Hostile, ...]) -> None:
        self.drop, self.staging = drop, staging
        self.pending = {c.name: c for c in cases if c.then is not None}
        self.written: dict[str, str] = {}

    def react(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            case = self.pending.get(event.get("file", ""))
            if case is None:
                continue
            trigger = "file_taken" if case.then == "replace_when_taken" else "file_queued"
            if event["event"] != trigger:
                continue
            path = self.drop / case.name
            if case.then == "vanish":
                path.unlink()
            else:
                assert case.replacement is not None
                staged = self.staging / "replacement"
                self.written[case.name] = _write(staged, case.replacement)
                os.replace(staged, path)
            del self.pending[case.name]


def run_corpus(transport: str, root: Path, drop: Path, config: Path) -> Run:
    """Start the daemon, load the base export, drop the corpus, wait until every file
    has its jobs, settled and reported; then read what it did and stop it."""
    cases = tuple(c for c in CORPUS if transport == "local" or c.sftp)
    staging = root / "staging"
    staging.mkdir()
    outbox = root / "state" / "outbox"
    daemon = Running(root, config)
    memory = Memory(daemon.process.pid)
    memory.start()
    try:
        write_file(staging / "base.csv", export(Export(HR, BASE)))
        os.replace(staging / "base.csv", drop / "base.csv")
        daemon.wait_for(
            "the base export to be applied",
            lambda: any(e["file"] == "base.csv" for e in daemon.events("job_done")),
        )
        before = _statuses(root, config)
        memory_base = memory.now()

        # Jobs run oldest first: the corpus's order, in whole seconds as SFTP gives them.
        first = int(time.time()) - 10 * len(cases)
        written: dict[str, str] = {}
        for i, case in enumerate(cases):
            written[case.name] = _write(staging / str(i), case.write)
            set_mtime(staging / str(i), first + i)
        started = time.monotonic()
        for i, case in enumerate(cases):
            os.replace(staging / str(i), drop / case.name)

        reactions = Reactions(drop, staging, cases)
        wanted = {
            c.name: 1 + (c.then in ("replace", "replace_when_taken")) for c in cases if c.taken
        }
        untaken = {c.name for c in cases if not c.taken}

        def finished() -> bool:
            events = _events(daemon.log)
            reactions.react(events)
            ended = [e["file"] for e in events if e["event"] == "job_done"]
            if any(ended.count(name) < count for name, count in wanted.items()):
                return False
            left = {p.name for p in drop.iterdir() if p.is_file()}
            return left <= untaken and len(list(outbox.glob("*.eml"))) >= len(ended)

        deadline = time.monotonic() + DEADLINE_SECONDS
        while not finished():
            if daemon.process.poll() is not None:
                pytest.fail(f"syncd run exited ({daemon.process.returncode}):\n{daemon.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"not every file was taken, settled and reported:\n{daemon.tail()}")
            time.sleep(0.25)
        seconds = time.monotonic() - started
        alive = daemon.process.poll() is None
        listed, jobs = syncd_json(
            "--config", config, "jobs", "list", "--json", "--limit", "1000", cwd=root
        )
        assert listed.code == 0, listed.stderr
        after = _statuses(root, config)
    finally:
        memory.stop()
        code = daemon.stop()
    settled = {
        p.name: (folder, _file_sha(p))
        for folder in ("processed", "failed")
        if (drop / folder).is_dir()
        for p in (drop / folder).iterdir()
    }
    return Run(
        transport=transport,
        cases=cases,
        jobs=list(reversed(jobs)),
        reports=_reports(outbox),
        settled=settled,
        drop=drop,
        left={p.name: _file_sha(p) for p in drop.iterdir() if p.is_file()},
        written=written | reactions.written,
        before=before,
        after=after,
        memory_base=memory_base,
        memory=memory,
        alive_at_end=alive,
        exit_code=code,
        events=_events(daemon.log),
        seconds=seconds,
    )


def _taken() -> list[Any]:
    return [pytest.param(c, id=c.name.encode("unicode_escape").decode()) for c in CORPUS if c.taken]


class HostileFiles:
    """What the daemon must have done with the corpus, whatever the transport; each
    subclass gives a class-wide `run` fixture (one daemon, one corpus)."""

    transport: ClassVar[str]

    @pytest.mark.parametrize("case", _taken())
    def test_each_file_gets_a_job_with_a_clear_outcome_said_in_its_report(
        self, run: Run, case: Hostile
    ) -> None:
        """One job (two for a file replaced under the daemon: the first says so), whose
        status is one right for the file, whose report says why in words, and which no
        crash wrote."""
        jobs = run.jobs_of(case)
        expected = 1 + (case.then in ("replace", "replace_when_taken"))
        assert len(jobs) == expected, jobs
        first = jobs[0]
        assert first["status"] in case.statuses, first
        if first["status"] in ("rejected", "held", "skipped"):
            assert first["messages"], first
        if first["status"] == "applied_with_errors":
            assert first["counts"]["invalid"] > 0, first
        for job in jobs:
            text = run.text(job["job_id"])
            said = " ".join([*job["messages"], text])
            for word in CRASH_WORDS:
                assert word not in said, said
            assert job["job_id"] in str(run.reports[job["job_id"]]["Subject"])
        assert " ".join(case.words.split()) in run.text(first["job_id"])
        if case.unchanged:
            counts = first["counts"]
            assert (counts["unchanged"], counts["invalid"]) == (len(BASE), 0), counts

    @pytest.mark.parametrize("case", _taken())
    def test_each_file_is_settled_whole_where_its_outcome_says(
        self, run: Run, case: Hostile
    ) -> None:
        """processed/ for applied, held and skipped files, failed/ for rejected ones,
        named with the job ID and byte for byte what was dropped; a file gone or written
        again before its job could read it settles nothing for that job, and what
        replaced it settles under a job of its own."""
        jobs = run.jobs_of(case)
        last = jobs[-1]
        for job in jobs[:-1]:
            assert run.settled_of(job["job_id"]) == [], job
        if not case.settles:
            assert run.settled_of(last["job_id"]) == []
            assert "vanished" in " ".join(last["messages"])
            return
        [(name, folder, sha)] = run.settled_of(last["job_id"])
        assert folder == ("processed" if last["status"] in PROCESSED else "failed"), last
        if not case.secrets:  # (a file holding passwords is settled with them blanked)
            assert sha == run.written[case.name], f"{name} is not the file last dropped"

    def test_every_job_has_its_report(self, run: Run) -> None:
        """Each job's report was written (no SMTP server: an .eml file), to the notify
        list, naming the job; and no report failed to be made."""
        for job in run.jobs:
            message = run.reports.get(job["job_id"])
            assert message is not None, job
            assert message["To"] == "it@example.com"
        assert not [e for e in run.events if e["event"] == "report_not_queued"]

    def test_no_user_of_the_base_export_is_archived(self, run: Run) -> None:
        """No hostile file is a full export that may archive: every user the base
        export made is still there and active, and no job archived anyone."""
        assert set(run.before) == {f"E{n:04d}" for n in BASE}
        assert {k: run.after.get(k) for k in run.before} == run.before
        assert set(run.before.values()) == {"active"}
        # (A held job counts whom it would archive; it archives nobody until approved.)
        archived = [j for j in run.jobs if j["counts"]["archived"] and j["status"] != "held"]
        assert archived == []

    def test_names_never_taken_stay_as_they_were(self, run: Run) -> None:
        """Hidden files and uploads in progress get no job and are left untouched."""
        for case in run.cases:
            if not case.taken:
                assert run.jobs_of(case) == []
                assert run.left.get(case.name) == run.written[case.name], case.name
        assert set(run.left) == {c.name for c in run.cases if not c.taken}

    def test_no_report_or_settled_file_holds_a_password_or_a_live_formula(self, run: Run) -> None:
        """Passwords (in a file of another format, or a column the profile does not
        read) reach no report and no settled file; every CSV a report attaches has its
        formula cells neutralised; script cells are escaped in the HTML."""
        for job_id, message in run.reports.items():
            raw = message.as_string()
            for password in PASSWORDS:
                assert password not in raw, job_id
            html = message.get_body(("html",))
            assert html is not None
            content = html.get_content()
            for script in SCRIPTS.values():
                assert script not in content, job_id
            for part in message.iter_attachments():
                data = part.get_payload(decode=True)
                assert isinstance(data, bytes)
                rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
                for row in rows:
                    assert not [c for c in row if c.startswith(FORMULA_START)], (job_id, row)
        for case in run.cases:
            if case.secrets:
                [job] = run.jobs_of(case)
                [(name, folder, _)] = run.settled_of(job["job_id"])
                settled = (run.drop / folder / name).read_bytes()
                assert b"p1@example.com" in settled
                for password in PASSWORDS:
                    assert password.encode() not in settled, name

    def test_the_daemon_runs_on_in_bounded_memory_and_logs_no_crash(self, run: Run) -> None:
        """Still running after the corpus, it stops on SIGTERM with exit 0; its memory
        stayed within MEMORY_HEADROOM_MIB of what it held after the base export; no job,
        scan or report crashed."""
        print(
            f"\n{run.transport}: {len(run.jobs)} jobs in {run.seconds:.0f} s; memory after "
            f"the base export {run.memory_base:.0f} MiB; curve: {run.memory.curve()}"
        )
        assert run.alive_at_end
        assert run.exit_code == 0
        assert run.memory.peak < run.memory_base + MEMORY_HEADROOM_MIB, run.memory.curve()
        crashes = [e for e in run.events if e["event"].endswith("_crashed") or "exception" in e]
        assert crashes == []


class TestOnALocalFolder(HostileFiles):
    transport = "local"

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, tmp_path_factory: pytest.TempPathFactory) -> Run:
        root = tmp_path_factory.mktemp("hostile-local")
        drop = root / "drop"
        drop.mkdir()
        config = _config(root, {"kind": "local", "path": str(drop), "settle_seconds": 0.5})
        return run_corpus(cls.transport, root, drop, config)


class TestOverSftp(HostileFiles):
    transport = "sftp"

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, tmp_path_factory: pytest.TempPathFactory, sshd_server: SshdServer) -> Run:
        root = tmp_path_factory.mktemp("hostile-sftp")
        drop = sshd_server.root / "hostile"
        drop.mkdir()
        config = _config(
            root,
            {
                "kind": "sftp",
                "host": sshd_server.host,
                "port": sshd_server.port,
                "username": sshd_server.username,
                "key_file": str(sshd_server.client_key),
                "known_hosts": str(sshd_server.known_hosts),
                "remote_dir": str(drop),
                "timeout_seconds": 10,
                "settle_seconds": 1,
            },
        )
        return run_corpus(cls.transport, root, drop, config)
