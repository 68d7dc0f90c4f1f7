"""Read and validate a file: the half of every job that needs no database.

`syncd validate` runs only this (and so starts without loading the database layer);
`syncd.jobs` builds the rest of the flow on it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from syncd.config import Config, SourceConfig
from syncd.core.counts import Counts
from syncd.core.errors_csv import render_errors_csv
from syncd.core.job_id import new_job_id
from syncd.core.plan import Plan
from syncd.core.profile import Profile
from syncd.core.reading import ReadOptions, read_table
from syncd.core.records import Validated
from syncd.core.table import RowError
from syncd.core.validation import validate
from syncd.errors import FileRejected
from syncd.outcome import JobOutcome

Progress = Callable[[str], None]

#: How many row errors a job outcome carries for display (all are stored).
SHOWN_ROW_ERRORS = 20


def quiet(_stage: str) -> None:
    return None


class Drop:
    """A file handed to syncd: its name as the sender gave it, and its bytes.

    A job takes the bytes over (`take`): a million-row file is 140 MB, and whoever
    handed it in (the CLI, the daemon) must not keep a second hold on it while the job
    runs.
    """

    __slots__ = ("_data", "name")

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self._data: bytes | None = data

    @property
    def data(self) -> bytes:
        if self._data is None:
            raise RuntimeError(f"the bytes of {self.name} were handed to a job already")
        return self._data

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def take(self) -> bytes:
        """The bytes, which this drop no longer holds."""
        data, self._data = self.data, None
        return data


@dataclass(frozen=True, slots=True)
class Checked:
    """A file read and validated, or the reason it was rejected whole."""

    validated: Validated | None
    problems: tuple[str, ...] = ()
    rejection: str = ""


def read_options(profile: Profile) -> ReadOptions:
    return ReadOptions(
        delimiter=profile.delimiter,
        encoding=profile.encoding,
        fallback_encoding=profile.fallback_encoding,
        header=profile.header,
        max_bytes=profile.max_bytes,
        max_rows=profile.max_rows,
    )


def check(config: Config, profile: Profile, drop: Drop, progress: Progress = quiet) -> Checked:
    """Read and validate a file: the pure half of every job. Takes the drop's bytes."""
    try:
        progress("reading")
        header_names = None if profile.header else [c.header for c in profile.columns]
        # Taken from the drop: once read into the table the bytes are let go.
        table = read_table(drop.take(), read_options(profile), header_names=header_names)
        progress("validating")
        return Checked(validate(table, profile, config.directory))
    except FileRejected as rejected:
        return Checked(
            None, problems=(rejected.message, *rejected.problems), rejection=rejected.message
        )


def password_columns(validated: Validated) -> set[int]:
    """Positions of the columns whose cells are clear passwords."""
    header = validated.headers.get("password")
    return {i for i, name in enumerate(validated.table.header) if name == header}


def errors_csv_bytes(validated: Validated, errors: tuple[RowError, ...]) -> bytes:
    return render_errors_csv(validated.table, errors, redact=password_columns(validated))


def counts_of(validated: Validated | None, plan: Plan | None = None) -> Counts:
    if plan is not None:
        return plan.counts
    if validated is None:
        return Counts()
    return Counts(rows=validated.rows, valid=validated.valid, invalid=validated.invalid)


def validate_file(
    config: Config,
    source: SourceConfig,
    drop: Drop,
    *,
    mint: Callable[[], str],
    progress: Progress = quiet,
) -> tuple[JobOutcome, bytes | None]:
    """`syncd validate`: the outcome and the errors CSV (None when every row is valid)."""
    checked = check(config, config.profiles[source.profile], drop, progress)
    outcome = JobOutcome(
        job_id=mint(),
        status="rejected",
        source=source.name,
        mode=source.mode,
        file=drop.name,
        encoding=None,
        counts=Counts(),
        messages=checked.problems,
    )
    validated = checked.validated
    if validated is None:
        return outcome, None
    errors = validated.errors
    outcome = replace(
        outcome,
        status="invalid" if errors else "valid",
        encoding=validated.table.encoding,
        counts=counts_of(validated),
        messages=validated.notices,
        row_errors=errors[:SHOWN_ROW_ERRORS],
        row_error_total=len(errors),
    )
    return outcome, (errors_csv_bytes(validated, errors) if errors else None)


def fresh_job_id() -> str:
    """An ID from the wall clock, for `syncd validate`, which has no runtime."""
    return new_job_id(time.time_ns() // 1_000_000, secrets.token_bytes(2))
