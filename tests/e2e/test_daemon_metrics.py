"""`syncd run` with `[metrics] listen`: a real daemon runs four files (applied, applied
with a row error, rejected, held) while its mail server is down, then its Prometheus
endpoint is scraped over HTTP and read with prometheus_client's own parser: the jobs by
outcome, the rows, a duration per job, the time since the source's last applied file,
the reports waiting in the outbox and the held job are what the run caused. A second
daemon asked to listen on the same address exits 78 saying so."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cli import syncd, syncd_json
from tests.e2e.test_daemon_exactly_once import Running
from tests.servers import LOOPBACK, free_port

HEADER = "Email,First Name,Last Name\r\n"
PEOPLE = [f"m{n}@example.com,Mia{n},Nowak\r\n" for n in range(10)]

#: Dropped one after the other, each waited for: what each one's job ends as.
FILES = {
    "a.csv": (HEADER + "".join(PEOPLE), "applied"),
    # The same ten people and a row whose email (the key) is broken: applied, no archive.
    "b.csv": (HEADER + "".join(PEOPLE) + "not-an-email,Bad,Row\r\n", "applied_with_errors"),
    # No email column at all.
    "c.csv": ("Name,Team\r\nsomeone,Sales\r\n", "rejected"),
    # Two of the ten: archiving eight of ten is over the 10% guard.
    "d.csv": (HEADER + "".join(PEOPLE[:2]), "held"),
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True, slots=True)
class Scraped:
    """One scrape: each sample's value by (name, labels), and the families' types."""

    samples: Samples
    types: dict[str, str]
    began: float  # time.time() before the daemon started
    taken: float  # time.time() when the scrape was taken
    listen: str
    config: Path
    root: Path

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no {name}{labels} in the scrape: {sorted(self.samples)}"
        return self.samples[key]


def _config(root: Path, listen: str, smtp_port: int) -> Path:
    config = root / "syncd.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n'
        f'[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
        f'[metrics]\nlisten = "{listen}"\n'
        # A mail server nobody answers on: reports wait in the outbox.
        f'[mail]\nfrom = "syncd@example.com"\nsmtp_host = "{LOOPBACK}"\n'
        f'smtp_port = {smtp_port}\ntls = "none"\ntimeout_seconds = 2\n'
        f'[[sources]]\nname = "drop"\nkind = "local"\npath = "{root / "drop"}"\n'
        'profile = "default"\nmode = "full"\nsettle_seconds = 0.3\ninterval_seconds = 1\n'
        'notify = ["it@example.com"]\n',
        encoding="utf-8",
    )
    return config


def _settled(drop: Path) -> set[str]:
    return {
        p.name.split(".", 1)[0] + ".csv"
        for folder in (drop / "processed", drop / "failed")
        if folder.is_dir()
        for p in folder.iterdir()
    }


def scrape(listen: str) -> str:
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=10) as answer:
        assert answer.status == 200
        text: str = answer.read().decode("utf-8")
        return text


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    root = tmp_path_factory.mktemp("metrics")
    (root / "drop").mkdir()
    listen = f"{LOOPBACK}:{free_port()}"
    config = _config(root, listen, smtp_port=free_port())
    began = time.time()
    daemon = Running(root, config)
    try:
        for name, (content, _) in FILES.items():
            staging = root / f"{name}.staging"
            staging.write_text(content, encoding="utf-8")
            os.replace(staging, root / "drop" / name)
            daemon.wait_for(f"{name} to be settled", lambda n=name: n in _settled(root / "drop"))
        families = list(text_string_to_metric_families(scrape(listen)))
        taken = time.time()
        samples: Samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples
        }
        yield Scraped(
            samples, {f.name: f.type for f in families}, began, taken, listen, config, root
        )
    finally:
        assert daemon.stop() == 0


def test_the_files_ended_as_planned(scraped: Scraped) -> None:
    """The run the metrics describe: one job per file, each ended as its file meant."""
    listed, jobs = syncd_json(
        "--config", scraped.config, "jobs", "list", "--json", cwd=scraped.root
    )
    assert listed.code == 0, listed.stderr
    assert {j["file"]: j["status"] for j in jobs} == {n: s for n, (_, s) in FILES.items()}


def test_jobs_are_counted_by_source_and_outcome(scraped: Scraped) -> None:
    assert scraped.types["syncd_jobs"] == "counter"
    counted = {
        dict(labels)["outcome"]: value
        for (name, labels), value in scraped.samples.items()
        if name == "syncd_jobs_total" and dict(labels)["source"] == "drop"
    }
    assert counted == {"applied": 1, "applied_with_errors": 1, "rejected": 1, "held": 1}


def test_rows_are_counted_valid_and_invalid(scraped: Scraped) -> None:
    """10 + 10 + 2 valid rows (the rejected file's row was never validated), 1 invalid."""
    assert scraped.value("syncd_rows_total", source="drop", outcome="valid") == 22
    assert scraped.value("syncd_rows_total", source="drop", outcome="invalid") == 1


def test_every_job_has_a_duration(scraped: Scraped) -> None:
    assert scraped.types["syncd_job_duration_seconds"] == "histogram"
    assert scraped.value("syncd_job_duration_seconds_count", source="drop") == 4
    assert scraped.value("syncd_job_duration_seconds_bucket", source="drop", le="+Inf") == 4
    assert scraped.value("syncd_job_duration_seconds_sum", source="drop") > 0


def test_seconds_since_the_last_applied_file(scraped: Scraped) -> None:
    """b.csv was the last applied file: it ended after the daemon started, before the
    scrape (so the value lies between 0 and the whole run's length)."""
    since = scraped.value("syncd_seconds_since_last_applied_file", source="drop")
    assert 0 <= since <= scraped.taken - scraped.began


def test_the_reports_waiting_for_the_mail_server_are_the_outbox_backlog(
    scraped: Scraped,
) -> None:
    """Four jobs, four reports, none sent (nothing answers on the SMTP port); no claim
    is left waiting."""
    assert scraped.value("syncd_outbox_backlog") == 4
    assert scraped.value("syncd_claims_waiting") == 0


def test_the_held_job_and_its_age(scraped: Scraped) -> None:
    assert scraped.value("syncd_held_jobs", source="drop") == 1
    age = scraped.value("syncd_oldest_held_job_age_seconds", source="drop")
    assert 0 <= age <= scraped.taken - scraped.began


def test_a_second_daemon_on_the_same_metrics_address_exits_78(scraped: Scraped) -> None:
    """The address is taken (the first daemon still serves it): no traceback, exit 78,
    the key named. (The first daemon is still running: the module's fixture stops it.)"""
    second = syncd("--config", scraped.config, "run", cwd=scraped.root, timeout=30)
    assert second.code == 78, second.stderr
    assert "metrics.listen" in second.stderr
    assert scraped.listen in second.stderr
    assert "Traceback" not in second.stderr
