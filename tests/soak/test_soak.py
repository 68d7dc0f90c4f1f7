"""`make soak`: two `syncd run` on one PostgreSQL database take 500 files from three
sources over an hour compressed into minutes, through an SFTP server that restarts and
a mail server that is down for a while; then one daemon is stopped in the middle of a
1,000,000-row job.

The sources (`feeds`, `rig`): `hr`, full nightly exports on one OpenSSH sshd; `branch`,
partial files on another; `uploads`, partial files in a local folder both daemons watch.
Every source notifies people, so every job sends a report through the aiosmtpd relay.
During the drops the relay is down for a quarter of the window, then back; later
`hr`'s sshd stops (its sessions with it) and starts again. The daemons' RSS is sampled
every two seconds into `var/soak/rss-<time>.csv`. Once all of it is done, a
1,000,000-row file lands in a fourth source, `bulk`, and the daemon that takes it gets
SIGTERM: it rolls the job back after its stop timeout and exits 0, and the other daemon
runs the file again.

At the end: each file made exactly one job, which ended as its file calls for, with its
rows; a source's jobs ran one at a time in file order; every file was settled into
processed/ (failed/ for the rejected); each job's report reached the relay exactly once,
every Message-ID once; no job is left running or queued; both daemons exit 0; and their
memory stayed flat once warmed up (`memory`). A summary (files/min, jobs per outcome,
reports, RSS start/peak/end per daemon, points of the curve) is printed and written to
`var/soak/summary-<time>.txt`.

Scale: SYNCD_SOAK_FILES (500), SYNCD_SOAK_MINUTES (the drop window: 12 for 500 files,
in proportion for fewer, at least 1), SYNCD_SOAK_SEED, SYNCD_SOAK_DRAIN_MINUTES (how
long the work may take after the last drop: 40). `SYNCD_SOAK_FILES=30 make soak` is a
quick run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from bench.generate import first_export
from tests.e2e.test_daemon_exactly_once import Running
from tests.integration.test_report_delivery import Relay, relay_on
from tests.servers.sshd import Sshd
from tests.soak.feeds import Drop, plan_drops
from tests.soak.memory import EVERY_SECONDS, FLAT_MIB, FLAT_SHARE, Sampler, quarters
from tests.soak.rig import ALL_SOURCES, Rig, play, timeline

pytestmark = pytest.mark.soak

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "var" / "soak"
FILES = int(os.environ.get("SYNCD_SOAK_FILES", "500"))
MINUTES = float(os.environ.get("SYNCD_SOAK_MINUTES") or max(1.0, 12 * FILES / 500))
SEED = int(os.environ.get("SYNCD_SOAK_SEED", "20261130"))
DRAIN_MINUTES = float(os.environ.get("SYNCD_SOAK_DRAIN_MINUTES", "40"))
#: The file the stopped daemon is running: long enough to outlive the stop timeout.
BIG_ROWS = 1_000_000
#: Statuses whose file is settled into processed/ (the rest into failed/).
PROCESSED = {"applied", "applied_with_errors", "held", "skipped"}
#: Events that mean a bug, whatever else happened.
CRASHES = ("job_crashed", "scan_crashed", "outbox_failed")
DAEMONS = ("one", "two")


def test_two_daemons_take_every_file_once_through_outages_with_flat_memory(
    tmp_path: Path, postgres_url: str, sshd_factory: Callable[[], Sshd]
) -> None:
    """The soak (see the module docstring for what it does and checks)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    staging = tmp_path / "staging"
    staging.mkdir()
    generating = time.monotonic()
    drops = plan_drops(FILES, MINUTES * 60, SEED, staging)
    big = staging / "bulk_0001.csv"
    big.write_bytes(first_export(BIG_ROWS, SEED))
    generated = time.monotonic() - generating
    big_drop = Drop("bulk", big.name, 0.0, big, BIG_ROWS, "applied", "big")
    every = [*drops, big_drop]

    folders = {"uploads": tmp_path / "uploads", "bulk": tmp_path / "bulk"}
    for folder in folders.values():
        folder.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("soak-secret-shared-by-both-daemons\n", encoding="utf-8")
    secret.chmod(0o600)
    engine = create_engine(postgres_url)
    with _relay() as relay:
        rig = Rig({"hr": sshd_factory(), "branch": sshd_factory()}, folders, relay)
        daemons = {}
        for name in DAEMONS:
            (tmp_path / f"{name}-cwd").mkdir()
            config = rig.config(tmp_path, name, postgres_url, secret)
            daemons[name] = Running(tmp_path / f"{name}-cwd", config, name)
        sampler = Sampler(
            {n: d.process.pid for n, d in daemons.items()}, RESULTS / f"rss-{stamp}.csv"
        )
        sampler.start()
        try:
            began = sampler.now()
            play(rig, timeline(drops, MINUTES * 60), sampler.now, lambda: _alive(daemons))
            dropped = sampler.now()
            deadline = dropped + DRAIN_MINUTES * 60
            work_done = _drain(engine, rig, len(drops), sampler, daemons, deadline)
            finished = sampler.now()
            stopped = _stop_mid_job(engine, rig, big_drop, daemons)
            stopped_code = daemons[stopped].stop(timeout=60)
            rest = {n: d for n, d in daemons.items() if n != stopped}
            _drain(engine, rig, len(every), sampler, rest, sampler.now() + 600)
        finally:
            sampler.stop()
            codes = {name: d.stop() for name, d in daemons.items()}
        jobs, outbox = _state(engine)
        messages = list(relay.server.messages)
        attempts = _query(engine, "SELECT attempts FROM outbox")
    engine.dispose()

    summary = _summary(
        drops, jobs, messages, attempts, daemons, sampler, generated,
        (began, dropped, work_done, finished), stopped,
    )  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"summary-{stamp}.txt").write_text(summary + "\n", encoding="utf-8")
    print("\n" + summary)

    assert stopped_code == 0
    assert codes == dict.fromkeys(DAEMONS, 0)
    assert daemons[stopped].events("rolled_back"), "the 1,000,000-row job was not rolled back"
    for name, daemon in daemons.items():
        crashes = [e for c in CRASHES for e in daemon.events(c)]
        assert not crashes, f"{name}: {crashes}"
        assert daemon.events("file_taken"), f"daemon {name} ran no job"
    _check_jobs(jobs, every)
    _check_settled(rig, jobs, every)
    _check_reports(jobs, messages, outbox)
    # Memory flat once warmed up, over the time the daemons had the feeds' work.
    for name in daemons:
        judged = quarters(sampler.samples, name, began, work_done)
        assert judged.flat, (
            f"daemon {name}'s RSS rose: quarter means {judged.means} MiB (allowed: the "
            f"second's + {FLAT_SHARE:.0%} + {FLAT_MIB:g} MiB); curve in {sampler.curve}"
        )


