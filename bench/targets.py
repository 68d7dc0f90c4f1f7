"""The targets as ratios to anchors, and the verdict on a scenario's runs.

This machine's speed drifts by 1.6x from one day to the next, so no target is in
seconds: each is a ratio of syncd's time to an anchor measured in the same run (see
`bench.anchors`). The syncd figure is the whole `syncd` process's wall time, start-up
included; the anchor's is its in-process time, which flatters the anchor, not syncd.

Time targets hold at the sizes they were set for (1M and 5M users); at other sizes the
ratio is printed without a verdict. Memory is held everywhere: 1 GiB up to a million
users, 1.5 GiB above. Each figure is the median of the runs; a run with the wrong exit
code or counts makes the scenario a "no" whatever its time.

Pure: plain values in, plain values out, so the verdicts are unit-tested.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

CSV_READER = "csv.reader"
SQLITE_FLOOR = "SQLite floor"
POSTGRES_FLOOR = "PostgreSQL floor"
ANCHORS = (CSV_READER, SQLITE_FLOOR, POSTGRES_FLOOR)

#: The sizes the time targets were set for.
TARGET_SIZES = frozenset({1_000_000, 5_000_000})
MIB_1M, MIB_ABOVE_1M = 1024.0, 1536.0

#: scenario -> database -> (anchor, the most syncd may take as a multiple of it; None:
#: the ratio is printed, no target).
TARGETS: dict[str, dict[str, tuple[str, float | None]]] = {
    "validate clean": {"sqlite": (CSV_READER, 0.7), "postgresql": (CSV_READER, 0.7)},
    "validate dirty": {"sqlite": (CSV_READER, 1.0), "postgresql": (CSV_READER, 1.0)},
    "first load": {"sqlite": (SQLITE_FLOOR, 1.3), "postgresql": (POSTGRES_FLOOR, 1.3)},
    "no-change": {"sqlite": (CSV_READER, 2.5), "postgresql": (CSV_READER, 2.5)},
    "churn": {"sqlite": (CSV_READER, 3.0), "postgresql": (CSV_READER, 3.0)},
    "dirty night": {"sqlite": (CSV_READER, None), "postgresql": (CSV_READER, None)},
}
SCENARIOS = tuple(TARGETS)


@dataclass(frozen=True, slots=True)
class Sample:
    """One run of one scenario: the command's figures and what was wrong with its output."""

    wall_seconds: float | None
    peak_rss_mib: float | None
    problems: tuple[str, ...] = ()  # wrong exit code or counts, no JSON, no errors CSV
    note: str = ""  # the scenario's own remark, e.g. "0 user rows written"
    # Its anchor timed just before it (csv.reader), so the machine's speed is the same
    # for both; None: compared with the anchor's median over the runs instead.
    anchor_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One line of the scenarios table: medians, the ratio, the targets and yes/no."""

    scenario: str
    n: int
    database: str
    runs: int
    wall_seconds: float | None
    peak_rss_mib: float | None
    anchor: str
    anchor_seconds: float | None
    ratio: float | None
    target_ratio: float | None
    time_met: bool | None  # None: no time target at this size
    memory_target_mib: float
    memory_met: bool
    counts_met: bool
    met: bool
    note: str
    walls: tuple[float, ...] = ()
    peaks: tuple[float, ...] = ()


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are there; None when none is."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def memory_target_mib(n: int) -> float:
    """1 GiB up to a million users, 1.5 GiB above (nothing interpolated)."""
    return MIB_1M if n <= 1_000_000 else MIB_ABOVE_1M


def time_target(scenario: str, database: str, n: int) -> tuple[str, float | None]:
    """The anchor a scenario is compared with and, at a target size, its most ratio."""
    anchor, ratio = TARGETS[scenario][database]
    return anchor, ratio if n in TARGET_SIZES else None


def judge(
    scenario: str,
    n: int,
    database: str,
    samples: Sequence[Sample],
    anchors: Mapping[str, float | None],
) -> Verdict:
    """The verdict on a scenario's runs. Samples that carry their own anchor give the
    median of their ratios (each run's time against the anchor timed just before it);
    others the ratio of their median to the anchor's median in `anchors`."""
    wall = median(s.wall_seconds for s in samples)
    peak = median(s.peak_rss_mib for s in samples)
    anchor, target = time_target(scenario, database, n)
    if samples and all(s.anchor_seconds is not None for s in samples):
        anchor_seconds = median(s.anchor_seconds for s in samples)
        ratio = median(
            s.wall_seconds / s.anchor_seconds
            for s in samples
            if s.wall_seconds is not None and s.anchor_seconds
        )
    else:
        anchor_seconds = anchors.get(anchor)
        ratio = wall / anchor_seconds if wall is not None and anchor_seconds else None
    problems = _problems(samples)
    misses = []
    time_met: bool | None = None
    if target is not None:
        time_met = ratio is not None and ratio <= target
        if ratio is None:
            misses.append(f"no ratio: {anchor} or the command did not complete")
        elif not time_met:
            misses.append(f"over time: {ratio:.2f} x {anchor} > {target:g} x")
    memory_target = memory_target_mib(n)
    memory_met = peak is not None and peak <= memory_target
    if peak is not None and not memory_met:
        misses.append(f"over memory: {peak:.0f} MiB > {memory_target:g} MiB")
    counts_met = bool(samples) and not problems
    # A scenario's own note (e.g. "0 user rows written") only holds when nothing went wrong.
    own = sorted({s.note for s in samples if s.note})
    notes = [*problems, *misses] if problems else [*own, *misses]
    return Verdict(
        scenario=scenario,
        n=n,
        database=database,
        runs=len(samples),
        wall_seconds=wall,
        peak_rss_mib=peak,
        anchor=anchor,
        anchor_seconds=anchor_seconds,
        ratio=ratio,
        target_ratio=target,
        time_met=time_met,
        memory_target_mib=memory_target,
        memory_met=memory_met,
        counts_met=counts_met,
        met=counts_met and time_met is not False and memory_met,
        note="; ".join(notes),
        walls=tuple(s.wall_seconds for s in samples if s.wall_seconds is not None),
        peaks=tuple(s.peak_rss_mib for s in samples if s.peak_rss_mib is not None),
    )


def _problems(samples: Sequence[Sample]) -> list[str]:
    """Every problem once, with the runs it happened in unless it happened in all."""
    if not samples:
        return ["not run"]
    runs: dict[str, list[int]] = {}
    for number, sample in enumerate(samples, 1):
        for problem in sample.problems:
            runs.setdefault(problem, []).append(number)
    return [
        problem
        if len(numbers) == len(samples)
        else f"{problem} (run {', '.join(map(str, numbers))})"
        for problem, numbers in runs.items()
    ]
