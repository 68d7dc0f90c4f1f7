"""Commands that only read create nothing where they run: no database, folder or secret.

`jobs list/show/errors`, `users list/show`, `status` and `check` are run in an empty working
directory, on the embedded defaults and with a config naming a SQLite file that is not
there; the directory is listed before and after. A missing database is an error that
names the file and what to run; writing commands still create what they need.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import SYSTEM_CONFIG_PATH
from tests.e2e.cli import syncd, syncd_json

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "config" / "examples"
SOME_JOB = "0HRRJ-N02S0"

#: Every command that only reads (`jobs errors` writes only the file it is asked for).
READ_ONLY = (
    ("jobs", "list", "--json"),
    ("jobs", "show", SOME_JOB),
    ("jobs", "errors", SOME_JOB, "-o", "again.csv"),
    ("users", "list", "--status", "archived"),
    ("users", "show", "ana.kovac@example.hr"),
    ("status", "--json"),
    ("check",),
)
Listing = list[tuple[str, bool, int, int]]


def _listing(root: Path) -> Listing:
    """Every path under `root` with its kind, size and modification time."""
    return sorted(
        (str(p.relative_to(root)), p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    )


def _names(root: Path) -> set[tuple[str, bool]]:
    """Every path under `root` and its kind: SQLite's -wal and -shm files come and go while
    a database is open, touching its folder's time, and must be gone again after."""
    return {(str(p.relative_to(root)), p.is_dir()) for p in root.rglob("*")}


def _ids(command: tuple[str, ...]) -> str:
    return " ".join(command)


@pytest.fixture
def no_system_config() -> None:
    if SYSTEM_CONFIG_PATH.exists():
        pytest.skip(f"{SYSTEM_CONFIG_PATH} exists: the embedded defaults cannot be tested here")


