"""Sources without servers: the settle tracker on explicit clock values, the spool, names
that are never paths, and the contract run by the local folder and the memory source."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from syncd.sources import NAME_MAX, RemoteFile, settled_name
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
    ("name", "settled"),
    [
        ("/etc/passwd", "_etc_passwd.J1"),
        ("..\\..\\windows\\win.ini", "_.._windows_win.J1.ini"),
        ("nul\x00byte.csv", "nul_byte.J1.csv"),
        ("cr\r.csv", "cr_.J1.csv"),
        ("\x1b[31mred.csv", "_[31mred.J1.csv"),
        ("bell\x07\x7f.csv", "bell__.J1.csv"),
        ("c1\x85\x9b.csv", "c1__.J1.csv"),
        ("invoice\u202ecsv.exe", "invoice_csv.J1.exe"),
        ("line\u2028sep\u2029.csv", "line_sep_.J1.csv"),
        ("zero\u200bwidth.csv", "zero_width.J1.csv"),
        ("not-utf8-\udcff.csv", "not-utf8-_.J1.csv"),
        ("-rf.csv", "-rf.J1.csv"),
        ("..", "file.J1"),
        ("...", "file.J1"),
        ("", "file.J1"),
        (".hidden.csv", "hidden.J1.csv"),
        ("Zoë Ødegård.csv", "Zoë Ødegård.J1.csv"),
    ],
)
def test_hostile_names_settle_as_one_plain_visible_name(name: str, settled: str) -> None:
    """Absolute paths, backslashes, NUL, control and invisible characters, dots: each
    becomes `_` or goes; ordinary non-ASCII letters stay."""
    assert settled_name(name, "J1") == settled


@pytest.mark.parametrize("letter", ["x", "é", "日", "😀"])
def test_a_name_too_long_for_the_filesystem_is_cut_before_the_job_id(letter: str) -> None:
    """255 bytes at most (NAME_MAX), cut on a character, the job ID and extension kept."""
    name = letter * 300 + ".csv"
    settled = settled_name(name, "0HZQG-CQSG2")
    assert len(settled.encode("utf-8")) <= NAME_MAX
    assert settled.endswith(".0HZQG-CQSG2.csv")
    assert set(settled.removesuffix(".0HZQG-CQSG2.csv")) == {letter}
    assert len(settled.encode("utf-8")) > NAME_MAX - len(letter.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_name_settles_as_one_name_inside_its_folder(name: str) -> None:
    """Whatever the name (any code point, surrogates included): one path component
    inside the folder, not hidden, at most NAME_MAX bytes of UTF-8, no control or
    invisible character, ending with the job ID (and an extension)."""
    settled = settled_name(name, "0HZQG-CQSG2")
    folder = Path("/srv/drop/processed")
    assert (folder / settled).parent == folder
    assert settled not in ("", ".", "..")
    assert not settled.startswith(".")
    assert "/" not in settled
    assert "\\" not in settled
    assert len(settled.encode("utf-8")) <= NAME_MAX
    assert all(unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp", "Cs"} for ch in settled)
    assert ".0HZQG-CQSG2" in settled[-26:]


@pytest.mark.parametrize(
    "name",
    ["../x", "/tmp/x", "a/b", "a\\b", ".hidden", ".", "..", "", "a..b", "a.", "a\x00b",
     "a\nb", "-rf", "x" * 101],
)  # fmt: skip
def test_the_spool_takes_only_job_ids_as_names(tmp_path: Path, name: str) -> None:
    """A name that is not a plain job ID is refused before anything is written."""
    spool = Spool(tmp_path / "spool")
    with pytest.raises(ValueError, match="spool name"):
        spool.receive(name, [b"data"], cap=1000)
    assert [p.name for p in tmp_path.rglob("*")] in ([], ["spool"])
    assert not spool.folder.exists() or list(spool.folder.iterdir()) == []


def test_the_spool_names_a_file_by_its_job_id(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spooled = spool.receive("0HZQG-CQSG2", [b"a,b\r\n", b"1,2\r\n"], cap=1000)
    assert spooled.path == tmp_path / "spool" / "0HZQG-CQSG2"
    assert spooled.read() == b"a,b\r\n1,2\r\n"
    assert (spooled.path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(
    "name", ["x" * 251 + ".csv", "é" * 125 + ".csv", "ü" * 127 + "x", "a." + "b" * 252]
)
def test_a_name_as_long_as_a_filesystem_takes_still_settles_under_its_job_id(name: str) -> None:
    """A sender's name of 255 bytes leaves no room for the job ID: the settled name is
    shortened to NAME_MAX, between characters, keeping the job ID and suffix."""
    settled = settled_name(name, "0HZQ2-M6ZW0")
    assert len(settled.encode("utf-8")) <= NAME_MAX
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


def test_a_local_name_that_is_not_utf8_is_left_alone_and_the_others_are_taken(
    tmp_path: Path,
) -> None:
    """Bytes that are not UTF-8 in a name (a sender on another system): that file stays
    where it is, untouched; the folder's other files are listed, taken and settled,
    including names as long as the filesystem allows."""
    drop = tmp_path / "drop"
    drop.mkdir()
    source = LocalSource(
        "local", drop, pattern="*.csv", processed_dir=drop / "processed",
        failed_dir=drop / "failed", settle_seconds=0,
    )  # fmt: skip
    (drop / os.fsdecode(b"caf\xe9.csv")).write_bytes(b"a")
    longest = "x" * 251 + ".csv"
    (drop / longest).write_bytes(b"b")
    (drop / "ok.csv").write_bytes(b"c")
    source.list_complete(0)
    listed = source.list_complete(1)
    assert sorted(f.name for f in listed) == sorted([longest, "ok.csv"])
    for file in listed:
        source.settle(file, "0HZQG-CQSG2", True)
    assert sorted(os.listdir(os.fsencode(drop))) == [b"caf\xe9.csv", b"processed"]
    assert len(os.listdir(drop / "processed")) == 2


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


_NAMES = ["a.csv", "B.CSV", "users.xlsx", "notes.txt", "up.csv.part", ".hidden", "a.csv.done", "x~"]
_OTHER = {"users.xlsx", "notes.txt"}  # what a `*.csv` source never takes, by mistake


@settings(max_examples=200)
@given(st.lists(st.sets(st.sampled_from(_NAMES)), min_size=1, max_size=8))
def test_a_name_outside_the_pattern_is_logged_each_time_it_appears(
    listings: list[set[str]],
) -> None:
    """Over any run of listings, a name outside the pattern is logged at the listings
    where it is there and was not at the one before, and never otherwise; names the
    source takes, uploads in progress, hidden names and markers never."""
    source = MemorySource("drop")
    before: set[str] = set()
    for names in listings:
        source.files = dict.fromkeys(names, (b"x", 0.0))
        with capture_logs() as logs:
            source.list_complete(0.0)
        told = sorted(e["name"] for e in logs if e["event"] == "file_not_taken")
        assert told == sorted((names & _OTHER) - before)
        before = names & _OTHER
