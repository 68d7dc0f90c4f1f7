"""A week of nightly HR exports through the real `syncd` command, on SQLite and PostgreSQL.

Each night the HR system's full export (`hr_full` profile, keyed on Employee ID) is
written by the test and imported with `syncd import --json`; then the job's status, exit
code and every count are checked, and the directory as `syncd users list --json` shows
it is compared with what the week so far should have made of it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import COUNT_NAMES, OUTCOME_KEYS, Ran, Syncd, TomlValue, write_config

HEADER = (
    "Employee ID",
    "Primary Email",
    "First Name",
    "Last Name",
    "Current Status",
    "Role",
    "Groups",
    "Department",
    "Start Date",
    "Phone",
)
#: Guard limits small enough for a dozen users: two leavers pass, four or more are held.
MAX_ARCHIVE_PERCENT = 20
MAX_ARCHIVE_COUNT = 3
#: What this test checks of each user `users list --json` shows (besides `archived_at`).
LISTED = (
    "key",
    "email",
    "status",
    "first_name",
    "last_name",
    "display_name",
    "role",
    "groups",
    "labels",
    "source_usernames",
    "fields",
)


@dataclass(frozen=True, slots=True)
class Person:
    """One employee as the HR export has them (one CSV row)."""

    employee_id: str
    email: str
    first_name: str
    last_name: str
    role: str
    groups: tuple[str, ...]
    department: str
    start_date: str
    phone: str
    status: str = "Active"

    def cells(self) -> list[str]:
        return [
            self.employee_id,
            self.email,
            self.first_name,
            self.last_name,
            self.status,
            self.role,
            ",".join(self.groups),
            self.department,
            self.start_date,
            self.phone,
        ]


STAFF = {
    p.employee_id: p
    for p in (
        Person(
            "E-001", "zoe.kowalczyk@example.com", "Zoë", "Kowalczyk", "Admin",
            ("Engineering", "Support"), "Engineering", "2019-03-04", "+48 22 555 0101",
        ),
        Person(
            "E-002", "jose.nunez@example.com", "José", "Núñez", "User",
            ("Sales",), "Sales", "2021-11-15", "+34 91 555 0102",
        ),
        Person(
            "E-003", "bjorn.astrom@example.se", "Björn", "Åström", "Supervisor",
            ("Support",), "Support", "2017-06-01", "+46 8 555 0103",
        ),
        Person(
            "E-004", "chloe.dubois@example.fr", "Chloé", "Dubois", "User",
            ("Sales",), "Sales", "2018-01-08", "+33 1 55 50 01 04",
        ),
        Person(
            "E-005", "mehmet.yilmaz@example.com", "Mehmet", "Yılmaz", "User",
            ("Engineering", "Finance"), "Engineering", "2023-09-18", "+90 212 555 0105",
        ),
        Person(
            "E-006", "anna.schafer@example.de", "Anna", "Schäfer", "User",
            ("Finance",), "Finance", "2020-02-29", "+49 30 555 0106",
        ),
        Person(
            "E-007", "aoife.nimhaolain@example.ie", "Aoife", "Ní Mhaoláin", "User",
            ("Sales", "Support"), "Sales", "2024-05-06", "+353 1 555 0107",
        ),
        Person(
            "E-008", "lukasz.wojcik@example.pl", "Łukasz", "Wójcik", "User",
            ("Engineering",), "Engineering", "2022-04-11", "+48 12 555 0108",
        ),
        Person(
            "E-009", "søren.kierkegård@example.dk", "Søren", "Kierkegård", "Supervisor",
            ("Support",), "Support", "2016-10-03", "+45 33 55 01 09",
        ),
        Person(
            "E-010", "minh.duong@example.vn", "Minh", "Dương", "User",
            ("Engineering",), "Engineering", "2021-07-19", "+84 28 5555 0110",
        ),
        Person(
            "E-011", "thora.thorsdottir@example.is", "Þóra", "Þórsdóttir", "User",
            ("Finance",), "Finance", "2015-01-05", "+354 555 0111",
        ),
        Person(
            "E-012", "kenji.otani@example.jp", "健二", "大谷", "User",
            ("Sales",), "Sales", "2019-12-02", "+81 3 5555 0112",
        ),
        Person(
            "E-013", "renee.lefevre@example.fr", "Renée", "Lefèvre", "User",
            ("Support",), "Support", "2026-11-24", "+33 4 55 50 01 13",
        ),
        Person(
            "E-014", "chiamaka.okonkwo@example.ng", "Chiamaka", "Ọkọnkwọ", "Admin",
            ("Engineering", "Support"), "Engineering", "2026-11-24", "+234 802 555 0114",
        ),
        Person(
            "E-015", "olafur.arnalds@example.is", "Ólafur", "Arnalds", "User",
            ("Sales",), "Sales", "2026-11-27", "+354 555 0115",
        ),
    )
}  # fmt: skip


def counts(**given: int) -> dict[str, int]:
    """A job's counts: the ones named, every other one zero."""
    unknown = set(given) - set(COUNT_NAMES)
    assert not unknown, f"not a count: {unknown}"
    return {name: given.get(name, 0) for name in COUNT_NAMES}


