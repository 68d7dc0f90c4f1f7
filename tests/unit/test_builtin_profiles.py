"""The built-in profiles: their shape, and the example file each one ships with."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from syncd.core.builtin_profiles import BUILTIN_PROFILES
from syncd.core.profile import FIXED_FIELD_TYPES, STATUS_OPTIONS, Profile
from syncd.core.table import normalise_header

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
PROFILES = sorted(BUILTIN_PROFILES.values(), key=lambda p: p.name)


def _example(profile: Profile) -> tuple[list[str], list[list[str]]]:
    with (EXAMPLES / f"{profile.name}.csv").open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def _column_of(profile: Profile, header: str) -> str | None:
    for col in profile.columns:
        if normalise_header(header) in {normalise_header(n) for n in col.names}:
            return col.field
    return None


def test_every_seed_format_has_a_profile_and_default_exists() -> None:
    """The set covers the default plus one profile per export format of the seeds."""
    assert set(BUILTIN_PROFILES) == {
        "default",
        "email_fullname",
        "contacts",
        "agents",
        "user_directory",
        "people",
        "hr_full",
    }


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_each_profile_is_filed_under_its_own_name_and_describes_itself(profile: Profile) -> None:
    """A profile's mapping key is its name, and it says in words what file it reads."""
    assert BUILTIN_PROFILES[profile.name] is profile
    assert len(profile.description) > 20


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_each_profile_has_its_key_as_a_required_column(profile: Profile) -> None:
    """Every row must carry the key, so the key is a column and it is required."""
    key_column = profile.column(profile.key)
    assert key_column is not None
    assert key_column.required


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_header_names_never_point_at_two_columns(profile: Profile) -> None:
    """No header, compared as the header mapping compares it, answers to two columns."""
    owner: dict[str, str] = {}
    for col in profile.columns:
        for name in {normalise_header(n) for n in col.names}:
            assert owner.setdefault(name, col.field) == col.field, name
    assert len({c.field for c in profile.columns}) == len(profile.columns)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_fixed_fields_keep_their_fixed_type(profile: Profile) -> None:
    """A column of a fixed field has that field's type; status offers Active and Archived."""
    for col in profile.columns:
        if col.field in FIXED_FIELD_TYPES:
            assert col.type == FIXED_FIELD_TYPES[col.field], col.field
        if col.type == "select" and col.field != "role":
            assert col.options, col.field
    status = profile.column("status")
    assert status is None or status.options == STATUS_OPTIONS


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_each_profile_ships_an_example_file_with_its_headers(profile: Profile) -> None:
    """config/examples/<name>.csv exists and names every required column of the profile."""
    header, rows = _example(profile)
    fields = [_column_of(profile, h) for h in header]
    required = {c.field for c in profile.columns if c.required}
    assert required <= set(fields)
    if profile.unknown_columns == "reject":
        assert None not in fields
    assert 5 <= len(rows) <= 10


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_example_rows_are_complete_and_keys_unique(profile: Profile) -> None:
    """Example rows are as wide as the header, fill required cells and repeat no key."""
    header, rows = _example(profile)
    fields = [_column_of(profile, h) for h in header]
    keys = [row[fields.index(profile.key)].casefold() for row in rows]
    assert len(set(keys)) == len(keys)
    for row in rows:
        assert len(row) == len(header)
        for field, cell in zip(fields, row, strict=True):
            col = profile.column(field) if field else None
            assert cell.strip() or col is None or not col.required, (field, row)


def test_examples_carry_non_ascii_names() -> None:
    """Example files show real names with accents or other scripts, as exports do."""
    for profile in PROFILES:
        assert not (EXAMPLES / f"{profile.name}.csv").read_text(encoding="utf-8").isascii()


def test_default_knows_every_fixed_column_of_every_built_in() -> None:
    """Any seed format's file reads with `default`: each fixed-field header maps there."""
    default = BUILTIN_PROFILES["default"]
    for profile in PROFILES:
        for col in profile.columns:
            if col.field not in FIXED_FIELD_TYPES:
                continue  # a custom field: default ignores it with a notice
            expected = "display_name" if col.field == "full_name" else col.field
            for name in col.names:
                assert _column_of(default, name) == expected, (profile.name, name)
