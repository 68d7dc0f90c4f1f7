"""Interrupted jobs, job files, and stored text in NFC.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

- `jobs.status` may be `interrupted` (a job whose process died before it ended).
- A job the daemon queues for a listed file knows the file's modification time
  (`remote_mtime`, for file order) before its content: `sha256` is set once fetched.
- `retained_files.redacted` says a kept copy is the file with its secret cells blanked.
- `job_files` keeps what a job leaves for later: its errors CSV as written, and what a
  held job applies once approved.
- Keys, emails and names stored before syncd compared text in NFC are rewritten in NFC,
  so that an export in either normal form matches them. A user whose NFC key or email
  another user of its directory already has (a look-alike created before) is left as it
  is: merging two users is a person's decision.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES_BEFORE = (
    "'queued', 'running', 'applied', 'applied_with_errors', 'rejected', 'held', 'dismissed', "
    "'skipped'"
)
_STATUSES = _STATUSES_BEFORE + ", 'interrupted'"
_TEXT = ("key", "email", "email_lc", "first_name", "last_name", "display_name")
_BATCH = 50_000


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.create_check_constraint("ck_jobs_status", sa.text(f"status IN ({_STATUSES})"))
        batch.alter_column("sha256", existing_type=sa.String(), nullable=True)
        batch.add_column(sa.Column("remote_mtime", sa.Float()))
    with op.batch_alter_table("retained_files") as batch:
        batch.add_column(
            sa.Column("redacted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "job_files",
        sa.Column(
            "job_id",
            sa.String(),
            sa.ForeignKey("jobs.id", name="fk_job_files_job_id_jobs", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("job_id", "name", name="pk_job_files"),
    )
    op.create_index("ix_job_files_expires_at", "job_files", ["expires_at"])
    _stored_text_in_nfc(op.get_bind())


def _stored_text_in_nfc(conn: sa.Connection) -> None:
    users = sa.table(
        "users",
        sa.column("id", sa.BigInteger()),
        sa.column("directory_id", sa.BigInteger()),
        *(sa.column(name, sa.String()) for name in _TEXT),
    )
    taken: set[tuple[str, int, str]] = set()  # ("key" | "email_lc", directory, value)
    changes: list[tuple[int, int, dict[str, str]]] = []  # (user, directory, NFC values)
    last = None
    while True:
        query = sa.select(users).order_by(users.c.id).limit(_BATCH)
        if last is not None:
            query = query.where(users.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            taken.add(("key", row.directory_id, row.key))
            if row.email_lc is not None:
                taken.add(("email_lc", row.directory_id, row.email_lc))
            fixed = {}
            for name in _TEXT:
                value = getattr(row, name)
                if value is not None and not value.isascii():
                    normal = unicodedata.normalize("NFC", value)
                    if normal != value:
                        fixed[name] = normal
            if fixed:
                changes.append((row.id, row.directory_id, fixed))
    for user_id, directory, fixed in changes:
        unique = [(name, fixed[name]) for name in ("key", "email_lc") if name in fixed]
        if any((name, directory, value) in taken for name, value in unique):
            continue
        taken.update((name, directory, value) for name, value in unique)
        conn.execute(sa.update(users).where(users.c.id == user_id).values(fixed))


def downgrade() -> None:
    with op.batch_alter_table("retained_files") as batch:
        batch.drop_column("redacted")
    op.drop_index("ix_job_files_expires_at", "job_files")
    op.drop_table("job_files")
    op.execute(sa.text("UPDATE jobs SET status = 'rejected' WHERE status = 'interrupted'"))
    op.execute(sa.text("UPDATE jobs SET sha256 = '' WHERE sha256 IS NULL"))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("remote_mtime")
        batch.alter_column("sha256", existing_type=sa.String(), nullable=False)
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.create_check_constraint("ck_jobs_status", sa.text(f"status IN ({_STATUSES_BEFORE})"))
