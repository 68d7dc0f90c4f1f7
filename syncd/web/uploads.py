"""Admins upload a file: choose its source and mode, send it (streamed to the uploads
spool), map its columns, see the preview, apply it.

Headers are matched as the command line matches them (`core.headers.match_column`);
a header the profile does not know can be mapped to one of the profile's fields that
no other header fills, and the mapping saved for the source's later uploads. Preview
and apply are long work, run in the back office's work thread (`syncd.web.previews`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.core.headers import match_column
from syncd.core.table import is_errors_header, normalise_header
from syncd.errors import FileRejected
from syncd.flow import PlanRefused
from syncd.intake import sniffed_header
from syncd.store import web as store_web
from syncd.web import previews
from syncd.web.access import Person, record, require
from syncd.web.office import Office, office
from syncd.web.rendering import page
from syncd.web.staging import Staged, Uploads, receive_upload

IGNORE = ""


def _uploads(the: Office) -> Uploads:
    return Uploads(the.uploads_dir)


def upload_form(request: Request, problem: str | None = None, status: int = 200) -> Response:
    person = require(request, "admin")
    the = office(request)
    uploads = _uploads(the)
    uploads.purge(the.now())
    context = {
        "person": person,
        "sources": the.config.sources,
        "pending": uploads.pending(),
        "problem": problem,
        "title": "Upload",
    }
    return page(request, "upload.html", context, status=status)


async def upload(request: Request) -> Response:
    """The file, streamed into the spool as it arrives; then its columns."""
    person = await run_in_threadpool(require, request, "admin")
    the = office(request)
    caps = {s.name: the.config.profiles[s.profile].max_bytes for s in the.config.sources}
    uploads = _uploads(the)
    try:
        received = await receive_upload(
            uploads, request.headers.get("content-type", ""), request.stream(), caps
        )
    except FileRejected as rejected:
        await run_in_threadpool(
            record, request, "upload", person=person, outcome="refused", detail=rejected.message
        )
        return await run_in_threadpool(upload_form, request, rejected.message, 413)
    except ClientDisconnect:
        return Response(status_code=400)

    def stage() -> Response:
        source = received.fields.get("source", "")
        try:
            cfg = the.config.source(source)
        except Exception:
            uploads.data_path(received.upload_id).unlink(missing_ok=True)
            raise HTTPException(400, f"there is no source named {source!r}") from None
        mode = received.fields.get("mode") or cfg.mode
        if mode not in ("full", "partial"):
            raise HTTPException(400, f"{mode!r} is not a mode: full or partial")
        staged = Staged(
            id=received.upload_id,
            source=cfg.name,
            mode="full" if mode == "full" else "partial",
            name=received.file_name or "upload.csv",
            size=received.size,
            sha256=received.sha256,
            uploaded_by=person.name,
            uploaded_at=the.now().isoformat(),
        )
        uploads.save(staged)
        record(
            request,
            "upload",
            person=person,
            target=staged.id,
            detail=f"{staged.name}, {staged.size:,} bytes, to {cfg.name} ({staged.mode})",
        )
        return RedirectResponse(f"/uploads/{staged.id}", status_code=303)

    return await run_in_threadpool(stage)


def _columns(the: Office, staged: Staged) -> dict[str, Any]:
    """The file's headers, each with the field it fills: matched, saved, or chosen."""
    source = the.config.source(staged.source)
    profile = the.config.profiles[source.profile]
    header = sniffed_header(profile, _uploads(the).head(staged.id))
    with the.reader.engine.connect() as conn:
        saved = store_web.saved_mapping(conn, source.name)
    rows: list[dict[str, str | None]] = []
    taken = set()
    for text in header or ():
        column = match_column(text, profile)
        if column is not None:
            taken.add(column.field)
        rows.append({"header": text, "matched": column.field if column else None})
    for row, text in zip(rows, header or (), strict=True):
        if row["matched"] is None and not is_errors_header(text):
            chosen = staged.mapping.get(text)
            if chosen is None:
                chosen = saved.get(normalise_header(text), IGNORE)
            row["chosen"] = chosen if chosen not in taken else IGNORE
    return {
        "profile": profile,
        "header": header,
        "rows": rows,
        "free": [c for c in profile.columns if c.field not in taken],
    }


def _staged(request: Request) -> tuple[Person, Office, Staged]:
    person = require(request, "admin")
    the = office(request)
    return person, the, _uploads(the).load(request.path_params["upload_id"])


def columns_page(request: Request) -> Response:
    person, the, staged = _staged(request)
    if staged.job_id:
        return RedirectResponse(f"/jobs/{staged.job_id}", status_code=303)
    context = {
        "person": person,
        "staged": staged,
        **_columns(the, staged),
        "title": f"Columns of {staged.name}",
        "problem": None,
    }
    return page(request, "columns.html", context)


