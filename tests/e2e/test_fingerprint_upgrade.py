"""A database upgraded to integer fingerprints, through the real `syncd` command and
Alembic's own `alembic` command, on SQLite and PostgreSQL.

A directory written by a syncd that stored fingerprints as strings is upgraded with
`syncd db upgrade`: those fingerprints are cleared, the next import of an unchanged
export compares every user in full, changes nobody, and stores fresh fingerprints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import COMMAND_TIMEOUT_SECONDS, Syncd, write_config

ALEMBIC = Path(sys.executable).with_name("alembic")
HEADER = "Employee ID,Primary Email,First Name,Last Name,Current Status,Role,Groups,Start Date"
ROWS = [
    'E-1,ann.lee@example.com,Ann,Lee,Active,Admin,"Sales,Support",2020-01-02',
    "E-2,bo.ek@example.com,Bo,,Active,User,Support,",
    "E-3,cy.ng@example.com,,Ng,Active,User,none,2021-05-06",
    "E-4,di.roe@example.com,Di,Roe,Archived,User,Sales,",
    "E-5,ed.li@example.com,Ed,Li,Active,,,1999-12-31",
]


def _stored(db_url: str) -> dict[str, tuple[object, ...]]:
    """Each user's fingerprint, updated_at and last_job_id, by key, as the database has them."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT key, fingerprint, updated_at, last_job_id FROM users"))
            return {r.key: (r.fingerprint, r.updated_at, r.last_job_id) for r in rows}
    finally:
        engine.dispose()


def _alembic(tmp_path: Path, db_url: str, *args: str) -> None:
    """Alembic's command on syncd's migrations, as an admin could run it."""
    ini = tmp_path / "alembic.ini"
    url = db_url.replace("%", "%%")  # the ini file interpolates %
    ini.write_text(f"[alembic]\nscript_location = syncd:migrations\nsqlalchemy.url = {url}\n")
    done = subprocess.run(
        [str(ALEMBIC), "-c", str(ini), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.usefixtures("syncd_script")
def test_an_upgraded_database_reimports_an_unchanged_export_with_no_change_and_fresh_fingerprints(
    db_url: str, tmp_path: Path
) -> None:
    """String fingerprints from before the upgrade are gone after `syncd db upgrade`; the
    next import of the same users (rows in another order, so not skipped as the same
    file) counts every one unchanged, writes none of their values, and stores the very
    fingerprints a fresh import gives them."""
    config = write_config(
        tmp_path,
        db_url,
        sources=[{"name": "hr", "kind": "local", "path": str(tmp_path / "drop"),
                  "profile": "hr_full", "mode": "full"}],
        directory={"roles": ["User", "Admin"], "groups": ["Sales", "Support"]},
    )  # fmt: skip
    syncd = Syncd(config, tmp_path)
    first = tmp_path / "users_2026-12-01.csv"
    first.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    ran = syncd("import", first, "--source", "hr", "--json")
    assert (ran.code, ran.json["counts"]["created"], ran.json["counts"]["archived"]) == (0, 4, 1)
    fresh = _stored(db_url)
    assert all(isinstance(fp, int) for fp, _, _ in fresh.values()), fresh

    # The database as the syncd before integer fingerprints left it: the column a string,
    # each user's fingerprint as that syncd wrote them.
    _alembic(tmp_path, db_url, "downgrade", "0005")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET fingerprint = :prefix || CAST(id * 7919 AS VARCHAR)"),
            {"prefix": f"f1-{pl.__version__}:"},
        )
        olds = conn.execute(text("SELECT fingerprint FROM users")).scalars().all()
    engine.dispose()
    assert len(olds) == len(ROWS)
    assert all(str(fp).startswith("f1-") for fp in olds)

    assert syncd("db", "upgrade").code == 0
    assert {key: fp for key, (fp, _, _) in _stored(db_url).items()} == dict.fromkeys(fresh)

    again = tmp_path / "users_2026-12-02.csv"
    again.write_text("\n".join([HEADER, *reversed(ROWS)]) + "\n", encoding="utf-8")
    ran = syncd("import", again, "--source", "hr", "--json")
    assert (ran.code, ran.json["status"]) == (0, "applied"), ran.describe()
    counts = ran.json["counts"]
    assert counts == counts | {"valid": 5, "unchanged": 5, "created": 0, "updated": 0,
                               "archived": 0, "reactivated": 0}  # fmt: skip
    # Refreshed, not updated: the first job is still the last that changed anyone.
    assert _stored(db_url) == fresh
