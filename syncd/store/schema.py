"""The database tables, as SQLAlchemy Core metadata (SQLite and PostgreSQL alike).

The directory: `directories`, `users` (custom field values in its JSON `fields`), the
users' lists (`groups` + `memberships`, `labels`, `source_usernames`) and, on PostgreSQL,
`users_writes` (the transactions that wrote `users`). Jobs: `jobs`,
`row_errors`, `retained_files`, `job_files`, `held_passwords`. Reports: `outbox`. Sources:
`source_state` (whether a source is late, and who was told).

This metadata is what the code queries; `syncd/migrations` creates the same tables (a test
compares the two). Timestamps are stored in UTC and always come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.types import TypeDecorator

from syncd.core.status import JOB_STATUSES

#: Index and constraint names follow one pattern so migrations can name them stably.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-assigns INTEGER PRIMARY KEY columns; PostgreSQL gets a bigint identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

USER_STATUSES = ("active", "archived")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")
LABEL_KINDS = ("label", "label_id")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that always reads back timezone-aware.

    SQLite has no time zones (SQLAlchemy would drop the offset and return naive values), so
    values are converted to UTC going in and marked UTC coming out on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


directories = Table(
    "directories",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String, nullable=False, unique=True),
)

# The directory's high-volume tables (users and their child rows, row errors) carry no
# foreign keys: on PostgreSQL each one costs a trigger call per inserted row, which more
# than doubled a million-user load (measured: 1.3 s -> 5.0 s for the users COPY alone).
# Only `syncd.store.apply` writes them, always with ids it has just read, and nothing is
# ever deleted from them, so there is no dangling reference for a constraint to catch.
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("directory_id", Id, nullable=False),
    Column("key", String, nullable=False),
    Column("employee_id", String),
    Column("email", String),
    Column("email_lc", String),
    Column("first_name", String),
    Column("last_name", String),
    Column("display_name", String),
    Column("status", String, nullable=False),
    Column("role", String),
    Column("company_id", String),
    Column("password_hash", String),
    Column("password_tag", String),
    # `syncd.core.plan.fingerprint`: 64 bits as a signed integer, read into every
    # snapshot. NULL: compare the user in full (migration 0006 says why some are).
    Column("fingerprint", BigInteger),
    # Custom field values as one JSON object of strings, name -> value, without the
    # blank ones (NULL when there are none): one column written with the user instead of
    # a row per value (4 million rows for a million users with four custom fields). Text
    # on both databases: nothing queries inside it, and COPY loads text fastest.
    Column("fields", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("archived_at", UtcDateTime),
    # No foreign key: a user outlives any retention of its jobs, and the hot path should
    # not pay a lookup per row for it.
    Column("last_job_id", String),
    _one_of("status", USER_STATUSES, "status"),
    # Unique indexes rather than constraints: a first load into an empty table drops and
    # rebuilds them (`syncd.store.apply`), which SQLite allows only for indexes. There is
    # no index on status: nothing reads users by status alone, and every index costs on
    # each load and archive.
    Index("uq_users_directory_id_key", "directory_id", "key", unique=True),
    Index("uq_users_directory_id_email_lc", "directory_id", "email_lc", unique=True),
)
#: The indexes `syncd.store.apply` may drop and rebuild around a first load.
USER_INDEXES = tuple(users.indexes)

# PostgreSQL: every transaction that wrote `users` (by any statement, syncd's or anyone
# else's), noted by a statement trigger (migration 0009) as it writes. A job proves the
# fingerprint sums it read ahead are still the directory's when no transaction its
# read did not see, and listed here, has committed since (`syncd.store.ahead`): other
# commits on the server (autovacuum's, other tables') no longer spoil the proof. Only
# inserted, each by its own transaction, so writers never wait on each other; rows a
# day old are dropped (`prune_users_writes`). Nothing writes it on SQLite, where
# `PRAGMA data_version` proves the same.
users_writes = Table(
    "users_writes",
    metadata,
    Column("xid", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False, server_default=func.now()),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Id, primary_key=True),
    Column("directory_id", Id, ForeignKey("directories.id"), nullable=False),
    Column("name", String, nullable=False),
    UniqueConstraint("directory_id", "name"),
)

# `position` keeps each list in the order the file gave it, so a user reads back as written.
# On SQLite the list tables are WITHOUT ROWID: their primary key is the table, one B-tree
# to write instead of a table and its key index.
memberships = Table(
    "memberships",
    metadata,
    Column("user_id", Id, primary_key=True),
    Column("group_id", Id, primary_key=True),
    Column("position", SmallInteger, nullable=False),
    sqlite_with_rowid=False,
)

labels = Table(
    "labels",
    metadata,
    Column("user_id", Id, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("value", String, primary_key=True),
    Column("position", SmallInteger, nullable=False),
    _one_of("kind", LABEL_KINDS, "kind"),
    sqlite_with_rowid=False,
)

source_usernames = Table(
    "source_usernames",
    metadata,
    Column("user_id", Id, primary_key=True),
    Column("source", String, primary_key=True),
    Column("username", String, primary_key=True),
    Column("position", SmallInteger, nullable=False),
    sqlite_with_rowid=False,
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("source", String, nullable=False),
    Column("directory", String),
    Column("mode", String, nullable=False),
    Column("file_name", String, nullable=False),
    # Null while a file the daemon queued has not been fetched yet.
    Column("sha256", String),
    Column("size", BigInteger, nullable=False),
    # The listed file's modification time (seconds), which orders a source's files.
    Column("remote_mtime", Float),
    Column("status", String, nullable=False),
    Column("skipped_of", String),
    # Set by whoever spools a file; two daemons that see the same file race on this unique
    # value and exactly one wins. NULL (never conflicting) for jobs that claim nothing.
    Column("claim", String, unique=True),
    Column("rows", Integer, nullable=False, default=0),
    Column("valid", Integer, nullable=False, default=0),
    Column("invalid", Integer, nullable=False, default=0),
    Column("created", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("archived", Integer, nullable=False, default=0),
    Column("reactivated", Integer, nullable=False, default=0),
    Column("email_changed", Integer, nullable=False, default=0),
    Column("encoding", String),
    Column("messages", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("lease_owner", String),
    Column("lease_until", UtcDateTime),
    # How many times a daemon began running this job: a file that stops its daemon (out
    # of memory) again and again is given up on, not run for ever (`recover_abandoned`).
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("errors_csv", String),
    # While held: what the plan archived, so approval can refuse a plan that changed.
    Column("held_digest", String),
    _one_of("status", JOB_STATUSES, "status"),
    Index(None, "source", "sha256"),
    Index(None, "created_at"),
    Index(None, "status", "created_at"),
)

row_errors = Table(
    "row_errors",
    metadata,
    Column("job_id", String, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("row", Integer, nullable=False),
    Column("column", String, nullable=False),
    Column("message", String, nullable=False),
)

retained_files = Table(
    "retained_files",
    metadata,
    Column("job_id", String, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("file_name", String, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    # The content is the file rewritten with its secret cells blanked.
    Column("redacted", Boolean, nullable=False, default=False),
)

# What a job leaves for later, by name: its errors CSV as written (so `syncd jobs errors`
# gives it back byte for byte) and, while it is held, what approving it applies (see
# `syncd.held`). Kept until `expires_at` (never, when null: until the job is decided).
job_files = Table(
    "job_files",
    metadata,
    Column("job_id", String, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String, primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("expires_at", UtcDateTime, index=True),
)

held_passwords = Table(
    "held_passwords",
    metadata,
    Column("job_id", String, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String, primary_key=True),
    Column("password_hash", String, nullable=False),
    Column("password_tag", String),
)

# Each report whole, as it is sent (see `syncd.store.outbox`): while `sending`,
# `next_attempt_at` is the end of the sender's lease.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("job_id", String, ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("kind", String),
    Column("message_id", String, nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("subject", String, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", String),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    _one_of("status", OUTBOX_STATUSES, "status"),
    UniqueConstraint("message_id"),
    Index(None, "status", "next_attempt_at"),
)

# One row per source whose lateness syncd watches (`expect_every`; see
# `syncd.staleness`): when watching began (the clock's start before any file came) and,
# while the source is late and people were told, since when and measured from what.
# Setting `late_since` from NULL is the claim: of two daemons, the one whose UPDATE
# changed the row queues the alert.
source_state = Table(
    "source_state",
    metadata,
    Column("source", String, primary_key=True),
    Column("watched_since", UtcDateTime, nullable=False),
    Column("late_since", UtcDateTime),
    Column("late_measured_from", UtcDateTime),
    Column("alerted_at", UtcDateTime),
    Column("resumed_at", UtcDateTime),
)

# The back office (`syncd.web`): its accounts, their sessions, what each person did, and
# the column mappings admins saved for a source's uploads.
WEB_ROLES = ("support", "admin")

web_accounts = Table(
    "web_accounts",
    metadata,
    Column("name", String, primary_key=True),
    Column("role", String, nullable=False),
    # argon2id; NULL for an account that only a trusted proxy can log in.
    Column("password_hash", String),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    _one_of("role", WEB_ROLES, "role"),
)

# A session is known by the SHA-256 of its cookie: a copy of the database opens no
# session.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String, primary_key=True),
    Column(
        "account",
        String,
        ForeignKey("web_accounts.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

web_audit = Table(
    "web_audit",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    # Who: an account name, the name a proxy gave, or what a refused person typed.
    Column("actor", String, nullable=False),
    Column("role", String),
    Column("address", String),
    Column("action", String, nullable=False),
    Column("target", String),
    Column("detail", Text),
    Column("outcome", String, nullable=False),
    _one_of("outcome", ("ok", "refused", "failed"), "outcome"),
    Index(None, "at"),
    Index(None, "action", "at"),
)

web_mappings = Table(
    "web_mappings",
    metadata,
    Column("source", String, primary_key=True),
    # The file's header, normalised as headers are compared (`normalise_header`).
    Column("header", String, primary_key=True),
    Column("field", String, nullable=False),
    Column("saved_by", String, nullable=False),
    Column("saved_at", UtcDateTime, nullable=False),
)
