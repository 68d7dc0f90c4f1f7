"""Stopping the schedules while a scheduled run is going on: the daemon waits for the run,
and a run that ends by asking the scheduler something (a follow-up scan, the lateness
check) gets its answer instead of waiting for a lock the stopping daemon holds."""

from __future__ import annotations

import threading
from pathlib import Path

from syncd.config import load_config
from syncd.daemon import Daemon
from syncd.runtime import open_runtime


def test_stopping_waits_for_a_run_that_asks_the_scheduler_and_ends(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "syncd.db"}"\n',
        encoding="utf-8",
    )
    rt = open_runtime(load_config(config))
    daemon = Daemon(rt)
    daemon._install()
    scheduler = daemon._scheduler
    started, stopping = threading.Event(), threading.Event()
    asked: list[object] = []

    def a_scan_that_asks_the_scheduler_as_it_ends() -> None:
        started.set()
        stopping.wait(10)
        asked.append(scheduler.get_job("outbox"))

    scheduler.add_job(daemon._tracked(a_scan_that_asks_the_scheduler_as_it_ends), id="slow")
    try:
        assert started.wait(10), "the scheduler never ran the job"
        stop = threading.Thread(target=daemon._uninstall)
        stop.start()
        stop.join(0.5)
        assert stop.is_alive(), "stopping did not wait for the run going on"
        stopping.set()
        stop.join(10)
        assert not stop.is_alive(), "stopping never ended: the run could not ask the scheduler"
        assert len(asked) == 1
        # Once stopped, a run the scheduler still had queued never starts.
        ran: list[int] = []
        daemon._tracked(lambda: ran.append(1))()
        assert ran == []
    finally:
        stopping.set()
        rt.engine.dispose()
