"""The configuration: one TOML file turned into frozen objects, every problem reported at once.

Where the file is: `--config`, else `$SYNCD_CONFIG`, else `/etc/syncd/syncd.toml` if it
exists, else no file at all and the embedded defaults (watch `var/drop` with the `default`
profile in partial mode, SQLite at `var/syncd.db`, reports to `var/outbox`). The schema and
its checks are in `syncd.config_model`; this module finds and reads the file, words each
problem with its TOML key, and builds the `Config` the rest of syncd is given. Secrets are
never in the file: they come from an environment variable or a file named in it, read
only when asked for.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syncd.config_model import (
    SOURCE_KINDS,
    ColumnModel,
    ConfigFile,
    DirectoryModel,
    LocalSourceModel,
    MailModel,
    ProfileModel,
    SftpSourceModel,
    effective_type,
    known_keys,
)
from syncd.core.builtin_profiles import BUILTIN_PROFILES
from syncd.core.lateness import Expectation, parse_duration
from syncd.core.profile import (
    FIXED_LIST_SEPARATORS,
    STATUS_OPTIONS,
    Column,
    DirectoryRules,
    Mode,
    Profile,
)
from syncd.errors import ConfigError, UsageError

SYSTEM_CONFIG_PATH = Path("/etc/syncd/syncd.toml")
CONFIG_ENV = "SYNCD_CONFIG"
#: A source with neither schedule nor interval_seconds is scanned this often (a local
#: folder is also scanned whenever it changes).
DEFAULT_SCAN_INTERVAL = 60
#: Only written into .eml files when no smtp_host is set; SMTP needs mail.from.
DEFAULT_SENDER = "syncd@localhost"
#: Who the embedded default source reports to (as .eml files: there is no SMTP server).
EMBEDDED_NOTIFY = "admin@example.com"


def _read_secret(
    owner: str, env_name: str | None, file: Path | None, env: Mapping[str, str]
) -> str | None:
    if env_name is not None:
        if env_name not in env:
            raise ConfigError(
                f"the {owner} password is to come from ${env_name}, which is not set",
                problems=[
                    f"set {env_name} in the environment of syncd (e.g. systemd's "
                    "EnvironmentFile=) or use password_file"
                ],
            )
        return env[env_name]
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"the {owner} password file {file} cannot be read: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"the {owner} password file {file} is not UTF-8 text",
                problems=[
                    "write the password into it as UTF-8 (a password manager's or "
                    "an editor's default), on one line"
                ],
            ) from None
    return None


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """`[database]`: relative SQLite paths are relative to the working directory."""

    url: str = "sqlite:///var/syncd.db"


#: The port each way of securing SMTP listens on by default.
SMTP_PORTS: dict[str, int] = {"starttls": 587, "implicit": 465, "none": 25}
#: Attachments of one report above this many bytes are left out (the report says how to
#: get them with the CLI).
DEFAULT_ATTACH_MAX_BYTES = 5_000_000


@dataclass(frozen=True, slots=True)
class MailConfig:
    """`[mail]`: with no `smtp_host`, reports are written as .eml files to `outbox_dir`.

    `tls`: "starttls" (upgrade a plain connection), "implicit" (TLS from the first byte)
    or "none"; certificates are always checked, against `ca_file` when set (a private CA)
    instead of the system's. `starttls` mirrors it for the older key. `install_name`
    names this syncd in subjects and footers (None: the host name). `templates_dir`:
    where admins override the built-in mail templates. A report that cannot be delivered
    is retried for `retry_for_hours`, then marked failed.
    """

    sender: str = DEFAULT_SENDER
    smtp_host: str | None = None
    smtp_port: int = SMTP_PORTS["starttls"]
    starttls: bool = True
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    outbox_dir: Path = Path("var/outbox")
    timeout_seconds: float = 30
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    ca_file: Path | None = None
    install_name: str | None = None
    templates_dir: Path | None = None
    attach_max_bytes: int = DEFAULT_ATTACH_MAX_BYTES
    retry_for_hours: float = 72

    def password(self, env: Mapping[str, str]) -> str | None:
        """The SMTP password from its environment variable or file; None if neither is set."""
        return _read_secret("SMTP", self.password_env, self.password_file, env)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConfig:
    """One `[[sources]]` entry. Local keys are None for SFTP sources and vice versa.

    `processed_dir` and `failed_dir` are always set: local paths for a local source,
    remote paths for an SFTP one.
    """

    name: str
    kind: Literal["local", "sftp"]
    profile: str
    mode: Mode
    directory: str
    processed_dir: str
    failed_dir: str
    notify: tuple[str, ...] = ()
    #: who decides a held job (its report goes to them); `notify` unless configured
    approvers: tuple[str, ...] = ()
    #: attach `<job_id>-changes.csv` to reports (default: in full mode)
    send_changes: bool = False
    schedule: str | None = None
    interval_seconds: int | None = None
    max_archive_percent: float = 10
    max_archive_count: int = 500
    min_rows_percent: float = 50
    settle_seconds: float = 10
    markers: bool = False
    pattern: str = "*.csv"
    settle: Literal["move", "delete"] = "move"
    #: how often files are expected, as written ("24h"); None: no expectation
    expect_every: str | None = None
    #: only Monday to Friday (UTC) counts toward `expect_every`
    business_days: bool = False
    # local
    path: Path | None = None
    watch: Literal["inotify", "poll"] = "inotify"
    # sftp
    host: str | None = None
    port: int = 22
    username: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None
    passphrase_env: str | None = None
    passphrase_file: Path | None = None
    remote_dir: str | None = None
    timeout_seconds: float = 30

    @property
    def expectation(self) -> Expectation | None:
        """How often files are expected (`expect_every`, `business_days`), if said."""
        if self.expect_every is None:
            return None
        return Expectation(parse_duration(self.expect_every), self.business_days)

    @property
    def where(self) -> str:
        """Where its files come from, as an admin would go and look: the folder, or the
        SFTP server and folder."""
        if self.kind == "local":
            return str(self.path)
        return f"{self.username}@{self.host}:{self.port}, folder {self.remote_dir or '.'}"

    def password(self, env: Mapping[str, str]) -> str | None:
        """The SFTP password from its environment variable or file; None if neither is set."""
        return _read_secret(f"source {self.name!r}", self.password_env, self.password_file, env)

    def passphrase(self, env: Mapping[str, str]) -> str | None:
        """The passphrase of the SFTP key from its environment variable or file, if any."""
        owner = f"source {self.name!r} key"
        return _read_secret(owner, self.passphrase_env, self.passphrase_file, env)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """`[web]`: the back office. `listen` (`host:port`) turns it on in `syncd run`;
    `syncd web` serves it alone. People log in with local accounts (`syncd web user
    add`), or a reverse proxy at one of `trusted_proxies` names them in
    `proxy_user_header`. `public_origin`: the origin people's browsers use, when it is
    not the address syncd is reached at (a proxy in front)."""

    listen: str | None = None
    session_hours: float = 12
    proxy_user_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    public_origin: str | None = None
    login_attempts: int = 5
    login_window_minutes: float = 15


@dataclass(frozen=True, slots=True)
class Config:
    """Everything syncd is configured with, checked and frozen."""

    database: DatabaseConfig
    mail: MailConfig
    sources: tuple[SourceConfig, ...]
    directory: DirectoryRules
    profiles: Mapping[str, Profile]
    retention_days: int = 30
    #: how long SIGTERM waits for the running job before rolling it back
    stop_timeout_seconds: float = 60
    #: `host:port` the daemon answers Prometheus scrapes on; None: no metrics
    metrics_listen: str | None = None
    web: WebConfig = WebConfig()
    state_dir: Path = Path("var")
    secret_env: str | None = None
    secret_file: Path | None = Path("var/secret")  # None when secret_env is used
    path: Path | None = None  # the file read; None means the embedded defaults

    def source(self, name: str) -> SourceConfig:
        """The source called `name`; UsageError naming the configured ones if none is."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise UsageError(f"there is no source named {name!r}; configured sources: {known}")


