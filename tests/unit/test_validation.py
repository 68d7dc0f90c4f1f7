"""Validation: each rule's accepted and refused cells, keys, repeats and the records frame."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Sequence
from dataclasses import replace

import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat

from syncd.core.emails import check_email
from syncd.core.fields import quoted
from syncd.core.profile import Column, DirectoryRules, Profile
from syncd.core.reading import ReadOptions, read_table
from syncd.core.records import FAILED, Validated, take_valid
from syncd.core.table import ROW, RawTable, RowError
from syncd.core.validation import validate
from syncd.errors import FileRejected

RULES = DirectoryRules(
    groups=("Engineering", "Sales", "Support"),
    roles=("User", "Admin", "Supervisor"),
    enabled_sources=("slack", "email"),
)


def profile(*columns: Column, key: str = "employee_id") -> Profile:
    """A profile with `columns` after its key column."""
    key_column = (
        Column("email", "email", type="email")
        if key == "email"
        else Column("employee_id", "employee_id")
    )
    return Profile(name="test", key=key, columns=(key_column, *columns))  # type: ignore[arg-type]


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    row_errors: Sequence[RowError] = (),
    has_header: bool = True,
) -> RawTable:
    """A RawTable with data rows numbered from 2, cells as received."""
    cells: dict[str, list[object]] = {f"c{i}": [r[i] for r in rows] for i in range(len(header))}
    cells[ROW] = list(range(2, len(rows) + 2))
    return RawTable(
        header=tuple(header),
        cells=pl.DataFrame(cells, schema_overrides={ROW: pl.UInt32}),
        encoding="utf-8",
        delimiter=",",
        has_header=has_header,
        row_errors=tuple(row_errors),
    )


def check(
    column: Column, *cells: str, rules: DirectoryRules = RULES, key: str = "employee_id"
) -> Validated:
    """Validate one column of `cells`, one row each, keyed by distinct employee IDs."""
    if key == "email":
        rows = [[f"u{i}@example.com", c] for i, c in enumerate(cells)]
    else:
        rows = [[f"E{i}", c] for i, c in enumerate(cells)]
    return validate(table([key, column.header], rows), profile(column, key=key), rules)


def messages(v: Validated) -> list[str]:
    return [f"{e.row} {e.render()}" for e in v.errors]


def values(v: Validated, name: str) -> list[object]:
    return v.records[name].to_list()


# --- whitespace, blanks and required values --------------------------------------------


def test_surrounding_whitespace_is_stripped_before_checking() -> None:
    """Cells are stored without the spaces around them."""
    v = check(Column("first_name", "First Name"), "  Jane\t", "\u00a0Li ")
    assert messages(v) == []
    assert values(v, "first_name") == ["Jane", "Li"]


def _stripped_by_polars() -> list[str]:
    """Every character polars' `strip_chars` strips, asked of polars itself."""
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    cells = pl.Series([f"{c}x" for c in characters])
    kept = cells.str.strip_chars().str.len_chars().to_list()
    return [c for c, n in zip(characters, kept, strict=True) if n == 1]


@pytest.mark.parametrize("character", _stripped_by_polars(), ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(
    ("column", "tidy", "cell"),
    [
        (Column("first_name", "First Name"), "Bob", "Ann"),
        (Column("email", "Email", type="email"), "bob@example.com", "ann@example.com"),
    ],
    ids=["text", "email"],
)
def test_any_whitespace_at_either_end_of_one_cell_is_stripped(
    character: str, column: Column, tidy: str, cell: str
) -> None:
    """A column is checked for cells to strip before it is (most need none); whichever
    whitespace one cell has at its start or end, that cell is stored stripped."""
    for untidy in (character + cell, cell + character):
        v = check(column, tidy, untidy)
        assert messages(v) == []
        assert values(v, column.field) == [tidy, cell]


_STRIPPED = "".join(_stripped_by_polars())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet=_STRIPPED, max_size=2),
            st.text(alphabet=string.ascii_letters + " ", max_size=6),
            st.text(alphabet=_STRIPPED, max_size=2),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_every_cell_is_stored_stripped_whatever_else_its_column_holds(
    parts: list[tuple[str, str, str]],
) -> None:
    """Tidy cells, cells with whitespace around them, blank and whitespace-only cells, in
    any mix: each cell is stored stripped, null when nothing is left, whether or not its
    column was found to need stripping at all."""
    cells = ["".join(p) for p in parts]
    v = check(Column("first_name", "First Name"), *cells)
    assert messages(v) == []
    assert values(v, "first_name") == [c.strip(_STRIPPED) or None for c in cells]


def test_a_blank_cell_is_null_unless_the_column_is_required() -> None:
    """Blank and space-only cells become null; a required column needs a value."""
    blank = check(Column("first_name", "First Name"), "", "   ")
    assert values(blank, "first_name") == [None, None]
    v = check(Column("first_name", "First Name", required=True), "Jane", "  ")
    assert messages(v) == ["3 First Name: a value is required"]
    assert values(v, "first_name") == ["Jane"]


# --- emails ------------------------------------------------------------------------------


def test_emails_are_stored_with_the_domain_lower_cased_and_the_local_part_as_given() -> None:
    """Jane.Doe@Example.COM is stored as Jane.Doe@example.com."""
    v = check(Column("email", "Primary Email", type="email"), "Jane.Doe@Example.COM", "x@y.org")
    assert values(v, "email") == ["Jane.Doe@example.com", "x@y.org"]


