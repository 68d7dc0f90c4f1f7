"""Job counts, as the report, the job record and `--json` show them."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Counts:
    """`rows = valid + invalid`; each valid row's user counts once among created,
    updated, unchanged, reactivated and archived; users archived for being absent count
    in `archived` too; `email_changed` is the part of `updated` whose email changed."""

    rows: int = 0
    valid: int = 0
    invalid: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    archived: int = 0
    reactivated: int = 0
    email_changed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
