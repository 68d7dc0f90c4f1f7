"""What support sees: a job found as typed, its page with paged row errors and the
reports sent, the downloads the command line gives, the job list, the user search."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from markupsafe import escape

from syncd import support
from syncd.outcome import JobOutcome
from syncd.store.outbox import list_messages
from tests.web.conftest import Site, make_site, people, text_of

SCRIPT = "<script>alert('x')</script>"


def _with_errors(count: int) -> str:
    """A partial file of 5 good rows and `count` rows whose email is bad; the first
    bad one holds a script."""
    rows = ["Email,First Name,Last Name"]
    rows += [f"good{i}@example.com,Good{i},Row" for i in range(5)]
    rows.append(f"{SCRIPT},Mallory,Row")
    rows += [f"bad{i}@example,Bad{i},Row" for i in range(count - 1)]
    return "\r\n".join(rows) + "\r\n"


@dataclass
class Jobs:
    site: Site
    applied: JobOutcome
    failed: JobOutcome


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    site = make_site(tmp_path_factory.mktemp("support"))
    site.account("ada", "admin")
    site.account("sam", "support")
    applied = site.job("hr", people(12), name="hr_2026-11-22.csv")
    failed = site.job("uploads", _with_errors(61), name="fixes.csv")
    yield Jobs(site, applied, failed)
    site.rt.engine.dispose()


def test_a_job_id_typed_in_lower_case_without_its_dash_opens_the_job(jobs: Jobs) -> None:
    """The lookup box takes the ID as people type it (case, dash, I/L/O look-alikes)."""
    job_id = jobs.failed.job_id or ""
    typed = job_id.replace("-", "").lower().replace("1", "l").replace("0", "o")
    client = jobs.site.client("sam")
    answer = client.get("/lookup", params={"id": typed}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/jobs/{job_id}"


def test_the_lookup_hint_opens_a_whole_id_and_counts_a_partial_one(jobs: Jobs) -> None:
    """As people type, a partial ID gets a count of characters; a whole one that names a
    job tells htmx to open it."""
    client = jobs.site.client("sam")
    job_id = jobs.failed.job_id or ""
    partial = client.get("/lookup/hint", params={"id": job_id[:4]})
    assert "4 characters so far" in partial.text
    assert "HX-Redirect" not in partial.headers
    whole = client.get("/lookup/hint", params={"id": job_id.lower()})
    assert whole.headers["hx-redirect"] == f"/jobs/{job_id}"


def test_an_id_that_names_no_job_says_so(jobs: Jobs) -> None:
    """A well-formed ID with no job, and text that is no ID, both answer 404 in words."""
    client = jobs.site.client("sam")
    missing = client.get("/lookup", params={"id": "00000-00000"})
    assert missing.status_code == 404
    assert "No job has the ID" in missing.text
    junk = client.get("/lookup", params={"id": "hello"})
    assert junk.status_code == 404
    assert "is not a job ID" in junk.text


def test_the_job_page_shows_status_source_file_times_encoding_and_counts(jobs: Jobs) -> None:
    """The page says what `syncd jobs show` says, in words."""
    job_id = jobs.failed.job_id
    text = text_of(jobs.site.client("sam").get(f"/jobs/{job_id}").text)
    assert "Applied, some rows failed" in text
    assert "uploads (partial)" in text
    assert "fixes.csv" in text
    assert "utf-8" in text
    assert "Received" in text
    assert "Finished" in text
    assert "Rows 66" in text
    assert "With errors 61" in text
    assert "Created 5" in text


def test_a_job_url_in_another_form_leads_to_the_canonical_one(jobs: Jobs) -> None:
    """/jobs/<id in lower case> redirects to the job's own address."""
    job_id = jobs.failed.job_id or ""
    answer = jobs.site.client("sam").get(f"/jobs/{job_id.lower()}", follow_redirects=False)
    assert answer.headers["location"] == f"/jobs/{job_id}"


