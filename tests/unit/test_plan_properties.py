"""Properties of the planner over small generated directories and files.

Plans are applied with `apply`, a tiny pure model of the store, so sequences of imports
can be checked end to end without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from unittest import mock

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.core import plan as planner
from syncd.core import refusals
from syncd.core.plan import FINGERPRINT_VERSION as VERSION
from syncd.core.plan import (
    FingerprintSums,
    Plan,
    build_plan,
    candidates,
    fingerprint,
    fingerprint_before,
    fingerprint_sums,
    quiet_plan,
    quiet_sums,
)
from syncd.core.profile import Mode
from syncd.core.records import Validated
from syncd.core.table import RowError
from syncd.errors import FileRejected
from tests.unit.test_plan import FIELDS, details, records, snapshot, validated

State = dict[str, dict[str, Any]]  # key -> stored user

KEYS = [f"E{i}" for i in range(7)]
EMAILS = ["a@x.com", "A@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"]
names = st.sampled_from([None, "Ann", "Bo"])
groups = st.none() | st.lists(st.sampled_from(["A", "B", "C"]), max_size=3)


@dataclass(frozen=True, slots=True)
class File:
    rows: tuple[dict[str, Any], ...]
    invalid_keys: tuple[str, ...]
    unreadable: int

    def validated(self) -> Validated:
        return validated(self.rows, invalid_keys=self.invalid_keys, unreadable=self.unreadable)


@st.composite
def directories(draw: st.DrawFn) -> State:
    """Users with distinct keys and distinct emails (case-insensitively)."""
    people = draw(
        st.lists(
            st.tuples(st.sampled_from(KEYS), st.sampled_from(EMAILS)),
            unique_by=(lambda t: t[0], lambda t: t[1].lower()),
            max_size=5,
        )
    )
    state: State = {}
    for user_id, (key, email) in enumerate(people, start=1):
        values = {"email": email, "first_name": draw(names), "groups": draw(groups)}
        stored = {"user_id": user_id, "key": key, **values}
        stored["status"] = draw(st.sampled_from(["active", "archived"]))
        # As written by a record with these values, by the algorithm before (which left
        # the key out), by an older one, or by nobody.
        frame = records([{"key": key, **values}])
        fp, old = (fingerprint(frame, FIELDS, version=v)[0] for v in (VERSION, "f1-1.0.0"))
        legacy = fingerprint_before(frame, FIELDS)[0]
        stored["fingerprint"] = draw(st.sampled_from([fp, None, old, legacy]))
        state[key] = stored
    return state


@st.composite
def files(draw: st.DrawFn, like: State, unreadable: bool = True) -> File:
    """Rows with distinct keys, often close to the stored users (`like`), some emails
    shared to provoke conflicts; plus invalid rows."""
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=6))
    rows = []
    for key in keys:
        row = {
            "key": key,
            "status": draw(st.sampled_from(["active", "active", "archived"])),
            "email": draw(st.sampled_from(EMAILS)),
            "first_name": draw(names),
            "groups": draw(groups),
        }
        if key in like:  # keep some stored values, so unchanged and subset rows are common
            row |= {f: like[key][f] for f in FIELDS if draw(st.booleans())}
        rows.append(row)
    invalid = draw(st.lists(st.sampled_from([k for k in KEYS if k not in keys] or KEYS)))
    invalid_keys = tuple(dict.fromkeys(k for k in invalid if k not in keys))
    bad = draw(st.sampled_from([0, 0, 0, 1])) if unreadable else 0
    return File(tuple(rows), invalid_keys, bad)


def imports() -> st.SearchStrategy[tuple[State, File]]:
    """A directory and a file for it."""
    return directories().flatmap(lambda state: st.tuples(st.just(state), files(state)))


def plan(state: State, file: File, mode: Mode) -> tuple[Plan, tuple[RowError, ...]] | None:
    """Plan as the job does (details of the candidates only); None when rejected."""
    users = list(state.values())
    v = file.validated()
    snap = snapshot(users)
    wanted = set(candidates(v.records, v.fields, snap).to_list())
    try:
        return build_plan(v, snap, details([u for u in users if u["user_id"] in wanted]), mode=mode)
    except FileRejected:
        assert mode == "full"
        return None


def assert_same_plans(
    ours: tuple[Plan, tuple[RowError, ...]], theirs: tuple[Plan, tuple[RowError, ...]]
) -> None:
    """Two plans (with their refused rows) are the same, in any row order."""
    assert ours[1] == theirs[1]
    assert ours[0].counts == theirs[0].counts
    for name in ("creates", "updates", "archives", "refresh"):
        a, b = getattr(ours[0], name), getattr(theirs[0], name)
        order = "user_id" if name == "refresh" else a.columns[0]
        assert a.sort(order).equals(b.sort(order)), name


def apply(state: State, plan: Plan) -> State:
    """What the store does with a plan, on a dict."""
    new = {k: dict(u) for k, u in state.items()}
    by_id = {u["user_id"]: u for u in new.values()}
    next_id = max(by_id, default=0) + 1
    for row in plan.creates.iter_rows(named=True):
        assert row["key"] not in new
        values = {f: row[f] for f in FIELDS}
        new[row["key"]] = {"user_id": next_id, "key": row["key"], "status": row["status"]}
        new[row["key"]] |= values | {"fingerprint": row["fingerprint"]}
        next_id += 1
    for row in plan.updates.iter_rows(named=True):
        stored = by_id[row["user_id"]]
        stored |= {f: row[f] for f in row["changed"]}
        stored["fingerprint"] = row["fingerprint"]
        if row["reactivate"]:
            stored["status"] = "active"
    for row in plan.refresh.iter_rows(named=True):
        by_id[row["user_id"]]["fingerprint"] = row["fingerprint"]
    for row in plan.archives.iter_rows(named=True):
        by_id[row["user_id"]]["status"] = "archived"
    return new


def emails_are_unique(state: State) -> bool:
    emails = [u["email"].lower() for u in state.values() if u["email"] is not None]
    return len(emails) == len(set(emails))


def conflicted_keys(file: File, errors: tuple[RowError, ...]) -> set[str]:
    rows = file.validated().records
    bad = {e.row for e in errors}
    return {r["key"] for r in rows.iter_rows(named=True) if r["_row"] in bad}


def holders(state: State, file: File, errors: tuple[RowError, ...]) -> set[str]:
    """The stored users keeping an email that a refused row claims."""
    bad = {e.row for e in errors}
    claimed = {
        (r["email"] or "").lower(): r["key"]
        for r in file.validated().records.iter_rows(named=True)
        if r["_row"] in bad
    }
    return {
        k
        for k, u in state.items()
        if u["email"] is not None and claimed.get(u["email"].lower(), k) != k
    }


modes = st.sampled_from(["full", "partial"])
props = settings(max_examples=150, deadline=None)


@props
@given(imports(), modes)
def test_importing_the_same_file_twice_changes_nothing_the_second_time(
    case: tuple[State, File], mode: Mode
) -> None:
    """After applying a plan, the same file plans all-unchanged, and the directory keeps
    one user per email."""
    state, file = case
    first = plan(state, file, mode)
    if first is None:
        return
    after = apply(state, first[0])
    assert emails_are_unique(after)
    second = plan(after, file, mode)
    assert second is not None
    again, errors = second
    assert again.creates.height + again.updates.height + again.refresh.height == 0
    assert again.archive_count == 0
    assert again.counts.unchanged == again.counts.valid
    assert {e.row for e in errors} == {e.row for e in first[1]}
    if mode == "full" and not first[1]:  # (a partial subset of a list is looked at again)
        v = file.validated()
        assert candidates(v.records, v.fields, snapshot(list(after.values()))).len() == 0


@props
@given(imports(), modes)
def test_no_user_whose_key_is_in_the_file_is_archived_as_absent(
    case: tuple[State, File], mode: Mode
) -> None:
    """Valid and invalid-but-keyed rows count as present; only status rows archive them."""
    state, file = case
    result = plan(state, file, mode)
    if result is None:
        return
    archives = result[0].archives
    in_file = {r["key"] for r in file.rows} | set(file.invalid_keys)
    archived_rows = {r["key"] for r in file.rows if r["status"] == "archived"}
    for row in archives.iter_rows(named=True):
        if row["reason"] == "absent":
            assert row["key"] not in in_file
        else:
            assert row["key"] in archived_rows


@props
@given(
    directories().flatmap(
        lambda state: st.tuples(
            st.just(state), files(state), st.none() | files(state, unreadable=False)
        )
    ),
    modes,
)
def test_a_full_import_leaves_exactly_the_new_files_users_active(
    case: tuple[State, File, File | None], first_mode: Mode
) -> None:
    """F then full G: active = G's valid active keys, plus G's invalid-but-keyed users as
    they were; every valid row's user holds that row's values."""
    # None: the same rows again, now as a full import (after a partial one, say).
    state, first, next_file = case
    second = next_file or File(first.rows, first.invalid_keys, 0)
    planned = plan(state, first, first_mode)
    middle = apply(state, planned[0]) if planned else state
    result = plan(middle, second, "full")
    if result is None:
        return
    end = apply(middle, result[0])
    untouched = set(second.invalid_keys) | conflicted_keys(second, result[1])
    valid_active = {r["key"] for r in second.rows if r["status"] == "active"} - untouched
    # The holder of an email a refused row claims counts as present too (unless its own
    # valid row says what becomes of it).
    own_rows = {r["key"] for r in second.rows} - untouched
    protected = untouched | (holders(middle, second, result[1]) - own_rows)
    kept = {k for k in protected if k in middle and middle[k]["status"] == "active"}
    assert {k for k, u in end.items() if u["status"] == "active"} == valid_active | kept
    for key in untouched & middle.keys():
        assert end[key] == middle[key]
    for row in second.rows:
        if row["key"] not in untouched:
            held = end[row["key"]]
            assert (held["email"], held["first_name"]) == (row["email"], row["first_name"])
            if row["groups"] is not None:
                assert set(held["groups"] or ()) == set(row["groups"])


@props
@given(imports(), modes)
def test_counts_add_up(case: tuple[State, File], mode: Mode) -> None:
    """Each valid row's user is counted once; absent archives are counted on top."""
    state, file = case
    result = plan(state, file, mode)
    if result is None:
        return
    p, errors = result
    c = p.counts
    absent = p.archives.filter(pl.col("reason") == "absent").height
    by_status = c.archived - absent
    assert c.valid == c.created + c.updated + c.unchanged + c.reactivated + by_status
    assert c.rows == c.valid + c.invalid
    assert c.invalid == len(file.invalid_keys) + file.unreadable + len(errors)
    assert c.email_changed <= c.updated


