"""Admins decide held jobs: what each would archive, its thresholds, then approve or
reject after a confirmation, with a reason kept beside who and when."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd import store
from syncd.core.changes import render_archived_csv
from syncd.store import web as store_web
from syncd.support import held_archives
from tests.web.conftest import Site, follow_task, make_site, people, text_of


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """60 users from hr, then files that would archive most of them, held."""
    made = make_site(tmp_path_factory.mktemp("decide"))
    made.account("ada", "admin")
    made.account("sam", "support")
    made.job("hr", people(60))
    yield made
    made.rt.engine.dispose()


def _held(site: Site, keep: int) -> str:
    """A full file keeping only the first `keep` users: held, its job ID."""
    outcome = site.job("hr", people(keep), name=f"hr-{keep}.csv")
    assert outcome.status == "held", outcome
    return outcome.job_id or ""


def _status(site: Site, job_id: str) -> tuple[str, tuple[str, ...]]:
    with site.rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
    return job.status, job.messages


def test_a_held_job_shows_its_thresholds_and_the_first_fifty_it_would_archive(site: Site) -> None:
    """Of 55 users it would archive, 50 are listed; the thresholds are in words."""
    job_id = _held(site, 5)
    page = site.client("sam").get(f"/held/{job_id}").text
    assert "max_archive_percent = 10" in page
    assert "The first 50 of 55" in page
    assert page.count("absent from the file") == 50
    assert "person059@example.com" in page or "person054@example.com" in page
    listed = site.client("sam").get("/held").text
    assert job_id in listed


def test_the_archived_download_lists_everyone_as_the_report_attached_it(site: Site) -> None:
    """The full list, in the CSV form the held report attaches."""
    job_id = _held(site, 4)
    answer = site.client("sam").get(f"/held/{job_id}/archived.csv")
    assert answer.status_code == 200
    assert answer.content.count(b"absent from the file") == 56
    assert answer.content == render_archived_csv(held_archives(site.rt, job_id)[1])


def test_support_finds_no_approve_button_and_gets_403_when_it_posts_anyway(site: Site) -> None:
    """Support sees the held job but no decision form; posting one anyway is refused,
    audited, and changes nothing."""
    job_id = _held(site, 3)
    client = site.client("sam")
    page = client.get(f"/held/{job_id}").text
    assert f"/held/{job_id}/approve" not in page
    assert "Only an admin can approve or reject" in page
    answer = client.post(f"/held/{job_id}/approve", data={"reason": "ok", "confirm": "yes"})
    assert answer.status_code == 403
    assert _status(site, job_id)[0] == "held"


def test_approving_asks_to_confirm_then_applies_with_who_and_why(site: Site) -> None:
    """The first post shows what it will do; the confirmed post applies it, and the job
    and the audit log say who approved it and why."""
    job_id = _held(site, 10)
    client = site.client("ada")
    asked = client.post(f"/held/{job_id}/approve", data={"reason": "HR confirmed the leavers"})
    assert asked.status_code == 200
    assert "This archives 50 users" in text_of(asked.text)
    assert 'name="confirm" value="yes"' in asked.text
    assert _status(site, job_id)[0] == "held"

    done = client.post(
        f"/held/{job_id}/approve",
        follow_redirects=False,
        data={"reason": "HR confirmed the leavers", "confirm": "yes"},
    )
    assert follow_task(client, done) == f"/jobs/{job_id}?done=approved"
    status, messages = _status(site, job_id)
    assert status == "applied"
    assert any("approved at" in m and "by ada: HR confirmed the leavers" in m for m in messages)
    with site.rt.engine.connect() as conn:
        entries = store_web.list_audit(conn, limit=50)
    assert any(e.action == "approve" and e.target == job_id and e.actor == "ada" for e in entries)


def test_a_confirmed_decision_without_a_reason_is_asked_again(site: Site) -> None:
    """No reason, no decision: the confirmation comes back saying why."""
    job_id = _held(site, 2)
    answer = site.client("ada").post(
        f"/held/{job_id}/reject", data={"reason": " ", "confirm": "yes"}
    )
    assert answer.status_code == 400
    assert "Say why" in answer.text
    assert _status(site, job_id)[0] == "held"


def test_rejecting_drops_the_job_with_who_and_why(site: Site) -> None:
    """A confirmed reject dismisses the job: nothing applied, the reason kept."""
    job_id = _held(site, 1)
    client = site.client("ada")
    answer = client.post(
        f"/held/{job_id}/reject",
        follow_redirects=False,
        data={"reason": "wrong file", "confirm": "yes"},
    )
    assert answer.headers["location"] == f"/jobs/{job_id}?done=rejected"
    status, messages = _status(site, job_id)
    assert status == "dismissed"
    assert any("by ada: wrong file; nothing was applied" in m for m in messages)
    assert "Rejected: nothing of the job was applied" in client.get(answer.headers["location"]).text


def test_deciding_a_job_that_is_not_held_says_so(site: Site) -> None:
    """A job already decided cannot be decided again."""
    job_id = _held(site, 6)
    client = site.client("ada")
    client.post(f"/held/{job_id}/reject", data={"reason": "no", "confirm": "yes"})
    again = client.post(f"/held/{job_id}/reject", data={"reason": "no", "confirm": "yes"})
    assert again.status_code == 409
    assert "not held" in again.text
