"""Profiles: what columns a file has, how each is typed, and which one is the key.

A profile is plain frozen data. Built-in profiles (one per export format the product
pages describe) live in `syncd.core.builtin_profiles`; the config may add more.
`DirectoryRules` carries what rows are checked against: configured groups, roles and
enabled sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from syncd.core.limits import MAX_BYTES, MAX_ROWS

FieldType = Literal[
    "string", "text", "email", "integer", "number", "date", "boolean", "select", "list", "phone"
]
FIELD_TYPES: tuple[FieldType, ...] = (
    "string",
    "text",
    "email",
    "integer",
    "number",
    "date",
    "boolean",
    "select",
    "list",
    "phone",
)

KeyField = Literal["employee_id", "email"]
Mode = Literal["full", "partial"]

#: Fields with a fixed meaning in the directory. Any other field name is a custom field
#: stored under `fields` with the column's declared type.
FIXED_FIELDS: frozenset[str] = frozenset(
    {
        "employee_id",
        "email",
        "first_name",
        "last_name",
        "display_name",
        "full_name",
        "status",
        "active",
        "role",
        "groups",
        "labels",
        "labels_id",
        "company_id",
        "source_usernames",
        "password",
    }
)

#: The type each fixed field always has, whatever a profile declares. `status` is a
#: select of Active/Archived, `active` a boolean; `role` a select over the directory's
#: roles; `groups`, `labels`, `labels_id` and `source_usernames` are lists.
FIXED_FIELD_TYPES: dict[str, FieldType] = {
    "employee_id": "string",
    "email": "email",
    "first_name": "string",
    "last_name": "string",
    "display_name": "string",
    "full_name": "string",
    "status": "select",
    "active": "boolean",
    "role": "select",
    "groups": "list",
    "labels": "list",
    "labels_id": "list",
    "company_id": "string",
    "source_usernames": "list",
    "password": "string",
}

#: The list separator of each fixed list field (seed 001: labels are `:`-separated;
#: seed 002: groups are comma-separated).
FIXED_LIST_SEPARATORS: dict[str, str] = {
    "groups": ",",
    "labels": ":",
    "labels_id": ":",
    "source_usernames": ",",
}

STATUS_OPTIONS: tuple[str, ...] = ("Active", "Archived")
PASSWORD_MIN_LENGTH = 6


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a profile: the field it fills and how its cells are read."""

    field: str
    header: str
    aliases: tuple[str, ...] = ()
    type: FieldType = "string"
    required: bool = False
    options: tuple[str, ...] = ()  # select: the allowed values, canonical spelling
    separator: str = ","  # list: what splits a cell into items

    @property
    def names(self) -> tuple[str, ...]:
        """Every header this column answers to: its header, its aliases, its field name."""
        return (self.header, *self.aliases, self.field)


@dataclass(frozen=True, slots=True)
class Profile:
    """How to read and type one kind of file."""

    name: str
    key: KeyField
    columns: tuple[Column, ...]
    description: str = ""
    delimiter: str = "auto"  # "auto" or one of , ; TAB |
    encoding: str = "auto"  # "auto" (BOM, then strict UTF-8, then fallback) or a codec
    fallback_encoding: str = "cp1252"
    header: bool = True
    on_row_error: Literal["skip", "reject"] = "skip"
    unknown_columns: Literal["ignore", "reject"] = "ignore"
    max_bytes: int = MAX_BYTES
    max_rows: int = MAX_ROWS
    # phone columns: the region (ISO 3166 alpha-2, e.g. "GB") of numbers written without
    # a country code; None: such numbers are refused
    phone_region: str | None = None

    def column(self, field_name: str) -> Column | None:
        """The column that fills `field_name`, if the profile has one."""
        for col in self.columns:
            if col.field == field_name:
                return col
        return None


@dataclass(frozen=True, slots=True)
class DirectoryRules:
    """What rows are validated against: the `[directory]` section of the config."""

    groups: tuple[str, ...] = ()
    create_missing_groups: bool = False
    roles: tuple[str, ...] = ("User", "Admin", "Supervisor")
    enabled_sources: tuple[str, ...] = ()
    labels: tuple[str, ...] = field(default=())  # empty: any label is accepted
