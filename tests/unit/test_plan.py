"""The planner: fingerprints, candidates and each branch of build_plan."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.core.passwords import password_tags
from syncd.core.plan import (
    FINGERPRINT_VERSION,
    NothingValid,
    Plan,
    build_plan,
    candidates,
    fingerprint,
    fingerprint_before,
    match,
    slim_snapshot,
)
from syncd.core.profile import Mode
from syncd.core.records import Validated
from syncd.core.table import ROW, RawTable, RowError, chunked_like
from syncd.errors import FileRejected

LISTS = frozenset({"groups", "labels", "labels_id", "source_usernames"})
FIELDS = ("email", "first_name", "groups")
EMAIL_HEADER = "Primary Email"


def records(rows: Sequence[Mapping[str, Any]], fields: Sequence[str] = FIELDS) -> pl.DataFrame:
    """A records frame as validation makes it; rows are numbered from 2 unless given."""
    schema: dict[str, pl.DataType] = {ROW: pl.UInt32(), "key": pl.String(), "status": pl.String()}
    for name in fields:
        schema[name] = pl.List(pl.String()) if name in LISTS else pl.String()
    if any("password_tag" in r for r in rows):
        schema["password_tag"] = pl.String()
    data = [
        {k: r.get(k) for k in schema}
        | {ROW: r.get(ROW, i + 2), "status": r.get("status", "active")}
        for i, r in enumerate(rows)
    ]
    return pl.DataFrame(data, schema=schema)


def validated(
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[str] = FIELDS,
    *,
    invalid_keys: Iterable[str] = (),
    unreadable: int = 0,
) -> Validated:
    """A Validated of `rows`; invalid rows (keyed and unkeyed) are numbered after them."""
    recs = records(rows, fields)
    bad_keys = tuple(invalid_keys)
    first_bad = (max(recs[ROW].to_list()) if recs.height else 1) + 1
    bad_rows = range(first_bad, first_bad + len(bad_keys) + unreadable)
    all_rows = [*recs[ROW].to_list(), *bad_rows]
    table = RawTable(
        header=("h",),
        cells=pl.DataFrame({ROW: all_rows}, schema={ROW: pl.UInt32()}),
        encoding="utf-8",
        delimiter=",",
        has_header=True,
    )
    return Validated(
        table=table,
        records=recs,
        fields=tuple(fields),
        errors=tuple(RowError(r, "h", "is wrong") for r in bad_rows),
        invalid_keys=bad_keys,
        unreadable_keys=unreadable,
        headers={"email": EMAIL_HEADER},
    )


def user(
    user_id: int, key: str, *, status: str = "active", fields: Sequence[str] = FIELDS, **values: Any
) -> dict[str, Any]:
    """A stored user whose fingerprint is the one a record of its values would have."""
    values.setdefault("email", f"{key.lower()}@example.com")
    stored = {"user_id": user_id, "key": key, "status": status, **values}
    row = {"key": key, **{k: v for k, v in values.items() if k != "password_tag"}}
    stored.setdefault("fingerprint", fingerprint(records([row], fields), fields)[0])
    return stored


def snapshot(users: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """The snapshot frame of the store for these users."""
    read = pl.DataFrame(
        [
            {
                "user_id": u["user_id"],
                "key": u["key"],
                "email_lc": None if u.get("email") is None else u["email"].lower(),
                "status": u["status"],
                "fingerprint": u.get("fingerprint"),
            }
            for u in users
        ],
        schema={
            "user_id": pl.Int64(),
            "key": pl.String(),
            "email_lc": pl.String(),
            "status": pl.String(),
            "fingerprint": pl.Int64(),
        },
    )
    return slim_snapshot(read)


def details(users: Sequence[Mapping[str, Any]], fields: Sequence[str] = FIELDS) -> pl.DataFrame:
    """The details frame of the store for these users."""
    schema: dict[str, pl.DataType] = {"user_id": pl.Int64()}
    for name in fields:
        schema[name] = pl.List(pl.String()) if name in LISTS else pl.String()
    schema["password_tag"] = pl.String()
    return pl.DataFrame([{k: u.get(k) for k in schema} for u in users], schema=schema)


def plan_for(
    v: Validated, users: Sequence[Mapping[str, Any]], mode: Mode = "full"
) -> tuple[Plan, tuple[RowError, ...]]:
    """Plan as the job does: details only for the users candidates() names."""
    snap = snapshot(users)
    wanted = set(candidates(v.records, v.fields, snap).to_list())
    return build_plan(
        v, snap, details([u for u in users if u["user_id"] in wanted], v.fields), mode=mode
    )


def one(frame: pl.DataFrame) -> dict[str, Any]:
    assert frame.height == 1, frame
    return frame.row(0, named=True)


# fingerprint


def test_fingerprint_is_the_same_for_the_same_values_and_a_signed_64_bit_integer() -> None:
    """Equal values (lists in any order) give equal fingerprints, as Int64 (a BIGINT)."""
    a = records([{"key": "E1", "email": "a@x.com", "groups": ["S", "E"]}])
    b = records([{"key": "E1", "email": "a@x.com", "groups": ["E", "S"]}])
    assert fingerprint(a, FIELDS)[0] == fingerprint(b, FIELDS)[0]
    assert fingerprint(a, FIELDS).dtype == pl.Int64


def test_fingerprint_of_another_version_never_equals_this_ones() -> None:
    """The version seeds the hash: the same values under another version (an older
    algorithm, another polars) give another fingerprint, for every row, so what an older
    syncd stored is stale, never taken for equal. The version is part of it too."""
    rows = [
        {"key": f"E{i}", "email": f"u{i}@x.com", "first_name": name, "groups": groups}
        for i, (name, groups) in enumerate(
            [(n, g) for n in (None, "", "Ann", "Bo") for g in (None, [], ["A"], ["B", "A"])]
        )
    ]
    frame = records(rows)
    ours = fingerprint(frame, FIELDS)
    assert FINGERPRINT_VERSION.endswith(pl.__version__)
    for version in ("f1-" + pl.__version__, "f2-0.20.31", FINGERPRINT_VERSION + "x", ""):
        theirs = fingerprint(frame, FIELDS, version=version)
        assert theirs.n_unique() == ours.n_unique() == frame.height
        assert not (theirs == ours).any(), version


def test_fingerprint_tells_a_blank_cell_from_an_empty_string() -> None:
    """Null and "" hash differently, and so do an empty list and a null list."""
    frame = records(
        [
            {"key": "1", "first_name": None},
            {"key": "2", "first_name": ""},
            {"key": "3", "first_name": "x", "groups": []},
            {"key": "4", "first_name": "x", "groups": None},
        ]
    )
    assert fingerprint(frame, FIELDS).n_unique() == 4


def test_fingerprint_depends_on_field_names_not_only_values() -> None:
    """The same value under another field name gives another fingerprint."""
    frame = records([{"key": "1", "first_name": "Ann", "last_name": None}], ["first_name"])
    other = frame.rename({"first_name": "last_name"})
    assert fingerprint(frame, ["first_name"])[0] != fingerprint(other, ["last_name"])[0]


def test_fingerprint_cannot_be_fooled_by_moving_text_between_fields() -> None:
    """Values are length-prefixed, so "ab"+"c" and "a"+"bc" differ."""
    frame = records(
        [
            {"key": "1", "first_name": "ab", "email": "c"},
            {"key": "2", "first_name": "a", "email": "bc"},
        ]
    )
    assert fingerprint(frame, FIELDS).n_unique() == 2


def test_fingerprint_leaves_out_password_and_status() -> None:
    """A new password or status does not change the fingerprint."""
    fields = (*FIELDS, "password")
    a = records([{"key": "1", "password": "secret1", "status": "active"}], fields)
    b = records([{"key": "1", "password": "other22", "status": "archived"}], fields)
    assert fingerprint(a, fields)[0] == fingerprint(b, fields)[0]


# candidates


def test_matched_rows_come_chunked_like_the_records_with_the_same_values() -> None:
    """The parser's records come in many chunks and the join's columns in one; matched,
    every column is cut like the records (so a filter of it copies only what it keeps),
    and holds what the plain join holds."""
    users = [user(i, f"E{i}", first_name=f"N{i}") for i in range(1, 8)]
    rows = [{"key": f"E{i}", "email": f"e{i}@example.com", "first_name": f"N{i}"} for i in (3, 9)]
    rows += [{"key": f"E{i}", "email": f"e{i}@example.com", "first_name": "X"} for i in (1, 2, 5)]
    whole = records(rows)
    parts = pl.concat([whole.slice(0, 2), whole.slice(2, 1), whole.slice(3, 2)], rechunk=False)
    assert parts[ROW].chunk_lengths() == [2, 1, 2]
    fingerprints = fingerprint(parts, FIELDS)
    matched = match(parts, snapshot(users), fingerprints)
    assert {tuple(matched[c].chunk_lengths()) for c in matched.columns} == {(2, 1, 2)}
    assert matched.equals(match(whole, snapshot(users), fingerprint(whole, FIELDS)))
    assert matched["user_id"].to_list() == [3, None, 1, 2, 5]


def _cuts(total: int) -> st.SearchStrategy[list[int]]:
    """Chunk lengths adding up to `total` (none for an empty column)."""
    if total == 0:
        return st.just([])
    points = (
        st.lists(st.integers(1, total - 1), unique=True, max_size=6) if total > 1 else st.just([])
    )
    return points.map(
        lambda p: [b - a for a, b in zip([0, *sorted(p)], [*sorted(p), total], strict=True)]
    )


@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30).flatmap(
        lambda v: st.tuples(st.just(v), _cuts(len(v)), _cuts(len(v)))
    )
)
def test_a_column_is_cut_like_any_other_without_changing_a_value(
    case: tuple[list[int], list[int], list[int]],
) -> None:
    """`chunked_like`, for any chunking of the column and any wanted one: the same
    values, in the wanted chunks (one chunk for an empty or one-chunk target)."""
    values, held, wanted = case
    column = pl.Series("v", values, pl.Int64)
    if held:
        starts = [sum(held[:i]) for i in range(len(held))]
        column = pl.concat(
            [column.slice(a, n) for a, n in zip(starts, held, strict=True)], rechunk=False
        )
    cut = chunked_like(column, wanted)
    assert cut.to_list() == values
    assert cut.chunk_lengths() == (wanted if len(wanted) > 1 else [len(values)])


@pytest.mark.parametrize("stored", [["E1"], ["E1", "E3", "E5"]], ids=["a new key", "stored keys"])
def test_keys_whose_hashes_collide_are_still_matched_by_the_keys_themselves(
    stored: list[str],
) -> None:
    """Keys are matched on a 64-bit hash and each match checked: were two keys to share
    a hash (here: every key of one length does), the records are matched on the keys'
    text instead, so a new key never takes a stored user, nor a user another's row."""
    users = [user(int(k[1:]), k) for k in stored]
    recs = records([{"key": k, "email": f"{k.lower()}@example.com"} for k in ("E2", "E3", "E1")])
    fingerprints = fingerprint(recs, FIELDS)

    def by_length(key: pl.Expr) -> pl.Expr:
        return key.str.len_bytes().cast(pl.UInt64)

    expected = match(recs, snapshot(users), fingerprints)
    collided = match(recs, snapshot(users), fingerprints, key_hash=by_length)
    assert collided.equals(expected)
    assert collided["user_id"].to_list() == [
        int(k[1:]) if k in stored else None for k in ("E2", "E3", "E1")
    ]


