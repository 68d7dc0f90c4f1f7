"""Long work started from the back office (a preview, an import, an approval, a scan),
run one at a time in a thread of its own while the page shows its progress.

A task reports the stage it is at (the job stages of `syncd.display.STAGES`); when it
ends it names the page to show next, or the error to show. Tasks live in the process
that started them and are forgotten an hour after they end.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from syncd.display import STAGES
from syncd.errors import SyncdError

log = structlog.get_logger("syncd.web")

#: Work takes what it reports progress to, and gives the page to show when it is done.
Work = Callable[[Callable[[str], None]], str]
KEPT_SECONDS = 3600


@dataclass(slots=True)
class Task:
    id: str
    title: str
    owner: str
    stage: str = "waiting"
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    next_url: str | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.ended is not None

    @property
    def percent(self) -> int:
        """How far along, by stage (a whole job is its stages)."""
        if self.done:
            return 100
        if self.stage in STAGES:
            return int(100 * STAGES.index(self.stage) / len(STAGES))
        return 0

    @property
    def seconds(self) -> int:
        return int((self.ended or time.monotonic()) - self.started)


class Tasks:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-web-task")
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def start(self, title: str, owner: str, work: Work) -> Task:
        task = Task(secrets.token_urlsafe(12), title, owner)
        with self._lock:
            now = time.monotonic()
            for key in [
                k for k, t in self._tasks.items() if t.ended and now - t.ended > KEPT_SECONDS
            ]:
                del self._tasks[key]
            self._tasks[task.id] = task
        self._pool.submit(self._run, task, work)
        return task

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def _run(self, task: Task, work: Work) -> None:
        def progress(stage: str) -> None:
            task.stage = stage

        task.stage = "starting"
        try:
            task.next_url = work(progress)
        except SyncdError as error:
            task.error = str(error)
        except Exception as error:  # a bug must not kill the worker; the page says so
            log.exception("web_task_crashed", task=task.title)
            task.error = f"syncd failed ({type(error).__name__}); the log says more"
        finally:
            task.ended = time.monotonic()

    def wait(self, task_id: str, timeout: float = 60) -> Task:
        """Block until a task ends (the command line and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id)
            if task is None:
                raise KeyError(task_id)
            if task.done:
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task.title} still running")
            time.sleep(0.02)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
