"""The benchmark's verdicts: ratios to anchors, medians of runs, memory by size, counts."""

from __future__ import annotations

import pytest

from bench.targets import (
    CSV_READER,
    POSTGRES_FLOOR,
    SQLITE_FLOOR,
    Sample,
    judge,
    median,
    memory_target_mib,
)

ANCHORS = {CSV_READER: 2.0, SQLITE_FLOOR: 10.0, POSTGRES_FLOOR: 8.0}
M = 1_000_000


def test_a_scenario_over_its_ratio_is_a_no() -> None:
    """validate clean at 1M may take 0.7 x csv.reader: 1.6 s against 2 s is 0.8 x, a no."""
    verdict = judge("validate clean", M, "sqlite", [Sample(1.6, 500.0)], ANCHORS)
    assert verdict.ratio == pytest.approx(0.8)
    assert verdict.target_ratio == 0.7
    assert (verdict.time_met, verdict.memory_met, verdict.met) == (False, True, False)
    assert "over time: 0.80 x csv.reader > 0.7 x" in verdict.note


def test_a_scenario_within_its_ratio_is_a_yes() -> None:
    """1.4 s against csv.reader's 2 s is exactly 0.7 x: at the target is within it."""
    verdict = judge("validate clean", M, "sqlite", [Sample(1.4, 500.0)], ANCHORS)
    assert verdict.ratio == pytest.approx(0.7)
    assert (verdict.time_met, verdict.met) == (True, True)


def test_first_load_is_held_to_its_own_databases_floor() -> None:
    """SQLite's first load against the SQLite floor, PostgreSQL's against the PostgreSQL one."""
    sqlite = judge("first load", M, "sqlite", [Sample(12.0, 800.0)], ANCHORS)
    postgres = judge("first load", M, "postgresql", [Sample(12.0, 800.0)], ANCHORS)
    assert (sqlite.anchor, sqlite.ratio, sqlite.met) == (SQLITE_FLOOR, pytest.approx(1.2), True)
    assert (postgres.anchor, postgres.ratio, postgres.met) == (
        POSTGRES_FLOOR,
        pytest.approx(1.5),
        False,
    )


def test_the_figures_are_the_medians_of_the_runs() -> None:
    """Three runs of 9, 3 and 4 s give 4 s (not the mean, 5.3); memory likewise."""
    samples = [Sample(9.0, 700.0), Sample(3.0, 1100.0), Sample(4.0, 900.0)]
    verdict = judge("churn", M, "sqlite", samples, ANCHORS)
    assert (verdict.runs, verdict.wall_seconds, verdict.peak_rss_mib) == (3, 4.0, 900.0)
    assert verdict.ratio == pytest.approx(2.0)
    assert verdict.walls == (9.0, 3.0, 4.0)
    assert verdict.met


def test_median_leaves_out_missing_figures_and_has_none_of_nothing() -> None:
    """A run that did not complete has no figure; no figures at all give no median."""
    assert median([1.0, None, 3.0, 2.0]) == 2.0
    assert median([None, None]) is None


def test_below_and_between_target_sizes_the_ratio_is_printed_without_a_time_verdict() -> None:
    """At 100k (and 2M) a scenario 10 x its anchor still passes: only memory is held."""
    for n in (100_000, 2_000_000):
        verdict = judge("no-change", n, "postgresql", [Sample(20.0, 300.0)], ANCHORS)
        assert verdict.ratio == pytest.approx(10.0)
        assert (verdict.target_ratio, verdict.time_met, verdict.met) == (None, None, True)


def test_time_targets_hold_at_five_million_too() -> None:
    """The ratios are the promise at 5M as at 1M: churn at 3.5 x is a no there."""
    verdict = judge("churn", 5 * M, "sqlite", [Sample(7.0, 1200.0)], ANCHORS)
    assert (verdict.target_ratio, verdict.time_met, verdict.met) == (3.0, False, False)