_KEYS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=6)


@settings(max_examples=200)
@given(
    st.lists(_KEYS, max_size=12, unique=True),
    st.lists(_KEYS, max_size=12, unique=True),
    st.sampled_from(["the hash", "a colliding hash"]),
)
def test_matching_on_the_key_hash_finds_exactly_the_users_of_equal_keys(
    stored: list[str], read: list[str], hashing: str
) -> None:
    """Any keys (any script, any normal form: "é" composed and decomposed are two keys
    here, as they are to the database): each record gets the stored user of the key equal
    to its own, or none, in the records' order; whether the hashes collide or not."""
    users = [user(i + 1, key) for i, key in enumerate(stored)]
    recs = records([{"key": key, "email": f"r{i}@example.com"} for i, key in enumerate(read)])

    def by_length(key: pl.Expr) -> pl.Expr:
        return key.str.len_bytes().cast(pl.UInt64)

    fingerprints = fingerprint(recs, FIELDS)
    if hashing == "a colliding hash":
        matched = match(recs, snapshot(users), fingerprints, key_hash=by_length)
    else:
        matched = match(recs, snapshot(users), fingerprints)
    ids = {key: i + 1 for i, key in enumerate(stored)}
    assert matched["key"].to_list() == read
    assert matched["user_id"].to_list() == [ids.get(key) for key in read]


