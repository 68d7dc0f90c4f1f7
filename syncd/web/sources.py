"""The configured sources: the last file each sent and its job, the next scan, whether
it is late (no file in time, as `syncd status` says, or scans failing), and a button
that scans one now.

Inside `syncd run` the daemon knows its schedule and when each scan ran or failed;
"scan now" asks it to scan at once, and it runs the jobs. Alone (`syncd web`), the back
office reads the schedule from the configuration and scans itself, as `syncd scan
SOURCE` does, in its work thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from syncd import store
from syncd.config import Config, SourceConfig
from syncd.errors import UsageError
from syncd.overview import source_overviews
from syncd.web.access import record, require
from syncd.web.office import ScanState, office
from syncd.web.rendering import page


def schedule_words(source: SourceConfig) -> str:
    if source.schedule:
        return f"cron {source.schedule} (UTC)"
    return f"every {source.interval_seconds or 60} s"


class Standalone:
    """The host of `syncd web` alone: it runs no daemon, so it knows the schedule but
    not when scans ran."""

    runs_jobs = False

    def __init__(self, config: Config) -> None:
        self.config = config

    def scan_state(self, source: str) -> ScanState:
        cfg = self.config.source(source)
        next_scan = None
        if cfg.schedule:
            from apscheduler.triggers.cron import CronTrigger

            trigger = CronTrigger.from_crontab(cfg.schedule, timezone=UTC)
            next_scan = trigger.get_next_fire_time(None, datetime.now(UTC))
        return ScanState(next_scan=next_scan, schedule=schedule_words(cfg))

    def request_scan(self, source: str) -> None:
        raise RuntimeError("syncd web scans in its own work thread")


def sources_page(request: Request) -> Response:
    person = require(request)
    the = office(request)
    rows: list[dict[str, Any]] = []
    with the.reader.engine.connect() as conn:
        # Whether files came in time is what `syncd status` says (`expect_every`).
        overviews = source_overviews(conn, the.config.sources, now=the.rt.clock())
        for cfg, overview in zip(the.config.sources, overviews, strict=True):
            last = store.list_jobs(conn, 1, source=cfg.name)
            rows.append(
                {
                    "config": cfg,
                    "last": last[0] if last else None,
                    "scan": the.host.scan_state(cfg.name),
                    "overview": overview,
                }
            )
    notice = None
    scanned = request.query_params.get("scanned")
    if scanned:
        notice = f"The daemon scans {scanned} now; its jobs appear in the list as they run."
    context = {
        "person": person,
        "sources": rows,
        "in_daemon": the.host.runs_jobs,
        "notice": notice,
        "title": "Sources",
    }
    return page(request, "sources.html", context)


async def scan_now(request: Request) -> Response:
    name = request.path_params["name"]

    def act() -> Response:
        from syncd.scanning import scan_and_run

        person = require(request, "admin")
        the = office(request)
        try:
            the.config.source(name)
        except UsageError as error:
            record(request, "scan", person=person, target=name, outcome="failed", detail=str(error))
            raise
        record(request, "scan", person=person, target=name)
        if the.host.runs_jobs:
            the.host.request_scan(name)
            return RedirectResponse(f"/sources?scanned={name}", status_code=303)

        def work(progress: Any) -> str:
            progress("scanning")
            scan_and_run(the.rt, [name])
            return f"/jobs?source={name}"

        task = the.tasks.start(f"Scanning {name}", person.name, work)
        return RedirectResponse(f"/tasks/{task.id}", status_code=303)

    return await run_in_threadpool(act)


def routes() -> list[BaseRoute]:
    return [
        Route("/sources", sources_page),
        Route("/sources/{name}/scan", scan_now, methods=["POST"]),
    ]
