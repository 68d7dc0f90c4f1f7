"""What the soak's three sources receive, when, and what each file should become.

Each source keeps a directory of its own:

- `hr` (SFTP, full mode): one company's nightly export (`bench.generate`), churning
  each night; now and then a night with row errors, yesterday's file sent again, a file
  cut short or a file that is no CSV at all;
- `branch` (SFTP) and `uploads` (a local folder), partial mode: a first load of a
  100,000-user population, then slices of 1,000 to 100,000 of its users (log-uniform)
  as it changes, with the same accidents.

Everything is drawn from one seeded RNG: a seed gives the same files at the same times,
so a failure can be run again. Each file is written to a staging folder before the run
(generating it must not weigh on the daemons being measured).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.generate import dirty, first_export, next_night, read_export, to_csv

#: Source name -> whether it takes full exports.
FULL = {"hr": True, "branch": False, "uploads": False}
SOURCES = tuple(FULL)
MIN_ROWS, MAX_ROWS = 1_000, 100_000
#: The company behind the full export: its first night has this many employees.
COMPANY = (10_000, 50_000)
#: What a file is, and how often (the rest are ordinary nights and slices).
ACCIDENTS = {"dirty": 0.08, "again": 0.04, "cut": 0.03, "junk": 0.02}
#: A partial feed's population changes before about this share of its files.
EVOLVE = 0.15


@dataclass(frozen=True, slots=True)
class Drop:
    """One file the test drops: where and when, its staged bytes and what its job
    should end as (`expect`), with how many data rows it holds."""

    source: str
    name: str
    at: float
    staged: Path
    rows: int
    expect: str
    kind: str


class _Feed:
    """One source's files, one after another."""

    def __init__(self, source: str, rng: np.random.Generator) -> None:
        self.source, self.rng = source, rng
        self.last_kind = ""
        self.resendable: tuple[bytes, int] | None = None  # last bytes a re-send skips
        self.full = FULL[source]
        if self.full:
            self.current = first_export(int(rng.integers(*COMPANY)), self._seed())
        else:
            self.current = first_export(MAX_ROWS, self._seed())
        self.frame = read_export(self.current)
        self.sent = 0

    def _seed(self) -> int:
        return int(self.rng.integers(0, 2**31))

    def _kind(self) -> str:
        if self.sent == 0:
            return "night"  # a source's first file is an ordinary one
        draw, edge, kind = self.rng.random(), 0.0, "night"
        for accident, share in ACCIDENTS.items():
            edge += share
            if draw < edge:
                kind = accident
                break
        if kind == "again" and self.resendable is None:
            return "night"
        if kind == "cut" and not self.full:
            return "night"
        # Two dirty nights in a row would pile up the archiving the first one held back.
        if kind == "dirty" and self.last_kind == "dirty":
            return "night"
        return kind

    def next(self) -> tuple[bytes, int, str, str]:
        """The next file: bytes, data rows, expected status, kind."""
        kind = self._kind()
        self.sent += 1
        self.last_kind = kind
        if kind == "junk":
            # An Excel workbook saved under .csv: rejected whole, settled into failed/.
            return b"PK\x03\x04" + self.rng.bytes(20_000), 0, "rejected", kind
        if kind == "again":
            assert self.resendable is not None
            content, rows = self.resendable
            return content, rows, "skipped", kind
        if kind == "cut":
            # Half-written: a third of the rows, below the guard's min_rows_percent.
            rows = max(1, int(self.frame.height * self.rng.uniform(0.3, 0.45)))
            content = to_csv(self.frame.head(rows))
            self.resendable = (content, rows)
            return content, rows, "held", kind
        content, rows = self._ordinary()
        expect = "applied"
        if kind == "dirty":
            content = dirty(content, rate=0.005, seed=self._seed())
            expect = "applied_with_errors"
        self.resendable = (content, rows)
        return content, rows, expect, kind

    def _ordinary(self) -> tuple[bytes, int]:
        if self.full:
            if self.sent > 1:
                self.current = next_night(
                    self.current,
                    self._seed(),
                    leavers=float(self.rng.uniform(0.002, 0.02)),
                    joiners=float(self.rng.uniform(0.002, 0.02)),
                )
                self.frame = read_export(self.current)
            return self.current, self.frame.height
        if self.sent == 1:
            # The first file loads the whole population: from then on the directory,
            # whose snapshot every job reads, stays about the same size, and the
            # daemons' memory has a steady state to be judged against.
            return self.current, self.frame.height
        # A partial slice of the population, which now and then changes a little (nobody
        # leaves: a partial file never archives).
        if self.rng.random() < EVOLVE:
            self.current = next_night(
                self.current, self._seed(), leavers=0.0, joiners=0.01, changes=0.05
            )
            self.frame = read_export(self.current)
        wanted = math.exp(self.rng.uniform(math.log(MIN_ROWS), math.log(MAX_ROWS)))
        rows = min(self.frame.height, round(wanted))
        picked = np.sort(self.rng.choice(self.frame.height, rows, replace=False))
        return to_csv(self.frame[picked]), rows


def plan_drops(count: int, seconds: float, seed: int, staging: Path) -> list[Drop]:
    """`count` files over `seconds`, each staged under `staging`, in the order they are
    dropped (a source's names sort in that order too)."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, seconds, count))
    picks = rng.choice(len(SOURCES), count)
    feeds = {source: _Feed(source, rng) for source in SOURCES}
    drops = []
    for at, pick in zip(times, picks, strict=True):
        source = SOURCES[pick]
        feed = feeds[source]
        content, rows, expect, kind = feed.next()
        name = f"{source}_{feed.sent:04d}.csv"
        staged = staging / name
        staged.write_bytes(content)
        drops.append(Drop(source, name, float(at), staged, rows, expect, kind))
    return drops