def test_addresses_beyond_the_fast_pattern_are_accepted_when_email_validator_accepts_them() -> None:
    """An international address passes through email-validator and is normalised alike."""
    v = check(Column("email", "Primary Email", type="email"), "Jösé@Bücher.DE")
    assert messages(v) == []
    assert values(v, "email") == ["Jösé@bücher.de"]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("jane", "'jane' is not a valid email address: An email address must have an @-sign."),
        (
            "jane@example",
            "'jane@example' is not a valid email address: "
            "The part after the @-sign is not valid. It should have a period.",
        ),
        (
            "jane..doe@example.com",
            "'jane..doe@example.com' is not a valid email address: "
            "An email address cannot have two periods in a row.",
        ),
    ],
)
def test_an_invalid_email_says_why_in_email_validators_words(cell: str, message: str) -> None:
    """email-validator has the last word and its message reaches the row error."""
    v = check(Column("email", "Primary Email", type="email"), cell)
    assert messages(v) == [f"2 Primary Email: {message}"]


def test_an_email_key_is_lower_cased_whole() -> None:
    """Keys compare case-insensitively, so an email key is lower-cased."""
    v = validate(table(["Email"], [["Jane.Doe@Example.COM"]]), profile(key="email"), RULES)
    assert values(v, "key") == ["jane.doe@example.com"]
    assert values(v, "email") == ["Jane.Doe@example.com"]


# --- selects, status, role, booleans -----------------------------------------------------


def test_select_options_match_case_insensitively_and_store_the_canonical_spelling() -> None:
    """' sales ' and 'SUPPORT' are stored as 'Sales' and 'Support'."""
    column = Column("department", "Department", type="select", options=("Sales", "Support"))
    v = check(column, " sales ", "SUPPORT")
    assert values(v, "field:department") == ["Sales", "Support"]


def test_an_unknown_select_option_lists_the_options() -> None:
    """The message names the value and every allowed option."""
    column = Column("department", "Department", type="select", options=("Sales", "Support"))
    assert messages(check(column, "Marketing")) == [
        "2 Department: 'Marketing' is not one of Sales, Support"
    ]


def test_role_is_checked_against_the_configured_roles() -> None:
    """role: 'Admn' is refused with the configured roles; 'admin' is stored as Admin."""
    v = check(Column("role", "role"), "admin", "Admn")
    assert messages(v) == ["3 role: 'Admn' is not one of User, Admin, Supervisor"]
    assert values(v, "role") == ["Admin"]


def test_status_gives_the_records_status_and_is_not_a_field() -> None:
    """Active/Archived (any case) become active/archived in the status column."""
    v = check(Column("status", "Current Status"), "archived", "Active", "")
    assert values(v, "status") == ["archived", "active", "active"]
    assert v.fields == ("employee_id",)
    assert v.headers["status"] == "Current Status"


def test_an_unknown_status_lists_active_and_archived() -> None:
    """Status only knows Active and Archived."""
    assert messages(check(Column("status", "Current Status"), "Gone")) == [
        "2 Current Status: 'Gone' is not one of Active, Archived"
    ]


def test_an_active_column_gives_the_status() -> None:
    """active = false archives, true keeps active (seed 001)."""
    v = check(Column("active", "active"), "false", "TRUE", "no", "1")
    assert values(v, "status") == ["archived", "active", "archived", "active"]


def test_without_a_status_column_every_row_is_active() -> None:
    """A file that says nothing about status keeps its users active."""
    assert values(check(Column("first_name", "First Name"), "Jane"), "status") == ["active"]


def test_booleans_accept_true_false_yes_no_one_zero_in_any_case() -> None:
    """Custom booleans are stored as 'true' or 'false'."""
    v = check(Column("remote", "Remote", type="boolean"), "Yes", "no", "1", "0", "TRUE", "False")
    assert values(v, "field:remote") == ["true", "false", "true", "false", "true", "false"]


def test_an_unreadable_boolean_says_what_is_accepted() -> None:
    """The message lists the accepted spellings."""
    assert messages(check(Column("remote", "Remote", type="boolean"), "maybe")) == [
        "2 Remote: 'maybe' is not true or false; use true/false, yes/no or 1/0"
    ]


# --- numbers and dates -------------------------------------------------------------------


def test_integers_are_stored_as_plain_digits() -> None:
    """An optional sign and leading zeros are normalised away."""
    v = check(Column("level", "Level", type="integer"), "+007", "-12", "-0", "0")
    assert values(v, "field:level") == ["7", "-12", "0", "0"]


@pytest.mark.parametrize("cell", ["1,000", "1.5", "12a", "1 000", "٣"])
def test_an_integer_with_separators_or_other_characters_is_refused(cell: str) -> None:
    """Thousands separators are an error, and the message says so."""
    assert messages(check(Column("level", "Level", type="integer"), cell)) == [
        f"2 Level: '{cell}' is not a whole number; write digits only, with no thousands separators"
    ]


def test_numbers_are_stored_as_the_shortest_decimal() -> None:
    """Leading and trailing zeros and a plus sign are dropped; no float rounding."""
    column = Column("fte", "FTE", type="number")
    v = check(column, "-00.50", "12.", ".5", "+3", "-0.0", "0.10000000000000000001")
    assert values(v, "field:fte") == ["-0.5", "12", "0.5", "3", "0", "0.10000000000000000001"]


@pytest.mark.parametrize("cell", ["1e5", "1,5", "1.000,5", "--1", "."])
def test_a_number_not_written_with_a_dot_decimal_is_refused(cell: str) -> None:
    """Only digits with an optional . are numbers."""
    assert messages(check(Column("fte", "FTE", type="number"), cell)) == [
        f"2 FTE: '{cell}' is not a number; write digits with . for decimals, "
        "with no thousands separators"
    ]


def test_iso_dates_are_accepted_as_written() -> None:
    """yyyy-mm-dd dates that exist are stored unchanged."""
    v = check(Column("start_date", "start_date", type="date"), "2026-02-28", "2024-02-29")
    assert values(v, "field:start_date") == ["2026-02-28", "2024-02-29"]


