"""A local folder as a source: files dropped into `path`, settled into processed/ or failed/.

A file whose name is not UTF-8 (a sender on another system, or bytes the filesystem took
as they came) is left where it is and logged once: its name could be neither recorded
nor written in a report, and it must not keep the folder's other files from being taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import structlog

from syncd.core.limits import MAX_BYTES
from syncd.errors import SourceError
from syncd.private import private_folder, write_private
from syncd.sources import (
    OtherNames,
    RemoteFile,
    Settling,
    is_candidate,
    marker_name,
    settled_name,
)
from syncd.sources.settling import SettleTracker
from syncd.sources.spool import FileChanged, Spool, Spooled

CHUNK = 1024 * 1024

log = structlog.get_logger("syncd.sources.local")


class LocalSource:
    def __init__(
        self,
        name: str,
        path: Path,
        *,
        pattern: str,
        processed_dir: Path,
        failed_dir: Path,
        settle_seconds: float,
        markers: bool = False,
        settling: Settling = "move",
        cap: int = MAX_BYTES,
    ) -> None:
        self.name = name
        self.path = path
        self.pattern = pattern
        self.processed_dir = processed_dir
        self.failed_dir = failed_dir
        self.markers = markers
        self.settling: Settling = settling
        self.cap = cap
        self._tracker = SettleTracker(settle_seconds)
        self._not_utf8: set[str] = set()
        self._other_names = OtherNames(name, pattern)

    def list_complete(self, now: float) -> list[RemoteFile]:
        try:
            private_folder(self.path)
            entries = list(os.scandir(self.path))
        except OSError as exc:
            raise SourceError(f"cannot list {self.path}: {exc.strerror}") from exc
        names = {e.name for e in entries}
        listing: dict[str, RemoteFile] = {}
        files = []
        for entry in entries:
            try:
                if not entry.is_file():
                    continue
                files.append(entry.name)
                if not is_candidate(entry.name, self.pattern):
                    continue
                if not _utf8(entry.name):
                    self._skip_not_utf8(entry.name)
                    continue
                if self.markers and f"{entry.name}.done" not in names:
                    continue
                stat = entry.stat()
            except OSError:  # gone between listing and looking
                continue
            listing[entry.name] = RemoteFile(entry.name, stat.st_size, stat.st_mtime)
        self._other_names.note(filter(_utf8, files))
        if self.markers:
            return sorted(listing.values(), key=lambda f: f.order)
        return self._tracker.complete(listing, now)

    def _skip_not_utf8(self, name: str) -> None:
        if name not in self._not_utf8:
            self._not_utf8.add(name)
            log.warning(
                "file_name_not_utf8",
                source=self.name,
                name=os.fsencode(name).decode("utf-8", "backslashreplace"),
                hint="syncd takes only files named in UTF-8; rename it",
            )

    @property
    def waiting(self) -> bool:
        """Whether some file was seen but has not settled yet (another look is due)."""
        return self._tracker.waiting

    def fetch(self, file: RemoteFile, spool: Spool, spooled_name: str) -> Spooled:
        path = self.path / file.name
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise FileChanged(
                f"{file.name} vanished before it could be read; nothing was applied"
            ) from exc
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
        with handle:
            stat = os.fstat(handle.fileno())
            if (stat.st_size, stat.st_mtime) != (file.size, file.mtime):
                raise FileChanged(_changed(file.name))

            def chunks() -> Iterator[bytes]:
                while chunk := handle.read(CHUNK):
                    yield chunk

            spooled = spool.receive(spooled_name, chunks(), cap=self.cap)
            after = os.fstat(handle.fileno())
        if spooled.size != file.size or after.st_mtime != file.mtime:
            spooled.discard()
            raise FileChanged(_changed(file.name))
        return spooled

    def settle(
        self, file: RemoteFile, job_id: str, ok: bool, replacement: bytes | None = None
    ) -> str:
        name = file.name
        source = self.path / name
        try:
            now = source.stat()
        except FileNotFoundError:
            raise FileChanged(f"{name} is no longer in {self.path}") from None
        except OSError as exc:
            raise SourceError(f"cannot settle {name}: {exc.strerror}") from exc
        if (now.st_size, now.st_mtime) != (file.size, file.mtime):
            raise FileChanged(_written_again(name))
        try:
            if self.settling == "delete":
                source.unlink(missing_ok=True)
                target = "deleted"
            else:
                target_dir = self.processed_dir if ok else self.failed_dir
                private_folder(target_dir)
                path = target_dir / settled_name(name, job_id)
                if replacement is None:
                    os.replace(source, path)
                    os.chmod(path, 0o600)
                else:
                    write_private(path, replacement, temporary=f".{job_id}.tmp")
                    source.unlink()
                target = str(path)
            marker = marker_name(name) if self.markers else None
            if marker is not None:
                (self.path / marker).unlink(missing_ok=True)
        except OSError as exc:
            raise SourceError(f"cannot settle {name}: {exc.strerror}") from exc
        self._tracker.forget(name)
        return target

    def close(self) -> None:
        return None


def _utf8(name: str) -> bool:
    """Whether a name as os.scandir gives it came from UTF-8 bytes (else it carries
    the surrogates that stand for the bytes UTF-8 could not decode)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _changed(name: str) -> str:
    return (
        f"{name} changed while it was being read; nothing was applied, and it is taken "
        "again once it stays the same"
    )


def _written_again(name: str) -> str:
    return (
        f"{name} was written again after its job took it; the new file is left for a job of its own"
    )
