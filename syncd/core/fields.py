"""Cell rules: how the stripped cells of one column are checked and normalised, per type.

A rule turns a column of stripped cells (a blank cell is already null) into two polars
expressions over the whole column: the normalised value and whether the cell passes.
A blank cell always passes here; whether a value is required is the caller's business.
Python runs only in `explain`, for cells that failed, to say what is wrong and what to
do. Rules marked `by_distinct` run on the column's distinct values, which validation maps
back (selects, booleans, dates, groups: few distinct values however long the file); the
others run on every cell. Emails are decided in two steps, see `syncd.core.emails`;
phone numbers by a fast path and then phonenumbers, see `syncd.core.phones`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

import polars as pl

from syncd.core.emails import check_email, fast_accepts
from syncd.core.printable import printable
from syncd.core.profile import (
    FIXED_FIELD_TYPES,
    FIXED_LIST_SEPARATORS,
    PASSWORD_MIN_LENGTH,
    STATUS_OPTIONS,
    Column,
    DirectoryRules,
)

STRING_MAX_CHARS = 255
TEXT_MAX_BYTES = 64 * 1024
_SHOWN_MAX = 60


def quoted(value: str) -> str:
    """A cell value as a message shows it: in quotes, on one line, cut when long."""
    text = printable(" ".join(value.splitlines()))
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 3] + "..."
    return f"'{text}'"


def quoted_all(values: Sequence[str]) -> str:
    return ", ".join(quoted(v) for v in values)


def _by_lower(names: Sequence[str]) -> dict[str, str]:
    """Lower-cased spelling -> the configured name (the first, if two differ by case)."""
    spellings: dict[str, str] = {}
    for name in names:
        spellings.setdefault(name.strip().lower(), name)
    return spellings


def _is_are(values: Sequence[str], singular: str, plural: str) -> str:
    return f"{quoted_all(values)} {singular if len(values) == 1 else plural}"


class CellRule(Protocol):
    """What validation needs from a rule of any type."""

    by_distinct: ClassVar[bool]  # run on the distinct values, then map back

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """(value, ok) for a column of stripped cells; ok is True for a blank cell."""
        ...

    def explain(self, cell: str) -> str:
        """What is wrong with a cell that failed, for a person to act on."""
        ...


#: Control characters no name or text holds (tab and line ends aside, which have rules
#: of their own): ESC and its kin would reach a support person's terminal from
#: `syncd users list`, and recolour or rewrite what it shows.
CONTROL_CHARACTERS = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
_CONTROL = re.compile(CONTROL_CHARACTERS)
#: Any C0 or C1 control character, line breaks included.
_CONTROL_OR_BREAK = "[\x00-\x1f\x7f-\x9f]"


@dataclass(frozen=True, slots=True)
class TextRule:
    """Strings (one line, at most 255 characters), text (up to 64 KiB) and passwords;
    none holds a control character.

    Messages never quote the cell: a password must not reach a report.
    """

    by_distinct: ClassVar[bool] = False

    max_chars: int | None = STRING_MAX_CHARS
    max_bytes: int | None = None
    single_line: bool = True
    min_chars: int = 0
    controls: bool = True  # whether cells are checked for control characters

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        ok = pl.lit(True)
        if self.controls:
            ok = ok & ~cell.str.contains(CONTROL_CHARACTERS)
        if self.single_line:
            ok = ok & ~cell.str.contains_any(["\n", "\r"])
        if self.max_chars is not None:
            ok = ok & (cell.str.len_chars() <= self.max_chars)
        if self.max_bytes is not None:
            ok = ok & (cell.str.len_bytes() <= self.max_bytes)
        if self.min_chars:
            ok = ok & (cell.str.len_chars() >= self.min_chars)
        return cell, ok.fill_null(True)

    def screens(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """Whole-column facts, one value each: any line break or control character at
        all (one regex pass over the column joined: a line break is rare enough that
        telling the two apart is left to the cell checks), and the longest cell.

        Checking a whole column at once is much cheaper than cell by cell, and in a
        typical file no cell comes near a limit, so `narrowed` can drop the cell checks.
        """
        return (
            cell.str.join("").str.contains(_CONTROL_OR_BREAK),
            cell.str.len_bytes().max(),
        )

    def narrowed(self, controls_or_breaks: bool, longest_bytes: int | None) -> TextRule:
        """This rule without the cell checks the whole column is known to pass."""

        def needed(limit: int | None) -> int | None:
            # A cell never has more characters than bytes.
            return limit if limit is not None and (longest_bytes or 0) > limit else None

        return replace(
            self,
            single_line=self.single_line and controls_or_breaks,
            controls=self.controls and controls_or_breaks,
            max_chars=needed(self.max_chars),
            max_bytes=needed(self.max_bytes),
        )

    def explain(self, cell: str) -> str:
        if len(cell) < self.min_chars:
            return f"must be at least {self.min_chars} characters long"
        if self.single_line and ("\n" in cell or "\r" in cell):
            return "must be a single line; remove the line breaks"
        if _CONTROL.search(cell):
            return (
                "holds an invisible control character (such as ESC), which no name or text "
                "has; type the cell again"
            )
        if self.max_chars is not None and len(cell) > self.max_chars:
            return f"is {len(cell)} characters long; at most {self.max_chars} are allowed"
        size = len(cell.encode("utf-8"))
        return f"is {size:,} bytes long; at most {self.max_bytes or 0:,} bytes (64 KiB) are allowed"


@dataclass(frozen=True, slots=True)
class EmailRule:
    """Email addresses: the fast pattern here; validation asks email-validator about the
    cells it did not accept and normalises the domain (see `syncd.core.emails`)."""

    by_distinct: ClassVar[bool] = False

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        return cell, fast_accepts(cell) | cell.is_null()

    def explain(self, cell: str, problem: str | None = None) -> str:
        """`problem`: email-validator's reason, when validation has it already."""
        problem = problem or check_email(cell).problem or "it could not be read"
        return f"{quoted(cell)} is not a valid email address: {problem}"


