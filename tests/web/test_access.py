"""Who may use the back office: logins, sessions, roles, the same-origin rule, proxies,
login limits, and the audit log that records it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.store import web as store_web
from tests.web.conftest import PASSWORD, Site, make_site

#: Every route that changes something, with a body that would otherwise be accepted.
POST_ROUTES = (
    "/login",
    "/logout",
    "/held/00000-00000/approve",
    "/held/00000-00000/reject",
    "/sources/hr/scan",
    "/upload",
    "/uploads/AAAAAAAAAAAAAAAA/map",
    "/uploads/AAAAAAAAAAAAAAAA/apply",
)
#: Every page, each of which needs a login.
PAGES = ("/jobs", "/users", "/held", "/sources", "/upload", "/audit", "/jobs/00000-00000")


def _audit(site: Site, action: str) -> list[store_web.AuditEntry]:
    with site.rt.engine.connect() as conn:
        return [e for e in store_web.list_audit(conn, limit=500) if e.action == action]


@pytest.mark.parametrize("path", PAGES)
def test_a_page_asked_for_without_a_login_leads_to_the_login_form(site: Site, path: str) -> None:
    """Nobody logged in: every page answers with the login form, to come back after."""
    answer = site.client().get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_logging_in_sets_a_strict_http_only_cookie_and_opens_the_page_asked_for(
    site: Site,
) -> None:
    """The right password gives a session cookie (HttpOnly, SameSite=Strict) and the
    page that was asked for; the login is in the audit log."""
    client = site.client()
    answer = client.post(
        "/login",
        data={"name": "ada", "password": PASSWORD, "next": "/held"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/held"
    cookie = answer.headers["set-cookie"]
    assert "syncd_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain HTTP here
    assert client.get("/held").status_code == 200
    assert any(e.actor == "ada" and e.outcome == "ok" for e in _audit(site, "login"))


def test_behind_tls_the_session_cookie_is_secure(tmp_path: Path) -> None:
    """With a public https origin the cookie is only ever sent over TLS."""
    made = make_site(tmp_path, '[web]\npublic_origin = "https://syncd.example.com"\n')
    made.account("ada", "admin")
    client = made.client(origin="https://syncd.example.com")
    answer = client.post(
        "/login", data={"name": "ada", "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


def test_a_wrong_password_or_name_is_refused_alike_and_audited(site: Site) -> None:
    """A wrong password and an unknown name get the same answer; both are logged."""
    client = site.client(address="192.0.2.10")
    wrong = client.post("/login", data={"name": "ada", "password": "not it at all"})
    unknown = client.post("/login", data={"name": "nobody", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.text
    assert "do not match" in unknown.text
    assert "syncd_session" not in wrong.headers.get("set-cookie", "")
    failed = {e.actor for e in _audit(site, "login") if e.outcome == "failed"}
    assert {"ada", "nobody"} <= failed


def test_after_too_many_failed_logins_even_the_right_password_waits(tmp_path: Path) -> None:
    """Past login_attempts failures in the window, the name is refused (429) even with
    its right password, and the refusal is audited."""
    made = make_site(tmp_path, "[web]\nlogin_attempts = 3\n")
    made.account("ada", "admin")
    client = made.client()
    for _ in range(3):
        assert client.post("/login", data={"name": "ada", "password": "guess"}).status_code == 401
    right = client.post("/login", data={"name": "ada", "password": PASSWORD})
    assert right.status_code == 429
    assert "Too many failed logins" in right.text
    assert right.headers["retry-after"] == str(15 * 60)
    assert any(e.outcome == "refused" for e in _audit(made, "login"))


def test_logging_out_ends_the_session(site: Site) -> None:
    """After logging out, the old cookie opens nothing."""
    client = site.client("sam", fresh=True)
    cookie = client.cookies.get("syncd_session")
    assert client.post("/logout", follow_redirects=False).status_code == 303
    stale = site.client()
    stale.cookies.set("syncd_session", cookie or "")
    assert stale.get("/jobs", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_cross_origin_post_is_refused_before_anything_happens(site: Site, path: str) -> None:
    """A form another site makes a logged-in browser send is refused (403) and audited,
    whatever it asks for."""
    client = site.client("ada")
    answer = client.post(
        path,
        data={"name": "ada", "password": PASSWORD, "reason": "x", "confirm": "yes"},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "did not come from a page of the syncd back office" in answer.text
    refused = _audit(site, "cross_origin")
    assert any(e.target == path and e.outcome == "refused" for e in refused)


def test_a_post_that_names_no_origin_at_all_is_refused(site: Site) -> None:
    """No Sec-Fetch-Site and no Origin: not from a page of the back office, refused."""
    client = site.client("ada")
    client.headers.pop("Sec-Fetch-Site")
    answer = client.post("/sources/hr/scan", follow_redirects=False)
    assert answer.status_code == 403


def test_an_origin_header_alone_is_enough_when_it_is_the_back_offices_own(site: Site) -> None:
    """An older browser sends only Origin: its own origin passes, another does not."""
    client = site.client()
    client.headers.pop("Sec-Fetch-Site")
    own = client.post(
        "/login", data={"name": "nobody", "password": "x"}, headers={"Origin": "http://testserver"}
    )
    other = client.post(
        "/login",
        data={"name": "nobody", "password": "x"},
        headers={"Origin": "http://testserver.evil.example"},
    )
    assert own.status_code == 401
    assert other.status_code == 403


def test_a_support_account_cannot_use_admin_pages_and_is_audited(site: Site) -> None:
    """Support gets 403 for the upload and audit pages, and for scanning; each refusal
    is in the audit log."""
    client = site.client("sam")
    assert client.get("/upload").status_code == 403
    assert client.get("/audit").status_code == 403
    answer = client.post("/sources/hr/scan", follow_redirects=False)
    assert answer.status_code == 403
    assert "needs the admin role" in answer.text
    assert any(
        e.actor == "sam" and e.target == "/sources/hr/scan" for e in _audit(site, "forbidden")
    )


def _proxied_site(tmp_path: Path) -> Site:
    made = make_site(
        tmp_path,
        '[web]\nproxy_user_header = "X-Remote-User"\ntrusted_proxies = ["10.1.2.0/24"]\n',
    )
    made.account("pat", "support", password=None)
    return made


def test_a_trusted_proxy_names_the_person_without_a_password(tmp_path: Path) -> None:
    """From a trusted address, the proxy's user header logs its account in."""
    made = _proxied_site(tmp_path)
    client = made.client(address="10.1.2.3", **{"X-Remote-User": "pat"})
    answer = client.get("/jobs")
    assert answer.status_code == 200
    assert "pat (support)" in answer.text


