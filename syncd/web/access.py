"""Who is asking, and whether they may: sessions, a trusted proxy's user header, roles,
the same-origin rule for requests that change something, login limits, the audit log.

- A person logs in with an account's name and password and gets a session cookie
  (random, HttpOnly, SameSite=Strict, Secure behind TLS); the database knows the
  session only by the cookie's SHA-256. Or a reverse proxy names them in
  `[web] proxy_user_header`, believed only from `[web] trusted_proxies`, for an
  account of that name.
- `support` reads and downloads errors and changes CSVs; `admin` may also approve,
  reject, upload, scan and download the files jobs kept.
- Any request but GET and HEAD is refused unless the browser says it comes from a page
  of the back office itself (`Sec-Fetch-Site: same-origin`, or else an `Origin` equal to
  the back office's own): another site cannot make a logged-in browser act.
- After `login_attempts` failed logins within `login_window_minutes` for one name, or
  from one address, further attempts are refused until the window has passed.
- Every action (logins, downloads, decisions, uploads, scans, refusals) is written to
  the audit log with who, from where, and how it ended.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.config import WebConfig
from syncd.store import web as store_web
from syncd.store.web import AuditOutcome, Role
from syncd.web.office import Office, office

SESSION_COOKIE = "syncd_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Person:
    """Someone using the back office."""

    name: str
    role: Role
    via: Literal["password", "proxy"]

    def may(self, role: Role) -> bool:
        return role == "support" or self.role == "admin"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class NotLoggedIn(Exception):
    """Nobody is logged in: a page sends them to the login form."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


def peer(request: Request) -> str | None:
    """The address the request came from (syncd never reads X-Forwarded-For)."""
    return request.client.host if request.client else None


def trusted_proxy(config: WebConfig, address: str | None) -> bool:
    if address is None or not config.trusted_proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in config.trusted_proxies)


def behind_tls(request: Request, config: WebConfig) -> bool:
    """Whether people reach the back office over TLS (its cookie is then Secure)."""
    if request.url.scheme == "https":
        return True
    if trusted_proxy(config, peer(request)) and request.headers.get("x-forwarded-proto") == "https":
        return True
    return (config.public_origin or "").startswith("https://")


def identify(request: Request) -> Person | None:
    """Who is asking, if anyone: a trusted proxy's user, else a session's account."""
    the = office(request)
    config = the.config.web
    now = the.now()
    if config.proxy_user_header and trusted_proxy(config, peer(request)):
        name = request.headers.get(config.proxy_user_header, "").strip()
        if name:
            with the.reader.engine.connect() as conn:
                account = store_web.get_account(conn, name)
            if account is None:
                record(
                    request,
                    "proxy_login",
                    actor=name,
                    outcome="refused",
                    detail="no back office account has this name",
                )
                raise HTTPException(
                    403,
                    f"the proxy names you {name!r}, which is not a back office account: "
                    f"ask an admin to run `syncd web user add {name} --role support "
                    "--no-password`",
                )
            return Person(account.name, account.role, "proxy")
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with the.reader.engine.connect() as conn:
        account = store_web.session_account(conn, token_hash(token), now=now)
    return None if account is None else Person(account.name, account.role, "password")


def require(request: Request, role: Role = "support") -> Person:
    """The person asking, who must be logged in and have `role` (403 and an audit
    entry when they do not)."""
    person = identify(request)
    if person is None:
        raise NotLoggedIn
    if not person.may(role):
        record(
            request,
            "forbidden",
            person=person,
            outcome="refused",
            target=request.url.path,
            detail=f"{request.method} needs the {role} role",
        )
        raise HTTPException(403, f"this needs the {role} role; {person.name} is {person.role}")
    return person


def record(
    request: Request,
    action: str,
    *,
    person: Person | None = None,
    actor: str | None = None,
    target: str | None = None,
    detail: str | None = None,
    outcome: AuditOutcome = "ok",
) -> None:
    """Write one entry to the audit log."""
    the = office(request)
    with the.rt.engine.begin() as conn:
        store_web.audit(
            conn,
            at=the.now(),
            actor=actor or (person.name if person else "(not logged in)"),
            role=person.role if person else None,
            address=peer(request),
            action=action,
            target=target,
            detail=detail,
            outcome=outcome,
        )


# --- logging in -----------------------------------------------------------------------


def wait_before_login(the: Office, name: str, address: str | None) -> int:
    """Minutes to wait before `name` may try again from `address` (0: now)."""
    config = the.config.web
    window = timedelta(minutes=config.login_window_minutes)
    since = the.now() - window
    with the.reader.engine.connect() as conn:
        by_name = store_web.failed_logins(conn, since=since, actor=name)
        by_address = store_web.failed_logins(conn, since=since, address=address) if address else 0
    if max(by_name, by_address) < config.login_attempts:
        return 0
    return max(1, int(config.login_window_minutes))


def open_session(request: Request, response: Response, name: str) -> None:
    """Log `name` in: a new session, its cookie set on `response`."""
    the = office(request)
    config = the.config.web
    token = secrets.token_urlsafe(32)
    now = the.now()
    with the.rt.engine.begin() as conn:
        store_web.open_session(
            conn,
            token_hash(token),
            name,
            now=now,
            expires_at=now + timedelta(hours=config.session_hours),
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(config.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=behind_tls(request, config),
    )


def close_session(request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        the = office(request)
        with the.rt.engine.begin() as conn:
            store_web.close_session(conn, token_hash(token))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


# --- the same-origin rule -------------------------------------------------------------


def own_origins(headers: Headers, scheme: str, public_origin: str | None) -> set[str]:
    """The origins of the back office's own pages, as browsers name them."""
    if public_origin:
        return {public_origin.rstrip("/")}
    host = headers.get("host", "")
    return {f"{scheme}://{host}"} if host else set()


def same_origin(headers: Headers, origins: set[str]) -> bool:
    """Whether a browser says the request comes from one of `origins`. Browsers send
    `Sec-Fetch-Site` (which they compute themselves); older ones only `Origin`. A
    request saying neither is refused: it is not from a page of the back office."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    return origin is not None and origin in origins


class SameOriginOnly:
    """Refuses (403) every request that may change something unless it comes from a
    page of the back office itself; each refusal goes to the audit log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        config = office(request).config.web
        headers = Headers(scope=scope)
        if same_origin(headers, own_origins(headers, scope["scheme"], config.public_origin)):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool

        def refuse() -> None:
            try:
                person = identify(request)
            except HTTPException:
                person = None
            said = headers.get("sec-fetch-site") or headers.get("origin") or "neither"
            record(
                request,
                "cross_origin",
                person=person,
                outcome="refused",
                target=request.url.path,
                detail=f"{scope['method']} from another origin ({said})",
            )

        await run_in_threadpool(refuse)
        response = HTMLResponse(
            "<!doctype html><title>Refused</title><p>Refused: this request did not come "
            "from a page of the syncd back office. Open the back office and try again "
            "from there.</p>",
            status_code=403,
        )
        await response(scope, receive, send)
