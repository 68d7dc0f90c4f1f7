"""Password hashes: argon2id, computed only for passwords that are new or changed.

argon2 is slow on purpose (tens of milliseconds a hash); the planner's password tags
decide which rows need one (`password_keys`), and the hashes run on every core (argon2-cffi
releases the GIL).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import polars as pl
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

from syncd.core.plan import Plan

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except Exception:  # argon2 raises several mismatch/invalid-hash types; all mean "no"
        return False


def hash_passwords(passwords: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """key -> argon2id hash for each (key, clear password) pair."""
    pairs = list(passwords)
    if not pairs:
        return {}
    workers = max(1, min(len(pairs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        hashes = list(pool.map(hash_password, (password for _, password in pairs)))
    return {key: value for (key, _), value in zip(pairs, hashes, strict=True)}


def password_keys(plan: Plan) -> list[str]:
    """Keys of the users whose password a plan sets: created with one, or changed."""
    keys: list[str] = []
    if "password_tag" in plan.creates.columns:
        keys += plan.creates.filter(pl.col("password_tag").is_not_null())["key"].to_list()
    if plan.updates.height:
        keys += plan.updates.filter(pl.col("changed").list.contains("password"))["key"].to_list()
    return keys


def plan_hashes(plan: Plan) -> dict[str, str]:
    """key -> argon2id hash of every password the plan sets, from its records' clear
    passwords (which only a plan of a file just read has)."""
    wanted = set(password_keys(plan))
    if not wanted:
        return {}
    pairs: list[tuple[str, str]] = []
    for frame in (plan.creates, plan.updates):
        if "password" in frame.columns and frame.height:
            rows = frame.filter(
                pl.col("key").is_in(list(wanted)) & pl.col("password").is_not_null()
            )
            pairs += list(zip(rows["key"].to_list(), rows["password"].to_list(), strict=True))
    return dict(hash_passwords(pairs))


def plan_tags(plan: Plan) -> dict[str, str | None]:
    """key -> password tag of every password the plan sets."""
    wanted = set(password_keys(plan))
    tags: dict[str, str | None] = {}
    for frame in (plan.creates, plan.updates):
        if "password_tag" in frame.columns and frame.height:
            rows = frame.filter(pl.col("key").is_in(list(wanted)))
            tags.update(zip(rows["key"].to_list(), rows["password_tag"].to_list(), strict=True))
    return tags