@pytest.mark.parametrize(
    "column",
    [
        Column("start_date", "Start Date", type="date"),
        Column("age", "Age", type="integer"),
        Column("fte", "FTE", type="number"),
        Column("remote", "Remote", type="boolean"),
        Column("tier", "Tier", type="select", options=("Gold", "Silver")),
        Column("backup_email", "Backup Email", type="email"),
        Column("tags", "Tags", type="list"),
        Column("note", "Note", type="text"),
        Column("mobile", "Mobile", type="phone"),
    ],
    ids=lambda c: c.type,
)
def test_a_blank_cell_of_an_optional_column_is_no_error(column: Column) -> None:
    """An optional column may be left empty, whatever its type; it stores nothing."""
    v = check(column, "", "   ")
    assert messages(v) == []
    assert v.valid == 2


@pytest.mark.parametrize("cell", ["2026-02-30", "2026-2-3", "28/02/2026", "2026-13-01", "20260228"])
def test_a_date_that_is_not_iso_or_not_in_the_calendar_is_refused(cell: str) -> None:
    """start_date: '2026-02-30' is not a date; use yyyy-mm-dd."""
    assert messages(check(Column("start_date", "start_date", type="date"), cell)) == [
        f"2 start_date: '{cell}' is not a date; use yyyy-mm-dd"
    ]


# --- phone numbers -----------------------------------------------------------------------

MOBILE = Column("mobile", "Mobile", type="phone")


def check_phones(*cells: str, region: str | None = None) -> Validated:
    """Validate a phone column of `cells` with the profile's phone_region `region`."""
    rows = [[f"E{i}", c] for i, c in enumerate(cells)]
    with_region = replace(profile(MOBILE), phone_region=region)
    return validate(table(["employee_id", "Mobile"], rows), with_region, RULES)


def example(region: str) -> tuple[str, str]:
    """phonenumbers' example number for a region, as people write it and in E.164."""
    number = phonenumbers.example_number(region)
    assert number is not None
    return (
        phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
    )


def expected_form(region: str) -> str:
    """How a message shows the form expected: the region's example, both ways."""
    written, stored = example(region)
    return f"write it like {written} (stored in E.164 form, {stored})"


def test_international_phone_numbers_are_stored_in_e164() -> None:
    """Spaces, hyphens, dots and brackets go; the + and the digits stay, Italian leading
    zeros too, and a trunk 0 written after the country code is dropped."""
    v = check_phones(
        "+44 20 7946 0958",
        "+1 (212) 555-0147",
        "+33.1.55.50.01.04",
        "+39 06 1234 5678",
        "+44 (0)20 7946 0958",
        "+4915112345678",
    )
    assert messages(v) == []
    assert values(v, "field:mobile") == [
        "+442079460958",
        "+12125550147",
        "+33155500104",
        "+390612345678",
        "+442079460958",
        "+4915112345678",
    ]


def test_a_number_without_its_country_code_is_read_in_the_profiles_phone_region() -> None:
    """With phone_region = "GB", 020 7946 0958 is +442079460958; numbers with a country
    code keep theirs."""
    v = check_phones("020 7946 0958", "07700 900123", "+33 1 55 50 01 04", region="GB")
    assert messages(v) == []
    assert values(v, "field:mobile") == ["+442079460958", "+447700900123", "+33155500104"]


def test_without_a_phone_region_a_number_without_its_country_code_is_refused() -> None:
    """The row error asks for the country code or the profile's phone_region."""
    v = check_phones("020 7946 0958", "+44 20 7946 0958")
    assert messages(v) == [
        "2 Mobile: '020 7946 0958' has no country code: write it with one, like "
        f"{example('GB')[0]}, or set the profile's phone_region"
    ]
    assert values(v, "field:mobile") == ["+442079460958"]


def test_an_impossible_number_is_refused_showing_the_form_expected() -> None:
    """Too few digits for France: the message names the country and shows a French
    number as it is written and as it is stored."""
    v = check_phones("+33 1 55 50", "+1 212 555 01477")
    assert messages(v) == [
        f"2 Mobile: '+33 1 55 50' has too few digits for a number of +33 (FR); "
        f"{expected_form('FR')}",
        f"3 Mobile: '+1 212 555 01477' has too many digits for a number of +1 (US); "
        f"{expected_form('US')}",
    ]


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("+999 1234 5678", "does not start with a known country code"),
        ("call me", "is not a phone number"),
        ("+44 1", "has too few digits to be a phone number"),
    ],
)
def test_an_unreadable_number_is_refused_showing_the_form_expected(cell: str, why: str) -> None:
    """Without a country to go by, the example is the profile's region's."""
    assert messages(check_phones(cell, region="DE")) == [
        f"2 Mobile: '{cell}' {why}; {expected_form('DE')}"
    ]


def test_a_number_with_an_extension_is_refused_rather_than_cut_short() -> None:
    """E.164 has no room for an extension, so dropping it would lose part of the cell."""
    assert messages(check_phones("+44 20 7946 0958 ext. 12")) == [
        "2 Mobile: '+44 20 7946 0958 ext. 12' has an extension, which E.164 cannot hold; remove it"
    ]


def test_a_required_phone_column_needs_a_value() -> None:
    """Blank is no phone number where the column is required; other rows still pass."""
    required = Column("mobile", "Mobile", type="phone", required=True)
    v = check(required, "+44 20 7946 0958", "  ")
    assert messages(v) == ["3 Mobile: a value is required"]
    assert values(v, "field:mobile") == ["+442079460958"]


