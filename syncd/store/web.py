"""What the back office keeps: accounts, sessions, the audit log, saved column mappings.

Passwords are argon2id hashes made by the caller (`syncd.web.accounts`); sessions are
stored by the SHA-256 of their cookie, never the cookie itself. The audit log is
append-only: nothing here updates or deletes an entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, delete, func, insert, select, update

from syncd.store.schema import web_accounts, web_audit, web_mappings, web_sessions

Role = Literal["support", "admin"]
AuditOutcome = Literal["ok", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: Role
    password_hash: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str | None
    address: str | None
    action: str
    target: str | None
    detail: str | None
    outcome: AuditOutcome


def get_account(conn: Connection, name: str) -> Account | None:
    row = conn.execute(select(web_accounts).where(web_accounts.c.name == name)).first()
    return None if row is None else Account(**row._asdict())


def list_accounts(conn: Connection) -> list[Account]:
    rows = conn.execute(select(web_accounts).order_by(web_accounts.c.name))
    return [Account(**row._asdict()) for row in rows]


def add_account(
    conn: Connection, name: str, role: Role, password_hash: str | None, *, now: datetime
) -> None:
    conn.execute(
        insert(web_accounts).values(
            name=name, role=role, password_hash=password_hash, created_at=now, updated_at=now
        )
    )


def update_account(
    conn: Connection,
    name: str,
    *,
    now: datetime,
    role: Role | None = None,
    password_hash: str | None = None,
) -> bool:
    """Change an account's role or password (None leaves it); its sessions end, so
    the change holds from the next request on. False when there is no such account."""
    values: dict[str, object] = {"updated_at": now}
    if role is not None:
        values["role"] = role
    if password_hash is not None:
        values["password_hash"] = password_hash
    done = conn.execute(update(web_accounts).where(web_accounts.c.name == name).values(values))
    conn.execute(delete(web_sessions).where(web_sessions.c.account == name))
    return done.rowcount == 1


def remove_account(conn: Connection, name: str) -> bool:
    conn.execute(delete(web_sessions).where(web_sessions.c.account == name))
    return conn.execute(delete(web_accounts).where(web_accounts.c.name == name)).rowcount == 1


def open_session(
    conn: Connection, token_hash: str, account: str, *, now: datetime, expires_at: datetime
) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
    conn.execute(
        insert(web_sessions).values(
            token_hash=token_hash, account=account, created_at=now, expires_at=expires_at
        )
    )


def session_account(conn: Connection, token_hash: str, *, now: datetime) -> Account | None:
    """The account of a session that has not expired."""
    row = conn.execute(
        select(web_accounts)
        .join(web_sessions, web_sessions.c.account == web_accounts.c.name)
        .where(web_sessions.c.token_hash == token_hash, web_sessions.c.expires_at > now)
    ).first()
    return None if row is None else Account(**row._asdict())


def close_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash))


def audit(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    outcome: AuditOutcome = "ok",
    role: str | None = None,
    address: str | None = None,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    conn.execute(
        insert(web_audit).values(
            at=at,
            actor=actor,
            role=role,
            address=address,
            action=action,
            target=target,
            detail=detail,
            outcome=outcome,
        )
    )


def list_audit(
    conn: Connection, *, limit: int = 100, offset: int = 0, actor: str | None = None
) -> list[AuditEntry]:
    """The latest entries first."""
    query = select(web_audit).order_by(web_audit.c.id.desc()).limit(limit).offset(offset)
    if actor is not None:
        query = query.where(web_audit.c.actor == actor)
    return [AuditEntry(**row._asdict()) for row in conn.execute(query)]


def failed_logins(
    conn: Connection, *, since: datetime, actor: str | None = None, address: str | None = None
) -> int:
    """Failed logins since `since`, for one name or from one address."""
    query = select(func.count()).where(
        web_audit.c.action == "login", web_audit.c.outcome == "failed", web_audit.c.at > since
    )
    if actor is not None:
        query = query.where(web_audit.c.actor == actor)
    if address is not None:
        query = query.where(web_audit.c.address == address)
    return int(conn.scalar(query) or 0)


def saved_mapping(conn: Connection, source: str) -> dict[str, str]:
    """Normalised header -> field, as admins saved them for `source`'s uploads."""
    query = select(web_mappings.c.header, web_mappings.c.field).where(
        web_mappings.c.source == source
    )
    return {row.header: row.field for row in conn.execute(query)}


def save_mapping(
    conn: Connection, source: str, mapping: Mapping[str, str], *, by: str, now: datetime
) -> None:
    """Remember `mapping` (normalised header -> field) for `source`, beside what was
    saved before (a header saved again takes its new field)."""
    for header, field in mapping.items():
        conn.execute(
            delete(web_mappings).where(
                web_mappings.c.source == source, web_mappings.c.header == header
            )
        )
        conn.execute(
            insert(web_mappings).values(
                source=source, header=header, field=field, saved_by=by, saved_at=now
            )
        )
