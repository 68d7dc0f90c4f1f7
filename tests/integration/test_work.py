"""The daemon's work on a memory source, on both databases, with an explicit clock and no
sleeping: scans claim complete files once, jobs run in file order and settle their files,
a file that changed or a source that went down loses nothing, a failed settle is retried."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from syncd import flow, store
from syncd.config import load_config
from syncd.intake import Drop
from syncd.runtime import Runtime, open_runtime
from syncd.scanning import scan
from syncd.sources.memory import MemorySource
from syncd.sources.spool import Spool
from syncd.store.engine import sqlite_file
from syncd.work import Opened, SourceDown, take_next

START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rt(tmp_path: Path, db_url: str, clock: Clock) -> Iterator[Runtime]:
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[database]\nurl = "{db_url}"\n'
        '[[sources]]\nname = "mem"\nkind = "local"\npath = "unused"\nprofile = "default"\n'
        'mode = "partial"\nnotify = ["it@example.com"]\n',
        encoding="utf-8",
    )
    runtime = replace(open_runtime(load_config(config)), clock=clock)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def memory(rt: Runtime) -> Opened:
    return Opened(rt.config.sources[0], MemorySource("mem", settle_seconds=10))


def _people(*emails: str, password: bool = False) -> bytes:
    header = "Email,First Name" + (",Password" if password else "")
    rows = [f"{e},Ann" + (",hunter22" if password else "") for e in emails]
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def _scan(rt: Runtime, memory: Opened, clock: Clock) -> tuple[str, ...]:
    """Two looks 11 s apart: whatever did not change in between is complete."""
    scan(rt, memory, wall=clock.now.timestamp())
    clock.advance(11)
    return scan(rt, memory, wall=clock.now.timestamp()).queued


def _run_all(rt: Runtime, memory: Opened, tmp_path: Path) -> list[str]:
    done = []
    while (outcome := take_next(rt, {"mem": memory}, Spool(tmp_path / "spool"))) is not None:
        done.append(f"{outcome.file}:{outcome.status}")
    return done


def test_files_are_claimed_once_and_applied_in_file_order(
    rt: Runtime, memory: Opened, clock: Clock, tmp_path: Path
) -> None:
    """Three files put out of order: each is queued once (a second scan claims nothing
    more) and applied oldest first; each lands in processed/ under its job ID."""
    source = memory.source
    assert isinstance(source, MemorySource)
    source.put("c.csv", _people("c@example.com"), mtime=300.0)
    source.put("a.csv", _people("a@example.com"), mtime=100.0)
    source.put("b.csv", _people("b@example.com"), mtime=200.0)
    assert len(_scan(rt, memory, clock)) == 3
    assert scan(rt, memory, wall=clock.now.timestamp()).queued == ()
    assert _run_all(rt, memory, tmp_path) == ["a.csv:applied", "b.csv:applied", "c.csv:applied"]
    assert sorted(name.split(".")[0] for name in source.processed) == ["a", "b", "c"]
    assert source.files == {}
    assert list((tmp_path / "spool").iterdir()) == []


def test_files_claimed_in_one_tenth_of_a_second_under_one_minted_id_get_ids_of_their_own(
    rt: Runtime, memory: Opened, clock: Clock
) -> None:
    """An ID is a tenth of a second and 15 random bits: two files claimed in the same
    tenth may draw the same bits. The second is claimed under a fresh ID, not lost."""
    draws = iter([b"\x00\x07", b"\x00\x07", b"\x00\x07", b"\x00\x09"])
    rt = replace(rt, entropy=lambda n: next(draws))
    source = memory.source
    assert isinstance(source, MemorySource)
    source.put("a.csv", _people("a@example.com"), mtime=100.0)
    source.put("b.csv", _people("b@example.com"), mtime=200.0)
    queued = _scan(rt, memory, clock)
    assert len(set(queued)) == 2
    with rt.engine.connect() as conn:
        names = {store.get_job(conn, job_id).file_name for job_id in queued}
    assert names == {"a.csv", "b.csv"}


def test_a_file_that_changed_after_its_claim_is_refused_and_claimed_again(
    rt: Runtime, memory: Opened, clock: Clock, tmp_path: Path
) -> None:
    """Written again between its scan and its job: the job says so and leaves the file;
    the next scans claim the new version, which applies."""
    source = memory.source
    assert isinstance(source, MemorySource)
    source.put("a.csv", _people("a@example.com"), mtime=100.0)
    _scan(rt, memory, clock)
    source.put("a.csv", _people("a@example.com", "b@example.com"), mtime=150.0)
    assert _run_all(rt, memory, tmp_path) == ["a.csv:rejected"]
    assert "a.csv" in source.files
    _assert_reported(rt, "changed")
    assert len(_scan(rt, memory, clock)) == 1
    assert _run_all(rt, memory, tmp_path) == ["a.csv:applied"]


def _assert_reported(rt: Runtime, words: str) -> None:
    """The last job ended with a report to the source's notify list that says `words`."""
    with rt.engine.connect() as conn:
        job = store.list_jobs(conn)[0]
        [message] = store.list_messages(conn, job_id=job.id)
    assert message.recipients == ("it@example.com",)
    body = message.parsed().get_body(("plain",))
    assert body is not None
    assert words in body.get_content()


def test_a_file_that_vanished_after_its_claim_is_refused_with_a_report(
    rt: Runtime, memory: Opened, clock: Clock, tmp_path: Path
) -> None:
    """Gone before its job could fetch it: the job is rejected, saying so, and like every
    job that ends, it queues a report (the sender may not know the file never arrived)."""
    source = memory.source
    assert isinstance(source, MemorySource)
    source.put("a.csv", _people("a@example.com"), mtime=100.0)
    _scan(rt, memory, clock)
    del source.files["a.csv"]
    assert _run_all(rt, memory, tmp_path) == ["a.csv:rejected"]
    _assert_reported(rt, "vanished")


