"""Applying a `Plan` to the directory: the hot path of every job.

A plan is written with a handful of set-based statements (see `syncd.store.bulk`), never
a statement per user: creates are bulk-inserted (COPY on PostgreSQL) with ids drawn
beforehand, so their list rows need no read-back; updates write only the columns that
change, one `UPDATE ... FROM` a staged table per set of changed fields, custom fields
merged into the stored JSON (a field the row does not change keeps its value); lists are
rewritten only for users whose lists changed; archives and fingerprint refreshes go
through a staged table of ids. Unchanged users are not touched. Order matters for unique
emails: archives, then updates (old addresses released first), then creates.

Memory: creates are written `_SLICE` users at a time, so apply holds little beside the
plan its caller holds.

A first load into empty tables takes them alone (when no other job is using them): the
unique indexes are built after the rows (`bulk.without_indexes`) and, on PostgreSQL, so
are the primary keys of the users and of the list tables written, the users' ids are
reserved in one step (`bulk.new_ids`), and the values every new user shares become
column defaults for the load (`bulk.constants_as_defaults`). Measured on a million
users: SQLite 16.5 s -> 7.5 s, PostgreSQL 22.6 s -> 10 s for the whole apply. On another
day, on a busier machine, PostgreSQL's apply took 28-30 s with its primary keys kept
during the load, ids drawn one by one and users sent as CSV, and 16-22 s without them and
the users in binary (`bulk.insert_frame`); the whole `syncd import` 36.4 s against 28.1 s
(medians of three runs, taken in turns).

The users' memberships are written on the job's own connection, after each slice of
users, not on a second connection while the users' COPY runs: that would have to be a
transaction of its own, committed before the job's, and none of the ways to make the
two one outcome paid (measured on a million users, two cores: a staging table moved by
`INSERT ... SELECT` took 12.4-13.5 s against 7.6-8.2 s on one connection; a table
swapped in by rename 6.9-8.8 s, no gain, and it would lose the table's grants; two-phase
commit is off in a default PostgreSQL, `max_prepared_transactions = 0`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from contextlib import nullcontext
from datetime import datetime

import polars as pl
from sqlalchemy import (
    Connection,
    Index,
    PrimaryKeyConstraint,
    Table,
    Text,
    case,
    cast,
    delete,
    func,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from syncd.core.plan import Plan
from syncd.core.records import CUSTOM_PREFIX
from syncd.store.bulk import (
    constants_as_defaults,
    db_time,
    insert_frame,
    insert_unless_exists,
    lock_alone,
    new_ids,
    read_frame,
    staged,
    without_indexes,
)
from syncd.store.directory import LABEL_KINDS, LIST_FIELDS, SCALAR_FIELDS
from syncd.store.schema import (
    USER_INDEXES,
    groups,
    labels,
    memberships,
    source_usernames,
    users,
)

# Creates written at a time: each slice's rows exist as database-ready frames and Python
# tuples only while it is written.
_SLICE = 100_000
# From this many creates into an empty table, a load with the table alone pays.
_LOAD_ALONE_FROM = 50_000


def apply_plan(
    conn: Connection,
    directory_id: int,
    plan: Plan,
    *,
    job_id: str,
    now: datetime,
    password_hashes: Mapping[str, str] | None = None,
    groups_to_create: Iterable[str] = (),
) -> None:
    """Write `plan` to the directory, inside the caller's transaction.

    `password_hashes` maps a record's key to the argon2 hash of its new password (only
    rows whose password changes); the record's `password_tag` is stored beside it. Every
    group a record names is created if missing (the validator already refused those that
    may not be), as is every name in `groups_to_create`. List fields are stored as given:
    the planner has already merged what partial mode adds.
    """
    hashes = dict(password_hashes or {})
    group_ids = _ensure_groups(conn, directory_id, {*_named_groups(plan), *groups_to_create})
    _archive(conn, plan.archives, job_id=job_id, now=now)
    _update(conn, plan.updates, job_id=job_id, now=now, hashes=hashes, group_ids=group_ids)
    _create(conn, directory_id, plan.creates, job_id, now, hashes, group_ids)
    if plan.refresh.height:
        stage_rows = plan.refresh.select(pl.col("user_id").alias("id"), "fingerprint")
        with staged(conn, stage_rows, {"fingerprint": users.c.fingerprint.type}) as stage:
            conn.execute(
                update(users).where(*_staged_users(stage)).values(fingerprint=stage.c.fingerprint)
            )


def _named_groups(plan: Plan) -> set[str]:
    names: set[str] = set()
    for frame in (plan.creates, plan.updates):
        if "groups" in frame.columns:
            names.update(frame.get_column("groups").explode().drop_nulls().unique().to_list())
    return names


def _ensure_groups(conn: Connection, directory_id: int, names: set[str]) -> pl.DataFrame:
    """Every group of the directory as `value` (name) -> `group_id`, creating `names`."""
    query = select(groups.c.name, groups.c.id).where(groups.c.directory_id == directory_id)
    schema = pl.Schema({"value": pl.String, "group_id": pl.Int64})
    known = read_frame(conn, query, schema)
    missing = sorted(names - set(known.get_column("value").to_list()))
    if not missing:
        return known
    conn.execute(
        insert_unless_exists(conn, groups),
        [{"directory_id": directory_id, "name": name} for name in missing],
    )
    return read_frame(conn, query, schema)


def _archive(conn: Connection, archives: pl.DataFrame, *, job_id: str, now: datetime) -> None:
    if archives.height == 0:
        return
    with staged(conn, archives.select(pl.col("user_id").alias("id")).unique(), {}) as stage:
        conn.execute(
            update(users)
            .where(users.c.id.in_(select(stage.c.id)))
            .values(status="archived", archived_at=now, updated_at=now, last_job_id=job_id)
        )


def _update(
    conn: Connection,
    updates: pl.DataFrame,
    *,
    job_id: str,
    now: datetime,
    hashes: dict[str, str],
    group_ids: pl.DataFrame,
) -> None:
    if updates.height == 0:
        return
    # A reactivated user's status changes whatever `changed` lists.
    reactivate = pl.col("reactivate").fill_null(False)
    changed = pl.when(reactivate).then(pl.col("changed").list.concat(pl.lit(["status"])))
    frame = updates.with_columns(
        changed.otherwise(pl.col("changed")).list.unique().list.sort().alias("changed"),
        pl.when(reactivate).then(pl.lit("active")).otherwise(pl.col("status")).alias("status"),
    ).with_columns(pl.col("changed").list.join(",").alias("_changed_set"))
    moving = frame.filter(pl.col("changed").list.contains("email"))
    if moving.height:
        # Release the old addresses first, so users trading emails within one file do
        # not trip the unique constraint halfway through.
        with staged(conn, moving.select(pl.col("user_id").alias("id")), {}) as stage:
            conn.execute(
                update(users).where(users.c.id.in_(select(stage.c.id))).values(email_lc=None)
            )
    for (changed_set,), rows in frame.partition_by("_changed_set", as_dict=True).items():
        fields = str(changed_set).split(",") if changed_set else []
        _update_users(conn, rows, fields, job_id=job_id, now=now, hashes=hashes)
    for field in LIST_FIELDS:
        rows = frame.filter(pl.col("changed").list.contains(field))
        if rows.height:
            _delete_children(conn, field, rows)
            _insert_children(conn, field, rows, group_ids)


def _update_users(
    conn: Connection,
    rows: pl.DataFrame,
    fields: list[str],
    *,
    job_id: str,
    now: datetime,
    hashes: dict[str, str],
) -> None:
    """One UPDATE for users sharing one set of changed fields: only those columns move."""
    columns = [pl.col("user_id").alias("id"), pl.col("fingerprint")]
    columns += [pl.col(f) for f in SCALAR_FIELDS if f in fields]
    if "email" in fields:
        columns.append(pl.col("email").str.to_lowercase().alias("email_lc"))
    if "status" in fields:
        columns.append(pl.col("status"))
    if "password" in fields:
        columns += _password_columns(rows, hashes)
    custom = [f for f in fields if f.startswith(CUSTOM_PREFIX)]
    if custom:
        # Every row of this set changes the same fields: the patch names just those,
        # with null for a value blanked, which the merge removes.
        patch = pl.struct(pl.col(f).alias(f.removeprefix(CUSTOM_PREFIX)) for f in custom)
        columns.append(patch.struct.json_encode().alias("fields"))
    stage_rows = rows.select(columns)
    types = {name: users.c[name].type for name in stage_rows.columns if name != "id"}
    with staged(conn, stage_rows, types) as stage:
        values: dict[str, object] = {
            name: stage.c[name] for name in stage_rows.columns if name != "id"
        }
        if custom:
            values["fields"] = _merged(conn, stage.c.fields)
        if "status" in fields:
            archived_now = literal(now, users.c.archived_at.type)
            values["archived_at"] = case((stage.c.status == "archived", archived_now), else_=null())
        values.update(updated_at=now, last_job_id=job_id)
        conn.execute(update(users).where(*_staged_users(stage)).values(values))


def _staged_users(stage: Table) -> tuple[ColumnElement[bool], ...]:
    """The users rows an `UPDATE users ... FROM stage` writes. The IN makes SQLite look
    the users up by the staged ids; on the join alone it scans every user (measured: 0.25
    s against 0.08 s for 11,000 of a million)."""
    return users.c.id == stage.c.id, users.c.id.in_(select(stage.c.id))


def _merged(conn: Connection, patch: ColumnElement[str]) -> ColumnElement[str]:
    """The stored `fields` with `patch` (JSON) merged in: its values replace, its nulls
    remove; no fields left is NULL, as a user created without any has."""
    if conn.dialect.name == "postgresql":
        stored = func.coalesce(cast(users.c.fields, JSONB), cast("{}", JSONB))
        joined = stored.op("||", return_type=JSONB)(cast(patch, JSONB))
        merged: ColumnElement[str] = cast(func.jsonb_strip_nulls(joined), Text)
    else:  # SQLite's json_patch is RFC 7396: a null in the patch removes the member
        merged = func.json_patch(func.coalesce(users.c.fields, "{}"), patch)
    return func.nullif(merged, "{}")


def _fields_json(custom: list[str], blanks: Collection[str]) -> pl.Expr:
    """Custom field columns as one JSON object per row, blank values left out (null
    when all are blank). `blanks`: the fields that hold a blank (null) on some row.

    The row is encoded whole, in one pass; the blank members are then cut out of the
    rows' text, which only the fields in `blanks` need (a million rows of four fields:
    0.07 s, 0.32 s when all four may be blank, against 0.5 to 0.8 s encoding each value
    alone and joining them).
    """
    names = [f.removeprefix(CUSTOM_PREFIX) for f in custom]
    body = pl.struct(pl.col(f).alias(n) for f, n in zip(custom, names, strict=True))
    text = body.struct.json_encode()
    # Each member as the encoder writes it when blank: `"name":null`. Inside a string
    # value every '"' is escaped, so `,"name":null` and `{"name":null` occur only
    # where that member is.
    members = {f: _blank_member(n) for f, n in zip(custom, names, strict=True)}
    cut = ["," + members[f] for f in custom if f in blanks]
    if cut:
        text = text.str.replace_many(cut, [""] * len(cut))
    if custom[0] in blanks:  # the first member has no comma before it
        text = text.str.replace("{" + members[custom[0]] + ",", "{", literal=True)
    anything = pl.any_horizontal(pl.col(f).is_not_null() for f in custom)
    return pl.when(anything).then(text).otherwise(pl.lit(None, pl.String))


def _blank_member(name: str) -> str:
    """`"name":null`, exactly as polars' JSON encoder writes a blank field `name`."""
    encoded = pl.select(pl.struct(pl.lit(None, pl.String).alias(name)).struct.json_encode())
    return str(encoded.item())[1:-1]