def test_candidates_are_empty_when_the_file_matches_the_directory() -> None:
    """A re-import of unchanged users needs no details at all."""
    users = [user(1, "E1", first_name="Ann"), user(2, "E2", first_name="Bo")]
    recs = records(
        [
            {"key": "E1", "email": "e1@example.com", "first_name": "Ann"},
            {"key": "E2", "email": "e2@example.com", "first_name": "Bo"},
        ]
    )
    assert candidates(recs, FIELDS, snapshot(users)).to_list() == []


def test_candidates_name_changed_users_and_users_without_a_fingerprint() -> None:
    """A differing or missing stored fingerprint asks for details; new keys do not."""
    users = [user(1, "E1"), user(2, "E2", fingerprint=None), user(3, "E3")]
    recs = records(
        [
            {"key": "E1", "email": "e1@example.com", "first_name": "New"},
            {"key": "E2", "email": "e2@example.com"},
            {"key": "E3", "email": "e3@example.com"},
            {"key": "E9", "email": "e9@example.com"},
        ]
    )
    assert candidates(recs, FIELDS, snapshot(users)).to_list() == [1, 2]


def test_candidates_name_the_holder_of_an_email_another_key_claims() -> None:
    """A user whose email a record of another key uses is a candidate (conflict or swap)."""
    users = [user(1, "E1"), user(2, "E2")]
    recs = records(
        [{"key": "E1", "email": "e1@example.com"}, {"key": "E9", "email": "E2@example.com"}]
    )
    assert candidates(recs, FIELDS, snapshot(users)).to_list() == [2]