def test_a_long_phone_cell_is_shown_cut_short_in_its_message() -> None:
    """A message quotes at most what `quoted` shows of any cell."""
    cell = "+44 " + "7" * 200
    (message,) = messages(check_phones(cell))
    assert message.startswith(f"2 Mobile: {quoted(cell)} has too many digits")
    assert "7" * 100 not in message


# --- lists -------------------------------------------------------------------------------


def test_groups_match_configured_groups_case_insensitively_in_their_spelling() -> None:
    """Items are stripped, empties dropped, repeats merged, spelling made canonical."""
    v = check(Column("groups", "Groups"), " sales ,engineering,, Sales", "Support")
    assert values(v, "groups") == [["Sales", "Engineering"], ["Support"]]


def test_groups_none_means_no_groups() -> None:
    """'none' (any case) clears the groups (seed 002)."""
    assert values(check(Column("groups", "Groups"), "None", ""), "groups") == [[], None]


def test_an_unknown_group_is_refused_with_the_configured_groups() -> None:
    """Groups must exist unless the directory creates missing ones."""
    v = check(Column("groups", "Groups"), "Sales,Marketing,Legal")
    assert messages(v) == [
        "2 Groups: 'Marketing', 'Legal' are not groups; "
        "groups: Engineering, Sales, Support, or none for no groups"
    ]


def test_unknown_groups_are_kept_as_written_when_missing_groups_are_created() -> None:
    """create_missing_groups keeps new names as written and known ones canonical."""
    rules = DirectoryRules(groups=("Sales",), create_missing_groups=True)
    v = check(Column("groups", "Groups"), "sales, Marketing", rules=rules)
    assert messages(v) == []
    assert values(v, "groups") == [["Sales", "Marketing"]]


def test_source_usernames_are_normalised_with_the_source_lower_cased() -> None:
    """Items are source:username; the source is lower-cased, the username kept."""
    v = check(Column("source_usernames", "Source Username(s)"), "Slack : JDoe, email:j@x.com")
    assert values(v, "source_usernames") == [["slack:JDoe", "email:j@x.com"]]


def test_a_source_that_is_not_enabled_is_refused_with_the_enabled_ones() -> None:
    """source_usernames: 'teams' is not an enabled source; enabled: email, slack."""
    v = check(Column("source_usernames", "source_usernames"), "slack:jd, teams:jd")
    assert messages(v) == [
        "2 source_usernames: 'teams' is not an enabled source; enabled: email, slack"
    ]


def test_a_source_username_without_a_source_is_refused() -> None:
    """An item must be source:username."""
    v = check(Column("source_usernames", "source_usernames"), "jdoe, slack:")
    assert messages(v) == [
        "2 source_usernames: 'jdoe', 'slack:' are not source:username (for example slack:jdoe)"
    ]


def test_labels_are_colon_separated_and_any_label_passes_when_none_are_configured() -> None:
    """Seed 001: labels like Marketing:Trial:Demo, case kept."""
    v = check(Column("labels", "labels"), "Marketing:Trial: :Demo")
    assert values(v, "labels") == [["Marketing", "Trial", "Demo"]]


def test_labels_are_checked_case_sensitively_when_configured() -> None:
    """Label names are case-sensitive (seed 001)."""
    rules = DirectoryRules(labels=("Marketing", "Trial"))
    v = check(Column("labels", "labels"), "Marketing", "marketing:Trial", rules=rules)
    assert messages(v) == [
        "3 labels: 'marketing' is not a label; labels: Marketing, Trial (labels are case-sensitive)"
    ]


def test_custom_lists_are_joined_with_a_bar() -> None:
    """A custom list field is stored as its items joined by |."""
    v = check(Column("skills", "Skills", type="list", separator=";"), "python; sql;;python")
    assert values(v, "field:skills") == ["python|sql"]


# --- strings, text and passwords ---------------------------------------------------------


def test_a_string_over_255_characters_is_refused_saying_the_limit() -> None:
    """Strings hold at most 255 characters; 255 is fine."""
    v = check(Column("first_name", "First Name"), "é" * 255, "x" * 256)
    assert messages(v) == ["3 First Name: is 256 characters long; at most 255 are allowed"]


def test_a_string_with_a_line_break_is_refused() -> None:
    """Strings are single lines."""
    assert messages(check(Column("cost_center", "Cost Center"), "A\nB", "C\rD")) == [
        "2 Cost Center: must be a single line; remove the line breaks",
        "3 Cost Center: must be a single line; remove the line breaks",
    ]


@pytest.mark.parametrize(
    "column", [Column("first_name", "First Name"), Column("bio", "Bio", type="text")]
)
def test_a_control_character_in_a_name_or_text_is_refused(column: Column) -> None:
    """ESC and its kin would reach a support person's terminal (`syncd users list`) and
    rewrite what it shows: refused in names and text, which keep tabs, accents and
    emoji; the message does not quote the cell."""
    cells = ("Ev\x1b[2Jil", "Bell\x07", "nul\x00", "C1\x9b31m", "Tab\tbed", "Zoë 👩\u200d💻")
    v = check(column, *cells)
    problem = "holds an invisible control character (such as ESC), which no name or text has"
    assert [m.split(": ", 1) for m in messages(v)] == [
        [f"{row} {column.header}", f"{problem}; type the cell again"] for row in (2, 3, 4, 5)
    ]


def test_text_may_span_lines_up_to_64_kib() -> None:
    """Text fields take line breaks; over 64 KiB is refused."""
    column = Column("bio", "Bio", type="text")
    v = check(column, "line one\nline two", "x" * (64 * 1024 + 1))
    assert messages(v) == ["3 Bio: is 65,537 bytes long; at most 65,536 bytes (64 KiB) are allowed"]
    assert values(v, "field:bio") == ["line one\nline two"]


