"""What syncd keeps of a file it was sent: the copy retained for support, and the copy a
source settles into processed/ or failed/; never a password.

A file without secret columns (`syncd.core.secrets`) is kept as it came. A file with some
is kept as a rewrite with those cells blanked: on a row with more cells than the header,
every cell from the first secret column on, since a split password spills to the right.
A file rejected before its columns could be read is retained only when its first line
shows no secret column; a file that is not text at all is not retained.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from syncd.core.secrets import redacted
from syncd.core.table import RawTable
from syncd.packing import pack, packer
from syncd.sources.spool import FileChanged

Kept = Literal["original", "redacted", "none"]

#: Why a file was not retained, for the job's messages.
NOT_KEPT = (
    "the file was not kept for support: it was rejected before its columns could be read, "
    "so it may hold passwords"
)


@dataclass(frozen=True, slots=True)
class KeepPlan:
    """How a file is kept: as it came, redacted from `table`, or not at all."""

    kind: Kept
    table: RawTable | None = None


def keep_plan(table: RawTable | None, secrets: frozenset[int] | None) -> KeepPlan:
    """How to keep a file read as `table` (or, not read, whose header showed `secrets`;
    None: not even a header could be made out)."""
    if table is not None:
        return KeepPlan("redacted", table) if table.secret_columns else KeepPlan("original")
    if secrets is None or secrets:
        return KeepPlan("none")
    return KeepPlan("original")


def redacted_copy(table: RawTable) -> bytes:
    """The table back to CSV text (UTF-8, the input's delimiter, CRLF), every row, secret
    cells blanked; compressed for keeping (`syncd.packing`)."""
    table = redacted(table)
    frame = table.cells.select(table.column_name(i) for i in range(len(table.header)))
    head = io.StringIO()
    if table.has_header:
        csv.writer(head, delimiter=table.delimiter, lineterminator="\r\n").writerow(table.header)
    rows = frame.write_csv(include_header=False, separator=table.delimiter, line_terminator="\r\n")
    text = head.getvalue() + rows
    return pack(text.encode("utf-8"))


#: How much of a file `compressed_file` reads at a time.
_PART = 1024 * 1024


def compressed_file(path: Path, sha256: str) -> bytes:
    """The file at `path` compressed for keeping (`syncd.packing`), read a part at a
    time: a job whose file lies on disk need not keep its bytes in memory for this copy
    (at 5,000,000 rows, 700 MB held through validation). FileChanged unless the file
    still holds the bytes whose SHA-256 is `sha256`, the ones the job read."""
    digest = hashlib.sha256()
    packing = packer()
    out = io.BytesIO()
    with path.open("rb") as source:
        while part := source.read(_PART):
            digest.update(part)
            out.write(packing.compress(part))
    out.write(packing.flush())
    if digest.hexdigest() != sha256:
        raise _changed(path)
    return out.getvalue()


def file_bytes(path: Path, sha256: str) -> bytes:
    """The bytes of the file at `path`; FileChanged unless they are still the ones whose
    SHA-256 is `sha256`."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise _changed(path)
    return data


def _changed(path: Path) -> FileChanged:
    return FileChanged(
        f"{path.name} changed on disk while syncd was processing it, so what was read "
        "cannot be told from what is there now; nothing was applied; send the file "
        "again once it is complete"
    )
