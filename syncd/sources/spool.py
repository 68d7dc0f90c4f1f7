"""The spool: where a source's file is copied before its job reads it.

A file arrives as a stream of chunks: it is written to a temporary name, its sha256
computed as it streams, and renamed to its final name only once whole, so a crash or a
broken connection never leaves a file that looks complete. What the spool writes is
readable by syncd's user alone (0600, in a 0700 folder). A stream longer than the byte
cap stops there: the file is refused without being kept.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from syncd.errors import FileRejected
from syncd.private import private_folder

#: What the spool names a file: a job ID, letters, digits, `-`, `_` and `.` (never
#: first, never two in a row), so a name is never a path, a hidden file or `..`.
SPOOL_NAME = re.compile(r"[0-9A-Za-z](?:\.?[0-9A-Za-z_-])*")
#: Past this a name is no job ID.
SPOOL_NAME_MAX = 100


class FileTooLarge(FileRejected):
    """The file is larger than the source's byte cap; it was not kept."""


class FileChanged(FileRejected):
    """The file is not the one listed: it changed or vanished in between."""


@dataclass(frozen=True, slots=True)
class Spooled:
    """A file received whole: where it is, its sha256 and its size."""

    path: Path
    sha256: str
    size: int

    def read(self) -> bytes:
        return self.path.read_bytes()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Receiving:
    """A file arriving in the spool: written to a hidden temporary name, hashed as it
    streams, renamed to its final name by `finish`; past `cap` bytes it is refused
    (`FileTooLarge`) and nothing is kept."""

    def __init__(self, final: Path, cap: int) -> None:
        self.final = final
        self.cap = cap
        self.size = 0
        self._partial = final.with_name(f".{final.name}.part")
        self._digest = hashlib.sha256()
        fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._out = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            self.abort()
            raise FileTooLarge(
                f"the file is larger than the {self.cap:,} bytes allowed; split it, or "
                "raise max_bytes in the profile"
            )
        self._digest.update(chunk)
        self._out.write(chunk)

    def finish(self) -> Spooled:
        self._out.close()
        os.replace(self._partial, self.final)
        return Spooled(self.final, self._digest.hexdigest(), self.size)

    def abort(self) -> None:
        """Forget what was received."""
        self._out.close()
        self._partial.unlink(missing_ok=True)


class Spool:
    """A folder of received files, named by the caller (a job ID), never by the sender."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def receive(self, name: str, chunks: Iterable[bytes], *, cap: int) -> Spooled:
        """Write `chunks` to the spool as `name`, whole or not at all."""
        receiving = self.open(name, cap=cap)
        try:
            for chunk in chunks:
                receiving.write(chunk)
        except BaseException:
            receiving.abort()
            raise
        return receiving.finish()

    def open(self, name: str, *, cap: int) -> Receiving:
        """Start receiving `name` chunk by chunk, for a sender that pushes its bytes (an
        upload through the back office); `receive` for one that is pulled."""
        if len(name) > SPOOL_NAME_MAX or not SPOOL_NAME.fullmatch(name):
            raise ValueError(f"a spool name is a job ID, not {name!r}")
        private_folder(self.folder)
        return Receiving(self.folder / name, cap)

    def clear(self) -> None:
        """Forget everything half received (what a crash left)."""
        if self.folder.is_dir():
            for leftover in self.folder.glob(".*.part"):
                leftover.unlink(missing_ok=True)
