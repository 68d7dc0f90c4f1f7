"""The shipped examples: each example CSV validates against its built-in profile."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from syncd.core.builtin_profiles import BUILTIN_PROFILES
from tests.e2e.cli import syncd, syncd_json

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "config" / "examples"
EXAMPLE_CONFIG = REPO / "config" / "syncd.example.toml"

# What the examples name: their groups, roles and source-username sources must exist.
DIRECTORY = """
[directory]
groups = ["Engineering", "Sales", "Support", "Finance"]
create_missing_groups = false
roles = ["User", "Admin", "Supervisor"]
enabled_sources = ["slack", "email"]
"""


def _config(tmp_path: Path, profile: str) -> Path:
    path = tmp_path / f"{profile}.toml"
    path.write_text(
        f"""
[[sources]]
name = "examples"
kind = "local"
path = "drop"
profile = "{profile}"
{DIRECTORY}""",
        encoding="utf-8",
    )
    return path


def _data_rows(example: Path) -> int:
    with example.open(encoding="utf-8", newline="") as handle:
        return sum(1 for record in csv.reader(handle) if any(record)) - 1


def test_every_builtin_profile_has_an_example_file() -> None:
    """Each built-in profile ships config/examples/<profile>.csv; no example is orphaned."""
    examples = {path.stem for path in EXAMPLES.glob("*.csv")}
    assert examples == set(BUILTIN_PROFILES)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.csv")), ids=lambda p: p.stem)
def test_an_example_file_validates_cleanly_against_its_profile(
    example: Path, tmp_path: Path
) -> None:
    """`syncd validate` accepts every row of an example file and exits 0."""
    config = _config(tmp_path, example.stem)
    finished, outcome = syncd_json("--config", config, "validate", example, "--json", cwd=tmp_path)
    assert finished.code == 0, finished.stdout + finished.stderr
    assert outcome["status"] == "valid"
    assert outcome["source"] == "examples"
    assert outcome["encoding"] == "utf-8"
    rows = _data_rows(example)
    assert rows >= 4
    assert outcome["counts"]["rows"] == rows
    assert outcome["counts"]["valid"] == rows
    assert outcome["counts"]["invalid"] == 0
    assert outcome["errors_csv"] is None
    assert finished.stderr == ""
    assert not list(tmp_path.glob("*.csv")), "no errors CSV is written for a clean file"


@pytest.mark.parametrize(
    ("source", "example"), [("hr", "hr_full"), ("uploads", "default")], ids=["sftp", "local"]
)
def test_the_example_configuration_loads_and_validates_the_examples(
    source: str, example: str, tmp_path: Path
) -> None:
    """config/syncd.example.toml is a working configuration for the examples of its sources."""
    finished, outcome = syncd_json(
        "--config",
        EXAMPLE_CONFIG,
        "validate",
        EXAMPLES / f"{example}.csv",
        "--source",
        source,
        "--json",
        cwd=tmp_path,
    )
    assert finished.code == 0, finished.stdout + finished.stderr
    assert outcome["source"] == source
    assert outcome["counts"]["invalid"] == 0


def test_the_template_of_a_profile_is_the_header_of_its_example(tmp_path: Path) -> None:
    """`syncd template` prints the header row that the profile's example file starts with."""
    config = _config(tmp_path, "hr_full")
    finished = syncd("--config", config, "template", "--source", "examples", cwd=tmp_path)
    assert finished.code == 0, finished.stderr
    first_line = (EXAMPLES / "hr_full.csv").read_text(encoding="utf-8").splitlines()[0]
    assert finished.stdout.strip() == first_line
