"""Prometheus metrics of a running daemon, served on a local address (`[metrics] listen`).

Counted by this daemon as it works (they start at zero with it, as counters do):
- `syncd_jobs_total{source, outcome}`: jobs run, by how they ended;
- `syncd_rows_total{source, outcome}`: their rows, `valid` or `invalid`;
- `syncd_job_duration_seconds{source}`: how long jobs took, from fetch to end.

Read from the database at each scrape, so every daemon on one database says the same:
- `syncd_seconds_since_last_applied_file{source}`: since the newest applied job of each
  source ended (a source never applied is left out);
- `syncd_outbox_backlog`: report messages not sent yet;
- `syncd_claims_waiting`: files claimed and waiting for a job to run them;
- `syncd_held_jobs{source}` and `syncd_oldest_held_job_age_seconds{source}`: jobs held
  for approval, and since when the oldest of them waits (sources holding none are left
  out).

A database that cannot be read leaves those gauges out of that scrape (logged), rather
than failing the scrape: the counters still answer, and an alert on a missing gauge
still fires.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from syncd.errors import ConfigError
from syncd.outcome import JobOutcome
from syncd.store.schema import jobs, outbox

log = structlog.get_logger("syncd.metrics")

#: Job durations, seconds: a few rows take well under a second, a million rows a minute.
_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


class _FromDatabase(Collector):
    """The gauges read from the database at each scrape."""

    def __init__(self, engine: Engine) -> None:
        # A scrape only reads: never wait for SQLite's write lock while a job holds it.
        self.engine = engine.execution_options(sqlite_begin="DEFERRED")

    def collect(self) -> Iterator[Metric]:
        since = GaugeMetricFamily(
            "syncd_seconds_since_last_applied_file",
            "Seconds since the newest applied job of each source ended.",
            labels=["source"],
        )
        backlog = GaugeMetricFamily(
            "syncd_outbox_backlog", "Report messages not sent yet (pending or being sent)."
        )
        waiting = GaugeMetricFamily(
            "syncd_claims_waiting", "Files claimed and waiting for a job to run them."
        )
        held = GaugeMetricFamily(
            "syncd_held_jobs", "Jobs held for approval, waiting for a decision.", labels=["source"]
        )
        oldest = GaugeMetricFamily(
            "syncd_oldest_held_job_age_seconds",
            "Seconds since the oldest job still held of each source was held.",
            labels=["source"],
        )
        now = time.time()
        try:
            with self.engine.connect() as conn:
                last = conn.execute(
                    select(jobs.c.source, func.max(jobs.c.finished_at))
                    .where(jobs.c.status.in_(("applied", "applied_with_errors")))
                    .group_by(jobs.c.source)
                ).all()
                unsent = conn.scalar(
                    select(func.count()).where(outbox.c.status.not_in(("sent", "failed")))
                )
                queued = conn.scalar(select(func.count()).where(jobs.c.status == "queued"))
                holding = conn.execute(
                    select(jobs.c.source, func.count(), func.min(jobs.c.finished_at))
                    .where(jobs.c.status == "held")
                    .group_by(jobs.c.source)
                ).all()
        except SQLAlchemyError as error:
            log.warning("metrics_database_failed", error=str(error).splitlines()[0])
            return
        for source, finished in last:
            if isinstance(finished, datetime):
                since.add_metric([source], max(0.0, now - finished.timestamp()))
        backlog.add_metric([], unsent or 0)
        waiting.add_metric([], queued or 0)
        for source, count, first in holding:
            held.add_metric([source], count)
            if isinstance(first, datetime):
                oldest.add_metric([source], max(0.0, now - first.timestamp()))
        yield from (since, backlog, waiting, held, oldest)


class Metrics:
    """What the daemon counts, and the registry a scrape reads."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "syncd_jobs", "Jobs run, by source and outcome.", ["source", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.rows = Counter(
            "syncd_rows", "Rows of the jobs run, valid or invalid.", ["source", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "syncd_job_duration_seconds", "How long jobs took, by source.", ["source"],
            buckets=_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_FromDatabase(engine))

    def job_done(self, outcome: JobOutcome, seconds: float) -> None:
        self.jobs.labels(outcome.source, outcome.status).inc()
        self.rows.labels(outcome.source, "valid").inc(outcome.counts.valid)
        self.rows.labels(outcome.source, "invalid").inc(outcome.counts.invalid)
        self.duration.labels(outcome.source).observe(seconds)

    def serve(self, listen: str) -> None:
        """Answer scrapes on `listen` (`host:port`) from a thread of its own; ConfigError
        when that address cannot be listened on (taken, or not this host's)."""
        host, _, port = listen.rpartition(":")
        try:
            start_http_server(
                int(port), addr=host.strip("[]") or "127.0.0.1", registry=self.registry
            )
        except OSError as exc:
            raise ConfigError(
                "metrics cannot be served",
                [f"metrics.listen: cannot listen on {listen}: {exc.strerror or exc}"],
            ) from exc