@props
@given(imports())
def test_partial_mode_archives_nobody_absent(case: tuple[State, File]) -> None:
    """A partial import touches only the users its rows name, and removes no list item
    but where a row says `none` (an empty list), which clears it (seed 002)."""
    state, file = case
    result = plan(state, file, "partial")
    assert result is not None
    end = apply(state, result[0])
    named = {r["key"] for r in file.rows}
    assert result[0].archive_blocked is None
    for key, stored in state.items():
        if key not in named:
            assert end[key] == stored
        elif next(r for r in file.rows if r["key"] == key)["groups"] == []:
            assert end[key]["groups"] in ([], stored["groups"])  # cleared, or a row refused
        else:  # lists only ever gain items
            assert set(stored["groups"] or ()) <= set(end[key]["groups"] or ())


@props
@given(
    st.lists(
        st.fixed_dictionaries(
            {"key": st.sampled_from(KEYS), "email": st.sampled_from([None, "", *EMAILS])}
            | {"first_name": names, "groups": groups}
        ),
        min_size=1,
        max_size=6,
    ),
    st.text(max_size=12).filter(lambda v: v != VERSION),
)
def test_a_fingerprint_of_another_version_never_equals_this_ones(
    rows: list[dict[str, Any]], version: str
) -> None:
    """Whatever the values, a fingerprint made under another version (an older syncd,
    another polars) differs from this version's: what an older syncd stored is stale,
    never taken for equal."""
    frame = records(rows)
    ours = fingerprint(frame, FIELDS)
    theirs = fingerprint(frame, FIELDS, version=version)
    assert not (ours == theirs).any()


