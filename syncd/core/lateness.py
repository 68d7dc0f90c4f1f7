"""When a source is late: the rule, on plain values and explicit clock readings.

A source may say how often its files come (`expect_every`, e.g. "24h"). It is **due** a
file once that long has passed since the newest file it sent (or, before it ever sent
one, since syncd started watching it); from then on it is **late**. With
`business_days`, only time on Monday to Friday counts (whole days, in UTC like cron
schedules): a clock that would run over a weekend stops at Saturday 00:00 and goes on
Monday 00:00, and one started on a weekend starts Monday 00:00.

A late source is told about once: `judge` says `late` the first time the deadline has
passed, `still_late` afterwards (the caller keeps what it was told in the database),
and `resumed` once a file newer than the one lateness was measured from arrives.
Nothing here reads a clock or a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+)([smhd])")
_WEEK_DAYS = 5  # Monday to Friday


def parse_duration(text: str) -> timedelta:
    """A duration such as "90m", "24h", "2d", "1d12h" or "5s"; ValueError for anything else."""
    compact = text.strip().lower()
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit, "
            'e.g. "90m", "24h", "2d" or "1d12h" (s, m, h, d)'
        )
    seconds = sum(int(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is no time at all: expect files at least every second")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Expectation:
    """How often a source's files are expected: `every`, counting weekdays only with
    `business_days`."""

    every: timedelta
    business_days: bool = False


def _week_start_after(moment: datetime) -> datetime:
    """`moment`, or the Monday 00:00 after it when it falls on a weekend."""
    weekday = moment.weekday()
    if weekday < _WEEK_DAYS:
        return moment
    monday = moment.date() + timedelta(days=7 - weekday)
    return datetime.combine(monday, time(0), tzinfo=UTC)


def due_at(since: datetime, expect: Expectation) -> datetime:
    """The moment `expect.every` has passed since `since` (weekday time only with
    `business_days`)."""
    if not expect.business_days:
        return since + expect.every
    moment = _week_start_after(since.astimezone(UTC))
    left = expect.every
    while True:
        saturday = datetime.combine(
            moment.date() + timedelta(days=_WEEK_DAYS - moment.weekday()), time(0), tzinfo=UTC
        )
        if moment + left <= saturday:
            return moment + left
        left -= saturday - moment
        moment = saturday + timedelta(days=2)


Lateness = Literal["on_time", "late", "still_late", "resumed"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check found.

    - `on_time`: nothing to say; the source is due a file at `due`.
    - `late`: it became late at `due` (= `late_since`) and nobody was told yet.
    - `still_late`: late since `late_since`, already told.
    - `resumed`: it was late since `late_since` and a file came; the next is due at `due`.

    `measured_from` is what `due` is counted from: the newest file, or the start of
    watching when no file ever came.
    """

    state: Lateness
    due: datetime
    measured_from: datetime
    late_since: datetime | None = None

    @property
    def late(self) -> bool:
        return self.state in ("late", "still_late")


def judge(
    expect: Expectation,
    *,
    newest_file: datetime | None,
    watched_since: datetime,
    late_since: datetime | None,
    late_measured_from: datetime | None,
    now: datetime,
) -> Verdict:
    """Whether a source is late at `now`.

    `newest_file`: when its newest file arrived (None: never); `watched_since`: when
    syncd started watching it; `late_since` and `late_measured_from`: what an earlier
    `late` verdict said, as recorded when people were told (None: not late).
    """
    measured_from = newest_file if newest_file is not None else watched_since
    due = due_at(measured_from, expect)
    if late_since is not None:
        # Told it was late: only a file newer than the one it was late after ends that
        # (a check racing the file's arrival may have measured from an older one).
        came = newest_file is not None and (
            late_measured_from is None or newest_file > late_measured_from
        )
        if came:
            return Verdict("resumed", due, measured_from, late_since)
        return Verdict("still_late", late_since, late_measured_from or measured_from, late_since)
    if now >= due:
        return Verdict("late", due, measured_from, due)
    return Verdict("on_time", due, measured_from)
