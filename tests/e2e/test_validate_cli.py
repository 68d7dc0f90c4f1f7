"""`syncd validate` and `syncd template` as people run them: exit codes, JSON, errors CSV.

Also the round trip the errors CSV exists for: open it, fix some rows, upload it again.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from bench import measure
from syncd.config import load_config
from syncd.core.reading import FileParts
from syncd.intake import PARTS_FROM_BYTES, read_options
from tests.e2e.cli import SYNCD, environment, syncd, syncd_json
from tests.e2e.conftest import COUNT_NAMES, OUTCOME_KEYS

CONFIG = """
[[sources]]
name = "hr"
kind = "local"
path = "drop"
profile = "staff"

[[sources]]
name = "uploads"
kind = "local"
path = "uploads"
profile = "default"

[[sources]]
name = "nightly"
kind = "local"
path = "nightly"
profile = "bare"

[directory]
groups = ["Engineering", "Sales", "Support"]
roles = ["User", "Admin", "Supervisor"]

[profiles.staff]
key = "employee_id"
columns = [
  { field = "employee_id", header = "Employee ID" },
  { field = "email", header = "Primary Email", aliases = ["Email"], required = true },
  { field = "first_name", header = "First Name" },
  { field = "last_name", header = "Last Name" },
  { field = "role", header = "Role" },
  { field = "groups", header = "Groups" },
  { field = "start_date", header = "Start Date", type = "date" },
  { field = "phone", header = "Phone" },
  { field = "note", header = 'Note, "free" text' },
]

