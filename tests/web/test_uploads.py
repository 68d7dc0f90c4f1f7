"""Uploading through the back office: streamed to the spool within the source's byte
cap, columns mapped (and saved), a preview, then apply, refused when the directory
changed since the preview."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from syncd import store
from syncd.store import web as store_web
from tests.web.conftest import Site, follow_task, make_site, people, text_of

#: The `small` profile (source uploads) knows Email, First Name, Last Name, Department.
UNKNOWN_HEADER = "Email,Given Name,Last Name"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    made = make_site(tmp_path_factory.mktemp("uploads"))
    made.account("ada", "admin")
    made.account("sam", "support")
    yield made
    made.rt.engine.dispose()


def _upload(
    client: TestClient, text: str, source: str = "uploads", mode: str = "", name: str = "people.csv"
) -> object:
    return client.post(
        "/upload",
        data={"source": source, "mode": mode},
        files={"file": (name, text.encode("utf-8"), "text/csv")},
        follow_redirects=False,
    )


def _upload_id(answer: object) -> str:
    location: str = answer.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith("/uploads/"), location
    return location.removeprefix("/uploads/")


def _preview(client: TestClient, upload_id: str, **mapping: str) -> str:
    answer = client.post(f"/uploads/{upload_id}/map", data=mapping, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return follow_task(client, answer)


def test_an_upload_is_spooled_whole_under_a_name_of_its_own(site: Site) -> None:
    """The file lands in the uploads spool byte for byte, named by its upload ID, not by
    the sender's name; nothing half-written is left beside it."""
    client = site.client("ada")
    text = people(3)
    upload_id = _upload_id(_upload(client, text, name="../../etc/passwd"))
    folder = site.rt.config.state_dir / "uploads"
    assert (folder / upload_id).read_bytes() == text.encode("utf-8")
    assert sorted(p.name for p in folder.iterdir()) == sorted([upload_id, f"{upload_id}.json"])
    assert "../../etc/passwd" in client.get(f"/uploads/{upload_id}").text  # shown, as text


def test_a_file_over_the_sources_byte_cap_is_refused_and_not_kept(site: Site) -> None:
    """The uploads source's profile allows 4,000 bytes: a bigger file gets 413, and the
    spool keeps nothing of it."""
    client = site.client("ada")
    answer = _upload(client, people(200))
    assert answer.status_code == 413
    assert "larger than the 4,000 bytes" in answer.text
    folder = site.rt.config.state_dir / "uploads"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_support_cannot_upload(site: Site) -> None:
    """Uploading is for admins: support gets 403 and nothing is spooled."""
    answer = _upload(site.client("sam"), people(2))
    assert answer.status_code == 403


def test_known_headers_are_matched_and_an_unknown_one_is_offered_the_free_fields(
    site: Site,
) -> None:
    """Email and Last Name match as the command line matches them; Given Name is offered
    the fields no other column fills."""
    client = site.client("ada")
    upload_id = _upload_id(_upload(client, people(2, header=UNKNOWN_HEADER)))
    page = client.get(f"/uploads/{upload_id}").text
    assert "email <small>(matched)</small>" in page
    assert "last_name <small>(matched)</small>" in page
    options = page.split('id="map-1"')[1].split("</select>")[0]
    assert 'value="first_name"' in options
    assert 'value="department"' in options
    assert 'value="email"' not in options


def test_mapping_an_unknown_header_previews_then_applies_what_was_shown(site: Site) -> None:
    """Given Name mapped to first_name: the preview shows the users it creates with
    their first names; applying records one job that created exactly them."""
    client = site.client("ada")
    text = "Email,Given Name,Last Name\r\nzed@example.com,Zed,Zulu\r\nyan@example.com,Yan,Young\r\n"
    upload_id = _upload_id(_upload(client, text))
    assert _preview(client, upload_id, **{"map-1": "first_name"}) == f"/uploads/{upload_id}/preview"
    preview = client.get(f"/uploads/{upload_id}/preview").text
    assert "It would be applied" in preview
    assert "zed@example.com" in preview
    assert "yan@example.com" in preview
    assert "Created 2" in text_of(preview)
    with site.rt.engine.connect() as conn:
        assert not store.find_user(conn, "zed@example.com")  # nothing written yet

    applied = client.post(f"/uploads/{upload_id}/apply", follow_redirects=False)
    location = follow_task(client, applied)
    job_id = location.removeprefix("/jobs/").split("?")[0]
    with site.rt.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        (zed,) = store.find_user(conn, "zed@example.com")
    assert (job.status, job.counts.created, job.source) == ("applied", 2, "uploads")
    assert zed.first_name == "Zed"
    assert client.get(f"/uploads/{upload_id}", follow_redirects=False).headers["location"] == (
        f"/jobs/{job_id}"
    )