def find_config_path(
    explicit: Path | None, env: Mapping[str, str], system_path: Path = SYSTEM_CONFIG_PATH
) -> Path | None:
    """The configuration file to read, or None for the embedded defaults."""
    if explicit is not None:
        candidate, origin = explicit, "--config"
    elif env.get(CONFIG_ENV):
        candidate, origin = Path(env[CONFIG_ENV]), f"${CONFIG_ENV}"
    else:
        return system_path if system_path.is_file() else None
    if not candidate.is_file():
        state = "is not a file" if candidate.exists() else "does not exist"
        raise ConfigError(
            f"the configuration file {candidate} (from {origin}) {state}",
            problems=[
                f"name an existing file, or drop {origin} to use "
                f"{SYSTEM_CONFIG_PATH} or the built-in defaults"
            ],
        )
    return candidate


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Find, read and check the configuration; ConfigError lists every problem found."""
    env = os.environ if env is None else env
    found = find_config_path(path, env)
    if found is None:
        return _build(ConfigFile.model_validate({}, context=_context({})), None)
    try:
        data = tomllib.loads(found.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"the configuration file {found} cannot be read: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"the configuration in {found} has 1 problem", problems=["it is not UTF-8 text"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"the configuration in {found} has 1 problem", problems=[f"not valid TOML: {exc}"]
        ) from None
    try:
        checked = ConfigFile.model_validate(data, context=_context(data))
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_url=False)]
        noun = "problem" if len(problems) == 1 else "problems"
        raise ConfigError(
            f"the configuration in {found} has {len(problems)} {noun}", problems=problems
        ) from None
    return _build(checked, found)


def _context(data: Mapping[str, Any]) -> dict[str, Any]:
    defined = data.get("profiles")
    names = set(BUILTIN_PROFILES) | (set(defined) if isinstance(defined, dict) else set())
    return {"profiles": names}


# --- building the frozen objects ---------------------------------------------------------


_PATH_KEYS = (
    "path",
    "key_file",
    "known_hosts",
    "password_file",
    "passphrase_file",
    "outbox_dir",
    "ca_file",
    "templates_dir",
)


def _settings(checked: BaseModel) -> dict[str, Any]:
    """A section's values, with file-system paths as `Path`."""
    values = checked.model_dump()
    for key in _PATH_KEYS:
        if values.get(key) is not None:
            values[key] = Path(values[key])
    return values


