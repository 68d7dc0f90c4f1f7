"""The daemons' resident memory over the soak: sampled from /proc, written as a curve,
and judged flat or not.

A leak shows as a floor that keeps rising: each job's working set comes and goes
(polars hands its memory back at once), so the samples are spikes over a floor, and
what matters is whether the later part of the run sits higher than the earlier part
once warmed up.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: How often both daemons are sampled.
EVERY_SECONDS = 2.0
#: The last quarter's mean may exceed the second's by this share plus FLAT_MIB. Without
#: a leak it still sits 30 to 40 MiB higher (measured over some 250 jobs a daemon): the
#: allocators' high-water mark settles over the first hundred jobs or so, and the jobs
#: running in either quarter differ in size. A leak of 1 MiB a job adds about 125 MiB.
FLAT_SHARE = 0.10
FLAT_MIB = 25.0


def rss_mib(pid: int) -> float | None:
    """The resident set of process `pid` in MiB (VmRSS), None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


@dataclass
class Sampler:
    """Samples each named process's RSS every EVERY_SECONDS in a thread, from `start`
    until `stop`, appending `elapsed,name,...` rows to `curve` as it goes (a run that
    dies half-way still leaves its curve)."""

    pids: Mapping[str, int]
    curve: Path
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _began: float = 0.0

    def start(self) -> None:
        self._began = time.monotonic()
        self.curve.parent.mkdir(parents=True, exist_ok=True)
        self.curve.write_text(
            "elapsed_s," + ",".join(f"{n}_rss_mib" for n in self.pids) + "\n", encoding="utf-8"
        )
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def now(self) -> float:
        """Seconds since sampling began (the curve's time axis)."""
        return time.monotonic() - self._began

    def _run(self) -> None:
        while not self._stop.is_set():
            values = {name: rss_mib(pid) for name, pid in self.pids.items()}
            taken = {n: v for n, v in values.items() if v is not None}
            if taken:  # a daemon stopped on purpose leaves a blank in its column
                elapsed = self.now()
                self.samples.append((elapsed, taken))
                cells = ("" if v is None else f"{v:.1f}" for v in values.values())
                with self.curve.open("a", encoding="utf-8") as out:
                    out.write(f"{elapsed:.1f}," + ",".join(cells) + "\n")
            self._stop.wait(EVERY_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass(frozen=True, slots=True)
class Quarters:
    """One daemon's mean RSS in each quarter of a window."""

    means: tuple[float, float, float, float]

    @property
    def flat(self) -> bool:
        """No upward trend after warm-up: the last quarter's mean within the margin of
        the second's (the first quarter is warm-up)."""
        return self.means[3] <= self.means[1] * (1 + FLAT_SHARE) + FLAT_MIB


def quarters(
    samples: list[tuple[float, dict[str, float]]], name: str, since: float, until: float
) -> Quarters:
    """`name`'s samples taken between `since` and `until`, by quarter."""
    window = [(t, v[name]) for t, v in samples if since <= t <= until and name in v]
    if len(window) < 8:
        raise AssertionError(
            f"only {len(window)} RSS samples of {name} between {since:.0f} s and "
            f"{until:.0f} s: too few to judge"
        )
    span = (until - since) / 4
    means = []
    for q in range(4):
        part = [v for t, v in window if since + q * span <= t <= since + (q + 1) * span]
        means.append(statistics.fmean(part) if part else float("nan"))
    return Quarters((means[0], means[1], means[2], means[3]))
