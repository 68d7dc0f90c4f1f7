"""Applying a `Plan` to the directory: the hot path of every job.

A plan is written with a handful of set-based statements (see `syncd.store.bulk`), never
a statement per user: creates are bulk-inserted (COPY on PostgreSQL) and their ids read
back by key; updates write only the columns that change, one `UPDATE ... FROM` a staged
table per set of changed fields; list and custom fields are rewritten only for users
whose values changed; archives and fingerprint refreshes go through a staged table of
ids. Unchanged users are not touched. Order matters for unique emails: archives, then
updates (old addresses released first), then creates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import polars as pl
from sqlalchemy import Connection, String, case, delete, literal, null, select, update

from syncd.core.plan import Plan
from syncd.core.records import CUSTOM_PREFIX
from syncd.store.bulk import db_time, insert_frame, insert_unless_exists, read_frame, staged
from syncd.store.directory import LABEL_KINDS, LIST_FIELDS, SCALAR_FIELDS, user_ids_of
from syncd.store.schema import (
    groups,
    labels,
    memberships,
    source_usernames,
    user_fields,
    users,
)


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
        with staged(conn, stage_rows, {"fingerprint": String()}) as stage:
            conn.execute(
                update(users)
                .where(users.c.id == stage.c.id)
                .values(fingerprint=stage.c.fingerprint)
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
    custom = frame.get_column("changed").explode().drop_nulls().unique().to_list()
    for field in sorted(f for f in custom if f.startswith(CUSTOM_PREFIX)):
        rows = frame.filter(pl.col("changed").list.contains(field))
        name = field.removeprefix(CUSTOM_PREFIX)
        with staged(conn, rows.select(pl.col("user_id").alias("id")), {}) as stage:
            conn.execute(
                delete(user_fields).where(
                    user_fields.c.user_id.in_(select(stage.c.id)), user_fields.c.name == name
                )
            )
        _insert_custom_fields(conn, rows.select("user_id", field))


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
    stage_rows = rows.select(columns)
    types = {name: users.c[name].type for name in stage_rows.columns if name != "id"}
    with staged(conn, stage_rows, types) as stage:
        values: dict[str, object] = {
            name: stage.c[name] for name in stage_rows.columns if name != "id"
        }
        if "status" in fields:
            archived_now = literal(now, users.c.archived_at.type)
            values["archived_at"] = case((stage.c.status == "archived", archived_now), else_=null())
        values.update(updated_at=now, last_job_id=job_id)
        conn.execute(update(users).where(users.c.id == stage.c.id).values(values))


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

    def column(name: str) -> pl.Expr:
        return pl.col(name) if name in present else pl.lit(None, pl.String).alias(name)

    rows = creates.select(
        pl.col("key"),
        *(column(f) for f in SCALAR_FIELDS),
        column("email").str.to_lowercase().alias("email_lc"),
        pl.col("status"),
        *_password_columns(creates, hashes),
        column("fingerprint"),
        pl.when(pl.col("status") == "archived").then(pl.lit(stamp)).alias("archived_at"),
    )
    constants = {
        "directory_id": directory_id,
        "created_at": stamp,
        "updated_at": stamp,
        "last_job_id": job_id,
    }
    insert_frame(conn, users, rows, constants)
    custom = [c for c in creates.columns if c.startswith(CUSTOM_PREFIX)]
    lists = [f for f in LIST_FIELDS if f in present]
    children = creates.select(*lists, *custom)
    if not any(children.get_column(c).null_count() < children.height for c in children.columns):
        return  # nothing else to write, so no need to read the new ids back
    ids = user_ids_of(conn, directory_id, creates.get_column("key"))
    created = creates.join(ids, on="key")
    for field in lists:
        _insert_children(conn, field, created, group_ids)
    if custom:
        _insert_custom_fields(conn, created.select("user_id", *custom))


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
    child = {"groups": memberships, "source_usernames": source_usernames}.get(field, labels)
    with staged(conn, rows.select(pl.col("user_id").alias("id")), {}) as stage:
        statement = delete(child).where(child.c.user_id.in_(select(stage.c.id)))
        if child is labels:
            statement = statement.where(labels.c.kind == LABEL_KINDS[field])
        conn.execute(statement)


def _insert_custom_fields(conn: Connection, rows: pl.DataFrame) -> None:
    """`rows` has `user_id` and `field:<name>` columns; nulls (blank cells) store nothing."""
    values = (
        rows.unpivot(index="user_id", variable_name="name", value_name="value")
        .drop_nulls("value")
        .with_columns(pl.col("name").str.strip_prefix(CUSTOM_PREFIX))
    )
    insert_frame(conn, user_fields, values.select("user_id", "name", "value"))
