"""Sources hand complete files to jobs and settle them afterwards.

Every source answers three questions, whatever it is (a local folder, an SFTP server, a
dict in a test): which files are complete now (`list_complete`), what are a file's bytes
(`fetch`, streamed into the spool), and where does a file go once its job ended
(`settle`: processed/ or failed/ with the job ID in its name, or deleted). All of them pass
one contract test (`tests/contract/source_contract.py`).

A remote file's name is the sender's: it is never used as a local path. The spool names
what it receives after the job; settled names are built from the name only within the
source's own processed/ and failed/ folders.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import structlog

from syncd.sources.spool import Spool, Spooled

if TYPE_CHECKING:
    from syncd.config import SourceConfig

#: Names never taken: uploads in progress and hidden files.
IGNORED_PATTERNS = ("*.part", "*.tmp", "*.filepart", ".*", "*~")

#: What becomes of a file once its job ended.
Settling = Literal["move", "delete"]


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file as a source lists it: its name, size and modification time (seconds)."""

    name: str
    size: int
    mtime: float

    @property
    def order(self) -> tuple[float, str]:
        """Files of one source are applied in this order: oldest first, then by name."""
        return (self.mtime, self.name)


class Source(Protocol):
    """A place files arrive at."""

    name: str

    def list_complete(self, now: float) -> list[RemoteFile]:
        """Files whose upload is complete, in file order (`RemoteFile.order`)."""
        ...

    @property
    def waiting(self) -> bool:
        """Whether the last listing saw a file not complete yet (another look is due)."""
        ...

    def fetch(self, file: RemoteFile, spool: Spool, spooled_name: str) -> Spooled:
        """Stream `file` into the spool as `spooled_name`; SourceError if it cannot be
        read, FileChanged if it is no longer the file listed, FileTooLarge past the cap."""
        ...

    def settle(
        self, file: RemoteFile, job_id: str, ok: bool, replacement: bytes | None = None
    ) -> str:
        """Move `file` to processed/ (ok) or failed/ with `job_id` in its name, or write
        `replacement` there in its place (the file with its secret cells blanked), or
        delete it when the source says so; return where it went. FileChanged if the
        file is no longer there (another daemon settled it first), or is no longer the
        file listed (written again since its job took it: it is left for a job of its
        own)."""
        ...

    def close(self) -> None:
        """Let go of connections and watchers."""
        ...


def is_candidate(name: str, pattern: str) -> bool:
    """Whether a listed name may be taken: it matches the source's pattern (any case)
    and is neither an upload in progress nor hidden."""
    return not _ignored(name) and fnmatch.fnmatch(name.lower(), pattern.lower())


def _ignored(name: str) -> bool:
    """An upload in progress or a hidden name: never taken, and no mistake either."""
    return any(fnmatch.fnmatch(name, ignored) for ignored in IGNORED_PATTERNS)


#: Names a sender saves by mistake for a CSV export: workbooks and Excel's own formats.
_WORKBOOKS = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".numbers")

log = structlog.get_logger("syncd.sources")


@dataclass
class OtherNames:
    """The files a source lists but never takes, their names being outside its pattern
    (`users.xlsx` where it takes `*.csv`): each is logged once, while it stays, so that a
    file dropped by mistake does not wait unseen. Uploads in progress, hidden names and
    `.done` markers are no mistake, and are not logged."""

    source: str
    pattern: str
    _told: set[str] = field(default_factory=set)

    def note(self, names: Iterable[str]) -> None:
        """Log the names of this listing's files not logged before (`names`: every
        regular file listed)."""
        other = {
            name
            for name in names
            if not is_candidate(name, self.pattern)
            and not _ignored(name)
            and not name.lower().endswith(".done")
        }
        for name in sorted(other - self._told):
            if name.lower().endswith(_WORKBOOKS):
                hint = (
                    "a spreadsheet is never read: save it as CSV (in Excel: File > Save As > "
                    "CSV UTF-8) and drop that file"
                )
            else:
                hint = f"the source takes only names matching {self.pattern!r}"
            log.warning("file_not_taken", source=self.source, name=name, hint=hint)
        self._told = other  # a name gone and dropped again is logged again


#: The longest file name, in bytes, of Linux filesystems (and so of most SFTP servers).
NAME_MAX = 255
#: Unicode categories never kept in a settled name: controls, format characters (bidi
#: overrides, zero-width), line and paragraph separators, surrogates (the bytes of a
#: name that was not UTF-8), private and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _unsafe(ch: str) -> bool:
    return ch in "/\\" or unicodedata.category(ch) in _UNSAFE_CATEGORIES


def settled_name(name: str, job_id: str) -> str:
    """`people.csv` settled by job 7K3M9-QX2AB: `people.7K3M9-QX2AB.csv`.

    One plain name, whatever the sender's was: path separators (`/`, and `\\` for
    whoever reads the folder from Windows), control characters (NUL, newlines, escape
    sequences) and the invisible ones that reorder or hide text (bidi overrides, line
    separators) become `_`; leading dots go (no hidden file, no `..`); a name too long
    for the filesystem once the job ID is added is cut (the job ID and extension stay)."""
    safe = "".join("_" if _unsafe(ch) else ch for ch in name).lstrip(".") or "file"
    stem, dot, suffix = safe.rpartition(".")
    if not (dot and stem and suffix.isascii() and suffix.isalnum() and len(suffix) <= 10):
        stem, suffix = safe, ""
    tail = f".{job_id}.{suffix}" if suffix else f".{job_id}"
    room = NAME_MAX - len(tail.encode("utf-8"))
    return stem.encode("utf-8")[:room].decode("utf-8", errors="ignore") + tail


def marker_name(name: str) -> str | None:
    """`NAME.done`, the marker that says `name` is complete; None when that name would be
    too long to exist (a name near NAME_MAX has no marker, and looking for one fails)."""
    marker = f"{name}.done"
    return marker if len(marker.encode("utf-8", "surrogateescape")) <= NAME_MAX else None


def open_source(config: SourceConfig, env: Mapping[str, str], cap: int) -> Source:
    """The source a `[[sources]]` entry describes (nothing connects until it is used);
    `cap`: the most bytes a fetch takes (the profile's max_bytes)."""
    from pathlib import Path

    if config.kind == "sftp":
        from syncd.sources.sftp import SftpSource  # paramiko loads only for SFTP sources

        return SftpSource.from_config(config, env, cap)
    from syncd.sources.local import LocalSource

    if config.path is None:
        raise ValueError(f"local source {config.name} has no path")
    return LocalSource(
        config.name,
        config.path,
        pattern=config.pattern,
        processed_dir=Path(config.processed_dir),
        failed_dir=Path(config.failed_dir),
        settle_seconds=config.settle_seconds,
        markers=config.markers,
        settling=config.settle,
        cap=cap,
    )
