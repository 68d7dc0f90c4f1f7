"""A first load big enough to take the directory's tables alone (on PostgreSQL: users in
binary COPY, unique indexes and primary keys built after the rows), and the night after
it, leave the directory a SQLite database holds; killed during its COPY, such a load
leaves nothing of itself, not even a missing index, and runs again."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from syncd.store import make_engine
from syncd.store.directory import list_users
from tests.e2e.cli import SYNCD, environment
from tests.e2e.conftest import Syncd, write_config

# `syncd.store.apply` loads alone from this many creates into empty tables.
ROWS = 50_000
HEADER = [
    "Employee ID", "Email", "First Name", "Last Name", "Display Name", "Status", "Role",
    "Groups", "Labels", "Source Usernames", "Department", "Start Date",
]  # fmt: skip
PROFILE = """
[profiles.staff]
key = "employee_id"
columns = [
  { field = "employee_id", header = "Employee ID", required = true },
  { field = "email", header = "Email", required = true },
  { field = "first_name", header = "First Name" },
  { field = "last_name", header = "Last Name" },
  { field = "display_name", header = "Display Name" },
  { field = "status", header = "Status" },
  { field = "role", header = "Role" },
  { field = "groups", header = "Groups" },
  { field = "labels", header = "Labels" },
  { field = "source_usernames", header = "Source Usernames" },
  { field = "department", header = "Department" },
  { field = "start_date", header = "Start Date", type = "date" },
]
"""
NAMES = ["Zoë", "Łukasz", "Søren", "Ngọc", "José", "Anna", "日本", "O'Connor", 'Ann "Jo"']
GROUPS = ["", "Sales", "Sales,Support", "none", "Engineering,Sales,Support"]


def _row(i: int, night: int) -> list[str]:
    """Row `i` of night `night` (1: the first load; 2: the night after, where some
    users changed names, emails, lists, fields and status)."""
    changed = night == 2 and i % 10 == 0
    name = NAMES[i % len(NAMES)]
    return [
        f"E{i:06d}",
        f"user{i}.{night if night == 2 and i % 100 == 1 else 1}@Example.com",
        name,
        "" if i % 7 == 0 else f"Ødegård-{i % 13}" + ("-Park" if changed else ""),
        "" if i % 5 == 0 else f'{name} {i}, "the" {i % 3}',
        "Active"
        if night == 2 and i % 97 == 0 and i % 2
        else ("Archived" if i % 97 == 0 else "Active"),
        ["User", "Admin", ""][i % 3],
        "" if changed and i % 20 == 0 else GROUPS[i % len(GROUPS)],
        ["", "Ünïcode:plain", "x"][i % 3],
        "" if i % 4 else f"slack:u{i},email:u{i}",
        "" if i % 6 == 0 else ("Research & Development" if changed else "Sales"),
        "" if i % 8 == 0 else f"20{i % 25:02d}-0{1 + i % 9}-1{i % 9}",
    ]


def _export(path: Path, night: int) -> Path:
    """Night 1: ROWS users. Night 2: every 50th user gone, 500 new ones, others changed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    people = range(ROWS) if night == 1 else [i for i in range(ROWS + 500) if i % 50]
    writer.writerows(_row(i, night) for i in people)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _syncd(root: Path, url: str) -> Syncd:
    config = write_config(
        root,
        url,
        sources=[
            {
                "name": "hr",
                "kind": "local",
                "path": str(root / "drop"),
                "profile": "staff",
                "mode": "full",
                "max_archive_percent": 100,
                "max_archive_count": ROWS,
            },
        ],
        directory={
            "groups": ["Engineering", "Sales", "Support"],
            "roles": ["User", "Admin"],
            "enabled_sources": ["slack", "email"],
        },
        extra=[PROFILE],
    )
    return Syncd(config, root)


def _directory(url: str) -> dict[str, dict[str, Any]]:
    """Every user by key, as `syncd users list --json` shows them (read here with the
    function that command calls: its JSON for 50,000 users takes seconds to print);
    timestamps, which differ from one run to the next, as what they say: whether the
    user changed after it was created, and whether it was archived when it last did."""
    engine = make_engine(url)
    with engine.connect() as conn:
        listed = [view.as_json() for view in list_users(conn)]
    engine.dispose()
    out = {}
    for user in listed:
        created, updated = user.pop("created_at"), user.pop("updated_at")
        archived = user.pop("archived_at")
        user.pop("last_job_id")
        user["changed"] = updated != created
        user["archived_at"] = None if archived is None else archived == updated
        out[str(user["key"])] = user
    return out


