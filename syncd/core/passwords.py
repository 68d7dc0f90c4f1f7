"""Password tags: a keyed digest of each row's password, so the planner can tell a changed
password from an unchanged one without running argon2 on every row.

The tag is HMAC-SHA256 under a secret the directory keeps apart from the database, so a
leaked tag cannot be brute-forced without that secret. Binding the key means two users
with the same password get different tags.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl


def password_tags(keys: pl.Series, passwords: pl.Series, secret: bytes) -> pl.Series:
    """HMAC-SHA256(secret, key + NUL + password) as hex, null where the password is null."""
    if keys.len() != passwords.len():
        raise ValueError(f"{keys.len()} keys but {passwords.len()} passwords")
    if not secret:
        raise ValueError("the password tag secret is empty")
    keyed = hmac.new(secret, digestmod=hashlib.sha256)
    tags: list[str | None] = []
    # HMAC has no columnar form: one digest per password is the least this can cost.
    for key, password in zip(keys.to_list(), passwords.to_list(), strict=True):
        if password is None:
            tags.append(None)
            continue
        mac = keyed.copy()
        mac.update(f"{key}\x00{password}".encode())
        tags.append(mac.hexdigest())
    return pl.Series("password_tag", tags, dtype=pl.String)
