"""The initial schema: directory, jobs and outbox tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written out in full rather than imported from `syncd.store.schema`, so that this revision
keeps creating exactly this schema whatever later revisions change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True)


def _job_ref(table: str, *, primary_key: bool = True) -> sa.Column[str]:
    return sa.Column(
        "job_id",
        sa.String(),
        sa.ForeignKey("jobs.id", name=f"fk_{table}_job_id_jobs", ondelete="CASCADE"),
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "directories",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_directories"),
        sa.UniqueConstraint("name", name="uq_directories_name"),
    )
    op.create_table(
        "users",
        _id(),
        sa.Column("directory_id", ID, nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        *(
            sa.Column(name, sa.String())
            for name in (
                "employee_id",
                "email",
                "email_lc",
                "first_name",
                "last_name",
                "display_name",
            )
        ),
        sa.Column("status", sa.String(), nullable=False),
        *(
            sa.Column(name, sa.String())
            for name in ("role", "company_id", "password_hash", "password_tag", "fingerprint")
        ),
        sa.Column("fields", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("archived_at", TS),
        sa.Column("last_job_id", sa.String()),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.CheckConstraint("status IN ('active', 'archived')", name="ck_users_status"),
    )
    # Indexes, not constraints, so that a first load can drop and rebuild them.
    for column in ("key", "email_lc"):
        op.create_index(
            f"uq_users_directory_id_{column}", "users", ["directory_id", column], unique=True
        )
    op.create_table(
        "groups",
        _id(),
        sa.Column(
            "directory_id",
            ID,
            sa.ForeignKey("directories.id", name="fk_groups_directory_id_directories"),
            nullable=False,
        ),
        sa.Column("name", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
        sa.UniqueConstraint("directory_id", "name", name="uq_groups_directory_id_name"),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("group_id", ID, primary_key=True),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "group_id", name="pk_memberships"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "labels",
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("kind", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), primary_key=True),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind", "value", name="pk_labels"),
        sa.CheckConstraint("kind IN ('label', 'label_id')", name="ck_labels_kind"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "source_usernames",
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("username", sa.String(), primary_key=True),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "source", "username", name="pk_source_usernames"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("directory", sa.String()),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("skipped_of", sa.String()),
        sa.Column("claim", sa.String()),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "rows",
                "valid",
                "invalid",
                "created",
                "updated",
                "unchanged",
                "archived",
                "reactivated",
                "email_changed",
            )
        ),
        sa.Column("encoding", sa.String()),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("lease_owner", sa.String()),
        sa.Column("lease_until", TS),
        sa.Column("errors_csv", sa.String()),
        sa.Column("held_digest", sa.String()),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("claim", name="uq_jobs_claim"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'applied', 'applied_with_errors', 'rejected', "
            "'held', 'dismissed', 'skipped')",
            name="ck_jobs_status",
        ),
    )
    op.create_index("ix_jobs_source_sha256", "jobs", ["source", "sha256"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])
    op.create_table(
        "row_errors",
        sa.Column("job_id", sa.String(), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_row_errors"),
    )
    op.create_table(
        "retained_files",
        _job_ref("retained_files"),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_retained_files"),
    )
    op.create_index("ix_retained_files_expires_at", "retained_files", ["expires_at"])
    op.create_table(
        "held_passwords",
        _job_ref("held_passwords"),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("password_tag", sa.String()),
        sa.PrimaryKeyConstraint("job_id", "key", name="pk_held_passwords"),
    )
    op.create_table(
        "outbox",
        _id(),
        sa.Column(
            "job_id",
            sa.String(),
            sa.ForeignKey("jobs.id", name="fk_outbox_job_id_jobs", ondelete="SET NULL"),
        ),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("html", sa.String()),
        sa.Column("attachment_name", sa.String()),
        sa.Column("attachment", sa.LargeBinary()),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.String()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_outbox_status"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in (
        "outbox",
        "held_passwords",
        "retained_files",
        "row_errors",
        "jobs",
        "source_usernames",
        "labels",
        "memberships",
        "groups",
        "users",
        "directories",
    ):
        op.drop_table(table)
