"""The directory in the database: planner frames read back, and plans applied to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from syncd.core.counts import Counts
from syncd.core.plan import Plan
from syncd.core.refusals import email_hash
from syncd.store import apply as apply_module
from syncd.store import directory as directory_module
from syncd.store.apply import apply_plan
from syncd.store.directory import (
    LIST_FIELDS,
    SNAPSHOT_SCHEMA,
    details,
    directory_id,
    find_user,
    list_users,
    lock_directory,
    snapshot,
    user_ids_of,
)
from syncd.store.schema import groups, memberships, users

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)

UPDATE_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "changed": pl.List(pl.String),
    "reactivate": pl.Boolean(),
}


# Fingerprints are any signed 64-bit integer: the first rows get both ends of the range.
FINGERPRINTS = (-(2**63), 2**63 - 1)


def hashed(*emails: str) -> list[int]:
    """The snapshot's `email_hash` of each lower-case email."""
    return (
        pl.Series(emails, dtype=pl.String)
        .to_frame("e")
        .select(email_hash(pl.col("e")))["e"]
        .to_list()
    )


def _fingerprint(i: int) -> int:
    return FINGERPRINTS[i] if i < len(FINGERPRINTS) else i


def records(rows: list[dict[str, Any]], **dtypes: pl.DataType) -> pl.DataFrame:
    """A records frame (as validation makes it) with a fingerprint, from plain dicts."""
    schema: dict[str, pl.DataType] = {
        "_row": pl.UInt32(),
        "key": pl.String(),
        "status": pl.String(),
    }
    for row in rows:
        for name, value in row.items():
            if name not in schema:
                schema[name] = dtypes.get(name) or (
                    pl.List(pl.String) if isinstance(value, list) else pl.String()
                )
    filled = [
        {"_row": i + 2, "status": "active", "fingerprint": _fingerprint(i)} | r
        for i, r in enumerate(rows)
    ]
    return pl.DataFrame(filled, schema={**schema, "fingerprint": pl.Int64()})


def make_plan(
    creates: pl.DataFrame | None = None,
    updates: pl.DataFrame | None = None,
    refresh: pl.DataFrame | None = None,
    archives: pl.DataFrame | None = None,
) -> Plan:
    """A Plan as the planner builds it, with empty frames for what is not given."""
    return Plan(
        mode="full",
        fields=(),
        creates=creates if creates is not None else records([]),
        updates=updates
        if updates is not None
        else records([]).with_columns(
            pl.lit(None, dtype).alias(name) for name, dtype in UPDATE_COLUMNS.items()
        ),
        refresh=refresh
        if refresh is not None
        else pl.DataFrame(schema={"user_id": pl.Int64, "fingerprint": pl.Int64}),
        archives=archives
        if archives is not None
        else pl.DataFrame(schema={"user_id": pl.Int64, "key": pl.String, "reason": pl.String}),
        counts=Counts(),
        active_before=0,
    )


def with_ids(conn: Connection, frame: pl.DataFrame, directory: int, **extra: Any) -> pl.DataFrame:
    """Records of existing users as `updates` rows: their user_id joined on the key."""
    ids = snapshot(conn, directory).select("user_id", "key")
    out = frame.join(ids, on="key")
    defaults = {"changed": [], "reactivate": False} | extra
    return out.with_columns(
        pl.lit(value, UPDATE_COLUMNS.get(name)).alias(name) for name, value in defaults.items()
    )


def row_of(conn: Connection, key: str) -> dict[str, Any]:
    """The users row of `key`, as stored."""
    found = conn.execute(select(users).where(users.c.key == key)).one()
    return dict(found._mapping)


ANN = {
    "key": "e1",
    "employee_id": "e1",
    "email": "Ann.Lee@example.com",
    "first_name": "Ann",
    "last_name": "Lee",
    "display_name": "Ann Lee",
    "role": "Admin",
    "company_id": "C7",
    "groups": ["Sales", "Engineering"],
    "labels": ["Trial", "Demo", "Marketing"],
    "labels_id": ["17"],
    "source_usernames": ["slack:ann", "email:ann:lee"],
    "field:start_date": "2024-02-29",
    "field:remote": "true",
    "password": "secret1",
    "password_tag": "tag-ann",
}
BOB = {"key": "e2", "employee_id": "e2", "email": "bob@example.com", "status": "archived"}