def test_row_errors_come_fifty_a_page_with_the_value_as_received(jobs: Jobs) -> None:
    """61 row errors: page 1 has 50, page 2 the last 11, each with row, column, the
    cell as it was received and the message."""
    client = jobs.site.client("sam")
    job_id = jobs.failed.job_id
    first = client.get(f"/jobs/{job_id}").text
    assert first.count('<td class="num">') >= 50
    assert "Page 1 of 2 (1–50 of 61)" in first
    second = client.get(f"/jobs/{job_id}", params={"page": 2}).text
    assert "Page 2 of 2 (51–61 of 61)" in second
    assert "<code>bad59@example</code>" in second
    assert "<code>bad0@example</code>" not in second


def test_htmx_swaps_in_one_page_of_row_errors(jobs: Jobs) -> None:
    """Asked by htmx, the errors route gives only the section; asked by a plain browser,
    it leads to the page."""
    client = jobs.site.client("sam")
    job_id = jobs.failed.job_id
    part = client.get(f"/jobs/{job_id}/errors", params={"page": 2}, headers={"HX-Request": "true"})
    assert part.text.lstrip().startswith('<section id="row-errors"')
    assert "<html" not in part.text
    plain = client.get(f"/jobs/{job_id}/errors", params={"page": 2}, follow_redirects=False)
    assert plain.headers["location"] == f"/jobs/{job_id}?page=2#row-errors"


def test_a_cell_holding_a_script_is_shown_as_text(jobs: Jobs) -> None:
    """The `<script>` cell is escaped wherever it shows: never markup."""
    page = jobs.site.client("sam").get(f"/jobs/{jobs.failed.job_id}").text
    assert SCRIPT not in page
    assert str(escape(SCRIPT)) in page


def test_the_errors_csv_download_is_byte_for_byte_what_the_cli_gives(jobs: Jobs) -> None:
    """The download is the bytes `syncd jobs errors ID` writes, and it is audited."""
    site = jobs.site
    job_id = jobs.failed.job_id or ""
    answer = site.client("sam").get(f"/jobs/{job_id}/errors.csv")
    assert answer.status_code == 200
    assert answer.content == support.errors_csv(site.rt, job_id)[1]
    assert answer.content.startswith(b"\xef\xbb\xbfEmail,First Name,Last Name,errors\r\n")
    assert f'filename="{job_id}.csv"' in answer.headers["content-disposition"]


def test_the_changes_csv_download_is_byte_for_byte_what_the_cli_gives(jobs: Jobs) -> None:
    """The changes CSV is `syncd jobs changes ID`'s bytes."""
    site = jobs.site
    job_id = jobs.applied.job_id or ""
    answer = site.client("sam").get(f"/jobs/{job_id}/changes.csv")
    assert answer.status_code == 200
    assert answer.content == support.changes_csv(site.rt, job_id)[1]
    assert answer.content.count(b"\r\ncreate,") == 12


def test_a_job_without_row_errors_has_no_errors_csv(jobs: Jobs) -> None:
    """Asking for an errors CSV that does not exist says why, and offers no link."""
    client = jobs.site.client("sam")
    job_id = jobs.applied.job_id
    assert "errors.csv" not in client.get(f"/jobs/{job_id}").text
    answer = client.get(f"/jobs/{job_id}/errors.csv")
    assert answer.status_code == 409
    assert "has no row errors" in answer.text