def test_two_nights_leave_the_same_directory_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    """A first load taken alone and a night of changes (renames, new emails, cleared
    lists, archives, reactivations, new users) leave on PostgreSQL the directory SQLite
    holds: the same users with the same non-ASCII text, nulls, lists and fields."""
    first = _export(tmp_path / "first.csv", 1)
    second = _export(tmp_path / "second.csv", 2)
    found = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'syncd.db'}"), ("pg", postgres_url)):
        root = tmp_path / name
        root.mkdir()
        syncd = _syncd(root, url)
        loaded = syncd("import", first, "--json")
        assert loaded.code == 0, loaded.describe()
        assert loaded.json["counts"]["created"] + loaded.json["counts"]["archived"] == ROWS
        night = syncd("import", second, "--json")
        assert night.code == 0, night.describe()
        found[name] = (_directory(url), night.json["counts"])
    (on_sqlite, counts_sqlite), (on_pg, counts_pg) = found["sqlite"], found["pg"]
    assert counts_pg == counts_sqlite
    assert counts_pg["created"] > 0
    assert counts_pg["reactivated"] > 0
    assert counts_pg["email_changed"] > 0
    assert on_pg.keys() == on_sqlite.keys()
    differ = [key for key in on_pg if on_pg[key] != on_sqlite[key]]
    assert not differ, (on_pg[differ[0]], on_sqlite[differ[0]])
    some = on_pg["E000010"]
    assert some["last_name"] == "Ødegård-10-Park"
    assert some["groups"] == []
    assert on_pg["E000011"]["display_name"] == 'Søren 11, "the" 2'
    assert on_pg["E000000"]["groups"] == []
    assert on_pg["E000000"]["last_name"] is None


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _wait_for_statement(conninfo: str, start: str, process: subprocess.Popen[bytes]) -> bool:
    """Whether a statement starting with `start` was seen running before `process` ended."""
    deadline = time.monotonic() + 60
    with psycopg.connect(conninfo, autocommit=True) as watch:
        while process.poll() is None and time.monotonic() < deadline:
            running = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND state = 'active' AND query LIKE %s",
                (start + "%",),
            ).fetchone()
            if running and running[0]:
                return True
    return False


@pytest.mark.parametrize("statement", ["COPY users", "COPY memberships"])
def test_a_first_load_killed_during_its_copy_leaves_nothing_and_runs_again(
    tmp_path: Path, postgres_url: str, statement: str
) -> None:
    """SIGKILL while the load's `statement` runs (its keys and indexes dropped, shared
    values made column defaults): no user, membership, missing index, key or default
    is left behind, and the same file then loads whole."""
    (tmp_path / "drop").mkdir()
    syncd = _syncd(tmp_path, postgres_url)
    first = _export(tmp_path / "first.csv", 1)
    process = subprocess.Popen(
        [str(SYNCD), "--config", str(syncd.config), "import", str(first), "--json"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = _wait_for_statement(_conninfo(postgres_url), statement, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert seen, f"the import ended before {statement} was seen"

    with psycopg.connect(_conninfo(postgres_url), autocommit=True) as db:
        db.execute("SET statement_timeout = '60s'")  # until the killed load is rolled back
        counts = db.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM memberships)"
        ).fetchone()
        indexes = db.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('users', 'memberships')"
            " ORDER BY indexname"
        ).fetchall()
        defaults = db.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'users' AND column_default IS NOT NULL"
        ).fetchall()
    assert counts == (0, 0)
    assert [name for (name,) in indexes] == [
        "pk_memberships",
        "pk_users",
        "uq_users_directory_id_email_lc",
        "uq_users_directory_id_key",
    ]
    assert [name for (name,) in defaults] == ["id"]  # its identity, nothing of the load

    again = syncd("import", first, "--json")
    assert again.code == 0, again.describe()
    assert again.json["counts"]["created"] + again.json["counts"]["archived"] == ROWS
    statuses = sorted(job["status"] for job in syncd("jobs", "list", "--json").json)
    assert statuses == ["applied", "interrupted"]
    with psycopg.connect(_conninfo(postgres_url)) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (ROWS,)
