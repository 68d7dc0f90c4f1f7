"""Source state: whether a source is late, and who was told.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

`source_state` holds one row per source with `expect_every`: when syncd started
watching it, and while it is late (no file within `expect_every`) since when, measured
from which file, and when the alert was queued; `resumed_at` is when files last came
back. Two daemons on one database share it, so one alert goes out between them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "source_state",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("watched_since", TS, nullable=False),
        sa.Column("late_since", TS),
        sa.Column("late_measured_from", TS),
        sa.Column("alerted_at", TS),
        sa.Column("resumed_at", TS),
        sa.PrimaryKeyConstraint("source", name="pk_source_state"),
    )


def downgrade() -> None:
    op.drop_table("source_state")
