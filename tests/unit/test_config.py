"""Loading the configuration: where it is found, its defaults, and how problems are reported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from syncd.config import SYSTEM_CONFIG_PATH, Config, find_config_path, load_config
from syncd.core.builtin_profiles import BUILTIN_PROFILES
from syncd.errors import ConfigError, UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "syncd.example.toml"

DESIGN_EXAMPLE = (
    """
[database]
url = "sqlite:///var/lib/syncd/syncd.db"

[mail]
from = "syncd@example.com"
smtp_host = "smtp.example.com"
smtp_port = 587
starttls = true
username = "syncd"
password_env = "SYNCD_SMTP_PASSWORD"
outbox_dir = "var/outbox"

[[sources]]
name = "hr"
kind = "sftp"
profile = "hr_full"
mode = "full"
notify = ["it@example.com"]
schedule = "*/10 * * * *"
host = "sftp.example.com"
port = 22
username = "syncd"
key_file = "/etc/syncd/id_ed25519"
known_hosts = "/etc/syncd/known_hosts"
remote_dir = "/drop"
pattern = "*.csv"
processed_dir = "/drop/processed"
failed_dir = "/drop/failed"
settle_seconds = 10
max_archive_percent = 10
max_archive_count = 500

[[sources]]
name = "uploads"
kind = "local"
path = "var/drop"
profile = "default"
mode = "partial"
notify = ["it@example.com"]

[directory]
groups = ["Engineering", "Sales", "Support"]
create_missing_groups = false
roles = ["User", "Admin", "Supervisor"]
enabled_sources = ["slack", "email"]

[profiles.hr_full]
key = "employee_id"
delimiter = "auto"
encoding = "auto"
fallback_encoding = "cp1252"
header = true
on_row_error = "skip"
columns = [
  { field = "employee_id", header = "Employee ID", required = true },
"""
    + (  # the contract's lines, split only to fit the line length
        '  { field = "email", header = "Primary Email", aliases = ["email", "e-mail"], '
        'type = "email", required = true },\n'
        '  { field = "status", header = "Current Status", type = "select", '
        'options = ["Active", "Archived"] },\n'
        '  { field = "department", type = "select", options = ["Sales", "Support"] },\n'
        '  { field = "start_date", type = "date" },\n'
        "]\n"
    )
)

BROKEN = """
retention_dayz = 3

[mail]
password = "hunter2"

[[sources]]
name = "hr"
kind = "sftp"
profile = "hr_ful"
schedule = "*/61 * * * *"

[profiles.mine]
key = "email"
columns = [
  { field = "email" },
  { field = "department", type = "select" },
  { field = "start_date", type = "dat" },
]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), env={})
    return caught.value.problems


@pytest.mark.skipif(SYSTEM_CONFIG_PATH.exists(), reason="a system-wide config is installed")
def test_no_file_gives_the_embedded_defaults() -> None:
    """Without any file syncd watches var/drop with `default`, partial, SQLite and an outbox."""
    config = load_config(None, env={})
    assert config.path is None
    assert config.database.url == "sqlite:///var/syncd.db"
    assert config.mail.smtp_host is None
    assert config.mail.outbox_dir == Path("var/outbox")
    (drop,) = config.sources
    assert (drop.name, drop.kind, drop.path, drop.profile, drop.mode) == (
        "drop",
        "local",
        Path("var/drop"),
        "default",
        "partial",
    )
    assert drop.directory == "drop"
    assert drop.processed_dir == "var/drop/processed"
    assert config.directory.groups == ()
    assert config.directory.create_missing_groups is True
    assert config.directory.roles == ("User", "Admin", "Supervisor")
    assert config.directory.enabled_sources == ("email", "slack")
    assert config.profiles == dict(BUILTIN_PROFILES)
    assert config.retention_days == 30
    assert config.secret_file == Path("var/secret")


def test_explicit_path_wins_over_the_environment(tmp_path: Path) -> None:
    """--config is used even when $SYNCD_CONFIG names another file."""
    chosen = _write(tmp_path, "retention_days = 7\n")
    other = tmp_path / "other.toml"
    other.write_text("retention_days = 9\n", encoding="utf-8")
    config = load_config(chosen, env={"SYNCD_CONFIG": str(other)})
    assert (config.path, config.retention_days) == (chosen, 7)


def test_environment_variable_names_the_file(tmp_path: Path) -> None:
    """$SYNCD_CONFIG is read when no --config is given."""
    path = _write(tmp_path, "retention_days = 9\n")
    assert load_config(None, env={"SYNCD_CONFIG": str(path)}).retention_days == 9


