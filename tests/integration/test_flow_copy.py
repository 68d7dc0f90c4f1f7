"""The copy a job keeps of a file that lies on disk is read from the disk, so the job can
let go of the file's bytes once they are parsed; a file that changed there meanwhile is
rejected, never kept (or held for approval) as something other than what was read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd import flow, store
from syncd.config import load_config
from syncd.intake import Drop
from syncd.packing import unpack
from syncd.retention import compressed_file
from syncd.runtime import Runtime, open_runtime
from syncd.sources.spool import FileChanged

ROWS = "Email,First Name\r\nann@example.com,Ann\r\nbo@example.com,Bo\r\n"


def _runtime(tmp_path: Path, profile: str, url: str | None = None) -> Runtime:
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        + (f'[database]\nurl = "{url}"\n' if url else "")
        + '[[sources]]\nname = "hr"\nkind = "local"\npath = "unused"\n'
        f'profile = "{profile}"\nmode = "full"\n',
        encoding="utf-8",
    )
    return open_runtime(load_config(config))


@pytest.fixture
def rt(tmp_path: Path, db_url: str) -> Iterator[Runtime]:
    """On each database: each stores the copy kept for support its own way."""
    runtime = _runtime(tmp_path, "default", db_url)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def hr(tmp_path: Path) -> Iterator[Runtime]:
    """Keyed on Employee ID: a row can claim an email another user keeps."""
    runtime = _runtime(tmp_path, "hr_full")
    yield runtime
    runtime.engine.dispose()


def _users(rt: Runtime) -> list[str]:
    with rt.engine.connect() as conn:
        return sorted(u.email or "" for u in store.list_users(conn))


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3 * 1024 * 1024))
def test_a_file_compressed_from_disk_is_the_file(tmp_path: Path, content: bytes) -> None:
    """Whatever the bytes (empty, one part, several 1 MiB parts), the copy decompresses
    to them exactly; any other SHA-256 than theirs is a changed file."""
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    assert unpack(compressed_file(path, digest)) == content
    with pytest.raises(FileChanged):
        compressed_file(path, "0" * 64)


def test_a_file_on_disk_is_kept_for_support_as_it_came(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_bytes(ROWS.encode())
    outcome = flow.run_job(rt, rt.config.sources[0], Drop("hr.csv", ROWS.encode(), path=path))
    assert outcome.status == "applied"
    with rt.engine.connect() as conn:
        kept = store.retained_file(conn, outcome.job_id or "")
    assert kept is not None
    assert unpack(kept.content) == ROWS.encode()


def test_a_job_that_fails_after_reading_its_file_keeps_the_copy(
    rt: Runtime, tmp_path: Path
) -> None:
    """A job that crashes once its file is read (here: in a plan check) is recorded
    rejected, nothing applied, with the copy kept for support as read."""
    path = tmp_path / "hr.csv"
    path.write_bytes(ROWS.encode())

    def crash(*_: object) -> None:
        raise RuntimeError("a bug")

    drop = Drop("hr.csv", ROWS.encode(), path=path)
    with pytest.raises(RuntimeError, match="a bug"):  # recorded, then raised on
        flow.run_job(rt, rt.config.sources[0], drop, check_plan=crash)
    assert _users(rt) == []
    with rt.engine.connect() as conn:
        [job] = store.list_jobs(conn)
        kept = store.retained_file(conn, job.id)
    assert job.status == "rejected"
    assert "syncd failed while processing this file" in job.messages[0]
    assert kept is not None
    assert unpack(kept.content) == ROWS.encode()


@pytest.mark.parametrize(
    "on_disk",
    [
        ROWS.replace("Bo", "Bob"),  # edited
        ROWS + "cy@example.com,Cy\r\n",  # still being written
        "",  # emptied
    ],
)
def test_a_file_changed_on_disk_under_its_job_is_rejected_with_nothing_applied(
    rt: Runtime, tmp_path: Path, on_disk: str
) -> None:
    """What the job read is not what the disk holds when the job makes its copy: the job
    ends rejected, saying so and what to do, and no user is created."""
    path = tmp_path / "hr.csv"
    path.write_bytes(on_disk.encode())
    outcome = flow.run_job(rt, rt.config.sources[0], Drop("hr.csv", ROWS.encode(), path=path))
    assert outcome.status == "rejected"
    assert outcome.exit_code == 2
    assert "hr.csv changed on disk while syncd was processing it" in outcome.messages[0]
    assert "send the file again" in outcome.messages[0]
    assert _users(rt) == []
    with rt.engine.connect() as conn:
        job = store.get_job(conn, outcome.job_id or "")
        kept = store.retained_file(conn, outcome.job_id or "")
    assert job is not None
    assert (job.status, job.messages) == ("rejected", outcome.messages)
    assert kept is None, "no copy of what was never read"


def test_a_file_changed_on_disk_is_never_held_for_approval(rt: Runtime, tmp_path: Path) -> None:
    """A job held by the guard keeps the cells approval will apply, read again from its
    copy: from a file changed on disk they would not be the cells validated, so the job
    is rejected instead, and nothing waits for approval."""
    everyone = "Email,First Name\r\n" + "".join(f"u{i}@example.com,U{i}\r\n" for i in range(20))
    first = flow.run_job(rt, rt.config.sources[0], Drop("hr.csv", everyone.encode()))
    assert first.counts.created == 20
    few = "Email,First Name\r\nu0@example.com,U0\r\n"  # would archive 19 of 20: held
    path = tmp_path / "hr.csv"
    path.write_bytes(few.replace("U0", "Someone Else").encode())
    outcome = flow.run_job(rt, rt.config.sources[0], Drop("hr.csv", few.encode(), path=path))
    assert outcome.status == "rejected"
    assert "changed on disk" in outcome.messages[0]
    assert len(_users(rt)) == 20
    with rt.engine.connect() as conn:
        assert [j.status for j in store.list_jobs(conn)] == ["rejected", "applied"]

    path.write_bytes(few.encode())  # the file as it was read: held, as the guard says
    held = flow.run_job(rt, rt.config.sources[0], Drop("hr.csv", few.encode(), path=path))
    assert held.status == "held"


@pytest.mark.parametrize("changed", [False, True], ids=["as read", "changed since"])
def test_a_dry_run_reads_the_refused_rows_cells_again_from_the_disk(
    hr: Runtime, tmp_path: Path, changed: bool
) -> None:
    """A dry run keeps no copy of the file; the cells of a row the planner refuses (its
    email is another user's), which the errors CSV shows, are read again from the disk,
    and only when the disk still holds what was read."""
    header = "Employee ID,Primary Email,First Name\r\n"
    stored = header + "E1,a@x.com,A\r\nE3,c@x.com,C\r\n"
    first = flow.run_job(hr, hr.config.sources[0], Drop("hr.csv", stored.encode()))
    assert first.counts.created == 2
    night = header + "E1,a@x.com,A\r\nE2,c@x.com,Two\r\n"  # c@x.com is E3's
    path = tmp_path / "night.csv"
    path.write_bytes((night.replace("Two", "Other") if changed else night).encode())
    outcome = flow.run_job(
        hr, hr.config.sources[0], Drop("night.csv", night.encode(), path=path), dry_run=True
    )
    if changed:
        assert outcome.status == "rejected"
        assert "night.csv changed on disk" in outcome.messages[0]
        return
    assert (outcome.status, outcome.row_error_total) == ("applied_with_errors", 1)
    assert "belongs to another user (key E3)" in outcome.row_errors[0].message
    assert outcome.errors_csv is not None
    written = Path(outcome.errors_csv).read_text(encoding="utf-8-sig")
    assert "E2,c@x.com,Two," in written
