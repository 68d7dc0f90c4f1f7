"""What a held job keeps, so that approving it applies exactly what was validated.

When the guard holds a job, syncd stores with it: its records (every valid row, typed and
normalised, with password tags and no clear password), the cells of every row with the
secret cells blanked (for the errors CSV, should approval refuse more rows), and what
validation found (fields, headers, row errors, the keys of invalid rows). Approval plans
with exactly these against the directory as it is then: nothing is read or validated
again, so neither a changed profile nor an expired retained copy changes what a person
approves. New passwords wait as argon2 hashes (`store.hold_plan`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import polars as pl

from syncd.core.records import Validated
from syncd.core.secrets import redacted
from syncd.core.table import RawTable, RowError

RECORDS = "held-records"
CELLS = "held-cells"
FACTS = "held-facts"
#: Every job file a held job keeps, dropped once it is decided.
FILES = (RECORDS, CELLS, FACTS)
#: The guard's reasons for holding it (jobs held by an older syncd have none), shown
#: to whoever decides; dropped with the rest.
THRESHOLDS = "held-thresholds"


def thresholds(reasons: tuple[str, ...]) -> bytes:
    return json.dumps(list(reasons), ensure_ascii=False).encode("utf-8")


def read_thresholds(content: bytes | None) -> tuple[str, ...] | None:
    """The reasons `thresholds` kept; None when none were kept."""
    return None if content is None else tuple(json.loads(content))


def _ipc(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_ipc(out, compression="zstd")
    return out.getvalue()


def freeze(validated: Validated) -> dict[str, bytes]:
    """A held job's files. `validated.table` holds every row's cells, and its records
    their password tags (`password_tag`)."""
    records = validated.records
    if "password" in records.columns and "password_tag" not in records.columns:
        raise ValueError("records carry passwords but no password_tag")
    table = redacted(validated.table)
    facts: dict[str, Any] = {
        "fields": list(validated.fields),
        "headers": dict(validated.headers),
        "key_header": validated.key_header,
        "errors": [[e.row, e.column, e.message] for e in validated.errors],
        "invalid_keys": list(validated.invalid_keys),
        "unreadable_keys": validated.unreadable_keys,
        "notices": list(validated.notices),
        "table": {
            "header": list(table.header),
            "encoding": table.encoding,
            "delimiter": table.delimiter,
            "has_header": table.has_header,
            "row_errors": [[e.row, e.column, e.message] for e in table.row_errors],
            "notices": list(table.notices),
            "overflow": [[row, list(cells)] for row, cells in table.overflow.items()],
            "guessed_encoding": table.guessed_encoding,
            "cut_row": table.cut_row,
            "secret_columns": sorted(table.secret_columns),
        },
    }
    return {
        RECORDS: _ipc(records.drop("password", strict=False)),
        CELLS: _ipc(table.cells),
        FACTS: json.dumps(facts, ensure_ascii=False).encode("utf-8"),
    }


def thaw(files: Mapping[str, bytes]) -> Validated:
    """The Validated a held job was held with (records carry password tags, not passwords)."""
    facts = json.loads(files[FACTS])
    shape = facts["table"]
    table = RawTable(
        header=tuple(shape["header"]),
        cells=pl.read_ipc(io.BytesIO(files[CELLS])),
        encoding=shape["encoding"],
        delimiter=shape["delimiter"],
        has_header=shape["has_header"],
        row_errors=tuple(RowError(*e) for e in shape["row_errors"]),
        notices=tuple(shape["notices"]),
        overflow={row: tuple(cells) for row, cells in shape["overflow"]},
        guessed_encoding=shape["guessed_encoding"],
        cut_row=shape["cut_row"],
        secret_columns=frozenset(shape["secret_columns"]),
    )
    return Validated(
        table=table,
        records=pl.read_ipc(io.BytesIO(files[RECORDS])),
        fields=tuple(facts["fields"]),
        errors=tuple(RowError(*e) for e in facts["errors"]),
        invalid_keys=tuple(facts["invalid_keys"]),
        unreadable_keys=facts["unreadable_keys"],
        notices=tuple(facts["notices"]),
        headers=facts["headers"],
        key_header=facts["key_header"],
    )