def test_system_file_is_used_only_when_it_exists(tmp_path: Path) -> None:
    """/etc/syncd/syncd.toml is the fallback, and its absence means embedded defaults."""
    system = tmp_path / "syncd.toml"
    assert find_config_path(None, {}, system_path=system) is None
    system.write_text("", encoding="utf-8")
    assert find_config_path(None, {}, system_path=system) == system


@pytest.mark.parametrize("by_env", [False, True], ids=["explicit", "env"])
def test_a_named_file_that_does_not_exist_is_a_config_error(tmp_path: Path, by_env: bool) -> None:
    """A --config or $SYNCD_CONFIG path that is missing is reported, not silently skipped."""
    missing = tmp_path / "nope.toml"
    explicit, env = (None, {"SYNCD_CONFIG": str(missing)}) if by_env else (missing, {})
    with pytest.raises(ConfigError, match="does not exist") as caught:
        find_config_path(explicit, env)
    assert caught.value.exit_code == 78


def test_every_problem_is_reported_at_once_with_its_key(tmp_path: Path) -> None:
    """One load lists each broken key: cron, profile, sftp keys, type, options, password, typo."""
    problems = _problems(tmp_path, BROKEN)
    text = "\n".join(problems)
    assert "retention_dayz: is not a known key; did you mean 'retention_days'?" in problems
    assert any(p.startswith("mail.password: a password is never read") for p in problems)
    assert "password_env" in text
    assert any(
        p.startswith("sources[0].profile: 'hr_ful' is not a known profile") for p in problems
    )
    assert "hr_full" in next(p for p in problems if p.startswith("sources[0].profile"))
    assert any(
        p.startswith("sources[0].schedule: '*/61 * * * *' is not a valid cron expression")
        for p in problems
    )
    for key in ("host", "username", "known_hosts"):
        assert f"sources[0].{key}: is required for an sftp source" in problems
    assert any(p.startswith("sources[0].key_file: is required") for p in problems)
    assert any(
        p.startswith("profiles.mine.columns[1].options: a select column needs options")
        for p in problems
    )
    assert any(
        p.startswith("profiles.mine.columns[2].type: 'dat' is not one of string, text,")
        for p in problems
    )
    assert len(problems) == 10


def test_the_error_message_counts_the_problems_and_names_the_file(tmp_path: Path) -> None:
    """The headline says which file is wrong and how many problems it has."""
    path = _write(tmp_path, BROKEN)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.message == f"the configuration in {path} has 10 problems"


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    """A file that is not TOML is reported with the line of the mistake."""
    (problem,) = _problems(tmp_path, "[mail]\nsmtp_port = 587\nfrom = \n")
    assert "line 3" in problem


def test_sftp_and_local_keys_do_not_mix(tmp_path: Path) -> None:
    """An SFTP-only key on a local source says which kind it belongs to."""
    problems = _problems(
        tmp_path, '[[sources]]\nname = "x"\nkind = "local"\npath = "in"\nhost = "h"\n'
    )
    assert problems == (
        "sources[0].host: only applies to sftp sources; this source has kind = 'local'",
    )


def test_schedule_and_interval_cannot_both_be_set(tmp_path: Path) -> None:
    """A source polls by cron or by interval, and saying both is a mistake."""
    problems = _problems(
        tmp_path,
        '[[sources]]\nname = "x"\nkind = "local"\npath = "in"\n'
        'schedule = "* * * * *"\ninterval_seconds = 5\n',
    )
    assert problems == (
        "sources[0].interval_seconds: set either schedule or interval_seconds, not both",
    )


def test_values_of_the_wrong_toml_type_are_reported(tmp_path: Path) -> None:
    """A quoted port or a negative threshold names the key and the value given."""
    problems = _problems(tmp_path, '[mail]\nsmtp_port = "587"\ntimeout_seconds = -1\n')
    assert problems == (
        "mail.smtp_port: should be a whole number, not '587'",
        "mail.timeout_seconds: should be more than 0, not -1",
    )


def test_unknown_kind_and_duplicate_source_names_are_reported(tmp_path: Path) -> None:
    """The kind must be local or sftp; two sources cannot share a name."""
    assert _problems(tmp_path, '[[sources]]\nname = "x"\nkind = "ftp"\n') == (
        "sources[0].kind: 'ftp' is not one of local, sftp",
    )
    twice = '[[sources]]\nname = "x"\nkind = "local"\npath = "a"\n' * 2
    assert _problems(tmp_path, twice) == (
        "sources: two sources are named 'x'; names must be unique",
    )


def test_the_example_config_loads(tmp_path: Path) -> None:
    """config/syncd.example.toml, which shows every key, is itself a valid configuration."""
    config = load_config(EXAMPLE, env={})
    assert [s.name for s in config.sources] == ["hr", "uploads"]
    assert {s.directory for s in config.sources} == {"staff"}
    department = config.profiles["hr_full"].column("department")
    assert department is not None
    assert department.type == "select"


