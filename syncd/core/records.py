"""Validated records: the typed, normalised rows that the planner consumes.

`Validated.records` is a polars DataFrame of the valid rows only. Its columns:

- `_row` (UInt32): the spreadsheet row number, as in `RawTable`.
- `key` (String): the profile's key, normalised: an email key is lower-cased whole
  (emails compare case-insensitively), an employee ID is stripped of surrounding space.
- `status` (String): always present, `"active"` or `"archived"`; from a `status` column
  (Active/Archived), an `active` column (true/false), else `"active"`.
- one column per directory field the file carries (`Validated.fields`), holding its
  normalised value; a blank cell is null:
  - `employee_id`, `first_name`, `last_name`, `display_name`, `company_id` (String, stripped);
  - `email` (String): stripped, domain lower-cased, local part as given;
  - `role` (String): the canonical configured spelling;
  - `groups`, `labels`, `labels_id`, `source_usernames` (List(String)): items stripped,
    empty items dropped; groups in their configured spelling; `none` gives an empty
    list; source usernames as `source:username` with the source lower-cased;
  - `password` (String): the clear password, only ever in memory; it is hashed in apply.
  A `full_name` column fills `display_name` (unless the file also has `display_name`).
- one column per custom field, named `field:<name>` (String): the canonical text of the
  value: select -> canonical option, date -> `yyyy-mm-dd`, boolean -> `true`/`false`,
  integer -> decimal digits, number -> shortest decimal, list -> items joined by `|`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from syncd.core.table import RawTable, RowError

CUSTOM_PREFIX = "field:"
#: The column flagging the failed rows of records that still hold them (`validate`'s
#: `flag_failed`).
FAILED = "_failed"


@dataclass(frozen=True, slots=True)
class Validated:
    """The outcome of validating one file against a profile."""

    table: RawTable
    records: pl.DataFrame
    fields: tuple[str, ...]  # directory fields present, e.g. ("email", "first_name", "field:dept")
    errors: tuple[RowError, ...]  # every row problem, structural ones included, by row
    invalid_keys: tuple[str, ...]  # normalised keys that could be read on invalid rows
    unreadable_keys: int  # invalid rows whose key could not be read at all
    notices: tuple[str, ...] = ()
    #: field name (as in `fields`) -> the header it came from in the file, so later
    #: stages (the planner's email-conflict check) can name the column as the user wrote it
    headers: Mapping[str, str] = field(default_factory=dict)
    #: the header of the key column as the file has it
    key_header: str = "key"
    #: how many rows are valid, where `records` does not hold exactly them: not kept
    #: (`validate(keep_records=False)`), or the failed rows flagged (`FAILED`); None: as
    #: many as `records` holds
    valid_rows: int | None = None

    @property
    def rows(self) -> int:
        return self.table.rows

    @property
    def invalid(self) -> int:
        return len({e.row for e in self.errors})

    @property
    def valid(self) -> int:
        return self.records.height if self.valid_rows is None else self.valid_rows


def take_valid(records: pl.DataFrame) -> pl.DataFrame:
    """The valid rows of records whose failed rows are flagged (`FAILED`); as they are
    when none is.

    Takes `records` over: its columns are moved out and filtered one at a time, so that
    once the file's cells are gone at most one column is held twice. (A filter of the
    whole frame copies every column before letting go of any: 16 bytes a cell, 1 GiB for
    a file of 5,000,000 rows with errors.)
    """
    if FAILED not in records.columns:
        return records
    keep = ~records.drop_in_place(FAILED)
    return pl.DataFrame([records.drop_in_place(name).filter(keep) for name in records.columns])