def test_a_short_password_is_refused_without_showing_it() -> None:
    """Passwords need 6 characters and never appear in a message."""
    v = check(Column("password", "password"), "secret1", "abc12")
    assert messages(v) == ["3 password: must be at least 6 characters long"]
    assert values(v, "password") == ["secret1"]


def test_a_full_name_fills_the_display_name() -> None:
    """full_name is stored as display_name."""
    v = check(Column("full_name", "Full Name"), "Jane Doe")
    assert v.fields == ("employee_id", "display_name")
    assert v.headers["display_name"] == "Full Name"
    assert values(v, "display_name") == ["Jane Doe"]


def test_a_display_name_wins_over_a_full_name() -> None:
    """When both are present, display_name is taken and full_name only checked."""
    p = profile(Column("display_name", "Display Name"), Column("full_name", "Full Name"))
    v = validate(
        table(["employee_id", "Display Name", "Full Name"], [["E1", "Jane", "J. Doe"]]), p, RULES
    )
    assert values(v, "display_name") == ["Jane"]
    assert v.fields == ("employee_id", "display_name")


# --- keys and repeats --------------------------------------------------------------------


def test_every_occurrence_of_a_repeated_key_names_the_other_rows() -> None:
    """employee_id: 'E100' is also on rows 4, 9; each user may appear once."""
    ids = ["E100", "E1", "E100", "E2", "E3", "E4", "E5", " E100 "]
    v = validate(table(["employee_id"], [[i] for i in ids]), profile(), RULES)
    assert messages(v) == [
        "2 employee_id: 'E100' is also on rows 4, 9; each user may appear once",
        "4 employee_id: 'E100' is also on rows 2, 9; each user may appear once",
        "9 employee_id: 'E100' is also on rows 2, 4; each user may appear once",
    ]
    assert v.invalid_keys == ("E100",)
    assert values(v, "key") == ["E1", "E2", "E3", "E4", "E5"]


def test_a_key_repeated_once_names_the_single_other_row() -> None:
    """Two occurrences: 'row', not 'rows'."""
    v = validate(table(["employee_id"], [["A"], ["A"]]), profile(), RULES)
    assert messages(v)[0] == "2 employee_id: 'A' is also on row 3; each user may appear once"


def test_a_key_repeated_many_times_lists_the_first_rows_and_counts_the_rest() -> None:
    """Messages stay short however often a key repeats."""
    v = validate(table(["employee_id"], [["A"]] * 15), profile(), RULES)
    assert messages(v)[0] == (
        "2 employee_id: 'A' is also on rows 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 4 more; "
        "each user may appear once"
    )
    assert len(v.errors) == 15


def test_repeated_emails_are_found_case_insensitively_under_an_employee_id_key() -> None:
    """Two users cannot share an address, whatever its case."""
    header = ["employee_id", "Email"]
    rows = [["E1", "jane@example.com"], ["E2", "JANE@Example.com"], ["E3", "bob@example.com"]]
    p = profile(Column("email", "Email", type="email"))
    v = validate(table(header, rows), p, RULES)
    assert messages(v) == [
        "2 Email: 'jane@example.com' is also on row 3; each email address may appear once",
        "3 Email: 'JANE@Example.com' is also on row 2; each email address may appear once",
    ]
    assert v.invalid_keys == ("E1", "E2")


def test_repeated_email_keys_are_reported_once_per_row() -> None:
    """With an email key the repeat is the key's, reported under the email column."""
    v = validate(table(["email"], [["a@x.org"], ["A@X.ORG"]]), profile(key="email"), RULES)
    assert messages(v) == [
        "2 email: 'a@x.org' is also on row 3; each user may appear once",
        "3 email: 'A@X.ORG' is also on row 2; each user may appear once",
    ]
    assert v.invalid_keys == ("a@x.org",)


def test_a_blank_or_invalid_email_key_is_unreadable() -> None:
    """Rows whose key cannot be read are counted apart from the keys of invalid rows."""
    rows = [["ok@x.org", "User"], ["", "User"], ["not-an-email", "User"], ["bad@x.org", "Boss"]]
    p = profile(Column("role", "role"), key="email")
    v = validate(table(["email", "role"], rows), p, RULES)
    assert v.unreadable_keys == 2
    assert v.invalid_keys == ("bad@x.org",)
    assert v.valid == 1
    assert v.invalid == 3


def test_a_blank_employee_id_is_unreadable_and_required() -> None:
    """The key column always needs a value."""
    v = validate(table(["employee_id"], [["E1"], ["  "]]), profile(), RULES)
    assert messages(v) == ["3 employee_id: a value is required"]
    assert v.unreadable_keys == 1


def test_invalid_rows_whose_key_can_be_read_report_their_keys() -> None:
    """A row that fails but has a key counts as present (the planner leaves it alone)."""
    v = check(Column("role", "role"), "User", "Nobody", "Nobody")
    assert v.invalid_keys == ("E1", "E2")
    assert v.unreadable_keys == 0


# --- rows, order and the records frame ----------------------------------------------------


def test_structural_row_errors_make_their_rows_invalid_and_come_first_in_the_row() -> None:
    """A ragged row is invalid even if its cells pass; its error precedes cell errors."""
    ragged = RowError(3, "", "row 3 has 3 cells; the header has 2")
    rows = [["E1", "User"], ["E2", "Boss"], ["E3", "User"]]
    v = validate(
        table(["employee_id", "role"], rows, row_errors=[ragged]),
        profile(Column("role", "role")),
        RULES,
    )
    assert messages(v) == [
        "3 row 3 has 3 cells; the header has 2",
        "3 role: 'Boss' is not one of User, Admin, Supervisor",
    ]
    assert values(v, "key") == ["E1", "E3"]


