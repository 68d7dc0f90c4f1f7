"""Taking a file in: read and validate it, the half of every job that needs no database.

`syncd validate` runs only this (and so starts without loading the database layer);
`syncd.flow` builds the rest of the flow on it. Reading also settles which columns are
secret (`syncd.core.secrets`), so every later copy, message and report can leave them out,
even for a file rejected before it was validated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from syncd.config import Config, SourceConfig
from syncd.core.counts import Counts
from syncd.core.errors_csv import render_errors_csv
from syncd.core.formula import undo
from syncd.core.profile import Mode, Profile
from syncd.core.reading import (
    PART_BYTES,
    FileParts,
    NotInParts,
    ReadOptions,
    read_table,
    sniff_header,
)
from syncd.core.records import Validated
from syncd.core.secrets import password_header_below, secret_columns
from syncd.core.table import (
    HEADER_SEARCH_ROWS,
    ROW,
    RawTable,
    is_errors_header,
    normalise_header,
)
from syncd.core.validation import validate, validate_parts
from syncd.errors import FileRejected
from syncd.outcome import JobOutcome

Progress = Callable[[str], None]

#: How many row errors a job outcome carries for display (all are stored).
SHOWN_ROW_ERRORS = 20

#: What the job and its report say when an errors CSV comes back to a full-mode source.
ERRORS_CSV_IS_PARTIAL = (
    "this file carries an errors column (an errors CSV sent back), so it was applied as "
    "partial: it creates and updates users, and archives nobody"
)


def quiet(_stage: str) -> None:
    return None


class Drop:
    """A file handed to syncd: its name as the sender gave it, and its bytes.

    A job takes the bytes over (`take`): a million-row file is 140 MB, and whoever
    handed it in (the CLI, the daemon) must not keep a second hold on it while the job
    runs. `path` is where the same bytes lie on disk, when they do (the daemon's spool, a
    staged upload, the file named on the command line): the job then reads its copy for
    support from there and lets go of the bytes once they are parsed. `sha256` is their
    digest when whoever wrote them there hashed them as they came (the spool does).
    """

    __slots__ = ("_data", "_sha256", "name", "path")

    def __init__(
        self, name: str, data: bytes, path: Path | None = None, sha256: str | None = None
    ) -> None:
        self.name = name
        self._data: bytes | None = data
        self.path = path
        self._sha256 = sha256

    @property
    def data(self) -> bytes:
        if self._data is None:
            raise RuntimeError(f"the bytes of {self.name} were handed to a job already")
        return self._data

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.data).hexdigest()
        return self._sha256

    def take(self) -> bytes:
        """The bytes, which this drop no longer holds."""
        data, self._data = self.data, None
        return data

    def give_back(self, data: bytes) -> None:
        """Hold the bytes again, handed back by a reader that took them and did not
        read the file after all (`check_in_parts`)."""
        if self._data is not None:
            raise RuntimeError(f"the bytes of {self.name} are here already")
        self._data = data


@dataclass(slots=True)
class Checked:
    """A file read and validated, or the reason it was rejected whole.

    `table` is the file as read, when it could be read (its secret columns set);
    `header` its header as far as it could be made out, for a file that could not be
    read (None when not even that). `password_below`: the columns did not fit, and a row
    under the header reads as a header naming a password (`password_header_below`): the
    file is kept as one whose columns could not be read.

    A job takes the validated file over (`take`), as it takes a drop's bytes: it lets go
    of the cells and then the records as soon as it is done with each (hundreds of MiB
    at a million rows), which it could not while this still held them.
    """

    validated: Validated | None
    table: RawTable | None = None
    header: tuple[str, ...] | None = None
    problems: tuple[str, ...] = ()
    rejection: str = ""
    password_below: bool = False

    def take(self) -> Validated:
        """The validated file, which this no longer holds (nor its table)."""
        validated, self.validated, self.table = self.validated, None, None
        if validated is None:
            raise RuntimeError("nothing validated to take: rejected, or taken already")
        return validated


def read_options(profile: Profile) -> ReadOptions:
    return ReadOptions(
        delimiter=profile.delimiter,
        encoding=profile.encoding,
        fallback_encoding=profile.fallback_encoding,
        header=profile.header,
        max_bytes=profile.max_bytes,
        max_rows=profile.max_rows,
        header_test=_header_test(profile),
    )


def _header_test(profile: Profile) -> Callable[[Sequence[str]], bool]:
    """Whether a record reads as `profile`'s header: it names the key column and, if it
    has more than one cell, another of the profile's columns too."""
    key = profile.column(profile.key)
    keys = {normalise_header(n) for n in key.names} if key is not None else set()
    known = {normalise_header(n) for column in profile.columns for n in column.names}

    def test(record: Sequence[str]) -> bool:
        named = [normalise_header(undo(cell)) for cell in record if cell.strip()]
        if not keys.intersection(named):
            return False
        return len(named) == 1 or sum(name in known for name in named) >= 2

    return test


