"""A clear password is never kept: whatever shape the file is in (title lines above its
header, Excel's `sep=` line, any delimiter, a cell too many, its key column missing), no
password of it is in what a job stores (the copy kept for support, its messages and row
errors), in its errors CSV or in its outcome."""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from syncd import flow
from syncd.config import load_config
from syncd.intake import Drop
from syncd.packing import unpack
from syncd.runtime import Runtime, open_runtime


@contextmanager
def _runtime() -> Iterator[Runtime]:
    """A runtime on a database of its own: each file's job is looked at alone."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = root / "syncd.toml"
        config.write_text(
            f'state_dir = "{root / "state"}"\n'
            '[[sources]]\nname = "drop"\nkind = "local"\npath = "unused"\nmode = "partial"\n',
            encoding="utf-8",
        )
        runtime = open_runtime(load_config(config))
        try:
            yield runtime
        finally:
            runtime.engine.dispose()


def _stored(rt: Runtime) -> list[str]:
    """Everything the jobs stored that support could read, as text."""
    with rt.engine.connect() as conn:
        copies = [unpack(r[0]) for r in conn.execute(text("SELECT content FROM retained_files"))]
        files = [bytes(r[0]) for r in conn.execute(text("SELECT content FROM job_files"))]
        messages = [str(r[0]) for r in conn.execute(text("SELECT messages FROM jobs"))]
        errors = [str(r[0]) for r in conn.execute(text("SELECT message FROM row_errors"))]
    kept = [gzip.decompress(f) if f[:2] == b"\x1f\x8b" else f for f in files]
    return [b.decode("utf-8", "replace") for b in (*copies, *kept)] + messages + errors


_TITLES = st.lists(
    st.sampled_from(["Employee export", "Report: users, 2026-12-01", ""]), max_size=3
)
_PASSWORD_HEADERS = st.sampled_from(["Password", "passwd", "Mot de passe", "User Password"])
_OTHER_HEADERS = st.lists(
    st.sampled_from(["First Name", "Last Name", "Role", "Department"]), max_size=3, unique=True
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    titles=_TITLES,
    sep_line=st.booleans(),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    with_key=st.integers(0, 4),
    password_header=_PASSWORD_HEADERS,
    others=_OTHER_HEADERS,
    where=st.integers(0, 4),
    rows=st.integers(1, 4),
    ragged=st.booleans(),
    encoding=st.sampled_from(["utf-8", "cp1252"]),
    tokens=st.lists(
        st.text("ABCDEFGHJKMNPQRSTVWXYZ", min_size=8, max_size=8),
        min_size=4,
        max_size=4,
        unique=True,
    ),
)
def test_no_password_of_any_file_is_kept(
    tmp_path: Path,
    titles: list[str],
    sep_line: bool,
    delimiter: str,
    with_key: int,
    password_header: str,
    others: list[str],
    where: int,
    rows: int,
    ragged: bool,
    encoding: str,
    tokens: list[str],
) -> None:
    header = (["Email"] if with_key else []) + others
    at = min(where, len(header))
    header.insert(at, password_header)
    passwords = [f"pw{token}" for token in tokens[:rows]]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for title in titles:
        writer.writerow([title] if title else [])
    writer.writerow(header)
    for n, password in enumerate(passwords):
        row = [f"Zoë{n}" for _ in header]
        if with_key:
            row[header.index("Email")] = f"user{n}@example.com"
        row[at] = password
        if ragged and n == 0:
            row[at] = password[:5]
            row.insert(at + 1, password[5:])  # a password split by an unquoted delimiter
        writer.writerow(row)
    body = ("sep=" + delimiter + "\r\n" if sep_line else "") + out.getvalue()
    data = body.encode(encoding)
    path = tmp_path / "export.csv"
    path.write_bytes(data)

    with _runtime() as rt:
        outcome = flow.run_job(rt, rt.config.sources[0], Drop("export.csv", data, path=path))
        stored = _stored(rt)
        if outcome.errors_csv:
            stored.append(Path(outcome.errors_csv).read_text("utf-8"))
    shown = [*outcome.messages, *(f"{e.column} {e.message}" for e in outcome.row_errors)]
    for found in (*shown, *stored):
        for password in passwords:
            for part in (password[:5], password[5:]):
                assert part not in found, (password, found[:1000])
