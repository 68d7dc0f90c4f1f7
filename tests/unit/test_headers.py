"""Header mapping: names, aliases, the errors column, unknown columns and rejections."""

from __future__ import annotations

import polars as pl
import pytest

from syncd.core.headers import column_letter, map_header
from syncd.core.profile import Column, Profile
from syncd.core.table import ROW, RawTable, normalise_header
from syncd.errors import FileRejected

PROFILE = Profile(
    name="hr_full",
    key="employee_id",
    columns=(
        Column("employee_id", "Employee ID", required=True),
        Column("email", "Primary Email", aliases=("email", "e-mail"), type="email", required=True),
        Column("first_name", "First Name"),
        Column("source_usernames", "Source Username(s)"),
    ),
)


def table(*header: str, has_header: bool = True, width: int | None = None) -> RawTable:
    """A one-row RawTable with `header`; header-less tables get `width` columns."""
    count = len(header) if width is None else width
    cells = {f"c{i}": ["x"] for i in range(count)} | {ROW: [2]}
    return RawTable(
        header=header,
        cells=pl.DataFrame(cells, schema_overrides={ROW: pl.UInt32}),
        encoding="utf-8",
        delimiter=",",
        has_header=has_header,
    )


def fields(header: tuple[str, ...], profile: Profile = PROFILE) -> list[tuple[int, str]]:
    mapped = map_header(table(*header), profile)
    return [(m.index, m.column.field) for m in mapped.columns]


def rejection(t: RawTable, profile: Profile = PROFILE) -> list[str]:
    with pytest.raises(FileRejected) as caught:
        map_header(t, profile)
    return list(caught.value.problems)


@pytest.mark.parametrize(
    "header", ["Primary Email", "primary_email", "PRIMARY-EMAIL ", "email", "E-Mail", " e mail"]
)
def test_a_header_matches_by_name_alias_or_field_ignoring_case_space_and_punctuation(
    header: str,
) -> None:
    """Headers, aliases and field names match once case and punctuation are ignored."""
    assert fields(("Employee ID", header)) == [(0, "employee_id"), (1, "email")]


def test_source_usernames_header_matches_its_field_name() -> None:
    """'Source Username(s)' and 'source_usernames' are the same name."""
    assert fields(("employee_id", "email", "source_usernames"))[2] == (2, "source_usernames")
    assert normalise_header("Source Username(s)") == normalise_header("source_usernames")


def test_mapped_columns_keep_the_header_as_written_in_the_file() -> None:
    """Messages name a column the way the file spells it."""
    mapped = map_header(table("EMPLOYEE ID", "e-mail"), PROFILE)
    assert [m.header for m in mapped.columns] == ["EMPLOYEE ID", "e-mail"]


def test_an_errors_column_coming_back_is_ignored_silently() -> None:
    """An errors CSV re-uploaded maps as if the errors column were not there."""
    mapped = map_header(table("Employee ID", "Email", "Errors"), PROFILE)
    assert [m.column.field for m in mapped.columns] == ["employee_id", "email"]
    assert mapped.notices == ()
    assert mapped.ignored == ()


def test_unknown_columns_are_ignored_with_one_notice_naming_them() -> None:
    """Columns the profile does not know are skipped, and the notice says which."""
    mapped = map_header(table("Notes", "Employee ID", "Email", "Manager"), PROFILE)
    assert [m.index for m in mapped.columns] == [1, 2]
    assert mapped.ignored == (0, 3)
    assert mapped.notices == (
        "ignored columns not in profile 'hr_full': 'Notes' (column 1 (A)), "
        "'Manager' (column 4 (D))",
    )


def test_unknown_columns_reject_the_file_when_the_profile_says_so() -> None:
    """unknown_columns = "reject" turns the notice into a file-level problem."""
    strict = Profile(
        name="strict", key="employee_id", columns=PROFILE.columns, unknown_columns="reject"
    )
    assert rejection(table("Employee ID", "Email", "Notes"), strict) == [
        "columns not in profile 'strict': 'Notes' (column 3 (C)); "
        "remove them or add them to the profile"
    ]


def test_a_missing_required_column_is_named_with_its_accepted_names_and_the_headers_found() -> None:
    """The person learns what to call the column and what the file has instead."""
    assert rejection(table("Employee ID", "Mail")) == [
        "the required column 'Primary Email' is missing; add a column named "
        "'Primary Email' or 'email' (headers found: 'Employee ID', 'Mail')"
    ]


