"""The changes of a job: one line per created, reactivated or archived user, one per changed
field, and never a password."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.core.changes import (
    CHANGE_COLUMNS,
    archived_users,
    missing_users,
    plan_changes,
    render_archived_csv,
    render_changes_csv,
)
from syncd.core.passwords import password_tags
from syncd.core.plan import Plan, build_plan, candidates
from syncd.core.profile import Mode
from syncd.errors import FileRejected
from tests.unit.test_plan import details, snapshot, user, validated
from tests.unit.test_plan_properties import File, State, imports, modes

SECRET = b"test-secret"
PASSWORD_FIELDS = ("email", "first_name", "groups", "password")


def planned(
    users: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    mode: Mode = "full",
    fields: tuple[str, ...] = ("email", "first_name", "groups"),
) -> tuple[Plan, pl.DataFrame, pl.DataFrame] | None:
    """Plan as a job does (details of the candidates only) and fetch, as the job is to,
    the emails of the users the changes need beside them; None when rejected."""
    v = validated(rows, fields)
    if "password" in fields:
        tags = password_tags(v.records["key"], v.records["password"], SECRET)
        v = replace(v, records=v.records.with_columns(tags))
    snap = snapshot(users)
    wanted = set(candidates(v.records, v.fields, snap).to_list())
    stored = details([u for u in users if u["user_id"] in wanted], fields)
    try:
        plan, _ = build_plan(v, snap, stored, mode=mode)
    except FileRejected:
        return None
    more = set(missing_users(plan, stored).to_list())
    extra = details([u for u in users if u["user_id"] in more], fields)
    return plan, stored, extra


def from_state(state: State, file: File, mode: Mode) -> tuple[Plan, pl.DataFrame] | None:
    result = planned(list(state.values()), list(file.rows), mode)
    if result is None:
        return None
    plan, stored, extra = result
    return plan, plan_changes(plan, stored, extra)


def lines(frame: pl.DataFrame, change: str) -> list[dict[str, str]]:
    return frame.filter(pl.col("change") == change).to_dicts()


props = settings(max_examples=80, deadline=None)


@props
@given(imports(), modes)
def test_every_user_a_plan_creates_reactivates_or_archives_is_listed_once(
    case: tuple[State, File], mode: Mode
) -> None:
    """Creates, reactivations and archives each appear on exactly one line of their kind,
    with the user's email whatever the planner fetched."""
    state, file = case
    result = from_state(state, file, mode)
    if result is None:
        return
    plan, changes = result
    assert changes.columns == list(CHANGE_COLUMNS)
    assert sorted(r["key"] for r in lines(changes, "create")) == sorted(plan.creates["key"])
    reactivated = plan.updates.filter(pl.col("reactivate"))["key"].to_list()
    assert sorted(r["key"] for r in lines(changes, "reactivate")) == sorted(reactivated)
    assert sorted(r["key"] for r in lines(changes, "archive")) == sorted(plan.archives["key"])
    stored = {u["key"]: u for u in state.values()}
    for line in lines(changes, "archive"):
        assert line["email"] == (stored[line["key"]]["email"] or "")


@props
@given(imports(), modes)
def test_every_changed_field_of_an_updated_user_is_one_line(
    case: tuple[State, File], mode: Mode
) -> None:
    """The (key, field) pairs of update and rename lines are exactly the plan's changes;
    an email change is a rename from the stored address to the new one."""
    state, file = case
    result = from_state(state, file, mode)
    if result is None:
        return
    plan, changes = result
    expected = sorted(
        (row["key"], field)
        for row in plan.updates.iter_rows(named=True)
        for field in row["changed"]
    )
    shown = [r for r in changes.to_dicts() if r["change"] in ("update", "rename")]
    assert sorted((r["key"], r["field"]) for r in shown) == expected
    stored = {u["key"]: u for u in state.values()}
    for row in plan.updates.filter(pl.col("email_changed")).iter_rows(named=True):
        (rename,) = [r for r in lines(changes, "rename") if r["key"] == row["key"]]
        assert (rename["old"], rename["new"]) == (stored[row["key"]]["email"], row["email"])


passwords = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=16)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["E1", "E2", "E3", "E4"]), passwords), unique_by=lambda t: t[0]
    ),
    st.lists(st.sampled_from(["E1", "E2", "E3"]), unique=True),
    modes,
)
def test_no_password_nor_its_tag_appears_in_the_changes(
    rows: list[tuple[str, str]], stored_keys: list[str], mode: Mode
) -> None:
    """A new or changed password is a `password` line with both values blank: neither the
    password nor its tag is anywhere in the frame or the CSV."""
    users = [
        user(i, key, email=f"{key.lower()}@x.com", fields=PASSWORD_FIELDS, password_tag="old-tag")
        for i, key in enumerate(stored_keys, start=1)
    ]
    file_rows = [
        {"key": key, "email": f"{key.lower()}@x.com", "password": secret} for key, secret in rows
    ]
    result = planned(users, file_rows, mode, PASSWORD_FIELDS)
    if result is None:
        return
    plan, stored, extra = result
    changes = plan_changes(plan, stored, extra)
    text = render_changes_csv(changes).decode("utf-8-sig")
    tags = plan.updates.get_column("password_tag").to_list() if plan.updates.height else []
    for _, secret in rows:
        assert secret not in text
    for tag in [*tags, "old-tag"]:
        assert tag is None or tag not in text
    for line in lines(changes, "update"):
        if line["field"] == "password":
            assert (line["old"], line["new"]) == ("", "")
    changed = {r["key"] for r in plan.updates.iter_rows(named=True) if "password" in r["changed"]}
    assert {r["key"] for r in lines(changes, "update") if r["field"] == "password"} == changed


