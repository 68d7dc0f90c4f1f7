"""The guard: decides whether a plan may be applied now or must wait for a person.

A full import that suddenly archives many users usually means a broken export (a
truncated file, the wrong file), not a wave of departures; holding it costs a day,
applying it costs every archived user their access. A full file much shorter than the
last one applied from its source is held too, whatever it would archive: the classic
half-written export.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.core.plan import Plan


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """Thresholds above which a job is held; None turns a limit off."""

    max_archive_percent: float | None = 10
    max_archive_count: int | None = 500
    #: a full file with fewer rows than this share of `previous_rows` is held
    min_rows_percent: float | None = 50


@dataclass(frozen=True, slots=True)
class Previous:
    """The last full file applied from the same source: its job and how many rows."""

    job_id: str
    rows: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to hold the job, and why, in sentences a person can act on."""

    hold: bool
    reasons: tuple[str, ...]


def judge(plan: Plan, limits: GuardLimits, previous: Previous | None = None) -> Verdict:
    """Hold when the plan archives more users than either limit allows, or when a full
    file has far fewer rows than the `previous` one.

    The reasons state facts only: what to do next depends on the job's status when it is
    shown (held, approved, dismissed), so whoever shows it says that.
    """
    count = plan.archive_count
    reasons: list[str] = []
    if limits.max_archive_count is not None and count > limits.max_archive_count:
        reasons.append(
            f"would archive {count:,} users, above max_archive_count = {limits.max_archive_count:,}"
        )
    # Without active users there is no share to speak of; the count limit still applies.
    if limits.max_archive_percent is not None and plan.active_before > 0:
        percent = 100 * count / plan.active_before
        if percent > limits.max_archive_percent:
            reasons.append(
                f"would archive {count:,} of {plan.active_before:,} active users "
                f"({_percent(percent, limits.max_archive_percent)}), above "
                f"max_archive_percent = {limits.max_archive_percent:g}"
            )
    rows, share = plan.counts.rows, limits.min_rows_percent
    if (
        plan.mode == "full"
        and previous is not None
        and share is not None
        and 100 * rows < share * previous.rows
    ):
        reasons.append(
            f"the file has {rows:,} rows, fewer than {share:g}% of the {previous.rows:,} "
            f"rows of the last full file applied from this source (job {previous.job_id}): "
            "was the export cut short?"
        )
    return Verdict(hold=bool(reasons), reasons=tuple(reasons))


def _percent(value: float, limit: float) -> str:
    """One decimal, more when one decimal would print the limit itself."""
    for digits in (1, 2, 3, 4):
        text = f"{value:.{digits}f}"
        if float(text) > limit:
            return text + "%"
    return f"{value:g}%"
