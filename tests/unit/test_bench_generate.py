"""The benchmark's export generator: deterministic, realistic, and churning as asked."""

from __future__ import annotations

import re

import phonenumbers
import polars as pl
import pytest

from bench.generate import (
    COLUMNS,
    DIRTY_KINDS,
    GROUPS,
    ROLES,
    dirty,
    first_export,
    next_night,
    planted_rows,
    read_export,
    shuffled,
)
from syncd.core.builtin_profiles import HR_FULL

N = 20_000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@pytest.fixture(scope="module")
def export() -> bytes:
    """One first export shared by the tests that only read it."""
    return first_export(N, seed=7)


def _invalid_rows(frame: pl.DataFrame) -> pl.Series:
    """Rows breaking a rule of the benchmark's config, checked independently of syncd."""
    key = pl.col("Employee ID")
    email = pl.col("Primary Email")
    bad = (
        (key == "")
        | (key.is_duplicated() & (key != ""))
        | ~email.str.contains(EMAIL.pattern)
        | email.str.to_lowercase().is_duplicated()
        | ~pl.col("Role").is_in(ROLES)
        | pl.col("Start Date").str.to_date("%Y-%m-%d", strict=False).is_null()
    )
    return frame.select(bad.alias("bad"))["bad"]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(export: bytes) -> None:
    """first_export is deterministic for a seed and varies with it."""
    assert first_export(N, seed=7) == export
    assert first_export(N, seed=8) != export


def test_the_header_is_the_hr_full_profiles_columns_in_order(export: bytes) -> None:
    """The generated header matches the built-in hr_full profile exactly."""
    assert tuple(column.header for column in HR_FULL.columns) == COLUMNS
    assert export.split(b"\r\n", 1)[0].decode() == ",".join(COLUMNS)


def test_a_first_export_has_n_unique_keys_and_unique_emails(export: bytes) -> None:
    """Every row has its own employee ID and its own email, ignoring case."""
    frame = read_export(export)
    assert frame.height == N
    assert frame["Employee ID"].n_unique() == N
    assert frame["Primary Email"].str.to_lowercase().n_unique() == N


def test_a_first_export_is_crlf_utf8_with_non_ascii_names(export: bytes) -> None:
    """Lines end in CRLF and names keep their accents, as real HR exports do."""
    text = export.decode("utf-8")
    assert text.count("\r\n") == N + 1
    assert "\n" not in text.replace("\r\n", "")
    names = set(read_export(export)["First Name"].to_list())
    assert {"Zoë", "Łukasz", "Ngọc"} <= names


def test_every_row_of_a_first_export_passes_the_benchmark_rules(export: bytes) -> None:
    """Clean exports have valid emails, roles, ISO dates, known groups and + phones."""
    frame = read_export(export)
    assert _invalid_rows(frame).sum() == 0
    groups = set(frame["Groups"].str.split(",").explode().to_list())
    assert groups <= set(GROUPS)
    assert frame["Groups"].str.contains(",").any()
    assert frame["Phone"].str.starts_with("+").all()
    assert set(frame["Current Status"].to_list()) == {"Active"}


def test_the_phones_of_a_first_export_are_possible_numbers(export: bytes) -> None:
    """hr_full's Phone column takes possible numbers only: phonenumbers finds every
    phone of a sample possible, written `+CC NNNNNNNNN`."""
    phones = read_export(export)["Phone"]
    assert phones.str.contains(r"^\+[0-9]{1,3} [0-9]{8,11}$").all()
    for phone in phones.sample(2_000, seed=1).to_list():
        assert phonenumbers.is_possible_number(phonenumbers.parse(phone)), phone


