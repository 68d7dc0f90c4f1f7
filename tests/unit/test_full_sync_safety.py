"""The promise of full sync, on whole files damaged the way real feeds damage them.

A directory is loaded from a clean export; then the same export comes back damaged (another
encoding or normal form, a BOM, lost leading zeros, blank lines, other line ends, a stray
byte, a cell split by an unquoted comma, a cut at any byte, the errors CSV sent back) and
goes through reading, validation, the errors-CSV mode rule and the planner, exactly as a
job runs them. However it was damaged, no user whose row is still in the file, in any
readable form, is archived.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.core.builtin_profiles import fixed_column
from syncd.core.errors_csv import render_errors_csv
from syncd.core.plan import Plan, build_plan, candidates, slim_snapshot
from syncd.core.profile import DirectoryRules, Profile
from syncd.core.reading import read_table
from syncd.core.table import RowError
from syncd.core.validation import validate
from syncd.errors import FileRejected
from syncd.intake import effective_mode, read_options

PROFILE = Profile(
    name="hr",
    key="employee_id",
    columns=(
        fixed_column("employee_id", "Employee ID", required=True),
        fixed_column("email", "Email", required=True),
        fixed_column("first_name", "First Name"),
        fixed_column("last_name", "Last Name"),
    ),
)
RULES = DirectoryRules()
HEADER = ["Employee ID", "Email", "First Name", "Last Name"]
FIRST = ["Renée", "José", "Zoë", "Łukasz", "Ann", "O'Brien", "Ægir", "Nuñez, Jr", "Björk"]
LAST = ["Müller", "Smith", "García", "Nguyễn", "Dvořák", "Ng", "Çelik", '"Bo" Li']
LOCALS = ["renée", "jose", "zoe", "anna", "bjørn", "mary.jones", "li"]

Person = tuple[str, str, str, str]


@st.composite
def people(draw: st.DrawFn) -> list[Person]:
    """Staff with distinct keys (as numbers too, so `12` and `0012` never both exist)
    and distinct emails; some keys are digits with leading zeros, as HR systems write."""
    numbers = draw(st.lists(st.integers(1, 99_999), min_size=1, max_size=8, unique=True))
    staff = []
    for i, number in enumerate(numbers):
        width = draw(st.sampled_from([0, 5, 6]))
        key = draw(st.sampled_from([str(number).zfill(width), f"E-{number}"]))
        email = f"{draw(st.sampled_from(LOCALS))}{i}@example.com"
        staff.append((key, email, draw(st.sampled_from(FIRST)), draw(st.sampled_from(LAST))))
    return staff


def export(staff: list[Person], eol: str = "\r\n") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=eol)
    writer.writerow(HEADER)
    writer.writerows(staff)
    return out.getvalue()


@dataclass(frozen=True)
class Damaged:
    """A damaged export and the keys of the rows still in it, in some form."""

    data: bytes
    present: frozenset[str]


def read_plan(data: bytes, stored: pl.DataFrame) -> Plan | None:
    """Read, validate and plan `data` as a full import, as a job would; None if rejected."""
    try:
        table = read_table(data, read_options(PROFILE))
        validated = validate(table, PROFILE, RULES)
    except FileRejected:
        return None
    mode, _ = effective_mode("full", table.header)
    snapshot = slim_snapshot(stored.select(
        "user_id", "key", email_lc=pl.col("email").str.to_lowercase(), status="status",
        fingerprint="fingerprint",
    ))  # fmt: skip
    wanted = candidates(validated.records, validated.fields, snapshot)
    details = stored.filter(pl.col("user_id").is_in(wanted.implode())).select(
        "user_id", *validated.fields, password_tag=pl.lit(None, pl.String)
    )
    try:
        return build_plan(validated, snapshot, details, mode=mode)[0]
    except FileRejected:
        return None


def load(staff: list[Person]) -> pl.DataFrame:
    """The directory after a clean full import of `staff` into an empty one."""
    plan = read_plan(export(staff).encode(), EMPTY)
    assert plan is not None
    assert plan.creates.height == len(staff), plan
    return plan.creates.with_columns(
        user_id=pl.int_range(1, plan.creates.height + 1, dtype=pl.Int64)
    ).select(*EMPTY.columns)


EMPTY = pl.DataFrame(
    schema={
        "user_id": pl.Int64,
        "key": pl.String,
        "status": pl.String,
        "fingerprint": pl.Int64,
        "employee_id": pl.String,
        "email": pl.String,
        "first_name": pl.String,
        "last_name": pl.String,
    }
)

# --- damage ----------------------------------------------------------------------------

TextDamage = Callable[[str, list[Person], st.DrawFn], str]


def nfd(text: str, staff: list[Person], draw: st.DrawFn) -> str:
    return unicodedata.normalize("NFD", text)


def lost_zeros(text: str, staff: list[Person], draw: st.DrawFn) -> str:
    """A spreadsheet turned every digit key into a number."""
    rows = [(k.lstrip("0") or "0" if k.isdigit() else k, *rest) for k, *rest in staff]
    return export(rows)  # type: ignore[arg-type]


def blank_lines(text: str, staff: list[Person], draw: st.DrawFn) -> str:
    eol = next((end for end in ("\r\n", "\n", "\r") if end in text), "\r\n")
    lines = text.split(eol)
    if len(lines) < 2:
        return text
    at = draw(st.lists(st.integers(1, len(lines) - 1), max_size=3))
    for i in sorted(at, reverse=True):
        lines.insert(i, "")
    return eol.join(lines)


def other_line_ends(text: str, staff: list[Person], draw: st.DrawFn) -> str:
    """LF, bare CR (old Mac), or a mix; with or without a line end after the last row."""
    eol = draw(st.sampled_from(["\n", "\r", "mixed"]))
    lines = text.removesuffix("\r\n").split("\r\n")
    if eol == "mixed":
        ends = [draw(st.sampled_from(["\n", "\r", "\r\n"])) for _ in lines]
        body = "".join(line + end for line, end in zip(lines, ends, strict=True))
    else:
        body = eol.join(lines) + eol
    return body if draw(st.booleans()) else body.rstrip("\r\n")


def split_cell(text: str, staff: list[Person], draw: st.DrawFn) -> str:
    """An unquoted comma inside a last name: that row has one cell too many."""
    i = draw(st.integers(0, len(staff) - 1))
    rows = list(staff)
    key, email, first, last = rows[i]
    out = export(rows)
    line = export([rows[i]]).split("\r\n")[1]
    return out.replace(line, f"{key},{email},{first.replace(',', ' ')},{last}, Sr")


TEXT_DAMAGE: list[TextDamage] = [nfd, lost_zeros, blank_lines, other_line_ends, split_cell]


def encode(text: str, draw: st.DrawFn) -> tuple[bytes, str]:
    """The text in an encoding an export might use (cp1252 only where it fits), and the
    encoding."""
    codec = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    try:
        return text.encode(codec), codec
    except UnicodeEncodeError:
        return text.encode("utf-8"), "utf-8"


def row_starts(text: str, staff: list[Person], codec: str) -> dict[str, int]:
    """The byte offset at which each person's row starts in `text` encoded with `codec`."""
    starts = {}
    for key, email, *_ in staff:
        at = max(text.find(email), text.find(unicodedata.normalize("NFD", email)))
        line = max(text.rfind("\n", 0, at), text.rfind("\r", 0, at)) + 1
        starts[key] = len(text[:line].encode(codec))
    return starts


