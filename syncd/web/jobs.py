"""Support's pages: a job looked up by its ID as people type it, the job as support
reads it (with its row errors a page at a time, and the reports sent about it), the
downloads the command line gives (`syncd jobs errors`, `syncd jobs changes`), and the
list of jobs by source, status and date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from syncd import store, support
from syncd.core.job_id import LENGTH, normalise_job_id
from syncd.core.status import JOB_STATUSES
from syncd.display import next_step
from syncd.flow import ERRORS_CSV
from syncd.outcome import JobOutcome
from syncd.report import CHANGES_CSV
from syncd.store.job_files import RETAINED
from syncd.store.outbox import OutboxEntry, OutboxMessage, list_messages, list_outbox
from syncd.web.access import Person, record, require
from syncd.web.office import office
from syncd.web.rendering import HEADERS, is_htmx, page

JOBS_PER_PAGE = 50
ERRORS_PER_PAGE = 50
#: A report's HTML is shown as the mail client would: no script, no request anywhere.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
#: What the job page says after the back office acted on the job (`?done=`).
NOTICES = {
    "approved": "Approved: the job was applied, and its report queued.",
    "rejected": "Rejected: nothing of the job was applied; its report is queued.",
    "applied": "Imported: this is the job the upload became.",
}


def canonical_id(text: str) -> str:
    """A job ID from a URL, in its canonical form (404 when it cannot be one)."""
    found = normalise_job_id(text)
    if found is None:
        raise HTTPException(404, f"{text!r} is not a job ID")
    return found


def download(content: bytes, filename: str, media_type: str = "text/csv") -> Response:
    """Bytes as a file to save, exactly as given."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    return Response(
        content,
        media_type=media_type,
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{safe or "file"}"'},
    )


def _int(request: Request, name: str, default: int = 1) -> int:
    try:
        return max(1, int(request.query_params.get(name, str(default))))
    except ValueError:
        return default


def lookup(request: Request) -> Response:
    """The lookup box, submitted: open the job, however its ID was typed."""
    person = require(request)
    typed = request.query_params.get("id", "").strip()
    job_id = normalise_job_id(typed)
    if job_id is not None:
        with office(request).reader.engine.connect() as conn:
            if store.get_job(conn, job_id) is not None:
                return RedirectResponse(f"/jobs/{job_id}", status_code=303)
    message = (
        f"No job has the ID {typed!r}."
        if job_id
        else f"{typed!r} is not a job ID: a job ID has {LENGTH} letters and digits, such as "
        "0C4NP-7X2QA (any case, with or without the dash)."
    )
    context = {
        "person": person,
        "heading": "No such job",
        "message": message,
        "back": "/jobs",
        "title": "No such job",
    }
    return page(request, "error.html", context, status=404)


def lookup_hint(request: Request) -> Response:
    """What the lookup box says as people type; a whole ID of a job opens it."""
    require(request)
    typed = request.query_params.get("id", "").strip()
    job_id = normalise_job_id(typed)
    job = None
    if job_id is not None:
        with office(request).reader.engine.connect() as conn:
            job = store.get_job(conn, job_id)
    headers = {"HX-Redirect": f"/jobs/{job_id}"} if job is not None else {}
    context = {"person": None, "typed": typed, "job": job, "job_id": job_id, "length": LENGTH}
    return page(request, "_lookup_hint.html", context, headers=headers)


def job_page(request: Request) -> Response:
    person = require(request)
    job_id = canonical_id(request.path_params["job_id"])
    if job_id != request.path_params["job_id"]:
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)
    the = office(request)
    with the.reader.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        kept = store.kept_files(conn, job.id)
        reports = list_outbox(conn, None, job_id=job.id)
    errors = support.row_errors_page(the.reader, job.id, _int(request, "page"), ERRORS_PER_PAGE)
    outcome = JobOutcome.from_job(job)
    step = next_step(outcome)
    context: dict[str, Any] = {
        "person": person,
        "job": job,
        "outcome": outcome,
        "errors": errors,
        "has_errors_csv": ERRORS_CSV in kept and errors.total > 0,
        "has_changes_csv": CHANGES_CSV in kept,
        "has_input": RETAINED in kept,
        "reports": [_report_summary(r) for r in reversed(reports)],
        "next_step": step,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "title": f"Job {job.id}",
    }
    return page(request, "job.html", context)


def _report_summary(message: OutboxMessage | OutboxEntry) -> dict[str, Any]:
    return {
        "id": message.id,
        "kind": message.kind or "report",
        "subject": message.subject,
        "recipients": ", ".join(message.recipients),
        "status": message.status,
        "created_at": message.created_at,
        "sent_at": message.sent_at,
        "last_error": message.last_error,
    }


def errors_part(request: Request) -> Response:
    """One page of a job's row errors: the table htmx swaps in (a whole page without it)."""
    if not is_htmx(request):
        job_id = canonical_id(request.path_params["job_id"])
        return RedirectResponse(
            f"/jobs/{job_id}?page={_int(request, 'page')}#row-errors", status_code=303
        )
    require(request)
    job_id = canonical_id(request.path_params["job_id"])
    errors = support.row_errors_page(
        office(request).reader, job_id, _int(request, "page"), ERRORS_PER_PAGE
    )
    return page(request, "_row_errors.html", {"person": None, "errors": errors})