def _header_names(profile: Profile) -> list[str] | None:
    return None if profile.header else [c.header for c in profile.columns]


def password_names(profile: Profile) -> tuple[str, ...]:
    """Every header the profile reads as its password column."""
    column = profile.column("password")
    return () if column is None else column.names


def secrets_of(header: tuple[str, ...] | None, profile: Profile) -> frozenset[int] | None:
    """The secret columns of a file with this header; None when the header is unknown."""
    return None if header is None else secret_columns(header, password_names(profile))


def effective_mode(requested: Mode, header: tuple[str, ...] | None) -> tuple[Mode, str | None]:
    """The mode a file is applied in, and why if not as requested: an errors CSV sent
    back holds only the rows that failed, so it never archives the users missing from it."""
    if requested == "full" and header is not None and any(is_errors_header(h) for h in header):
        return "partial", ERRORS_CSV_IS_PARTIAL
    return requested, None


def sniffed_header(profile: Profile, data: bytes) -> tuple[str, ...] | None:
    """The header of a file as far as its first 64 KiB tell (see `sniff_header`)."""
    return sniff_header(data, read_options(profile), _header_names(profile))


def read_file(profile: Profile, data: bytes) -> RawTable:
    """A file's bytes read as `profile` says, its secret columns set; FileRejected if
    it cannot be read."""
    table = read_table(data, read_options(profile), header_names=_header_names(profile))
    return replace(table, secret_columns=secret_columns(table.header, password_names(profile)))


def check(
    config: Config,
    profile: Profile,
    drop: Drop,
    progress: Progress = quiet,
    *,
    keep_records: bool = True,
    flag_failed: bool = False,
) -> Checked:
    """Read and validate a file: the pure half of every job. Takes the drop's bytes.

    Without `keep_records` the valid rows are only counted; with `flag_failed` the
    failed rows stay in the records, flagged (see `validate`).
    """
    data = drop.take()
    try:
        progress("reading")
        table = read_file(profile, data)
    except FileRejected as rejected:
        header = sniffed_header(profile, data)
        return Checked(
            None,
            header=header,
            problems=(rejected.message, *rejected.problems),
            rejection=rejected.message,
        )
    # Once read into the table the bytes are let go (the caller handed them over).
    del data
    try:
        progress("validating")
        validated = validate(
            table, profile, config.directory, keep_records=keep_records, flag_failed=flag_failed
        )
        return Checked(validated, table=table)
    except FileRejected as rejected:
        return Checked(
            None,
            table=table,
            problems=(rejected.message, *rejected.problems),
            rejection=rejected.message,
            password_below=password_header_below(table, password_names(profile)),
        )


#: From this size on (about 1,800,000 rows of a 12-column export) `syncd validate`
#: reads and checks a file in parts, when it can (`syncd.core.reading.FileParts`): its
#: memory then grows by the file's bytes alone, and it runs no slower. A smaller file is
#: read whole, which is faster for it (a tenth at a million rows; a third with repeats,
#: whose parts are read twice) and takes at most about 1 GiB.
PARTS_FROM_BYTES = 256 * 1024 * 1024