def test_candidates_name_matched_users_whose_row_carries_a_password() -> None:
    """Only the stored tag tells whether a password changed, so those users need details."""
    users = [user(1, "E1"), user(2, "E2")]
    recs = records(
        [
            {"key": "E1", "email": "e1@example.com", "password_tag": "t"},
            {"key": "E2", "email": "e2@example.com", "password_tag": None},
        ]
    )
    assert candidates(recs, FIELDS, snapshot(users)).dtype == pl.Int64
    assert candidates(recs, FIELDS, snapshot(users)).to_list() == [1]


# creates, status changes


def test_an_unknown_key_is_created() -> None:
    """A row without a stored user becomes a create with its fingerprint."""
    v = validated([{"key": "E1", "email": "a@x.com"}])
    plan, errors = plan_for(v, [])
    assert errors == ()
    assert one(plan.creates)["email"] == "a@x.com"
    assert one(plan.creates)["fingerprint"] == fingerprint(v.records, FIELDS)[0]
    assert (plan.counts.created, plan.counts.archived, plan.counts.valid) == (1, 0, 1)


def test_an_archived_row_with_an_unknown_key_creates_an_archived_user() -> None:
    """Importing history: the user is created archived and counted as archived."""
    plan, _ = plan_for(validated([{"key": "E1", "email": "a@x.com", "status": "archived"}]), [])
    assert one(plan.creates)["status"] == "archived"
    assert (plan.counts.created, plan.counts.archived) == (0, 1)
    assert plan.archive_count == 0


def test_an_archived_user_in_an_active_row_is_reactivated_even_with_changes() -> None:
    """Reactivation wins over update in the counts; the update row says reactivate."""
    users = [user(1, "E1", status="archived", first_name="Ann")]
    v = validated([{"key": "E1", "email": "e1@example.com", "first_name": "Anna"}])
    plan, _ = plan_for(v, users)
    row = one(plan.updates)
    assert (row["reactivate"], row["changed"]) == (True, ["first_name"])
    assert (plan.counts.reactivated, plan.counts.updated) == (1, 0)


def test_an_unchanged_archived_user_in_an_active_row_is_still_reactivated() -> None:
    """Reactivation is an update row even when no field changes."""
    users = [user(1, "E1", status="archived")]
    plan, _ = plan_for(validated([{"key": "E1", "email": "e1@example.com"}]), users)
    assert one(plan.updates)["reactivate"] is True
    assert plan.counts.reactivated == 1


def test_an_archived_row_archives_its_active_user() -> None:
    """Status Archived archives the user (reason status), counted as archived."""
    users = [user(1, "E1")]
    v = validated([{"key": "E1", "email": "e1@example.com", "status": "archived"}])
    plan, _ = plan_for(v, users)
    assert one(plan.archives) == {"user_id": 1, "key": "E1", "reason": "status"}
    assert plan.updates.height == 0
    assert (plan.counts.archived, plan.counts.unchanged) == (1, 0)


def test_an_archived_row_with_new_values_archives_and_updates_counting_once() -> None:
    """The field changes ride along with the archive; the user counts once, as archived."""
    users = [user(1, "E1", first_name="Ann")]
    v = validated(
        [{"key": "E1", "email": "e1@example.com", "first_name": "Anna", "status": "archived"}]
    )
    plan, _ = plan_for(v, users)
    assert one(plan.updates)["changed"] == ["first_name"]
    assert one(plan.archives)["reason"] == "status"
    assert (plan.counts.archived, plan.counts.updated) == (1, 0)


def test_an_archived_user_in_an_archived_row_is_unchanged_unless_fields_change() -> None:
    """Archived stays archived; only a field change makes it an update."""
    users = [user(1, "E1", status="archived"), user(2, "E2", status="archived")]
    v = validated(
        [
            {"key": "E1", "email": "e1@example.com", "status": "archived"},
            {"key": "E2", "email": "e2@example.com", "first_name": "Bo", "status": "archived"},
        ]
    )
    plan, _ = plan_for(v, users)
    assert one(plan.updates)["user_id"] == 2
    assert plan.archives.height == 0
    assert (plan.counts.unchanged, plan.counts.updated) == (1, 1)


# comparing values


def test_an_equal_fingerprint_is_unchanged_without_details() -> None:
    """No details are needed, and none given, for a matching fingerprint."""
    users = [user(1, "E1", first_name="Ann")]
    v = validated([{"key": "E1", "email": "e1@example.com", "first_name": "Ann"}])
    plan, _ = build_plan(v, snapshot(users), details([]), mode="full")
    assert (plan.updates.height, plan.refresh.height, plan.counts.unchanged) == (0, 0, 1)


def test_a_blank_cell_clears_a_stored_string() -> None:
    """Null against a stored value is a change of that field only."""
    users = [user(1, "E1", first_name="Ann", groups=["Sales"])]
    v = validated([{"key": "E1", "email": "e1@example.com", "groups": ["Sales"]}])
    plan, _ = plan_for(v, users)
    row = one(plan.updates)
    assert (row["changed"], row["first_name"]) == (["first_name"], None)
    assert plan.counts.updated == 1


