"""Logging: structlog, JSON lines when not on a terminal, readable lines on one.

Events carry `job_id` and `source` where they have them; never secrets or row contents.
That holds for tracebacks too: they are rendered by `syncd.tracebacks`, not by structlog
or rich (whose console tracebacks show every frame's local variables: files, rows,
passwords).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from syncd.tracebacks import ExcInfo, safe_traceback


def _console_traceback(out: TextIO, exc_info: ExcInfo) -> None:
    out.write("\n" + safe_traceback(exc_info))


def configure_logging(level: str = "info") -> None:
    renderer: structlog.typing.Processor
    if sys.stderr.isatty():
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=_console_traceback)
    else:
        renderer = structlog.processors.JSONRenderer()
    exceptions = structlog.processors.ExceptionRenderer(safe_traceback)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            exceptions,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # What libraries log (APScheduler, watchdog) comes out as the same JSON lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                exceptions,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    # paramiko logs a dropped connection with a traceback of its own, and APScheduler
    # every run of every scan: syncd's own events already say what happened.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
