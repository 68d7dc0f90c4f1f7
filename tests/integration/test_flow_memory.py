"""A job lets go of what it no longer needs before the next stage: at a million rows the
file's cells are hundreds of MiB, and a stage that keeps them alive for nothing decides
the job's peak memory."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Connection

from syncd import flow
from syncd.config import load_config
from syncd.core.plan import Plan
from syncd.core.table import RawTable
from syncd.intake import Drop
from syncd.runtime import Runtime, open_runtime


def _runtime(tmp_path: Path) -> Runtime:
    """A runtime on SQLite in `tmp_path`, with one full source."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        '[[sources]]\nname = "hr"\nkind = "local"\npath = "unused"\nprofile = "default"\n'
        'mode = "full"\n',
        encoding="utf-8",
    )
    return open_runtime(load_config(config))


def test_the_cells_of_valid_rows_are_gone_before_the_job_plans(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    name = "Ann Flowmemory"  # tells this job's tables from any other test left alive
    rows = [f"user{i}@example.com,{name}" for i in range(500)] + [f"not an address,{name}"]
    data = ("Email,First Name\r\n" + "\r\n".join(rows) + "\r\n").encode()
    tables: list[int] = []

    def look(conn: Connection, directory: str, plan: Plan, changes: pl.DataFrame) -> None:
        gc.collect()
        tables.extend(
            o.cells.height
            for o in gc.get_objects()
            if isinstance(o, RawTable) and (o.cells.get_column("c1") == name).any()
        )

    try:
        outcome = flow.run_job(rt, rt.config.sources[0], Drop("hr.csv", data), check_plan=look)
    finally:
        rt.engine.dispose()
    assert outcome.status == "applied_with_errors"
    assert outcome.counts.created == 500
    # Only the failed row's cells are still held (for the errors CSV).
    assert tables == [1]


def test_the_plan_is_gone_before_the_job_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first load's plan holds every user's record; once applied, storing the job's
    retained copy and report goes on without it."""
    rt = _runtime(tmp_path)
    name = "Ann Planmemory"  # tells this job's plan from any other test left alive
    rows = [f"user{i}@example.com,{name}" for i in range(300)]
    data = ("Email,First Name\r\n" + "\r\n".join(rows) + "\r\n").encode()
    plans: list[int] = []
    retain = flow.store.retain_file

    def looking(conn: Connection, job_id: str, **values: Any) -> None:
        gc.collect()
        plans.extend(
            o.creates.height
            for o in gc.get_objects()
            if isinstance(o, Plan) and (o.creates.get_column("first_name") == name).any()
        )
        retain(conn, job_id, **values)

    monkeypatch.setattr(flow.store, "retain_file", looking)  # the store's own, looked at
    try:
        outcome = flow.run_job(rt, rt.config.sources[0], Drop("hr.csv", data))
    finally:
        rt.engine.dispose()
    assert outcome.counts.created == 300
    assert plans == []