def check_in_parts(
    config: Config,
    profile: Profile,
    drop: Drop,
    progress: Progress = quiet,
    *,
    part_bytes: int = PART_BYTES,
) -> Checked | None:
    """`check(keep_records=False)` of a file read a part at a time: the same errors and
    counts, one part's cells in memory at a time, and a table holding only the failed
    rows' cells. None when the file is not one that can be read in parts (see
    `FileParts`): the drop has its bytes back, for `check` to read the file whole.

    Takes the drop's bytes, as `check` does: a file whose text starts after a BOM or a
    `sep=` line is then held once, as its text (`FileParts.given`)."""
    names = password_names(profile)
    data = drop.take()
    try:
        parts = FileParts(data, read_options(profile), part_bytes)
    except NotInParts:
        drop.give_back(data)
        return None
    del data
    heads: list[RawTable] = []

    def tables(read: Iterator[RawTable]) -> Iterator[RawTable]:
        for table in read:
            table = replace(table, secret_columns=secret_columns(table.header, names))
            if sum(h.cells.height for h in heads) < HEADER_SEARCH_ROWS:
                # The first rows, in case the header is refused (`password_header_below`).
                first = table.cells[ROW].head(HEADER_SEARCH_ROWS).to_list()
                heads.append(table.keep_rows(set(first)))
            yield table
            del table  # not held while the next part is read

    read = tables(iter(parts))
    progress("validating")
    try:
        validated = validate_parts(read, parts.rows, profile, config.directory)
    except NotInParts:
        drop.give_back(parts.given())
        return None
    except FileRejected as rejected:
        try:  # the rest is read through: reading it whole might refuse it first
            for _ in read:
                pass
        except NotInParts:
            drop.give_back(parts.given())
            return None
        cells = pl.concat([h.cells for h in heads]).head(HEADER_SEARCH_ROWS)
        head = replace(heads[0], cells=cells)
        return Checked(
            None,
            table=head,
            problems=(rejected.message, *rejected.problems),
            rejection=rejected.message,
            password_below=password_header_below(head, names),
        )
    return Checked(validated, table=validated.table)


def counts_of(validated: Validated | None) -> Counts:
    """The counts of a file validated but not planned (or rejected)."""
    if validated is None:
        return Counts()
    return Counts(rows=validated.rows, valid=validated.valid, invalid=validated.invalid)


def rejected(source: SourceConfig, file: str, mode: Mode, messages: tuple[str, ...]) -> JobOutcome:
    """The outcome of a file rejected whole, not stored (no job ID)."""
    return JobOutcome(
        job_id=None,
        status="rejected",
        source=source.name,
        mode=mode,
        file=file,
        encoding=None,
        counts=Counts(),
        messages=messages,
    )


def validate_file(
    config: Config, source: SourceConfig, drop: Drop, *, progress: Progress = quiet
) -> tuple[JobOutcome, bytes | None]:
    """`syncd validate`: the outcome and the errors CSV (None when every row is valid).

    Nothing is stored, so the outcome has no job ID: an ID syncd prints is one support
    can look up.
    """
    profile = config.profiles[source.profile]
    checked = None
    if len(drop.data) >= PARTS_FROM_BYTES:
        checked = check_in_parts(config, profile, drop, progress)
    if checked is None:
        checked = check(config, profile, drop, progress, keep_records=False)
    mode, note = effective_mode(
        source.mode, checked.table.header if checked.table else checked.header
    )
    outcome = rejected(source, drop.name, mode, checked.problems)
    validated = checked.validated
    if validated is None:
        return outcome, None
    errors = validated.errors
    outcome = replace(
        outcome,
        status="invalid" if errors else "valid",
        encoding=validated.table.encoding,
        counts=counts_of(validated),
        messages=(*((note,) if note else ()), *validated.notices),
        row_errors=errors[:SHOWN_ROW_ERRORS],
        row_error_total=len(errors),
    )
    return outcome, (render_errors_csv(validated.table, errors) if errors else None)
