"""The directory as the database holds it, read back: for the planner and for people.

`lock_directory` finds (or creates) a directory and serialises the jobs that change it;
`snapshot` and `details` produce the frames `syncd.core.plan` describes; `UserView`,
`list_users` and `find_user` serve `syncd users list/show`. Writing is `syncd.store.apply`.

List fields (`groups`, `labels`, `labels_id`, `source_usernames`) live in child tables in
the order the file gave them; a user without any reads back as an empty list. Custom
fields live in the user's JSON `fields` and read back as `field:<name>` columns, decoded
by polars for all users at once.

Reading a whole directory on SQLite goes by ranges of ids (`_scan`): each part's text is
let go before the next is read, and SQLite walks the table in storage order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import polars as pl
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    func,
    literal_column,
    or_,
    select,
    true,
)

from syncd.core.plan import HALF_BITS, LOW_BITS, FingerprintSums, slim_snapshot
from syncd.core.records import CUSTOM_PREFIX
from syncd.store.bulk import insert_unless_exists, read_frame, staged
from syncd.store.pgcopy import as_read
from syncd.store.schema import (
    directories,
    groups,
    labels,
    memberships,
    source_usernames,
    users,
)

SCALAR_FIELDS = (
    "employee_id",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "role",
    "company_id",
)
LIST_FIELDS = ("groups", "labels", "labels_id", "source_usernames")
LABEL_KINDS = {"labels": "label", "labels_id": "label_id"}

#: The planner's snapshot (`syncd.core.plan`): emails as their hashes, status as a flag.
SNAPSHOT_SCHEMA = pl.Schema(
    {
        "user_id": pl.Int64,
        "key": pl.String,
        "email_hash": pl.UInt64,
        "active": pl.Boolean,
        "fingerprint": pl.Int64,
    }
)
#: The snapshot's columns as they are read, before `slim_snapshot`.
_SNAPSHOT_READ = pl.Schema(
    {
        "user_id": pl.Int64,
        "key": pl.String,
        "email_lc": pl.String,
        "status": pl.String,
        "fingerprint": pl.Int64,
    }
)
_CHILD_SCHEMA = pl.Schema({"user_id": pl.Int64, "value": pl.String, "position": pl.Int64})
# Past this many ids, a query takes them from a staged table rather than an IN list.
_IN_CHUNK = 5_000
# Reading some users of a directory: one scan of the directory (every user read, in
# parts of _SCAN_IDS) or a lookup of the wanted ids staged in a table (only they are
# read, all at once). On SQLite, 5,000,000 users: 55,000 ids 0.6 s looked up against
# 15.4 s scanned; 1,000,000 ids 7.8 s against 17.1 s; 2,500,000 ids 19.3 s against 20.1
# s, but 4.4 GiB at peak against 2.4 GiB. So a scan only past _SCAN_SHARE of the
# directory's users and past _SCAN_ABOVE; _SCAN_ABOVE alone when the caller does not
# know how many users the directory has.
_SCAN_ABOVE = 50_000
_SCAN_SHARE = 0.25
# Ids per query when a whole directory is read: bounds the text held at once (measured
# on a million users: peak +410 MiB at 250,000 ids, +284 MiB at 100,000, as fast).
_SCAN_IDS = 100_000


def directory_id(conn: Connection, name: str) -> int:
    """The id of the directory called `name`, created on first use."""
    query = select(directories.c.id).where(directories.c.name == name)
    found = conn.scalar(query)
    if found is None:
        conn.execute(insert_unless_exists(conn, directories).values(name=name))
        found = conn.scalar(query)
    if found is None:
        raise RuntimeError(f"directory {name!r} vanished while it was being created")
    return int(found)


def lock_directory(conn: Connection, name: str) -> int:
    """The id of the directory `name` (created on first use), locked until the caller's
    transaction ends, so that jobs plan and apply to one directory one at a time and no
    plan is built on a snapshot another job is about to change.

    Call it first in the transaction: on SQLite its write takes the database's write lock,
    which a transaction that already read something may be refused.
    """
    conn.execute(insert_unless_exists(conn, directories).values(name=name))
    query = select(directories.c.id).where(directories.c.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return int(conn.execute(query).scalar_one())


def snapshot(conn: Connection, directory_id: int) -> pl.DataFrame:
    """Every user of the directory, active or archived: the planner's `snapshot` frame
    (`SNAPSHOT_SCHEMA`). The addresses read are hashed part by part as they come."""
    query = select(users.c.id, users.c.key, users.c.email_lc, users.c.status, users.c.fingerprint)
    return _scan(conn, query, directory_id, _SNAPSHOT_READ, slim_snapshot)


def fingerprint_sums(conn: Connection, directory_id: int) -> FingerprintSums:
    """The directory's active users' fingerprints summed (`syncd.core.plan.quiet_plan`):
    one pass over the table, no row sent back (0.3 s for a million users on SQLite)."""
    fp = users.c.fingerprint
    mine: ColumnElement[bool] = users.c.directory_id == directory_id
    if conn.dialect.name == "sqlite":
        mine = (users.c.directory_id + 0) == directory_id  # the table, not the key index: 10x
    query = select(
        func.count(),
        func.count(fp),
        func.coalesce(func.sum(fp.op("&")(LOW_BITS)), 0),
        # PostgreSQL shifts a bigint by an integer only: the count is written in.
        func.coalesce(func.sum(fp.op(">>")(literal_column(str(HALF_BITS)))), 0),
    ).where(mine, users.c.status == "active")
    count, fingerprinted, low, high = conn.execute(query).one()
    return FingerprintSums(
        users=int(count), unfingerprinted=int(count - fingerprinted), low=int(low), high=int(high)
    )


def _scan(
    conn: Connection,
    query: Select[tuple[object, ...]],
    directory_id: int | None,
    schema: pl.Schema,
    each: Callable[[pl.DataFrame], pl.DataFrame] = as_read,
) -> pl.DataFrame:
    """`query` (over `users`, maybe joined) for every user of the directory (None: of
    all directories), as `each` turns every part read (if given); on SQLite in ranges of
    `_SCAN_IDS` user ids, whose JSON text is let go before the next is read. PostgreSQL
    sends compact CSV, and one sequential scan beats ranges read through the primary key
    (measured: 0.9 s against 1.2 s)."""
    if conn.dialect.name == "postgresql":
        mine = true() if directory_id is None else users.c.directory_id == directory_id
        return read_frame(conn, query.where(mine), schema, each)
    scope: ColumnElement[bool] = true()
    if directory_id is not None:
        # `+ 0` keeps SQLite from reading through a (directory_id, ...) index in key
        # order instead of the id range in table order (measured: 1.2 s against 0.7 s).
        scope = (users.c.directory_id + 0) == directory_id
    # The first and last ids in id order: both stop at once on a one-directory database.
    first = select(users.c.id).where(scope).limit(1)
    low = conn.scalar(first.order_by(users.c.id))
    high = conn.scalar(first.order_by(users.c.id.desc()))
    if low is None or high is None:
        return each(pl.DataFrame(schema=schema))
    parts = [
        read_frame(
            conn,
            query.where(scope, users.c.id >= start, users.c.id < start + _SCAN_IDS),
            schema,
            each,
        )
        for start in range(int(low), int(high) + 1, _SCAN_IDS)
    ]
    return pl.concat(parts)


def details(
    conn: Connection,
    directory_id: int,
    user_ids: pl.Series,
    fields: Sequence[str] | None = None,
    *,
    population: int | None = None,
) -> pl.DataFrame:
    """The stored values of `user_ids`, in the records' representation (`details` frame).

    Columns: `user_id`, then each of `fields` (default: every fixed directory field and
    every custom field these users have), then `password_tag`. A requested custom field
    nobody has comes back as a column of nulls; `status` only when asked for.
    `population`: how many users the directory has (its snapshot's height), which
    decides how they are read (`_scans`).
    """
    wanted = (*SCALAR_FIELDS, *LIST_FIELDS) if fields is None else tuple(fields)
    scalars = [f for f in wanted if f in SCALAR_FIELDS or f == "status"]
    customs = [f.removeprefix(CUSTOM_PREFIX) for f in wanted if f.startswith(CUSTOM_PREFIX)]
    texts = [users.c.password_tag]
    if fields is None or customs:
        texts.append(users.c.fields)
    query = select(users.c.id, *(users.c[f] for f in scalars), *texts)
    schema = pl.Schema(
        {"user_id": pl.Int64, **dict.fromkeys([*scalars, *(c.name for c in texts)], pl.String)}
    )
    ids = user_ids.cast(pl.Int64).unique()
    frame = _for_users(conn, query, directory_id, ids, schema, population=population)
    lists = [f for f in wanted if f in LIST_FIELDS]
    frame = with_lists(conn, frame, lists, directory_id, population=population)
    if "fields" in frame.columns:
        stored = frame.get_column("fields")
        frame = frame.drop("fields").with_columns(
            _custom_columns(stored, None if fields is None else customs)
        )
    order = [f for f in wanted if f in frame.columns]
    extra = [c for c in frame.columns if c.startswith(CUSTOM_PREFIX) and c not in order]
    return frame.select("user_id", *order, *sorted(extra), "password_tag")


def _scans(wanted: int, population: int | None) -> bool:
    """Whether `wanted` users of a directory of `population` (None: not known) are read
    by one scan of the directory rather than looked up (see _SCAN_SHARE)."""
    if population is None:
        return wanted > _SCAN_ABOVE
    return wanted > max(_SCAN_ABOVE, population * _SCAN_SHARE)


def _for_users(
    conn: Connection,
    query: Select[tuple[object, ...]],
    directory_id: int | None,
    ids: pl.Series,
    schema: pl.Schema,
    id_column: ColumnElement[int] = users.c.id,
    population: int | None = None,
) -> pl.DataFrame:
    """`query` (whose first column is the user id) restricted to the users in `ids`, of
    a directory of `population` users if the caller knows."""
    if _scans(ids.len(), population):
        if id_column.table is not users:  # the scan's ranges and scope are on users
            query = query.join_from(id_column.table, users, id_column == users.c.id)
        whole = _scan(conn, query, directory_id, schema)
        return whole.join(ids.to_frame("user_id"), on="user_id", how="semi")
    if ids.len() > _IN_CHUNK:
        # The ids staged in a table: PostgreSQL takes longer to parse and plan a long IN
        # list than to run it (measured: 60 ms per 5,000 ids). IN (SELECT ...) rather
        # than a join, which SQLite would run as a scan of the whole table.
        with staged(conn, ids.unique().to_frame("id"), {}) as stage:
            return read_frame(conn, query.where(id_column.in_(select(stage.c.id))), schema)
    return read_frame(conn, query.where(id_column.in_(ids.to_list())), schema)


def _list_query(field: str) -> tuple[Select[tuple[object, ...]], ColumnElement[int]]:
    if field == "groups":
        return (
            select(memberships.c.user_id, groups.c.name, memberships.c.position).join_from(
                memberships, groups, memberships.c.group_id == groups.c.id
            ),
            memberships.c.user_id,
        )
    if field == "source_usernames":
        value = source_usernames.c.source.concat(":").concat(source_usernames.c.username)
        return (
            select(source_usernames.c.user_id, value, source_usernames.c.position),
            source_usernames.c.user_id,
        )
    return (
        select(labels.c.user_id, labels.c.value, labels.c.position).where(
            labels.c.kind == LABEL_KINDS[field]
        ),
        labels.c.user_id,
    )


def with_lists(
    conn: Connection,
    frame: pl.DataFrame,
    fields: Iterable[str],
    directory_id: int | None,
    *,
    population: int | None = None,
) -> pl.DataFrame:
    """`frame` (with `user_id`) plus a List(String) column for each list field."""
    ids = frame.get_column("user_id")
    for field in fields:
        query, id_column = _list_query(field)
        items = _for_users(
            conn, query, directory_id, ids, _CHILD_SCHEMA, id_column, population=population
        )
        lists = (
            items.sort("user_id", "position")
            .group_by("user_id", maintain_order=True)
            .agg(pl.col("value").alias(field))
        )
        frame = frame.join(lists, on="user_id", how="left").with_columns(
            pl.col(field).fill_null(pl.lit([], pl.List(pl.String)))
        )
    return frame


def _custom_columns(stored: pl.Series, names: Sequence[str] | None) -> list[pl.Series]:
    """The users' stored JSON `fields` as one `field:<name>` column per name, null where
    a user has no value (None: every name any of them has, in name order)."""
    if names is None:
        names = sorted(_names_in(stored.drop_nulls()))
    if not names:
        return []
    dtype = pl.Struct(dict.fromkeys(names, pl.String))
    # In slices: polars' JSON decoder takes 1 GiB of working memory for a million objects
    # at once, 230 MiB (and less time) in slices of 100,000.
    decoded = pl.concat(
        stored.slice(start, _SCAN_IDS).str.json_decode(dtype).struct.unnest()
        for start in range(0, max(stored.len(), 1), _SCAN_IDS)
    )
    return [decoded.get_column(n).alias(CUSTOM_PREFIX + n) for n in names]


def _names_in(texts: pl.Series) -> set[str]:
    """Every name in the JSON objects `texts`: polars' reader infers them as columns,
    `_SCAN_IDS` objects at a time to bound the text copied for it."""
    found: set[str] = set()
    for start in range(0, texts.len(), _SCAN_IDS):
        lines = texts.slice(start, _SCAN_IDS).str.join("\n").item().encode()
        found.update(pl.read_ndjson(lines, infer_schema_length=None).columns)
    return found


def user_ids_of(conn: Connection, directory_id: int, keys: pl.Series) -> pl.DataFrame:
    """`key` -> `user_id` of the users of the directory with those (normalised) keys."""
    query = select(users.c.key, users.c.id)
    schema = pl.Schema({"key": pl.String, "user_id": pl.Int64})
    if keys.len() > _SCAN_ABOVE:
        whole = _scan(conn, query, directory_id, schema)
        return whole.join(keys.to_frame("key"), on="key", how="semi")
    query = query.where(users.c.directory_id == directory_id)
    if keys.len() > _IN_CHUNK:  # as in `_for_users`
        with staged(conn, keys.unique().to_frame("key"), {"key": String()}) as stage:
            return read_frame(conn, query.where(users.c.key.in_(select(stage.c.key))), schema)
    return read_frame(conn, query.where(users.c.key.in_(keys.to_list())), schema)


@dataclass(frozen=True, slots=True)
class UserView:
    """One user as `syncd users list/show` shows it."""

    directory: str
    key: str
    email: str | None
    status: str
    employee_id: str | None
    first_name: str | None
    last_name: str | None
    display_name: str | None
    role: str | None
    company_id: str | None
    groups: tuple[str, ...]
    labels: tuple[str, ...]
    labels_id: tuple[str, ...]
    source_usernames: tuple[str, ...]
    fields: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    last_job_id: str | None

    def as_json(self) -> dict[str, object]:
        """The `users list --json` object: lists as arrays, timestamps as ISO 8601."""
        out: dict[str, object] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Mapping):
                value = dict(value)
            out[field.name] = value
        return out


_VIEW_COLUMNS = (
    users.c.id,
    directories.c.name.label("directory"),
    users.c.key,
    users.c.email,
    users.c.status,
    *(users.c[f] for f in SCALAR_FIELDS if f != "email"),
    users.c.created_at,
    users.c.updated_at,
    users.c.archived_at,
    users.c.last_job_id,
    users.c.fields,
)


def list_users(
    conn: Connection,
    directory_id: int | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[UserView]:
    """Users by directory name then key, optionally of one directory and one status."""
    query = select(*_VIEW_COLUMNS).join_from(
        users, directories, users.c.directory_id == directories.c.id
    )
    if directory_id is not None:
        query = query.where(users.c.directory_id == directory_id)
    if status is not None:
        query = query.where(users.c.status == status)
    return _views(conn, query.order_by(directories.c.name, users.c.key).limit(limit))


def find_user(conn: Connection, email_or_key: str) -> list[UserView]:
    """Users, in any directory, whose email (any case) or key is `email_or_key`."""
    text = email_or_key.strip()
    query = (
        select(*_VIEW_COLUMNS)
        .join_from(users, directories, users.c.directory_id == directories.c.id)
        .where(or_(users.c.email_lc == text.lower(), users.c.key.in_({text, text.lower()})))
        .order_by(directories.c.name, users.c.key)
    )
    return _views(conn, query)


def _views(conn: Connection, query: Select[tuple[object, ...]]) -> list[UserView]:
    rows = conn.execute(query).all()
    if not rows:
        return []
    ids = pl.DataFrame({"user_id": [row.id for row in rows]}, schema={"user_id": pl.Int64})
    extra = with_lists(conn, ids, LIST_FIELDS, None)
    by_id = {values["user_id"]: values for values in extra.iter_rows(named=True)}
    views = []
    for row in rows:
        more = by_id[row.id]
        custom: dict[str, str] = dict(sorted(json.loads(row.fields).items())) if row.fields else {}
        views.append(
            UserView(
                directory=row.directory,
                key=row.key,
                email=row.email,
                status=row.status,
                employee_id=row.employee_id,
                first_name=row.first_name,
                last_name=row.last_name,
                display_name=row.display_name,
                role=row.role,
                company_id=row.company_id,
                groups=tuple(more["groups"]),
                labels=tuple(more["labels"]),
                labels_id=tuple(more["labels_id"]),
                source_usernames=tuple(more["source_usernames"]),
                fields=custom,
                created_at=row.created_at,
                updated_at=row.updated_at,
                archived_at=row.archived_at,
                last_job_id=row.last_job_id,
            )
        )
    return views
