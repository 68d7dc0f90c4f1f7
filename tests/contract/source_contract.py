"""The contract every source keeps: the local folder, SFTP and memory sources all pass it.

A test module subclasses `SourceContract` and gives a `harness` fixture: a source plus
the means to put a file where the source lists it, to see what was settled, and to move
the source's clock. The tests then read as what any source promises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.sources import RemoteFile, Source
from syncd.sources.spool import FileChanged, FileTooLarge, Spool


@dataclass
class Harness:
    """A source under test and its surroundings."""

    source: Source
    #: put(name, data): the file appears where the source lists it
    put: Callable[[str, bytes], None]
    #: settled("processed" | "failed") -> {name: bytes} of what was settled there
    settled: Callable[[str], dict[str, bytes]]
    #: remove(name): the file disappears from where the source lists it
    remove: Callable[[str], None]
    #: the source's settle_seconds (listings further apart than this see a file settle)
    settle_seconds: float

    def complete(self, at: float = 0.0) -> list[RemoteFile]:
        """Two listings far enough apart that every unchanged file has settled."""
        self.source.list_complete(at)
        return self.source.list_complete(at + self.settle_seconds + 1)


class SourceContract:
    """What every source promises; subclasses give the `harness` fixture."""

    def test_a_file_is_listed_only_once_it_stayed_the_same(self, harness: Harness) -> None:
        """The first listing sees a file but does not hand it over; a later one, far
        enough apart, does, with its size."""
        harness.put("people.csv", b"Email\na@x.com\n")
        assert harness.source.list_complete(0.0) == []
        [file] = harness.source.list_complete(harness.settle_seconds + 1)
        assert (file.name, file.size) == ("people.csv", 14)

    def test_uploads_in_progress_hidden_files_and_other_names_are_never_listed(
        self, harness: Harness
    ) -> None:
        """`.part`, `.tmp`, hidden names and names outside the pattern are left alone."""
        for name in ("up.csv.part", "up.csv.tmp", ".hidden.csv", "notes.txt"):
            harness.put(name, b"x")
        assert harness.complete() == []

    def test_a_file_outside_the_pattern_is_logged_once_while_it_stays(
        self, harness: Harness
    ) -> None:
        """A workbook dropped where CSV exports go is never taken, but said in the log
        once (with what to do), however many listings see it, and again if it comes
        back; uploads in progress, hidden names and `.done` markers are not said."""
        for name in ("users.xlsx", "notes.txt", "up.csv.part", ".hidden", "people.csv.done"):
            harness.put(name, b"x")

        def told(*ats: float) -> dict[str, str]:
            with capture_logs() as logs:
                for at in ats:
                    assert harness.source.list_complete(at) == []
            return {e["name"]: e["hint"] for e in logs if e["event"] == "file_not_taken"}

        first = told(0.0, 100.0, 200.0)
        assert sorted(first) == ["notes.txt", "users.xlsx"]
        assert "Save As > CSV UTF-8" in first["users.xlsx"]
        assert "'*.csv'" in first["notes.txt"]
        assert told(300.0) == {}
        harness.remove("users.xlsx")
        assert told(400.0) == {}
        harness.put("users.xlsx", b"again")
        assert list(told(500.0)) == ["users.xlsx"]

    def test_files_are_listed_oldest_first(self, harness: Harness) -> None:
        """File order is modification time, then name."""
        for name in ("b.csv", "a.csv", "c.csv"):
            harness.put(name, name.encode())
        listed = harness.complete()
        assert sorted(listed, key=lambda f: f.order) == listed
        assert {f.name for f in listed} == {"a.csv", "b.csv", "c.csv"}

    def test_fetch_streams_the_file_into_the_spool_with_its_sha256(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """The spooled copy is byte for byte the file, its sha256 computed on the way,
        readable by syncd's user alone, and nothing half written is left."""
        data = bytes(range(256)) * 5000
        harness.put("big.csv", data)
        [file] = harness.complete()
        spool = Spool(tmp_path / "spool")
        spooled = harness.source.fetch(file, spool, "JOB1")
        assert spooled.read() == data
        assert (spooled.sha256, spooled.size) == (hashlib.sha256(data).hexdigest(), len(data))
        assert spooled.path.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in spool.folder.iterdir()] == ["JOB1"]

    def test_a_file_over_the_cap_is_refused_and_not_kept(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """Past the byte cap the stream stops: FileTooLarge, and nothing in the spool."""
        harness.put("huge.csv", b"x" * 3_000_000)
        [file] = harness.complete()
        spool = Spool(tmp_path / "spool")
        cap = harness.source.cap  # type: ignore[attr-defined]
        harness.source.cap = 1_000_000  # type: ignore[attr-defined]
        try:
            with pytest.raises(FileTooLarge):
                harness.source.fetch(file, spool, "JOB1")
        finally:
            harness.source.cap = cap  # type: ignore[attr-defined]
        assert list(spool.folder.iterdir()) == []

    def test_a_file_that_vanished_or_changed_since_listing_is_not_fetched(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """The listing is what was claimed: a file gone or grown since is FileChanged."""
        harness.put("gone.csv", b"a")
        harness.put("grown.csv", b"a")
        listed = {f.name: f for f in harness.complete()}
        harness.remove("gone.csv")
        harness.put("grown.csv", b"a longer file now")
        spool = Spool(tmp_path / "spool")
        for name in ("gone.csv", "grown.csv"):
            with pytest.raises(FileChanged):
                harness.source.fetch(listed[name], spool, f"J-{name}")

    def test_settling_moves_the_file_under_its_job_id(self, harness: Harness) -> None:
        """processed/ for a job that went through, failed/ for one that did not, each
        named with the job ID; the file leaves the listing."""
        harness.put("ok.csv", b"ok")
        harness.put("bad.csv", b"bad")
        listed = {f.name: f for f in harness.complete()}
        harness.source.settle(listed["ok.csv"], "AAAAA-00001", True)
        harness.source.settle(listed["bad.csv"], "AAAAA-00002", False)
        assert harness.settled("processed") == {"ok.AAAAA-00001.csv": b"ok"}
        assert harness.settled("failed") == {"bad.AAAAA-00002.csv": b"bad"}
        assert harness.complete(100.0) == []

    def test_settling_with_a_replacement_keeps_only_the_replacement(self, harness: Harness) -> None:
        """A file holding passwords is settled as its redacted copy; the original goes."""
        harness.put("pw.csv", b"email,password\na@x.com,hunter22\n")
        [file] = harness.complete()
        harness.source.settle(file, "AAAAA-00003", True, b"email,password\na@x.com,\n")
        assert harness.settled("processed") == {"pw.AAAAA-00003.csv": b"email,password\na@x.com,\n"}
        assert harness.complete(100.0) == []

    def test_settling_a_file_that_is_gone_says_so(self, harness: Harness) -> None:
        """Another daemon settled it first: FileChanged, nothing else happens."""
        harness.put("twice.csv", b"x")
        [file] = harness.complete()
        harness.source.settle(file, "AAAAA-00004", True)
        with pytest.raises(FileChanged):
            harness.source.settle(file, "AAAAA-00005", True)
        assert harness.settled("processed") == {"twice.AAAAA-00004.csv": b"x"}

    def test_a_file_written_again_since_listing_is_left_for_its_own_job(
        self, harness: Harness
    ) -> None:
        """The sender replaced the file after its job took it: settling that job must not
        carry the new file off unread. FileChanged; the new file stays and is listed."""
        harness.put("again.csv", b"first")
        [file] = harness.complete()
        harness.put("again.csv", b"second, and longer")
        with pytest.raises(FileChanged):
            harness.source.settle(file, "AAAAA-00006", True)
        assert harness.settled("processed") == {}
        [listed] = harness.complete(100.0)
        assert (listed.name, listed.size) == ("again.csv", len(b"second, and longer"))

    def test_a_name_as_long_as_the_filesystem_takes_is_settled(self, harness: Harness) -> None:
        """A 254-byte name (most filesystems take 255) still settles: shortened, with its
        job ID and suffix."""
        name = "ü" * 125 + ".csv"
        harness.put(name, b"long")
        [file] = harness.complete()
        harness.source.settle(file, "AAAAA-00007", False)
        [(settled, content)] = harness.settled("failed").items()
        assert content == b"long"
        assert settled.startswith("üü")
        assert settled.endswith(".AAAAA-00007.csv")
        assert harness.complete(100.0) == []