[profiles.bare]
key = "email"
header = false
columns = [
  { field = "email", header = "Email" },
  { field = "first_name", header = "First Name" },
  { field = "phone", header = "Phone" },
]
"""

HEADER = "Employee ID,Primary Email,First Name,Last Name,Role,Groups,Start Date,Phone\n"
CLEAN = HEADER + (
    "E-1,ana@example.com,Ana,Łukasiewicz,User,Sales,2020-01-02,+48 22 555 0101\n"
    "E-2,bo@example.com,Bo,Ström,Admin,Support,2019-07-08,-\n"
)

# Four broken rows around two good ones. Cells a spreadsheet would run as a formula
# (`=`, `+`, `-`, `@`) sit in broken rows so they travel through the errors CSV.
DIRTY = HEADER + (
    "E-1,ana@example.com,Ana,Łukasiewicz,User,Sales,2020-01-02,+48 22 555 0101\n"
    "E-2,not-an-email,=SUM(A1:A2),Ñúñez,User,Sales,2020-01-02,-5\n"
    "E-3,bo@example.com,Bo,Ström,Admn,Sales,2020-01-02,+1 555 0100\n"
    "E-4,cy@example.com,Cy,Ødegård,User,Marketing,2020-01-02,@home\n"
    "E-5,di@example.com,Dï,Zoë,User,Sales,02/03/2020,+33 1 55 50\n"
    "E-6,ed@example.com,Ed,Müller,User,Support,2021-05-06,+49 30 555\n"
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _read_errors_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "the errors CSV starts with a UTF-8 BOM"
    assert b"\r\n" in raw, "its lines end in CRLF"
    assert b"\n" not in raw.replace(b"\r\n", b""), "no line ends in a bare LF"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


# --- exit codes ----------------------------------------------------------------------------


def test_a_clean_file_exits_0_and_prints_nothing_on_stderr(config: Path, tmp_path: Path) -> None:
    """A file without problems exits 0, writes no errors CSV and shows no progress when piped."""
    file = _write(tmp_path / "clean.csv", CLEAN)
    finished = syncd("--config", config, "validate", file, "--source", "hr", cwd=tmp_path)
    assert finished.code == 0, finished.stdout + finished.stderr
    assert finished.stderr == ""
    assert "valid" in finished.stdout
    assert not list(tmp_path.glob("*.errors.csv"))


def test_row_errors_exit_1_and_write_the_errors_csv_where_asked(
    config: Path, tmp_path: Path
) -> None:
    """Rows with errors exit 1 and the errors CSV goes to --errors-out, named in the JSON."""
    file = _write(tmp_path / "dirty.csv", DIRTY)
    out = tmp_path / "out" / "fix-me.csv"
    out.parent.mkdir()
    finished, outcome = syncd_json(
        "--config",
        config,
        "validate",
        file,
        "--source",
        "hr",
        "--errors-out",
        out,
        "--json",
        cwd=tmp_path,
    )
    assert finished.code == 1, finished.stderr
    assert finished.stderr == ""
    assert outcome["status"] == "invalid"
    assert outcome["errors_csv"] == str(out)
    assert outcome["counts"]["rows"] == 6
    assert outcome["counts"]["valid"] == 2
    assert outcome["counts"]["invalid"] == 4
    rows = _read_errors_csv(out)
    assert rows[0] == [*HEADER.strip().split(","), "errors"]
    assert [r[0] for r in rows[1:]] == ["E-2", "E-3", "E-4", "E-5"]
    assert "Role: 'Admn' is not one of User, Admin, Supervisor" in rows[2][-1]


def test_without_errors_out_the_errors_csv_is_named_after_the_file(
    config: Path, tmp_path: Path
) -> None:
    """With no --errors-out the errors CSV is ./<file name>.errors.csv in the working
    directory: validate stores nothing, so it has no job ID to name it after."""
    file = _write(tmp_path / "dirty.csv", DIRTY)
    finished, outcome = syncd_json(
        "--config", config, "validate", file, "--source", "hr", "--json", cwd=tmp_path
    )
    assert finished.code == 1
    assert outcome["errors_csv"] == "dirty.errors.csv"
    assert len(_read_errors_csv(tmp_path / outcome["errors_csv"])) == 5


def test_a_rejected_file_exits_2_and_says_what_to_do(config: Path, tmp_path: Path) -> None:
    """A file missing its key column is rejected whole (exit 2), the message names the column."""
    file = _write(tmp_path / "nokey.csv", "First Name,Last Name\nAna,Ł\n")
    finished, outcome = syncd_json(
        "--config", config, "validate", file, "--source", "uploads", "--json", cwd=tmp_path
    )
    assert finished.code == 2, finished.stdout + finished.stderr
    assert outcome["status"] == "rejected"
    assert outcome["errors_csv"] is None
    assert any("Email" in message for message in outcome["messages"])
    assert "Traceback" not in finished.stderr


def test_a_rejected_file_is_explained_in_words_without_json(config: Path, tmp_path: Path) -> None:
    """Without --json a rejected file prints its job and the reason as sentences."""
    file = _write(tmp_path / "empty.csv", "")
    finished = syncd("--config", config, "validate", file, "--source", "uploads", cwd=tmp_path)
    assert finished.code == 2
    assert "rejected" in finished.stdout
    assert "empty" in finished.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["validate"], "Missing argument", id="missing-file-argument"),
        pytest.param(["validate", "x.csv", "--frobnicate"], "--frobnicate", id="unknown-option"),
        pytest.param(["validate", "x.csv", "--source", "nope"], "nope", id="unknown-source"),
        pytest.param(["validate", "x.csv"], "--source", id="several-sources-none-named"),
        pytest.param(["validate", "missing.csv", "--source", "hr"], "missing.csv", id="no-file"),
        pytest.param(["template", "--source", "nope"], "hr, uploads", id="template-unknown"),
        pytest.param(["frobnicate"], "frobnicate", id="unknown-command"),
    ],
)
def test_bad_usage_exits_64_with_a_message_and_no_traceback(
    args: list[str], words: str, config: Path, tmp_path: Path
) -> None:
    """Asking for something the command line cannot do exits 64 and says what was wrong."""
    _write(tmp_path / "x.csv", CLEAN)
    finished = syncd("--config", config, *args, cwd=tmp_path)
    assert finished.code == 64, finished.stdout + finished.stderr
    assert words in finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""


def test_an_errors_csv_that_cannot_be_written_is_bad_usage(config: Path, tmp_path: Path) -> None:
    """--errors-out into a folder that does not exist exits 64 and names the path."""
    file = _write(tmp_path / "dirty.csv", DIRTY)
    out = tmp_path / "no-such-folder" / "errors.csv"
    finished = syncd(
        "--config",
        config,
        "validate",
        file,
        "--source",
        "hr",
        "--errors-out",
        out,
        cwd=tmp_path,
    )
    assert finished.code == 64, finished.stdout + finished.stderr
    assert str(out) in finished.stderr
    assert "Traceback" not in finished.stderr


def test_a_broken_configuration_exits_78_listing_every_problem_by_key(tmp_path: Path) -> None:
    """Every problem of a broken config is listed at once, each with its TOML key."""
    config = _write(
        tmp_path / "broken.toml",
        """