_KEYS = st.sampled_from(["E1", "E2", "E3", "", " E4 "])
_ADDRESSES = st.sampled_from(["a@example.com", "A@example.com", "b@example.com", "not", ""])
_GROUPS = st.sampled_from(["Sales", "sales|Support", "Nowhere", "", "none"])
_ROLES = st.sampled_from(["User", "Boss", ""])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_KEYS, _ADDRESSES, _GROUPS, _ROLES), min_size=1, max_size=14),
    st.lists(st.integers(min_value=1, max_value=5), max_size=4),
    st.sets(st.integers(min_value=2, max_value=15), max_size=2),
)
def test_failed_rows_flagged_then_taken_out_leave_exactly_the_valid_records(
    rows: list[tuple[str, str, str, str]], cuts: list[int], ragged: set[int]
) -> None:
    """A job keeps the failed rows in its records, flagged, until it has let go of the
    cells (`flag_failed`), then takes them out a column at a time (`take_valid`). For any
    mix of valid, invalid, blank and repeated keys and cells, in a table read in chunks,
    that gives the records a plain validation gives, and the same errors and counts; the
    flag marks exactly the rows with errors."""
    header = ["employee_id", "email", "groups", "role"]
    p = profile(Column("email", "email", type="email"), Column("groups", "groups"))
    p = replace(p, columns=(*p.columns, Column("role", "role")))
    whole = table(header, rows, row_errors=[RowError(r, "", "ragged") for r in ragged])
    parts, start = [], 0
    for size in cuts:  # the cells as a reader leaves them: in several chunks
        parts.append(whole.cells.slice(start, size))
        start += size
    parts.append(whole.cells.slice(start))
    chunked = replace(whole, cells=pl.concat(parts, rechunk=False))

    plain = validate(chunked, p, RULES)
    flagged = validate(chunked, p, RULES, flag_failed=True)
    assert flagged.errors == plain.errors
    assert (flagged.valid, flagged.invalid) == (plain.valid, plain.invalid)
    records = flagged.records
    failed = {e.row for e in plain.errors} & set(chunked.cells[ROW])
    if failed:
        assert records.height == len(rows)
        assert records.filter(pl.col(FAILED))[ROW].to_list() == sorted(failed)
    else:
        assert FAILED not in records.columns
    taken = take_valid(records)
    assert taken.equals(plain.records)
    assert records.width == (0 if failed else taken.width)  # taken over


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.text(max_size=20)), min_size=1, max_size=40),
    st.lists(st.integers(min_value=1, max_value=8), max_size=5),
)
def test_taking_the_valid_rows_keeps_the_columns_chunked_alike(
    rows: list[tuple[bool, str]], cuts: list[int]
) -> None:
    """Records of a large file come in chunks, every column cut alike, so that filtering
    rows later copies nothing to realign them. `take_valid` filters each column on its
    own: for any chunks and any failed rows, it leaves the unflagged rows, and columns
    (numbers, text, lists) that were cut alike are still cut alike."""
    whole = pl.DataFrame(
        {
            ROW: pl.Series(range(2, len(rows) + 2), dtype=pl.UInt32),
            "key": [text for _, text in rows],
            "groups": [[text] for _, text in rows],
            FAILED: [failed for failed, _ in rows],
        }
    )
    parts, start = [], 0
    for size in cuts:
        parts.append(whole.slice(start, size))
        start += size
    parts.append(whole.slice(start))
    records = pl.concat(parts, rechunk=False)
    expected = records.filter(~pl.col(FAILED)).drop(FAILED)
    alike = len({tuple(c.chunk_lengths()) for c in records}) == 1
    taken = take_valid(records)
    assert taken.equals(expected)
    if alike:
        assert len({tuple(c.chunk_lengths()) for c in taken}) == 1


def test_errors_are_sorted_by_row_then_by_column_order_in_the_file() -> None:
    """Within a row, errors follow the file's columns left to right."""
    p = profile(Column("role", "role"), Column("start_date", "start", type="date"))
    rows = [["2026-02-30", "E1", "x"], ["bad", "E2", "User"], ["2026-01-01", "E1", "y"]]
    v = validate(table(["start", "employee_id", "role"], rows), p, RULES)
    assert [(e.row, e.column) for e in v.errors] == [
        *[(2, "start"), (2, "employee_id"), (2, "role")],
        *[(3, "start")],
        *[(4, "employee_id"), (4, "role")],
    ]


def test_the_records_frame_has_the_documented_columns_and_types() -> None:
    """_row, key, status, then the fields in file order; custom fields prefixed."""
    p = profile(
        Column("email", "Primary Email", type="email"),
        Column("groups", "Groups"),
        Column("department", "Dept", type="select", options=("Sales",)),
    )
    header = ["employee_id", "Primary Email", "Groups", "Dept", "Errors"]
    v = validate(table(header, [[" E1 ", "a@b.org", "sales", "SALES", "old error"]]), p, RULES)
    schema: dict[str, pl.DataType] = {
        ROW: pl.UInt32(),
        "key": pl.String(),
        "status": pl.String(),
        "employee_id": pl.String(),
        "email": pl.String(),
        "groups": pl.List(pl.String()),
        "field:department": pl.String(),
    }
    assert v.records.schema == pl.Schema(schema)
    assert v.records.row(0) == (2, "E1", "active", "E1", "a@b.org", ["Sales"], "Sales")
    assert v.fields == ("employee_id", "email", "groups", "field:department")
    assert dict(v.headers) == {
        "employee_id": "employee_id",
        "email": "Primary Email",
        "groups": "Groups",
        "field:department": "Dept",
    }


