"""A source held in memory: files are put by the caller, settled into dicts.

It passes the same contract as the local and SFTP sources, so tests of the daemon's
logic need neither a folder nor a server, nor any sleeping: listings take the caller's
clock, and a file counts as complete once `settle_seconds` of that clock have passed
without a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.core.limits import MAX_BYTES
from syncd.errors import SourceError
from syncd.sources import OtherNames, RemoteFile, is_candidate, settled_name
from syncd.sources.settling import SettleTracker
from syncd.sources.spool import FileChanged, Spool, Spooled


@dataclass
class MemorySource:
    name: str
    settle_seconds: float = 0
    pattern: str = "*.csv"
    cap: int = MAX_BYTES
    files: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    processed: dict[str, bytes] = field(default_factory=dict)
    failed: dict[str, bytes] = field(default_factory=dict)
    #: set to make every call fail, as a server that went away does
    down: bool = False

    def __post_init__(self) -> None:
        self._tracker = SettleTracker(self.settle_seconds)
        self._other_names = OtherNames(self.name, self.pattern)

    def put(self, name: str, data: bytes, mtime: float) -> None:
        self.files[name] = (data, mtime)

    def _up(self) -> None:
        if self.down:
            raise SourceError(f"source {self.name} is unreachable")

    def list_complete(self, now: float) -> list[RemoteFile]:
        self._up()
        self._other_names.note(self.files)
        listing = {
            name: RemoteFile(name, len(data), mtime)
            for name, (data, mtime) in self.files.items()
            if is_candidate(name, self.pattern)
        }
        return self._tracker.complete(listing, now)

    @property
    def waiting(self) -> bool:
        return self._tracker.waiting

    def fetch(self, file: RemoteFile, spool: Spool, spooled_name: str) -> Spooled:
        self._up()
        found = self.files.get(file.name)
        if found is None or (len(found[0]), found[1]) != (file.size, file.mtime):
            raise FileChanged(f"{file.name} changed or vanished before it could be read")
        data = found[0]
        return spool.receive(
            spooled_name, (data[i : i + 65536] for i in range(0, len(data), 65536)), cap=self.cap
        )

    def settle(
        self, file: RemoteFile, job_id: str, ok: bool, replacement: bytes | None = None
    ) -> str:
        self._up()
        if file.name not in self.files:
            raise FileChanged(f"{file.name} is no longer there")
        data, mtime = self.files[file.name]
        if (len(data), mtime) != (file.size, file.mtime):
            raise FileChanged(f"{file.name} was written again after its job took it")
        data, _ = self.files.pop(file.name)
        target = self.processed if ok else self.failed
        name = settled_name(file.name, job_id)
        target[name] = data if replacement is None else replacement
        self._tracker.forget(file.name)
        return f"{'processed' if ok else 'failed'}/{name}"

    def close(self) -> None:
        return None
