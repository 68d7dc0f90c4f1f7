"""The schema of the TOML configuration file, as pydantic models, and its checks.

These models only describe and check what a file may say; `syncd.config` turns a checked
file into the frozen objects the rest of syncd uses. Every model forbids unknown keys so a
typo is an error rather than a silently ignored setting. Checks that involve another key
are field validators reading the keys declared before them, so pydantic reports them in
the same pass as every other problem. The names of the known profiles come in through the
validation context (`{"profiles": {...}}`) because a source may name a profile that the
same file defines.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from syncd.core.lateness import parse_duration
from syncd.core.profile import FIXED_FIELD_TYPES, STATUS_OPTIONS, FieldType
from syncd.core.table import normalise_header

# strict: TOML already has types, so "22" for a port is a mistake worth reporting.
_SCHEMA = ConfigDict(extra="forbid", strict=True, frozen=True)

DELIMITERS = {"auto": "auto", ",": ",", ";": ";", "tab": "\t", "\t": "\t", "|": "|"}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def effective_type(field: str, declared: FieldType | None) -> FieldType:
    """A fixed field's fixed type, else the declared type, else string."""
    return FIXED_FIELD_TYPES.get(field) or declared or "string"


def _email(address: str) -> str:
    # Imported here: most configurations name no address, and a command that reads
    # none (`syncd validate`) does not pay for loading email-validator.
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{address!r} is not an email address: {exc}") from None
    return address


def _codec(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"{name!r} is not an encoding Python knows, e.g. cp1252") from None
    return name


def _cron(expression: str) -> str:
    try:
        from apscheduler.triggers.cron import CronTrigger  # only when a schedule is set

        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"{expression!r} is not a valid cron expression ({exc}); "
            "e.g. '*/10 * * * *' for every ten minutes"
        ) from None
    return expression


def _duration(text: str) -> str:
    parse_duration(text)  # its ValueError says what a duration looks like
    return text


def _database_url(url: str) -> str:
    # The shape SQLAlchemy's make_url accepts (`dialect[+driver]://...`), checked without
    # importing SQLAlchemy: `syncd validate` never needs it otherwise.
    if not re.match(r"^[\w+]+://", url):
        raise ValueError(
            f"{url!r} is not a database URL, e.g. sqlite:///var/lib/syncd/syncd.db "
            "or postgresql+psycopg://syncd@localhost/syncd"
        )
    return url


def _plain_name(name: str) -> str:
    if not name or not set(name) <= _NAME_CHARS:
        raise ValueError(f"{name!r} is not a plain name: use letters, digits, '_', '.' and '-'")
    return name


def _phone_region(region: str) -> str:
    import phonenumbers  # only when a profile sets a region: it takes a while to load

    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{region!r} is not a region phonenumbers knows: use an ISO 3166 alpha-2 "
            "country code, e.g. 'GB', 'US' or 'DE'"
        )
    return region.upper()


def _encoding(name: str) -> str:
    return name if name == "auto" else _codec(name)


def _delimiter(delimiter: str) -> str:
    if delimiter.lower() not in DELIMITERS:
        raise ValueError(f"{delimiter!r} is not one of auto, ',', ';', tab, '|'")
    return DELIMITERS[delimiter.lower()]


def _field_name(name: str) -> str:
    if not name.isidentifier() or not name.isascii():
        raise ValueError(
            f"{name!r} is not a field name: use letters, digits and '_', "
            "e.g. 'cost_center' (the file's column name goes in header)"
        )
    return name


def _without(chars: str, why: str) -> Callable[[str], str]:
    def check(item: str) -> str:
        if any(c in item for c in chars):
            raise ValueError(f"{item!r} cannot contain {' or '.join(map(repr, chars))}: {why}")
        return item

    return check


