"""The sources page (last file, last job, next scan, scan now) of a back office running
alone, and the audit log page."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from syncd import store
from tests.web.conftest import Site, follow_task, make_site, people, text_of

NIGHTLY = """
[[sources]]
name = "nightly"
kind = "local"
path = "{root}/drop-nightly"
profile = "default"
mode = "partial"
schedule = "30 2 * * *"
settle_seconds = 0

[[sources]]
name = "payroll"
kind = "local"
path = "{root}/drop-payroll"
profile = "default"
mode = "partial"
settle_seconds = 0
expect_every = "1s"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("sources")
    made = make_site(root, NIGHTLY.format(root=root))
    made.account("ada", "admin")
    made.account("sam", "support")
    yield made
    made.rt.engine.dispose()


def test_each_source_shows_its_last_file_and_job_and_its_schedule(site: Site) -> None:
    """A source that sent a file shows it and its job; the cron source its next run."""
    outcome = site.job("hr", people(3), name="hr_2026-12-01.csv")
    text = text_of(site.client("sam").get("/sources").text)
    assert "hr_2026-12-01.csv received" in text
    assert str(outcome.job_id) in text
    assert "cron 30 2 * * * (UTC)" in text
    assert "02:30:00 UTC" in text
    assert "not known here" in text  # no daemon in this process


def test_a_source_whose_file_is_overdue_shows_as_late(site: Site) -> None:
    """Lateness is what `syncd status` says: past `expect_every` since the source's
    newest file, it is late, whether or not a daemon runs."""
    site.job("payroll", people(2, 500), name="payroll.csv")
    time.sleep(1.5)
    rows = site.client("sam").get("/sources").text.split("<tr>")
    (late,) = [text_of(r) for r in rows if 'scope="row">payroll<' in r]
    assert "late: no file since" in late
    assert "(expected every 1s)" in late
    (hr,) = [text_of(r) for r in rows if 'scope="row">hr<' in r]
    assert "late" not in hr


def test_support_sees_no_scan_button(site: Site) -> None:
    """Scanning is for admins."""
    page = site.client("sam").get("/sources").text
    assert "/sources/hr/scan" not in page
    assert "/sources/hr/scan" in site.client("ada").get("/sources").text


def test_scan_now_takes_the_files_waiting_in_a_source(site: Site) -> None:
    """Alone, the back office scans as `syncd scan SOURCE` does: a file waiting in the
    folder becomes a job, and the file is settled."""
    drop = site.root / "drop-nightly"
    drop.mkdir(exist_ok=True)
    (drop / "nightly.csv").write_text(people(2, 300), encoding="utf-8")
    client = site.client("ada")
    answer = client.post("/sources/nightly/scan", follow_redirects=False)
    assert follow_task(client, answer) == "/jobs?source=nightly"
    with site.rt.engine.connect() as conn:
        (job,) = store.list_jobs(conn, 5, source="nightly")
    assert (job.file_name, job.status, job.counts.created) == ("nightly.csv", "applied", 2)
    assert not (drop / "nightly.csv").exists()


def test_scanning_a_source_that_does_not_exist_says_so(site: Site) -> None:
    """An unknown source name is refused in words."""
    answer = site.client("ada").post("/sources/nowhere/scan")
    assert answer.status_code == 409
    assert "there is no source named &#39;nowhere&#39;" in answer.text


def test_the_audit_log_lists_actions_newest_first_for_admins(site: Site) -> None:
    """Logins and scans are in the audit log page, the latest on top."""
    client = site.client("ada")
    client.post("/sources/nowhere/scan")
    page = text_of(client.get("/audit").text)
    assert "scan nowhere failed" in page
    assert page.index("scan nowhere") < page.index("login")