def test_a_directory_is_created_once_and_found_by_name(conn: Connection) -> None:
    """directory_id creates a directory on first use and returns the same id after."""
    first = directory_id(conn, "hr")
    assert directory_id(conn, "hr") == first
    assert directory_id(conn, "other") != first


def test_the_snapshot_of_an_empty_directory_has_the_planner_columns(conn: Connection) -> None:
    """An empty directory still gives the snapshot frame with its documented schema."""
    frame = snapshot(conn, directory_id(conn, "hr"))
    assert frame.height == 0
    assert frame.schema == SNAPSHOT_SCHEMA


def test_created_users_read_back_with_every_field_type(conn: Connection) -> None:
    """Scalars, lists in file order, source usernames, custom fields and the password tag
    come back in the records' representation; an archived row is archived at `now`."""
    hr = directory_id(conn, "hr")
    apply_plan(
        conn,
        hr,
        make_plan(creates=records([ANN, BOB])),
        job_id="JOB01-AAAAA",
        now=T0,
        password_hashes={"e1": "$argon2id$v=19$hash"},
    )
    snap = snapshot(conn, hr).sort("key")
    assert snap.select("key", "email_hash", "active", "fingerprint").rows() == [
        ("e1", *hashed("ann.lee@example.com"), True, -(2**63)),
        ("e2", *hashed("bob@example.com"), False, 2**63 - 1),
    ]
    got = details(conn, hr, snap["user_id"]).sort("user_id").to_dicts()
    ann = {k: v for k, v in ANN.items() if k not in ("key", "password")}
    assert got[0] == {"user_id": snap["user_id"][0], **ann}
    assert got[1]["groups"] == []
    assert got[1]["first_name"] is None
    assert got[1]["field:start_date"] is None
    assert got[1]["password_tag"] is None
    stored = row_of(conn, "e1")
    assert stored["password_hash"] == "$argon2id$v=19$hash"
    assert (stored["created_at"], stored["updated_at"], stored["last_job_id"]) == (
        T0,
        T0,
        "JOB01-AAAAA",
    )
    assert stored["archived_at"] is None
    assert row_of(conn, "e2")["archived_at"] == T0


def test_details_gives_the_fields_asked_for_even_when_nobody_has_them(conn: Connection) -> None:
    """Asked-for custom fields nobody stores come back as null columns, in asked order."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([BOB])), job_id="J", now=T0)
    ids = snapshot(conn, hr)["user_id"]
    got = details(conn, hr, ids, fields=["email", "field:dept", "groups", "status"])
    assert got.columns == ["user_id", "email", "field:dept", "groups", "status", "password_tag"]
    assert got.row(0)[1:] == ("bob@example.com", None, [], "archived", None)


def test_details_of_many_users_reads_the_directory_in_one_scan(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the IN-list threshold details scans the directory and keeps only those asked."""
    monkeypatch.setattr(directory_module, "_SCAN_ABOVE", 1)
    hr = directory_id(conn, "hr")
    people = [{"key": f"k{i}", "groups": [f"G{i}"], "field:n": str(i)} for i in range(5)]
    apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J", now=T0)
    other = directory_id(conn, "other")
    apply_plan(conn, other, make_plan(creates=records(people[:1])), job_id="J", now=T0)
    snap = snapshot(conn, hr).sort("key")
    got = details(conn, hr, snap["user_id"][1:3]).sort("user_id")
    assert got.select("groups", "field:n").rows() == [(["G1"], "1"), (["G2"], "2")]