def _build(checked: ConfigFile, found: Path | None) -> Config:
    state_dir = Path(checked.state_dir)
    profiles = dict(BUILTIN_PROFILES)
    profiles.update({name: _profile(name, p) for name, p in checked.profiles.items()})
    entries = checked.sources
    if entries is None:
        # With no configuration at all, reports go to a placeholder address as .eml files in
        # the outbox folder (there is no mail server to send them to): something to read.
        entries = [
            LocalSourceModel(
                name="drop",
                kind="local",
                path=str(state_dir / "drop"),
                notify=[EMBEDDED_NOTIFY],
            )
        ]
    mail = _mail(checked.mail, state_dir)
    return Config(
        database=DatabaseConfig(url=checked.database.url or f"sqlite:///{state_dir / 'syncd.db'}"),
        mail=MailConfig(**mail),
        sources=tuple(_source(entry) for entry in entries),
        directory=_directory(checked.directory),
        profiles=MappingProxyType(profiles),
        retention_days=checked.retention_days,
        stop_timeout_seconds=checked.stop_timeout_seconds,
        metrics_listen=checked.metrics.listen,
        web=WebConfig(
            **{**checked.web.model_dump(), "trusted_proxies": tuple(checked.web.trusted_proxies)}
        ),
        state_dir=state_dir,
        secret_env=checked.secret_env,
        secret_file=None
        if checked.secret_env
        else Path(checked.secret_file or state_dir / "secret"),
        path=found,
    )


def _mail(checked: MailModel, state_dir: Path) -> dict[str, Any]:
    mail = _settings(checked)
    mail["sender"] = mail["sender"] or DEFAULT_SENDER
    mail["outbox_dir"] = mail["outbox_dir"] or state_dir / "outbox"
    if checked.tls is None:
        mail["tls"] = "none" if checked.starttls is False else "starttls"
    mail["starttls"] = mail["tls"] == "starttls"
    mail["smtp_port"] = checked.smtp_port or SMTP_PORTS[mail["tls"]]
    return mail


def _source(entry: LocalSourceModel | SftpSourceModel) -> SourceConfig:
    values = _settings(entry)
    values["notify"] = tuple(entry.notify)
    values["approvers"] = tuple(entry.approvers or entry.notify)
    # A full sync changes many users at once: what it changed goes with its report.
    values["send_changes"] = (
        entry.mode == "full" if entry.send_changes is None else entry.send_changes
    )
    values["directory"] = entry.directory or entry.name
    if isinstance(entry, LocalSourceModel):
        root, join = entry.path, os.path.join
    else:
        root, join = entry.remote_dir, posixpath.join
    if entry.schedule is None and entry.interval_seconds is None:
        # An SFTP server sends no events, and a folder's events can be missed (a network
        # share): a regular scan takes what they did not announce.
        values["interval_seconds"] = DEFAULT_SCAN_INTERVAL
    values["processed_dir"] = entry.processed_dir or join(root, "processed")
    values["failed_dir"] = entry.failed_dir or join(root, "failed")
    return SourceConfig(**values)


