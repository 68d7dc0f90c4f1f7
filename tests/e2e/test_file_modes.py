"""Everything syncd writes is readable by its own user alone, whatever umask it was
started with: a real `syncd run` started with umask 000 creates its folders 0700 (state,
spool, errors, outbox, the database's folder, the drop folder, processed/ and failed/)
and its files 0600 (the database and its -wal and -shm, the secret, errors CSVs, .eml
reports, settled files, whether moved or written as a copy with passwords blanked), and
so do the commands support runs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.cli import syncd, syncd_json
from tests.e2e.test_daemon_exactly_once import Running

HEADER = "email,first_name,last_name,password,active\r\n"
FILES = {
    # Settled as a copy written in its place, its password blanked.
    "with-passwords.csv": HEADER + "m.one@example.com,Mia,One,Secret-pw-1,true\r\n",
    # Settled by a rename; a row error: an errors CSV.
    "plain.csv": "email,first_name\r\nm.two@example.com,Mo\r\nnot-an-email,Bad\r\n",
    # Rejected: failed/.
    "rejected.csv": "first_name\r\nNobody\r\n",
}


@dataclass(frozen=True, slots=True)
class Modes:
    """Permission bits of what syncd made, by path; taken while the daemon runs (the
    database's -wal and -shm exist only then), and after the support commands."""

    files: dict[Path, int]
    folders: dict[Path, int]
    root: Path


def _modes(paths: list[Path]) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in paths}


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Modes:
    root = tmp_path_factory.mktemp("modes")
    var = root / "var"
    config = root / "syncd.toml"
    config.write_text(
        f'state_dir = "{var / "state"}"\n'
        f'[database]\nurl = "sqlite:///{var / "db" / "syncd.db"}"\n'
        f'[mail]\noutbox_dir = "{var / "outbox"}"\n'
        f'[[sources]]\nname = "drop"\nkind = "local"\npath = "{var / "drop"}"\n'
        'profile = "agents"\nmode = "partial"\nsettle_seconds = 0.3\ninterval_seconds = 1\n'
        'notify = ["it@example.com"]\n',
        encoding="utf-8",
    )
    daemon = Running(root, config, umask=0)
    drop = var / "drop"
    try:
        daemon.wait_for("the drop folder", drop.is_dir)
        for name, content in FILES.items():
            staging = root / f"{name}.staging"
            staging.write_text(content, encoding="utf-8")
            staging.chmod(0o666)  # as a sender's upload might be
            os.replace(staging, drop / name)
        settled = lambda: sum(  # noqa: E731
            len(os.listdir(drop / d)) for d in ("processed", "failed") if (drop / d).is_dir()
        )
        daemon.wait_for("every file to be settled", lambda: settled() == len(FILES))
        outbox = var / "outbox"
        daemon.wait_for(
            "the reports", lambda: outbox.is_dir() and len(list(outbox.glob("*.eml"))) == 3
        )
        database = sorted((var / "db").glob("syncd.db*"))
        running = _modes(database)
    finally:
        assert daemon.stop() == 0
    listed, jobs = syncd_json("--config", config, "jobs", "list", "--json", cwd=root)
    assert listed.code == 0, listed.stderr
    [with_errors] = [j for j in jobs if j["file"] == "plain.csv"]
    asked = syncd("--config", config, "jobs", "errors", with_errors["job_id"], cwd=root)
    assert asked.code == 0, asked.stderr
    changes = root / "changes.csv"
    job_id = with_errors["job_id"]
    asked = syncd("--config", config, "jobs", "changes", job_id, "-o", changes, cwd=root)
    assert asked.code == 0, asked.stderr
    made = list(var.rglob("*"))
    files = [p for p in made if p.is_file()] + [root / f"{with_errors['job_id']}.csv", changes]
    return Modes(
        files=running | _modes(files),
        folders=_modes([var, *(p for p in made if p.is_dir())]),
        root=root,
    )


def test_what_was_written_is_what_is_checked(modes: Modes) -> None:
    """The database and its -wal and -shm, the secret, the errors CSV, three reports,
    three settled files (one a redacted copy), the support commands' CSVs."""
    names = {p.relative_to(modes.root).as_posix() for p in modes.files}
    assert {"var/db/syncd.db", "var/db/syncd.db-wal", "var/db/syncd.db-shm"} <= names
    assert "var/state/secret" in names
    assert len([n for n in names if n.startswith("var/state/errors/")]) == 1
    assert len([n for n in names if n.startswith("var/outbox/") and n.endswith(".eml")]) == 3
    assert len([n for n in names if n.startswith(("var/drop/processed/", "var/drop/failed/"))]) == 3
    assert "changes.csv" in names


def test_every_file_is_0600(modes: Modes) -> None:
    loose = {
        p.relative_to(modes.root).as_posix(): oct(m) for p, m in modes.files.items() if m != 0o600
    }
    assert loose == {}


def test_every_folder_syncd_made_is_0700(modes: Modes) -> None:
    """var (the state folder's parent, made for it), state, spool, errors, db, outbox,
    the drop folder, processed/ and failed/."""
    names = {p.relative_to(modes.root).as_posix() for p in modes.folders}
    assert {
        "var", "var/state", "var/state/spool", "var/state/errors", "var/db", "var/outbox",
        "var/drop", "var/drop/processed", "var/drop/failed",
    } <= names  # fmt: skip
    loose = {
        p.relative_to(modes.root).as_posix(): oct(m) for p, m in modes.folders.items() if m != 0o700
    }
    assert loose == {}