# --- the run --------------------------------------------------------------------------


@contextlib.contextmanager
def _relay() -> Iterator[Relay]:
    yield from relay_on()


def _query(engine: Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql))]


def _state(engine: Engine) -> tuple[list[dict[str, Any]], dict[str, int]]:
    jobs = _query(
        engine,
        "SELECT id, source, file_name, status, rows, remote_mtime, started_at, finished_at, "
        "lease_owner FROM jobs",
    )
    outbox = {r["status"]: r["n"] for r in _query(
        engine, "SELECT status, count(*) AS n FROM outbox GROUP BY status"
    )}  # fmt: skip
    return jobs, outbox


def _alive(daemons: dict[str, Running]) -> None:
    for name, daemon in daemons.items():
        if daemon.process.poll() is not None:
            pytest.fail(f"daemon {name} exited ({daemon.process.returncode}):\n{daemon.tail()}")


def _drain(
    engine: Engine,
    rig: Rig,
    files: int,
    sampler: Sampler,
    daemons: dict[str, Running],
    deadline: float,
) -> float:
    """Wait until `files` files ran and were settled and every report went out; return
    when (on the sampler's clock) the last job had finished."""
    work_done: float | None = None
    while True:
        _alive(daemons)
        jobs, outbox = _state(engine)
        ended = len(jobs) == files and not [j for j in jobs if j["status"] in ("queued", "running")]
        if ended and work_done is None:
            work_done = sampler.now()
        if (
            ended
            and len(rig.settled()) == files
            and set(outbox) == {"sent"}
            and len(rig.relay.server.messages) >= len(jobs)
        ):
            assert work_done is not None
            return work_done
        if sampler.now() > deadline:
            pytest.fail(
                f"not done in time: {len(jobs)} jobs of {files} files "
                f"{dict(Counter(j['status'] for j in jobs))}, outbox {outbox}, "
                f"{len(rig.settled())} settled, {len(rig.relay.server.messages)} mails\n"
                + "\n".join(f"--- {n} ---\n{d.tail()}" for n, d in daemons.items())
            )
        time.sleep(EVERY_SECONDS)


