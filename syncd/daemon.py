"""The daemon: scans its sources on their schedules, runs the jobs they queue, one at a time.

Scans run in APScheduler's threads, one scheduled job per source (`schedule` as cron, or
`interval_seconds`), at start and on the schedule, missed runs coalesced; a local folder
is also watched (watchdog: inotify, or polling for network shares) and any change asks
for a scan of that folder. A scan only claims files (`syncd.scanning`); the main thread
takes the queued jobs and runs them (`syncd.work`), the one running the other daemons on
the database leave alone. A source is never scanned twice at once.

Signals: SIGTERM or SIGINT stops taking files; the running job finishes, or, once
`stop_timeout_seconds` have passed, the daemon leaves without committing it (the
database rolls it back, and its file runs again); exit 0. A second signal exits at once.
SIGHUP re-reads the configuration between jobs (a broken one is logged and the old one
kept). SIGUSR1 writes every thread's stack to the log. systemd hears READY, STATUS,
WATCHDOG and STOPPING.

Beside the scans: the outbox is sent every half minute and after each job; sources
with `expect_every` are checked for lateness every minute, after each scan and when
one falls due (`syncd.staleness`); what outlived `retention_days` is dropped at start
and every hour (`syncd.cleanup`).
"""

from __future__ import annotations

import faulthandler
import functools
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from sqlalchemy.exc import OperationalError

from syncd.cleanup import clean_up
from syncd.config import SourceConfig, load_config
from syncd.errors import SourceError, SyncdError
from syncd.lease import this_owner
from syncd.metrics import Metrics
from syncd.outcome import JobOutcome
from syncd.private import private_folder
from syncd.runtime import Runtime
from syncd.scanning import scan
from syncd.sdnotify import Notifier
from syncd.sources.spool import Spool
from syncd.staleness import check_sources, watched
from syncd.tracebacks import describe
from syncd.work import Opened, SourceDown, open_sources, take_next

log = structlog.get_logger("syncd.daemon")

#: How long a source that failed is left alone before its jobs are taken again.
REST_SECONDS = 30.0
#: The next job could not be taken (the database unreachable, most likely): the daemon
#: tries again after this long, doubling the wait up to `TAKE_RETRY_MAX_SECONDS` while it
#: keeps failing, rather than trying (and logging) without pause.
TAKE_RETRY_SECONDS = 1.0
TAKE_RETRY_MAX_SECONDS = 30.0
#: How often the outbox is looked at for reports due (and after every job).
SEND_EVERY_SECONDS = 30
#: How often sources with `expect_every` are checked (and after every scan).
LATENESS_EVERY_SECONDS = 60
#: How often what outlived `retention_days` is dropped (and at start).
CLEAN_EVERY_SECONDS = 3600
#: A follow-up scan for a file still settling comes this long after it is due.
FOLLOW_UP_SLACK = 0.5
#: A scheduled scan this much past due makes the back office call its source late.
LATE_SECONDS = 60
#: The signals the daemon takes itself (SIGUSR1 goes to faulthandler).
_HANDLED = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class _Watch:
    """Turns filesystem events in a local folder into requests to scan it."""

    def __init__(self, daemon: Daemon, cfg: SourceConfig) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        name = cfg.name

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                daemon.request_scan(name)

        self.observer = PollingObserver(timeout=1) if cfg.watch == "poll" else Observer()
        assert cfg.path is not None
        private_folder(cfg.path)
        self.observer.schedule(Handler(), str(cfg.path), recursive=False)
        self.observer.daemon = True
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()


