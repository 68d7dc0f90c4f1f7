"""The back office's wiring: the runtimes its pages use, the daemon it runs in (if any),
its background work, its templates. One per app (`create_app`), reached from a request
as `office(request)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from syncd.config import Config
from syncd.runtime import Runtime
from syncd.web.tasks import Tasks


@dataclass(frozen=True, slots=True)
class ScanState:
    """What the back office says of a source's scans."""

    next_scan: datetime | None
    #: a sentence on the schedule when the next time is not known here
    schedule: str
    last_scan: datetime | None = None
    last_error: str | None = None
    #: None: not known in this process (the daemon runs elsewhere)
    late: bool | None = None
    why_late: str | None = None


class Host(Protocol):
    """Where the back office runs: inside `syncd run` (which scans and runs jobs) or
    alone (`syncd web`)."""

    #: whether this process takes the jobs a scan queues
    runs_jobs: bool

    def scan_state(self, source: str) -> ScanState: ...

    def request_scan(self, source: str) -> None:
        """Scan `source` soon (only asked of a host that runs jobs)."""


@dataclass(slots=True)
class Office:
    """Everything a page handler needs."""

    rt: Runtime
    host: Host
    tasks: Tasks
    templates: Jinja2Templates
    #: the same database, for pages that only read: on SQLite they never wait for a
    #: job's write lock
    reader: Runtime = field(init=False)

    def __post_init__(self) -> None:
        self.use(self.rt)

    def use(self, rt: Runtime) -> None:
        """Work with `rt` from now on (the daemon re-read its configuration)."""
        self.rt = rt
        engine = rt.engine
        if engine.dialect.name == "sqlite":
            engine = engine.execution_options(sqlite_begin="DEFERRED")
        self.reader = replace(rt, engine=engine)

    @property
    def config(self) -> Config:
        return self.rt.config

    @property
    def uploads_dir(self) -> Path:
        return self.config.state_dir / "uploads"

    def now(self) -> datetime:
        return self.rt.clock()


def office(request: Request) -> Office:
    found = request.app.state.office
    if not isinstance(found, Office):
        raise RuntimeError("the app was not made by create_app")
    return found
