"""Job IDs: short enough to read over the phone, time-ordered, unique across daemons.

An ID is 10 Crockford base32 characters shown as `XXXXX-XXXXX`: 7 characters of time
(tenths of a second since 2025-01-01, good for a century) then 3 random ones (32,768 per
tenth of a second, and the store's primary key catches the rest). Crockford's alphabet
has no I, L, O or U, so a misheard letter still decodes: lookups normalise case, dashes,
spaces and the look-alikes before comparing.
"""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
TIME_CHARS = 7
RANDOM_CHARS = 3
LENGTH = TIME_CHARS + RANDOM_CHARS
_LOOKALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})
_VALID = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def new_job_id(now_ms: int, entropy: bytes) -> str:
    """Mint an ID from the wall clock (milliseconds since the Unix epoch) and random bytes.

    Both are passed in so that the function stays pure; `entropy` needs at least 2 bytes.
    """
    tenths = max(0, now_ms - EPOCH_MS) // 100
    random_bits = int.from_bytes(entropy[:2], "big") & (32**RANDOM_CHARS - 1)
    raw = _encode(tenths % 32**TIME_CHARS, TIME_CHARS) + _encode(random_bits, RANDOM_CHARS)
    return f"{raw[:5]}-{raw[5:]}"


def normalise_job_id(text: str) -> str | None:
    """The canonical form of an ID as a person typed it, or None if it cannot be one.

    `7k3m9-qx2ab`, `7K3M9QX2AB` and `7K3M9 QX2AB` are the same job.
    """
    compact = re.sub(r"[\s\-_]", "", text).upper().translate(_LOOKALIKES)
    if not _VALID.fullmatch(compact):
        return None
    return f"{compact[:5]}-{compact[5:]}"
