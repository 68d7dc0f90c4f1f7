"""When is an upload complete? Size and mtime unchanged across listings `settle` apart.

Stock `sftp`/`scp` write straight to the final name, so a file that is still growing
looks like any other; it is taken only once two listings at least `settle_seconds`
apart saw the same size and mtime (or its `NAME.done` marker exists, when asked for).
The clock is the caller's: listings pass `now`, so tests give explicit times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.sources import RemoteFile


@dataclass(frozen=True, slots=True)
class Seen:
    size: int
    mtime: float
    since: float  # when this (size, mtime) was first seen


@dataclass
class SettleTracker:
    settle_seconds: float
    _seen: dict[str, Seen] = field(default_factory=dict)
    _waiting: bool = False

    def complete(self, listing: dict[str, RemoteFile], now: float) -> list[RemoteFile]:
        """The files of `listing` (by name) that have settled, in file order."""
        done = []
        self._waiting = False
        for name, file in listing.items():
            seen = self._seen.get(name)
            if seen is None or (seen.size, seen.mtime) != (file.size, file.mtime):
                self._seen[name] = Seen(file.size, file.mtime, now)
                self._waiting = True
            elif now - seen.since >= self.settle_seconds:
                done.append(file)
            else:
                self._waiting = True
        for gone in set(self._seen) - set(listing):
            del self._seen[gone]
        return sorted(done, key=lambda f: f.order)

    @property
    def waiting(self) -> bool:
        """Whether the last listing saw a file that has not settled yet."""
        return self._waiting

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