def test_the_design_example_loads_and_builds_profiles(tmp_path: Path) -> None:
    """The contract's TOML loads; its profile replaces the built-in and its source is SFTP."""
    config = load_config(_write(tmp_path, DESIGN_EXAMPLE), env={})
    hr = config.source("hr")
    assert (hr.kind, hr.host, hr.known_hosts, hr.schedule) == (
        "sftp",
        "sftp.example.com",
        Path("/etc/syncd/known_hosts"),
        "*/10 * * * *",
    )
    profile = config.profiles["hr_full"]
    assert [c.field for c in profile.columns] == [
        "employee_id",
        "email",
        "status",
        "department",
        "start_date",
    ]
    department = profile.column("department")
    assert department is not None
    assert (department.header, department.options) == ("department", ("Sales", "Support"))
    assert config.directory.create_missing_groups is False
    assert config.mail.sender == "syncd@example.com"


def test_fixed_fields_get_their_type_and_the_key_is_required(tmp_path: Path) -> None:
    """Leaving out the type of a fixed field gives its fixed type; the key column is required."""
    config = load_config(
        _write(
            tmp_path,
            '[profiles.p]\nkey = "email"\ndelimiter = "tab"\ncolumns = [\n'
            '  { field = "email", header = "Mail" },\n  { field = "groups" },\n'
            '  { field = "labels" },\n  { field = "status" },\n]\n',
        ),
        env={},
    )
    profile = config.profiles["p"]
    email, groups, labels, status = profile.columns
    assert (email.type, email.required, email.header) == ("email", True, "Mail")
    assert (groups.type, groups.separator, labels.separator) == ("list", ",", ":")
    assert status.options == ("Active", "Archived")
    assert profile.delimiter == "\t"
    assert profile.max_rows == BUILTIN_PROFILES["default"].max_rows


def test_profile_shape_problems_are_reported(tmp_path: Path) -> None:
    """A conflicting fixed type, a key without a column and a shared header are each named."""
    problems = _problems(
        tmp_path,
        '[profiles.a]\nkey = "email"\ncolumns = [{ field = "email", type = "date" }]\n'
        '[profiles.b]\nkey = "employee_id"\ncolumns = [{ field = "email" }]\n'
        '[profiles.c]\nkey = "email"\n'
        'columns = [{ field = "email" }, { field = "alt", aliases = ["E Mail", "EMAIL"] }]\n',
    )
    assert problems[0].startswith("profiles.a.columns[0].type: 'date' conflicts with the field")
    assert problems[1].startswith("profiles.b.columns: the key 'employee_id' is not one of")
    assert problems[2].startswith("profiles.c.columns: the header name 'email' is used by both")


def test_mail_password_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    """The SMTP secret is read from the named env var or file, and a missing var is an error."""
    secret = tmp_path / "smtp_password"
    secret.write_text("s3cret\n", encoding="utf-8")
    by_env = load_config(_write(tmp_path, '[mail]\npassword_env = "SMTP_PW"\n'), env={})
    assert by_env.mail.password({"SMTP_PW": "from-env"}) == "from-env"
    with pytest.raises(ConfigError, match=r"\$SMTP_PW, which is not set"):
        by_env.mail.password({})
    by_file = load_config(_write(tmp_path, f'[mail]\npassword_file = "{secret}"\n'), env={})
    assert by_file.mail.password({}) == "s3cret"
    assert load_config(_write(tmp_path, ""), env={}).mail.password({}) is None


def test_a_password_file_that_cannot_be_read_as_text_is_a_config_error(tmp_path: Path) -> None:
    """A password file saved in another encoding (a Latin-1 "é") or that is a folder is
    a configuration error saying which file, never a crash when mail is sent."""
    latin = tmp_path / "latin1_password"
    latin.write_bytes("caf\u00e9".encode("latin-1"))
    config = load_config(_write(tmp_path, f'[mail]\npassword_file = "{latin}"\n'), env={})
    with pytest.raises(ConfigError, match=r"password file .*latin1_password is not UTF-8 text"):
        config.mail.password({})
    folder = load_config(_write(tmp_path, f'[mail]\npassword_file = "{tmp_path}"\n'), env={})
    with pytest.raises(ConfigError, match=r"cannot be read: Is a directory"):
        folder.mail.password({})


def test_state_dir_moves_every_default_path(tmp_path: Path) -> None:
    """Database, outbox, secret and drop folder default to places under state_dir."""
    config = load_config(_write(tmp_path, 'state_dir = "/srv/syncd"\n'), env={})
    assert config.database.url == "sqlite:////srv/syncd/syncd.db"
    assert config.mail.outbox_dir == Path("/srv/syncd/outbox")
    assert config.secret_file == Path("/srv/syncd/secret")
    assert config.sources[0].path == Path("/srv/syncd/drop")