@pytest.mark.parametrize(("wanted", "scanned"), [(2, False), (3, True)])
def test_details_scan_the_directory_only_for_a_share_of_its_users(
    conn: Connection, monkeypatch: pytest.MonkeyPatch, wanted: int, scanned: bool
) -> None:
    """Knowing the directory's size, details scans it only for more than a quarter of
    its users (a scan reads every user; 55,000 of 5,000,000 took 15 s so, against 0.6 s
    looked up); fewer are looked up by id. Either way the same users come back."""
    monkeypatch.setattr(directory_module, "_SCAN_ABOVE", 1)
    scans: list[int] = []
    real_scan = directory_module._scan

    def counted_scan(*args: Any, **kwargs: Any) -> pl.DataFrame:
        scans.append(1)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(directory_module, "_scan", counted_scan)
    hr = directory_id(conn, "hr")
    people = [{"key": f"k{i}", "groups": [f"G{i}"], "field:n": str(i)} for i in range(10)]
    apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J", now=T0)
    snap = snapshot(conn, hr).sort("key")
    scans.clear()
    got = details(conn, hr, snap["user_id"][:wanted], population=snap.height).sort("user_id")
    assert got.select("groups", "field:n").rows() == [([f"G{i}"], str(i)) for i in range(wanted)]
    # The users, then each of their lists, all read the same way.
    assert len(scans) == (1 + len(LIST_FIELDS) if scanned else 0)


def test_an_update_writes_only_the_changed_columns(conn: Connection) -> None:
    """Columns outside `changed` keep their stored value even if the record differs."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([ANN])), job_id="J1", now=T0)
    conn.execute(update(users).values(first_name="Set by hand"))
    new = records([ANN | {"first_name": "Annie", "last_name": "Lee-Park", "role": None}])
    updates = with_ids(conn, new, hr, changed=["last_name", "role"])
    apply_plan(conn, hr, make_plan(updates=updates), job_id="J2", now=T1)
    stored = row_of(conn, "e1")
    assert (stored["first_name"], stored["last_name"], stored["role"]) == (
        "Set by hand",
        "Lee-Park",
        None,
    )
    assert (stored["created_at"], stored["updated_at"], stored["last_job_id"]) == (T0, T1, "J2")


def test_list_and_custom_fields_are_rewritten_only_where_they_changed(conn: Connection) -> None:
    """A changed list replaces the stored one; a blanked custom field is removed; the
    lists of fields not in `changed` stay as they were."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([ANN])), job_id="J1", now=T0)
    new = records([ANN | {"groups": ["Support"], "labels": [], "field:remote": None}])
    updates = with_ids(conn, new, hr, changed=["groups", "field:remote"])
    apply_plan(conn, hr, make_plan(updates=updates), job_id="J2", now=T1)
    got = details(conn, hr, snapshot(conn, hr)["user_id"]).row(0, named=True)
    assert got["groups"] == ["Support"]
    assert got["labels"] == ANN["labels"]
    assert "field:remote" not in got  # nobody has it any more
    assert got["field:start_date"] == "2024-02-29"
    names = conn.scalars(select(groups.c.name).order_by(groups.c.name)).all()
    assert names == ["Engineering", "Sales", "Support"]


def test_a_new_password_stores_its_hash_and_tag(conn: Connection) -> None:
    """`password` in changed stores the given argon2 hash and the record's password_tag."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([BOB])), job_id="J1", now=T0)
    new = records([BOB | {"password": "another1", "password_tag": "tag-2"}])
    updates = with_ids(conn, new, hr, changed=["password"])
    apply_plan(
        conn,
        hr,
        make_plan(updates=updates),
        job_id="J2",
        now=T1,
        password_hashes={"e2": "$argon2id$new"},
    )
    stored = row_of(conn, "e2")
    assert (stored["password_hash"], stored["password_tag"]) == ("$argon2id$new", "tag-2")


def test_users_trading_emails_in_one_job_are_applied(conn: Connection) -> None:
    """Two users swapping addresses do not trip the unique email constraint midway."""
    hr = directory_id(conn, "hr")
    a = {"key": "a", "email": "a@example.com"}
    b = {"key": "b", "email": "b@example.com"}
    apply_plan(conn, hr, make_plan(creates=records([a, b])), job_id="J1", now=T0)
    swapped = records([a | {"email": "B@example.com"}, b | {"email": "a@example.com"}])
    updates = with_ids(conn, swapped, hr, changed=["email"])
    apply_plan(conn, hr, make_plan(updates=updates), job_id="J2", now=T1)
    got = dict(snapshot(conn, hr).select("key", "email_hash").rows())
    assert got == dict(zip("ab", hashed("b@example.com", "a@example.com"), strict=True))
    assert row_of(conn, "b")["email_lc"] == "a@example.com"
    assert row_of(conn, "a")["email"] == "B@example.com"


def test_archives_mark_only_the_named_users_archived(conn: Connection) -> None:
    """Archived users get status archived and archived_at; the others are not written."""
    hr = directory_id(conn, "hr")
    people = [{"key": "a"}, {"key": "b"}]
    apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J1", now=T0)
    target = snapshot(conn, hr).filter(pl.col("key") == "a")
    archives = target.select("user_id", "key", reason=pl.lit("absent"))
    apply_plan(conn, hr, make_plan(archives=archives), job_id="J2", now=T1)
    a, b = row_of(conn, "a"), row_of(conn, "b")
    assert (a["status"], a["archived_at"], a["updated_at"], a["last_job_id"]) == (
        "archived",
        T1,
        T1,
        "J2",
    )
    assert (b["status"], b["updated_at"], b["last_job_id"]) == ("active", T0, "J1")


def test_a_reactivated_user_is_active_again_without_archived_at(conn: Connection) -> None:
    """`reactivate` sets status active and clears archived_at, even with no field change."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([BOB])), job_id="J1", now=T0)
    back = records([BOB | {"status": "active"}])
    apply_plan(
        conn,
        hr,
        make_plan(updates=with_ids(conn, back, hr, reactivate=True)),
        job_id="J2",
        now=T1,
    )
    stored = row_of(conn, "e2")
    assert (stored["status"], stored["archived_at"], stored["last_job_id"]) == (
        "active",
        None,
        "J2",
    )


