"""Transactions that wrote users.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

`users_writes` lists, on PostgreSQL, every transaction that wrote the `users` table: a
statement trigger notes the writing transaction's id as it writes, whoever writes
(syncd's jobs, the application the directory serves, a person in psql). A job that read
the directory's fingerprint sums ahead of its lock keeps them only if no transaction the
read did not see, and listed here, has committed since (`syncd.store.ahead`). The proof
it replaces asked about every transaction committed on the server: after a large load,
autovacuum's commits alone made every quiet night read the sums again.

The trigger's function runs with the rights of the role that ran this migration
(SECURITY DEFINER, its search path fixed as it was then), so a role that may write
`users` but not `users_writes`, such as the application's, still can.

The table is created on SQLite too (one schema for both); nothing writes it there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE FUNCTION syncd_note_users_write() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO users_writes (xid) VALUES (pg_current_xact_id()::text::bigint)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$
"""
_TRIGGER = """
CREATE TRIGGER users_written
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
FOR EACH STATEMENT EXECUTE FUNCTION syncd_note_users_write()
"""


def upgrade() -> None:
    op.create_table(
        "users_writes",
        sa.Column("xid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("xid", name=op.f("pk_users_writes")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER users_written ON users")
        op.execute("DROP FUNCTION syncd_note_users_write()")
    op.drop_table("users_writes")
