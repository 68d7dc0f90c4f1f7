"""Folders and files that hold people's data, readable by syncd's own user alone.

`syncd` sets its umask to 077, so whatever it creates is private; these make it so
whatever the umask of the process (a library caller, a server started some other way):
folders 0700 (and each parent made for them), files 0600 from their first byte, written
through a temporary name so they are whole or absent.
"""

from __future__ import annotations

import os
from pathlib import Path


def private_folder(path: Path) -> None:
    """Make `path` and its missing parents, each 0700; a folder already there is left
    as it is (its owner chose its mode)."""
    missing: list[Path] = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile (another syncd): it is there
            continue
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask


def write_private(
    path: Path, data: bytes, *, temporary: str | None = None, make_folder: bool = True
) -> None:
    """Write `path` (0600) through the name `temporary` in its folder (default
    `.NAME.tmp`; pass a short one for a name near the filesystem's limit). Its folder is
    made private if missing, unless `make_folder` is False (a path a person gave:
    FileNotFoundError then)."""
    if make_folder:
        private_folder(path.parent)
    partial = path.with_name(temporary or f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # an old partial file keeps its mode
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def private_file(path: Path) -> None:
    """Create `path` empty (0600, its folder private) if it is not there, so what later
    opens it (SQLite: the database, and its -wal and -shm, which take its mode) finds it
    private."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)
    os.close(fd)