def test_the_preview_shows_updates_with_the_fields_that_change(site: Site) -> None:
    """A file changing a known user's last name previews that field, old and new."""
    client = site.client("ada")
    site.job("uploads", "Email,First Name,Last Name\r\nkim@example.com,Kim,Old\r\n")
    upload_id = _upload_id(_upload(client, "Email,Last Name\r\nkim@example.com,New\r\n"))
    _preview(client, upload_id)
    preview = text_of(client.get(f"/uploads/{upload_id}/preview").text)
    assert "kim@example.com last_name Old New" in preview


def test_a_saved_mapping_is_offered_for_the_next_upload_of_the_source(site: Site) -> None:
    """Saving maps Given Name to first_name for the source's later uploads."""
    client = site.client("ada")
    upload_id = _upload_id(_upload(client, people(1, 900, header=UNKNOWN_HEADER)))
    _preview(client, upload_id, **{"map-1": "first_name", "save": "yes"})
    with site.rt.engine.connect() as conn:
        assert store_web.saved_mapping(conn, "uploads") == {"givenname": "first_name"}
    later = _upload_id(_upload(client, people(1, 901, header=UNKNOWN_HEADER)))
    select = client.get(f"/uploads/{later}").text.split('id="map-1"')[1].split("</select>")[0]
    assert 'value="first_name" selected' in select


def test_the_same_upload_is_refused_and_planned_again_after_the_directory_changed(
    site: Site,
) -> None:
    """Between preview and apply another job applies to the directory: applying is
    refused, no job is recorded, and a new preview says why."""
    client = site.client("ada")
    upload_id = _upload_id(_upload(client, people(2, 500)))
    _preview(client, upload_id)
    with site.rt.engine.connect() as conn:
        before = store.count_jobs(conn)
    site.job("uploads", people(1, 600), name="meanwhile.csv")  # the directory changes

    answer = client.post(f"/uploads/{upload_id}/apply", follow_redirects=False)
    assert follow_task(client, answer) == f"/uploads/{upload_id}/preview"
    preview = client.get(f"/uploads/{upload_id}/preview").text
    assert "Not applied: the directory changed since the preview" in preview
    with site.rt.engine.connect() as conn:
        assert store.count_jobs(conn) == before + 1  # only the other job
        assert not store.find_user(conn, "person500@example.com")
        entries = store_web.list_audit(conn, limit=20)
    assert any(e.action == "apply" and e.outcome == "refused" for e in entries)

    again = client.post(f"/uploads/{upload_id}/apply", follow_redirects=False)
    assert follow_task(client, again).startswith("/jobs/")
    with site.rt.engine.connect() as conn:
        assert store.find_user(conn, "person500@example.com")


def test_choosing_one_field_for_two_columns_is_refused(site: Site) -> None:
    """A field filled by a matched column cannot be chosen again."""
    client = site.client("ada")
    upload_id = _upload_id(_upload(client, people(1, 700, header=UNKNOWN_HEADER)))
    answer = client.post(f"/uploads/{upload_id}/map", data={"map-1": "email"})
    assert answer.status_code == 400
    assert "cannot be chosen twice" in answer.text


def test_a_file_rejected_whole_previews_its_reason_and_offers_no_apply(site: Site) -> None:
    """A file missing the key column previews as rejected, with nothing to apply."""
    client = site.client("ada")
    upload_id = _upload_id(_upload(client, "First Name\r\nNo Email\r\n"))
    _preview(client, upload_id)
    preview = client.get(f"/uploads/{upload_id}/preview").text
    assert "It would be rejected" in preview
    assert "key column" in preview
    assert f"/uploads/{upload_id}/apply" not in preview