def test_header_notices_are_passed_on() -> None:
    """Ignored columns are named in the Validated notices."""
    v = validate(table(["employee_id", "Notes"], [["E1", "hi"]]), profile(), RULES)
    assert v.notices == ("ignored columns not in profile 'test': 'Notes' (column 2 (B))",)


def test_a_header_less_file_names_columns_as_the_profile_does() -> None:
    """Without a header, messages use the profile's column headers."""
    p = profile(Column("role", "Role"))
    v = validate(table(["c0", "c1"], [["E1", "Boss"]], has_header=False), p, RULES)
    assert messages(v) == ["2 Role: 'Boss' is not one of User, Admin, Supervisor"]


def test_a_file_without_data_rows_is_rejected() -> None:
    """No rows is a file-level problem; nothing is applied."""
    with pytest.raises(FileRejected, match="no data rows"):
        validate(table(["employee_id"], []), profile(), RULES)


def test_a_header_problem_rejects_the_file() -> None:
    """Header mapping problems surface as FileRejected from validate."""
    with pytest.raises(FileRejected) as caught:
        validate(table(["Name"], [["x"]]), profile(), RULES)
    assert "the key column 'employee_id' is missing" in caught.value.problems[0]


def test_all_valid_rows_pass_through_untouched() -> None:
    """A clean file has no errors and every row in records."""
    v = check(Column("first_name", "First Name"), *[f"N{i}" for i in range(50)])
    assert (v.valid, v.invalid, v.errors) == (50, 0, ())


def test_a_status_column_wins_over_an_active_column() -> None:
    """With both, status decides; active fills in where status is blank."""
    p = profile(Column("status", "Status"), Column("active", "active"))
    rows = [["E1", "Active", "false"], ["E2", "", "false"], ["E3", "", ""]]
    v = validate(table(["employee_id", "Status", "active"], rows), p, RULES)
    assert values(v, "status") == ["active", "archived", "active"]
    assert v.headers["status"] == "Status"


def test_a_required_select_left_blank_or_spaces_needs_a_value() -> None:
    """Columns checked by distinct value treat blanks like any other column."""
    v = check(Column("role", "role", required=True), "User", "   ", "")
    assert messages(v) == ["3 role: a value is required", "4 role: a value is required"]


def test_a_large_file_checked_in_parallel_parts_finds_every_problem() -> None:
    """Splitting a big frame for parallel work loses no row and mixes up no message."""
    count = 60_000
    ids = [f"E{i}" for i in range(count)]
    emails = [f"user{i}@Example.com" for i in range(count)]
    roles = ["admin" if i % 2 else "User" for i in range(count)]
    ids[count - 1] = "E7"
    emails[40_000] = "Jösé@Bücher.DE"
    emails[45_000] = "bad@"
    roles[59_000] = "Boss"
    p = profile(Column("email", "Email", type="email"), Column("role", "role"))
    rows = list(zip(ids, emails, roles, strict=True))
    v = validate(table(["employee_id", "Email", "role"], rows), p, RULES)
    assert messages(v) == [
        f"9 employee_id: 'E7' is also on row {count + 1}; each user may appear once",
        "45002 Email: 'bad@' is not a valid email address: "
        "There must be something after the @-sign.",
        "59002 role: 'Boss' is not one of User, Admin, Supervisor",
        f"{count + 1} employee_id: 'E7' is also on row 9; each user may appear once",
    ]
    assert v.valid == count - 4
    by_row = dict(zip(v.records[ROW].to_list(), v.records["email"].to_list(), strict=True))
    assert by_row[40_002] == "Jösé@bücher.de"
    assert by_row[3] == "user1@example.com"
    assert v.records["role"].unique().sort().to_list() == ["Admin", "User"]


# Text lost to a wrong encoding, normal forms, rows that cannot be trusted


def _read(data: bytes, prof: Profile) -> Validated:
    return validate(read_table(data, ReadOptions()), prof, RULES)


@pytest.mark.parametrize("column", [0, 1, 2, 3])
def test_a_cell_holding_a_byte_that_is_not_utf8_fails_its_row_naming_the_byte(
    column: int,
) -> None:
    """In any column (key, email, name, select), a lost byte fails the row and the
    message names the byte and what to do; the other rows are as written."""
    prof = profile(
        Column("email", "email", type="email"),
        Column("first_name", "first_name"),
        Column("role", "role"),
    )
    cells = [b"E1", "renée@example.com".encode(), "Zoë".encode(), b"User"]
    cells[column] = cells[column][:1] + b"\xe9" + cells[column][1:]
    data = b"employee_id,email,first_name,role\n" + b",".join(cells) + b"\nE2,b@x.com,Bo,User\n"
    v = _read(data, prof)
    assert v.records["key"].to_list() == ["E2"]
    [error] = v.errors
    assert error.row == 2
    assert "0xE9" in error.message
    assert "not UTF-8" in error.message
    assert (v.unreadable_keys, v.invalid_keys) == ((1, ()) if column == 0 else (0, ("E1",)))


def test_the_replacement_character_left_by_another_program_fails_its_row() -> None:
    """U+FFFD stands for text some program could not read: never stored as a name."""
    v = check(Column("first_name", "first_name"), "Ren\ufffde", "Ann")
    assert [e.row for e in v.errors] == [2]
    assert "\ufffd" in v.errors[0].message
    assert "type the original characters again" in v.errors[0].message