def _unique(fold: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    def check(items: list[str]) -> list[str]:
        folded = [fold(i.strip()) for i in items]
        if "" in folded:
            raise ValueError("an empty entry is not allowed")
        for item, key in zip(items, folded, strict=True):
            if folded.count(key) > 1:
                same = "" if fold is str else " (case is ignored)"
                raise ValueError(f"{item!r} is listed twice{same}")
        return items

    return check


def _not_both(value: object, info: ValidationInfo, other: str) -> None:
    if value is not None and info.data.get(other) is not None:
        raise ValueError(f"set either {other} or {info.field_name}, not both")


Email = Annotated[str, AfterValidator(_email)]
Text = Annotated[str, Field(min_length=1)]
PlainName = Annotated[str, AfterValidator(_plain_name)]
Codec = Annotated[str, AfterValidator(_codec)]
Names = Annotated[list[Text], AfterValidator(_unique(str.casefold))]


class DatabaseModel(BaseModel):
    model_config = _SCHEMA

    url: Annotated[str, AfterValidator(_database_url)] | None = None


class MailModel(BaseModel):
    model_config = _SCHEMA

    sender: Email | None = Field(default=None, alias="from")
    smtp_host: Text | None = None
    # Default: by tls (587 starttls, 465 implicit, 25 none).
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    # `starttls = true|false` is the older spelling of tls = "starttls" | "none".
    starttls: bool | None = None
    tls: Literal["starttls", "implicit", "none"] | None = Field(default=None, validate_default=True)
    ca_file: Text | None = None
    username: Text | None = None
    password_env: Text | None = None
    password_file: Text | None = None
    outbox_dir: Text | None = None
    timeout_seconds: float = Field(default=30, gt=0)
    install_name: Text | None = None
    templates_dir: Text | None = None
    attach_max_bytes: int = Field(default=5_000_000, ge=0)
    retry_for_hours: float = Field(default=72, gt=0)

    @field_validator("smtp_host")
    @classmethod
    def _sender_with_smtp(cls, host: str | None, info: ValidationInfo) -> str | None:
        # Only a message that leaves the machine needs a real sender address.
        if host is not None and "sender" in info.data and info.data["sender"] is None:
            raise ValueError("needs mail.from (the sender address) to be set as well")
        return host

    @field_validator("password_file")
    @classmethod
    def _one_password(cls, path: str | None, info: ValidationInfo) -> str | None:
        _not_both(path, info, "password_env")
        return path

    @field_validator("tls")
    @classmethod
    def _tls_agrees_with_starttls(cls, tls: str | None, info: ValidationInfo) -> str | None:
        starttls = info.data.get("starttls")
        if tls is not None and starttls is not None and starttls != (tls == "starttls"):
            raise ValueError(
                f"{tls!r} contradicts starttls = {str(starttls).lower()}; set tls alone"
            )
        return tls


class SourceModel(BaseModel):
    """Keys every source has, whatever its kind."""

    model_config = _SCHEMA

    name: PlainName
    profile: str = "default"
    mode: Literal["full", "partial"] = "partial"
    notify: list[Email] = Field(default_factory=list)
    # Who gets the report of a job held for approval; default: notify.
    approvers: list[Email] = Field(default_factory=list)
    # Attach <job_id>-changes.csv to reports; default: true in full mode.
    send_changes: bool | None = None
    schedule: Annotated[str, AfterValidator(_cron)] | None = None
    interval_seconds: int | None = Field(default=None, gt=0)
    directory: PlainName | None = None
    max_archive_percent: float = Field(default=10, ge=0, le=100)
    max_archive_count: int = Field(default=500, ge=0)
    min_rows_percent: float = Field(default=50, ge=0, le=100)
    settle_seconds: float = Field(default=10, ge=0)
    markers: bool = False
    pattern: Text = "*.csv"
    processed_dir: Text | None = None
    failed_dir: Text | None = None
    settle: Literal["move", "delete"] = "move"
    # How often files are expected ("24h"): an alert goes to notify when none came.
    expect_every: Annotated[str, AfterValidator(_duration)] | None = None
    # Only Monday to Friday (UTC) counts toward expect_every.
    business_days: bool = False

    @field_validator("profile")
    @classmethod
    def _profile_exists(cls, profile: str, info: ValidationInfo) -> str:
        known: set[str] = set((info.context or {}).get("profiles", ()))
        if profile not in known:
            raise ValueError(
                f"{profile!r} is not a known profile; known profiles are "
                f"{', '.join(sorted(known))}, or define [profiles.{profile}]"
            )
        return profile

    @field_validator("business_days")
    @classmethod
    def _business_days_need_expect_every(cls, on: bool, info: ValidationInfo) -> bool:
        if on and info.data.get("expect_every", "reported") is None:
            raise ValueError(
                'only applies with expect_every (e.g. expect_every = "24h"), which is not set'
            )
        return on

    @field_validator("interval_seconds")
    @classmethod
    def _schedule_or_interval(cls, seconds: int | None, info: ValidationInfo) -> int | None:
        _not_both(seconds, info, "schedule")
        return seconds


class LocalSourceModel(SourceModel):
    kind: Literal["local"]
    path: Text
    watch: Literal["inotify", "poll"] = "inotify"


class SftpSourceModel(SourceModel):
    kind: Literal["sftp"]
    host: Text
    port: int = Field(default=22, ge=1, le=65535)
    username: Text
    known_hosts: Text
    password_env: Text | None = None
    password_file: Text | None = None
    key_file: Text | None = Field(default=None, validate_default=True)
    passphrase_env: Text | None = None
    passphrase_file: Text | None = None
    remote_dir: Text = "."
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("password_file")
    @classmethod
    def _one_password(cls, path: str | None, info: ValidationInfo) -> str | None:
        _not_both(path, info, "password_env")
        return path

    @field_validator("passphrase_file")
    @classmethod
    def _one_passphrase(cls, path: str | None, info: ValidationInfo) -> str | None:
        _not_both(path, info, "passphrase_env")
        return path

    @field_validator("key_file")
    @classmethod
    def _some_credential(cls, path: str | None, info: ValidationInfo) -> str | None:
        passwords = [info.data.get(k, "reported") for k in ("password_env", "password_file")]
        if path is None and passwords == [None, None]:
            raise ValueError(
                "is required for an sftp source unless password_env or password_file is set"
            )
        return path


SourceEntry = Annotated[LocalSourceModel | SftpSourceModel, Field(discriminator="kind")]
SOURCE_KINDS: dict[str, type[SourceModel]] = {"local": LocalSourceModel, "sftp": SftpSourceModel}


class ColumnModel(BaseModel):
    model_config = _SCHEMA

    field: Annotated[str, AfterValidator(_field_name)]
    header: Text | None = None
    aliases: list[Text] = Field(default_factory=list)
    type: FieldType | None = Field(default=None, validate_default=True)
    required: bool = False
    options: Names = Field(default_factory=list, validate_default=True)
    separator: Text | None = Field(default=None, validate_default=True)

    @field_validator("type")
    @classmethod
    def _fixed_type_kept(cls, declared: FieldType | None, info: ValidationInfo) -> FieldType | None:
        fixed = FIXED_FIELD_TYPES.get(info.data.get("field", ""))
        if declared is not None and fixed is not None and declared != fixed:
            raise ValueError(
                f"{declared!r} conflicts with the field {info.data['field']!r}, which is "
                f"always a {fixed}; leave type out"
            )
        return declared

    @field_validator("options")
    @classmethod
    def _options_fit_type(cls, options: list[str], info: ValidationInfo) -> list[str]:
        if "field" not in info.data or "type" not in info.data:
            return options  # the field or type is itself wrong and already reported
        name = info.data["field"]
        kind = effective_type(name, info.data["type"])
        if name == "role" and options:
            raise ValueError("the role options are the [directory].roles; leave options out")
        if name == "status":
            if options and {o.casefold() for o in options} != {
                o.casefold() for o in STATUS_OPTIONS
            }:
                raise ValueError(f"the status options are always {', '.join(STATUS_OPTIONS)}")
        elif kind == "select" and name != "role" and not options:
            raise ValueError('a select column needs options, e.g. options = ["Sales", "Support"]')
        elif kind != "select" and options:
            raise ValueError(f"options only apply to a select column, not to type {kind}")
        return options

    @field_validator("separator")
    @classmethod
    def _separator_for_lists(cls, separator: str | None, info: ValidationInfo) -> str | None:
        if separator is None or "field" not in info.data or "type" not in info.data:
            return separator
        kind = effective_type(info.data["field"], info.data["type"])
        if kind != "list":
            raise ValueError(f"a separator only applies to a list column, not to type {kind}")
        return separator


class ProfileModel(BaseModel):
    model_config = _SCHEMA

    key: Literal["employee_id", "email"]
    description: str | None = None
    delimiter: Annotated[str, AfterValidator(_delimiter)] | None = None
    encoding: Annotated[str, AfterValidator(_encoding)] | None = None
    fallback_encoding: Codec | None = None
    header: bool | None = None
    on_row_error: Literal["skip", "reject"] | None = None
    unknown_columns: Literal["ignore", "reject"] | None = None
    max_rows: int | None = Field(default=None, gt=0)
    max_bytes: int | None = Field(default=None, gt=0)
    phone_region: Annotated[str, AfterValidator(_phone_region)] | None = None
    columns: list[ColumnModel] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _columns_consistent(
        cls, columns: list[ColumnModel], info: ValidationInfo
    ) -> list[ColumnModel]:
        fields = [c.field for c in columns]
        for name in fields:
            if fields.count(name) > 1:
                raise ValueError(f"the field {name!r} has more than one column")
        owner: dict[str, str] = {}
        for col in columns:
            for name in {
                normalise_header(n) for n in (col.header or col.field, *col.aliases, col.field)
            }:
                if owner.setdefault(name, col.field) != col.field:
                    raise ValueError(
                        f"the header name {name!r} is used by both {owner[name]!r} and "
                        f"{col.field!r} (headers compare ignoring case, spaces and punctuation)"
                    )
        key = info.data.get("key")
        if key is not None and key not in fields:
            raise ValueError(
                f"the key {key!r} is not one of the columns' fields ({', '.join(fields)})"
            )
        return columns


class DirectoryModel(BaseModel):
    model_config = _SCHEMA

    groups: Annotated[
        list[Annotated[Text, AfterValidator(_without(",", "it separates groups in a cell"))]],
        AfterValidator(_unique(str.casefold)),
    ] = Field(default_factory=list)
    create_missing_groups: bool | None = None
    roles: Names = Field(default_factory=lambda: ["User", "Admin", "Supervisor"], min_length=1)
    enabled_sources: Annotated[
        list[Annotated[Text, AfterValidator(_without(":,", "it separates source usernames"))]],
        AfterValidator(_unique(str.lower)),
    ] = Field(default_factory=lambda: ["email", "slack"])
    # Labels are case-sensitive (seed 001), so only exact repeats are a mistake.
    labels: Annotated[
        list[Annotated[Text, AfterValidator(_without(":", "it separates labels in a cell"))]],
        AfterValidator(_unique(str)),
    ] = Field(default_factory=list)

    @field_validator("groups")
    @classmethod
    def _none_is_no_group(cls, groups: list[str]) -> list[str]:
        if any(g.strip().casefold() == "none" for g in groups):
            raise ValueError("'none' cannot be a group: in a cell it means no groups")
        return groups


def _listen(address: str) -> str:
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port, e.g. 127.0.0.1:9464")
    return address


class MetricsModel(BaseModel):
    """`[metrics]`: where the daemon answers Prometheus scrapes (off when not set)."""

    model_config = _SCHEMA

    listen: Annotated[str, AfterValidator(_listen)] | None = None


def _address(text: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an IP address or network, e.g. 127.0.0.1 or 10.0.0.0/24"
        ) from None
    return text


def _origin(text: str) -> str:
    if not re.fullmatch(r"https?://[^/\s?#]+", text):
        raise ValueError(
            f"{text!r} is not an origin: scheme and host only, e.g. https://syncd.example.com"
        )
    return text


class WebModel(BaseModel):
    """`[web]`: the back office, served by the daemon (off when `listen` is not set)."""

    model_config = _SCHEMA

    listen: Annotated[str, AfterValidator(_listen)] | None = None
    session_hours: float = Field(default=12, gt=0)
    # A reverse proxy that authenticates people names them in this header; it is
    # believed only from `trusted_proxies`.
    proxy_user_header: Text | None = None
    trusted_proxies: list[Annotated[str, AfterValidator(_address)]] = Field(default_factory=list)
    # The address people type, when a proxy serves the back office under another one.
    public_origin: Annotated[str, AfterValidator(_origin)] | None = None
    login_attempts: int = Field(default=5, ge=1)
    login_window_minutes: float = Field(default=15, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_for_header(cls, proxies: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("proxy_user_header") is not None and not proxies:
            raise ValueError(
                "is needed with proxy_user_header: the addresses of the proxies whose "
                'user header is believed, e.g. ["127.0.0.1"]'
            )
        return proxies


class ConfigFile(BaseModel):
    """The whole file. A missing `sources` key means the embedded default drop folder."""

    model_config = _SCHEMA

    database: DatabaseModel = Field(default_factory=DatabaseModel)
    mail: MailModel = Field(default_factory=MailModel)
    metrics: MetricsModel = Field(default_factory=MetricsModel)
    web: WebModel = Field(default_factory=WebModel)
    sources: list[SourceEntry] | None = None
    directory: DirectoryModel = Field(default_factory=DirectoryModel)
    profiles: dict[str, ProfileModel] = Field(default_factory=dict)
    retention_days: int = Field(default=30, ge=0)
    stop_timeout_seconds: float = Field(default=60, gt=0)
    state_dir: Text = "var"
    secret_env: Text | None = None
    secret_file: Text | None = None

    @field_validator("sources")
    @classmethod
    def _source_names_unique(cls, sources: list[Any] | None) -> list[Any] | None:
        names = [s.name for s in sources or ()]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two sources are named {name!r}; names must be unique")
        return sources

    @field_validator("secret_file")
    @classmethod
    def _one_secret(cls, path: str | None, info: ValidationInfo) -> str | None:
        _not_both(path, info, "secret_env")
        return path


def known_keys() -> dict[str, frozenset[str]]:
    """Every key each section accepts, to suggest the intended one for a typo."""
    models: dict[str, type[BaseModel]] = {
        "database": DatabaseModel,
        "mail": MailModel,
        "metrics": MetricsModel,
        "web": WebModel,
        "local": LocalSourceModel,
        "sftp": SftpSourceModel,
        "columns": ColumnModel,
        "profiles": ProfileModel,
        "directory": DirectoryModel,
        "": ConfigFile,
    }
    return {
        section: frozenset(f.alias or name for name, f in model.model_fields.items())
        for section, model in models.items()
    }
