"""The back office: accounts, sessions, the audit log, saved column mappings.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02

- `web_accounts`: who may log in to the back office, with a role (`support` or
  `admin`) and an argon2id password hash (none for an account only a trusted proxy
  logs in).
- `web_sessions`: open sessions, by the SHA-256 of their cookie.
- `web_audit`: every action taken in the back office, by whom, from where, and how it
  ended.
- `web_mappings`: the column mappings admins saved for a source's uploads.

New tables only: nothing that exists changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_accounts",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String()),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_web_accounts"),
        sa.CheckConstraint("role IN ('support', 'admin')", name="ck_web_accounts_role"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column(
            "account",
            sa.String(),
            sa.ForeignKey(
                "web_accounts.name", name="fk_web_sessions_account_web_accounts", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_account", "web_sessions", ["account"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_table(
        "web_audit",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("role", sa.String()),
        sa.Column("address", sa.String()),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String()),
        sa.Column("detail", sa.Text()),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_audit"),
        sa.CheckConstraint("outcome IN ('ok', 'refused', 'failed')", name="ck_web_audit_outcome"),
    )
    op.create_index("ix_web_audit_at", "web_audit", ["at"])
    op.create_index("ix_web_audit_action_at", "web_audit", ["action", "at"])
    op.create_table(
        "web_mappings",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("header", sa.String(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("saved_by", sa.String(), nullable=False),
        sa.Column("saved_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("source", "header", name="pk_web_mappings"),
    )


def downgrade() -> None:
    op.drop_table("web_mappings")
    op.drop_index("ix_web_audit_action_at", "web_audit")
    op.drop_index("ix_web_audit_at", "web_audit")
    op.drop_table("web_audit")
    op.drop_index("ix_web_sessions_expires_at", "web_sessions")
    op.drop_index("ix_web_sessions_account", "web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("web_accounts")
