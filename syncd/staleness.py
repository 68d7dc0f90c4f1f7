"""Late sources: a source with `expect_every` that sent no file in time gets one alert,
and one more when its files come again.

`check_sources` gathers what the database knows (each source's newest file, and its
`source_state`), decides with the pure rule (`syncd.core.lateness.judge`) and acts: a
source newly late is recorded late and its alert queued in one transaction, and so is
a late source's first new file. The record is the claim (`syncd.store.source_state`):
of two daemons checking at once, only the one whose UPDATE changed the row queues an
alert, and a restarted daemon finds the source already late. The daemon calls it every
minute, after each scan, and when a source falls due.

Lateness is measured from the newest file syncd took for the source (any job or claim,
from the daemon or `syncd import --source`), or from when a syncd first watched the
source if none ever came; that moment is kept, so a restart does not reset the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Connection, Engine

from syncd.config import SourceConfig
from syncd.core.lateness import Expectation, Verdict, judge
from syncd.report.alerts import SourceAlert, queue_alert
from syncd.runtime import Runtime
from syncd.store import source_state as states

log = structlog.get_logger("syncd.staleness")


@dataclass(frozen=True, slots=True)
class Checked:
    """What one check did: the alerts it queued (source, kind), and the next moment a
    source that is on time falls due (None: none is)."""

    alerts: tuple[tuple[str, str], ...]
    next_due: datetime | None


def watched(sources: tuple[SourceConfig, ...]) -> list[tuple[SourceConfig, Expectation]]:
    """The sources that say how often their files come."""
    return [(s, e) for s in sources if (e := s.expectation) is not None]


def _reading(engine: Engine) -> Engine:
    """Reads that need no write lock (the daemon's SQLite engine takes it up front)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="DEFERRED")
    return engine


def _verdict(
    conn: Connection, source: str, expect: Expectation, now: datetime
) -> tuple[Verdict, states.SourceState, states.LastFile | None]:
    state = states.source_states(conn, [source])[source]
    newest = states.newest_files(conn, [source]).get(source)
    verdict = judge(
        expect,
        newest_file=newest.received_at if newest else None,
        watched_since=state.watched_since,
        late_since=state.late_since,
        late_measured_from=state.late_measured_from,
        now=now,
    )
    return verdict, state, newest


def check_sources(rt: Runtime, *, now: datetime) -> Checked:
    """Check every source with `expect_every` at `now`; see the module docstring."""
    sources = watched(rt.config.sources)
    if not sources:
        return Checked((), None)
    names = [s.name for s, _ in sources]
    with _reading(rt.engine).connect() as conn:
        known = states.source_states(conn, names)
        newest = states.newest_files(conn, names)
    if set(names) - set(known):
        with rt.engine.begin() as conn:
            for name in set(names) - set(known):
                states.watch_source(conn, name, now=now)
    alerts: list[tuple[str, str]] = []
    due: list[datetime] = []
    for source, expect in sources:
        state = known.get(source.name, states.SourceState(source.name, now))
        last = newest.get(source.name)
        verdict = judge(
            expect,
            newest_file=last.received_at if last else None,
            watched_since=state.watched_since,
            late_since=state.late_since,
            late_measured_from=state.late_measured_from,
            now=now,
        )
        if verdict.state == "on_time":
            due.append(verdict.due)
        elif verdict.state in ("late", "resumed"):
            # Decided again in the transaction that records it: another daemon may have
            # recorded it, or a file come, since the look above.
            kind = _record(rt, source, expect, now)
            if kind is not None:
                alerts.append((source.name, kind))
    return Checked(tuple(alerts), min(due, default=None))


def _record(rt: Runtime, source: SourceConfig, expect: Expectation, now: datetime) -> str | None:
    """Record a source's change of state and queue its alert, if this check is the one
    that changes it; the kind of alert queued."""
    with rt.engine.begin() as conn:
        verdict, state, newest = _verdict(conn, source.name, expect, now)
        if verdict.state == "late":
            assert verdict.late_since is not None
            if not states.mark_late(
                conn,
                source.name,
                since=verdict.late_since,
                measured_from=verdict.measured_from,
                now=now,
            ):
                return None
            alert = SourceAlert(
                kind="late",
                source=source.name,
                late_since=verdict.late_since,
                measured_from=verdict.measured_from,
                last_file=newest.name if newest else None,
            )
            log.warning(
                "source_late",
                source=source.name,
                late_since=verdict.late_since.isoformat(),
                last_file_at=verdict.measured_from.isoformat() if newest else None,
                expect_every=source.expect_every,
            )
        elif verdict.state == "resumed":
            assert state.late_since is not None
            assert newest is not None
            if not states.mark_resumed(conn, source.name, late_since=state.late_since, now=now):
                return None
            before = state.late_measured_from or state.watched_since
            alert = SourceAlert(
                kind="resumed",
                source=source.name,
                late_since=state.late_since,
                measured_from=before,
                last_file=_file_before(conn, source.name, before),
                file=newest.name,
                came_at=newest.received_at,
            )
            log.info(
                "source_resumed",
                source=source.name,
                job_id=newest.job_id,
                late_since=state.late_since.isoformat(),
            )
        else:
            return None
        queue_alert(conn, rt.config, alert, now=now)
        return alert.kind


def _file_before(conn: Connection, source: str, at: datetime) -> str | None:
    """The name of the file lateness was measured from (received at `at`), if one was."""
    found = states.file_received_at(conn, source, at)
    return found.name if found else None