retention_days = "forever"
[database]
urll = "sqlite:///x.db"
[[sources]]
name = "a"
kind = "ftp"
[[sources]]
name = "b"
kind = "local"
path = "drop"
profile = "nope"
[profiles.p]
columns = [{ field = "email", type = "emial" }]
""",
    )
    _write(tmp_path / "x.csv", CLEAN)
    finished = syncd("--config", config, "validate", "x.csv", cwd=tmp_path)
    assert finished.code == 78, finished.stdout + finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""
    for key in (
        "retention_days",
        "database.urll",
        "sources[0].kind",
        "sources[1].profile",
        "profiles.p.columns[0].type",
    ):
        assert f"  - {key}: " in finished.stderr, key
    assert "did you mean 'url'" in finished.stderr


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("[database\nurl = 1", "not valid TOML", id="not-toml"),
        pytest.param(None, "does not exist", id="missing-file"),
    ],
)
def test_an_unreadable_configuration_exits_78(text: str | None, words: str, tmp_path: Path) -> None:
    """A config that is not TOML, or not there, exits 78 with a sentence and no traceback."""
    config = tmp_path / "syncd.toml"
    if text is not None:
        _write(config, text)
    _write(tmp_path / "x.csv", CLEAN)
    finished = syncd("--config", config, "validate", "x.csv", cwd=tmp_path)
    assert finished.code == 78
    assert words in finished.stderr
    assert "Traceback" not in finished.stderr


def test_syncd_config_from_the_environment_is_used(config: Path, tmp_path: Path) -> None:
    """$SYNCD_CONFIG names the configuration when --config is not given."""
    file = _write(tmp_path / "clean.csv", CLEAN)
    finished, outcome = syncd_json(
        "validate",
        file,
        "--source",
        "hr",
        "--json",
        cwd=tmp_path,
        env={"SYNCD_CONFIG": str(config)},
    )
    assert finished.code == 0, finished.stderr
    assert outcome["source"] == "hr"


# --- JSON ----------------------------------------------------------------------------------


def test_json_is_exactly_one_object_with_the_contract_keys(config: Path, tmp_path: Path) -> None:
    """--json prints one JSON object holding the job, its counts and its messages."""
    file = _write(tmp_path / "clean.csv", CLEAN)
    finished, outcome = syncd_json(
        "--config", config, "validate", file, "--source", "hr", "--json", cwd=tmp_path
    )
    assert finished.code == 0
    assert finished.stderr == ""
    assert isinstance(outcome, dict)
    assert set(outcome) >= OUTCOME_KEYS
    assert set(outcome["counts"]) == set(COUNT_NAMES)
    assert outcome["status"] == "valid"
    assert outcome["source"] == "hr"
    assert outcome["mode"] == "partial"
    assert outcome["file"] == "clean.csv"
    assert outcome["encoding"] == "utf-8"
    assert outcome["errors_csv"] is None
    assert outcome["messages"] == []
    assert outcome["counts"] == dict.fromkeys(set(COUNT_NAMES), 0) | {"rows": 2, "valid": 2}
    # Nothing is stored, so there is no job support could look up, and no ID is printed.
    assert outcome["job_id"] is None
    text = syncd("--config", config, "validate", file, "--source", "hr", cwd=tmp_path).stdout
    assert "Job " not in text


def test_json_messages_carry_notices_about_ignored_columns(config: Path, tmp_path: Path) -> None:
    """A column the profile does not know is named in `messages`, and the file still passes."""
    file = _write(tmp_path / "extra.csv", "Email,Shoe Size\nana@example.com,38\n")
    finished, outcome = syncd_json(
        "--config", config, "validate", file, "--source", "uploads", "--json", cwd=tmp_path
    )
    assert finished.code == 0
    assert any("Shoe Size" in message for message in outcome["messages"])


# --- template ------------------------------------------------------------------------------


def test_template_prints_the_profile_header_as_one_csv_row(config: Path, tmp_path: Path) -> None:
    """`syncd template` prints the header row, quoting headers holding a comma or a quote."""
    finished = syncd("--config", config, "template", "--source", "hr", cwd=tmp_path)
    assert finished.code == 0, finished.stderr
    assert finished.stderr == ""
    lines = finished.stdout.splitlines()
    assert len(lines) == 1
    assert next(csv.reader(io.StringIO(lines[0]))) == [
        "Employee ID",
        "Primary Email",
        "First Name",
        "Last Name",
        "Role",
        "Groups",
        "Start Date",
        "Phone",
        'Note, "free" text',
    ]


def test_a_filled_in_template_validates(config: Path, tmp_path: Path) -> None:
    """The template with a row under it is a file its own source accepts without notices."""
    header = syncd("--config", config, "template", "--source", "hr", cwd=tmp_path).stdout
    row = "E-9,zoe@example.com,Zoë,Kowalczyk,Admin,Engineering,2024-02-29,+48 1,hello\n"
    file = _write(tmp_path / "filled.csv", header + row)
    finished, outcome = syncd_json(
        "--config", config, "validate", file, "--source", "hr", "--json", cwd=tmp_path
    )
    assert finished.code == 0, finished.stdout
    assert outcome["messages"] == []
    assert outcome["counts"]["valid"] == 1


# --- the round trip ------------------------------------------------------------------------


def _fix(rows: list[list[str]], fixes: dict[str, tuple[int, str]]) -> list[list[str]]:
    """The rows with cells replaced: employee ID -> (column index, new value)."""
    fixed = [list(rows[0])]
    for row in rows[1:]:
        row = list(row)
        if row[0] in fixes:
            index, value = fixes[row[0]]
            row[index] = value
        fixed.append(row)
    return fixed


def _write_back(path: Path, rows: list[list[str]]) -> Path:
    """Save as a spreadsheet would after editing: UTF-8 with BOM, errors column kept."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_the_errors_csv_round_trip_is_lossless(config: Path, tmp_path: Path) -> None:
    """Fixed rows of an errors CSV pass, the rest are reported again with their cells intact."""
    dirty = _write(tmp_path / "dirty.csv", DIRTY)
    first = tmp_path / "first.csv"
    finished = syncd(
        "--config",
        config,
        "validate",
        dirty,
        "--source",
        "hr",
        "--errors-out",
        first,
        cwd=tmp_path,
    )
    assert finished.code == 1
    rows = _read_errors_csv(first)
    by_id = {row[0]: row for row in rows[1:]}
    # A spreadsheet would run these as formulas: each has one leading apostrophe.
    assert by_id["E-2"][2] == "'=SUM(A1:A2)"
    assert by_id["E-2"][7] == "'-5"
    assert by_id["E-3"][7] == "'+1 555 0100"
    assert by_id["E-4"][7] == "'@home"
    assert by_id["E-2"][3] == "Ñúñez"  # non-ASCII survives as is

    # Fix two rows (E-3's role, E-5's date); E-2 and E-4 stay broken.
    edited = _write_back(
        tmp_path / "edited.csv", _fix(rows, {"E-3": (4, "Admin"), "E-5": (6, "2020-03-02")})
    )
    second = tmp_path / "second.csv"
    finished, outcome = syncd_json(
        "--config",
        config,
        "validate",
        edited,
        "--source",
        "hr",
        "--errors-out",
        second,
        "--json",
        cwd=tmp_path,
    )
    assert finished.code == 1, finished.stdout
    assert outcome["encoding"] == "utf-8-sig"
    assert outcome["counts"]["rows"] == 4
    assert outcome["counts"]["valid"] == 2
    assert outcome["counts"]["invalid"] == 2
    assert not any("errors" in message for message in outcome["messages"])
    again = _read_errors_csv(second)
    # The still-broken rows come back cell for cell as in the first errors CSV: the
    # apostrophes were taken off on reading and put back on writing, never doubled.
    assert again[0] == rows[0]
    assert [row[:-1] for row in again[1:]] == [by_id["E-2"][:-1], by_id["E-4"][:-1]]

    # Fix the rest: the file passes whole.
    done = _write_back(
        tmp_path / "done.csv",
        _fix(again, {"E-2": (1, "bea@example.com"), "E-4": (5, "Support")}),
    )
    finished = syncd("--config", config, "validate", done, "--source", "hr", cwd=tmp_path)
    assert finished.code == 0, finished.stdout


