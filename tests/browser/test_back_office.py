"""People using the back office in Chromium, against `syncd run` serving it: support
looking up jobs and downloading errors, admins deciding held jobs and uploading files,
with the mouse and with the keyboard alone. Data is made with the real `syncd` command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import BackOffice, log_in, people

#: The `default` profile knows Email, First Name, Last Name... but not "Given Name".
UNKNOWN_HEADER = "Email,Given Name,Last Name"


@dataclass
class Seeded:
    office: BackOffice
    base: str
    with_errors: str
    to_approve: str
    to_reject: str
    held_for_support: str


def _errors_file(count: int) -> str:
    rows = ["Email,First Name,Last Name", "good@example.com,Good,Row"]
    rows.append("<script>alert(1)</script>,Mallory,Row")
    rows += [f"bad{i}@example,Bad{i},Row" for i in range(count - 1)]
    return "\r\n".join(rows) + "\r\n"


@pytest.fixture(scope="module")
def seeded(back_office: BackOffice) -> Seeded:
    """30 users from hr, a job with 60 row errors, three held files."""
    office = back_office
    base = office.job("hr", people(30), "hr_base.csv")
    with_errors = office.job("uploads", _errors_file(60), "fixes.csv", expect=1)
    held = [office.job("hr", people(n), f"hr_short_{n}.csv", expect=3) for n in (3, 4, 5)]
    return Seeded(office, base, with_errors, *held)


def _status(page: Page) -> str:
    return page.locator("p.status").inner_text()


def test_logging_in_opens_the_job_list_and_logging_out_ends_it(
    seeded: Seeded, context: BrowserContext
) -> None:
    """The login form leads to the jobs; "Log out" leads back to it, and the jobs are
    then out of reach."""
    page = log_in(context, seeded.office, "sam")
    expect(page.locator("h1")).to_have_text("Jobs")
    expect(page.locator("header .who")).to_contain_text("sam (support)")
    expect(page.get_by_role("link", name=seeded.base)).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto(f"{seeded.office.url}/jobs")
    expect(page.locator("h1")).to_have_text("Log in to the syncd back office")


def test_a_job_id_typed_in_lower_case_without_its_dash_opens_the_job(
    seeded: Seeded, context: BrowserContext
) -> None:
    """Typing the ID as a customer read it out (lower case, no dash) opens the job as
    soon as it is whole."""
    page = log_in(context, seeded.office, "sam")
    page.locator("#job-id").press_sequentially(seeded.with_errors.replace("-", "").lower())
    page.wait_for_url(f"**/jobs/{seeded.with_errors}")
    expect(page.locator("h1")).to_have_text(f"Job {seeded.with_errors}")
    expect(page.locator("p.status")).to_have_text("Applied, some rows failed")
    # the <script> cell is on the page as text, and ran nothing
    expect(page.locator("#row-errors code").first).to_have_text("<script>alert(1)</script>")


def test_the_errors_csv_downloaded_is_what_syncd_jobs_errors_writes(
    seeded: Seeded, context: BrowserContext, tmp_path: Path
) -> None:
    """The download link gives the same bytes as `syncd jobs errors ID -o FILE`."""
    office = seeded.office
    page = log_in(context, office, "sam", f"/jobs/{seeded.with_errors}")
    with page.expect_download() as downloading:
        page.get_by_role("link", name=re.compile("Errors CSV")).click()
    download = downloading.value
    assert download.suggested_filename == f"{seeded.with_errors}.csv"
    saved = tmp_path / "from-browser.csv"
    download.save_as(saved)
    office.cli("jobs", "errors", seeded.with_errors, "-o", tmp_path / "from-cli.csv")
    assert saved.read_bytes() == (tmp_path / "from-cli.csv").read_bytes()


def test_the_next_page_of_row_errors_is_swapped_in_place(
    seeded: Seeded, context: BrowserContext
) -> None:
    """With htmx the next 50 row errors replace the table without leaving the page."""
    page = log_in(context, seeded.office, "sam", f"/jobs/{seeded.with_errors}")
    expect(page.locator("#row-errors nav.pages span")).to_contain_text("Page 1 of 2")
    url = page.url
    page.locator("#row-errors").get_by_role("link", name="Next").click()
    expect(page.locator("#row-errors nav.pages span")).to_contain_text("Page 2 of 2")
    expect(page.locator("#row-errors tbody tr")).to_have_count(10)
    assert page.url == url


def _decide(page: Page, verb: str, reason: str) -> None:
    page.fill(f"#{verb}-reason", reason)
    page.get_by_role("button", name=f"{verb.capitalize()}…").click()
    expect(page.locator("h1")).to_contain_text(f"{verb.capitalize()} job")
    expect(page.locator("#reason")).to_have_value(reason)
    page.get_by_role("button", name=re.compile(f"Yes, {verb}")).click()


def test_an_admin_approves_a_held_job_after_confirming_with_a_reason(
    seeded: Seeded, context: BrowserContext
) -> None:
    """Approve, confirm: the job is applied and says who approved it and why."""
    page = log_in(context, seeded.office, "ada", f"/held/{seeded.to_approve}")
    expect(page.locator("ul.thresholds")).to_contain_text("max_archive_percent = 10")
    expect(page.locator("table.archived tbody tr")).to_have_count(27)
    _decide(page, "approve", "the leavers are confirmed")
    page.wait_for_url(f"**/jobs/{seeded.to_approve}?done=approved")
    expect(page.locator("p.status")).to_have_text("Applied")
    expect(page.locator("ul.messages")).to_contain_text("by ada: the leavers are confirmed")


def test_an_admin_rejects_a_held_job_after_confirming_with_a_reason(
    seeded: Seeded, context: BrowserContext
) -> None:
    """Reject, confirm: the job is dismissed with the reason, nothing applied."""
    page = log_in(context, seeded.office, "ada", f"/held/{seeded.to_reject}")
    _decide(page, "reject", "a truncated export")
    page.wait_for_url(f"**/jobs/{seeded.to_reject}?done=rejected")
    expect(page.locator("p.status")).to_have_text("Dismissed: nothing was applied")
    expect(page.locator("ul.messages")).to_contain_text("by ada: a truncated export")


def test_support_finds_no_approve_button_and_gets_403_when_it_posts_anyway(
    seeded: Seeded, context: BrowserContext
) -> None:
    """The held page offers support no decision; a same-origin post made anyway from
    that page is refused for the role, and the job stays held."""
    page = log_in(context, seeded.office, "sam", f"/held/{seeded.held_for_support}")
    expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)
    expect(page.get_by_text("Only an admin can approve or reject")).to_be_visible()
    answer = page.evaluate(
        """async (path) => {
            const body = new URLSearchParams({reason: "because", confirm: "yes"});
            const r = await fetch(path, {method: "POST", body});
            return [r.status, await r.text()];
        }""",
        f"/held/{seeded.held_for_support}/approve",
    )
    assert answer[0] == 403
    assert "needs the admin role" in answer[1]
    page.reload()
    expect(page.locator("p.status")).to_contain_text("Held for approval")


def _upload(page: Page, office: BackOffice, text: str, name: str) -> None:
    path = office.root / name
    path.write_text(text, encoding="utf-8")
    page.goto(f"{office.url}/upload")
    page.select_option("#source", "uploads")
    page.set_input_files("#file", str(path))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r".*/uploads/[0-9a-f]{24}$"))


def test_an_upload_with_an_unknown_header_is_mapped_previewed_and_applied(
    seeded: Seeded, context: BrowserContext
) -> None:
    """Given Name is mapped to first_name; the preview shows the two users it creates;
    applying makes the job that created them."""
    office = seeded.office
    page = log_in(context, office, "ada", "/upload")
    _upload(page, office, people(2, 100, header=UNKNOWN_HEADER), "given.csv")
    page.select_option("#map-1", "first_name")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/preview")
    expect(page.locator("p.status")).to_have_text("It would be applied.")
    expect(page.get_by_role("cell", name="person100@example.com").first).to_be_visible()
    page.get_by_role("button", name="Apply given.csv").click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9A-Z]{5}-[0-9A-Z]{5}\?done=applied$"))
    expect(page.locator("p.notice")).to_contain_text("Imported")
    expect(page.locator("table.counts")).to_contain_text(re.compile(r"Created\s*2"))
    assert "First100" in office.cli("users", "show", "person100@example.com")


def test_the_same_upload_is_refused_after_the_directory_changed(
    seeded: Seeded, context: BrowserContext
) -> None:
    """A job applies between preview and apply: applying is refused, nothing is
    applied, and the new preview says why."""
    office = seeded.office
    page = log_in(context, office, "ada", "/upload")
    _upload(page, office, people(2, 200), "late.csv")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/preview")
    office.job("uploads", people(1, 250), "meanwhile.csv")
    page.get_by_role("button", name="Apply late.csv").click()
    expect(page.locator("p.notice")).to_contain_text(
        "Not applied: the directory changed since the preview"
    )
    assert page.url.endswith("/preview")
    office.cli("users", "show", "person200@example.com", expect=64)


def _tab_to(page: Page, selector: str) -> None:
    """Press Tab until the element `selector` has the focus."""
    for _ in range(40):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"Tab never reached {selector}")


def _choose_file_by_keyboard(page: Page, path: Path) -> None:
    """Open the focused file input's chooser with Space (or, if a busy browser missed
    the key, Enter) and pick `path` in it."""
    for key in ("Space", "Enter", "Space"):
        try:
            with page.expect_file_chooser(timeout=5000) as choosing:
                page.keyboard.press(key)
        except PlaywrightTimeout:
            continue
        choosing.value.set_files(str(path))
        return
    pytest.fail("the file input opened no file chooser")


def test_the_upload_flow_works_with_the_keyboard_alone(
    seeded: Seeded, context: BrowserContext
) -> None:
    """Tab, type and Enter alone take a file from the upload form to its job (the
    operating system's file dialog is the only thing not typed)."""
    office = seeded.office
    path = office.root / "keyboard.csv"
    path.write_text(people(2, 300, header=UNKNOWN_HEADER), encoding="utf-8")
    page = log_in(context, office, "ada", "/upload")
    _tab_to(page, "#source")
    page.keyboard.type("uploads")
    _tab_to(page, "#file")
    _choose_file_by_keyboard(page, path)
    _tab_to(page, "form.upload button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/uploads/[0-9a-f]{24}$"))
    _tab_to(page, "#map-1")
    page.keyboard.type("first")
    expect(page.locator("#map-1")).to_have_value("first_name")
    _tab_to(page, "form.columns button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/preview")
    _tab_to(page, "form[action$='/apply'] button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/jobs/[0-9A-Z]{5}-[0-9A-Z]{5}\?done=applied$"))
    expect(page.locator("table.counts")).to_contain_text(re.compile(r"Created\s*2"))


def test_the_sources_page_shows_the_daemons_scans_and_scan_now_asks_it(
    seeded: Seeded, context: BrowserContext
) -> None:
    """Inside `syncd run` the sources page knows each scan; "scan now" makes the daemon
    take a file waiting in the folder, and its job appears."""
    office = seeded.office
    page = log_in(context, office, "ada", "/sources")
    row = page.locator("tr", has=page.locator("th", has_text="uploads"))
    expect(row).to_contain_text("on time")
    expect(row).to_contain_text("every 60 s")
    (office.root / "drop-uploads").mkdir(exist_ok=True)
    (office.root / "drop-uploads" / "dropped.csv").write_text(people(1, 400), encoding="utf-8")
    row.get_by_role("button", name="Scan uploads now").click()
    expect(page.locator("p.notice")).to_contain_text("The daemon scans uploads now")
    for _ in range(60):
        page.goto(f"{office.url}/jobs?source=uploads")
        if page.get_by_text("dropped.csv").count():
            break
        page.wait_for_timeout(500)
    expect(page.get_by_text("dropped.csv")).to_be_visible()
