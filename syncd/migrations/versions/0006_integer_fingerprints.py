"""Integer fingerprints.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

`users.fingerprint` becomes a BIGINT: the fingerprint (`syncd.core.plan.fingerprint`) is
now 64 bits as a signed integer, its version folded into the hash, instead of a string
`f1-<polars version>:<decimal>`. Measured on 1,019,941 users (SQLite): the snapshot frame
75.3 MB -> 55.5 MB (its fingerprints 27.6 MB -> 7.8 MB), and the peak memory of a
no-change re-import 1089 MiB -> 981 MiB (one run each on the same generated files).

The stored string fingerprints cannot be turned into the new ones (the new seed starts
the hash chain, so only the user's values, which the string does not hold, give the new
fingerprint), so every one is set to NULL. That
loses nothing: a fingerprint is only a cache of "this user's values are as the file
says". A user without one is compared in full on the next import, like any user whose
fingerprint is stale, and gets a fresh fingerprint (the plan's `refresh`) without counting
as updated. The first import after the upgrade reads those users' details once.

Downgrading sets them to NULL again, for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _retype(sa.String(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.String())


def _retype(existing: sa.types.TypeEngine[Any], to: sa.types.TypeEngine[Any]) -> None:
    """`users.fingerprint` as `to`, every value NULL."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's batch mode copies the table with CAST(fingerprint AS BIGINT), which
        # turns "f1-1.2.3:42" into 0, a made-up fingerprint: clear the values first.
        op.execute(sa.text("UPDATE users SET fingerprint = NULL WHERE fingerprint IS NOT NULL"))
    with op.batch_alter_table("users") as batch:
        # PostgreSQL rewrites the table once, with every value NULL.
        batch.alter_column(
            "fingerprint",
            existing_type=existing,
            type_=to,
            existing_nullable=True,
            postgresql_using=f"NULL::{to.compile(dialect=op.get_bind().dialect)}",
        )