def test_cells_from_the_errors_csv_are_imported_exactly_as_first_written(
    config: Path, tmp_path: Path
) -> None:
    """After the round trip `=`, `+`, `-` and `@` cells reach the directory as first written."""
    dirty = _write(tmp_path / "dirty.csv", DIRTY)
    first = tmp_path / "first.csv"
    syncd(
        "--config",
        config,
        "validate",
        dirty,
        "--source",
        "hr",
        "--errors-out",
        first,
        cwd=tmp_path,
    )
    rows = _read_errors_csv(first)
    fixed = _fix(
        rows,
        {
            "E-2": (1, "bea@example.com"),
            "E-3": (4, "Admin"),
            "E-4": (5, "Support"),
            "E-5": (6, "2020-03-02"),
        },
    )
    edited = _write_back(tmp_path / "edited.csv", fixed)
    finished, outcome = syncd_json(
        "--config", config, "import", edited, "--source", "hr", "--json", cwd=tmp_path
    )
    assert finished.code == 0, finished.stdout + finished.stderr
    assert outcome["counts"]["created"] == 4
    finished, users = syncd_json("--config", config, "users", "list", "--json", cwd=tmp_path)
    assert finished.code == 0, finished.stderr
    by_key = {user["key"]: user for user in users}
    assert by_key["E-2"]["first_name"] == "=SUM(A1:A2)"
    assert by_key["E-2"]["fields"]["phone"] == "-5"
    assert by_key["E-2"]["last_name"] == "Ñúñez"
    assert by_key["E-3"]["fields"]["phone"] == "+1 555 0100"
    assert by_key["E-4"]["fields"]["phone"] == "@home"
    assert by_key["E-5"]["first_name"] == "Dï"