def _stop_mid_job(engine: Engine, rig: Rig, big: Drop, daemons: dict[str, Running]) -> str:
    """Drop the big file; once a daemon runs its job, return that daemon's name."""
    rig.drop(big)
    deadline = time.monotonic() + 300
    while True:
        _alive(daemons)
        found = _query(engine, "SELECT status, lease_owner FROM jobs WHERE source = 'bulk'")
        if found and found[0]["status"] == "running":
            break
        assert not found or found[0]["status"] == "queued", f"it ended unstopped: {found}"
        assert time.monotonic() < deadline, "the 1,000,000-row file was not taken"
        time.sleep(0.2)
    job = found[0]
    pid = int(job["lease_owner"].split(":")[-2])
    [name] = [n for n, d in daemons.items() if d.process.pid == pid]
    time.sleep(1.0)  # into its work, not at its first step
    return name


# --- the checks -----------------------------------------------------------------------


def _check_jobs(jobs: list[dict[str, Any]], every: list[Drop]) -> None:
    """Each file exactly one job, ended as its file calls for, with its rows; a source's
    jobs one at a time, in file order; none left under way."""
    by_file = {(d.source, d.name): d for d in every}
    made = Counter((j["source"], j["file_name"]) for j in jobs)
    assert {k: n for k, n in made.items() if n != 1} == {}
    assert set(made) == set(by_file)
    wrong = []
    for job in jobs:
        drop = by_file[job["source"], job["file_name"]]
        # A skipped job reads nothing of its file, so it counts no rows.
        rows = 0 if drop.expect == "skipped" else drop.rows
        if (job["status"], job["rows"]) != (drop.expect, rows):
            wrong.append((drop.name, drop.kind, job["status"], job["rows"], drop.expect, rows))
    assert wrong == []
    assert [j for j in jobs if j["status"] in ("queued", "running") or j["lease_owner"]] == []
    for source in ALL_SOURCES:
        ran = sorted((j for j in jobs if j["source"] == source), key=lambda j: j["started_at"])
        names = [j["file_name"] for j in ran]
        assert names == sorted(names), f"{source} ran out of order: {names}"
        order = [(j["remote_mtime"], j["file_name"]) for j in ran]
        assert order == sorted(order), source
        overlaps = [
            (a["file_name"], b["file_name"])
            for a, b in itertools.pairwise(ran)
            if b["started_at"] < a["finished_at"]
        ]
        assert overlaps == [], f"{source}: jobs ran at once: {overlaps}"


def _check_settled(rig: Rig, jobs: list[dict[str, Any]], every: list[Drop]) -> None:
    """Every file settled under its job ID, in processed/ or failed/; none left behind."""
    settled = rig.settled()
    for job in jobs:
        stem = job["file_name"].removesuffix(".csv")
        want = "processed" if job["status"] in PROCESSED else "failed"
        assert settled.get((job["source"], f"{stem}.{job['id']}.csv")) == want, job
    assert len(settled) == len(every)
    assert rig.left() == []