async def map_columns(request: Request) -> Response:
    """The mapping chosen (and saved, if asked), then the preview."""
    form = await request.form()

    def act() -> Response:
        person, the, staged = _staged(request)
        if staged.job_id:
            return RedirectResponse(f"/jobs/{staged.job_id}", status_code=303)
        columns = _columns(the, staged)
        free = {c.field for c in columns["free"]}
        mapping: dict[str, str] = {}
        for index, row in enumerate(columns["rows"]):
            if "chosen" not in row:
                continue
            field = str(form.get(f"map-{index}", IGNORE))
            if field == IGNORE:
                continue
            if field not in free or field in mapping.values():
                context = {
                    "person": person,
                    "staged": staged,
                    **columns,
                    "title": "Columns",
                    "problem": f"{field!r} cannot be chosen twice, nor for a column "
                    "that is matched already",
                }
                return page(request, "columns.html", context, status=400)
            mapping[str(row["header"])] = field
        staged.mapping = mapping
        _uploads(the).save(staged)
        if form.get("save") == "yes" and mapping:
            with the.rt.engine.begin() as conn:
                store_web.save_mapping(
                    conn,
                    staged.source,
                    {normalise_header(h): f for h, f in mapping.items()},
                    by=person.name,
                    now=the.now(),
                )
            record(
                request,
                "save_mapping",
                person=person,
                target=staged.source,
                detail=", ".join(f"{h} -> {f}" for h, f in mapping.items()),
            )
        return _start_preview(request, person, the, staged)

    return await run_in_threadpool(act)


def _start_preview(
    request: Request, person: Person, the: Office, staged: Staged, notice: str | None = None
) -> Response:
    uploads = _uploads(the)

    def work(progress: Any) -> str:
        done = previews.preview(the.rt, uploads, staged, progress)
        if notice and done.preview is not None:
            done.preview["notice"] = notice
            uploads.save(done)
        record(
            request,
            "preview",
            person=person,
            target=staged.id,
            detail=f"{staged.name}: would be {done.preview and done.preview['status']}",
        )
        return f"/uploads/{staged.id}/preview"

    task = the.tasks.start(f"Planning {staged.name}", person.name, work)
    return RedirectResponse(f"/tasks/{task.id}", status_code=303)


def preview_page(request: Request) -> Response:
    person, _, staged = _staged(request)
    if staged.job_id:
        return RedirectResponse(f"/jobs/{staged.job_id}", status_code=303)
    if staged.preview is None:
        return RedirectResponse(f"/uploads/{staged.id}", status_code=303)
    shown = staged.preview
    context = {
        "person": person,
        "staged": staged,
        "preview": shown,
        "counts": shown["outcome"]["counts"],
        "can_apply": "digest" in shown,
        "planned_at": datetime.fromisoformat(shown["planned_at"]),
        "notice": shown.get("notice"),
        "title": f"Preview of {staged.name}",
    }
    return page(request, "preview.html", context)


async def apply_upload(request: Request) -> Response:
    def act() -> Response:
        person, the, staged = _staged(request)
        if staged.job_id:
            return RedirectResponse(f"/jobs/{staged.job_id}", status_code=303)
        uploads = _uploads(the)

        def work(progress: Any) -> str:
            try:
                outcome = previews.apply(the.rt, uploads, staged, progress)
            except PlanRefused as refused:
                record(
                    request,
                    "apply",
                    person=person,
                    target=staged.id,
                    outcome="refused",
                    detail=refused.message,
                )
                progress("planning")
                replanned = previews.preview(the.rt, uploads, staged, progress)
                assert replanned.preview is not None
                replanned.preview["notice"] = (
                    f"Not applied: {refused.message}. The file was planned again against "
                    "the directory as it is now: check this new preview, then apply it."
                )
                uploads.save(replanned)
                return f"/uploads/{staged.id}/preview"
            record(
                request,
                "apply",
                person=person,
                target=outcome.job_id,
                detail=f"upload {staged.id} ({staged.name}): {outcome.status}",
            )
            return f"/jobs/{outcome.job_id}?done=applied"

        task = the.tasks.start(f"Importing {staged.name}", person.name, work)
        return RedirectResponse(f"/tasks/{task.id}", status_code=303)

    return await run_in_threadpool(act)


def routes() -> list[BaseRoute]:
    return [
        Route("/upload", upload_form, methods=["GET"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/uploads/{upload_id}", columns_page),
        Route("/uploads/{upload_id}/map", map_columns, methods=["POST"]),
        Route("/uploads/{upload_id}/preview", preview_page),
        Route("/uploads/{upload_id}/apply", apply_upload, methods=["POST"]),
    ]
