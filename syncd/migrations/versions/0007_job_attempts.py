"""Job attempts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

`jobs.attempts` counts how many times a daemon began running a job. A claimed file
whose daemon died while running it goes back to the queue; one that stopped its daemon
three times (a file that needs more memory than the machine has is killed each time) is
ended `rejected` instead of being run for ever. Existing jobs start at 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempts")
