"""Compressed blobs stored as they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

`retained_files.content` and `job_files.content` hold data compressed already: the
retained input and the errors and changes CSVs gzipped, a held job's frames in
zstd-compressed Arrow IPC. PostgreSQL's default storage for such a column (EXTENDED) has
every value over 2 kB run through its own compressor before it is stored out of line:
work for nothing, since compressed data does not compress again, and on some inputs
PostgreSQL's compressor only gives up at the end. Measured storing the retained copy of a
million-row file (46 MB): 1.0 to 1.6 s with EXTENDED, 0.6 to 0.7 s with EXTERNAL (out of
line, never compressed). Existing values are left as they are; new ones are stored
EXTERNAL. SQLite has no such setting: nothing to do there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BLOBS = (("retained_files", "content"), ("job_files", "content"))


def upgrade() -> None:
    _set_storage("EXTERNAL")


def downgrade() -> None:
    _set_storage("EXTENDED")


def _set_storage(storage: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _BLOBS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {storage}")