def _directory(checked: DirectoryModel) -> DirectoryRules:
    create = checked.create_missing_groups
    return DirectoryRules(
        groups=tuple(checked.groups),
        # With no groups listed there is nothing to check against, so groups are created;
        # a list of groups is there to be enforced (seed 002: groups must exist).
        create_missing_groups=not checked.groups if create is None else create,
        roles=tuple(checked.roles),
        enabled_sources=tuple(checked.enabled_sources),
        labels=tuple(checked.labels),
    )


def _profile(name: str, checked: ProfileModel) -> Profile:
    settings = checked.model_dump(exclude_unset=True, exclude={"key", "columns"})
    return Profile(
        name=name,
        key=checked.key,
        columns=tuple(_column(c, checked.key) for c in checked.columns),
        **settings,
    )


def _column(checked: ColumnModel, key: str) -> Column:
    kind = effective_type(checked.field, checked.type)
    options = STATUS_OPTIONS if checked.field == "status" else tuple(checked.options)
    return Column(
        field=checked.field,
        header=checked.header or checked.field,
        aliases=tuple(checked.aliases),
        type=kind,
        # Every row must have its key: a row without one cannot be matched to a user.
        required=checked.required or checked.field == key,
        options=options,
        separator=checked.separator or FIXED_LIST_SEPARATORS.get(checked.field, ","),
    )


# --- wording the problems ----------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_KNOWN_KEYS = known_keys()
_TYPE_WORDS = {
    "string_type": "should be text in quotes",
    "int_type": "should be a whole number",
    "float_type": "should be a number",
    "bool_type": "should be true or false",
    "list_type": 'should be a list, e.g. ["a", "b"]',
    "model_type": "should be a table",
    "dict_type": "should be a table",
    "model_attributes_type": "should be a table",
}
_BOUND_WORDS = {
    "greater_than": ("gt", "more than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _describe(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    kind: str | None = None
    if len(loc) > 2 and loc[0] == "sources" and loc[2] in SOURCE_KINDS:
        kind = str(loc.pop(2))  # pydantic names the union member; a person never wrote it
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("kind")
    message = _message(error, loc, kind)
    return f"{_key_path(loc)}: {message}" if loc else message


def _key_path(loc: list[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            text = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
            path += f".{text}" if path else text
    return path


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _message(error: ErrorDetails, loc: list[int | str], kind: str | None) -> str:
    kind_of = error["type"]
    ctx = error.get("ctx", {})
    given = error.get("input")
    if kind_of == "value_error":
        return str(ctx["error"])
    if kind_of == "missing":
        article = "an" if kind == "sftp" else "a"  # "an ess-eff-tee-pee", "a local"
        return f"is required for {article} {kind} source" if kind else "is required"
    if kind_of == "extra_forbidden":
        return _unknown_key(str(loc[-1]), loc, kind)
    if kind_of == "literal_error":
        expected = str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{_show(given)} is not one of {expected}"
    if kind_of == "union_tag_invalid":
        return f"{_show(ctx.get('tag'))} is not one of {', '.join(SOURCE_KINDS)}"
    if kind_of == "union_tag_not_found":
        return f"is required: one of {', '.join(SOURCE_KINDS)}"
    if kind_of in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind_of]}, not {_show(given)}"
    if kind_of in _BOUND_WORDS:
        bound, words = _BOUND_WORDS[kind_of]
        return f"should be {words} {_show(ctx[bound])}, not {_show(given)}"
    if kind_of in ("too_short", "string_too_short"):
        return "must not be empty"
    return str(error["msg"])


def _unknown_key(name: str, loc: list[int | str], kind: str | None) -> str:
    if name == "password":
        return (
            "a password is never read from the configuration file; set password_env "
            "(an environment variable) or password_file (a file readable only by syncd)"
        )
    if "columns" in loc:
        section = "columns"
    elif loc[0] == "sources" and kind is not None:
        other = "sftp" if kind == "local" else "local"
        if name in _KNOWN_KEYS[other] - _KNOWN_KEYS[kind]:
            return f"only applies to {other} sources; this source has kind = {kind!r}"
        section = kind
    elif len(loc) == 1:
        section = ""
    else:
        section = str(loc[0])
    close = difflib.get_close_matches(name, sorted(_KNOWN_KEYS[section]), n=1, cutoff=0.7)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"is not a known key{hint}"
