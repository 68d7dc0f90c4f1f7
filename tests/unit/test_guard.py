"""The guard: when a plan is held for approval, and how it says why."""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from syncd.core.counts import Counts
from syncd.core.guard import GuardLimits, Previous, Verdict, judge
from syncd.core.plan import Plan


def plan(archives: int, active_before: int) -> Plan:
    """A plan that archives `archives` users out of `active_before` active ones."""
    frame = pl.DataFrame(
        {"user_id": range(archives), "key": [f"E{i}" for i in range(archives)], "reason": "absent"},
        schema={"user_id": pl.Int64(), "key": pl.String(), "reason": pl.String()},
    )
    empty = pl.DataFrame()
    return Plan("full", (), empty, empty, empty, frame, Counts(), active_before)


def test_a_plan_within_both_limits_is_applied() -> None:
    """Archiving at exactly the limits does not hold the job."""
    assert judge(plan(10, 100), GuardLimits()) == Verdict(hold=False, reasons=())
    assert judge(plan(500, 5000), GuardLimits()).hold is False


def test_archiving_a_larger_share_than_allowed_holds_the_job() -> None:
    """The reason gives the numbers and the limit, and no command: what to do next
    depends on the job's status when the reason is shown (held, approved, dismissed)."""
    verdict = judge(plan(412, 1000), GuardLimits())
    assert verdict == Verdict(
        hold=True,
        reasons=(
            "would archive 412 of 1,000 active users (41.2%), above max_archive_percent = 10",
        ),
    )


def test_archiving_more_users_than_allowed_holds_the_job() -> None:
    """The count limit applies on its own, whatever the share."""
    verdict = judge(plan(501, 100_000), GuardLimits())
    assert verdict.reasons == ("would archive 501 users, above max_archive_count = 500",)


def test_both_limits_give_both_reasons() -> None:
    """Every exceeded limit is named."""
    verdict = judge(plan(600, 1000), GuardLimits())
    assert verdict.hold
    assert len(verdict.reasons) == 2


def test_a_share_just_above_the_limit_is_not_printed_as_the_limit() -> None:
    """10.04% shows enough decimals to be visibly above 10."""
    verdict = judge(plan(1004, 10_000), GuardLimits(max_archive_count=None))
    assert "(10.04%)" in verdict.reasons[0]


def test_a_directory_without_active_users_only_checks_the_count() -> None:
    """No share exists without active users; archiving nobody never holds."""
    assert judge(plan(0, 0), GuardLimits(max_archive_percent=0)).hold is False
    assert judge(plan(3, 0), GuardLimits(max_archive_count=2)).hold is True


def test_limits_set_to_none_are_off() -> None:
    """With both limits off nothing is held."""
    limits = GuardLimits(max_archive_percent=None, max_archive_count=None)
    assert judge(plan(1000, 1000), limits).hold is False


def _rows(rows: int, mode: str = "full") -> Plan:
    """A plan archiving nobody, of a file with `rows` data rows."""
    base = plan(0, 1000)
    return replace(base, mode=mode, counts=Counts(rows=rows, valid=rows))  # type: ignore[arg-type]


def test_a_full_file_much_shorter_than_the_last_one_is_held_whatever_it_archives() -> None:
    """Below min_rows_percent of the last applied full file: held, with both counts and
    the earlier job named; at the share exactly, or with no earlier file, applied."""
    previous = Previous("0HZKG-QDQY0", 1000)
    verdict = judge(_rows(499), GuardLimits(), previous)
    assert verdict.reasons == (
        "the file has 499 rows, fewer than 50% of the 1,000 rows of the last full file "
        "applied from this source (job 0HZKG-QDQY0): was the export cut short?",
    )
    assert not judge(_rows(500), GuardLimits(), previous).hold
    assert not judge(_rows(10), GuardLimits(), None).hold
    assert not judge(_rows(10), GuardLimits(min_rows_percent=None), previous).hold


def test_a_short_partial_file_is_never_held_for_its_size() -> None:
    """Partial uploads are small by nature: the row guard is for full exports only."""
    assert not judge(_rows(3, "partial"), GuardLimits(), Previous("J", 1000)).hold