def stored_sums(state: State) -> FingerprintSums:
    """The active users' fingerprints summed, as the store sums them."""
    active = [u["fingerprint"] for u in state.values() if u["status"] == "active"]
    return fingerprint_sums(pl.Series("fingerprint", active, pl.Int64))


@st.composite
def nights(draw: st.DrawFn) -> tuple[State, File]:
    """A directory and a file for it; mostly one that may be quiet (every row active and
    valid), and mostly applied once already in full (the usual quiet night)."""
    state, file = draw(imports())
    if draw(st.sampled_from([False, True, True, True])):
        file = File(tuple({**r, "status": "active"} for r in file.rows), (), 0)
        if draw(st.sampled_from([False, True, True])):
            first = plan(state, file, "full")
            if first is not None:
                state = apply(state, first[0])
        # Then maybe a row says its user left, or a row failed (keyed, or not).
        spoil = draw(st.sampled_from(["", "", "archived", "invalid", "unreadable"]))
        if spoil == "archived" and file.rows:
            at = draw(st.integers(0, len(file.rows) - 1))
            rows = list(file.rows)
            rows[at] = {**rows[at], "status": "archived"}
            file = File(tuple(rows), (), 0)
        elif spoil == "invalid":
            spare = [k for k in KEYS if k not in {r["key"] for r in file.rows}]
            file = File(file.rows, tuple(spare[:1]), 0)
        elif spoil == "unreadable":
            file = File(file.rows, (), 1)
    return state, file