def test_the_errors_csv_of_a_header_less_file_round_trips(config: Path, tmp_path: Path) -> None:
    """A header-less file's errors CSV names its columns, and comes back without row errors."""
    dirty = _write(tmp_path / "nightly.csv", "ana@example.com,Ana,+1 555\nbad,Bo,=2*3\n")
    first = tmp_path / "first.csv"
    finished = syncd(
        "--config",
        config,
        "validate",
        dirty,
        "--source",
        "nightly",
        "--errors-out",
        first,
        cwd=tmp_path,
    )
    assert finished.code == 1, finished.stdout
    rows = _read_errors_csv(first)
    assert rows[0] == ["Email", "First Name", "Phone", "errors"]
    assert rows[1][:3] == ["bad", "Bo", "'=2*3"]

    edited = _write_back(tmp_path / "edited.csv", [rows[0], ["bo@example.com", *rows[1][1:]]])
    finished, outcome = syncd_json(
        "--config", config, "import", edited, "--source", "nightly", "--json", cwd=tmp_path
    )
    assert finished.code == 0, finished.stdout
    assert outcome["counts"]["created"] == 1
    finished, users = syncd_json("--config", config, "users", "list", "--json", cwd=tmp_path)
    assert [(u["email"], u["fields"]) for u in users] == [("bo@example.com", {"phone": "=2*3"})]


_OVER_CAP = "huge.csv is 4,294,967,296 bytes, more than the 1,073,741,824"


def _sparse_4_gib(tmp_path: Path) -> Path:
    """A 4 GiB file that takes no disk: a header and 4 GiB of NULs."""
    file = tmp_path / "huge.csv"
    with file.open("wb") as handle:
        handle.write(b"Email\n")
        handle.truncate(4 * 1024**3)
    return file


@pytest.mark.parametrize("command", ["validate", "import"])
def test_a_file_over_max_bytes_is_refused_without_being_read(
    command: str, config: Path, tmp_path: Path
) -> None:
    """A 4 GiB file is refused by its size alone: exit 2, a message naming the cap and
    what to do, and syncd's peak memory far below the file's."""
    file = _sparse_4_gib(tmp_path)
    # measured from a bare launcher: spawned from this pytest worker, the command's
    # ru_maxrss would start at the worker's own peak
    run = measure(
        [str(SYNCD), "--config", str(config), command, str(file), "--source", "uploads"],
        cwd=tmp_path,
        env=environment(),
    )
    assert run.exit_code == 2, run.stdout + run.stderr
    assert _OVER_CAP in run.stdout
    assert "raise max_bytes in the profile" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert run.peak_rss_mib < 512, f"peak RSS {run.peak_rss_mib:.0f} MiB: the file was read"


