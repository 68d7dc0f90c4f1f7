"""Sources hand complete files to jobs and settle them afterwards.

Every source answers three questions: which files are complete now, what are a file's
bytes, and where does a file go once its job ended (processed/ or failed/).
"""

from __future__ import annotations

import fnmatch
from typing import Protocol

#: Names never taken: uploads in progress and hidden files.
IGNORED_PATTERNS = ("*.part", "*.tmp", "*.filepart", ".*", "*~")


class Source(Protocol):
    name: str

    def list_complete(self, now: float) -> list[str]:
        """Names of files whose upload is complete, oldest first."""

    def fetch(self, name: str) -> bytes: ...

    def settle(self, name: str, job_id: str, ok: bool, replacement: bytes | None = None) -> str:
        """Move the file to processed/ (ok) or failed/, or write `replacement` there in its
        place (the file with its secret cells blanked); return where it went."""


def is_candidate(name: str, pattern: str) -> bool:
    if any(fnmatch.fnmatch(name, ignored) for ignored in IGNORED_PATTERNS):
        return False
    return fnmatch.fnmatch(name.lower(), pattern.lower())