class Daemon:
    #: the back office asks the daemon to scan, and the daemon runs the jobs
    runs_jobs = True

    def __init__(
        self, rt: Runtime, *, config_path: Path | None = None, web_listen: str | None = None
    ) -> None:
        self.rt = rt
        self.config_path = config_path
        self.web_listen = web_listen
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.notify = Notifier()
        self.spool = Spool(rt.config.state_dir / "spool")
        self._signals = 0
        self._reload = False
        self._heartbeat = time.monotonic()
        self._job: str | None = None
        self._resting: dict[str, float] = {}
        #: while jobs cannot be taken: how long the last wait was, and when to try again
        self._take_wait = 0.0
        self._take_again = 0.0
        self._scan_locks: dict[str, threading.Lock] = {}
        self._scan_again: dict[str, threading.Event] = {}
        self._send_again = threading.Event()
        self._sources: dict[str, Opened] = {}
        self._watches: list[_Watch] = []
        self._scheduler: Any = None
        self._metrics: Metrics | None = None
        self._lateness_lock = threading.Lock()
        self._web: Any = None
        self._office: Any = None
        #: per source: when its last scan ended (wall clock) and its error, if any
        self._scanned: dict[str, tuple[datetime, str | None]] = {}
        #: scheduled runs going on now; once closed (stopping), none starts
        self._runs = 0
        self._runs_closed = False
        self._runs_changed = threading.Condition()

    # --- sources and schedules ------------------------------------------------------

    def _install(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        self._sources = open_sources(self.rt.config)
        with self._runs_changed:
            self._runs_closed = False  # (a reload stopped the schedules it starts again)
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        now = datetime.now(UTC)
        for name, opened in self._sources.items():
            cfg = opened.config
            self._scan_locks.setdefault(name, threading.Lock())
            self._scan_again.setdefault(name, threading.Event())
            trigger = (
                CronTrigger.from_crontab(cfg.schedule, timezone=UTC)
                if cfg.schedule
                else IntervalTrigger(seconds=cfg.interval_seconds or 60, timezone=UTC)
            )
            # A full scan at start, then on the schedule.
            self._scheduler.add_job(
                self._tracked(self._scan),
                trigger,
                args=[name],
                id=f"scan:{name}",
                next_run_time=now,
            )
            if cfg.kind == "local":
                self._watches.append(_Watch(self, cfg))
        self._scheduler.add_job(
            self._tracked(self._send), IntervalTrigger(seconds=SEND_EVERY_SECONDS, timezone=UTC),
            id="outbox", next_run_time=now,
        )  # fmt: skip
        if watched(self.rt.config.sources):
            self._scheduler.add_job(
                self._tracked(self._check_lateness), IntervalTrigger(seconds=LATENESS_EVERY_SECONDS,
                timezone=UTC), id="lateness", next_run_time=now,
            )  # fmt: skip
        self._scheduler.add_job(
            self._tracked(self._clean), IntervalTrigger(seconds=CLEAN_EVERY_SECONDS, timezone=UTC),
            id="cleanup", next_run_time=now,
        )  # fmt: skip
        self._scheduler.start()

    def _tracked(self, run: Callable[..., None]) -> Callable[..., None]:
        """`run` as the scheduler calls it: counted while it runs, so that stopping waits
        for it, and never started once stopping began (its source may be closed)."""

        @functools.wraps(run)
        def tracked(*args: Any) -> None:
            with self._runs_changed:
                if self._runs_closed:
                    return
                self._runs += 1
            try:
                run(*args)
            finally:
                with self._runs_changed:
                    self._runs -= 1
                    self._runs_changed.notify_all()

        return tracked

    def _uninstall(self) -> None:
        for watch in self._watches:
            watch.stop()
        self._watches = []
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            # Not `shutdown(wait=True)`: that waits holding the scheduler's job store lock,
            # which a run that ends by asking the scheduler something (a follow-up scan,
            # the lateness check) waits for in turn, and the daemon never stops.
            with self._runs_changed:
                self._runs_closed = True
            scheduler.shutdown(wait=False)
            with self._runs_changed:
                self._runs_changed.wait_for(lambda: self._runs == 0)
        for opened in self._sources.values():
            opened.source.close()

    def _send(self) -> None:
        """Deliver the reports that are due (another daemon's included: the outbox is
        shared, each message claimed by one sender); again at once if a job ended
        meanwhile (a round already running takes no second one, and the report of that
        job would wait for the next round, half a minute later)."""
        from syncd.report import deliver_pending

        while True:
            self._send_again.clear()
            try:
                done = deliver_pending(
                    self.rt.engine, self.rt.config.mail, os.environ, self.rt.clock()
                )
            except Exception:  # the database or the mail server: the next round tries again
                log.exception("outbox_failed")
                return
            if done.sent or done.failed:
                log.info("outbox_sent", sent=done.sent, failed=done.failed, waiting=done.waiting)
            if not self._send_again.is_set() or self.stopping.is_set():
                return

    def _send_soon(self) -> None:
        self._send_again.set()
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.modify_job("outbox", next_run_time=datetime.now(UTC))

    def _check_lateness(self) -> None:
        """Alert about sources whose files are late, or came again (`syncd.staleness`),
        and look again when the next one falls due. One check at a time (the minute's, a
        scan's, a due source's)."""
        try:
            with self._lateness_lock:
                checked = check_sources(self.rt, now=self.rt.clock())
        except Exception:  # the database: the next round tries again
            log.exception("lateness_check_failed")
            return
        if checked.alerts:
            self._send_soon()
        scheduler = self._scheduler
        if checked.next_due is not None and scheduler is not None:
            scheduler.add_job(
                self._tracked(self._check_lateness), "date", run_date=checked.next_due,
                id="lateness:due", replace_existing=True,
            )  # fmt: skip

    def _check_lateness_soon(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None and scheduler.get_job("lateness") is not None:
            scheduler.modify_job("lateness", next_run_time=datetime.now(UTC))

    def _clean(self) -> None:
        """Drop what outlived `retention_days` (`syncd.cleanup`; it logs what went)."""
        try:
            clean_up(self.rt, now=self.rt.clock())
        except Exception:  # the database or the disk: the next round tries again
            log.exception("cleanup_failed")

    def request_scan(self, name: str) -> None:
        """Scan source `name` soon (a change was seen in its folder)."""
        self._scan_again[name].set()
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.add_job(
                self._tracked(self._scan),
                "date",
                args=[name],
                id=f"now:{name}",
                replace_existing=True,
            )

    def _scan(self, name: str) -> None:
        """Scan one source; never two scans of one source at once (a scan asked for while
        one runs makes that one go round again)."""
        lock = self._scan_locks[name]
        if not lock.acquire(blocking=False):
            self._scan_again[name].set()
            return
        try:
            while True:
                self._scan_again[name].clear()
                self._scan_once(name)
                if not self._scan_again[name].is_set() or self.stopping.is_set():
                    return
        finally:
            lock.release()

    def _scan_once(self, name: str) -> None:
        opened = self._sources.get(name)
        if opened is None or self.stopping.is_set():
            return
        try:
            scanned = scan(self.rt, opened, wall=time.time())
        except SourceError as error:
            log.error("scan_failed", source=name, error=str(error))
            self._scanned[name] = (datetime.now(UTC), str(error))
            return
        except OperationalError as error:  # the database away: said in one line
            said = describe(error)
            log.error("scan_failed", source=name, error=said, hint=DATABASE_HINT)
            self._scanned[name] = (datetime.now(UTC), said)
            return
        except Exception as error:  # a bug in a scan must not stop the daemon
            log.exception("scan_crashed", source=name)
            self._scanned[name] = (datetime.now(UTC), f"syncd failed ({type(error).__name__})")
            return
        self._scanned[name] = (datetime.now(UTC), None)
        if scanned.queued:
            self.wake.set()
        self._check_lateness_soon()
        scheduler = self._scheduler
        if scanned.waiting and scheduler is not None:
            # A file is still settling: look again as soon as it may have.
            when = datetime.now(UTC) + timedelta(
                seconds=opened.config.settle_seconds + FOLLOW_UP_SLACK
            )
            scheduler.add_job(
                self._tracked(self._scan), "date", run_date=when, args=[name], id=f"again:{name}",
                replace_existing=True,
            )  # fmt: skip

    # --- the back office ----------------------------------------------------------------

    def _start_web(self) -> None:
        """Serve the back office from a thread, if asked; an address it cannot listen on
        is logged, and the daemon goes on without it."""
        listen = self.web_listen or self.rt.config.web.listen
        if not listen:
            return
        from syncd.web.app import create_app
        from syncd.web.serving import Background, address, bind

        try:
            sock = bind(listen)
        except SyncdError as error:
            log.error("web_failed", error=str(error))
            return
        app = create_app(self.rt, host=self)
        self._office = app.state.office
        self._web = Background(app, sock)
        log.info("web_listening", url=address(sock))

    def _stop_web(self) -> None:
        if self._web is not None:
            self._web.stop()
            self._office.tasks.shutdown()
            self._web = None

    def scan_state(self, source: str) -> Any:
        """What the back office says of a source's scans (`syncd.web.office.ScanState`)."""
        from syncd.web.office import ScanState
        from syncd.web.sources import schedule_words

        cfg = self.rt.config.source(source)
        scheduled = self._scheduler.get_job(f"scan:{source}") if self._scheduler else None
        next_scan = scheduled.next_run_time if scheduled is not None else None
        last, error = self._scanned.get(source, (None, None))
        now = datetime.now(UTC)
        why = None
        if error is not None:
            why = f"its last scan failed: {error}"
        elif self._resting.get(source, 0.0) > time.monotonic():
            why = "its file could not be fetched; the daemon tries again shortly"
        elif next_scan is not None and (now - next_scan).total_seconds() > LATE_SECONDS:
            why = "its scan is overdue"
        return ScanState(
            next_scan=next_scan,
            schedule=schedule_words(cfg),
            last_scan=last,
            last_error=error,
            late=why is not None,
            why_late=why,
        )

    # --- signals ----------------------------------------------------------------------

    def _signals_loop(self, wakeup: socket.socket) -> None:
        """Take SIGTERM, SIGINT and SIGHUP as they come, in a thread of their own: the main
        thread may be deep in a database call that no signal interrupts, and stopping
        must not wait for it. Python's signal handler writes each signal's number to the
        wakeup socket from whichever thread the signal reached."""
        while True:
            for signum in wakeup.recv(64):
                if signum == signal.SIGHUP:
                    self._on_reload(signum, None)
                elif signum in _HANDLED:
                    self._on_stop(signum, None)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("stopping_now", signal=signal.Signals(signum).name)
            os._exit(1)
        running = {"job_id": self._job} if self._job is not None else {}
        log.info("stopping", signal=signal.Signals(signum).name, **running)
        self.stopping.set()
        self.wake.set()
        self.notify.stopping()
        if self._job is not None:
            timer = threading.Timer(self.rt.config.stop_timeout_seconds, self._give_up)
            timer.daemon = True
            timer.start()

    def _give_up(self) -> None:
        """The running job outlived the stop timeout: leave now, without committing. The
        database rolls the job's transaction back when its connection goes, and the job,
        its process gone, is put back in the queue by whichever daemon looks next."""
        job = self._job
        if job is not None:
            log.warning(
                "rolled_back", job_id=job, hint="nothing of it was applied; its file runs again"
            )
            os._exit(0)

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload = True
        self.wake.set()

    def _reload_config(self) -> None:
        self._reload = False
        try:
            config = load_config(self.config_path)
        except SyncdError as error:
            log.error("reload_failed", error=str(error), kept="the configuration in use")
            return
        if config.database.url != self.rt.config.database.url:
            log.warning("reload_database_ignored", hint="restart syncd to use another database")
            config = replace(config, database=self.rt.config.database)
        self._uninstall()
        self.rt = replace(self.rt, config=config)
        self._install()
        if self._office is not None:
            self._office.use(self.rt)
        log.info("reloaded", sources=sorted(self._sources))

    # --- watchdog -----------------------------------------------------------------------

    def _watchdog(self) -> None:
        """Ping systemd's watchdog while the main loop is alive (or busy with a job)."""
        interval = self.notify.watchdog_interval
        assert interval is not None
        while not self.stopping.wait(interval):
            if self._job is not None or time.monotonic() - self._heartbeat < 2 * interval:
                self.notify.watchdog()

    # --- the main loop --------------------------------------------------------------------

    def run(self) -> int:
        wakeup, written = socket.socketpair()
        written.setblocking(False)
        signal.set_wakeup_fd(written.fileno(), warn_on_full_buffer=False)
        for signum in _HANDLED:  # the work is done by the signals thread
            signal.signal(signum, lambda _signum, _frame: None)
        threading.Thread(
            target=self._signals_loop, args=(wakeup,), name="signals", daemon=True
        ).start()
        # `kill -USR1 PID` writes every thread's stack to the log: what a stuck daemon
        # is doing, without stopping it.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        self.spool.clear()
        if self.rt.config.metrics_listen:
            self._metrics = Metrics(self.rt.engine)
            self._metrics.serve(self.rt.config.metrics_listen)
        self._install()
        self._start_web()
        log.info(
            "started",
            owner=this_owner(),
            sources=sorted(self._sources),
            database=self.rt.engine.url.render_as_string(hide_password=True),
        )
        self.notify.ready(f"watching {len(self._sources)} sources")
        if self.notify.watchdog_interval:
            threading.Thread(target=self._watchdog, name="watchdog", daemon=True).start()
        try:
            while not self.stopping.is_set():
                self._heartbeat = time.monotonic()
                if self._reload:
                    self._reload_config()
                if not self._take_one():
                    self.wake.wait(1.0)
                    self.wake.clear()
        finally:
            self._uninstall()
            self._stop_web()
        log.info("stopped")
        return 0

    def _take_one(self) -> bool:
        """Run one queued job; False when there was none to run."""
        now = time.monotonic()
        ready = {n: o for n, o in self._sources.items() if self._resting.get(n, 0.0) <= now}
        if self.stopping.is_set() or now < self._take_again:
            return False
        began = time.monotonic()
        try:
            outcome = take_next(
                self.rt, ready, self.spool, progress=self._progress, on_claim=self._claimed
            )
        except SourceDown as down:
            log.error("fetch_failed", source=down.source, error=str(down))
            self._resting[down.source] = now + REST_SECONDS
            return False
        except Exception as exc:
            if self._job is None:  # nothing was claimed: the queue itself failed
                self._cannot_take(exc)
                return False
            log.exception("job_crashed", job_id=self._job)
            return True
        finally:
            self._job = None
        if self._take_wait:
            log.info("taking_jobs_again")
            self._take_wait = self._take_again = 0.0
        if outcome is None:
            return False
        if self._metrics is not None:
            self._metrics.job_done(outcome, time.monotonic() - began)
        self._send_soon()
        self.notify.status(f"last job {outcome.job_id} ({outcome.source}): {outcome.status}")
        (log.warning if _explained(outcome) else log.info)(
            "job_done",
            job_id=outcome.job_id,
            source=outcome.source,
            file=outcome.file,
            status=outcome.status,
            **({"reason": outcome.messages[0]} if _explained(outcome) else {}),
            **outcome.counts.as_dict(),
        )
        return True

    def _cannot_take(self, error: Exception) -> None:
        """The next job could not be taken: wait, longer each time it fails again. The
        first failure is logged with its traceback, each retry that fails in one line."""
        first = not self._take_wait
        self._take_wait = min(2 * self._take_wait or TAKE_RETRY_SECONDS, TAKE_RETRY_MAX_SECONDS)
        self._take_again = time.monotonic() + self._take_wait
        words = {
            "error": describe(error),
            "retry_in_seconds": self._take_wait,
            "hint": DATABASE_HINT,
        }
        if first:
            log.exception("cannot_take_jobs", **words)
        else:
            log.error("cannot_take_jobs", **words)

    def _claimed(self, job_id: str) -> None:
        self._job = job_id
        self.notify.status(f"running job {job_id}")

    def _progress(self, stage: str) -> None:
        self._heartbeat = time.monotonic()
        self.notify.status(f"running job {self._job}: {stage}")


#: What the log says to do when the database cannot be reached.
DATABASE_HINT = "check that the database is up and reachable; files wait until it is"


def _explained(outcome: JobOutcome) -> bool:
    """Whether the outcome's first message says why nothing (yet) was applied."""
    return outcome.status in ("rejected", "held") and bool(outcome.messages)
