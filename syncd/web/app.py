"""`create_app`: the back office as one Starlette app, and its pages for logging in and
out, following long work, and reading the audit log.

The pages of each area are in their own module (`jobs`, `users`, `held`, `sources`,
`uploads`); every one of them calls the functions the command line calls.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from syncd.errors import JobNotFound, SyncdError
from syncd.runtime import Runtime
from syncd.store import web as store_web
from syncd.web import decisions, jobs, sources, uploads, users
from syncd.web.access import (
    NotLoggedIn,
    SameOriginOnly,
    close_session,
    identify,
    open_session,
    peer,
    record,
    require,
    wait_before_login,
)
from syncd.web.accounts import authenticate
from syncd.web.office import Host, Office, office
from syncd.web.rendering import HEADERS, is_htmx, make_templates, page
from syncd.web.tasks import Tasks

STATIC = Path(__file__).with_name("static")
AUDIT_SHOWN = 100


def _local(path: str) -> str:
    """A path to go back to after logging in: only one of ours (no `//other.site`)."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/jobs"


def home(request: Request) -> Response:
    return RedirectResponse("/jobs", status_code=303)


def login_form(request: Request) -> Response:
    if identify(request) is not None:
        return RedirectResponse(_local(request.query_params.get("next", "/jobs")), 303)
    next_path = _local(request.query_params.get("next", "/jobs"))
    context = {"person": None, "next": next_path, "name": "", "problem": None, "title": "Log in"}
    return page(request, "login.html", context)


async def login(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()[:200]
    password = str(form.get("password", ""))
    next_path = _local(str(form.get("next", "/jobs")))

    def check() -> Response:
        the = office(request)
        context = {"person": None, "next": next_path, "name": name, "title": "Log in"}
        wait = wait_before_login(the, name, peer(request))
        if wait:
            record(
                request,
                "login",
                actor=name or "(blank)",
                outcome="refused",
                detail="too many failed logins",
            )
            problem = f"Too many failed logins: try again in {wait} minutes."
            return page(
                request,
                "login.html",
                {**context, "problem": problem},
                status=429,
                headers={"Retry-After": str(wait * 60)},
            )
        account = authenticate(the.rt, name, password)
        if account is None:
            record(request, "login", actor=name or "(blank)", outcome="failed")
            problem = "That account name and password do not match."
            return page(request, "login.html", {**context, "problem": problem}, status=401)
        response = RedirectResponse(next_path, status_code=303)
        open_session(request, response, account.name)
        record(request, "login", actor=account.name, detail=f"role {account.role}")
        return response

    return await run_in_threadpool(check)


async def logout(request: Request) -> Response:
    def leave() -> Response:
        person = identify(request)
        response = RedirectResponse("/login", status_code=303)
        close_session(request, response)
        if person is not None:
            record(request, "logout", person=person)
        return response

    return await run_in_threadpool(leave)


def task_page(request: Request) -> Response:
    """A long piece of work as it goes; once done, the page it leads to."""
    person = require(request)
    task = office(request).tasks.get(request.path_params["task_id"])
    if task is None:
        raise HTTPException(
            404, "no such task here: it ended over an hour ago, or the back office restarted since"
        )
    if task.done and task.error is None and task.next_url:
        if is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": task.next_url})
        return RedirectResponse(task.next_url, status_code=303)
    return page(
        request,
        "task.html",
        {
            "person": person,
            "task": task,
            "title": task.title,
            "back": request.headers.get("referer"),
        },
    )


def audit_page(request: Request) -> Response:
    person = require(request, "admin")
    try:
        page_number = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page_number = 1
    with office(request).reader.engine.connect() as conn:
        entries = store_web.list_audit(
            conn, limit=AUDIT_SHOWN, offset=(page_number - 1) * AUDIT_SHOWN
        )
    return page(
        request,
        "audit.html",
        {
            "person": person,
            "entries": entries,
            "page": page_number,
            "title": "Audit log",
            "more": len(entries) == AUDIT_SHOWN,
        },
    )


async def not_logged_in(request: Request, exc: Exception) -> Response:
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    return Response("Log in first.", status_code=401, headers=HEADERS)


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "syncd failed"
    headings = {403: "Not allowed", 404: "Not found", 405: "Not allowed", 413: "Too large"}
    person = await run_in_threadpool(_person_or_none, request)
    context = {
        "person": person,
        "heading": headings.get(status, "Cannot do that"),
        "message": detail,
        "back": None,
        "title": headings.get(status, "Error"),
    }
    return page(request, "error.html", context, status=status)


async def syncd_error(request: Request, exc: Exception) -> Response:
    """A refusal syncd words itself (no such job, not held...), shown as it says it."""
    status = 404 if isinstance(exc, JobNotFound) else 409
    person = await run_in_threadpool(_person_or_none, request)
    context = {
        "person": person,
        "heading": "Not found" if status == 404 else "Cannot do that",
        "message": str(exc),
        "back": None,
        "title": "Error",
    }
    return page(request, "error.html", context, status=status)


def _person_or_none(request: Request) -> object:
    try:
        return identify(request)
    except HTTPException:
        return None


def routes() -> list[BaseRoute]:
    return [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/tasks/{task_id}", task_page),
        Route("/audit", audit_page),
        *jobs.routes(),
        *users.routes(),
        *decisions.routes(),
        *sources.routes(),
        *uploads.routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(rt: Runtime, host: Host | None = None, tasks: Tasks | None = None) -> Starlette:
    """The back office for `rt`'s configuration and database. `host`: the daemon it runs
    in (None: it runs alone, as `syncd web`, and scans in its own work thread)."""
    from syncd.web.sources import Standalone

    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SameOriginOnly)],
        exception_handlers={
            NotLoggedIn: not_logged_in,
            HTTPException: http_error,
            SyncdError: syncd_error,
        },
    )
    app.state.office = Office(
        rt=rt,
        host=host or Standalone(rt.config),
        tasks=tasks or Tasks(),
        templates=make_templates(),
    )
    return app