@pytest.mark.parametrize("command", ["validate", "import", "import --dry-run"])
def test_a_file_over_max_bytes_gets_the_json_object_and_an_import_its_job(
    command: str, config: Path, tmp_path: Path
) -> None:
    """Refused unread, the file still gets what any rejected file gets: the one JSON
    object `--json` promises (exit 2, status rejected, the message) and, imported, a job
    that support can look up by its ID (a dry run stores none)."""
    file = _sparse_4_gib(tmp_path)
    told = 'profile = "default"\nnotify = ["it@example.com"]\n'
    config.write_text(CONFIG.replace('profile = "default"\n', told), encoding="utf-8")
    finished, outcome = syncd_json(
        "--config", config, *command.split(), file, "--source", "uploads", "--json", cwd=tmp_path
    )
    assert finished.code == 2, finished.stdout + finished.stderr
    assert set(outcome) >= set(OUTCOME_KEYS)
    assert (outcome["status"], outcome["file"], outcome["encoding"]) == (
        "rejected",
        "huge.csv",
        None,
    )
    assert all(outcome["counts"][name] == 0 for name in COUNT_NAMES)
    assert _OVER_CAP in outcome["messages"][0]
    assert "Traceback" not in finished.stderr
    if command == "validate":
        assert outcome["job_id"] is None
        return
    _, jobs = syncd_json("--config", config, "jobs", "list", "--json", cwd=tmp_path)
    if command == "import --dry-run":
        assert outcome["job_id"] is None
        assert jobs == []
        return
    assert [job["job_id"] for job in jobs] == [outcome["job_id"]]
    finished, shown = syncd_json(
        "--config", config, "jobs", "show", outcome["job_id"], "--json", cwd=tmp_path
    )
    assert (shown["status"], shown["file"]) == ("rejected", "huge.csv")
    assert shown["messages"] == outcome["messages"]
    with sqlite3.connect(tmp_path / "var" / "syncd.db") as db:
        queued = db.execute("SELECT job_id, kind FROM outbox").fetchall()
    assert queued == [(outcome["job_id"], "rejected")], "its sender hears of it"


# --- a file read in parts ------------------------------------------------------------------


def test_a_file_of_256_mib_is_read_in_parts_and_says_what_a_whole_read_says(
    config: Path, tmp_path: Path
) -> None:
    """A file over the size `validate` reads in parts (32 MiB each, this one in ten):
    repeats far apart are found across the parts, each occurrence naming the other's row,
    and the errors CSV holds the failed rows alone, in file order, as written."""
    note = "x" * 200
    count = 1_150_000
    lines = [HEADER.strip() + ',"Note, ""free"" text"']
    lines += [
        f'E-{i},u{i}@example.com,Ann,Lee,User,Sales,2020-01-02,,"{note}, ""{i}"""'
        for i in range(count)
    ]
    lines[3] = lines[3].replace("u2@example.com", "u1000000@example.com")  # row 4
    lines[600_000] = lines[600_000].replace(",User,", ",Admn,")  # row 600,001
    lines[-1] = lines[-1].replace(f"E-{count - 1},", "E-7,")  # row 1,150,001
    file = tmp_path / "big.csv"
    file.write_bytes("\r\n".join(lines).encode() + b"\r\n")
    assert file.stat().st_size >= PARTS_FROM_BYTES
    loaded = load_config(config, {})
    options = read_options(loaded.profiles["staff"])
    assert sum(1 for _ in FileParts(file.read_bytes(), options)) >= 9  # none refused
    finished, outcome = syncd_json(
        "--config", config, "validate", file, "--source", "hr", "--json", cwd=tmp_path,
        timeout=180,
    )  # fmt: skip
    assert finished.code == 1, finished.stderr
    assert outcome["counts"]["rows"] == count
    assert outcome["counts"]["invalid"] == 5
    assert outcome["counts"]["valid"] == count - 5
    rows = _read_errors_csv(tmp_path / "big.errors.csv")
    assert [(r[0], r[-1]) for r in rows[1:]] == [
        ("E-2", "Primary Email: 'u1000000@example.com' is also on row 1000002; "
                "each email address may appear once"),
        ("E-7", "Employee ID: 'E-7' is also on row 1150001; each user may appear once"),
        ("E-599999", "Role: 'Admn' is not one of User, Admin, Supervisor"),
        ("E-1000000", "Primary Email: 'u1000000@example.com' is also on row 4; "
                      "each email address may appear once"),
        ("E-7", "Employee ID: 'E-7' is also on row 9; each user may appear once"),
    ]  # fmt: skip
    assert rows[1][-2] == f'{note}, "2"'