def test_a_user_header_from_an_untrusted_address_is_ignored(tmp_path: Path) -> None:
    """The same header from any other address logs nobody in."""
    made = _proxied_site(tmp_path)
    client = made.client(address="10.9.9.9", **{"X-Remote-User": "pat"})
    assert client.get("/jobs", follow_redirects=False).status_code == 303


def test_a_proxy_naming_someone_without_an_account_is_refused(tmp_path: Path) -> None:
    """A name the proxy gives that is no account gets 403 and says how to add it."""
    made = _proxied_site(tmp_path)
    client = made.client(address="10.1.2.3", **{"X-Remote-User": "mallory"})
    answer = client.get("/jobs")
    assert answer.status_code == 403
    assert "syncd web user add mallory" in answer.text


def test_an_account_with_no_password_cannot_log_in_with_a_form(tmp_path: Path) -> None:
    """A proxy-only account has no password that works."""
    made = _proxied_site(tmp_path)
    answer = made.client().post("/login", data={"name": "pat", "password": ""})
    assert answer.status_code == 401


def test_pages_carry_a_strict_content_security_policy(site: Site) -> None:
    """Pages run only the back office's own script, are never framed or cached."""
    answer = site.client("sam").get("/jobs")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_login_form_goes_back_only_to_a_page_of_its_own(site: Site) -> None:
    """A `next` pointing at another site is replaced by the job list."""
    answer = site.client().post(
        "/login",
        data={"name": "sam", "password": PASSWORD, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/jobs"


def test_the_home_page_is_the_job_list_and_an_unknown_task_is_not_found(site: Site) -> None:
    """/ leads to the jobs; a task this process never ran (or forgot) is a 404 in words."""
    client = site.client("sam")
    assert client.get("/", follow_redirects=False).headers["location"] == "/jobs"
    missing = client.get("/tasks/nothing-like-it")
    assert missing.status_code == 404
    assert "no such task here" in missing.text


#: What only an admin may post.
ADMIN_POSTS = (
    "/held/00000-00000/approve",
    "/held/00000-00000/reject",
    "/sources/hr/scan",
    "/upload",
    "/uploads/AAAAAAAAAAAAAAAA/map",
    "/uploads/AAAAAAAAAAAAAAAA/apply",
)


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_a_support_account_posting_what_only_admins_may_is_refused(site: Site, path: str) -> None:
    """Same origin, logged in, but support: 403 for the role, whatever the route."""
    answer = site.client("sam").post(
        path, data={"reason": "x", "confirm": "yes"}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert "needs the admin role" in answer.text