def _password_columns(rows: pl.DataFrame, hashes: dict[str, str]) -> list[pl.Expr]:
    if hashes:
        new_hash = pl.col("key").replace_strict(hashes, default=None, return_dtype=pl.String)
    else:
        new_hash = pl.lit(None, pl.String)
    tag = pl.col("password_tag") if "password_tag" in rows.columns else pl.lit(None, pl.String)
    return [
        new_hash.alias("password_hash"),
        pl.when(new_hash.is_not_null()).then(tag).alias("password_tag"),
    ]


def _create(
    conn: Connection,
    directory_id: int,
    creates: pl.DataFrame,
    job_id: str,
    now: datetime,
    hashes: dict[str, str],
    group_ids: pl.DataFrame,
) -> None:
    if creates.height == 0:
        return
    stamp = db_time(conn, users.c.created_at, now)
    present = set(creates.columns)
    custom = [c for c in creates.columns if c.startswith(CUSTOM_PREFIX)]
    blanks = {c for c in custom if creates.get_column(c).null_count()}
    lists = [f for f in LIST_FIELDS if f in present]

    def column(name: str) -> pl.Expr:
        return pl.col(name) if name in present else pl.lit(None, pl.String).alias(name)

    user_row = [
        pl.col("user_id").alias("id"),
        pl.col("key"),
        *(column(f) for f in SCALAR_FIELDS),
        column("email").str.to_lowercase().alias("email_lc"),
        pl.col("status"),
        *_password_columns(creates, hashes),
        column("fingerprint"),
        pl.when(pl.col("status") == "archived").then(pl.lit(stamp)).alias("archived_at"),
        (_fields_json(custom, blanks) if custom else pl.lit(None, pl.String)).alias("fields"),
    ]
    constants = {
        "directory_id": directory_id,
        "created_at": stamp,
        "updated_at": stamp,
        "last_job_id": job_id,
    }
    children = list(dict.fromkeys(_child_table(field) for field in lists))
    alone = creates.height >= _LOAD_ALONE_FROM and _load_alone(conn, [users, *children])
    # Loading alone, the users' unique indexes and every primary key the load writes
    # into are built after the rows.
    keys: list[Index | PrimaryKeyConstraint] = [*USER_INDEXES]
    keys += [table.primary_key for table in (users, *children)]
    ids = new_ids(conn, users, creates.height, alone=alone)
    with (
        without_indexes(conn, keys if alone else ()),
        constants_as_defaults(conn, users, constants) if alone else nullcontext(constants) as sent,
    ):
        for offset in range(0, creates.height, _SLICE):
            part = creates.slice(offset, _SLICE)
            part = part.with_columns(ids.slice(offset, _SLICE).alias("user_id"))
            rows = part.select(user_row)
            insert_frame(conn, users, rows, sent)
            del rows
            for field in lists:
                _insert_children(conn, field, part, group_ids)