@dataclass(frozen=True, slots=True)
class PhoneRule:
    """Phone numbers that phonenumbers finds possible, stored in E.164 (`+442079460958`);
    a number without a country code is read in `region` (the profile's phone_region)."""

    # Phone numbers are per person: a file has about as many distinct cells as rows.
    by_distinct: ClassVar[bool] = False

    region: str | None = None

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        from syncd.core.phones import phone_numbers

        return phone_numbers(cell, self.region)

    def check_column(self, cells: pl.Series) -> tuple[pl.Series, pl.Series]:
        """`check`'s answers for a whole column of stripped cells, in one pass."""
        from syncd.core.phones import e164_column

        return e164_column(cells, self.region)

    def explain(self, cell: str) -> str:
        from syncd.core.phones import problem

        return f"{quoted(cell)} {problem(cell, self.region)}"


@dataclass(frozen=True, slots=True)
class IntegerRule:
    """Whole numbers: an optional sign and digits; stored without sign or leading zeros."""

    by_distinct: ClassVar[bool] = False

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        ok = cell.str.contains(r"^[+-]?[0-9]+$")
        digits = cell.str.replace(r"^[+-]?0*", "")
        value = (
            pl.when(~ok)
            .then(None)
            .when(digits == "")
            .then(pl.lit("0"))
            .when(cell.str.starts_with("-"))
            .then(pl.concat_str(pl.lit("-"), digits))
            .otherwise(digits)
        )
        return value, ok.fill_null(True)

    def explain(self, cell: str) -> str:
        return (
            f"{quoted(cell)} is not a whole number; write digits only, with no thousands separators"
        )