def test_lists_are_shown_as_items_joined_by_a_comma_and_a_space() -> None:
    """Old and new groups read `A, B`, custom fields lose their `field:` prefix."""
    fields = ("email", "groups", "field:department")
    users = [user(1, "E1", fields=fields, groups=["A"], **{"field:department": "Sales"})]
    rows = [
        {
            "key": "E1",
            "email": "e1@example.com",
            "groups": ["A", "B"],
            "field:department": "Support",
        }
    ]
    result = planned(users, rows, "full", fields)
    assert result is not None
    changes = plan_changes(*result)
    assert changes.select("field", "old", "new").rows() == [
        ("groups", "A", "A, B"),
        ("department", "Sales", "Support"),
    ]
    assert set(changes["change"]) == {"update"}


def test_archived_users_say_why_and_reactivated_ones_go_from_archived_to_active() -> None:
    """Absent users, users whose row says Archived, and returning users, each with why."""
    users = [
        user(1, "E1"),
        user(2, "E2"),
        user(3, "E3", status="archived"),
        user(4, "E4"),
    ]
    rows = [
        {"key": "E1", "email": "e1@example.com"},
        {"key": "E2", "email": "e2@example.com", "status": "archived"},
        {"key": "E3", "email": "e3@example.com"},
    ]
    result = planned(users, rows)
    assert result is not None
    changes = plan_changes(*result)
    assert changes.select("change", "key", "field", "old", "new").rows() == [
        ("reactivate", "E3", "status", "archived", "active"),
        ("archive", "E2", "reason", "", "status Archived"),
        ("archive", "E4", "reason", "", "absent from the file"),
    ]
    assert archived_users(changes).rows() == [
        ("E2", "e2@example.com", "status Archived"),
        ("E4", "e4@example.com", "absent from the file"),
    ]


def test_a_file_that_changes_nothing_has_no_lines() -> None:
    """The same values again: an empty frame with the six columns, a CSV of one header."""
    users = [user(1, "E1", first_name="Ann")]
    result = planned(users, [{"key": "E1", "email": "e1@example.com", "first_name": "Ann"}])
    assert result is not None
    changes = plan_changes(*result)
    assert changes.height == 0
    assert changes.columns == list(CHANGE_COLUMNS)
    assert render_changes_csv(changes) == "\ufeffchange,key,email,field,old,new\r\n".encode()


def test_the_changes_csv_opens_in_a_spreadsheet_without_running_a_cell() -> None:
    """UTF-8 with a BOM, CRLF line ends, a formula in a value gets its leading `'`."""
    users = [user(1, "E1", first_name="Zoë")]
    rows = [{"key": "E1", "email": "e1@example.com", "first_name": '=HYPERLINK("x")'}]
    result = planned(users, rows)
    assert result is not None
    content = render_changes_csv(plan_changes(*result))
    assert content.startswith(b"\xef\xbb\xbf")
    assert content.endswith(b"\r\n")
    assert b"\n" not in content.replace(b"\r\n", b"")
    (header, line) = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert header == list(CHANGE_COLUMNS)
    assert line == ["update", "E1", "e1@example.com", "first_name", "Zoë", '\'=HYPERLINK("x")']


def test_the_archived_csv_lists_key_email_and_reason() -> None:
    """`<job_id>-archived.csv` has the same conventions as the changes CSV."""
    frame = pl.DataFrame({"key": ["E1"], "email": ["@odd"], "reason": ["absent from the file"]})
    assert render_archived_csv(frame) == (
        "\ufeffkey,email,reason\r\nE1,'@odd,absent from the file\r\n".encode()
    )


def test_missing_users_names_those_whose_email_the_planner_did_not_fetch() -> None:
    """Users archived for being absent are not compared, so their email is fetched apart."""
    users = [user(1, "E1", first_name="A"), user(2, "E2")]
    rows = [{"key": "E1", "email": "e1@example.com", "first_name": "B"}]
    v = validated(rows)
    snap = snapshot(users)
    stored = details([users[0]])
    plan, _ = build_plan(v, snap, stored, mode="full")
    assert missing_users(plan, stored).to_list() == [2]
    without = plan_changes(plan, stored)
    assert lines(without, "archive")[0]["email"] == ""
    extra = details([users[1]])
    assert lines(plan_changes(plan, stored, extra), "archive")[0]["email"] == "e2@example.com"
