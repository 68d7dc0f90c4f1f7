"""The guard's approval check, dry runs and partial uploads, through the real command (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Syncd, write_config

HEADER = "Employee ID,Primary Email,First Name,Last Name,Current Status\r\n"


def _export(path: Path, people: range, *, archived: tuple[int, ...] = ()) -> Path:
    rows = [
        f"E{n:03d},p{n}@example.com,Zoë{n},Ødegård,{'Archived' if n in archived else 'Active'}"
        for n in people
    ]
    path.write_text(HEADER + "\r\n".join(rows) + "\r\n", encoding="utf-8")
    return path


@pytest.fixture
def syncd(tmp_path: Path) -> Syncd:
    config = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'syncd.db'}",
        sources=[
            {
                "name": "hr",
                "kind": "local",
                "path": str(tmp_path / "drop"),
                "profile": "hr_full",
                "mode": "full",
                "max_archive_percent": 10,
                "max_archive_count": 100,
            }
        ],
        directory={"roles": ["User"], "groups": []},
    )
    return Syncd(config, tmp_path)


def _statuses(syncd: Syncd) -> dict[str, str]:
    listed = syncd("users", "list", "--json")
    return {u["key"]: u["status"] for u in listed.json}


def test_approval_is_refused_when_the_directory_changed_since_the_hold(
    syncd: Syncd, tmp_path: Path
) -> None:
    """A held job archives exactly what it showed, or nothing: a changed directory refuses it."""
    assert syncd("import", _export(tmp_path / "n1.csv", range(1, 21)), "--json").code == 0
    held = syncd("import", _export(tmp_path / "n2.csv", range(1, 16)), "--json")
    assert (held.code, held.json["status"]) == (3, "held")
    # Meanwhile a partial upload archives one of the users the held job would archive.
    partial = syncd(
        "import", _export(tmp_path / "p.csv", range(20, 21), archived=(20,)), "--mode",
        "partial", "--json",
    )  # fmt: skip
    assert partial.json["counts"]["archived"] == 1
    refused = syncd("jobs", "approve", held.json["job_id"])
    assert refused.code == 64, refused.describe()
    assert "changed since" in refused.stderr
    assert syncd("jobs", "show", held.json["job_id"], "--json").json["status"] == "held"
    assert list(_statuses(syncd).values()).count("archived") == 1


def test_a_dry_run_reports_the_plan_and_writes_nothing(syncd: Syncd, tmp_path: Path) -> None:
    """--dry-run gives the counts and exit code of the real thing, and no job or user."""
    dry = syncd("import", _export(tmp_path / "n1.csv", range(1, 6)), "--dry-run", "--json")
    assert (dry.code, dry.json["status"], dry.json["counts"]["created"]) == (0, "applied", 5)
    assert syncd("users", "list", "--json").json == []
    assert syncd("jobs", "list", "--json").json == []
    real = syncd("import", tmp_path / "n1.csv", "--json")
    assert (real.json["status"], real.json["counts"]["created"]) == ("applied", 5)


def test_a_partial_upload_never_archives_the_users_it_leaves_out(
    syncd: Syncd, tmp_path: Path
) -> None:
    """Partial mode upserts: users missing from the file stay active."""
    syncd("import", _export(tmp_path / "n1.csv", range(1, 11)), "--json")
    partial = syncd(
        "import", _export(tmp_path / "p.csv", range(1, 3)), "--mode", "partial", "--json"
    )
    assert partial.json["counts"] | {} == {
        "rows": 2, "valid": 2, "invalid": 0, "created": 0, "updated": 0, "unchanged": 2,
        "archived": 0, "reactivated": 0, "email_changed": 0,
    }  # fmt: skip
    assert set(_statuses(syncd).values()) == {"active"}


def test_a_full_file_without_a_valid_row_is_rejected_and_archives_nobody(
    syncd: Syncd, tmp_path: Path
) -> None:
    """Every row broken: exit 2, nothing applied, nobody archived."""
    syncd("import", _export(tmp_path / "n1.csv", range(1, 6)), "--json")
    broken = tmp_path / "broken.csv"
    broken.write_text(HEADER + "E001,not-an-email,A,B,Active\r\n", encoding="utf-8")
    rejected = syncd("import", broken, "--json")
    assert (rejected.code, rejected.json["status"]) == (2, "rejected")
    assert set(_statuses(syncd).values()) == {"active"}
