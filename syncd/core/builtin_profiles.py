"""The built-in profiles: one per export format the product pages describe, plus `default`.

Each is named for the file it reads, not for the product that writes it. The config may
add profiles or replace one of these by defining `[profiles.NAME]` with the same name.
Every profile here has a small example file in `config/examples/<name>.csv`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from syncd.core.profile import (
    FIXED_FIELD_TYPES,
    FIXED_LIST_SEPARATORS,
    STATUS_OPTIONS,
    Column,
    FieldType,
    Profile,
)


def fixed_column(field: str, header: str, *aliases: str, required: bool = False) -> Column:
    """A column for a field with a fixed meaning, typed as that field always is.

    `status` gets its Active/Archived options here; `role` has none because its options
    are the directory's configured roles.
    """
    return Column(
        field=field,
        header=header,
        aliases=aliases,
        type=FIXED_FIELD_TYPES[field],
        required=required,
        options=STATUS_OPTIONS if field == "status" else (),
        separator=FIXED_LIST_SEPARATORS.get(field, ","),
    )


def _custom(field: str, header: str, type_: FieldType = "string") -> Column:
    return Column(field=field, header=header, type=type_)


DEFAULT = Profile(
    name="default",
    key="email",
    description=(
        "Any of the common user-list layouts: knows every column name the supported "
        "export formats use, keyed on email; only email is required."
    ),
    columns=(
        fixed_column("email", "Email", "Primary Email", "e-mail", required=True),
        fixed_column("employee_id", "Employee ID"),
        fixed_column("first_name", "First Name"),
        fixed_column("last_name", "Last Name"),
        fixed_column("display_name", "Display Name", "Full Name", "full_name", "Name"),
        fixed_column("status", "Current Status", "Status"),
        fixed_column("active", "Active"),
        fixed_column("role", "Role"),
        fixed_column("groups", "Groups", "Group(s)", "Group"),
        fixed_column("labels", "Labels"),
        fixed_column("labels_id", "Labels ID"),
        fixed_column("company_id", "Company ID"),
        fixed_column("source_usernames", "Source Username(s)", "Source Usernames"),
        fixed_column("password", "Password"),
    ),
)

EMAIL_FULLNAME = Profile(
    name="email_fullname",
    key="email",
    description=(
        "A minimal user list: an email and a full name per row; any other column is "
        "a custom field of the target application and is ignored with a notice."
    ),
    columns=(
        fixed_column("email", "Email", "e-mail", required=True),
        fixed_column("full_name", "Full Name", "Name", required=True),
    ),
    unknown_columns="ignore",
)

CONTACTS = Profile(
    name="contacts",
    key="email",
    description=(
        "Customer contacts with lowercase column names: email, first_name, last_name, "
        "company_id, labels and labels_id (labels `:`-separated, case-sensitive)."
    ),
    columns=(
        fixed_column("email", "email", required=True),
        fixed_column("first_name", "first_name"),
        fixed_column("last_name", "last_name"),
        fixed_column("company_id", "company_id"),
        fixed_column("labels", "labels"),
        fixed_column("labels_id", "labels_id"),
    ),
)

AGENTS = Profile(
    name="agents",
    key="email",
    description=(
        "Internal users (agents) with lowercase column names: email, first_name, "
        "last_name, password (at least 6 characters, stored hashed) and active (true/false)."
    ),
    columns=(
        fixed_column("email", "email", required=True),
        fixed_column("first_name", "first_name"),
        fixed_column("last_name", "last_name"),
        fixed_column("password", "password"),
        fixed_column("active", "active"),
    ),
)

USER_DIRECTORY = Profile(
    name="user_directory",
    key="email",
    description=(
        "The user-directory import template: Current Status, Display Name, Primary Email, "
        "Role, Groups (comma-separated, `none` for no group) and Source Username(s)."
    ),
    columns=(
        fixed_column("status", "Current Status"),
        fixed_column("display_name", "Display Name"),
        fixed_column("email", "Primary Email", required=True),
        fixed_column("role", "Role"),
        fixed_column("groups", "Groups", "Group(s)"),
        fixed_column("source_usernames", "Source Username(s)"),
    ),
)

PEOPLE = Profile(
    name="people",
    key="email",
    description="People with an Email, a First Name and a Last Name, all three required.",
    columns=(
        fixed_column("email", "Email", required=True),
        fixed_column("first_name", "First Name", required=True),
        fixed_column("last_name", "Last Name", required=True),
    ),
)

HR_FULL = Profile(
    name="hr_full",
    key="employee_id",
    description=(
        "The nightly full export of an HR system, keyed on Employee ID so an email change "
        "is reported as such: identity, status, role, groups, department, start date, "
        "cost center and phone."
    ),
    columns=(
        fixed_column("employee_id", "Employee ID", required=True),
        fixed_column("email", "Primary Email", "Email", "e-mail", required=True),
        fixed_column("first_name", "First Name"),
        fixed_column("last_name", "Last Name"),
        fixed_column("display_name", "Display Name"),
        fixed_column("status", "Current Status", "Status"),
        fixed_column("role", "Role"),
        fixed_column("groups", "Groups", "Group(s)"),
        # Department names differ per organisation, so a free string rather than a select.
        _custom("department", "Department"),
        _custom("start_date", "Start Date", "date"),
        _custom("cost_center", "Cost Center"),
        _custom("phone", "Phone", "phone"),
    ),
)

BUILTIN_PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        p.name: p
        for p in (DEFAULT, EMAIL_FULLNAME, CONTACTS, AGENTS, USER_DIRECTORY, PEOPLE, HR_FULL)
    }
)
