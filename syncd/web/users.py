"""A user looked up by email (any case) or key, as `syncd users show` finds them, with
the jobs that touched them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from syncd import store, support
from syncd.web.access import record, require
from syncd.web.office import office
from syncd.web.rendering import page


def users_page(request: Request) -> Response:
    person = require(request)
    typed = request.query_params.get("q", "").strip()
    the = office(request)
    found = []
    if typed:
        with the.reader.engine.connect() as conn:
            users = store.find_user(conn, typed)
        for user in users:
            touched = support.jobs_touching(the.reader, user.directory, user.key)
            ids = set(touched) | ({user.last_job_id} if user.last_job_id else set())
            with the.reader.engine.connect() as conn:
                jobs = store.jobs_by_id(conn, ids)
            found.append({"user": user, "jobs": jobs})
        record(
            request, "search_user", person=person, target=typed[:200], detail=f"{len(found)} found"
        )
    context = {
        "person": person,
        "typed": typed,
        "found": found,
        "searched_jobs": support.TOUCH_SEARCH_JOBS,
        "title": "Users",
    }
    return page(request, "users.html", context)


def routes() -> list[BaseRoute]:
    return [Route("/users", users_page)]