def test_memory_is_held_to_1_gib_up_to_a_million_and_1_5_gib_above() -> None:
    """Nothing is interpolated: one user over a million already gets 1.5 GiB."""
    assert [memory_target_mib(n) for n in (10_000, M, M + 1, 5 * M)] == [1024, 1024, 1536, 1536]
    at_1m = judge("dirty night", M, "sqlite", [Sample(5.0, 1100.0)], ANCHORS)
    at_5m = judge("dirty night", 5 * M, "sqlite", [Sample(25.0, 1100.0)], ANCHORS)
    assert (at_1m.memory_met, at_1m.met) == (False, False)
    assert "over memory: 1100 MiB > 1024 MiB" in at_1m.note
    assert (at_5m.memory_met, at_5m.met) == (True, True)


def test_a_wrong_count_is_a_no_however_fast() -> None:
    """Counts that are not what the nights imply fail the scenario; its own note goes."""
    samples = [
        Sample(0.5, 200.0, note="0 user rows written"),
        Sample(0.5, 200.0, ("updated=3 (expected 0)",), note="0 user rows written"),
        Sample(0.5, 200.0, note="0 user rows written"),
    ]
    verdict = judge("no-change", M, "sqlite", samples, ANCHORS)
    assert (verdict.time_met, verdict.memory_met, verdict.counts_met) == (True, True, False)
    assert not verdict.met
    assert verdict.note == "updated=3 (expected 0) (run 2)"


def test_a_problem_in_every_run_is_said_once() -> None:
    """The same wrong exit code in all runs is one note, without run numbers."""
    samples = [Sample(1.0, 100.0, ("exit 2, expected 0",))] * 3
    verdict = judge("first load", 10_000, "sqlite", samples, ANCHORS)
    assert verdict.note == "exit 2, expected 0"
    assert not verdict.met


def test_without_its_anchor_a_scenario_with_a_target_is_a_no() -> None:
    """A floor that failed leaves no ratio, and no ratio is not a pass."""
    verdict = judge("first load", M, "postgresql", [Sample(10.0, 800.0)], {CSV_READER: 1.0})
    assert (verdict.ratio, verdict.time_met, verdict.met) == (None, False, False)
    assert "no ratio" in verdict.note


def test_a_scenario_that_never_ran_is_a_no() -> None:
    """No samples at all (e.g. PostgreSQL did not start) is not a silent yes."""
    verdict = judge("churn", 10_000, "postgresql", [], ANCHORS)
    assert (verdict.runs, verdict.counts_met, verdict.met, verdict.note) == (
        0,
        False,
        False,
        "not run",
    )


def test_runs_with_their_own_anchor_are_judged_by_the_median_of_their_ratios() -> None:
    """The machine slowed down between runs: 3 s against 1 s, 8 s against 4 s, 10 s
    against 2 s are 3, 2 and 5 x, median 3 x, whatever the run-wide anchor says; the
    ratio of the medians (8 s / 2 s) would have said 4 x."""
    samples = [
        Sample(3.0, 500.0, anchor_seconds=1.0),
        Sample(8.0, 500.0, anchor_seconds=4.0),
        Sample(10.0, 500.0, anchor_seconds=2.0),
    ]
    verdict = judge("churn", M, "sqlite", samples, ANCHORS)
    assert (verdict.ratio, verdict.anchor_seconds, verdict.wall_seconds) == (3.0, 2.0, 8.0)
    assert (verdict.time_met, verdict.met) == (True, True)
    slower = judge(
        "churn", M, "sqlite", [*samples[:2], Sample(12.0, 500.0, anchor_seconds=2.0)], ANCHORS
    )
    assert slower.ratio == pytest.approx(3.0)
    tighter = judge("no-change", M, "sqlite", samples, ANCHORS)
    assert (tighter.time_met, tighter.note) == (False, "over time: 3.00 x csv.reader > 2.5 x")