def test_a_password_with_a_lost_byte_is_refused_without_quoting_it() -> None:
    """The message for a password cell names neither the cell nor its bytes."""
    v = check(Column("password", "password"), "s3cr\U0010ffe9t99")
    [error] = v.errors
    assert "s3cr" not in error.message
    assert "0xE9" not in error.message


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_keys_emails_and_names_are_read_in_nfc_whatever_the_files_form(form: str) -> None:
    """The same people exported in NFD read exactly as in NFC: keys, emails, names, groups."""
    prof = profile(
        Column("email", "email", type="email"),
        Column("first_name", "first_name"),
        Column("groups", "groups", type="list"),
        key="email",
    )
    text = "email,first_name,groups\nrenée@exämple.com,Renée,Sales\n"
    v = _read(unicodedata.normalize(form, text).encode(), prof)
    record = v.records.row(0, named=True)
    assert record["key"] == unicodedata.normalize("NFC", "renée@exämple.com")
    assert record["email"] == unicodedata.normalize("NFC", "renée@exämple.com")
    assert record["first_name"] == unicodedata.normalize("NFC", "Renée")


def test_a_row_with_a_cell_too_many_has_no_readable_key_and_echoes_no_cell() -> None:
    """An unquoted comma shifts every later cell: the row's key cannot be trusted (so it
    blocks archiving), and no message quotes its cells (a split password spills into them)."""
    prof = profile(Column("password", "password"), Column("role", "role"))
    data = b"employee_id,password,role\nE1,hun,ter22,User\nE2,secret9,User\n"
    v = _read(data, prof)
    assert v.records["key"].to_list() == ["E2"]
    assert v.unreadable_keys == 1
    assert [e.row for e in v.errors] == [2]
    assert "ter22" not in v.errors[0].message
    assert "row has 4 cells" in v.errors[0].message


def test_email_validator_is_asked_once_about_each_refused_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file of bad addresses (a column shifted, names where emails belong) costs one
    question to email-validator per address: the reason it gave when deciding is the
    one each row's error says, not asked again."""
    import email_validator

    import syncd.core.emails as emails

    asked: list[str] = []
    ask = email_validator.validate_email

    def counted(address: str, **options: object) -> object:
        asked.append(address)
        return ask(address, **options)  # type: ignore[arg-type]

    # syncd imports it when it first asks (`syncd validate` of good addresses never does).
    monkeypatch.setattr(email_validator, "validate_email", counted)
    bad = [f"not an email {n}" for n in range(50)] + ["two words@example.com", "zoë@"]
    validated = validate(
        table(["employee_id", "email"], [[f"E{n}", a] for n, a in enumerate(bad)]),
        profile(Column("email", "email", type="email")),
        RULES,
    )
    assert sorted(asked) == sorted(bad)
    assert [e.message for e in validated.errors] == [
        f"{quoted(a)} is not a valid email address: {emails.check_email(a).problem}" for a in bad
    ]


_CELLS = {
    "employee_id": st.sampled_from(["E1", "E2", " E3", "", "E\ufffd"]),
    "email": st.sampled_from(["a@x.org", "A@x.org", "b@X.ORG", "zoë@x.org", "not", "", "a@x.org "]),
    "role": st.sampled_from(["User", "admin", "Boss", ""]),
    "groups": st.sampled_from(["Sales", "Sales|Nope", "", "support"]),
}


@given(st.lists(st.tuples(*_CELLS.values()), min_size=1, max_size=10))
@settings(max_examples=200, deadline=None)
def test_a_file_only_checked_counts_its_valid_rows_without_keeping_them(
    rows: list[tuple[str, ...]],
) -> None:
    """`syncd validate` does not keep the valid rows (copying them out of a file with
    errors costs memory it has no use for); it counts exactly the rows a job keeps, for
    any mix of bad, blank, repeated and unreadable cells."""
    p = profile(
        Column("email", "email", type="email"),
        Column("role", "role"),
        Column("groups", "groups", type="list"),
    )
    kept = validate(table(list(_CELLS), rows), p, RULES)
    counted = validate(table(list(_CELLS), rows), p, RULES, keep_records=False)
    assert counted.records.is_empty()
    assert counted.valid == kept.valid == kept.records.height
    assert (counted.invalid, counted.errors) == (kept.invalid, kept.errors)
    assert (counted.invalid_keys, counted.unreadable_keys) == (
        kept.invalid_keys,
        kept.unreadable_keys,
    )


_LOCALS = st.sampled_from(["ann", "Ann.Lee", "ANN", "zoë", "Zoë", "a b", "", "a..b", "o'neil"])
_DOMAINS = st.sampled_from(["x.org", "X.Org", "bücher.de", "BÜCHER.de", "x", "-x.org", "x.test"])


@given(
    st.lists(
        st.tuples(_LOCALS, _DOMAINS, st.booleans()),
        min_size=1,
        max_size=12,
        # A repeated address fails both its rows, whatever email-validator says of it.
        unique_by=lambda part: f"{part[0]}@{part[1]}".lower() if part[2] else part[0],
    )
)
@settings(max_examples=200, deadline=None)
def test_every_address_is_stored_as_email_validator_would_have_it(
    parts: list[tuple[str, str, bool]],
) -> None:
    """Whatever mix a column holds (plain, upper case before the @, international, refused,
    blank), each row's stored address is email-validator's for that cell (domain lower-
    cased, local part as given), and a row it refuses is invalid; the fast path and the
    few addresses worked out apart never disagree with it."""
    cells = [f"{local}@{domain}" if at else local for local, domain, at in parts]
    rows = [[f"E{i}", cell] for i, cell in enumerate(cells)]
    p = profile(Column("email", "email", type="email"))
    stored = dict(
        validate(table(["employee_id", "email"], rows), p, RULES)
        .records.select("key", "email")
        .iter_rows()
    )
    for i, cell in enumerate(cells):
        expected = check_email(cell).address if cell else None
        if cell and expected is None:
            assert f"E{i}" not in stored, cell
        else:
            assert stored[f"E{i}"] == expected, cell
