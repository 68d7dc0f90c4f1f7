"""Rows the planner refuses, and the users they protect.

A valid row can still be one the directory cannot take, or one that most likely means
another user than it names:
- its email belongs to another user (or two rows claim it) (`email_conflicts`);
- its key is a stored key with the leading zeros a spreadsheet took (`lookalike_keys`);
- it was read through a guessed encoding and its key or email matches nobody
  (`guessed_text`).
Each refused row becomes invalid: its own user stays as it is, and the user it was refused
for counts as present, so a full import never archives the person the row means.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from syncd.core.records import Validated
from syncd.core.row_kinds import KIND, WRITES
from syncd.core.table import ROW, RowError

#: The seed of `email_hash`: any constant, the same in every process.
_EMAIL_SEED = 0x5E_4D_A1_15


def email_hash(email_lc: pl.Expr) -> pl.Expr:
    """A lower-case email as the planner's snapshot holds it (`syncd.core.plan`): its
    64-bit hash, null for none. Stable within one polars version, so a snapshot is hashed
    by the process that plans against it, never stored."""
    return pl.when(email_lc.is_not_null()).then(email_lc.hash(_EMAIL_SEED))


def _distinct_hashes(values: pl.Series) -> bool:
    """Whether the values' 64-bit hashes all differ, which proves that no value occurs
    twice (a million addresses: 0.03 s, against 0.14 s counting the distinct strings).
    Two different values sharing a hash only send the caller down its exact path."""
    return values.hash().n_unique() == values.len()


def email_conflicts(
    rows: pl.DataFrame,
    snap: pl.DataFrame,
    column: str,
    stored_emails: Callable[[pl.Series], pl.DataFrame],
) -> tuple[pl.Series, tuple[RowError, ...], pl.DataFrame]:
    """Rows whose new email another user keeps, or that two rows claim, and the users
    who keep those emails (`user_id`); repeated because a rejected row keeps its user's
    old email, which may undo a swap. The snapshot holds the emails' hashes:
    `stored_emails` gives the lower-case addresses (`user_id`, `email_lc`) of the users
    whose hash a claim shares, which decide."""
    none = snap.head(0).select("user_id")
    if "email" not in rows.columns:
        return pl.Series(ROW, [], pl.UInt32), (), none
    moving = WRITES & pl.col("email_changed")
    claim = rows.select(((KIND == "create") | moving) & pl.col("email").is_not_null()).to_series()
    claiming = rows.select(ROW, "key", "user_id", "email")
    if not claim.all():  # a filter copies even when it keeps every row, as a first load's
        claiming = claiming.filter(claim)
    if claiming.height == 0:
        return pl.Series(ROW, [], pl.UInt32), (), none
    lowered = claiming["email"].str.to_lowercase().alias("email_lc")
    # Claims only shrink, so only holders of an email claimed now can ever matter.
    held = snap.select("user_id", "s_email", holder="key")
    if held.height:  # (a first load's snapshot is empty: no frame of every claim for it)
        hashes = lowered.to_frame().select(email_hash(pl.col("email_lc")).alias("s_email"))
        held = held.join(hashes, on="s_email", how="semi")
    held = held.drop("s_email")
    if held.height:
        # Those whose hash a claim shares, with their addresses: equal ones hold it.
        emails = stored_emails(held["user_id"]).select("user_id", "email_lc")
        held = held.join(emails, on="user_id").join(lowered.to_frame(), on="email_lc", how="semi")
    else:
        held = held.with_columns(email_lc=pl.lit(None, pl.String))
    if held.height == 0 and _distinct_hashes(lowered):
        # Nobody holds a claimed email and no two rows claim one: no conflict (what the
        # loop below finds at once), decided without its frames of every claim (a first
        # load claims every email: at 5,000,000 users they took 840 MiB).
        return pl.Series(ROW, [], pl.UInt32), (), none
    movers = rows.filter(moving).select("user_id")
    claims = claiming.with_columns(lowered)
    del claiming, lowered
    errors: list[RowError] = []
    keepers: list[pl.Series] = []
    while claims.height:
        holders = held.join(movers, on="user_id", how="anti").rename({"user_id": "holder_id"})
        taken = claims.join(holders, on="email_lc").unique(ROW, keep="first", maintain_order=True)
        keepers.append(taken["holder_id"])
        shared = claims.filter(pl.len().over("email_lc") > 1).join(taken, on=ROW, how="anti")
        if taken.height == 0 and shared.height == 0:
            break
        for r in taken.iter_rows(named=True):
            text = (
                f"'{r['email']}' belongs to another user (key {r['holder']}); give this row "
                "an email no other user has, or change that user's email in the same file"
            )
            if zeros_differ(r["key"], r["holder"]):
                text += (
                    f"; key {r['key']} looks like {r['holder']} with its leading zeros "
                    "changed (a spreadsheet drops them from numbers): if this row is that "
                    "user, write the key as text, exactly as stored"
                )
            errors.append(RowError(r[ROW], column, text))
        groups = claims.join(shared.select("email_lc").unique(), on="email_lc")
        firsts = groups.group_by("email_lc").agg(pl.col(ROW).head(2), pl.col("key").head(2))
        pairs = {g["email_lc"]: list(zip(g[ROW], g["key"], strict=True)) for g in firsts.to_dicts()}
        for r in shared.iter_rows(named=True):
            pair = pairs[r["email_lc"]]
            other_row, other_key = pair[1] if pair[0][0] == r[ROW] else pair[0]
            text = (
                f"'{r['email']}' is also given to key {other_key} on row {other_row}; "
                "an email can belong to one user only, so keep it on one row"
            )
            errors.append(RowError(r[ROW], column, text))
        bad = pl.concat([taken.select(ROW, "user_id"), shared.select(ROW, "user_id")])
        claims = claims.join(bad, on=ROW, how="anti")
        movers = movers.join(bad.select("user_id").drop_nulls(), on="user_id", how="anti")
    errors.sort(key=lambda e: e.row)
    kept = pl.concat(keepers).alias("user_id").to_frame() if keepers else none
    return pl.Series(ROW, [e.row for e in errors], pl.UInt32), tuple(errors), kept


def digits_value(key: pl.Expr) -> pl.Expr:
    """A key of digits only as the number it spells (no leading zeros); null otherwise."""
    stripped = key.str.strip_chars_start("0")
    return pl.when(key.str.contains(r"^[0-9]+$")).then(
        pl.when(stripped == "").then(pl.lit("0")).otherwise(stripped)
    )


def lookalike_keys(
    rows: pl.DataFrame, snap: pl.DataFrame, column: str
) -> tuple[pl.Series, tuple[RowError, ...], pl.DataFrame]:
    """New keys that are a stored key with its leading zeros lost (or gained): Excel turns
    `00012` into `12`. Such a row would create a second user and, in a full import, leave
    the first one absent; it is refused instead, and the stored user counts as present.

    Only users no row of the file matches are looked at: when `00012` and `12` are both
    in the file, they are two people."""
    creates = rows.filter(KIND == "create").select(ROW, "key", value=digits_value(pl.col("key")))
    creates = creates.drop_nulls("value")
    empty = (pl.Series(ROW, [], pl.UInt32), (), snap.head(0).select("user_id"))
    if creates.height == 0:
        return empty
    matched = rows.select("user_id").drop_nulls()
    stored = snap.join(matched, on="user_id", how="anti").select(
        "user_id", stored_key="key", value=digits_value(pl.col("key"))
    )
    alike = creates.join(stored.drop_nulls("value"), on="value").unique(ROW, keep="first")
    if alike.height == 0:
        return empty
    errors = tuple(
        RowError(
            r[ROW],
            column,
            f"key '{r['key']}' looks like '{r['stored_key']}' with its leading zeros "
            f"{'lost' if len(r['key']) < len(r['stored_key']) else 'added'} (a spreadsheet "
            "drops them from numbers); write the key as text, exactly as stored, and "
            f"upload again; '{r['stored_key']}' was left as it is",
        )
        for r in alike.sort(ROW).iter_rows(named=True)
    )
    return alike[ROW], errors, alike.select("user_id")


def zeros_differ(key: str, other: str) -> bool:
    """Whether two keys are the same number written with other leading zeros."""
    return (
        key != other
        and key.isascii()
        and other.isascii()
        and key.isdigit()
        and other.isdigit()
        and int(key) == int(other)
    )


def guessed_text(
    matched: pl.DataFrame, validated: Validated
) -> tuple[pl.Series, tuple[RowError, ...], int]:
    """Rows of a file whose encoding was guessed (decoded whole with the fallback codec)
    that would store a key or email no byte of the file vouches for: a non-ASCII key that
    matches no user, or a non-ASCII email that is not the user's stored one. A wrong
    guess garbles exactly these; a right one is confirmed by the directory. Returns the
    rows, their errors, and how many of them have such keys (which block archiving: a
    garbled key may be any absent user's)."""
    empty: tuple[pl.Series, tuple[RowError, ...], int] = (pl.Series(ROW, [], pl.UInt32), (), 0)
    if not validated.table.guessed_encoding:
        return empty

    def non_ascii(name: str) -> pl.Expr:
        return pl.col(name).str.len_bytes() != pl.col(name).str.len_chars()

    new_key = pl.col("user_id").is_null() & non_ascii("key")
    new_email = pl.lit(False)
    if "email" in matched.columns:
        # By hash: an address that only shares its user's hash passes as theirs (one
        # chance in 2^64 for each such row).
        stored = email_hash(pl.col("email").str.to_lowercase()).eq_missing(pl.col("s_email"))
        new_email = non_ascii("email").fill_null(False) & ~stored
    suspect = matched.filter(new_key | new_email).select(
        ROW,
        "key",
        "email" if "email" in matched.columns else pl.lit(None).alias("email"),
        new_key=new_key,
    )
    if suspect.height == 0:
        return empty
    encoding = validated.table.encoding
    advice = (
        f"the file is not UTF-8 and was read as {encoding}, a guess: a key or email read "
        "through a guess is stored only when it matches the directory; save the file as "
        "CSV UTF-8 and upload it again"
    )
    errors = tuple(
        RowError(
            r[ROW],
            validated.key_header if r["new_key"] else validated.headers.get("email", "email"),
            f"{'key' if r['new_key'] else 'email'} "
            f"'{r['key'] if r['new_key'] else r['email']}' matches no user; {advice}",
        )
        for r in suspect.iter_rows(named=True)
    )
    return suspect[ROW], errors, int(suspect["new_key"].sum())
