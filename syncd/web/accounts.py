"""Back office accounts: made with `syncd web user add`, checked when someone logs in.

A password is stored only as an argon2id hash (`syncd.hashing`, the same hasher as the
directory's passwords). An account with no password can be used only through a trusted
reverse proxy that names it (`[web] proxy_user_header`).
"""

from __future__ import annotations

import re
from functools import cache

from sqlalchemy.exc import IntegrityError

from syncd.errors import UsageError
from syncd.hashing import hash_password, verify_password
from syncd.runtime import Runtime
from syncd.store import web as store_web
from syncd.store.web import Account, Role

ROLES: tuple[Role, ...] = ("support", "admin")
#: What each role may do, in words (`syncd web user add --help`, the accounts page).
ROLE_WORDS: dict[Role, str] = {
    "support": "look up jobs and users, download errors and changes CSVs",
    "admin": "also approve and reject held jobs, upload files, scan sources, download "
    "the files jobs kept",
}
MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}")


@cache
def _no_account() -> str:
    """Checked when a name has no account, so that a wrong name takes as long as a
    wrong password and the time does not tell which names exist."""
    return hash_password("no account has this password")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not an account name: use letters, digits and . _ @ + - "
            "(at most 100, starting with a letter or digit)"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}"
        )
    return password


def add_account(rt: Runtime, name: str, role: Role, password: str | None) -> Account:
    """A new account; `password` None makes one that only a trusted proxy logs in."""
    hashed = None if password is None else hash_password(check_password(password))
    now = rt.clock()
    try:
        with rt.engine.begin() as conn:
            store_web.add_account(conn, check_name(name), role, hashed, now=now)
            store_web.audit(
                conn,
                at=now,
                actor="(command line)",
                action="account_add",
                target=name,
                detail=f"role {role}",
            )
    except IntegrityError:
        raise UsageError(
            f"there is already an account named {name!r}; `syncd web user passwd {name}` "
            "sets its password"
        ) from None
    return Account(name, role, hashed, now, now)


def change_account(
    rt: Runtime, name: str, *, role: Role | None = None, password: str | None = None
) -> None:
    """Set an account's role or password; its open sessions end."""
    hashed = None if password is None else hash_password(check_password(password))
    now = rt.clock()
    with rt.engine.begin() as conn:
        if not store_web.update_account(conn, name, now=now, role=role, password_hash=hashed):
            raise UsageError(f"there is no account named {name!r}")
        changed = ", ".join(
            part for part, value in (("password", password), (f"role {role}", role)) if value
        )
        store_web.audit(
            conn,
            at=now,
            actor="(command line)",
            action="account_change",
            target=name,
            detail=changed,
        )


def remove_account(rt: Runtime, name: str) -> None:
    now = rt.clock()
    with rt.engine.begin() as conn:
        if not store_web.remove_account(conn, name):
            raise UsageError(f"there is no account named {name!r}")
        store_web.audit(conn, at=now, actor="(command line)", action="account_remove", target=name)


def list_accounts(rt: Runtime) -> list[Account]:
    with rt.engine.connect() as conn:
        return store_web.list_accounts(conn)


def authenticate(rt: Runtime, name: str, password: str) -> Account | None:
    """The account `name` if `password` is its password; None otherwise (no such
    account, no password, or the wrong one), after the same work in every case."""
    with rt.engine.connect() as conn:
        account = store_web.get_account(conn, name)
    hashed = account.password_hash if account is not None else None
    matches = verify_password(hashed or _no_account(), password)
    return account if account is not None and hashed is not None and matches else None