@dataclass(frozen=True, slots=True)
class NumberRule:
    """Decimal numbers with `.`; stored as the shortest decimal text (no float rounding)."""

    by_distinct: ClassVar[bool] = False

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        ok = cell.str.contains(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
        body = cell.str.replace(r"^[+-]", "")
        whole = body.str.replace(r"\..*$", "").str.replace(r"^0+", "")
        whole = pl.when(whole == "").then(pl.lit("0")).otherwise(whole)
        fraction = body.str.replace(r"^[^.]*\.?", "").str.replace(r"0+$", "")
        text = pl.concat_str(
            whole,
            pl.when(fraction != "").then(pl.concat_str(pl.lit("."), fraction)),
            ignore_nulls=True,
        )
        negative = cell.str.starts_with("-") & (text != "0")
        value = (
            pl.when(~ok)
            .then(None)
            .when(negative)
            .then(pl.concat_str(pl.lit("-"), text))
            .otherwise(text)
        )
        return value, ok.fill_null(True)

    def explain(self, cell: str) -> str:
        return (
            f"{quoted(cell)} is not a number; write digits with . for decimals, "
            "with no thousands separators"
        )


@dataclass(frozen=True, slots=True)
class DateRule:
    """ISO dates that exist in the calendar: `yyyy-mm-dd`, stored as written."""

    by_distinct: ClassVar[bool] = True

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        # to_date alone accepts "2026-2-3"; the pattern insists on the ISO shape.
        # A blank cell is not this rule's business (required-ness is checked apart); test
        # it first, as `null & False` is False in polars and would hide it from fill_null.
        ok = cell.is_null() | (
            cell.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
            & cell.str.to_date("%Y-%m-%d", strict=False).is_not_null()
        )
        return cell, ok

    def explain(self, cell: str) -> str:
        return f"{quoted(cell)} is not a date; use yyyy-mm-dd"


@dataclass(frozen=True, slots=True)
class ChoiceRule:
    """Selects and booleans: a value matched case-insensitively, stored canonically."""

    by_distinct: ClassVar[bool] = True

    spellings: tuple[tuple[str, str], ...]  # (lower-cased spelling, canonical value)
    advice: str

    @classmethod
    def select(cls, options: Sequence[str]) -> ChoiceRule:
        listed = ", ".join(options) if options else "(no options are configured)"
        return cls(tuple(_by_lower(options).items()), f"is not one of {listed}")

    @classmethod
    def boolean(cls, true: str = "true", false: str = "false") -> ChoiceRule:
        words = {"true": true, "yes": true, "1": true, "false": false, "no": false, "0": false}
        return cls(tuple(words.items()), "is not true or false; use true/false, yes/no or 1/0")

    @classmethod
    def status(cls) -> ChoiceRule:
        """Active/Archived, stored the way records keep a status: active/archived."""
        return cls(
            tuple((o.lower(), o.lower()) for o in STATUS_OPTIONS),
            f"is not one of {', '.join(STATUS_OPTIONS)}",
        )

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        value = cell.str.to_lowercase().replace_strict(
            [s for s, _ in self.spellings],
            [c for _, c in self.spellings],
            default=None,
            return_dtype=pl.String,
        )
        return value, (value.is_not_null() | cell.is_null())

    def explain(self, cell: str) -> str:
        return f"{quoted(cell)} {self.advice}"


def list_items(cell: pl.Expr, separator: str) -> pl.Expr:
    """A cell split on `separator`, items stripped, empty items dropped."""
    stripped = cell.str.split(separator).list.eval(pl.element().str.strip_chars())
    return stripped.list.filter(pl.element() != "")


def _split(cell: str, separator: str) -> list[str]:
    return [item.strip() for item in cell.split(separator) if item.strip()]


def _any_null(items: pl.Expr) -> pl.Expr:
    return items.list.eval(pl.element().is_null()).list.any().fill_null(False)


@dataclass(frozen=True, slots=True)
class ListRule:
    """Lists of a custom field: any items, stored joined by `|`."""

    by_distinct: ClassVar[bool] = False

    separator: str = ","

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        items = list_items(cell, self.separator).list.unique(maintain_order=True)
        return items.list.join("|"), pl.lit(True)

    def explain(self, cell: str) -> str:
        return f"{quoted(cell)} could not be split into items"


@dataclass(frozen=True, slots=True)
class GroupsRule:
    """Groups: configured ones, matched case-insensitively (seed 002); `none` = no groups."""

    by_distinct: ClassVar[bool] = True

    groups: tuple[str, ...]
    create_missing: bool = False

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        spellings = _by_lower(self.groups)
        known = (
            pl.element()
            .str.to_lowercase()
            .replace_strict(
                list(spellings), list(spellings.values()), default=None, return_dtype=pl.String
            )
        )
        if self.create_missing:
            known = pl.coalesce(known, pl.element())
        items = list_items(cell, FIXED_LIST_SEPARATORS["groups"])
        mapped = items.list.eval(known).list.unique(maintain_order=True)
        none = cell.str.to_lowercase() == "none"
        value = pl.when(none).then(items.list.head(0)).otherwise(mapped)
        return value, (none | ~_any_null(mapped)).fill_null(True)

    def explain(self, cell: str) -> str:
        known = _by_lower(self.groups)
        unknown = [i for i in _split(cell, ",") if i.lower() not in known]
        listed = ", ".join(self.groups) if self.groups else "(no groups are configured)"
        return (
            f"{_is_are(unknown, 'is not a group', 'are not groups')}; "
            f"groups: {listed}, or none for no groups"
        )


@dataclass(frozen=True, slots=True)
class SourcesRule:
    """Source usernames `source:username` (seed 002); the source must be enabled."""

    # Usernames are per user, so a file has about as many distinct cells as rows.
    by_distinct: ClassVar[bool] = False

    enabled: tuple[str, ...]

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        parts = pl.element().str.splitn(":", 2)
        source = parts.struct.field("field_0").str.strip_chars().str.to_lowercase()
        user = parts.struct.field("field_1").str.strip_chars()
        enabled = pl.lit(pl.Series([s.lower() for s in self.enabled], dtype=pl.String)).implode()
        item = pl.when(source.is_in(enabled) & (user.str.len_bytes() > 0)).then(
            pl.concat_str(source, pl.lit(":"), user)
        )
        items = list_items(cell, FIXED_LIST_SEPARATORS["source_usernames"]).list.eval(item)
        return items.list.unique(maintain_order=True), ~_any_null(items)

    def explain(self, cell: str) -> str:
        enabled = {s.lower() for s in self.enabled}
        malformed: list[str] = []
        unknown: list[str] = []
        for item in _split(cell, FIXED_LIST_SEPARATORS["source_usernames"]):
            source, colon, user = (p.strip() for p in item.partition(":"))
            if not (colon and source and user):
                malformed.append(item)
            elif source.lower() not in enabled:
                unknown.append(source)
        problems = []
        if malformed:
            shape = _is_are(malformed, "is not", "are not")
            problems.append(f"{shape} source:username (for example slack:jdoe)")
        if unknown:
            listed = ", ".join(sorted(enabled)) if enabled else "none"
            problems.append(
                f"{_is_are(unknown, 'is not an enabled source', 'are not enabled sources')}; "
                f"enabled: {listed}"
            )
        return "; ".join(problems)


@dataclass(frozen=True, slots=True)
class LabelsRule:
    """Labels (seed 001): `:`-separated, case-sensitive; checked only when configured."""

    by_distinct: ClassVar[bool] = True

    labels: tuple[str, ...]
    separator: str = ":"

    def check(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        items = list_items(cell, self.separator).list.unique(maintain_order=True)
        if not self.labels:
            return items, pl.lit(True)
        known = pl.lit(pl.Series(self.labels, dtype=pl.String)).implode()
        unknown = items.list.eval(~pl.element().is_in(known)).list.any().fill_null(False)
        return items, ~unknown

    def explain(self, cell: str) -> str:
        unknown = [i for i in _split(cell, self.separator) if i not in self.labels]
        return (
            f"{_is_are(unknown, 'is not a label', 'are not labels')}; "
            f"labels: {', '.join(self.labels)} (labels are case-sensitive)"
        )


def rule_for(column: Column, rules: DirectoryRules, phone_region: str | None = None) -> CellRule:
    """The rule for a profile column: fixed fields have fixed rules, custom ones their type
    (phone numbers without a country code are read in the profile's `phone_region`)."""
    name = column.field
    # Both give the records' status column directly: active or archived.
    if name == "status":
        return ChoiceRule.status()
    if name == "active":
        return ChoiceRule.boolean(true="active", false="archived")
    if name == "role":
        return ChoiceRule.select(rules.roles)
    if name == "password":
        return TextRule(min_chars=PASSWORD_MIN_LENGTH)
    if name == "groups":
        return GroupsRule(rules.groups, rules.create_missing_groups)
    if name == "source_usernames":
        return SourcesRule(rules.enabled_sources)
    if name in ("labels", "labels_id"):
        return LabelsRule(rules.labels, FIXED_LIST_SEPARATORS[name])
    kind = FIXED_FIELD_TYPES.get(name, column.type)
    if kind == "email":
        return EmailRule()
    if kind == "integer":
        return IntegerRule()
    if kind == "number":
        return NumberRule()
    if kind == "date":
        return DateRule()
    if kind == "boolean":
        return ChoiceRule.boolean()
    if kind == "select":
        return ChoiceRule.select(column.options)
    if kind == "list":
        return ListRule(column.separator)
    if kind == "phone":
        return PhoneRule(phone_region)
    if kind == "text":
        return TextRule(max_chars=None, max_bytes=TEXT_MAX_BYTES, single_line=False)
    return TextRule()