def test_a_refresh_writes_only_the_fingerprint(conn: Connection) -> None:
    """A stale fingerprint is replaced without touching updated_at or last_job_id."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([ANN])), job_id="J1", now=T0)
    refresh = snapshot(conn, hr).select("user_id", fingerprint=pl.lit(-42, pl.Int64))
    apply_plan(conn, hr, make_plan(refresh=refresh), job_id="J2", now=T1)
    stored = row_of(conn, "e1")
    assert (stored["fingerprint"], stored["updated_at"], stored["last_job_id"]) == (
        -42,
        T0,
        "J1",
    )


def test_an_empty_plan_writes_nothing(conn: Connection) -> None:
    """A plan with nothing to do leaves every user as it was."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([ANN, BOB])), job_id="J1", now=T0)
    apply_plan(conn, hr, make_plan(), job_id="J2", now=T1)
    assert conn.scalar(select(func.max(users.c.updated_at))) == T0
    assert conn.scalar(select(func.count()).select_from(memberships)) == 2


def test_users_list_and_show_give_the_json_fields(conn: Connection) -> None:
    """list_users filters by status; find_user matches email in any case or the key."""
    hr = directory_id(conn, "hr")
    apply_plan(conn, hr, make_plan(creates=records([ANN, BOB])), job_id="J1", now=T0)
    assert [u.key for u in list_users(conn)] == ["e1", "e2"]
    assert [u.key for u in list_users(conn, hr, status="archived")] == ["e2"]
    assert list_users(conn, limit=1)[0].key == "e1"
    (ann,) = find_user(conn, "ANN.LEE@example.com")
    assert find_user(conn, " e1 ") == [ann]
    shown = ann.as_json()
    assert shown["groups"] == ["Sales", "Engineering"]
    assert shown["source_usernames"] == ["slack:ann", "email:ann:lee"]
    assert shown["fields"] == {"remote": "true", "start_date": "2024-02-29"}
    assert shown["directory"] == "hr"
    assert shown["created_at"] == T0.isoformat()
    assert find_user(conn, "nobody@example.com") == []


def test_a_locked_directory_makes_a_second_job_wait(engine: Engine) -> None:
    """While one transaction holds a directory's lock another cannot take it; after its
    commit the other gets the same directory."""
    with engine.connect() as one, one.begin():
        held = lock_directory(one, "hr")
        with engine.connect() as two, two.begin():
            if two.dialect.name == "postgresql":
                two.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
            else:
                two.exec_driver_sql("PRAGMA busy_timeout = 200")
            with pytest.raises(OperationalError):
                lock_directory(two, "hr")
    with engine.connect() as two, two.begin():
        assert lock_directory(two, "hr") == held