def stored_email(email: str) -> str:
    """An email as the directory keeps it: local part as given, domain lower-cased."""
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def stored_phone(phone: str) -> str:
    """A phone as the directory keeps it: E.164, the + and the digits (these numbers are
    all written with their country code and no trunk prefix)."""
    return "+" + "".join(ch for ch in phone if ch.isdigit())


def spreadsheet_safe(cell: str) -> str:
    """A cell as the errors CSV writes it: a would-be formula gets a leading `'`."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def user_view(person: Person, status: str) -> dict[str, Any]:
    """What `users list --json` should show of a person (groups in any order)."""
    return {
        "key": person.employee_id,
        "email": stored_email(person.email),
        "status": status,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "display_name": None,
        "role": person.role,
        "groups": sorted(person.groups),
        "labels": [],
        "source_usernames": [],
        "fields": {
            "department": person.department,
            "phone": stored_phone(person.phone),
            "start_date": person.start_date,
        },
        "archived": status == "archived",
    }


def shown(user: dict[str, Any]) -> dict[str, Any]:
    """The part of a listed user this test checks."""
    view = {name: user[name] for name in LISTED}
    return {**view, "groups": sorted(user["groups"]), "archived": user["archived_at"] is not None}


class Week:
    """The week's state: the command, the files dropped, and what the directory should hold."""

    def __init__(self, root: Path, database_url: str) -> None:
        source: dict[str, TomlValue] = {
            "name": "hr",
            "kind": "local",
            "path": str(root / "drop"),
            "profile": "hr_full",
            "mode": "full",
            "max_archive_percent": MAX_ARCHIVE_PERCENT,
            "max_archive_count": MAX_ARCHIVE_COUNT,
        }
        rules: dict[str, TomlValue] = {
            "groups": ["Engineering", "Sales", "Support", "Finance"],
            "create_missing_groups": False,
            "roles": ["User", "Admin", "Supervisor"],
        }
        config = write_config(root, database_url, sources=[source], directory=rules)
        self.syncd = Syncd(config, root)
        self.drops = root / "drop"
        self.drops.mkdir()
        self.expected: dict[str, dict[str, Any]] = {}

    # --- the files ---------------------------------------------------------------------

    def drop(self, name: str, rows: Iterable[Person], *, cut_last_row_at: int = 0) -> Path:
        """Write an export; `cut_last_row_at` > 0 cuts the last row after that many
        characters, as an upload broken off mid-row leaves it."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows(person.cells() for person in rows)
        text = out.getvalue()
        if cut_last_row_at:
            last_row = text.rstrip("\r\n").rfind("\r\n") + 2
            text = text[: last_row + cut_last_row_at]
        path = self.drops / name
        path.write_bytes(text.encode("utf-8"))
        return path

    def redrop(self, earlier: Path, name: str) -> Path:
        """The same bytes as an earlier file, under a new name."""
        path = self.drops / name
        path.write_bytes(earlier.read_bytes())
        return path

    # --- the commands ------------------------------------------------------------------

    def import_file(self, path: Path, *, code: int, status: str, **count: int) -> dict[str, Any]:
        """`syncd import FILE --source hr --json`: its exit code, status and every count."""
        ran = self.syncd("import", path, "--source", "hr", "--json")
        job = self.job_json(ran, code)
        assert job["status"] == status, ran.describe()
        assert job["file"] == path.name
        assert (job["source"], job["mode"]) == ("hr", "full")
        assert job["counts"] == counts(**count), ran.describe()
        return job

    def job_json(self, ran: Ran, code: int) -> dict[str, Any]:
        assert ran.code == code, ran.describe()
        assert isinstance(ran.json, dict), ran.describe()
        assert set(ran.json) >= OUTCOME_KEYS, ran.describe()
        return ran.json

    def show(self, job_id: str) -> dict[str, Any]:
        """`syncd jobs show ID --json`, the ID typed as support might: lower case."""
        return self.job_json(self.syncd("jobs", "show", job_id.lower(), "--json"), 0)

    # --- the directory -----------------------------------------------------------------

    def now_active(self, *people: Person) -> None:
        """These people are (now) active users with exactly these values."""
        self.expected.update({p.employee_id: user_view(p, "active") for p in people})

    def now_archived(self, *keys: str) -> None:
        """These users are (now) archived, their values as they were."""
        for key in keys:
            self.expected[key] = {**self.expected[key], "status": "archived", "archived": True}

    def person(self, key: str) -> Person:
        """A person as the directory holds them now (the file of a quiet night)."""
        user = self.expected[key]
        fields = user["fields"]
        return replace(
            STAFF[key],
            email=user["email"],
            first_name=user["first_name"],
            last_name=user["last_name"],
            role=user["role"],
            groups=tuple(user["groups"]),
            department=fields["department"],
            start_date=fields["start_date"],
            phone=fields["phone"],
        )

    def people(self, *keys: str) -> list[Person]:
        return [self.person(key) for key in keys]

    def check_directory(self) -> dict[str, dict[str, Any]]:
        """`syncd users list --json` shows exactly the expected users; returns them by key."""
        ran = self.syncd("users", "list", "--json")
        assert ran.code == 0, ran.describe()
        listed = {user["key"]: user for user in ran.json}
        assert {key: shown(user) for key, user in listed.items()} == self.expected
        assert all(user["directory"] == "hr" for user in listed.values())
        return listed


def keys(*numbers: int) -> list[str]:
    return [f"E-{n:03d}" for n in numbers]


@pytest.mark.usefixtures("syncd_script")
def test_a_week_of_nightly_exports_keeps_the_directory_in_step(db_url: str, tmp_path: Path) -> None:
    """Full exports night after night create, archive, update, rename, reactivate, survive
    row errors, skip a re-drop and hold truncated files until a person decides."""
    week = Week(tmp_path, db_url)

    # Night 1, first load: everyone is created.
    first = week.drop("users_2026-11-22.csv", (STAFF[k] for k in keys(*range(1, 13))))
    week.import_file(first, code=0, status="applied", rows=12, valid=12, created=12)
    week.now_active(*(STAFF[k] for k in keys(*range(1, 13))))
    created_at = {key: user["created_at"] for key, user in week.check_directory().items()}

    # Night 2, leavers: two rows are gone (2 of 12 is under both limits), they are archived.
    leavers = week.drop("users_2026-11-23.csv", week.people(*keys(*range(1, 11))))
    week.import_file(leavers, code=0, status="applied", rows=10, valid=10, unchanged=10, archived=2)
    week.now_archived("E-011", "E-012")
    week.check_directory()

    # Night 3, joiners: two new rows are created, the others left alone.
    joined = [*week.people(*keys(*range(1, 11))), STAFF["E-013"], STAFF["E-014"]]
    joiners = week.drop("users_2026-11-24.csv", joined)
    week.import_file(joiners, code=0, status="applied", rows=12, valid=12, created=2, unchanged=10)
    week.now_active(STAFF["E-013"], STAFF["E-014"])
    week.check_directory()

    # Night 4, field changes: a department and phone, a group added, a role; a role in
    # other case and groups in other order change nothing, so are not counted as updated.
    moved = replace(week.person("E-002"), department="Support", phone="+34 91 555 0999")
    grouped = replace(week.person("E-003"), groups=("Support", "Sales"))
    promoted = replace(week.person("E-004"), role="Supervisor")
    same_role = replace(week.person("E-001"), role="admin")
    reordered = replace(week.person("E-005"), groups=("Finance", "Engineering"))
    changes = [same_role, moved, grouped, promoted, reordered]
    quiet = week.people(*keys(6, 7, 8, 9, 10, 13, 14))
    changed = week.drop("users_2026-11-25.csv", [*changes, *quiet])
    week.import_file(changed, code=0, status="applied", rows=12, valid=12, updated=3, unchanged=9)
    week.now_active(moved, grouped, promoted)
    week.check_directory()

    # Night 5, an email rename under the same Employee ID is an email change, not an
    # archive and a create; a change of case only is an update but not an email change.
    renamed = replace(week.person("E-006"), email="anna.schafer-weber@example.de")
    renamed = replace(renamed, last_name="Schäfer-Weber")
    recased = replace(week.person("E-007"), email="Aoife.NiMhaolain@Example.IE")
    rest = week.people(*keys(1, 2, 3, 4, 5, 8, 9, 10, 13, 14))
    rename = week.drop("users_2026-11-26.csv", [renamed, recased, *rest])
    job = week.import_file(
        rename, code=0, status="applied", rows=12, valid=12, updated=2, unchanged=10,
        email_changed=1,
    )  # fmt: skip
    week.now_active(renamed, recased)
    listed = week.check_directory()
    assert listed["E-006"]["created_at"] == created_at["E-006"]
    assert listed["E-006"]["last_job_id"] == job["job_id"]
    assert listed["E-007"]["email"] == "Aoife.NiMhaolain@example.ie"

    # Night 6, a returning employee: archived -> reactivated (new phone and all).
    back = replace(STAFF["E-011"], phone="+354 555 0999")
    present = [*week.people(*keys(*range(1, 11))), back, *week.people("E-013", "E-014")]
    returning = week.drop("users_2026-11-27.csv", present)
    sixth = week.import_file(
        returning, code=0, status="applied", rows=13, valid=13, unchanged=12, reactivated=1
    )
    week.now_active(back)
    week.check_directory()

    # Night 7, a dirty file: a bad date, an email two rows share in different case, a
    # blank Employee ID. Those rows' users are untouched; since one key is unreadable,
    # E-010 (absent) is not archived; the valid update and the joiner still apply.
    rephoned = replace(week.person("E-001"), phone="+48 22 555 0999")
    bad_date = replace(week.person("E-005"), start_date="2024-02-30", phone="+90 212 555 0999")
    same_email = replace(week.person("E-008"), email=week.person("E-009").email.upper())
    no_key = Person(
        "", "ines.muller@example.de", "Inès", "Müller", "User", ("Sales",), "Sales",
        "2026-11-28", "+49 89 555 0116",
    )  # fmt: skip
    dirty_rows = [
        rephoned, *week.people("E-002", "E-003", "E-004"), bad_date, *week.people("E-006", "E-007"),
        same_email, *week.people("E-009", "E-011", "E-013", "E-014"), no_key, STAFF["E-015"],
    ]  # fmt: skip
    dirty = week.drop("users_2026-11-28.csv", dirty_rows)
    seventh = week.import_file(
        dirty, code=1, status="applied_with_errors", rows=14, valid=10, invalid=4, created=1,
        updated=1, unchanged=8,
    )  # fmt: skip
    assert any(
        "no readable key" in m and "no user was archived" in m for m in seventh["messages"]
    ), seventh["messages"]
    failed_rows = {(e["row"], e["column"]) for e in seventh["row_errors"]}
    assert failed_rows == {
        (6, "Start Date"), (9, "Primary Email"), (10, "Primary Email"), (14, "Employee ID"),
    }  # fmt: skip
    errors_csv = Path(seventh["errors_csv"])
    assert errors_csv.name == f"{seventh['job_id']}.csv"
    header, *failed = read_errors_csv(errors_csv)
    assert header == [*HEADER, "errors"]
    bad = [bad_date, same_email, week.person("E-009"), no_key]
    assert [row[:-1] for row in failed] == [[spreadsheet_safe(c) for c in p.cells()] for p in bad]
    assert "Start Date: " in failed[0][-1]
    assert "is also on row 10" in failed[1][-1]
    assert "is also on row 9" in failed[2][-1]
    assert failed[3][-1] == "Employee ID: a value is required"
    week.now_active(rephoned, STAFF["E-015"])
    week.check_directory()

    # Support looks the dirty job up, and asks for its errors CSV again.
    shown_job = week.show(seventh["job_id"])
    assert {k: shown_job[k] for k in OUTCOME_KEYS} == {k: seventh[k] for k in OUTCOME_KEYS}
    assert set(shown_job["counts"]) == set(COUNT_NAMES)
    again = tmp_path / "again.csv"
    ran = week.syncd("jobs", "errors", seventh["job_id"], "-o", again)
    assert ran.code == 0, ran.describe()
    assert "4 rows with errors" in ran.stdout
    assert read_errors_csv(again) == read_errors_csv(errors_csv)

    # Night 8, the file of night 6 dropped again: skipped, pointing at night 6's job (had
    # it been applied, it would archive E-015).
    redrop = week.redrop(returning, "users_2026-11-29.csv")
    eighth = week.import_file(redrop, code=0, status="skipped")
    assert eighth["skipped_of"] == sixth["job_id"]
    assert any(sixth["job_id"] in m for m in eighth["messages"]), eighth["messages"]
    week.check_directory()

    # Night 9, a truncated file: 5 of 14 active users would go, above both limits, so the
    # job is held and nothing changes until a person approves it.
    short = week.drop("users_2026-11-30.csv", week.people(*keys(*range(1, 10))))
    held = week.import_file(short, code=3, status="held", rows=9, valid=9, unchanged=9, archived=5)
    reasons = " ".join(held["messages"])
    assert "max_archive_count = 3" in reasons
    assert "max_archive_percent = 20" in reasons
    # What to do next is said where the job is shown, while it is held.
    shown = week.syncd("jobs", "show", held["job_id"])
    assert f"syncd jobs approve {held['job_id']}" in shown.stdout, shown.describe()
    week.check_directory()
    ran = week.syncd("jobs", "approve", held["job_id"])
    assert ran.code == 0, ran.describe()
    assert held["job_id"] in ran.stdout
    approved = week.show(held["job_id"])
    assert approved["status"] == "applied"
    assert approved["counts"] == counts(rows=9, valid=9, unchanged=9, archived=5)
    week.now_archived("E-010", "E-011", "E-013", "E-014", "E-015")
    week.check_directory()

    # Night 10, an upload broken off mid-row (E-005's row ends inside its email): a file
    # cut short may have lost any number of rows, and the row it ends in cannot be trusted,
    # so nobody is archived; the four whole rows apply (unchanged), and nothing changed.
    rows = week.people(*keys(1, 2, 3, 4, 5))
    broken = week.drop("users_2026-12-01.csv", rows, cut_last_row_at=len("E-005,mehmet.yil"))
    tenth = week.import_file(
        broken, code=1, status="applied_with_errors", rows=5, valid=4, invalid=1, unchanged=4
    )
    assert [e["row"] for e in tenth["row_errors"]] == [6]
    assert "cut short" in tenth["row_errors"][0]["message"]
    assert any("no user was archived" in m for m in tenth["messages"]), tenth["messages"]
    week.check_directory()


def read_errors_csv(path: Path) -> list[list[str]]:
    """An errors CSV's rows (header first); it is UTF-8 with a BOM and CRLF line ends."""
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), "the errors CSV has no UTF-8 BOM"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
