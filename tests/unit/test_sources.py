"""Sources without servers: the settle tracker on explicit clock values, the spool, names
that are never paths, and the contract run by the local folder and the memory source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.sources import SETTLED_NAME_BYTES, RemoteFile, settled_name
from syncd.sources.local import LocalSource
from syncd.sources.memory import MemorySource
from syncd.sources.settling import SettleTracker
from syncd.sources.spool import FileTooLarge, Spool
from tests.contract.source_contract import Harness, SourceContract


def _file(name: str, size: int, mtime: float) -> dict[str, RemoteFile]:
    return {name: RemoteFile(name, size, mtime)}


def test_a_file_settles_once_unchanged_for_settle_seconds() -> None:
    """First seen at 0: not complete at 9.9, complete at 10, by the caller's clock."""
    tracker = SettleTracker(10)
    assert tracker.complete(_file("a.csv", 5, 1.0), now=0) == []
    assert tracker.waiting
    assert tracker.complete(_file("a.csv", 5, 1.0), now=9.9) == []
    assert [f.name for f in tracker.complete(_file("a.csv", 5, 1.0), now=10)] == ["a.csv"]
    assert not tracker.waiting


def test_a_growing_file_starts_its_wait_again() -> None:
    """A new size or mtime resets the clock: a file still being written is never taken."""
    tracker = SettleTracker(10)
    tracker.complete(_file("a.csv", 5, 1.0), now=0)
    assert tracker.complete(_file("a.csv", 9, 2.0), now=10) == []
    assert tracker.complete(_file("a.csv", 9, 2.0), now=19) == []
    assert len(tracker.complete(_file("a.csv", 9, 2.0), now=20)) == 1


def test_a_file_that_disappears_is_forgotten() -> None:
    """Put back later, a file starts its wait from scratch."""
    tracker = SettleTracker(10)
    tracker.complete(_file("a.csv", 5, 1.0), now=0)
    tracker.complete({}, now=5)
    assert tracker.complete(_file("a.csv", 5, 1.0), now=11) == []


def test_settled_files_come_oldest_first_then_by_name() -> None:
    """File order: mtime, then name."""
    tracker = SettleTracker(0)
    listing = {
        "b.csv": RemoteFile("b.csv", 1, 5.0),
        "a.csv": RemoteFile("a.csv", 1, 5.0),
        "c.csv": RemoteFile("c.csv", 1, 1.0),
    }
    tracker.complete(listing, now=0)
    assert [f.name for f in tracker.complete(listing, now=0)] == ["c.csv", "a.csv", "b.csv"]


@pytest.mark.parametrize(
    ("name", "settled"),
    [
        ("people.csv", "people.J1.csv"),
        ("../../etc/passwd", "_.._etc_passwd.J1"),
        ("a/b.csv", "a_b.J1.csv"),
        ("line\nbreak.csv", "line_break.J1.csv"),
        ("..csv", "csv.J1"),
        ("noext", "noext.J1"),
    ],
)
def test_a_senders_name_never_becomes_a_path(name: str, settled: str) -> None:
    """Separators, control characters and leading dots are neutralised in settled names."""
    assert settled_name(name, "J1") == settled
    assert "/" not in settled_name(name, "J1")


@pytest.mark.parametrize(
    "name", ["x" * 251 + ".csv", "é" * 125 + ".csv", "ü" * 127 + "x", "a." + "b" * 252]
)
def test_a_name_as_long_as_a_filesystem_takes_still_settles_under_its_job_id(name: str) -> None:
    """A sender's name of 255 bytes leaves no room for the job ID: the settled name is
    shortened to SETTLED_NAME_BYTES, between characters, keeping the job ID and suffix."""
    settled = settled_name(name, "0HZQ2-M6ZW0")
    assert len(settled.encode("utf-8")) <= SETTLED_NAME_BYTES
    assert ".0HZQ2-M6ZW0" in settled
    assert settled.endswith(".csv") == name.endswith(".csv")
    assert name.startswith(settled.partition(".0HZQ2")[0])


def test_a_local_file_whose_name_is_not_utf8_is_left_and_the_others_are_taken(
    tmp_path: Path,
) -> None:
    """A name in Latin-1 (`résumé.csv` from an old system) cannot be stored with a job:
    that file stays where it is, and every other file is listed as usual (the scan
    crashed on it, so no file of the folder was taken)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / os.fsdecode(b"r\xe9sum\xe9.csv")).write_bytes(b"Email\na@x.com\n")
    (drop / "people.csv").write_bytes(b"Email\nb@x.com\n")
    source = LocalSource(
        "drop",
        drop,
        pattern="*.csv",
        processed_dir=drop / "processed",
        failed_dir=drop / "failed",
        settle_seconds=1,
    )
    source.list_complete(0.0)
    assert [f.name for f in source.list_complete(2.0)] == ["people.csv"]
    assert os.fsdecode(b"r\xe9sum\xe9.csv") in os.listdir(drop)


def test_the_spool_keeps_nothing_of_a_stream_that_breaks(tmp_path: Path) -> None:
    """A stream that fails halfway leaves neither the file nor its temporary name."""
    spool = Spool(tmp_path / "spool")

    def broken() -> object:
        yield b"first chunk"
        raise ConnectionError("the connection dropped")

    with pytest.raises(ConnectionError):
        spool.receive("J1", broken(), cap=1000)  # type: ignore[arg-type]
    with pytest.raises(FileTooLarge):
        spool.receive("J2", [b"x" * 600, b"x" * 600], cap=1000)
    assert list(spool.folder.iterdir()) == []
    assert (spool.folder.stat().st_mode & 0o777) == 0o700


class TestLocalFolderSource(SourceContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Harness:
        drop = tmp_path / "drop"
        drop.mkdir()
        source = LocalSource(
            "local",
            drop,
            pattern="*.csv",
            processed_dir=drop / "processed",
            failed_dir=drop / "failed",
            settle_seconds=5,
        )
        mtimes = iter(range(1_000_000, 2_000_000, 10))

        def put(name: str, data: bytes) -> None:
            path = drop / name
            path.write_bytes(data)
            stamp = next(mtimes)
            import os

            os.utime(path, (stamp, stamp))

        def settled(where: str) -> dict[str, bytes]:
            folder = drop / where
            return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}

        return Harness(source, put, settled, lambda name: (drop / name).unlink(), 5)


class TestMemorySource(SourceContract):
    @pytest.fixture
    def harness(self) -> Harness:
        source = MemorySource("memory", settle_seconds=5)
        mtimes = iter(range(1_000, 2_000))
        return Harness(
            source,
            lambda name, data: source.put(name, data, float(next(mtimes))),
            lambda where: dict(source.processed if where == "processed" else source.failed),
            lambda name: source.files.pop(name),
            5,
        )