def test_a_file_written_again_while_its_job_runs_is_left_for_a_job_of_its_own(
    rt: Runtime, memory: Opened, clock: Clock, tmp_path: Path
) -> None:
    """The sender replaces the file after the job fetched it: the job applies what it
    read, and settling it leaves the new file in place (it is not carried off to
    processed/ unread); the next scans claim the new file, whose job applies it."""
    source = memory.source
    assert isinstance(source, MemorySource)
    source.put("a.csv", _people("a@example.com"), mtime=100.0)
    _scan(rt, memory, clock)
    fetch = source.fetch

    def fetch_then_replace(*args: Any) -> Any:
        spooled = fetch(*args)
        source.put("a.csv", _people("a@example.com", "b@example.com"), mtime=150.0)
        return spooled

    source.fetch = fetch_then_replace  # type: ignore[method-assign]
    assert _run_all(rt, memory, tmp_path) == ["a.csv:applied"]
    source.fetch = fetch  # type: ignore[method-assign]
    assert source.processed == {}
    assert len(_scan(rt, memory, clock)) == 1
    assert _run_all(rt, memory, tmp_path) == ["a.csv:applied"]
    [settled] = source.processed.values()
    assert b"b@example.com" in settled
    with rt.engine.connect() as conn:
        assert [j.counts.created for j in store.list_jobs(conn)] == [1, 1]


def test_a_source_that_is_down_leaves_its_job_queued_for_later(
    rt: Runtime, memory: Opened, clock: Clock, tmp_path: Path
) -> None:
    """The file cannot be fetched: SourceDown, the job back in the queue, nothing lost;
    once the source is back, the same job applies the file."""
    source = memory.source
    assert isinstance(source, MemorySource)
    source.put("a.csv", _people("a@example.com"), mtime=100.0)
    [job_id] = _scan(rt, memory, clock)
    source.down = True
    with pytest.raises(SourceDown):
        take_next(rt, {"mem": memory}, Spool(tmp_path / "spool"))
    with rt.engine.connect() as conn:
        job = store.get_job(conn, job_id)
    assert job is not None
    assert job.status == "queued"
    source.down = False
    assert _run_all(rt, memory, tmp_path) == ["a.csv:applied"]


def test_a_file_left_in_place_by_a_failed_settle_is_settled_by_a_later_scan(
    rt: Runtime, memory: Opened, clock: Clock, tmp_path: Path
) -> None:
    """The job applied but the file could not be moved: a scan after a while moves it,
    without running it again; a file holding passwords is settled as its redacted copy."""
    source = memory.source
    assert isinstance(source, MemorySource)
    source.put("pw.csv", _people("a@example.com", password=True), mtime=100.0)
    _scan(rt, memory, clock)

    def settle_fails(*_args: object, **_kwargs: object) -> str:
        from syncd.errors import SourceError

        raise SourceError("the folder is read-only")

    original = source.settle
    source.settle = settle_fails  # type: ignore[method-assign]
    assert _run_all(rt, memory, tmp_path) == ["pw.csv:applied"]
    source.settle = original  # type: ignore[method-assign]
    assert "pw.csv" in source.files
    assert scan(rt, memory, wall=clock.now.timestamp()).queued == ()
    assert "pw.csv" in source.files  # too soon: whoever ran the job may still settle it
    clock.advance(60)
    scan(rt, memory, wall=clock.now.timestamp())
    [(name, content)] = source.processed.items()
    assert name.startswith("pw.")
    assert b"a@example.com" in content
    assert b"hunter22" not in content
    with rt.engine.connect() as conn:
        assert [j.status for j in store.list_jobs(conn)] == ["applied"]


def _directory_is_free(rt: Runtime) -> bool:
    """Whether another writer could take the directory now (on SQLite, the database's
    write lock; on PostgreSQL, the directory's row), without waiting."""
    path = sqlite_file(rt.config.database.url)
    if path is not None:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()
    with rt.engine.connect() as conn:
        try:
            conn.execute(text("SELECT id FROM directories FOR UPDATE NOWAIT")).all()
            return True
        except OperationalError:
            return False
        finally:
            conn.rollback()


def test_a_full_file_without_a_valid_row_writes_its_errors_csv_with_the_directory_free(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rejected whole (a full file of 2,000 bad addresses): nothing was written, so the
    directory (on SQLite, the whole database) is let go before the errors CSV of every
    row is made; holding it, a file of 100,000 bad rows kept scans and the outbox waiting
    past their timeout."""
    free_while_writing: list[bool] = []
    write = flow._Job.write_errors_csv

    def spied(job: Any, *args: Any) -> Any:
        free_while_writing.append(_directory_is_free(rt))
        return write(job, *args)

    source = replace(rt.config.sources[0], mode="full")
    good = flow.run_job(rt, source, Drop("good.csv", b"Email\r\na@example.com\r\n"))
    assert good.status == "applied"  # (the directory exists, committed, to be locked)
    monkeypatch.setattr(flow._Job, "write_errors_csv", spied)
    bad = ("\r\n".join(["Email", *(f"not an address {n}" for n in range(2000))]) + "\r\n").encode()
    outcome = flow.run_job(rt, source, Drop("bad.csv", bad))
    assert (outcome.status, outcome.counts.invalid) == ("rejected", 2000)
    assert free_while_writing == [True]
    with rt.engine.connect() as conn:
        assert store.get_job(conn, outcome.job_id or "") is not None