def test_custom_fields_are_stored_as_one_json_object_without_blanks(conn: Connection) -> None:
    """A user's custom values are one JSON object in `fields`; a blank cell stores
    nothing, and a user with no values stores NULL."""
    hr = directory_id(conn, "hr")
    people = [
        {"key": "a", "field:dept": 'R&D "labs"', "field:floor": None},
        {"key": "b", "field:dept": None, "field:floor": None},
    ]
    apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J", now=T0)
    assert json.loads(row_of(conn, "a")["fields"]) == {"dept": 'R&D "labs"'}
    assert row_of(conn, "b")["fields"] is None


# Field names and values as a profile and a file may give them: quotes, backslashes,
# control characters, non-ASCII, text that looks like JSON. (Polars' strings cannot hold
# lone surrogates.)
_TEXT = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from('",:{}\\'), max_size=12)
_CUSTOM_ROWS = st.lists(
    st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True
).flatmap(
    lambda names: st.tuples(
        st.just(names),
        st.lists(st.tuples(*(st.none() | _TEXT for _ in names)), min_size=1, max_size=6),
    )
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=_CUSTOM_ROWS)
def test_any_custom_values_are_stored_as_the_json_object_of_the_non_blank_ones(
    conn: Connection, case: tuple[list[str], list[tuple[str | None, ...]]]
) -> None:
    """Whatever the field names and values, and whichever of them are blank, a created
    user's `fields` reads back as exactly its non-blank values by name, and NULL when it
    has none."""
    names, rows = case
    hr = directory_id(conn, "hr")
    values = [{f"field:{n}": v for n, v in zip(names, row, strict=True)} for row in rows]
    people = [{"key": f"u{i}", **fields} for i, fields in enumerate(values)]
    nested = conn.begin_nested()  # each example starts from an empty directory
    try:
        apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J", now=T0)
        for i, fields in enumerate(values):
            stored = row_of(conn, f"u{i}")["fields"]
            want = {n.removeprefix("field:"): v for n, v in fields.items() if v is not None}
            assert (json.loads(stored) if stored is not None else None) == (want or None)
    finally:
        nested.rollback()


def test_changing_some_custom_fields_keeps_the_others(conn: Connection) -> None:
    """An update merges the changed custom fields into the stored ones (as partial mode
    needs): a changed value replaces, a blanked one goes, fields not in `changed` keep
    their value even when the row differs, and no values left stores NULL."""
    hr = directory_id(conn, "hr")
    first = {"key": "a", "field:dept": "Sales", "field:floor": "3", "field:desk": "12"}
    alone = {"key": "b", "field:dept": "IT"}
    apply_plan(conn, hr, make_plan(creates=records([first, alone])), job_id="J1", now=T0)
    changed = first | {"field:dept": "Legal", "field:floor": None, "field:desk": "99"}
    updates = with_ids(conn, records([changed]), hr, changed=["field:dept", "field:floor"])
    blanked = with_ids(conn, records([{"key": "b", "field:dept": None}]), hr)
    blanked = blanked.with_columns(changed=pl.lit(["field:dept"], pl.List(pl.String)))
    both = pl.concat([updates, blanked], how="diagonal_relaxed")
    apply_plan(conn, hr, make_plan(updates=both), job_id="J2", now=T1)
    assert json.loads(row_of(conn, "a")["fields"]) == {"dept": "Legal", "desk": "12"}
    assert row_of(conn, "b")["fields"] is None
    got = details(conn, hr, snapshot(conn, hr)["user_id"], ["field:dept", "field:desk"])
    assert sorted(got.select("field:dept", "field:desk").rows(), key=str) == [
        ("Legal", "12"),
        (None, None),
    ]