@st.composite
def damaged(draw: st.DrawFn, staff: list[Person]) -> Damaged:
    """The clean export of `staff`, damaged in up to five ways."""
    text = export(staff)
    for damage in draw(st.lists(st.sampled_from(TEXT_DAMAGE), min_size=0, max_size=2)):
        text = damage(text, staff, draw)
    data, codec = encode(text, draw)
    present = frozenset(k for k, *_ in staff)
    if draw(st.booleans()):  # cut short anywhere: the rows begun before the cut are there
        at = draw(st.integers(1, len(data)))
        starts = row_starts(text, staff, codec)
        data, present = data[:at], frozenset(k for k in present if starts[k] < at)
    if draw(st.booleans()):  # a stray Latin-1 byte anywhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + bytes([draw(st.sampled_from([0xE9, 0xFC, 0xA0, 0x81]))]) + data[at:]
    return Damaged(data, present)


# --- the properties ---------------------------------------------------------------------

safety = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
lighter = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@safety
@given(st.data())
def test_a_damaged_full_export_never_archives_a_user_whose_row_is_present(
    data: st.DataObject,
) -> None:
    """However the export was damaged, every archived user is one whose row is gone."""
    staff = data.draw(people())
    stored = load(staff)
    file = data.draw(damaged(staff))
    plan = read_plan(file.data, stored)
    if plan is None:
        return  # rejected whole: nothing applied
    archived = set(plan.archives["key"].to_list())
    assert not archived & file.present, (archived & file.present, file.data)


@lighter
@given(st.data())
def test_an_undamaged_export_in_any_encoding_or_normal_form_changes_nothing(
    data: st.DataObject,
) -> None:
    """The same people in another encoding, normal form, BOM or line ends: every row
    matches its stored user unchanged, and nobody is created or archived."""
    staff = data.draw(people())
    stored = load(staff)
    text = export(staff)
    for damage in data.draw(st.lists(st.sampled_from([nfd, other_line_ends]), max_size=2)):
        text = damage(text, staff, data.draw)
    plan = read_plan(encode(text, data.draw)[0], stored)
    assert plan is not None
    assert (plan.creates.height, plan.updates.height, plan.archive_count) == (0, 0, 0)
    assert plan.counts.unchanged == len(staff)


@lighter
@given(st.data())
def test_the_errors_csv_sent_back_to_a_full_source_archives_nobody(data: st.DataObject) -> None:
    """An errors CSV holds only the rows that failed: applied as partial, it archives
    nobody, however few rows it has."""
    staff = data.draw(people())
    stored = load(staff)
    table = read_table(export(staff).encode(), read_options(PROFILE))
    failed = data.draw(st.lists(st.integers(2, len(staff) + 1), min_size=1, unique=True))
    errors = [RowError(row, "Email", "belongs to another user; fix it") for row in failed]
    sent_back = render_errors_csv(table, errors)
    plan = read_plan(sent_back, stored)
    assert plan is not None
    assert plan.mode == "partial"
    assert plan.archive_count == 0