@props
@given(nights(), modes)
def test_a_quiet_plan_is_the_plan_and_is_found_whenever_the_file_is_the_directory(
    case: tuple[State, File], mode: Mode
) -> None:
    """Whenever `quiet_plan` answers (without the snapshot), `build_plan` plans the same:
    nothing written, nobody archived, the same counts, frames of the same columns. And
    whenever the file's rows are exactly the active users as their fingerprints hold
    them, it does answer."""
    state, file = case
    v = file.validated()
    sums = quiet_sums(v, fingerprint(v.records, v.fields))
    quiet = None if sums is None else quiet_plan(v, mode, sums, stored_sums(state))
    full = plan(state, file, mode)
    if quiet is not None:
        assert full is not None
        expected, errors = full
        assert errors == ()
        assert quiet.counts == expected.counts
        assert quiet.active_before == expected.active_before
        assert quiet.archive_blocked is expected.archive_blocked is None
        for name in ("creates", "updates", "refresh", "archives"):
            ours, theirs = getattr(quiet, name), getattr(expected, name)
            assert ours.height == theirs.height == 0, name
            assert ours.schema == theirs.schema, name
    active = {k: u for k, u in state.items() if u["status"] == "active"}
    rows = {r["key"]: r for r in v.records.iter_rows(named=True)}
    fingerprints = dict(zip(v.records["key"], fingerprint(v.records, v.fields), strict=True))
    same = (
        sums is not None
        and rows.keys() == active.keys()
        and all(u["fingerprint"] == fingerprints[k] for k, u in active.items())
    )
    assert (quiet is not None) == same


def test_fingerprints_hold_the_key() -> None:
    """Two records alike but for their key have different fingerprints: summed, a
    directory's fingerprints tell which users hold which values (a file whose key
    column was sorted apart from its other columns is no quiet night)."""
    frame = records([{"key": "E1", "email": "a@x.com"}, {"key": "E2", "email": "a@x.com"}])
    first, second = fingerprint(frame, FIELDS)
    assert first != second


@props
@given(imports(), modes)
def test_the_details_of_users_candidates_leaves_out_change_nothing(
    case: tuple[State, File], mode: Mode
) -> None:
    """Planned with every stored user's details, a file plans exactly as with only the
    candidates' (the users whose fingerprint differs, unless it is the previous
    algorithm's and equal under it, and the holders of claimed emails): the users left
    out were unchanged."""
    state, file = case
    v = file.validated()
    users = list(state.values())
    snap = snapshot(users)
    try:
        every = build_plan(v, snap, details(users), mode=mode)
    except FileRejected:
        return
    some = plan(state, file, mode)
    assert some is not None
    assert_same_plans(some, every)


@props
@given(imports(), modes, st.integers(min_value=1, max_value=3))
def test_comparing_in_parts_plans_the_same(case: tuple[State, File], mode: Mode, part: int) -> None:
    """With the details read by a function, `part` users at a time (a night that
    compares most of the directory), the plan and the refused rows are the ones planned
    with every candidate's details at once; no read asks for more than `part` users."""
    state, file = case
    v = file.validated()
    users = list(state.values())
    snap = snapshot(users)
    wanted = set(candidates(v.records, v.fields, snap).to_list())
    asked: list[int] = []

    def details_of(ids: pl.Series) -> pl.DataFrame:
        asked.append(ids.len())
        return details([u for u in users if u["user_id"] in set(ids.to_list())])

    candidates_details = details([u for u in users if u["user_id"] in wanted])
    try:
        whole = build_plan(v, snap, candidates_details, mode=mode)
    except FileRejected:
        return
    with mock.patch.object(planner, "COMPARE_PART", part):
        parts = build_plan(v, snap, details_of, mode=mode)
    assert max(asked) <= part
    assert_same_plans(parts, whole)


def _one_hash(email_lc: pl.Expr) -> pl.Expr:
    """Every address the same hash: the worst the snapshot's email hashes can do."""
    return pl.when(email_lc.is_not_null()).then(pl.lit(0, pl.UInt64))


@props
@given(imports(), modes)
def test_email_hashes_that_collide_plan_the_same(case: tuple[State, File], mode: Mode) -> None:
    """The snapshot holds the emails' 64-bit hashes (`email_hash`): an equal hash sends
    the planner to the addresses themselves, never decides alone. With every address
    given one hash, candidates name more users, and the plan and the refused rows are
    the ones planned with the real hashes."""
    state, file = case
    real = plan(state, file, mode)
    with (
        mock.patch.object(planner, "email_hash", _one_hash),
        mock.patch.object(refusals, "email_hash", _one_hash),
    ):
        collided = plan(state, file, mode)
    assert (real is None) == (collided is None)
    if real is None or collided is None:
        return
    assert_same_plans(collided, real)
