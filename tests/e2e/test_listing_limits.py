"""Tables have limits: `users list` and `jobs list` show a page and say how many more.

`--json` stays complete unless `--limit` is given: scripts read every user from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import syncd, syncd_json

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "config" / "examples"
MANY = 55  # more than the 50 the users table shows, before the examples' users


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of more than 50 users, imported by three jobs (on the embedded defaults)."""
    root = tmp_path_factory.mktemp("limits")
    many = root / "many.csv"
    lines = ["Email,First Name,Last Name"]
    lines += [f"person.{n:03}@example.com,Person,Number {n}" for n in range(MANY)]
    many.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for path in (many, EXAMPLES / "people.csv", EXAMPLES / "agents.csv"):
        finished = syncd("--config", _config(root), "import", path, cwd=root)
        assert finished.code == 0, finished.stdout + finished.stderr
    return root


def _config(root: Path) -> Path:
    config = root / "syncd.toml"
    config.write_text('state_dir = "var"\n', encoding="utf-8")
    return config


def _users(root: Path, *args: str) -> list[str]:
    finished = syncd("--config", _config(root), "users", "list", *args, cwd=root)
    assert finished.code == 0, finished.stderr
    return finished.stdout.splitlines()


def test_the_users_table_shows_50_and_says_how_to_see_the_rest(workdir: Path) -> None:
    """Header, 50 users, then one line with how many more and the --limit that shows all."""
    _, users = syncd_json("--config", _config(workdir), "users", "list", "--json", cwd=workdir)
    total = len(users)
    assert total > MANY
    lines = _users(workdir)
    assert len(lines) == 1 + 50 + 1
    assert lines[0].split()[:3] == ["KEY", "EMAIL", "STATUS"]
    assert lines[-1] == (
        f"{total - 50} more users not shown (50 of {total}): add --limit {total} to see them all"
    )
    everyone = _users(workdir, "--limit", str(total))
    assert len(everyone) == 1 + total
    assert "more users not shown" not in everyone[-1]


def test_users_json_lists_everyone_unless_limited(workdir: Path) -> None:
    """`--json` has every user; with `--limit N`, N users and no extra line."""
    finished, users = syncd_json(
        "--config", _config(workdir), "users", "list", "--json", cwd=workdir
    )
    assert finished.code == 0, finished.stderr
    assert len(users) > 50
    assert len({user["email"] for user in users}) == len(users)
    finished, some = syncd_json(
        "--config", _config(workdir), "users", "list", "--json", "--limit", "3", cwd=workdir
    )
    assert [user["email"] for user in some] == [user["email"] for user in users[:3]]


def test_the_jobs_table_says_how_many_more_jobs_there_are(workdir: Path) -> None:
    """With --limit 2 of 3 jobs the table ends with "1 more job not shown"; --json has all."""
    finished = syncd("--config", _config(workdir), "jobs", "list", "--limit", "2", cwd=workdir)
    assert finished.code == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert len(lines) == 1 + 2 + 1
    assert lines[-1] == "1 more job not shown (2 of 3): add --limit 3 to see them all"
    finished, jobs = syncd_json("--config", _config(workdir), "jobs", "list", "--json", cwd=workdir)
    assert [job["file"] for job in jobs] == ["agents.csv", "people.csv", "many.csv"]
    finished = syncd("--config", _config(workdir), "jobs", "list", cwd=workdir)
    assert len(finished.stdout.splitlines()) == 1 + 3, "all 3 jobs fit in the default 20"
