"""What `syncd status` shows of each configured source: its newest file and last job,
when it is scanned next, how often files are expected and whether they are late.

Everything comes from the configuration and the database as it is; nothing is written.
Lateness is what the daemon recorded (late since when, and when the alert was queued)
or, where it recorded nothing yet, what the rule (`syncd.core.lateness`) says now: a
source late while no daemon runs shows as late, with no alert sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from syncd.config import SourceConfig
from syncd.core.lateness import judge
from syncd.store import source_state as states


@dataclass(frozen=True, slots=True)
class SourceOverview:
    """One source as `syncd status` shows it.

    `due`: when its next file is due (None: no `expect_every`, or no file yet and no
    daemon watching it); `late_since`: since when it is late (None: it is not);
    `alerted_at`: when its late alert was queued (None: not yet).
    """

    source: SourceConfig
    last_file: states.LastFile | None
    last_job: states.LastJob | None
    next_scan: datetime | None
    due: datetime | None
    late_since: datetime | None
    alerted_at: datetime | None

    @property
    def late(self) -> bool:
        return self.late_since is not None

    def as_json(self) -> dict[str, Any]:
        """The object `syncd status --json` prints for this source."""
        source, file, job = self.source, self.last_file, self.last_job
        return {
            "source": source.name,
            "kind": source.kind,
            "mode": source.mode,
            "where": source.where,
            "last_file": None
            if file is None
            else {"name": file.name, "received_at": _iso(file.received_at), "job_id": file.job_id},
            "last_job": None
            if job is None
            else {"job_id": job.job_id, "status": job.status, "finished_at": _iso(job.finished_at)},
            "schedule": source.schedule,
            "interval_seconds": source.interval_seconds,
            "watches_folder": source.kind == "local",
            "next_scan": _iso(self.next_scan),
            "expect_every": source.expect_every,
            "business_days": source.business_days,
            "due_at": _iso(self.due),
            "late": self.late,
            "late_since": _iso(self.late_since),
            "alerted_at": _iso(self.alerted_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def next_scan(source: SourceConfig, now: datetime) -> datetime | None:
    """When a cron schedule next scans `source`; None for an interval, which counts from
    whenever the daemon started."""
    if source.schedule is None:
        return None
    from apscheduler.triggers.cron import CronTrigger

    fire: datetime | None = CronTrigger.from_crontab(
        source.schedule, timezone=UTC
    ).get_next_fire_time(None, now)
    return fire


def source_overviews(
    conn: Connection, sources: tuple[SourceConfig, ...], *, now: datetime
) -> list[SourceOverview]:
    """Every source in `sources`, in their order, as it stands at `now`."""
    names = [s.name for s in sources]
    known = states.source_states(conn, names)
    newest = states.newest_files(conn, names)
    shown = []
    for source in sources:
        state, file = known.get(source.name), newest.get(source.name)
        due = late_since = alerted_at = None
        expect = source.expectation
        if expect is not None and state is not None and state.late_since is not None:
            due, late_since, alerted_at = state.late_since, state.late_since, state.alerted_at
        elif expect is not None and (state is not None or file is not None):
            verdict = judge(
                expect,
                newest_file=file.received_at if file else None,
                watched_since=state.watched_since if state else now,
                late_since=None,
                late_measured_from=None,
                now=now,
            )
            due, late_since = verdict.due, verdict.late_since
        shown.append(
            SourceOverview(
                source=source,
                last_file=file,
                last_job=states.last_ended_job(conn, source.name),
                next_scan=next_scan(source, now),
                due=due,
                late_since=late_since,
                alerted_at=alerted_at,
            )
        )
    return shown