def test_full_mode_replaces_a_list_when_the_sets_differ() -> None:
    """The same groups in another order are no change; another set is."""
    users = [user(1, "E1", groups=["A", "B"]), user(2, "E2", groups=["A", "B"])]
    v = validated(
        [
            {"key": "E1", "email": "e1@example.com", "groups": ["B", "A"]},
            {"key": "E2", "email": "e2@example.com", "groups": ["A"]},
        ]
    )
    plan, _ = plan_for(v, users)
    row = one(plan.updates)
    assert (row["user_id"], row["changed"], row["groups"]) == (2, ["groups"], ["A"])
    assert plan.counts.unchanged == 1


def test_partial_mode_adds_list_items_and_carries_the_union() -> None:
    """A subset is no change; a new item is, and the row carries stored + new items."""
    users = [user(1, "E1", groups=["A", "B"]), user(2, "E2", groups=["A"])]
    v = validated(
        [
            {"key": "E1", "email": "e1@example.com", "groups": ["B"]},
            {"key": "E2", "email": "e2@example.com", "groups": ["C", "A"]},
        ]
    )
    plan, _ = plan_for(v, users, mode="partial")
    row = one(plan.updates)
    assert (row["user_id"], row["changed"], row["groups"]) == (2, ["groups"], ["A", "C"])
    assert plan.counts.unchanged == 1


def test_a_full_import_after_a_partial_one_still_replaces_the_list() -> None:
    """A partial row's subset leaves the union stored, so the same subset in a full file
    must still be compared and replace the set."""
    users = [user(1, "E1", groups=["A", "B"])]
    row = {"key": "E1", "email": "e1@example.com", "groups": ["A"]}
    partial, _ = plan_for(validated([row]), users, "partial")
    stored = [users[0] | {"fingerprint": f} for f in partial.refresh["fingerprint"]] or users
    full, _ = plan_for(validated([row]), stored)
    assert one(full.updates)["groups"] == ["A"]


def test_source_usernames_add_even_in_full_mode() -> None:
    """A source username missing from the file is kept; a new one is added."""
    fields = ("email", "source_usernames")
    users = [user(1, "E1", fields=fields, source_usernames=["slack:ann", "email:ann"])]
    v = validated(
        [{"key": "E1", "email": "e1@example.com", "source_usernames": ["slack:a2"]}], fields
    )
    plan, _ = plan_for(v, users)
    row = one(plan.updates)
    assert row["source_usernames"] == ["slack:ann", "email:ann", "slack:a2"]


def test_a_blank_list_cell_leaves_the_stored_list() -> None:
    """Only `none` empties a list; a blank cell says nothing."""
    users = [user(1, "E1", groups=["A"], fingerprint=-1)]  # stale
    plan, _ = plan_for(validated([{"key": "E1", "email": "e1@example.com"}]), users)
    assert plan.updates.height == 0
    assert plan.counts.unchanged == 1


def test_a_new_password_is_a_change_and_a_blank_one_never_clears() -> None:
    """The password changes when its tag differs; a null tag leaves the stored one."""
    fields = (*FIELDS, "password")
    users = [
        user(1, "E1", fields=fields, password_tag="t1"),
        user(2, "E2", fields=fields, password_tag="t2"),
        user(3, "E3", fields=fields, password_tag="t3"),
    ]
    v = validated(
        [
            {"key": "E1", "email": "e1@example.com", "password": "same11", "password_tag": "t1"},
            {"key": "E2", "email": "e2@example.com", "password": "newpw2", "password_tag": "n2"},
            {"key": "E3", "email": "e3@example.com", "password": None, "password_tag": None},
        ],
        fields,
    )
    plan, _ = plan_for(v, users)
    row = one(plan.updates)
    assert (row["user_id"], row["changed"], row["password"]) == (2, ["password"], "newpw2")
    assert plan.counts.unchanged == 2


def test_passwords_without_tags_are_refused() -> None:
    """The job must add password tags; without them a change cannot be seen."""
    recs = records([{"key": "E1", "password": "secret"}], (*FIELDS, "password"))
    v = validated([{"key": "E1"}])
    v = Validated(v.table, recs, (*FIELDS, "password"), (), (), 0)
    with pytest.raises(ValueError, match="password_tag"):
        build_plan(v, snapshot([]), details([]), mode="full")


def test_a_change_of_case_is_an_update_but_not_an_email_change() -> None:
    """Email stored as given: a case change updates; only a new address counts as changed."""
    users = [user(1, "E1", email="ann@x.com"), user(2, "E2", email="bo@x.com")]
    v = validated([{"key": "E1", "email": "Ann@x.com"}, {"key": "E2", "email": "bob@x.com"}])
    plan, _ = plan_for(v, users)
    flags = dict(zip(plan.updates["user_id"], plan.updates["email_changed"], strict=True))
    assert flags == {1: False, 2: True}
    assert (plan.counts.updated, plan.counts.email_changed) == (2, 1)


