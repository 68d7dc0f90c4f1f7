"""The planner: validated records x directory snapshot -> the changes a job would make.

Pure and columnar. Inputs are frames; the output is a `Plan` built whole before anything
is written. See DESIGN.md "The directory" for the rules each branch implements.

Frames the store hands in:

`snapshot` (every user of the directory, active or archived):
  `user_id` (Int64), `key` (String, normalised like `records.key`), `email_lc` (String),
  `status` (String: active|archived), `fingerprint` (String, nullable).

`details` (only the users `candidates()` names): `user_id` (Int64) and, for every
directory field, the stored value in the records' representation (see
`syncd.core.records`), plus `password_tag` (String, nullable).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from syncd.core.counts import Counts
from syncd.core.profile import Mode


@dataclass(frozen=True, slots=True)
class Plan:
    """What one job would change.

    - `creates`: records rows of new users, with `fingerprint`.
    - `updates`: records rows of existing users whose values change, with `user_id`,
      `fingerprint`, `changed` (List(String): the field names that change),
      `reactivate` (Boolean) and `email_changed` (Boolean).
    - `refresh`: `user_id`, `fingerprint` of users whose values did not change but whose
      stored fingerprint is stale (written without counting as an update).
    - `archives`: `user_id`, `key`, `reason` ("absent" or "status").
    """

    mode: Mode
    fields: tuple[str, ...]
    creates: pl.DataFrame
    updates: pl.DataFrame
    refresh: pl.DataFrame
    archives: pl.DataFrame
    counts: Counts
    active_before: int
    archive_blocked: str | None = None
    messages: tuple[str, ...] = ()

    @property
    def archive_count(self) -> int:
        return self.archives.height