def test_sftp_without_a_schedule_polls_every_minute(tmp_path: Path) -> None:
    """An SFTP source gets a 60 s poll and remote processed/failed folders by default."""
    config = load_config(
        _write(
            tmp_path,
            '[[sources]]\nname = "hr"\nkind = "sftp"\nhost = "h"\nusername = "u"\n'
            'known_hosts = "kh"\npassword_env = "PW"\nremote_dir = "/in"\n',
        ),
        env={},
    )
    hr = config.source("hr")
    assert (hr.interval_seconds, hr.processed_dir, hr.failed_dir) == (
        60,
        "/in/processed",
        "/in/failed",
    )
    assert hr.password({"PW": "x"}) == "x"


def test_listing_groups_makes_them_enforced_by_default(tmp_path: Path) -> None:
    """With configured groups, unknown groups are row errors unless creation is allowed."""
    config = load_config(_write(tmp_path, '[directory]\ngroups = ["Sales"]\n'), env={})
    assert config.directory.create_missing_groups is False


def test_asking_for_an_unknown_source_lists_the_configured_ones(tmp_path: Path) -> None:
    """Config.source names the sources that do exist when the asked one does not."""
    config = load_config(_write(tmp_path, ""), env={})
    with pytest.raises(UsageError, match="configured sources: drop"):
        config.source("hr")


def test_the_config_is_frozen(tmp_path: Path) -> None:
    """Nothing can change the configuration once loaded."""
    config: Config = load_config(_write(tmp_path, ""), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.retention_days = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.profiles["x"] = BUILTIN_PROFILES["default"]  # type: ignore[index]


def test_a_profile_names_the_region_of_phone_numbers_without_a_country_code(
    tmp_path: Path,
) -> None:
    """phone_region is an ISO 3166 alpha-2 code, in any case; it defaults to none."""
    config = load_config(
        _write(
            tmp_path,
            '[profiles.p]\nkey = "email"\nphone_region = "gb"\n'
            'columns = [{ field = "email" }, { field = "mobile", type = "phone" }]\n',
        ),
        env={},
    )
    profile = config.profiles["p"]
    assert profile.phone_region == "GB"
    mobile = profile.column("mobile")
    assert mobile is not None
    assert mobile.type == "phone"
    assert BUILTIN_PROFILES["hr_full"].phone_region is None


def test_an_unknown_phone_region_is_refused_with_its_key(tmp_path: Path) -> None:
    """A region phonenumbers does not know is a problem of profiles.NAME.phone_region."""
    problems = _problems(
        tmp_path,
        '[profiles.p]\nkey = "email"\nphone_region = "UK"\ncolumns = [{ field = "email" }]\n',
    )
    assert problems == (
        "profiles.p.phone_region: 'UK' is not a region phonenumbers knows: use an ISO 3166 "
        "alpha-2 country code, e.g. 'GB', 'US' or 'DE'",
    )


def test_a_source_may_say_how_often_its_files_come(tmp_path: Path) -> None:
    """expect_every is kept as written and read as a duration; business_days with it."""
    config = load_config(
        _write(
            tmp_path,
            '[[sources]]\nname = "hr"\nkind = "local"\npath = "in"\n'
            'expect_every = "1d12h"\nbusiness_days = true\n'
            '[[sources]]\nname = "uploads"\nkind = "local"\npath = "up"\n',
        ),
        env={},
    )
    hr, uploads = config.sources
    assert (hr.expect_every, hr.business_days) == ("1d12h", True)
    assert hr.expectation is not None
    assert hr.expectation.every.total_seconds() == 36 * 3600
    assert uploads.expectation is None


def test_a_bad_expect_every_or_business_days_alone_is_reported_with_its_key(
    tmp_path: Path,
) -> None:
    """A duration without a unit says what one looks like; business_days needs
    expect_every; a number instead of text is a type problem."""
    problems = _problems(
        tmp_path,
        '[[sources]]\nname = "a"\nkind = "local"\npath = "a"\nexpect_every = "24"\n'
        '[[sources]]\nname = "b"\nkind = "local"\npath = "b"\nbusiness_days = true\n'
        '[[sources]]\nname = "c"\nkind = "local"\npath = "c"\nexpect_every = 24\n',
    )
    assert problems == (
        "sources[0].expect_every: '24' is not a duration: write a whole number and a unit, "
        'e.g. "90m", "24h", "2d" or "1d12h" (s, m, h, d)',
        "sources[1].business_days: only applies with expect_every "
        '(e.g. expect_every = "24h"), which is not set',
        "sources[2].expect_every: should be text in quotes, not 24",
    )