def test_headers_found_are_named_briefly_however_many_and_long_they_are() -> None:
    """A binary file read as text, or one of a thousand columns: ten headers at most,
    each cut short, a lost byte shown as U+FFFD; and the unknown ones likewise."""
    lost = "Na" + chr(0x10FF00 + 0xE9) + "me"
    header = ("Email", "x" * 5000, lost, *(f"Extra {i}" for i in range(1, 28)))
    [problem] = rejection(table(*header))
    assert problem.endswith(
        f"(headers found: 'Email', '{'x' * 39}…', 'Na\ufffdme', 'Extra 1', 'Extra 2', "
        "'Extra 3', 'Extra 4', 'Extra 5', 'Extra 6', 'Extra 7' and 20 more)"
    )
    mapped = map_header(table("Employee ID", *header), PROFILE)
    [notice] = mapped.notices
    assert notice.endswith("'Extra 8' (column 12 (L)) and 19 more")
    assert len(notice) < 400


def test_a_missing_key_column_is_reported_once_as_the_key() -> None:
    """The key column is always needed; it is named as the key, not twice."""
    assert rejection(table("Email", "First Name")) == [
        "the key column 'Employee ID' is missing; add a column named "
        "'Employee ID' (headers found: 'Email', 'First Name')"
    ]


def test_a_duplicate_header_names_both_positions() -> None:
    """Two columns with the same header cannot both fill one field."""
    assert rejection(table("Employee ID", "Email", "email")) == [
        "the header 'Email' appears more than once (column 2 (B) and column 3 (C)); "
        "keep one of these columns and remove or rename the others"
    ]


def test_two_headers_filling_one_field_name_both_positions() -> None:
    """An alias and the header of one column cannot both be in the file."""
    assert rejection(table("Employee ID", "Primary Email", "First Name", "E-mail")) == [
        "columns 'Primary Email' (column 2 (B)) and 'E-mail' (column 4 (D)) both fill "
        "email; keep one of them and remove the other"
    ]


def test_every_header_problem_is_reported_at_once() -> None:
    """Duplicates, a missing key and a missing required column come back together."""
    problems = rejection(table("First Name", "first name"))
    assert len(problems) == 3
    assert problems[0].startswith("the header 'First Name' appears more than once")
    assert problems[1].startswith("the key column 'Employee ID' is missing")
    assert problems[2].startswith("the required column 'Primary Email' is missing")


def test_the_rejection_says_nothing_was_applied() -> None:
    """The summary line tells the reader the whole file was refused."""
    with pytest.raises(FileRejected) as caught:
        map_header(table("Nothing"), PROFILE)
    assert caught.value.message == (
        "the file's columns do not fit profile 'hr_full'; nothing was applied"
    )


def test_a_header_less_file_maps_in_the_profiles_column_order() -> None:
    """Without a header row, columns are taken by position and named as the profile names them."""
    mapped = map_header(table(has_header=False, width=3), PROFILE)
    assert [(m.index, m.column.field, m.header) for m in mapped.columns] == [
        (0, "employee_id", "Employee ID"),
        (1, "email", "Primary Email"),
        (2, "first_name", "First Name"),
    ]


def test_a_header_less_file_missing_a_required_column_is_rejected() -> None:
    """A file narrower than the required columns cannot be read by position."""
    assert rejection(table(has_header=False, width=1)) == [
        "the required column 'Primary Email' is missing: the file has no header row, so "
        "columns are read in the profile's order and 'Primary Email' would be "
        "column 2 (B), but the file has only 1 columns"
    ]


def test_a_header_less_file_wider_than_the_profile_ignores_the_extra_columns() -> None:
    """Columns past the profile's end are unknown columns."""
    mapped = map_header(table(has_header=False, width=5), PROFILE)
    assert mapped.ignored == (4,)
    assert mapped.notices == ("ignored columns not in profile 'hr_full': column 5 (E) (no header)",)


def test_a_profile_without_its_key_column_is_reported() -> None:
    """A profile keyed on a field it has no column for cannot read any file."""
    keyless = Profile(name="odd", key="email", columns=(Column("first_name", "First Name"),))
    assert rejection(table("First Name"), keyless) == [
        "profile 'odd' matches users on email but has no email column; add one to the profile"
    ]


@pytest.mark.parametrize(
    ("index", "letter"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letters_follow_spreadsheet_naming(index: int, letter: str) -> None:
    """Positions are shown the way spreadsheets label columns."""
    assert column_letter(index) == letter