def test_next_night_removes_adds_changes_and_renames_the_asked_shares(export: bytes) -> None:
    """About 1% leavers, 1% joiners, 1% field changes and 0.1% email renames."""
    prev = read_export(export)
    night = read_export(next_night(export, seed=1))
    joined = prev.join(night, on="Employee ID", how="full", suffix="_next")
    left = joined.filter(pl.col("Employee ID_next").is_null()).height
    came = joined.filter(pl.col("Employee ID").is_null()).height
    both = joined.filter(
        pl.col("Employee ID").is_not_null() & pl.col("Employee ID_next").is_not_null()
    )
    renamed = both.filter(pl.col("Primary Email") != pl.col("Primary Email_next")).height
    edited = both.filter(
        pl.any_horizontal(pl.col(c) != pl.col(f"{c}_next") for c in COLUMNS[1:])
    ).height
    assert (left, came, renamed, edited - renamed) == (N // 100, N // 100, N // 1000, N // 100)


def test_next_night_keeps_keys_and_emails_unique(export: bytes) -> None:
    """Joiners and renamed employees get emails nobody in the file has."""
    night = read_export(next_night(export, seed=1))
    assert night["Employee ID"].is_unique().all()
    assert night["Primary Email"].str.to_lowercase().is_unique().all()
    assert _invalid_rows(night).sum() == 0


def test_successive_nights_never_give_an_old_identity_to_someone_else() -> None:
    """An email or key seen on any night always belongs to the same employee."""
    night = first_export(3_000, seed=3)
    seen: list[pl.DataFrame] = []
    for seed in range(6):
        frame = read_export(night)
        seen.append(frame.select("Employee ID", "Primary Email", "First Name", "Start Date"))
        night = next_night(night, seed=seed, leavers=0.2, joiners=0.2, renames=0.1)
    history = pl.concat(seen).unique()
    owners = history.group_by("Primary Email").agg(pl.col("Employee ID").n_unique())
    assert owners["Employee ID"].max() == 1
    people = history.group_by("Employee ID").agg(pl.col("Start Date").n_unique())
    assert people["Start Date"].max() == 1


def test_shuffled_keeps_the_rows_and_changes_their_order(export: bytes) -> None:
    """A shuffled export has the same rows, not in the same order."""
    again = shuffled(export, seed=5)
    assert again != export
    before, after = read_export(export), read_export(again)
    assert before.sort("Employee ID").equals(after.sort("Employee ID"))


def test_planted_rows_splits_the_rate_into_kinds_with_whole_pairs() -> None:
    """The planted counts add up to rate x n, and duplicates come in pairs."""
    counts = planted_rows(100_000, 0.005)
    assert sum(counts.values()) == 500
    assert set(counts) == set(DIRTY_KINDS)
    assert counts["duplicate key"] % 2 == 0
    assert counts["duplicate email in another case"] % 2 == 0
    assert min(counts.values()) > 0


def test_dirty_makes_exactly_the_planted_rows_invalid(export: bytes) -> None:
    """An independent check of the rules finds as many invalid rows as were planted."""
    frame = read_export(dirty(export, rate=0.01, seed=2))
    assert frame.height == N
    assert _invalid_rows(frame).sum() == sum(planted_rows(N, 0.01).values()) == N // 100


def test_dirty_plants_each_kind_of_error(export: bytes) -> None:
    """Bad emails, unknown roles, bad dates, duplicates and blank keys all appear."""
    frame = read_export(dirty(export, rate=0.01, seed=2))
    email = pl.col("Primary Email")
    found = frame.select(
        blank_key=(pl.col("Employee ID") == "").sum(),
        duplicate_key=pl.col("Employee ID").is_duplicated().sum(),
        case_duplicate=(email.str.to_lowercase().is_duplicated() & ~email.is_duplicated()).sum(),
        bad_email=(~email.str.contains(EMAIL.pattern)).sum(),
        bad_role=(~pl.col("Role").is_in(ROLES)).sum(),
        bad_date=pl.col("Start Date").str.to_date("%Y-%m-%d", strict=False).is_null().sum(),
    ).row(0, named=True)
    counts = planted_rows(N, 0.01)
    assert found["blank_key"] == counts["blank key"]
    assert found["duplicate_key"] - found["blank_key"] == counts["duplicate key"]
    assert found["case_duplicate"] == counts["duplicate email in another case"]
    assert found["bad_email"] == counts["bad email"]
    assert found["bad_role"] == counts["unknown role"]
    assert found["bad_date"] == counts["bad date"]


def test_dirty_is_deterministic_for_a_seed(export: bytes) -> None:
    """The same seed plants the same errors in the same rows."""
    assert dirty(export, seed=4) == dirty(export, seed=4)
    assert dirty(export, seed=4) != dirty(export, seed=5)