def test_a_stale_fingerprint_without_changes_is_only_refreshed() -> None:
    """An old-algorithm fingerprint is rewritten, without an update."""
    v = validated([{"key": "E1", "email": "e1@example.com", "first_name": "Ann"}])
    old = fingerprint(v.records, FIELDS, version="f1-1.0.0")[0]
    users = [user(1, "E1", first_name="Ann", fingerprint=old)]
    plan, _ = plan_for(v, users)
    assert plan.updates.height == 0
    assert one(plan.refresh)["fingerprint"] == fingerprint(v.records, FIELDS)[0]
    assert plan.counts.unchanged == 1


def test_missing_details_of_a_needed_user_are_an_error() -> None:
    """A store that leaves out a candidate's details is caught, not planned around."""
    users = [user(1, "E1", fingerprint=None)]
    v = validated([{"key": "E1", "email": "e1@example.com"}])
    with pytest.raises(ValueError, match="details lack 1 user"):
        build_plan(v, snapshot(users), details([]), mode="full")


# absent users


def test_full_mode_archives_active_users_absent_from_the_file() -> None:
    """Absent active users are archived (reason absent); archived ones are left alone."""
    users = [user(1, "E1"), user(2, "E2"), user(3, "E3", status="archived")]
    plan, _ = plan_for(validated([{"key": "E1", "email": "e1@example.com"}]), users)
    assert one(plan.archives) == {"user_id": 2, "key": "E2", "reason": "absent"}
    assert (plan.counts.archived, plan.active_before) == (1, 2)


def test_a_user_whose_row_is_invalid_but_keyed_is_not_archived() -> None:
    """An invalid row with a readable key counts as present."""
    users = [user(1, "E1"), user(2, "E2")]
    v = validated([{"key": "E1", "email": "e1@example.com"}], invalid_keys=["E2"])
    plan, _ = plan_for(v, users)
    assert plan.archives.height == 0
    assert (plan.counts.rows, plan.counts.valid, plan.counts.invalid) == (2, 1, 1)


def test_an_unreadable_key_blocks_absent_archives_but_not_status_archives() -> None:
    """With a keyless invalid row nobody is archived as absent, and the plan says why."""
    users = [user(1, "E1"), user(2, "E2"), user(3, "E3")]
    v = validated([{"key": "E1", "email": "e1@example.com", "status": "archived"}], unreadable=2)
    plan, _ = plan_for(v, users)
    assert one(plan.archives)["reason"] == "status"
    assert plan.archive_blocked is not None
    assert "2 rows have no readable key" in plan.archive_blocked
    assert "2 users would have been" in plan.archive_blocked


def test_partial_mode_never_archives_absent_users() -> None:
    """Upsert only: users missing from a partial file stay as they are."""
    users = [user(1, "E1"), user(2, "E2")]
    plan, _ = plan_for(validated([{"key": "E1", "email": "e1@example.com"}]), users, "partial")
    assert plan.archives.height == 0
    assert plan.archive_blocked is None


def test_a_full_file_without_valid_rows_is_rejected() -> None:
    """Applying it would archive everyone, so the whole file is rejected."""
    with pytest.raises(FileRejected, match="no row of the file is valid"):
        plan_for(validated([], invalid_keys=["E1"]), [user(1, "E1")])


def test_a_partial_file_without_valid_rows_plans_nothing() -> None:
    """Partial mode has nothing to fear from an empty file."""
    plan, _ = plan_for(validated([], invalid_keys=["E1"]), [user(1, "E1")], "partial")
    assert plan.counts.invalid == 1
    assert plan.creates.height + plan.updates.height + plan.archives.height == 0


# email uniqueness


def test_a_create_with_an_email_another_user_keeps_is_a_row_error() -> None:
    """The error names the file's email column, the email and the holder's key."""
    users = [user(1, "E17", email="a@x.com")]
    v = validated([{"key": "E17", "email": "a@x.com"}, {"key": "E18", "email": "A@x.com"}])
    plan, errors = plan_for(v, users)
    assert errors == (
        RowError(
            3,
            EMAIL_HEADER,
            "'A@x.com' belongs to another user (key E17); give this row an email no other "
            "user has, or change that user's email in the same file",
        ),
    )
    assert plan.creates.height == 0
    assert (plan.counts.valid, plan.counts.invalid, plan.counts.unchanged) == (1, 1, 1)


def test_an_update_to_an_email_held_by_a_user_not_in_the_file_is_refused_and_kept() -> None:
    """The conflicting row's user is left as is and, being present, not archived."""
    users = [user(1, "E1"), user(2, "E2"), user(3, "E3")]
    v = validated(
        [{"key": "E1", "email": "e2@example.com"}, {"key": "E3", "email": "e3@example.com"}],
        invalid_keys=["E2"],
    )
    plan, errors = plan_for(v, users)
    assert [e.row for e in errors] == [2]
    assert plan.updates.height == 0
    assert plan.archives.height == 0
    assert (plan.counts.valid, plan.counts.invalid, plan.counts.unchanged) == (1, 2, 1)


