"""Password hashes: argon2id, computed only for passwords that are new or changed.

argon2 is slow on purpose (tens of milliseconds a hash); the planner's password tags
decide which rows need one, and the hashes run on every core (argon2-cffi releases the GIL).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

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