def test_a_first_load_into_an_empty_directory_keeps_every_constraint(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creates loaded with the tables alone (in slices, unique indexes and primary keys
    built after the rows, shared values as defaults) read back with their lists, custom
    fields and shared values; the indexes and keys are back and refuse duplicates, the
    defaults are gone."""
    monkeypatch.setattr(apply_module, "_LOAD_ALONE_FROM", 1)
    monkeypatch.setattr(apply_module, "_SLICE", 2)
    hr = directory_id(conn, "hr")
    people = [
        {"key": f"k{i}", "email": f"P{i}@example.com", "groups": [f"G{i % 2}", "All"]}
        | {"field:n": str(i) if i % 2 else None}
        for i in range(5)
    ]
    apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J", now=T0)
    snap = snapshot(conn, hr).sort("key")
    assert snap["email_hash"].to_list() == hashed(*(f"p{i}@example.com" for i in range(5)))
    got = details(conn, hr, snap["user_id"]).sort("user_id")
    assert got["groups"].to_list() == [[f"G{i % 2}", "All"] for i in range(5)]
    assert got["field:n"].to_list() == [None, "1", None, "3", None]
    assert snap["user_id"].n_unique() == 5
    stored = row_of(conn, "k3")
    assert (stored["directory_id"], stored["created_at"], stored["updated_at"]) == (hr, T0, T0)
    assert stored["last_job_id"] == "J"
    row = {"directory_id": hr, "status": "active", "created_at": T0, "updated_at": T0}
    for clash in (
        {"key": "k0", "email_lc": "new@example.com"},
        {"key": "new", "email_lc": "p1@example.com"},
    ):
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(insert(users).values(row | clash))
    no_created_at = {k: v for k, v in row.items() if k != "created_at"} | {"key": "new"}
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert(users).values(no_created_at))
    first = stored["id"]
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert(users).values(row | {"id": first, "key": "new"}))
    member = conn.execute(select(memberships).where(memberships.c.user_id == first)).first()
    assert member is not None
    with pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert(memberships).values(member._asdict() | {"position": 9}))


def test_a_snapshot_read_in_ranges_has_the_directory_and_only_it(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read a few ids at a time, the snapshot still has every user of the directory and
    none of another directory whose users lie in between."""
    monkeypatch.setattr(directory_module, "_SCAN_IDS", 2)
    hr, other = directory_id(conn, "hr"), directory_id(conn, "other")
    for i in range(3):
        for directory in (hr, other):
            person = records([{"key": f"k{i}", "email": f"k{i}.{directory}@example.com"}])
            apply_plan(conn, directory, make_plan(creates=person), job_id="J", now=T0)
    snap = snapshot(conn, hr)
    got = snap.sort("key")["email_hash"].to_list()
    assert got == hashed(*(f"k{i}.{hr}@example.com" for i in range(3)))
    assert snap.schema == SNAPSHOT_SCHEMA


def test_details_of_more_users_than_an_in_list_holds_reads_them_all(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the IN-list size the ids go through a staged table: every user asked for,
    with lists and custom fields, and nobody else."""
    monkeypatch.setattr(directory_module, "_IN_CHUNK", 2)
    hr = directory_id(conn, "hr")
    people = [{"key": f"k{i}", "labels": [f"L{i}"], "field:n": str(i)} for i in range(6)]
    apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J", now=T0)
    snap = snapshot(conn, hr).sort("key")
    got = details(conn, hr, snap["user_id"][1:5]).sort("user_id")
    assert got.select("labels", "field:n").rows() == [([f"L{i}"], str(i)) for i in range(1, 5)]


@pytest.mark.parametrize("in_list", [100, 2])
def test_user_ids_are_found_by_key_in_the_directory_only(
    conn: Connection, monkeypatch: pytest.MonkeyPatch, in_list: int
) -> None:
    """Keys map to their users' ids, through an IN list or a staged table alike; a key
    of another directory or of nobody maps to nothing."""
    monkeypatch.setattr(directory_module, "_IN_CHUNK", in_list)
    hr, other = directory_id(conn, "hr"), directory_id(conn, "other")
    people = [{"key": f"k{i}"} for i in range(4)]
    apply_plan(conn, hr, make_plan(creates=records(people)), job_id="J", now=T0)
    apply_plan(conn, other, make_plan(creates=records([{"key": "x"}])), job_id="J", now=T0)
    keys = pl.Series("key", ["k1", "k3", "x", "nobody"])
    got = dict(user_ids_of(conn, hr, keys).rows())
    expected = dict(snapshot(conn, hr).select("key", "user_id").rows())
    assert got == {"k1": expected["k1"], "k3": expected["k3"]}