def test_an_archived_user_keeps_their_email() -> None:
    """Archived users count for uniqueness too."""
    users = [user(1, "E1", status="archived")]
    plan, errors = plan_for(validated([{"key": "E2", "email": "E1@example.com"}]), users, "partial")
    assert len(errors) == 1
    assert plan.creates.height == 0


def test_two_users_may_swap_emails_in_one_file() -> None:
    """A swap releases both emails in the same plan, so neither row conflicts."""
    users = [user(1, "E1"), user(2, "E2")]
    v = validated(
        [{"key": "E1", "email": "e2@example.com"}, {"key": "E2", "email": "e1@example.com"}]
    )
    plan, errors = plan_for(v, users)
    assert errors == ()
    assert plan.counts.email_changed == 2


def test_two_rows_claiming_one_new_email_are_both_refused() -> None:
    """Neither row wins; each error names the other row."""
    v = validated([{"key": "E1", "email": "n@x.com"}, {"key": "E2", "email": "N@x.com"}])
    plan, errors = plan_for(v, [], "partial")
    assert [e.message.split(";")[0] for e in errors] == [
        "'n@x.com' is also given to key E2 on row 3",
        "'N@x.com' is also given to key E1 on row 2",
    ]
    assert plan.counts.invalid == 2


def test_a_refused_row_breaks_the_swap_it_was_part_of() -> None:
    """E1 cannot take E3's email, so it keeps its own, and E2 cannot take that one."""
    users = [user(1, "E1"), user(2, "E2"), user(3, "E3")]
    v = validated(
        [
            {"key": "E1", "email": "e3@example.com"},
            {"key": "E2", "email": "e1@example.com"},
            {"key": "E3", "email": "e3@example.com"},
        ]
    )
    plan, errors = plan_for(v, users)
    assert [(e.row, "key E1" in e.message) for e in errors] == [(2, False), (3, True)]
    assert (plan.counts.unchanged, plan.counts.invalid, plan.archive_count) == (1, 2, 0)


def test_a_full_file_whose_every_row_conflicts_is_rejected() -> None:
    """Conflicts can leave no valid row; the rejection lists them."""
    users = [user(1, "E1")]
    with pytest.raises(FileRejected) as caught:
        plan_for(validated([{"key": "E2", "email": "e1@example.com"}]), users)
    assert caught.value.problems[0].startswith("row 2: Primary Email: 'e1@example.com'")


def test_the_holder_of_an_email_a_refused_row_claims_counts_as_present() -> None:
    """Excel dropped the zeros of 00012, so its row reads `12`; the email belongs to
    00012, so the row is refused, and 00012 (whom it means) is not archived as absent."""
    users = [user(1, "00012", email="ann@x.com"), user(2, "E2")]
    v = validated([{"key": "12", "email": "ann@x.com"}, {"key": "E2", "email": "e2@example.com"}])
    plan, errors = plan_for(v, users)
    assert [e.row for e in errors] == [2]
    assert plan.archive_count == 0


def test_a_key_that_lost_its_leading_zeros_is_refused_and_says_so() -> None:
    """Without any email to give it away, `12` for a stored `00012` that no row names is
    refused, the message says the zeros were lost, and 00012 is not archived."""
    users = [user(1, "00012", email=None), user(2, "E2", email=None)]
    v = validated([{"key": "12"}, {"key": "E2"}], fields=("first_name",))
    plan, errors = plan_for(v, users)
    [error] = errors
    assert error.row == 2
    assert "looks like '00012' with its leading zeros lost" in error.message
    assert (plan.creates.height, plan.archive_count) == (0, 0)


def test_an_invalid_row_whose_key_lost_its_zeros_keeps_that_user() -> None:
    """A row that failed validation counts as present by its key, also when Excel took
    the key's leading zeros: `12` on an invalid row keeps 00012 from being archived."""
    users = [user(1, "00012", email=None), user(2, "E2", email=None), user(3, "E3", email=None)]
    v = validated([{"key": "E2"}], fields=("first_name",), invalid_keys=["12"])
    plan, _ = plan_for(v, users)
    assert plan.archives["key"].to_list() == ["E3"]


def test_keys_that_are_two_numbers_in_the_file_are_two_people() -> None:
    """When `12` and `00012` are both in the file (and stored), each row is its own user,
    and a third spelling is a new one: only a stored user no row names can be meant."""
    users = [user(1, "00012", email=None), user(2, "12", email=None)]
    v = validated([{"key": "12"}, {"key": "00012"}, {"key": "012"}], fields=("first_name",))
    plan, errors = plan_for(v, users)
    assert errors == ()
    assert plan.creates["key"].to_list() == ["012"]