def test_only_an_admin_downloads_the_file_a_job_kept(jobs: Jobs) -> None:
    """Support may not download the retained input; an admin gets it as kept."""
    job_id = jobs.applied.job_id or ""
    assert jobs.site.client("sam").get(f"/jobs/{job_id}/file").status_code == 403
    answer = jobs.site.client("ada").get(f"/jobs/{job_id}/file")
    assert answer.status_code == 200
    assert answer.content == support.retained_file(jobs.site.rt, job_id)[1]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../syncd.toml",
        "/static/%2e%2e/%2e%2e/syncd.toml",
        "/static/..%2f..%2fsyncd.toml",
        "/jobs/..%2f..%2fsyncd.toml/errors.csv",
        "/jobs/../../syncd.toml/file",
        "/uploads/..%2f..%2fsyncd.toml",
        "/uploads/....................",
    ],
)
def test_download_paths_cannot_leave_their_folders(jobs: Jobs, path: str) -> None:
    """Paths that climb out of a folder find nothing: the configuration file, which holds
    the database URL, is never served."""
    answer = jobs.site.client("ada").get(path)
    assert answer.status_code in (400, 404), answer.text
    assert "sqlite:///" not in answer.text


def test_static_files_are_served_from_their_own_folder(jobs: Jobs) -> None:
    """The vendored htmx is served, pinned by its version in its name."""
    answer = jobs.site.client().get("/static/htmx-2.0.3.min.js")
    assert answer.status_code == 200
    assert b'version:"2.0.3"' in answer.content


def test_the_report_as_it_was_sent_is_shown_with_its_text_and_downloadable(jobs: Jobs) -> None:
    """The hr source notifies someone: its job's report is listed, shown (text, headers),
    its HTML served only sandboxed, and its .eml is the stored bytes."""
    client = jobs.site.client("sam")
    job_id = jobs.applied.job_id
    page = client.get(f"/jobs/{job_id}").text
    assert f"/jobs/{job_id}/reports/" in page
    report_id = page.split(f"/jobs/{job_id}/reports/")[1].split('"')[0]
    shown = client.get(f"/jobs/{job_id}/reports/{report_id}")
    assert "it@example.com" in shown.text
    text_part = shown.text.split('<pre class="report-text">')[1]
    assert "hr_2026-11-22.csv" in text_part
    assert str(job_id) in text_part
    framed = client.get(f"/jobs/{job_id}/reports/{report_id}/html")
    assert "sandbox" in framed.headers["content-security-policy"]
    assert "hr_2026-11-22.csv" in framed.text
    eml = client.get(f"/jobs/{job_id}/reports/{report_id}/eml")
    with jobs.site.rt.engine.connect() as conn:
        (stored,) = list_messages(conn, job_id=job_id)
    assert eml.content == stored.content


def test_the_job_list_filters_by_source_status_and_date(jobs: Jobs) -> None:
    """Filters narrow the list; a day with no jobs shows none."""
    client = jobs.site.client("sam")
    both = client.get("/jobs").text
    assert str(jobs.applied.job_id) in both
    assert str(jobs.failed.job_id) in both
    by_source = client.get("/jobs", params={"source": "hr"}).text
    assert str(jobs.applied.job_id) in by_source
    assert str(jobs.failed.job_id) not in by_source
    by_status = client.get("/jobs", params={"status": "applied_with_errors"}).text
    assert str(jobs.failed.job_id) in by_status
    assert str(jobs.applied.job_id) not in by_status
    day = jobs.applied.created_at or jobs.failed.created_at
    assert day is not None
    today = client.get(
        "/jobs", params={"since": day.date().isoformat(), "until": day.date().isoformat()}
    ).text
    assert str(jobs.applied.job_id) in today
    long_ago = client.get("/jobs", params={"until": "2020-01-01"}).text
    assert "No jobs match" in long_ago
    assert client.get("/jobs", params={"status": "nonsense"}).status_code == 400


def test_a_user_is_found_by_email_in_any_case_with_the_jobs_that_touched_them(jobs: Jobs) -> None:
    """The user search is `syncd users show`: by email (any case) or key, with the job
    that created the user."""
    client = jobs.site.client("sam")
    found = client.get("/users", params={"q": "PERSON003@example.com"}).text
    assert "First3" in found
    assert str(jobs.applied.job_id) in found
    assert str(jobs.failed.job_id) not in found
    none = client.get("/users", params={"q": "nobody@example.com"}).text
    assert "No user has the email or key" in none
