"""The lateness rule on plain values and explicit clock readings: when a source is due,
late once, late still, and resumed; weekends left out with business_days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.core.lateness import Expectation, due_at, judge, parse_duration

#: A Thursday.
THU = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
FRI = THU + timedelta(days=1)
SAT = THU + timedelta(days=2)
MON = THU + timedelta(days=4)
DAY = Expectation(timedelta(hours=24))
WEEKDAYS = Expectation(timedelta(hours=24), business_days=True)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("90m", 5400), ("24h", 86400), ("2d", 172800), ("1d12h", 129600), (" 2H ", 7200)],
)
def test_durations_read_as_a_number_and_a_unit(text: str, seconds: int) -> None:
    """s, m, h and d, alone or combined largest first, case and outer spaces ignored."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["24", "h", "1.5h", "24 h", "1w", "-5m", "", "5m5", "0h", "0s"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    """A bare number, a fraction, an unknown unit, a sign or no time at all is a mistake."""
    with pytest.raises(ValueError, match=r"24h|at least every second"):
        parse_duration(text)


def test_a_source_is_due_expect_every_after_its_newest_file() -> None:
    """Without business_days the clock runs through weekends."""
    assert due_at(FRI, DAY) == SAT
    assert due_at(THU, Expectation(timedelta(minutes=90))) == THU + timedelta(minutes=90)


def test_with_business_days_a_weekend_does_not_count() -> None:
    """Friday 03:00 plus 24 weekday hours is Monday 03:00, not Saturday 03:00."""
    assert due_at(FRI, WEEKDAYS) == MON
    assert due_at(THU, WEEKDAYS) == FRI


def test_with_business_days_a_file_on_a_weekend_starts_the_clock_on_monday() -> None:
    """A file sent on Saturday or Sunday is measured from Monday 00:00."""
    monday_midnight = datetime(2026, 12, 7, tzinfo=UTC)
    assert due_at(SAT, WEEKDAYS) == monday_midnight + timedelta(hours=24)
    assert due_at(SAT + timedelta(hours=30), WEEKDAYS) == monday_midnight + timedelta(hours=24)


def test_with_business_days_long_expectations_skip_every_weekend_they_span() -> None:
    """Ten weekday days from a Thursday skip two weekends: two weeks to the day."""
    ten_days = Expectation(timedelta(days=10), business_days=True)
    assert due_at(THU, ten_days) == THU + timedelta(days=14)
    # Friday 23:00 + 2 h: 1 h on Friday, the weekend, 1 h on Monday.
    late_friday = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    two_hours = Expectation(timedelta(hours=2), business_days=True)
    assert due_at(late_friday, two_hours) == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


@given(
    start=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    hours=st.integers(min_value=1, max_value=24 * 12),
)
def test_business_time_until_due_is_exactly_expect_every_and_ends_on_a_weekday(
    start: datetime, hours: int
) -> None:
    """Counting the weekday time between a start and its due moment, hour by minute, gives
    expect_every back; the due moment is never inside a weekend."""
    expect = Expectation(timedelta(hours=hours), business_days=True)
    due = due_at(start, expect)
    assert due >= start + expect.every
    assert due.weekday() < 5 or due == due.replace(hour=0, minute=0, second=0, microsecond=0)
    counted = timedelta()
    moment = start
    while moment < due:
        step = min(timedelta(hours=1) - timedelta(minutes=moment.minute, seconds=moment.second,
                                                  microseconds=moment.microsecond),
                   due - moment)  # fmt: skip
        if moment.weekday() < 5:
            counted += step
        moment += step
    assert counted == expect.every


def _judge(
    expect: Expectation = DAY,
    *,
    newest: datetime | None = THU,
    watched: datetime = THU - timedelta(days=30),
    late_since: datetime | None = None,
    measured_from: datetime | None = None,
    now: datetime,
) -> str:
    return judge(
        expect,
        newest_file=newest,
        watched_since=watched,
        late_since=late_since,
        late_measured_from=measured_from,
        now=now,
    ).state


def test_a_source_is_on_time_until_its_file_is_due_and_late_from_that_moment() -> None:
    """One second before the deadline: on time; at it: late, since the deadline."""
    assert _judge(now=FRI - timedelta(seconds=1)) == "on_time"
    verdict = judge(
        DAY, newest_file=THU, watched_since=THU, late_since=None, late_measured_from=None, now=FRI
    )
    assert (verdict.state, verdict.late_since, verdict.measured_from) == ("late", FRI, THU)
    assert verdict.late


def test_a_source_that_never_sent_a_file_is_measured_from_when_watching_began() -> None:
    """No file at all: the clock started with the first watch, not with every restart."""
    assert _judge(newest=None, watched=THU, now=FRI - timedelta(seconds=1)) == "on_time"
    assert _judge(newest=None, watched=THU, now=FRI) == "late"


def test_a_late_source_already_told_stays_late_without_a_second_alert() -> None:
    """Once recorded late, every later check says still_late (no alert) until a file."""
    for later in (FRI, SAT, MON + timedelta(days=30)):
        verdict = judge(
            DAY, newest_file=THU, watched_since=THU, late_since=FRI,
            late_measured_from=THU, now=later,
        )  # fmt: skip
        assert (verdict.state, verdict.late_since) == ("still_late", FRI)


def test_a_new_file_ends_the_lateness_once_and_restarts_the_clock() -> None:
    """A file newer than the one lateness was measured from: resumed, next due a day on."""
    came = SAT + timedelta(hours=5)
    verdict = judge(
        DAY, newest_file=came, watched_since=THU, late_since=FRI, late_measured_from=THU,
        now=came + timedelta(seconds=1),
    )  # fmt: skip
    assert (verdict.state, verdict.due, verdict.late_since) == ("resumed", came + DAY.every, FRI)
    # Once the resumption is recorded (late_since cleared), the source is on time.
    assert _judge(newest=came, now=came + timedelta(hours=1)) == "on_time"


def test_a_source_late_before_any_file_resumes_with_its_first_file() -> None:
    """Late measured from the start of watching: the first file ever resumes it."""
    assert _judge(newest=None, watched=THU, late_since=FRI, measured_from=THU, now=SAT) == (
        "still_late"
    )
    assert _judge(newest=SAT, watched=THU, late_since=FRI, measured_from=THU, now=SAT) == "resumed"


def test_business_days_keep_a_friday_file_on_time_over_the_weekend() -> None:
    """A Friday 03:00 file is not late on Saturday or Sunday, and is on Monday 03:00."""
    assert _judge(WEEKDAYS, newest=FRI, now=SAT + timedelta(days=1, hours=23)) == "on_time"
    assert _judge(WEEKDAYS, newest=FRI, now=MON - timedelta(seconds=1)) == "on_time"
    assert _judge(WEEKDAYS, newest=FRI, now=MON) == "late"
    assert _judge(DAY, newest=FRI, now=SAT) == "late"
