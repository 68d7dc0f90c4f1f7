"""What real feeds do to syncd's promises, through the real command, on both databases:
errors CSVs sent back, held jobs approved from what was validated, files sent again in
another mode, `;` files, dry runs and dismissed jobs that speak only of what is so."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.e2e.conftest import Syncd, write_config

HEADER = "Employee ID,Primary Email,First Name,Last Name,Current Status\r\n"


def _export(path: Path, people: range, *, emails: dict[int, str] | None = None) -> Path:
    emails = emails or {}
    rows = [f"E{n:03d},{emails.get(n, f'p{n}@example.com')},Zoë{n},Ødegård,Active" for n in people]
    path.write_text(HEADER + "\r\n".join(rows) + "\r\n", encoding="utf-8")
    return path


@pytest.fixture
def syncd(tmp_path: Path, db_url: str) -> Syncd:
    config = write_config(
        tmp_path,
        db_url,
        sources=[
            {
                "name": "hr",
                "kind": "local",
                "path": str(tmp_path / "drop"),
                "profile": "hr_full",
                "mode": "full",
                "max_archive_percent": 10,
                "max_archive_count": 100,
            },
            {
                "name": "agents",
                "kind": "local",
                "path": str(tmp_path / "agents"),
                "profile": "agents",
                "mode": "full",
                "directory": "agents",
                "max_archive_percent": 10,
                "max_archive_count": 100,
            },
            {
                "name": "eu",
                "kind": "local",
                "path": str(tmp_path / "eu"),
                "profile": "semicolons",
                "mode": "partial",
                "directory": "eu",
            },
        ],
        directory={"roles": ["User"], "groups": []},
        extra=[
            "[profiles.semicolons]",
            'key = "email"',
            'delimiter = ";"',
            "columns = [",
            '  { field = "email", header = "E-mail", required = true },',
            '  { field = "first_name", header = "Name" },',
            "]",
        ],
    )
    return Syncd(config, tmp_path)


def _statuses(syncd: Syncd) -> dict[str, str]:
    return {u["key"]: u["status"] for u in syncd("users", "list", "--json").json}


def _rows(data: bytes, delimiter: str = ",") -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=delimiter))


def test_the_errors_csv_sent_back_to_a_full_source_is_partial_and_archives_nobody(
    syncd: Syncd, tmp_path: Path
) -> None:
    """The README tells people to fix the errors CSV and send it back: it holds only the
    failed rows, so applied as full it would archive everyone else. It is applied as
    partial, and the job says so."""
    assert (
        syncd("import", "--source", "hr", _export(tmp_path / "n1.csv", range(1, 21)), "--json").code
        == 0
    )
    dirty = _export(tmp_path / "n2.csv", range(1, 21), emails={3: "not-an-email"})
    first = syncd("import", "--source", "hr", dirty, "--json")
    assert (first.code, first.json["counts"]["invalid"]) == (1, 1), first.describe()
    errors_csv = tmp_path / "fixed.csv"
    assert syncd("jobs", "errors", first.json["job_id"], "-o", errors_csv).code == 0
    rows = _rows(errors_csv.read_bytes())
    rows[1][1] = "p3@example.com"  # the fix
    with errors_csv.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)
    back = syncd("import", "--source", "hr", errors_csv, "--json")
    assert (back.code, back.json["status"], back.json["mode"]) == (0, "applied", "partial")
    assert any("errors CSV sent back" in m for m in back.json["messages"])
    assert back.json["counts"]["archived"] == 0
    assert set(_statuses(syncd).values()) == {"active"}
    shown = syncd("jobs", "show", back.json["job_id"], "--json").json
    assert shown["mode"] == "partial"


def test_a_file_sent_again_in_another_mode_runs_again(syncd: Syncd, tmp_path: Path) -> None:
    """Identity is source, content and mode: partial, then the same file in full mode, is
    not skipped; the same file in the same mode again is."""
    syncd("import", "--source", "hr", _export(tmp_path / "n1.csv", range(1, 21)), "--json")
    file = _export(tmp_path / "n2.csv", range(1, 20))
    partial = syncd("import", "--source", "hr", file, "--mode", "partial", "--json")
    assert partial.json["status"] == "applied"
    full = syncd("import", "--source", "hr", file, "--mode", "full", "--json")
    assert (full.json["status"], full.json["counts"]["archived"]) == ("applied", 1)
    again = syncd("import", "--source", "hr", file, "--mode", "full", "--json")
    assert (again.json["status"], again.json["skipped_of"]) == ("skipped", full.json["job_id"])


def test_a_semicolon_profiles_errors_csv_comes_back_readable(syncd: Syncd, tmp_path: Path) -> None:
    """A `delimiter = ";"` profile gets a `;` errors CSV, with a ragged row's extra cells
    kept, and the fixed file imports."""
    file = tmp_path / "eu.csv"
    file.write_text(
        "E-mail;Name\r\nana@example.com;Ana\r\nbad-address;Bo\r\ncy@example.com;Cy;Jr\r\n",
        encoding="utf-8",
    )
    first = syncd("import", file, "--source", "eu", "--json")
    assert (first.code, first.json["counts"]) == (1, first.json["counts"] | {"invalid": 2})
    out = tmp_path / "eu-errors.csv"
    syncd("jobs", "errors", first.json["job_id"], "-o", out)
    rows = _rows(out.read_bytes(), ";")
    assert rows[0] == ["E-mail", "Name", "errors"]
    assert rows[1][:2] == ["bad-address", "Bo"]
    assert rows[2][:3] == ["cy@example.com", "Cy", "Jr"]
    fixed = [rows[0], ["bo@example.com", "Bo", ""], ["cy@example.com", "Cy Jr", ""]]
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, delimiter=";", lineterminator="\r\n").writerows(fixed)
    back = syncd("import", out, "--source", "eu", "--json")
    assert (back.code, back.json["counts"]["created"]) == (0, 2), back.describe()


def test_approving_a_held_password_job_applies_exactly_what_was_validated(
    syncd: Syncd, tmp_path: Path
) -> None:
    """A held job of a password profile (where no password changed) is approved without
    a hitch; a row refused when it was held (a too-short password) stays refused; after
    a blank line the errors CSV still pairs each row with its own message; and no
    password is written anywhere."""
    header = "email,first_name,last_name,password,active\r\n"
    people = [f"a{n}@example.com,Ann{n},Lee,secret{n:03d},true" for n in range(1, 21)]
    first = tmp_path / "a1.csv"
    first.write_text(header + "\r\n".join(people) + "\r\n")
    assert syncd("import", first, "--source", "agents", "--json").code == 0
    rows = [*people[:8], "", "new1@example.com,Neu,One,abc,true", "new2@example.com,N,Two,,yes"]
    second = tmp_path / "a2.csv"
    second.write_text(header + "\r\n".join(rows) + "\r\n")
    held = syncd("import", second, "--source", "agents", "--json")
    assert (held.code, held.json["status"]) == (3, "held"), held.describe()
    assert [e["row"] for e in held.json["row_errors"]] == [11]
    approved = syncd("jobs", "approve", held.json["job_id"])
    assert approved.code == 1, approved.describe()
    shown = syncd("jobs", "show", held.json["job_id"], "--json").json
    assert (shown["status"], shown["counts"]["created"], shown["counts"]["archived"]) == (
        "applied_with_errors",
        1,
        12,
    )
    emails = {u["email"] for u in syncd("users", "list", "--json").json if u["status"] == "active"}
    assert "new1@example.com" not in emails
    assert "new2@example.com" in emails
    out = tmp_path / "errors.csv"
    syncd("jobs", "errors", held.json["job_id"], "-o", out)
    back = _rows(out.read_bytes())
    assert [(r[0], r[3]) for r in back[1:]] == [("new1@example.com", "")]
    assert back[1][-1].startswith("password: must be at least 6 characters")
    for text in (held.stdout, approved.stdout, str(shown), out.read_text(encoding="utf-8-sig")):
        assert "abc" not in text
        assert "secret0" not in text


def test_an_email_taken_while_a_job_is_held_is_a_row_error_at_approval(
    syncd: Syncd, tmp_path: Path
) -> None:
    """Approval plans against the directory as it is then: a new user's email that an
    archived user took meanwhile refuses that row, and the refusal is recorded like any
    row error (jobs show, the errors CSV), not only counted."""
    archived = "E021,gone@example.com,Old,One,Archived\r\n"
    night = _export(tmp_path / "n1.csv", range(1, 21))
    night.write_text(night.read_text(encoding="utf-8") + archived, encoding="utf-8")
    assert syncd("import", "--source", "hr", night, "--json").code == 0
    short = _export(tmp_path / "n2.csv", range(1, 9))
    short.write_text(
        short.read_text(encoding="utf-8") + "E100,new@example.com,New,Hire,Active\r\n",
        encoding="utf-8",
    )
    held = syncd("import", "--source", "hr", short, "--json")
    assert (held.code, held.json["status"]) == (3, "held"), held.describe()
    took = tmp_path / "took.csv"
    took.write_text(HEADER + "E021,new@example.com,Old,One,Archived\r\n", encoding="utf-8")
    assert (
        syncd("import", "--source", "hr", took, "--mode", "partial", "--json").json["counts"][
            "updated"
        ]
        == 1
    )
    approved = syncd("jobs", "approve", held.json["job_id"])
    assert approved.code == 1, approved.describe()
    shown = syncd("jobs", "show", held.json["job_id"], "--json").json
    assert [(e["row"], e["column"]) for e in shown["row_errors"]] == [(10, "Primary Email")]
    assert "belongs to another user (key E021)" in shown["row_errors"][0]["message"]
    assert shown["counts"]["invalid"] == 1
    out = tmp_path / "errors.csv"
    syncd("jobs", "errors", held.json["job_id"], "-o", out)
    assert [r[0] for r in _rows(out.read_bytes())[1:]] == ["E100"]


def test_dry_runs_and_decided_jobs_speak_only_of_what_is_so(syncd: Syncd, tmp_path: Path) -> None:
    """A dry run prints no job ID (none is stored), a held dry run offers no approve
    command, a dismissed job no longer does, and a file rejected for having no valid row
    counts none valid."""
    syncd("import", "--source", "hr", _export(tmp_path / "n1.csv", range(1, 21)), "--json")
    short = _export(tmp_path / "n2.csv", range(1, 10))
    dry = syncd("import", "--source", "hr", short, "--dry-run")
    assert dry.code == 3
    assert "Dry run of n2.csv: would be held" in dry.stdout
    assert "jobs approve" not in dry.stdout
    assert syncd("import", "--source", "hr", short, "--dry-run", "--json").json["job_id"] is None
    held = syncd("import", "--source", "hr", short, "--json")
    assert "syncd jobs approve" in syncd("jobs", "show", held.json["job_id"]).stdout
    syncd("jobs", "reject", held.json["job_id"])
    dismissed = syncd("jobs", "show", held.json["job_id"])
    assert "dismissed" in dismissed.stdout
    assert "approve" not in dismissed.stdout.replace("dismissed", "")
    conflict = tmp_path / "conflict.csv"
    conflict.write_text(HEADER + "E999,p1@example.com,X,Y,Active\r\n", encoding="utf-8")
    rejected = syncd("import", "--source", "hr", conflict, "--json")
    assert (rejected.code, rejected.json["status"]) == (2, "rejected")
    assert (rejected.json["counts"]["valid"], rejected.json["counts"]["invalid"]) == (0, 1)
    assert [e["row"] for e in rejected.json["row_errors"]] == [2]
