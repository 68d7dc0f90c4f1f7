"""Private folders and files are 0700 and 0600 whatever the process's umask (here 000,
the loosest): the CLI sets 077, but a library caller or a server started another way
may not."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.private import private_file, private_folder, write_private


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_folder_and_every_parent_made_for_it_are_0700(tmp_path: Path) -> None:
    private_folder(tmp_path / "a" / "b" / "c")
    assert [_mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3


def test_a_folder_already_there_keeps_its_mode(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir(mode=0o755)
    private_folder(tmp_path / "shared" / "mine")
    assert (_mode(tmp_path / "shared"), _mode(tmp_path / "shared" / "mine")) == (0o755, 0o700)


def test_a_written_file_is_0600_and_whole(tmp_path: Path) -> None:
    path = tmp_path / "errors" / "J1.csv"
    # A partial file left by a crash, world-readable: replaced, not reused as it is.
    (tmp_path / "errors").mkdir(mode=0o777)
    (tmp_path / "errors" / ".J1.csv.tmp").write_bytes(b"old")
    os.chmod(tmp_path / "errors" / ".J1.csv.tmp", 0o666)
    write_private(path, b"a,b\r\n")
    assert (path.read_bytes(), _mode(path)) == (b"a,b\r\n", 0o600)
    assert sorted(os.listdir(tmp_path / "errors")) == ["J1.csv"]


def test_a_path_a_person_gave_gets_no_folder_made(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_private(tmp_path / "missing" / "out.csv", b"x", make_folder=False)
    assert not (tmp_path / "missing").exists()


def test_an_empty_file_is_made_0600_once(tmp_path: Path) -> None:
    path = tmp_path / "db" / "syncd.db"
    private_file(path)
    assert (path.read_bytes(), _mode(path), _mode(path.parent)) == (b"", 0o600, 0o700)
    path.write_bytes(b"kept")
    private_file(path)
    assert path.read_bytes() == b"kept"
