"""Admins decide held jobs: what each would archive (the first 50, and all of them as a
file), the thresholds it crossed, then approve or reject it, as `syncd jobs approve`
and `syncd jobs reject` do, after a confirmation and with a reason, recorded with who
and when in the job's messages and in the audit log.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from syncd import held, store, support
from syncd.approval import approve, dismiss
from syncd.core.changes import render_archived_csv
from syncd.errors import SyncdError
from syncd.web.access import Person, record, require
from syncd.web.jobs import canonical_id, download
from syncd.web.office import office
from syncd.web.rendering import page

SHOWN = 50
HELD_LISTED = 200
VERBS = {"approve": "approved", "reject": "rejected"}


def held_list(request: Request) -> Response:
    person = require(request)
    with office(request).reader.engine.connect() as conn:
        jobs = store.list_jobs(conn, HELD_LISTED, status="held")
    return page(request, "held_list.html", {"person": person, "jobs": jobs, "title": "Held"})


def _held_context(request: Request, person: Person, job_id: str) -> dict[str, Any]:
    the = office(request)
    found, archived = support.held_archives(the.reader, job_id)
    with the.reader.engine.connect() as conn:
        job = store.require_job(conn, found)
        thresholds = held.read_thresholds(store.job_file(conn, job.id, held.THRESHOLDS))
    return {
        "person": person,
        "job": job,
        # jobs held by an older syncd kept no thresholds apart: their messages say them
        "thresholds": thresholds if thresholds is not None else job.messages,
        "other_messages": [m for m in job.messages if thresholds and m not in thresholds],
        "archived": archived.head(SHOWN).iter_rows(named=True),
        "archived_total": archived.height,
        "shown": min(SHOWN, archived.height),
        "title": f"Held job {job.id}",
        "reason": "",
        "problem": None,
    }


def held_page(request: Request) -> Response:
    person = require(request)
    job_id = canonical_id(request.path_params["job_id"])
    with office(request).reader.engine.connect() as conn:
        job = store.require_job(conn, job_id)
    if job.status != "held":
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)
    return page(request, "held.html", _held_context(request, person, job.id))


def archived_csv(request: Request) -> Response:
    """Everyone a held job would archive, as the CSV its report attached."""
    person = require(request)
    job_id, archived = support.held_archives(
        office(request).reader, canonical_id(request.path_params["job_id"])
    )
    record(
        request,
        "download_archived",
        person=person,
        target=job_id,
        detail=f"{archived.height} users",
    )
    return download(render_archived_csv(archived), f"{job_id}-archived.csv")


async def decide(request: Request) -> Response:
    """Approve or reject: the first post asks to confirm (with the reason); the second,
    confirmed and with a reason, decides."""
    verb = request.path_params["verb"]
    if verb not in VERBS:
        raise HTTPException(404, "a held job is approved or rejected")
    form = await request.form()
    reason = str(form.get("reason", "")).strip()[:2000]
    confirmed = form.get("confirm") == "yes"
    job_id = canonical_id(request.path_params["job_id"])

    def act() -> Response:
        person = require(request, "admin")
        if not confirmed or not reason:
            context = _held_context(request, person, job_id)
            context.update(verb=verb, reason=reason, title=f"{verb.capitalize()} job {job_id}?")
            if confirmed and not reason:
                context["problem"] = "Say why: the reason is kept with the job."
            return page(request, "held_confirm.html", context, status=200 if not confirmed else 400)
        if verb == "reject":
            try:
                dismiss(office(request).rt, job_id, by=person.name, reason=reason)
            except SyncdError as error:
                record(
                    request,
                    "reject",
                    person=person,
                    target=job_id,
                    outcome="failed",
                    detail=str(error),
                )
                raise
            record(request, "reject", person=person, target=job_id, detail=reason)
            return RedirectResponse(f"/jobs/{job_id}?done=rejected", status_code=303)
        return _start_approval(request, person, job_id, reason)

    return await run_in_threadpool(act)


def _start_approval(request: Request, person: Person, job_id: str, reason: str) -> Response:
    the = office(request)

    def work(progress: Any) -> str:
        progress("applying")
        try:
            approve(the.rt, job_id, by=person.name, reason=reason)
        except SyncdError as error:
            record(
                request,
                "approve",
                person=person,
                target=job_id,
                outcome="failed",
                detail=str(error),
            )
            raise
        record(request, "approve", person=person, target=job_id, detail=reason)
        return f"/jobs/{job_id}?done=approved"

    task = the.tasks.start(f"Approving job {job_id}", person.name, work)
    return RedirectResponse(f"/tasks/{task.id}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/held", held_list),
        Route("/held/{job_id}", held_page),
        Route("/held/{job_id}/archived.csv", archived_csv),
        Route("/held/{job_id}/{verb:str}", decide, methods=["POST"]),
    ]