def _load_alone(conn: Connection, tables: list[Table]) -> bool:
    """Whether `tables` are empty and now this transaction's alone (`lock_alone`)."""
    return all(_empty(conn, table) and lock_alone(conn, table) for table in tables)


def _empty(conn: Connection, table: Table) -> bool:
    return conn.execute(select(literal(1)).select_from(table).limit(1)).first() is None


def _child_table(field: str) -> Table:
    """The table holding list `field`'s items."""
    return {"groups": memberships, "source_usernames": source_usernames}.get(field, labels)


def _items(rows: pl.DataFrame, field: str) -> pl.DataFrame:
    """One row per (user, list item): `user_id`, `value`, `position`, duplicates dropped."""
    values = pl.col(field).list.unique(maintain_order=True).alias("value")
    return (
        rows.select("user_id", values)
        .with_columns(pl.int_ranges(pl.col("value").list.len()).alias("position"))
        .explode("value", "position")
        .drop_nulls("value")
    )


def _insert_children(
    conn: Connection, field: str, rows: pl.DataFrame, group_ids: pl.DataFrame
) -> None:
    items = _items(rows, field)
    if field == "groups":
        frame = items.join(group_ids, on="value").select("user_id", "group_id", "position")
        insert_frame(conn, memberships, frame)
    elif field == "source_usernames":
        parts = pl.col("value").str.splitn(":", 2)
        frame = items.select(
            "user_id",
            parts.struct.field("field_0").alias("source"),
            parts.struct.field("field_1").fill_null("").alias("username"),
            "position",
        )
        insert_frame(conn, source_usernames, frame)
    else:
        kind = pl.lit(LABEL_KINDS[field]).alias("kind")
        insert_frame(conn, labels, items.select("user_id", kind, "value", "position"))


def _delete_children(conn: Connection, field: str, rows: pl.DataFrame) -> None:
    child = _child_table(field)
    with staged(conn, rows.select(pl.col("user_id").alias("id")), {}) as stage:
        statement = delete(child).where(child.c.user_id.in_(select(stage.c.id)))
        if child is labels:
            statement = statement.where(labels.c.kind == LABEL_KINDS[field])
        conn.execute(statement)
