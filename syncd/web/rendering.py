"""Pages: the Jinja2 templates of `syncd/templates/web`, autoescaped, with strict
variables, and the headers every page carries.

Nothing a file or a person typed is ever marked safe: a cell holding `<script>` is
shown as text. Pages carry a Content-Security-Policy that runs only the back office's
own script (htmx) and styles, and are never cached (they hold personal data).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from syncd.core.status import STATUS_WORDS
from syncd.web.office import office

#: The vendored htmx (see syncd/web/static/htmx-2.0.3.NOTICE.txt).
HTMX = "/static/htmx-2.0.3.min.js"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
#: Every response's security headers (a report's HTML gets its own policy).
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: int | float) -> str:
    return f"{value:,}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("syncd", "templates/web"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["number"] = _number
    env.filters["plural"] = _plural
    env.globals["status_words"] = STATUS_WORDS
    env.globals["htmx"] = HTMX
    return Jinja2Templates(env=env)


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A rendered page; `context` must name `person` (None on the login page)."""
    context.setdefault("notice", None)
    context.setdefault("title", "")
    return office(request).templates.TemplateResponse(
        request, template, context, status_code=status, headers={**HEADERS, **(headers or {})}
    )


def is_htmx(request: Request) -> bool:
    """Whether htmx asks (for a part of a page, not a whole one)."""
    return request.headers.get("hx-request") == "true"