def _check_reports(jobs: list[dict[str, Any]], messages: list[Any], outbox: dict[str, int]) -> None:
    """Every job's report reached the relay once, of the job's outcome, each Message-ID
    once; the outbox holds nothing but sent messages."""
    parsed = [m.parsed() for m in messages]
    per_job = Counter(str(m["X-Syncd-Job"]) for m in parsed)
    assert {k: n for k, n in per_job.items() if n != 1} == {}
    assert set(per_job) == {j["id"] for j in jobs}
    message_ids = [str(m["Message-ID"]) for m in parsed]
    assert len(set(message_ids)) == len(message_ids) == len(jobs)
    kinds = {str(m["X-Syncd-Job"]): str(m["X-Syncd-Report"]) for m in parsed}
    assert [j["id"] for j in jobs if kinds[j["id"]] != j["status"]] == []
    assert outbox == {"sent": len(jobs)}


# --- the summary ----------------------------------------------------------------------


def _summary(
    drops: list[Drop],
    jobs: list[dict[str, Any]],
    messages: list[Any],
    attempts: list[dict[str, Any]],
    daemons: dict[str, Running],
    sampler: Sampler,
    generated: float,
    times: tuple[float, float, float, float],
    stopped: str,
) -> str:
    """The run in figures, for a person."""
    began, dropped, work_done, finished = times
    minutes = (work_done - began) / 60
    rows = sum(d.rows for d in drops)
    feeds = [j for j in jobs if j["source"] != "bulk"]
    per_source = Counter(d.source for d in drops)
    lines = [
        f"syncd soak, seed {SEED}: {len(drops)} files, {rows:,} rows ("
        + ", ".join(f"{s} {n}" for s, n in per_source.items())
        + f"), generated in {generated:.0f} s",
        f"drops over {(dropped - began) / 60:.1f} min; last job ended at {minutes:.1f} min; "
        f"all reports delivered at {(finished - began) / 60:.1f} min",
        f"files/min: {len(feeds) / minutes:.1f} (rows/s: {rows / (work_done - began):,.0f})",
        "jobs per outcome: "
        + ", ".join(f"{s} {n}" for s, n in sorted(Counter(j["status"] for j in feeds).items())),
        f"reports delivered: {len(messages)} messages for {len(jobs)} jobs, "
        f"{len({str(m.parsed()['Message-ID']) for m in messages})} distinct Message-IDs; "
        f"{sum(1 for a in attempts if a['attempts'] > 1)} needed more than one attempt",
        f"then {BIG_ROWS:,} rows: daemon {stopped} got SIGTERM mid-job and "
        + ("rolled it back" if daemons[stopped].events("rolled_back") else "did not roll back")
        + ", the other ran it again",
    ]
    for name, daemon in daemons.items():
        values = [v[name] for t, v in sampler.samples if name in v and t <= finished]
        judged = quarters(sampler.samples, name, began, work_done)
        overall = max(v[name] for _, v in sampler.samples if name in v)
        lines.append(
            f"daemon {name}: {len(daemon.events('file_taken'))} jobs taken, "
            f"{len(daemon.events('fetch_failed'))} fetches failed, "
            f"{len(daemon.events('scan_failed'))} scans failed, "
            f"{len(daemon.events('report_retry'))} report retries; RSS MiB start "
            f"{values[0]:.0f}, peak {max(values):.0f}, end {values[-1]:.0f} (peak with the "
            f"big file {overall:.0f}); quarter means "
            + " / ".join(f"{m:.0f}" for m in judged.means)
        )
    lines.append(f"RSS curve ({len(sampler.samples)} samples): {sampler.curve}")
    step = max(1, len(sampler.samples) // 15)
    for elapsed, values in sampler.samples[::step]:
        lines.append(
            f"  {elapsed / 60:6.1f} min  " + "  ".join(f"{n} {v:5.0f}" for n, v in values.items())
        )
    return "\n".join(lines)
