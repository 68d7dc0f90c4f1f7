"""A night that compares most of the directory (every fingerprint stale, as after a polars
upgrade) compares it in parts, each with only its users' details, and plans, applies and
reports exactly what it would all at once."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import select, update

from syncd import flow
from syncd.core import plan as planner
from syncd.intake import Drop
from syncd.report import CHANGES_CSV
from syncd.store.directory import directory_id
from syncd.store.job_files import job_file
from syncd.store.schema import users
from tests.integration.test_store_ahead import _runtime_on


def _night(names: dict[int, str]) -> bytes:
    rows = [f"user{i}@example.com,{name}" for i, name in names.items()]
    return ("Email,First Name\r\n" + "\r\n".join(rows) + "\r\n").encode()


def _stale_night(
    tmp_path: Path, db_url: str, part: int | None
) -> tuple[dict[str, int], bytes, list[tuple[str, str, int]]]:
    """Twelve users, every fingerprint cleared, then a night that renames three, compared
    `part` users at a time (None: all at once): the counts, the changes CSV, and each
    user's key, name and whether a fingerprint is stored."""
    name = "whole" if part is None else f"parts{part}"
    (tmp_path / name).mkdir()
    rt = _runtime_on(tmp_path / name, db_url, name)
    source = rt.config.sources[0]
    try:
        flow.run_job(rt, source, Drop("hr.csv", _night(dict.fromkeys(range(12), "Ann"))))
        with rt.engine.begin() as conn:
            mine = users.c.directory_id == directory_id(conn, name)
            conn.execute(update(users).where(mine).values(fingerprint=None))
        names = dict.fromkeys(range(12), "Ann") | {2: "Bo", 5: "Cy", 11: "Di"}
        with pytest.MonkeyPatch.context() as patch:
            if part is not None:
                patch.setattr(flow, "COMPARE_PART", part)
                patch.setattr(planner, "COMPARE_PART", part)
            outcome = flow.run_job(rt, source, Drop("hr.csv", _night(names)))
        with rt.engine.connect() as conn:
            stored = job_file(conn, outcome.job_id or "", CHANGES_CSV)
            fingerprinted = users.c.fingerprint.is_not(None)
            query = select(users.c.key, users.c.first_name, fingerprinted)
            query = query.where(users.c.directory_id == directory_id(conn, name))
            query = query.order_by(users.c.key)
            directory = [(k, n, int(f)) for k, n, f in conn.execute(query)]
    finally:
        rt.engine.dispose()
    assert stored is not None, outcome
    return outcome.counts.as_dict(), gzip.decompress(stored), directory


def test_a_night_compared_in_parts_is_the_night_compared_whole(tmp_path: Path, db_url: str) -> None:
    whole = _stale_night(tmp_path, db_url, None)
    parts = _stale_night(tmp_path, db_url, 5)
    assert parts == whole
    counts, changes, directory = parts
    assert (counts["updated"], counts["unchanged"]) == (3, 9)
    assert changes.count(b"Ann") == 3  # each rename shows the name it replaces
    assert {name for _, name, _ in directory} == {"Ann", "Bo", "Cy", "Di"}
    assert all(fingerprinted for _, _, fingerprinted in directory)
