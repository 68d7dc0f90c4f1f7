"""When is an upload complete? Size and mtime unchanged across listings `settle` apart.

Stock `sftp`/`scp` write straight to the final name, so a file that is still growing
looks like any other; it is taken only once two listings at least `settle_seconds`
apart saw the same size and mtime (or its `NAME.done` marker exists, when asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Seen:
    size: int
    mtime: float
    since: float  # when this (size, mtime) was first seen


@dataclass
class SettleTracker:
    settle_seconds: float
    _seen: dict[str, Seen] = field(default_factory=dict)

    def complete(self, listing: dict[str, tuple[int, float]], now: float) -> list[str]:
        """The names of `listing` (name -> (size, mtime)) that have settled, oldest first."""
        done = []
        for name, (size, mtime) in listing.items():
            seen = self._seen.get(name)
            if seen is None or (seen.size, seen.mtime) != (size, mtime):
                self._seen[name] = Seen(size, mtime, now)
            elif now - seen.since >= self.settle_seconds:
                done.append(name)
        for gone in set(self._seen) - set(listing):
            del self._seen[gone]
        return sorted(done, key=lambda n: (listing[n][1], n))

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
