"""How many users and jobs there are: the totals behind a listing that shows the first N.

`syncd users list` and `syncd jobs list` show a page and say how many more there are;
these count with the same filters as `directory.list_users` and `jobs.list_jobs`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from syncd.store.job_records import job_filters
from syncd.store.schema import jobs, users


def count_users(
    conn: Connection, directory_id: int | None = None, status: str | None = None
) -> int:
    """Users, optionally of one directory and one status (as `list_users` filters them)."""
    query = select(func.count()).select_from(users)
    if directory_id is not None:
        query = query.where(users.c.directory_id == directory_id)
    if status is not None:
        query = query.where(users.c.status == status)
    return int(conn.scalar(query) or 0)


def count_jobs(
    conn: Connection,
    *,
    source: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Jobs recorded, with the filters of `list_jobs` (none: every job)."""
    conditions = job_filters(source=source, status=status, since=since, until=until)
    return int(conn.scalar(select(func.count()).select_from(jobs).where(*conditions)) or 0)
