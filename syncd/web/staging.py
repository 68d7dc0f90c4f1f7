"""Files uploaded through the back office, kept in their own spool (`state_dir/uploads`)
from the upload to the job that applies them.

An upload is streamed from the request into the spool as it arrives (never whole in
memory), with the byte cap of the source's profile (`max_bytes`): the same `Spool` the
daemon fetches into, pushed chunk by chunk. Beside each file, a small JSON record says
what it is and how far it got: its source and mode, who sent it, the column mapping
chosen, the preview shown (and what it was planned against), the job that applied it.
Uploads left for a day are removed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from syncd.core.profile import Mode
from syncd.intake import Drop
from syncd.sources.spool import FileTooLarge, Receiving, Spool

UPLOAD_ID = re.compile(r"[0-9a-f]{24}")
KEPT = timedelta(days=1)
#: A form field other than the file is a short word (a source name, a mode).
FIELD_BYTES = 1024
#: The first bytes of a file tell its header (`syncd.intake.sniffed_header`).
HEAD_BYTES = 64 * 1024


@dataclass(slots=True)
class Staged:
    """One upload and how far it got."""

    id: str
    source: str
    mode: Mode
    name: str  # as the sender named it: shown, never used as a path
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: str  # ISO 8601
    mapping: dict[str, str] = field(default_factory=dict)  # file header -> field
    preview: dict[str, Any] | None = None
    job_id: str | None = None


class Uploads:
    """The uploads spool: `<id>` (the bytes) and `<id>.json` (a `Staged`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.spool = Spool(folder)

    def data_path(self, upload_id: str) -> Path:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise HTTPException(404, "no such upload")
        return self.folder / upload_id

    def load(self, upload_id: str) -> Staged:
        record = self.data_path(upload_id).with_suffix(".json")
        try:
            return Staged(**json.loads(record.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise HTTPException(
                404, "no such upload: it was applied or dropped, or is over a day old"
            ) from None

    def save(self, staged: Staged) -> None:
        record = self.data_path(staged.id).with_suffix(".json")
        temporary = record.with_name(f".{record.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(staged), out, ensure_ascii=False)
        os.replace(temporary, record)

    def head(self, upload_id: str) -> bytes:
        with self.data_path(upload_id).open("rb") as handle:
            return handle.read(HEAD_BYTES)

    def drop(self, staged: Staged) -> Drop:
        """The upload as a job takes it: its bytes, where they lie, their digest."""
        path = self.data_path(staged.id)
        return Drop(staged.name, path.read_bytes(), path=path, sha256=staged.sha256)

    def pending(self) -> list[Staged]:
        """Uploads not applied yet, newest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for record in self.folder.glob("*.json"):
            staged = self.load(record.stem)
            if staged.job_id is None:
                found.append(staged)
        return sorted(found, key=lambda s: s.uploaded_at, reverse=True)

    def purge(self, now: datetime) -> None:
        """Remove uploads older than `KEPT`, and what a broken upload left."""
        self.spool.clear()
        if not self.folder.is_dir():
            return
        for record in self.folder.glob("*.json"):
            staged = self.load(record.stem)
            if now - datetime.fromisoformat(staged.uploaded_at) > KEPT:
                self.data_path(staged.id).unlink(missing_ok=True)
                record.unlink(missing_ok=True)


@dataclass(slots=True)
class Received:
    """What the upload form sent: its fields, and the file as spooled."""

    fields: dict[str, str]
    file_name: str
    upload_id: str
    size: int
    sha256: str


class _Form:
    """python-multipart's callbacks: short fields kept, the one file streamed to the
    spool (its cap decided by the fields before it, or `cap` if none)."""

    def __init__(self, spool: Spool, upload_id: str, caps: Mapping[str, int], cap: int) -> None:
        self.spool, self.upload_id, self.caps, self.cap = spool, upload_id, caps, cap
        self.fields: dict[str, str] = {}
        self.file_name: str | None = None
        self.receiving: Receiving | None = None
        self.pending: list[bytes] = []
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._is_file = False
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._disposition, self._is_file, self._data = b"", False, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if b"filename" in options and self._name == "file":
            if self.receiving is not None:
                raise HTTPException(400, "send one file at a time")
            self._is_file = True
            self.file_name = options[b"filename"].decode("utf-8", errors="replace")
            cap = self.caps.get(self.fields.get("source", ""), self.cap)
            self.receiving = self.spool.open(self.upload_id, cap=cap)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.pending.append(data[start:end])
            return
        self._data += data[start:end]
        if len(self._data) > FIELD_BYTES:
            raise HTTPException(400, f"the form field {self._name!r} is too long")

    def on_part_end(self) -> None:
        if not self._is_file and self._name:
            self.fields[self._name] = self._data.decode("utf-8", errors="replace")

    def callbacks(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in (
                "on_part_begin",
                "on_part_data",
                "on_part_end",
                "on_header_field",
                "on_header_value",
                "on_header_end",
                "on_headers_finished",
            )
        }


async def receive_upload(
    uploads: Uploads, content_type: str, stream: AsyncIterator[bytes], caps: Mapping[str, int]
) -> Received:
    """Stream a `multipart/form-data` upload (fields `source`, `mode` and `file`) into
    the spool; FileTooLarge past the chosen source's cap, nothing kept then."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(400, "send the file with the upload form (multipart/form-data)")
    upload_id = secrets.token_hex(12)
    form = _Form(uploads.spool, upload_id, caps, max(caps.values(), default=1))
    uploads.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    parser = MultipartParser(params[b"boundary"], form.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            parser.write(chunk)
            if form.pending and form.receiving is not None:
                chunks, form.pending = form.pending, []
                await run_in_threadpool(_write_all, form.receiving, chunks)
        parser.finalize()
    except BaseException:
        if form.receiving is not None:
            form.receiving.abort()
        raise
    if form.receiving is None or form.file_name is None:
        raise HTTPException(400, "choose a file to upload")
    source = form.fields.get("source", "")
    if source in caps and form.receiving.size > caps[source]:
        form.receiving.abort()
        raise FileTooLarge(
            f"the file is larger than the {caps[source]:,} bytes source {source} allows; "
            "split it, or raise max_bytes in its profile"
        )
    spooled = await run_in_threadpool(form.receiving.finish)
    return Received(form.fields, form.file_name, upload_id, spooled.size, spooled.sha256)


def _write_all(receiving: Receiving, chunks: list[bytes]) -> None:
    for chunk in chunks:
        receiving.write(chunk)