@pytest.mark.usefixtures("no_system_config")
@pytest.mark.parametrize("command", READ_ONLY, ids=_ids)
def test_on_the_embedded_defaults_reading_leaves_an_empty_folder_empty(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    """No var/, database or secret appears; the error names var/syncd.db and what to run."""
    finished = syncd(*command, cwd=tmp_path)
    assert _listing(tmp_path) == []
    if command == ("check",):
        assert finished.code == 0, finished.stdout + finished.stderr
        assert "var/syncd.db does not exist yet" in finished.stdout
        assert "var/drop does not exist yet" in finished.stdout
        return
    assert finished.code == 69, finished.stdout + finished.stderr
    assert finished.stderr.strip() == (
        "syncd: no database at var/syncd.db (from the embedded defaults): run `syncd import` "
        "or `syncd run` first, or point --config at the right configuration"
    )


@pytest.mark.parametrize("command", READ_ONLY, ids=_ids)
def test_with_a_config_naming_a_missing_sqlite_file_reading_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    """Neither the database's folder, the state folder nor the secret is created."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        'state_dir = "state"\n[database]\nurl = "sqlite:///not/here/syncd.db"\n', encoding="utf-8"
    )
    work = tmp_path / "work"
    work.mkdir()
    before = _listing(tmp_path)
    finished = syncd("--config", config, *command, cwd=work)
    assert _listing(tmp_path) == before
    if command == ("check",):
        assert finished.code == 0, finished.stdout + finished.stderr
        assert "not/here/syncd.db does not exist yet" in finished.stdout
        return
    assert finished.code == 69, finished.stdout + finished.stderr
    assert f"no database at not/here/syncd.db (from {config})" in finished.stderr


def test_check_says_when_a_missing_folder_cannot_be_created(tmp_path: Path) -> None:
    """A local folder (or database) under a file cannot be made: check fails, exit 78."""
    (tmp_path / "plain-file").write_text("not a folder", encoding="utf-8")
    config = tmp_path / "syncd.toml"
    config.write_text(
        'state_dir = "state"\n'
        '[database]\nurl = "sqlite:///plain-file/syncd.db"\n'
        '[[sources]]\nname = "drop"\nkind = "local"\npath = "plain-file/drop"\n',
        encoding="utf-8",
    )
    before = _listing(tmp_path)
    finished = syncd("--config", config, "check", cwd=tmp_path)
    assert _listing(tmp_path) == before
    assert finished.code == 78, finished.stdout + finished.stderr
    lines = finished.stdout.splitlines()
    assert (
        f"FAIL  database: plain-file/syncd.db does not exist and cannot be created: "
        f"{tmp_path / 'plain-file'} is a file"
    ) in lines
    assert (
        f"FAIL  source drop (local plain-file/drop): plain-file/drop does not exist and cannot "
        f"be created: {tmp_path / 'plain-file'} is a file"
    ) in lines


def test_reading_a_database_from_another_folder_creates_no_state_there(tmp_path: Path) -> None:
    """With a relative state_dir, reading elsewhere makes no state folder or secret there."""
    config = tmp_path / "syncd.toml"
    database = tmp_path / "db" / "syncd.db"
    config.write_text(f'state_dir = "var"\n[database]\nurl = "sqlite:///{database}"\n')
    first = tmp_path / "first"
    first.mkdir()
    imported, outcome = syncd_json(
        "--config", config, "import", EXAMPLES / "with-errors" / "people.csv", "--json", cwd=first
    )
    assert imported.code == 1, imported.stdout + imported.stderr
    assert (first / "var" / "secret").is_file(), "a writing command creates the secret"
    job_id = outcome["job_id"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = _names(tmp_path)
    for command in READ_ONLY:
        if command[:2] == ("jobs", "errors"):
            continue  # below: it writes its file
        command = tuple(job_id if part == SOME_JOB else part for part in command)
        finished = syncd("--config", config, *command, cwd=elsewhere)
        assert finished.code == 0, f"{command}: {finished.stdout}{finished.stderr}"
        assert _names(tmp_path) == before, command

    finished = syncd("--config", config, "jobs", "errors", job_id, "-o", "again.csv", cwd=elsewhere)
    assert finished.code == 0, finished.stdout + finished.stderr
    assert [p.name for p in elsewhere.iterdir()] == ["again.csv"]
    assert "errors" in (elsewhere / "again.csv").read_text(encoding="utf-8-sig").splitlines()[0]


def test_a_database_without_the_schema_is_left_alone_and_db_upgrade_is_named(
    tmp_path: Path,
) -> None:
    """An empty SQLite file stays empty; reading it says to run `syncd db upgrade`."""
    (tmp_path / "syncd.db").touch()
    config = tmp_path / "syncd.toml"
    config.write_text('state_dir = "var"\n[database]\nurl = "sqlite:///syncd.db"\n')
    before = _listing(tmp_path)
    for command in (("jobs", "list"), ("users", "show", "someone@example.com")):
        finished = syncd("--config", config, *command, cwd=tmp_path)
        assert finished.code == 78, finished.stdout + finished.stderr
        assert "has no syncd schema yet: run `syncd db upgrade`" in finished.stderr
        assert _listing(tmp_path) == before

    upgraded = syncd("--config", config, "db", "upgrade", cwd=tmp_path)
    assert upgraded.code == 0, upgraded.stderr
    listed = syncd("--config", config, "jobs", "list", cwd=tmp_path)
    assert (listed.code, listed.stdout.strip()) == (0, "No jobs yet.")


def test_writing_commands_create_what_they_need(tmp_path: Path) -> None:
    """`import` in an empty folder on the embedded defaults creates the database and secret."""
    finished = syncd("import", EXAMPLES / "people.csv", cwd=tmp_path)
    assert finished.code == 0, finished.stdout + finished.stderr
    assert (tmp_path / "var" / "syncd.db").is_file()
    assert (tmp_path / "var" / "secret").is_file()
