"""The daemon: scan the sources, run each complete file as a job, settle it, repeat.

First SIGTERM or SIGINT: finish the running job, then stop (exit 0); a second one stops
at once. A scan runs at start and then every `interval_seconds` of each source (default
5 s for a local folder). Files of one source are taken oldest first, one at a time.

Log events (structlog): `file_taken` (source, file, size) when a complete file is taken,
`job_done` with the job's status and counts, and for a rejected or held job the `reason`
(its first message: what the file or the guard got wrong, never a row's contents).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType

import structlog

from syncd.checking import Drop
from syncd.config import SourceConfig
from syncd.core.status import PROCESSED
from syncd.errors import SyncdError
from syncd.jobs import run_job
from syncd.runtime import Runtime
from syncd.sdnotify import Notifier
from syncd.sources import Source
from syncd.sources.local import LocalSource
from syncd.support import retained_file

log = structlog.get_logger("syncd.daemon")

DEFAULT_INTERVAL = 5.0
#: Jobs whose first message says why nothing was applied; it goes into the log.
EXPLAINED_STATUSES = frozenset({"rejected", "held"})


def build_source(config: SourceConfig) -> Source:
    if config.kind == "local" and config.path is not None:
        return LocalSource(
            config.name,
            config.path,
            pattern=config.pattern,
            processed_dir=Path(config.processed_dir),
            failed_dir=Path(config.failed_dir),
            settle_seconds=config.settle_seconds,
            markers=config.markers,
        )
    raise SyncdError(
        f"source {config.name}: kind {config.kind!r} is not supported by this version of the "
        "daemon yet"
    )


class Daemon:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stopping = threading.Event()
        self._signals = 0
        self.notify = Notifier()
        self.sources = [
            (cfg, build_source(cfg)) for cfg in rt.config.sources if cfg.kind == "local"
        ]
        for cfg in rt.config.sources:
            if cfg.kind != "local":
                log.warning("source_not_supported_yet", source=cfg.name, kind=cfg.kind)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            raise SystemExit(1)
        log.info("stopping", signal=signal.Signals(signum).name)
        self.stopping.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info(
            "started",
            sources=[cfg.name for cfg, _ in self.sources],
            database=self.rt.engine.url.render_as_string(hide_password=True),
        )
        next_scan = {cfg.name: 0.0 for cfg, _ in self.sources}
        self.notify.ready(f"watching {len(self.sources)} sources")
        while not self.stopping.is_set():
            self.notify.watchdog()
            now = time.monotonic()
            for cfg, source in self.sources:
                if self.stopping.is_set() or now < next_scan[cfg.name]:
                    continue
                next_scan[cfg.name] = now + float(cfg.interval_seconds or DEFAULT_INTERVAL)
                self.scan(cfg, source)
            self.stopping.wait(0.5)
        self.notify.stopping()
        log.info("stopped")
        return 0

    def scan(self, cfg: SourceConfig, source: Source) -> None:
        try:
            names = source.list_complete(time.time())
        except SyncdError as exc:
            log.error("scan_failed", source=cfg.name, error=str(exc))
            return
        for name in names:
            if self.stopping.is_set():
                return
            self.take(cfg, source, name)

    def take(self, cfg: SourceConfig, source: Source, name: str) -> None:
        try:
            drop = Drop(name, source.fetch(name))
        except SyncdError as exc:
            log.error("fetch_failed", source=cfg.name, file=name, error=str(exc))
            return
        log.info("file_taken", source=cfg.name, file=name, size=len(drop.data))
        try:
            outcome = run_job(self.rt, cfg, drop)  # the job takes the bytes over
        except SyncdError as exc:
            log.error("job_failed", source=cfg.name, file=name, error=str(exc))
            return
        except Exception:
            # A bug must not stop the daemon, nor make it retry the same file forever:
            # run_job recorded the job as rejected; the file goes to failed/.
            log.exception("job_crashed", source=cfg.name, file=name)
            self._settle(source, cfg, name, "crashed", ok=False)
            return
        explained = outcome.status in EXPLAINED_STATUSES and outcome.messages
        (log.warning if explained else log.info)(
            "job_done",
            job_id=outcome.job_id,
            source=cfg.name,
            file=name,
            status=outcome.status,
            **({"reason": outcome.messages[0]} if explained else {}),
            **outcome.counts.as_dict(),
        )
        replacement = None
        if outcome.redacted and outcome.job_id is not None:
            # The file holds passwords: what is settled is the copy with them blanked.
            replacement = retained_file(self.rt, outcome.job_id)[1]
        self._settle(
            source,
            cfg,
            name,
            outcome.job_id or "-",
            ok=outcome.status in PROCESSED,
            replacement=replacement,
        )
        self.notify.status(f"last job {outcome.job_id} ({cfg.name}): {outcome.status}")

    def _settle(
        self,
        source: Source,
        cfg: SourceConfig,
        name: str,
        job_id: str,
        *,
        ok: bool,
        replacement: bytes | None = None,
    ) -> None:
        try:
            where = source.settle(name, job_id, ok, replacement)
            log.info("file_settled", job_id=job_id, source=cfg.name, to=where)
        except SyncdError as exc:
            log.error("settle_failed", job_id=job_id, source=cfg.name, error=str(exc))
