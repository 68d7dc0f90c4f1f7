"""A local folder as a source: files dropped into `path`, settled into processed/ or failed/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import structlog

from syncd.errors import SourceError
from syncd.sources import RemoteFile, Settling, is_candidate, settled_name
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
        cap: int = 512 * 1024 * 1024,
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
        self._warned: set[str] = set()

    def list_complete(self, now: float) -> list[RemoteFile]:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            entries = list(os.scandir(self.path))
        except OSError as exc:
            raise SourceError(f"cannot list {self.path}: {exc.strerror}") from exc
        names = {e.name for e in entries}
        listing: dict[str, RemoteFile] = {}
        for entry in entries:
            try:
                if not entry.is_file() or not is_candidate(entry.name, self.pattern):
                    continue
                if not _utf8(entry.name):
                    self._not_utf8(entry.name)
                    continue
                if self.markers and f"{entry.name}.done" not in names:
                    continue
                stat = entry.stat()
            except OSError:  # gone between listing and looking
                continue
            listing[entry.name] = RemoteFile(entry.name, stat.st_size, stat.st_mtime)
        if self.markers:
            return sorted(listing.values(), key=lambda f: f.order)
        return self._tracker.complete(listing, now)

    def _not_utf8(self, name: str) -> None:
        """A name that is not UTF-8 cannot be stored with its job (nor shown as it is):
        the file is left where it is, and said so once, while the others are taken."""
        if name in self._warned:
            return
        self._warned.add(name)
        shown = os.fsencode(name).decode("utf-8", errors="backslashreplace")
        log.warning(
            "file_name_not_utf8",
            source=self.name,
            file=shown,
            hint="the file is not taken; rename it (its name is not UTF-8)",
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
                target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                path = target_dir / settled_name(name, job_id)
                if replacement is None:
                    os.replace(source, path)
                    os.chmod(path, 0o600)
                else:
                    _write_private(path, replacement)
                    source.unlink()
                target = str(path)
            if self.markers:
                # (Without markers there is none to look for, and a name of 251 bytes or
                # more cannot even have one: looking would fail.)
                (self.path / f"{name}.done").unlink(missing_ok=True)
        except OSError as exc:
            raise SourceError(f"cannot settle {name}: {exc.strerror}") from exc
        self._tracker.forget(name)
        return target

    def close(self) -> None:
        return None


def _utf8(name: str) -> bool:
    """Whether a name read from the folder is UTF-8 (else it holds surrogate escapes)."""
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


def _write_private(path: Path, data: bytes) -> None:
    """Write `path` (mode 0600) through a temporary name, so it is whole or absent."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
