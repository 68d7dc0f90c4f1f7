"""A local folder as a source: files dropped into `path`, settled into processed/ or failed/."""

from __future__ import annotations

import os
from pathlib import Path

from syncd.errors import SourceError
from syncd.sources import is_candidate
from syncd.sources.settling import SettleTracker


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
    ) -> None:
        self.name = name
        self.path = path
        self.pattern = pattern
        self.processed_dir = processed_dir
        self.failed_dir = failed_dir
        self.markers = markers
        self._tracker = SettleTracker(settle_seconds)

    def list_complete(self, now: float) -> list[str]:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            entries = list(os.scandir(self.path))
        except OSError as exc:
            raise SourceError(f"cannot list {self.path}: {exc.strerror}") from exc
        names = {e.name for e in entries}
        listing: dict[str, tuple[int, float]] = {}
        for entry in entries:
            if not entry.is_file() or not is_candidate(entry.name, self.pattern):
                continue
            if self.markers and f"{entry.name}.done" not in names:
                continue
            stat = entry.stat()
            listing[entry.name] = (stat.st_size, stat.st_mtime)
        if self.markers:
            return sorted(listing, key=lambda n: (listing[n][1], n))
        return self._tracker.complete(listing, now)

    def fetch(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {self.path / name}: {exc.strerror}") from exc

    def settle(self, name: str, job_id: str, ok: bool, replacement: bytes | None = None) -> str:
        """Move the file to processed/ (ok) or failed/ with the job ID in its name; with a
        `replacement` (the file with its secret cells blanked), write that there instead
        and remove the file. What lands there is readable by syncd's user alone."""
        target_dir = self.processed_dir if ok else self.failed_dir
        stem, dot, suffix = name.rpartition(".")
        target = target_dir / (f"{stem}.{job_id}.{suffix}" if dot else f"{name}.{job_id}")
        try:
            target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if replacement is None:
                os.replace(self.path / name, target)
                os.chmod(target, 0o600)
            else:
                _write_private(target, replacement)
                (self.path / name).unlink()
            marker = self.path / f"{name}.done"
            if marker.exists():
                marker.unlink()
        except OSError as exc:
            raise SourceError(f"cannot move {name} to {target_dir}: {exc.strerror}") from exc
        self._tracker.forget(name)
        return str(target)


def _write_private(path: Path, data: bytes) -> None:
    """Write `path` (mode 0600) through a temporary name, so it is whole or absent."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
