"""Late sources on a real database (SQLite and PostgreSQL): two daemons checking one
source at once queue one late alert between them, and one resumed alert when a file
comes; a restarted daemon does not alert again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from syncd.config import Config, SourceConfig, load_config
from syncd.runtime import Runtime, open_runtime
from syncd.staleness import Checked, check_sources
from syncd.store import outbox, queue_file
from syncd.store import source_state as states
from syncd.store.schema import source_state

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday
ENV = {"SYNCD_TEST_SECRET": "not-a-real-secret"}


def _config(db_url: str, tmp_path: Path, **source: Any) -> Config:
    base = load_config(None, env={})
    hr = SourceConfig(
        name="hr",
        kind="local",
        profile="default",
        mode="full",
        directory="hr",
        processed_dir=str(tmp_path / "drop" / "processed"),
        failed_dir=str(tmp_path / "drop" / "failed"),
        path=tmp_path / "drop",
        notify=("it@example.com",),
        expect_every="1h",
    )
    return replace(
        base,
        database=replace(base.database, url=db_url),
        sources=(replace(hr, **source),),
        state_dir=tmp_path / "state",
        secret_env="SYNCD_TEST_SECRET",
        secret_file=None,
    )


@pytest.fixture
def daemons(db_url: str, tmp_path: Path) -> Iterator[list[Runtime]]:
    """Two runtimes on one database, each with engines of its own, as two daemons have."""
    config = _config(db_url, tmp_path)
    runtimes = [open_runtime(config, ENV) for _ in range(2)]
    yield runtimes
    for rt in runtimes:
        rt.engine.dispose()


def _at_once(runtimes: list[Runtime], now: datetime) -> list[Checked]:
    """Every runtime checks at `now`, released together."""
    start = threading.Barrier(len(runtimes))
    results: list[Checked | BaseException] = [RuntimeError("did not run")] * len(runtimes)

    def check(index: int) -> None:
        start.wait()
        try:
            results[index] = check_sources(runtimes[index], now=now)
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=check, args=(i,)) for i in range(len(runtimes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, Checked)]


def _alerts(checked: list[Checked]) -> list[tuple[str, str]]:
    return sorted(alert for c in checked for alert in c.alerts)


def _queued(rt: Runtime) -> list[tuple[str | None, str]]:
    with rt.engine.connect() as conn:
        return [(m.kind, m.subject) for m in outbox.list_messages(conn)]


def _drop(rt: Runtime, name: str, now: datetime) -> None:
    with rt.engine.begin() as conn:
        assert queue_file(
            conn, job_id=f"0J{len(name):03}-{name[:5].upper()}", source="hr",
            directory="hr", mode="full", name=name, size=10, mtime=now.timestamp(), now=now,
        )  # fmt: skip


def test_two_daemons_send_one_late_alert_and_one_resumed_alert_between_them(
    daemons: list[Runtime],
) -> None:
    """Watching starts at the first check; an hour on, both daemons check at once and
    one late alert is queued; later checks, and a restarted daemon, queue nothing; a
    file comes and both checking at once queue one resumed alert."""
    first, second = daemons
    assert check_sources(first, now=T0) == Checked((), T0 + timedelta(hours=1))
    assert _alerts(_at_once(daemons, T0 + timedelta(minutes=59))) == []

    late = T0 + timedelta(hours=1, seconds=1)
    assert _alerts(_at_once(daemons, late)) == [("hr", "late")]
    assert _alerts(_at_once(daemons, late + timedelta(hours=3))) == []
    restarted = replace(first, engine=open_runtime(first.config, ENV).engine)
    try:
        assert check_sources(restarted, now=late + timedelta(hours=4)) == Checked((), None)
    finally:
        restarted.engine.dispose()
    ((kind, subject),) = _queued(first)
    assert kind == "late"
    assert "Late, no file since 2026-12-01 09:00:00 UTC (expected every 1h): source hr" in subject

    came = T0 + timedelta(hours=6)
    _drop(second, "users.csv", came)
    assert _alerts(_at_once(daemons, came + timedelta(seconds=1))) == [("hr", "resumed")]
    assert [k for k, _ in _queued(first)] == ["late", "resumed"]
    assert (
        "Files again, users.csv came (late since 2026-12-01 10:00:00 UTC)" in (_queued(first)[1][1])
    )
    # On time again: due an hour after the file.
    assert check_sources(first, now=came + timedelta(minutes=30)) == Checked(
        (), came + timedelta(hours=1)
    )


def test_a_source_late_again_after_resuming_gets_a_new_alert(daemons: list[Runtime]) -> None:
    """Each lateness is told once: late, resumed, then late again an hour after the file."""
    rt = daemons[0]
    check_sources(rt, now=T0)
    assert check_sources(rt, now=T0 + timedelta(hours=1)).alerts == (("hr", "late"),)
    _drop(rt, "a.csv", T0 + timedelta(hours=2))
    assert check_sources(rt, now=T0 + timedelta(hours=2)).alerts == (("hr", "resumed"),)
    assert check_sources(rt, now=T0 + timedelta(hours=3)).alerts == (("hr", "late"),)
    assert check_sources(rt, now=T0 + timedelta(hours=4)).alerts == ()
    assert [k for k, _ in _queued(rt)] == ["late", "resumed", "late"]


def test_a_late_source_without_notify_is_recorded_and_mails_nobody(
    db_url: str, tmp_path: Path
) -> None:
    """Nobody to tell: the state is still recorded (so status shows it), no message."""
    rt = open_runtime(_config(db_url, tmp_path, notify=()), ENV)
    try:
        check_sources(rt, now=T0)
        assert check_sources(rt, now=T0 + timedelta(hours=2)).alerts == (("hr", "late"),)
        assert _queued(rt) == []
        with rt.engine.connect() as conn:
            row = conn.execute(select(source_state)).one()
        assert (row.source, row.late_since) == ("hr", T0 + timedelta(hours=1))
    finally:
        rt.engine.dispose()


def test_sources_without_expect_every_are_never_checked(db_url: str, tmp_path: Path) -> None:
    """No expectation: no state row, no alert, nothing due."""
    rt = open_runtime(_config(db_url, tmp_path, expect_every=None), ENV)
    try:
        assert check_sources(rt, now=T0 + timedelta(days=30)) == Checked((), None)
        with rt.engine.connect() as conn:
            assert conn.execute(select(source_state)).all() == []
    finally:
        rt.engine.dispose()


def test_only_the_first_of_two_records_of_one_change_wins(daemons: list[Runtime]) -> None:
    """The claim itself: marking a source late that is already late, or ending a
    lateness another daemon already ended, changes nothing and says so."""
    rt = daemons[0]
    since = T0 + timedelta(hours=1)
    with rt.engine.begin() as conn:
        states.watch_source(conn, "hr", now=T0)
        states.watch_source(conn, "hr", now=T0 + timedelta(days=1))  # kept: the first
        assert states.mark_late(conn, "hr", since=since, measured_from=T0, now=since)
        assert not states.mark_late(conn, "hr", since=since, measured_from=T0, now=since)
        assert states.mark_resumed(conn, "hr", late_since=since, now=T0 + timedelta(hours=2))
        assert not states.mark_resumed(conn, "hr", late_since=since, now=T0 + timedelta(hours=2))
        state = states.source_states(conn, ["hr"])["hr"]
    assert state == states.SourceState("hr", watched_since=T0, resumed_at=T0 + timedelta(hours=2))
