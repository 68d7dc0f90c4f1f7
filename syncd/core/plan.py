"""The planner: validated records x directory snapshot -> the changes a job would make.

Pure and columnar. Inputs are frames; the output is a `Plan` built whole before anything
is written. See DESIGN.md "The directory" for the rules each branch implements.

Frames the store hands in:

`snapshot` (every user of the directory, active or archived):
  `user_id` (Int64), `key` (String, normalised like `records.key`), `email_hash` (UInt64,
  `email_hash` of the stored lower-case email; null without one), `active` (Boolean),
  `fingerprint` (Int64, nullable: see `fingerprint`). Hashes rather than addresses, and a
  flag rather than text: at 5,000,000 users the snapshot holds 210 MiB instead of 504, and
  every frame matched to it is smaller alike. An equal hash says only that two addresses
  may be equal: whatever acts on it reads the addresses themselves (`details`).

`details` (only the users `candidates()` names): `user_id` (Int64) and, for every
directory field, the stored value in the records' representation (see
`syncd.core.records`), plus `password_tag` (String, nullable). A field column it lacks
reads as "nothing stored".

The stored fingerprint is what `creates`, `updates` and `refresh` carry: the fingerprint
of the last row that wrote the user, with a partial row's groups and labels taken as the
union it left stored (source usernames as the row gave them: they only ever add). So an
equal fingerprint proves that the row, applied in either mode, would change nothing. The
store must clear the fingerprint of a user it changes any other way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import polars as pl

from syncd.core.counts import Counts
from syncd.core.profile import Mode
from syncd.core.records import Validated
from syncd.core.refusals import (
    digits_value,
    email_conflicts,
    email_hash,
    guessed_text,
    lookalike_keys,
)
from syncd.core.row_kinds import KIND, WRITES, with_kind
from syncd.core.table import ROW, RowError, chunked_like
from syncd.errors import FileRejected

#: Folded into the seed of every fingerprint: polars' hash is stable only within one
#: polars version, so a new version (or a new algorithm here: bump the `f3`) makes stored
#: fingerprints stale, never wrong. (`f3` folds the key in: see `quiet_plan`.)
FINGERPRINT_VERSION = f"f3-{pl.__version__}"
#: The version before the key was folded in. A stored fingerprint of it, equal to the
#: row's own under it, proves the values unchanged as well (`legacy_rows`): a directory
#: written by the syncd before is refreshed without every user's details (at 5,000,000
#: users that took 113 s and 7.2 GiB).
_LEGACY_VERSION = f"f2-{pl.__version__}"
_SEED = 0x5EED_C0DE
_MIX = 0x9E37_79B9_7F4A_7C15  # odd, so multiplying never loses a bit
_NULL_LIST = 0x2545_F491_4F6C_DD1D
#: Status is compared with the snapshot's status; the password through `password_tag`.
_NOT_COMPARED = frozenset({"password", "status", "active", "full_name"})
#: Lists that only ever gain items (DESIGN: source usernames add, whatever the mode).
_ADD_ONLY_LISTS = frozenset({"source_usernames"})
_STORED = "\x00stored"  # suffix of details columns once joined to the records


@dataclass(frozen=True, slots=True)
class Plan:
    """What one job would change.

    - `creates`: records rows of new users, with `fingerprint`.
    - `updates`: records rows of existing users whose values change, with `user_id`,
      `fingerprint`, `changed` (List(String): the field names that change),
      `reactivate` (Boolean) and `email_changed` (Boolean). The store writes the fields
      in `changed` (`password` means: hash `password`, store `password_tag`). A list
      field that adds (partial mode, `source_usernames`) carries the union. A user
      archived by a Archived row whose fields also change is in `updates` and in
      `archives`; it counts once, as archived.
    - `refresh`: `user_id`, `fingerprint` of users whose values did not change but whose
      stored fingerprint is stale (written without counting as an update).
    - `archives`: `user_id`, `key`, `reason` ("absent" or "status").
    """

    mode: Mode
    fields: tuple[str, ...]
    creates: pl.DataFrame
    updates: pl.DataFrame
    refresh: pl.DataFrame
    archives: pl.DataFrame
    counts: Counts
    active_before: int
    archive_blocked: str | None = None
    messages: tuple[str, ...] = ()

    @property
    def archive_count(self) -> int:
        return self.archives.height


def _compared_fields(records: pl.DataFrame, fields: Sequence[str]) -> list[str]:
    return sorted({f for f in fields if f not in _NOT_COMPARED and f in records.columns})


def _field_hash(name: str, dtype: pl.DataType) -> pl.Expr:
    """One field's values as UInt64; a list as the sum of its items' hashes, so order does
    not matter (a per-row sort or unique costs far more on a million rows). A repeated
    item counts: at worst that sends a user to the details once, never hides a change."""
    col = pl.col(name)
    if isinstance(dtype, pl.List):
        items = col.list.eval(pl.element().hash(_SEED)).list.sum()
        return items.fill_null(pl.lit(_NULL_LIST, pl.UInt64))  # a blank cell is not `none`
    return col.cast(pl.String).hash(_SEED)  # null and "" hash apart


def fingerprint(
    records: pl.DataFrame, fields: Sequence[str], *, version: str = FINGERPRINT_VERSION
) -> pl.Series:
    """A deterministic 64-bit hash of each record's key and values of `fields` (status
    and password left out: they are compared apart), as Int64 (the database's BIGINT).
    Equal fingerprints mean equal values (lists in any order); null, "" and an empty list
    all differ. The key is folded in although records are only ever compared with their
    own key's user: so a directory's fingerprints, summed, stand for its users whole
    (`quiet_plan`). `version` is for tests: another version's fingerprints are stale."""
    return _fingerprint(records, fields, version, with_key=True)


def _fingerprint(
    records: pl.DataFrame, fields: Sequence[str], version: str, *, with_key: bool
) -> pl.Series:
    names = _compared_fields(records, fields)
    # The version and the names seed the chain. For given values each step below is a
    # bijection of the state, so different seeds never meet: another version's
    # fingerprint never equals this one's, and equal values under other fields differ.
    seed = "\x1f".join([version, *names]).encode()
    start = hashlib.blake2b(seed, digest_size=8).digest()
    acc = pl.lit(int.from_bytes(start, "big"), pl.UInt64)
    if with_key:
        acc = (acc ^ pl.col("key").hash(_SEED)) * pl.lit(_MIX, pl.UInt64)
    for name in names:  # xor then odd multiply: each step is a bijection of the state
        acc = (acc ^ _field_hash(name, records.schema[name])) * pl.lit(_MIX, pl.UInt64)
    # The same 64 bits, signed: what a BIGINT column holds.
    expr = acc.reinterpret(signed=True)
    return records.with_columns(expr.alias("fingerprint"))["fingerprint"]


def fingerprint_before(records: pl.DataFrame, fields: Sequence[str]) -> pl.Series:
    """Each record's fingerprint as the syncd before this one made it (`f2`: without the
    key), with this polars."""
    return _fingerprint(records, fields, _LEGACY_VERSION, with_key=False)


def legacy_rows(records: pl.DataFrame, fields: Sequence[str], matched: pl.DataFrame) -> pl.Series:
    """The `ROW`s of the matched rows whose stored fingerprint differs from theirs only by
    the algorithm: it equals the row's fingerprint under `_LEGACY_VERSION`. Their values
    are as stored, so they are refreshed without being compared. Only the rows whose
    stored fingerprint differs are fingerprinted again: all of them on the first night
    after the upgrade (or after polars changed, when none is equal); after it, the
    changed users."""
    differ = pl.col("s_fp").is_not_null() & (pl.col("s_fp") != pl.col("fingerprint"))
    stale = matched.filter(pl.col("user_id").is_not_null() & differ).select(ROW, "s_fp")
    if stale.height == 0:
        return pl.Series(ROW, [], pl.UInt32)
    # A few rows are copied out to be fingerprinted; many are fingerprinted where they
    # are (a copy of every record is 1.3 GiB at 5,000,000 users).
    few = stale.height < records.height // 4
    subset = records.join(stale.select(ROW), on=ROW, how="semi") if few else records
    legacy = fingerprint_before(subset, fields)
    pairs = subset.select(ROW).with_columns(legacy.alias("_legacy")).join(stale, on=ROW)
    return pairs.filter(pl.col("_legacy") == pl.col("s_fp"))[ROW]


def _stored(snapshot: pl.DataFrame) -> pl.DataFrame:
    return snapshot.select(
        pl.col("user_id").cast(pl.Int64),
        "key",
        s_active="active",
        s_fp="fingerprint",
        s_email="email_hash",
    )


def slim_snapshot(read: pl.DataFrame) -> pl.DataFrame:
    """The `snapshot` frame of users read as `user_id`, `key`, `email_lc` (the stored
    lower-case email), `status` (active|archived) and `fingerprint`."""
    return read.select(
        pl.col("user_id").cast(pl.Int64),
        "key",
        email_hash(pl.col("email_lc")).alias("email_hash"),
        active=pl.col("status") == "active",
        fingerprint=pl.col("fingerprint").cast(pl.Int64),
    )


def _key_hash(key: pl.Expr) -> pl.Expr:
    return key.hash(_SEED)


def match(
    records: pl.DataFrame,
    snapshot: pl.DataFrame,
    fingerprints: pl.Series,
    *,
    key_hash: Callable[[pl.Expr], pl.Expr] = _key_hash,
) -> pl.DataFrame:
    """Each record beside its stored user, in the records' order: `ROW`, `key`,
    `status`, `email` and `password_tag` (when the records have them), `fingerprint`, and
    the snapshot's `user_id`, `s_active`, `s_fp`, `s_email` (null for a new key).

    `candidates` and `build_plan` both start from it, so the million-row join on keys is
    done once when the caller passes it to both. `key_hash` is for tests (see
    `_by_key_hash`)."""
    optional = [c for c in ("email", "password_tag") if c in records.columns]
    rows = records.select(ROW, "key", "status", *optional)
    rows = rows.with_columns(fingerprints.alias("fingerprint"))
    stored = _stored(snapshot)
    joined = _by_key_hash(rows, stored, key_hash)
    if joined is None:  # two keys share a hash: matched on the keys themselves
        joined = rows.join(stored, on="key", how="left", maintain_order="left")
    # Chunked like the records, so later filters of the matched rows need not copy them.
    lengths = rows[ROW].chunk_lengths()
    return pl.DataFrame([chunked_like(column, lengths) for column in joined.get_columns()])


def _by_key_hash(
    rows: pl.DataFrame, stored: pl.DataFrame, key_hash: Callable[[pl.Expr], pl.Expr]
) -> pl.DataFrame | None:
    """`rows` left-joined to `stored` on a 64-bit hash of the key, each match checked
    against the keys themselves; None when two different keys share a hash (odds about
    n² / 2^65: 10^-6 for 5,000,000 users). A no-change import of 5,000,000 users took
    1 s less this way than joined on the keys' text, and no more memory at its peak."""
    hashed, theirs = "\x00hash", "\x00key"
    found = rows.select(key_hash(pl.col("key")).alias(hashed)).join(
        stored.select(
            key_hash(pl.col("key")).alias(hashed),
            pl.all().exclude("key"),
            pl.col("key").alias(theirs),
        ),
        on=hashed,
        how="left",
        maintain_order="left",
    )
    if found.height != rows.height:  # a hash twice among the stored keys
        return None
    stored_key = found[theirs]
    if not (stored_key.is_null() | (stored_key == rows["key"])).all():
        return None
    return rows.with_columns(found.drop(hashed, theirs).get_columns())


def candidates(
    records: pl.DataFrame,
    fields: Sequence[str],
    snapshot: pl.DataFrame,
    *,
    fingerprints: pl.Series | None = None,
    matched: pl.DataFrame | None = None,
    legacy: pl.Series | None = None,
) -> pl.Series:
    """The user_ids whose stored details `build_plan` needs; empty for an unchanged file.
    `fingerprints`: `fingerprint(records, fields)`, `matched`: `match(...)` of them, and
    `legacy`: `legacy_rows(...)` of those, if the caller has them already (it then
    passes the same to `build_plan`: each is worked out once)."""
    if matched is None:
        if fingerprints is None:
            fingerprints = fingerprint(records, fields)
        matched = match(records, snapshot, fingerprints)
    rows = matched
    matched_user = pl.col("user_id").is_not_null()
    if legacy is None:
        legacy = legacy_rows(records, fields, matched)
    stale = ~pl.col("s_fp").eq_missing(pl.col("fingerprint"))
    if legacy.len():
        stale = stale & ~pl.col(ROW).is_in(legacy.implode())
    if "password_tag" in records.columns:  # only the stored tag tells a new password
        stale = stale | pl.col("password_tag").is_not_null()
    found = [rows.filter(matched_user & stale)["user_id"]]
    if "email" in records.columns:
        # Holders of an email that a record of another key claims: only a record whose
        # email differs from its own user's can claim one (the directory has no duplicates).
        # (Most emails equal their stored lower-case form as they are: only the others
        # are lower-cased, rather than a million.) By hashes: a user whose address only
        # shares a claim's hash is read for nothing, and no holder is missed.
        email_lc = pl.col("email").str.to_lowercase()
        claims = rows.filter(~email_hash(pl.col("email")).eq_missing(pl.col("s_email")))
        claims = claims.select(email_hash(email_lc).alias("email_hash"), "s_email", claimant="key")
        claims = claims.filter(~pl.col("email_hash").eq_missing(pl.col("s_email"))).drop("s_email")
        stored = snapshot.select("user_id", "email_hash", "key")
        holders = stored.join(claims.drop_nulls(), on="email_hash")
        found.append(holders.filter(pl.col("key") != pl.col("claimant"))["user_id"])
        # A record whose new address shares its own user's hash (so is no claim above)
        # may claim the address of another user with that hash: users whose hash is
        # another's are all read (there are none but by a 64-bit collision).
        shared = stored.drop_nulls("email_hash").filter(pl.col("email_hash").is_duplicated())
        found.append(shared["user_id"])
    return pl.concat(found).cast(pl.Int64).unique().sort().rename("user_id")


_NO_VALID_ROWS = (
    "no row of the file is valid, so nothing was applied (a full import without valid rows "
    "would archive every user); fix the rows the errors CSV lists and upload the file again"
)


class NothingValid(FileRejected):
    """A full import without one valid row: rejected whole. `row_errors` are the rows
    the planner refused (email conflicts, look-alike keys), beside validation's."""

    def __init__(self, row_errors: tuple[RowError, ...] = ()) -> None:
        super().__init__(_NO_VALID_ROWS, [f"row {e.row}: {e.render()}" for e in row_errors[:20]])
        self.row_errors = row_errors


def _field_changes(todo: pl.DataFrame, names: list[str], mode: Mode) -> pl.DataFrame:
    """`changed` and `email_changed` from the joined stored values; lists that add carry
    the union."""
    flags: list[pl.Expr] = []
    unions: list[pl.Expr] = []  # partial mode's groups/labels: part of the fingerprint
    additions: list[pl.Expr] = []  # source usernames: not part of it
    for name in names:
        new, stored = pl.col(name), pl.col(name + _STORED)
        if isinstance(todo.schema[name], pl.List):
            old = pl.coalesce(stored, pl.lit([], dtype=pl.List(pl.String)))
            # A blank list cell says nothing: `none` is how a file empties a list.
            if mode == "partial" or name in _ADD_ONLY_LISTS:
                # Adding: only an item the user lacks is a change; the row carries the union.
                changed = new.is_not_null() & (new.list.set_difference(old).list.len() > 0)
                union = old.list.concat(new).list.unique(maintain_order=True)
                if name in _ADD_ONLY_LISTS:
                    additions.append(pl.when(changed).then(union).otherwise(new).alias(name))
                else:
                    # `none` (an empty list, never a blank cell) clears the list even
                    # when adding (seed 002): the user is then in no group.
                    clears = (new.list.len() == 0) & (old.list.len() > 0)
                    changed = changed | clears.fill_null(False)
                    kept = pl.when(new.list.len() == 0).then(new)
                    unions.append(kept.when(new.is_not_null()).then(union).alias(name))
            else:  # full mode: the file's set replaces the stored one
                # Set comparison by differences: a per-row list sort is very slow.
                differ = (new.list.set_difference(old).list.len() > 0) | (
                    old.list.set_difference(new).list.len() > 0
                )
                changed = new.is_not_null() & differ
        else:  # a blank cell clears a stored value, so null against a value is a change
            changed = ~new.eq_missing(stored)
        flags.append(pl.when(changed).then(pl.lit(name)))
    if "password_tag" in todo.columns:  # a blank password never clears one
        tag = pl.col("password_tag")
        fresh = tag.is_not_null() & ~tag.eq_missing(pl.col("password_tag" + _STORED))
        flags.append(pl.when(fresh).then(pl.lit("password")))
    changed_list = (
        pl.concat_list(flags).list.drop_nulls() if flags else pl.lit([], dtype=pl.List(pl.String))
    )
    todo = todo.with_columns(*unions, changed=changed_list)
    if unions:
        # A partial row leaves the union stored; fingerprinting the row's own subset would
        # let a later full import of that same subset skip replacing the set.
        todo = todo.with_columns(fingerprint(todo, names))
    todo = todo.with_columns(*additions)
    email_changed = pl.lit(False)
    if "email" in names:  # a change of case only is an update, not an email change
        lower = pl.col("email").str.to_lowercase()
        email_changed = pl.col("changed").list.contains("email") & lower.ne_missing(
            pl.col("email" + _STORED).str.to_lowercase()
        )
    return todo.with_columns(email_changed=email_changed)


def _compared(
    records: pl.DataFrame,
    todo: pl.DataFrame,
    snap: pl.DataFrame,
    details: pl.DataFrame,
    names: list[str],
    mode: Mode,
) -> pl.DataFrame:
    """The whole records rows of `todo` (the rows whose fingerprint differs, or that
    carry a password) compared with their stored details: with `user_id`, the snapshot's
    `s_*` columns, `changed`, `_changes` and `email_changed`."""
    wanted = [*names, "password_tag"] if "password_tag" in records.columns else names
    stored_cols = [
        (
            pl.col(n).cast(records.schema[n])
            if n in details.columns
            else pl.lit(None, records.schema[n])
        ).alias(n + _STORED)
        for n in wanted
    ]
    stored = details.select(pl.col("user_id").cast(pl.Int64), *stored_cols, _found=pl.lit(True))
    known = todo.select(ROW, "fingerprint", "user_id").join(snap.drop("key"), on="user_id")
    rows = records.join(known, on=ROW).join(stored, on="user_id", how="left")
    missing = rows["_found"].null_count()
    if missing:
        raise ValueError(f"details lack {missing} user(s) that candidates() named")
    rows = _field_changes(rows, names, mode).drop([c + _STORED for c in wanted] + ["_found"])
    return rows.with_columns(_changes=pl.col("changed").list.len() > 0)


#: The stored details of the users `candidates()` names: the frame, or a function that
#: reads those of some of them (`build_plan` compares that many rows at a time).
Details = pl.DataFrame | Callable[[pl.Series], pl.DataFrame]
#: Rows compared at a time when the details come by a function: a night that compares
#: every user (after a polars upgrade its fingerprints are all stale) holds no more than
#: this many users' details and compared rows at once.
COMPARE_PART = 250_000
#: What is kept of a compared row that writes nothing (its `_changes` and `email_changed`
#: flags, and what a stale fingerprint's refresh needs).
_FLAGS = (ROW, "user_id", "fingerprint", "s_fp", "_changes", "email_changed", "_kind")


def _compared_parts(
    records: pl.DataFrame,
    need: pl.DataFrame,
    snap: pl.DataFrame,
    details: Details,
    names: list[str],
    mode: Mode,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of `need` compared with their stored details (`_compared`, with kinds):
    whole for the rows that write, and `_FLAGS` for every one. With details read by a
    function, `COMPARE_PART` rows at a time."""
    if isinstance(details, pl.DataFrame):
        parts = [(need, details)]
    else:
        parts = [
            (part, details(part["user_id"]))
            for part in (need.slice(at, COMPARE_PART) for at in range(0, need.height, COMPARE_PART))
        ] or [(need, details(need["user_id"]))]
    writes, flags = [], []
    for rows, stored in parts:
        compared = with_kind(_compared(records, rows, snap, stored, names, mode))
        writes.append(compared.filter(WRITES))
        flags.append(compared.select(_FLAGS))
        del compared, stored
    return pl.concat(writes), pl.concat(flags)


def _stored_emails(details: Details, user_ids: pl.Series) -> pl.DataFrame:
    """`user_id` and the stored `email_lc` of `user_ids`, from their details (every user
    whose email hash a claim shares is among those `candidates()` names)."""
    ids = user_ids.unique().cast(pl.Int64).alias("user_id").to_frame()

    def emails(frame: pl.DataFrame) -> pl.DataFrame:  # (only the ids' are lower-cased)
        frame = frame.select(pl.col("user_id").cast(pl.Int64), "email")
        frame = frame.join(ids, on="user_id", how="semi")
        return frame.select("user_id", email_lc=pl.col("email").str.to_lowercase())

    if isinstance(details, pl.DataFrame):
        found = emails(details)
    else:  # `COMPARE_PART` users at a time, as the compared rows' details
        parts = range(0, ids.height, COMPARE_PART)
        found = pl.concat([emails(details(ids["user_id"].slice(at, COMPARE_PART))) for at in parts])
    if found.height < ids.height:
        raise ValueError(
            f"details lack {ids.height - found.height} user(s) that candidates() named"
        )
    return found


def build_plan(
    validated: Validated,
    snapshot: pl.DataFrame,
    details: Details,
    *,
    mode: Mode,
    fingerprints: pl.Series | None = None,
    matched: pl.DataFrame | None = None,
    legacy: pl.Series | None = None,
) -> tuple[Plan, tuple[RowError, ...]]:
    """The plan of one job, and the rows it turns invalid (email conflicts), whose
    errors the counts already include. `details`: those of the users `candidates` names
    (`Details`). `fingerprints`, `matched`, `legacy`: as for `candidates`."""
    records = validated.records
    if mode == "full" and records.height == 0:
        raise NothingValid()
    if "password" in records.columns and "password_tag" not in records.columns:
        raise ValueError("records carry passwords but no password_tag: add password_tags()")
    names = _compared_fields(records, validated.fields)
    snap = _stored(snapshot)
    if matched is None:
        if fingerprints is None:
            fingerprints = fingerprint(records, names)
        matched = match(records, snapshot, fingerprints)
    fingerprints = matched["fingerprint"]  # in the records' order
    guessed, guessed_errors, guessed_keys = guessed_text(matched, validated)
    # Each row's fate is decided on a narrow frame; only the rows that may write are
    # taken whole from the records (a million-row frame copied is hundreds of MiB).
    rows = matched.drop("s_email")
    # An equal fingerprint proves the row would change nothing (see the module docstring);
    # so does a stored one of the previous algorithm, equal under it (then refreshed).
    known = pl.col("user_id").is_not_null()
    if legacy is None:
        legacy = legacy_rows(records, names, matched)
    need = known & ~pl.col("s_fp").eq_missing(pl.col("fingerprint"))
    if legacy.len():
        need = need & ~pl.col(ROW).is_in(legacy.implode())
    if "password_tag" in records.columns:  # only the stored tag tells a new password
        need = need | (known & pl.col("password_tag").is_not_null())
    rows = rows.with_columns(_need=need).drop("s_fp", "password_tag", strict=False)
    todo, flags = _compared_parts(records, rows.filter("_need"), snap, details, names, mode)
    # The compared rows' answers flagged in place: no million-row frame is split or copied.
    rows = with_kind(
        rows.with_columns(
            _changes=pl.col(ROW).is_in(flags.filter("_changes")[ROW].implode()),
            email_changed=pl.col(ROW).is_in(flags.filter("email_changed")[ROW].implode()),
        )
    )

    # Rows the planner refuses become invalid: each one's user stays as it is and counts
    # as present, and so does the user each one was refused for (the holder of the email
    # it claims, the user whose key it looks like), whom it most likely means.
    present = [rows.select("user_id").drop_nulls()]  # refused rows' users included
    lookalikes, lookalike_errors, meant = lookalike_keys(rows, snap, validated.key_header)
    refused = [guessed, lookalikes]
    rows, todo, flags = _without(refused, rows, todo, flags)
    conflicted, conflict_errors, holders = email_conflicts(
        rows, snap, validated.headers.get("email", "email"), partial(_stored_emails, details)
    )
    rows, todo, flags = _without([conflicted], rows, todo, flags)
    present += [meant, holders]
    conflicts = tuple(
        sorted((*guessed_errors, *lookalike_errors, *conflict_errors), key=lambda e: e.row)
    )
    if mode == "full" and rows.height == 0:
        raise NothingValid(conflicts)

    out = [*records.columns, "fingerprint"]
    creates = _whole_rows(records, fingerprints, rows.filter(KIND == "create"))
    # Rows that were not compared yet write: reactivations with nothing else changed.
    plain = _whole_rows(records, fingerprints, rows.filter(WRITES & ~pl.col("_need")))
    plain = plain.join(rows.select(ROW, "user_id", "_kind"), on=ROW).with_columns(
        changed=pl.lit([], dtype=pl.List(pl.String)), email_changed=pl.lit(False)
    )
    update_columns = [*out, "user_id", "changed", "reactivate", "email_changed"]
    reactivate = (KIND == "reactivate").alias("reactivate")
    updates = pl.concat(
        [
            todo.with_columns(reactivate).select(update_columns),
            plain.with_columns(reactivate).select(update_columns),
        ]
    ).sort(ROW)
    # Nothing to write, but a stale fingerprint would send the user to details every time.
    # (Only compared rows and the legacy ones can be stale: the others' are equal.)
    refresh = flags.filter(~WRITES & ~pl.col("s_fp").eq_missing(pl.col("fingerprint")))
    refresh = refresh.select("user_id", "fingerprint")
    if legacy.len():
        old = rows.filter(pl.col(ROW).is_in(legacy.implode()) & ~WRITES & ~pl.col("_need"))
        refresh = pl.concat([refresh, old.select("user_id", "fingerprint")])
    by_status = rows.filter(KIND == "archive").select("user_id", "key", reason=pl.lit("status"))

    active = pl.col("s_active")
    absent = snap.head(0).select("user_id", "key", reason=pl.lit("absent"))
    blocked: str | None = None
    if mode == "full":
        # Present: every valid row's key and every invalid row whose key could be read.
        # (valid rows' users by id, cheaper than a second million-row join on keys; and
        # one filter, so that only the missing users' rows are ever copied)
        seen = pl.concat(present)["user_id"]
        missing = snap.filter(active & ~pl.col("user_id").is_in(seen.implode()))
        if validated.invalid_keys:
            keyed = pl.Series("key", validated.invalid_keys, pl.String).to_frame()
            missing = missing.join(keyed, on="key", how="anti")
            # An invalid row's key with its leading zeros lost (or gained) means that
            # stored user just as much as a valid row's does (see `refusals.lookalike_keys`).
            numbers = keyed.select(_v=digits_value(pl.col("key"))).drop_nulls()
            if numbers.height:
                missing = (
                    missing.with_columns(_v=digits_value(pl.col("key")))
                    .join(numbers, on="_v", how="anti")
                    .drop("_v")
                )
        if validated.unreadable_keys or guessed_keys:
            # An unreadable key may be any absent user's, and so may a key read through a
            # guessed encoding that matches nobody: archiving them could be wrong.
            blocked = _blocked_sentence(
                validated.unreadable_keys, guessed_keys, validated.table.encoding, missing.height
            )
        else:
            absent = missing.select("user_id", "key", reason=pl.lit("absent"))

    tally = rows.select(
        created=((KIND == "create") & (pl.col("status") == "active")).sum(),
        new_archived=((KIND == "create") & (pl.col("status") == "archived")).sum(),
        updated=(KIND == "update").sum(),
        unchanged=(KIND == "unchanged").sum(),
        reactivated=(KIND == "reactivate").sum(),
        email_changed=((KIND == "update") & pl.col("email_changed")).sum(),
    ).row(0, named=True)
    counts = Counts(
        rows=validated.rows,
        valid=rows.height,
        invalid=validated.invalid + len(conflicts),
        created=tally["created"],
        updated=tally["updated"],
        unchanged=tally["unchanged"],
        archived=tally["new_archived"] + by_status.height + absent.height,
        reactivated=tally["reactivated"],
        email_changed=tally["email_changed"],
    )
    plan = Plan(
        mode=mode,
        fields=tuple(validated.fields),
        creates=creates,
        updates=updates,
        refresh=refresh,
        archives=pl.concat([by_status, absent]),
        counts=counts,
        active_before=snap.select(active.sum()).item(),
        archive_blocked=blocked,
    )
    return plan, conflicts


@dataclass(frozen=True, slots=True)
class FingerprintSums:
    """Users' fingerprints summed, as the store sums its active users' (`quiet_plan`):
    how many users, how many have no fingerprint, and the sums of the fingerprints' low
    32 bits (unsigned) and high 32 bits (signed). Each sum is exact in 64 bits for up to
    2^31 users, and together they are the sum of the whole fingerprints."""

    users: int
    unfingerprinted: int
    low: int
    high: int


#: How `FingerprintSums` split each fingerprint: its low `HALF_BITS` bits (`LOW_BITS`
#: masked), unsigned, and the rest, shifted down (the store sums them in SQL alike).
HALF_BITS = 32
LOW_BITS = (1 << HALF_BITS) - 1


def fingerprint_sums(fingerprints: pl.Series) -> FingerprintSums:
    """`fingerprints` summed (`FingerprintSums`); the high bits by floor division, which is
    the arithmetic shift SQL's `>> 32` does."""
    fp = pl.col(fingerprints.name)
    sums = fingerprints.to_frame().select(
        users=pl.len(),
        unfingerprinted=fp.null_count(),
        low=(fp & LOW_BITS).sum(),
        high=(fp // (1 << HALF_BITS)).sum(),
    )
    return FingerprintSums(**{k: int(v) for k, v in sums.row(0, named=True).items()})


def quiet_sums(validated: Validated, fingerprints: pl.Series) -> FingerprintSums | None:
    """What the directory's active users' fingerprints must sum to for `validated` to
    change nothing (`quiet_plan`); None when the file may change something whatever they
    are: a row failed (its key may stand for anyone), a row carries a password (only the
    stored tag tells a new one) or says its user is archived (status is not fingerprinted),
    or the file's encoding was guessed (a key read through a guess is only trusted once
    the directory confirms it, row by row)."""
    records = validated.records
    if (
        records.height == 0
        or validated.invalid  # (rows whose key is unreadable among them)
        or validated.table.guessed_encoding
        or "password" in records.columns
        or "password_tag" in records.columns
        or not records.select((pl.col("status") == "active").all()).item()
    ):
        return None
    return fingerprint_sums(fingerprints)


def quiet_plan(
    validated: Validated, mode: Mode, sums: FingerprintSums, stored: FingerprintSums
) -> Plan | None:
    """The plan of a file that changes nothing, proved without the directory's snapshot:
    `sums` is `quiet_sums` of the file, `stored` the same sums over the directory's active
    users. None when they differ (the job plans as usual).

    Equal, the file's rows are the active users, each as stored: every fingerprint holds
    its key (`fingerprint`), the keys of the file are distinct (validation) and so are the
    directory's, and they are as many. Only a change whose fingerprints sum exactly as the
    stored ones do, about one chance in 2^64 for any change, passes for none (the snapshot
    compares each user's 64 bits: the same odds a user). So `build_plan` would find every
    row unchanged (same key, active both, equal fingerprint, no password), nobody absent
    (as many rows as active users, each matched) and nothing to refuse (look-alike keys
    are new keys; an email is claimed only by a new or changed user; no encoding was
    guessed). That plan is returned, with no user's frame built.
    """
    if stored != sums or sums.unfingerprinted:
        return None
    records = validated.records
    with_fp = records.head(0).with_columns(pl.lit(None, pl.Int64).alias("fingerprint"))
    updates = with_fp.with_columns(
        pl.lit(None, pl.Int64).alias("user_id"),
        pl.lit(None, pl.List(pl.String)).alias("changed"),
        pl.lit(None, pl.Boolean).alias("reactivate"),
        pl.lit(None, pl.Boolean).alias("email_changed"),
    )
    archives = pl.DataFrame(schema={"user_id": pl.Int64, "key": pl.String, "reason": pl.String})
    return Plan(
        mode=mode,
        fields=tuple(validated.fields),
        creates=with_fp,
        updates=updates,
        refresh=pl.DataFrame(schema={"user_id": pl.Int64, "fingerprint": pl.Int64}),
        archives=archives,
        counts=Counts(rows=validated.rows, valid=records.height, unchanged=records.height),
        active_before=stored.users,
    )


def _whole_rows(records: pl.DataFrame, fingerprints: pl.Series, rows: pl.DataFrame) -> pl.DataFrame:
    """The records rows (with `fingerprint`) whose `ROW` is in `rows`, in row order;
    all of them without a copy when that is every row."""
    whole = records.with_columns(fingerprints.alias("fingerprint"))
    if rows.height != records.height:
        whole = whole.join(rows.select(ROW), on=ROW, how="semi")
    return whole if whole[ROW].is_sorted() else whole.sort(ROW)


def _blocked_sentence(unreadable: int, guessed: int, encoding: str, absent: int) -> str:
    causes = []
    if unreadable:
        causes.append("1 row has" if unreadable == 1 else f"{unreadable} rows have")
        causes[-1] += " no readable key"
    if guessed:
        causes.append(
            f"{'1 row has a key' if guessed == 1 else f'{guessed} rows have keys'} read "
            f"through a guessed encoding ({encoding}) that match no user"
        )
    users = "1 user" if absent == 1 else f"{absent} users"
    return (
        f"{' and '.join(causes)}, so for safety no user was archived for being absent "
        f"from the file ({users} would have been); fix those rows and import the file again"
    )


def _without(refused: Sequence[pl.Series], *frames: pl.DataFrame) -> list[pl.DataFrame]:
    """`frames` without the refused rows (each of `refused` a Series of `ROW`)."""
    gone = pl.concat(refused).to_frame(ROW) if refused else None
    if gone is None or gone.height == 0:
        return list(frames)
    return [frame.join(gone, on=ROW, how="anti") for frame in frames]