def test_none_in_groups_clears_them_in_partial_mode_too() -> None:
    """Seed 002: `none` means no groups; in partial mode it clears, where other lists add."""
    users = [user(1, "E1", groups=["A", "B"]), user(2, "E2", groups=["A"])]
    v = validated(
        [
            {"key": "E1", "email": "e1@example.com", "groups": []},
            {"key": "E2", "email": "e2@example.com", "groups": ["C"]},
        ]
    )
    plan, _ = plan_for(v, users, "partial")
    changed = {r["key"]: (r["changed"], r["groups"]) for r in plan.updates.iter_rows(named=True)}
    assert changed == {"E1": (["groups"], []), "E2": (["groups"], ["A", "C"])}


def test_keys_and_emails_read_through_a_guessed_encoding_only_match() -> None:
    """A file decoded whole with the fallback codec: a non-ASCII key that matches nobody
    and a non-ASCII email that is not its user's are refused, and the refused key blocks
    archiving (it may be a garbled absent user's); matching ones apply."""
    users = [user(1, "René", email="rené@x.com"), user(2, "E2"), user(3, "E3")]
    v = validated(
        [
            {"key": "René", "email": "rené@x.com", "first_name": "Ann"},
            {"key": "RenŽ", "email": "renŽ@x.com"},
            {"key": "E2", "email": "bjŽrn@x.com"},
        ]
    )
    v = replace(v, table=replace(v.table, guessed_encoding=True, encoding="cp1252"))
    plan, errors = plan_for(v, users)
    assert [(e.row, e.column) for e in errors] == [(3, "key"), (4, EMAIL_HEADER)]
    assert "read as cp1252, a guess" in errors[0].message
    assert plan.counts.updated == 1
    assert plan.archive_count == 0
    assert plan.archive_blocked is not None
    assert "guessed encoding (cp1252)" in plan.archive_blocked


def test_a_full_file_whose_every_row_conflicts_carries_the_refused_rows() -> None:
    """The rejection holds the planner's row errors, for the errors CSV."""
    with pytest.raises(NothingValid) as caught:
        plan_for(validated([{"key": "E2", "email": "e1@example.com"}]), [user(1, "E1")])
    assert [e.row for e in caught.value.row_errors] == [2]


# password tags


def test_password_tags_are_keyed_hmacs_and_null_for_blank_passwords() -> None:
    """The tag is HMAC-SHA256(secret, key NUL password) in hex; blank stays null."""
    tags = password_tags(pl.Series(["E1", "E2"]), pl.Series(["secret1", None]), b"k")
    expected = hmac.new(b"k", b"E1\x00secret1", hashlib.sha256).hexdigest()
    assert tags.to_list() == [expected, None]
    assert tags.name == "password_tag"


def test_the_same_password_gets_another_tag_for_another_user_or_secret() -> None:
    """Binding key and secret keeps equal passwords from showing as equal tags."""
    keys, passwords = pl.Series(["E1", "E2"]), pl.Series(["same12", "same12"])
    tags = password_tags(keys, passwords, b"k").to_list()
    assert tags[0] != tags[1]
    assert password_tags(keys, passwords, b"other").to_list()[0] != tags[0]


@pytest.mark.parametrize("others", [0, 20])
def test_a_fingerprint_of_the_algorithm_before_is_refreshed_without_details(others: int) -> None:
    """A directory written by the syncd before this one (its fingerprints left the key
    out) needs only the changed users' details on its next night: a user whose stored
    fingerprint equals the row's under that algorithm is unchanged, and refreshed to this
    one's; a user whose values changed is compared and updated. (Beside `others` users
    with current fingerprints: the few stale rows are then fingerprinted apart.)"""
    rows = [
        {"key": "E1", "email": "a@x.com", "first_name": "Ann"},
        {"key": "E2", "email": "b@x.com", "first_name": "Bo"},
    ]
    extra = [{"key": f"X{i}", "email": f"x{i}@x.com", "first_name": "Xi"} for i in range(others)]
    before = fingerprint_before(records(rows), FIELDS).to_list()
    current = fingerprint(records(extra), FIELDS).to_list() if extra else []
    users = [
        {"user_id": i + 1, **row, "status": "active", "fingerprint": fp}
        for i, (row, fp) in enumerate(zip(rows + extra, before + current, strict=True))
    ]
    v = validated([rows[0], {**rows[1], "first_name": "Cy"}, *extra])
    snap = snapshot(users)
    assert candidates(v.records, v.fields, snap).to_list() == [2]
    plan, errors = build_plan(v, snap, details(users[1:2]), mode="full")
    assert errors == ()
    assert (plan.counts.unchanged, plan.counts.updated) == (1 + others, 1)
    now = fingerprint(v.records, v.fields).to_list()
    assert plan.refresh.rows() == [(1, now[0])]
    assert plan.updates.select("user_id", "fingerprint").rows() == [(2, now[1])]