def errors_csv(request: Request) -> Response:
    """`syncd jobs errors ID`, as a download."""
    person = require(request)
    job_id = canonical_id(request.path_params["job_id"])
    found, content, rows = support.errors_csv(office(request).reader, job_id)
    record(request, "download_errors", person=person, target=found, detail=f"{rows} rows")
    return download(content, f"{found}.csv")


def changes_csv(request: Request) -> Response:
    """`syncd jobs changes ID`, as a download."""
    person = require(request)
    job_id = canonical_id(request.path_params["job_id"])
    found, content = support.changes_csv(office(request).reader, job_id)
    record(request, "download_changes", person=person, target=found)
    return download(content, f"{found}-changes.csv")


def input_file(request: Request) -> Response:
    """The file a job came from, as kept (secret cells blanked): admins only."""
    person = require(request, "admin")
    job_id = canonical_id(request.path_params["job_id"])
    name, content = support.retained_file(office(request).reader, job_id)
    record(request, "download_input", person=person, target=job_id, detail=name)
    return download(content, f"{job_id}-{name}", "application/octet-stream")


def _message(request: Request) -> tuple[Person, OutboxMessage]:
    person = require(request)
    job_id = canonical_id(request.path_params["job_id"])
    with office(request).reader.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        found = [
            m for m in list_messages(conn, job_id=job.id) if m.id == request.path_params["report"]
        ]
    if not found:
        raise HTTPException(404, f"job {job_id} has no such report")
    return person, found[0]


def report_page(request: Request) -> Response:
    """A report as it was sent: its headers, its text, its HTML, its attachments."""
    person, message = _message(request)
    parsed = message.parsed()
    text = parsed.get_body(preferencelist=("plain",))
    context = {
        "person": person,
        "job_id": canonical_id(request.path_params["job_id"]),
        "message": _report_summary(message),
        "headers": [(k, str(v)) for k, v in parsed.items() if k.lower() != "content-type"],
        "text": text.get_content() if text is not None else "",
        "has_html": parsed.get_body(preferencelist=("html",)) is not None,
        "attachments": [(a.name, len(a.content)) for a in message.attachments()],
        "title": f"Report: {message.subject}",
    }
    return page(request, "report.html", context)


def report_html(request: Request) -> Response:
    _, message = _message(request)
    body = message.parsed().get_body(preferencelist=("html",))
    if body is None:
        raise HTTPException(404, "this report has no HTML part")
    headers = {**HEADERS, "Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"}
    return Response(str(body.get_content()), media_type="text/html", headers=headers)


def report_eml(request: Request) -> Response:
    person, message = _message(request)
    record(
        request,
        "download_report",
        person=person,
        target=message.job_id,
        detail=f"outbox message {message.id}",
    )
    return download(
        message.content, f"{message.job_id or 'report'}-{message.id}.eml", "message/rfc822"
    )


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{text!r} is not a date (yyyy-mm-dd)") from None


def jobs_list(request: Request) -> Response:
    """Jobs, newest first, by source, status and the days they came in."""
    person = require(request)
    params = request.query_params
    the = office(request)
    source = params.get("source") or None
    status = params.get("status") or None
    if status is not None and status not in JOB_STATUSES:
        raise HTTPException(400, f"{status!r} is not a job status")
    since, until = _day(params.get("since")), _day(params.get("until"))
    filters: dict[str, Any] = {
        "source": source,
        "status": status,
        "since": datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None,
        "until": (datetime(until.year, until.month, until.day, tzinfo=UTC) + timedelta(days=1))
        if until
        else None,
    }
    number = _int(request, "page")
    with the.reader.engine.connect() as conn:
        found = store.list_jobs(conn, JOBS_PER_PAGE, offset=(number - 1) * JOBS_PER_PAGE, **filters)
        total = store.count_jobs(conn, **filters)
    sources = sorted({s.name for s in the.config.sources} | {j.source for j in found})
    query = {k: v for k, v in params.items() if k != "page" and v}
    context = {
        "person": person,
        "jobs": found,
        "total": total,
        "page": number,
        "pages": max(1, -(-total // JOBS_PER_PAGE)),
        "sources": sources,
        "statuses": JOB_STATUSES,
        "chosen": {
            "source": source or "",
            "status": status or "",
            "since": params.get("since", ""),
            "until": params.get("until", ""),
        },
        "query": urlencode(query),
        "title": "Jobs",
    }
    return page(request, "jobs.html", context)


def routes() -> list[BaseRoute]:
    return [
        Route("/lookup", lookup),
        Route("/lookup/hint", lookup_hint),
        Route("/jobs", jobs_list),
        Route("/jobs/{job_id}", job_page),
        Route("/jobs/{job_id}/errors", errors_part),
        Route("/jobs/{job_id}/errors.csv", errors_csv),
        Route("/jobs/{job_id}/changes.csv", changes_csv),
        Route("/jobs/{job_id}/file", input_file),
        Route("/jobs/{job_id}/reports/{report:int}", report_page),
        Route("/jobs/{job_id}/reports/{report:int}/html", report_html),
        Route("/jobs/{job_id}/reports/{report:int}/eml", report_eml),
    ]
