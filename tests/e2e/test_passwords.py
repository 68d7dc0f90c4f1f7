"""No clear password survives anywhere syncd keeps, prints or sends: on the job's record,
in `--json` and `jobs show`, the errors CSV, the copy retained for support, the copy a
source settles, the logs; on every path, a rejected file's included; and what syncd
writes is readable by its own user alone."""

from __future__ import annotations

import gzip
import signal
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from syncd.packing import unpack
from tests.e2e.cli import spawn
from tests.e2e.conftest import Syncd, write_config

#: Passwords of the files below; none may appear anywhere syncd writes or prints.
SECRETS = ("hunter22", "Qx7q", "Kk8", "Zq7w9", "s3cr3t-unmapped", "rejected-pw1", "Z9z9z9z9")


@pytest.fixture
def syncd(tmp_path: Path, db_url: str) -> Syncd:
    config = write_config(
        tmp_path,
        db_url,
        sources=[
            {
                "name": "agents",
                "kind": "local",
                "path": str(tmp_path / "drop"),
                "profile": "agents",
                "mode": "partial",
            },
            {
                "name": "hr",
                "kind": "local",
                "path": str(tmp_path / "hr"),
                "profile": "hr_full",
                "mode": "partial",
                "directory": "hr",
            },
        ],
        directory={"roles": ["User"], "groups": []},
    )
    return Syncd(config, tmp_path)


def _retained(db_url: str) -> list[bytes]:
    """Every retained copy and kept job file, decompressed: what support could read."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        copies = [unpack(r[0]) for r in conn.execute(text("SELECT content FROM retained_files"))]
        files = [r[0] for r in conn.execute(text("SELECT content FROM job_files"))]
        messages = [str(r[0]) for r in conn.execute(text("SELECT messages FROM jobs"))]
        errors = [r[0] for r in conn.execute(text("SELECT message FROM row_errors"))]
    engine.dispose()
    kept = [gzip.decompress(f) if f[:2] == b"\x1f\x8b" else f for f in files]
    return [*copies, *kept, *(m.encode() for m in messages), *(e.encode() for e in errors)]


def _assert_no_secret(*texts: str | bytes) -> None:
    for found in texts:
        blob = found if isinstance(found, str) else found.decode("utf-8", errors="replace")
        for secret in SECRETS:
            assert secret not in blob, (secret, blob[:2000])


def test_no_password_survives_any_path_through_a_job(
    syncd: Syncd, tmp_path: Path, db_url: str
) -> None:
    """A split password (unquoted comma), a short one, an unmapped password column and a
    file rejected before validation: nothing of any password is printed, stored, retained
    or written into an errors CSV."""
    split = tmp_path / "split.csv"
    split.write_text(
        "email,first_name,last_name,password,active\r\n"
        "ana@example.com,Ana,Lee,hunter22,true\r\n"
        "bo@example.com,Bo,Li,Kk8,Zq7w9,true\r\n"  # a cell too many: the password was split
        "cy@example.com,Cy,Ng,Qx7q,true\r\n",  # too short
        encoding="utf-8",
    )
    first = syncd("import", split, "--source", "agents", "--json")
    assert first.code == 1, first.describe()
    assert sorted(e["row"] for e in first.json["row_errors"]) == [3, 4]
    shown = syncd("jobs", "show", first.json["job_id"])
    shown_json = syncd("jobs", "show", first.json["job_id"], "--json")
    errors_csv = tmp_path / "errors.csv"
    assert syncd("jobs", "errors", first.json["job_id"], "-o", errors_csv).code == 0
    # An HR export whose Password column no profile maps: ignored, and blanked all the same.
    unmapped = tmp_path / "hr.csv"
    unmapped.write_text(
        "Employee ID,Primary Email,Password\r\nE1,e1@example.com,s3cr3t-unmapped\r\n"
        "E2,not-an-email,Z9z9z9z9\r\n",
        encoding="utf-8",
    )
    second = syncd("import", unmapped, "--source", "hr", "--json")
    assert second.code == 1, second.describe()
    # Rejected before any row is validated (a required column missing).
    rejected_file = tmp_path / "rejected.csv"
    rejected_file.write_text("first_name,password\r\nAna,rejected-pw1\r\n", encoding="utf-8")
    rejected = syncd("import", rejected_file, "--source", "agents", "--json")
    assert (rejected.code, rejected.json["status"]) == (2, "rejected")
    outputs = [first, shown, shown_json, second, rejected]
    _assert_no_secret(
        *(r.stdout for r in outputs),
        *(r.stderr for r in outputs),
        errors_csv.read_bytes(),
        *(p.read_bytes() for p in (tmp_path / "var" / "errors").glob("*.csv")),
        *_retained(db_url),
    )
    # What is retained still lets support see everything else that was sent.
    assert any(b"ana@example.com" in copy for copy in _retained(db_url))


def test_what_syncd_writes_is_readable_by_its_own_user_alone(
    syncd: Syncd, tmp_path: Path, db_url: str
) -> None:
    """The errors CSV, the state folder's secret and (on SQLite) the database are 0600,
    whatever the umask of whoever runs syncd."""
    dirty = tmp_path / "dirty.csv"
    dirty.write_text("email,first_name\r\nbad,Ana\r\n", encoding="utf-8")
    ran = syncd("import", dirty, "--source", "agents", "--json")
    written = [Path(ran.json["errors_csv"]), tmp_path / "var" / "secret"]
    if db_url.startswith("sqlite"):
        written.append(tmp_path / "syncd.db")
    out = tmp_path / "again.csv"
    syncd("jobs", "errors", ran.json["job_id"], "-o", out)
    for path in [*written, out]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_daemon_settles_a_copy_without_passwords(tmp_path: Path) -> None:
    """A file holding passwords is settled into processed/ with its password cells
    blanked, readable by syncd's user alone; the original is gone from the drop."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "state"\n[database]\nurl = "sqlite:///{tmp_path}/syncd.db"\n'
        '[[sources]]\nname = "drop"\nkind = "local"\npath = "drop"\nprofile = "agents"\n'
        "settle_seconds = 0.2\ninterval_seconds = 1\n",
        encoding="utf-8",
    )
    drop = tmp_path / "drop"
    drop.mkdir()
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = spawn("--config", config, "run", cwd=tmp_path, stderr=stderr)
    try:
        (drop / "agents.csv").write_text(
            "email,first_name,password,active\r\nana@example.com,Ana,hunter22,true\r\n"
            "bo@example.com,Bo,Z9z9z9z9,true\r\n",
            encoding="utf-8",
        )
        deadline = time.monotonic() + 30
        while not list((drop / "processed").glob("agents.*.csv")):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    [settled] = (drop / "processed").glob("agents.*.csv")
    content = settled.read_text(encoding="utf-8")
    assert "ana@example.com" in content
    assert stat.S_IMODE(settled.stat().st_mode) == 0o600
    assert not (drop / "agents.csv").exists()
    _assert_no_secret(content, log.read_text())
