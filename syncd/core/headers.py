"""Header mapping: which column of the file fills which column of the profile.

A header matches a profile column when it equals the column's header, one of its
aliases or its field name once both are normalised (NFC, case folded, only letters and
digits kept), so "Primary Email", "primary_email" and "PRIMARY-EMAIL " are one name.
A file without a header row maps by position, in the profile's column order. Every
problem that rejects the file is reported at once, each saying what to do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace

from syncd.core.decoding import shown_lost
from syncd.core.profile import Column, Profile
from syncd.core.table import ROW, RawTable, is_errors_header, normalise_header
from syncd.errors import FileRejected


def column_letter(index: int) -> str:
    """The spreadsheet letter of a 0-based column position: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def position(index: int) -> str:
    """A column position as a person finds it in a spreadsheet: "column 3 (C)"."""
    return f"column {index + 1} ({column_letter(index)})"


@dataclass(frozen=True, slots=True)
class MappedColumn:
    """One file column that fills one profile column."""

    index: int  # 0-based position in the file; its cells are `RawTable.column_name(index)`
    header: str  # as written in the file (the profile's header for a header-less file)
    column: Column


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """The file's columns that fill profile columns, in file order."""

    columns: tuple[MappedColumn, ...]
    ignored: tuple[int, ...] = ()  # positions of columns the profile does not know
    notices: tuple[str, ...] = ()

    def get(self, field_name: str) -> MappedColumn | None:
        for mapped in self.columns:
            if mapped.column.field == field_name:
                return mapped
        return None


def _width(table: RawTable) -> int:
    data_columns = sum(1 for name in table.cells.columns if name != ROW)
    return max(len(table.header), data_columns)


def _accepted_names(column: Column) -> str:
    seen: dict[str, str] = {}
    for name in column.names:
        seen.setdefault(normalise_header(name), name)
    names = [f"'{n}'" for n in seen.values()]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _by_name(profile: Profile) -> dict[str, Column]:
    index: dict[str, Column] = {}
    for column in profile.columns:
        for name in column.names:
            index.setdefault(normalise_header(name), column)
    return index


def _map_by_name(
    table: RawTable, profile: Profile
) -> tuple[list[MappedColumn], list[int], list[str]]:
    index = _by_name(profile)
    mapped: list[MappedColumn] = []
    unknown: list[int] = []
    problems: list[str] = []
    positions: dict[str, list[int]] = defaultdict(list)
    for i, header in enumerate(table.header):
        if is_errors_header(header):  # an errors CSV's own column is never data
            continue
        key = normalise_header(header)
        column = index.get(key) if key else None
        if column is None:
            unknown.append(i)
            continue
        positions[key].append(i)
        mapped.append(MappedColumn(i, header, column))
    for found in positions.values():
        if len(found) > 1:
            where = " and ".join(position(i) for i in found)
            problems.append(
                f"the header '{shown_header(table.header[found[0]])}' appears more than once "
                f"({where}); "
                "keep one of these columns and remove or rename the others"
            )
    by_field: dict[str, list[MappedColumn]] = defaultdict(list)
    for m in mapped:
        by_field[m.column.field].append(m)
    for field_name, fills in by_field.items():
        if len({normalise_header(m.header) for m in fills}) > 1:
            where = " and ".join(f"'{m.header}' ({position(m.index)})" for m in fills)
            problems.append(
                f"columns {where} both fill {field_name}; keep one of them and remove the other"
            )
    return mapped, unknown, problems


def _map_by_position(table: RawTable, profile: Profile) -> tuple[list[MappedColumn], list[int]]:
    width = _width(table)
    mapped = [MappedColumn(i, c.header, c) for i, c in enumerate(profile.columns[:width])]
    return mapped, list(range(len(profile.columns), width))


#: A message names at most this many headers, each cut to HEADER_SHOWN characters: a
#: file of a thousand columns, or a binary file read as one, must not make a message
#: (stored with the job, sent in its report) of megabytes.
HEADERS_SHOWN = 10
HEADER_SHOWN = 40


def shown_header(header: str) -> str:
    """A header as a message quotes it: lost bytes as U+FFFD, a long one cut short."""
    header = shown_lost(header.strip())
    return header if len(header) <= HEADER_SHOWN else header[: HEADER_SHOWN - 1] + "…"


def _listed(names: list[str]) -> str:
    """`names` joined, past HEADERS_SHOWN counted instead."""
    more = len(names) - HEADERS_SHOWN
    return ", ".join(names[:HEADERS_SHOWN]) + (f" and {more:,} more" if more > 0 else "")


def _found(table: RawTable) -> str:
    found = [f"'{shown_header(h)}'" for h in table.header if h.strip()]
    return _listed(found) if found else "none"


def _missing(table: RawTable, profile: Profile, column: Column, what: str) -> str:
    if not table.has_header:
        index = profile.columns.index(column)
        return (
            f"the {what} '{column.header}' is missing: the file has no header row, so "
            f"columns are read in the profile's order and '{column.header}' would be "
            f"{position(index)}, but the file has only {_width(table)} columns"
        )
    return (
        f"the {what} '{column.header}' is missing; add a column named "
        f"{_accepted_names(column)} (headers found: {_found(table)})"
    )


def _unknown_text(table: RawTable, unknown: list[int]) -> str:
    def name(i: int) -> str:
        header = table.header[i].strip() if table.has_header and i < len(table.header) else ""
        shown = shown_header(header)
        return f"'{shown}' ({position(i)})" if header else f"{position(i)} (no header)"

    return _listed([name(i) for i in unknown])


def map_header(table: RawTable, profile: Profile) -> ColumnMap:
    """Map the file's columns onto the profile's; raise FileRejected with every problem."""
    problems: list[str] = []
    if table.has_header:
        mapped, unknown, problems = _map_by_name(table, profile)
    else:
        mapped, unknown = _map_by_position(table, profile)
    present = {m.column.field for m in mapped}

    key_column = profile.column(profile.key)
    if key_column is None:
        problems.append(
            f"profile '{profile.name}' matches users on {profile.key} but has no "
            f"{profile.key} column; add one to the profile"
        )
    elif key_column.field not in present:
        problems.append(_missing(table, profile, key_column, "key column"))
    for column in profile.columns:
        if column.required and column.field not in present and column is not key_column:
            problems.append(_missing(table, profile, column, "required column"))

    notices: list[str] = []
    if unknown and profile.unknown_columns == "reject":
        problems.append(
            f"columns not in profile '{profile.name}': {_unknown_text(table, unknown)}; "
            "remove them or add them to the profile"
        )
    elif unknown:
        notices.append(
            f"ignored columns not in profile '{profile.name}': {_unknown_text(table, unknown)}"
        )
    if problems:
        raise FileRejected(
            f"the file's columns do not fit profile '{profile.name}'; nothing was applied",
            problems,
        )
    return ColumnMap(tuple(mapped), tuple(unknown), tuple(notices))


def match_column(header: str, profile: Profile) -> Column | None:
    """The profile column a file's header fills, matched as `map_header` matches it;
    None for a header the profile does not know (or an errors CSV's own column)."""
    key = normalise_header(header)
    if not key or is_errors_header(header):
        return None
    return _by_name(profile).get(key)


def with_mapping(profile: Profile, mapping: Mapping[str, str]) -> Profile:
    """`profile` reading each header of `mapping` (as a file writes it) as the field it
    names, as if the header were one of that column's aliases. Fields the profile has no
    column for are left out."""
    extra: defaultdict[str, list[str]] = defaultdict(list)
    for header, field_name in mapping.items():
        extra[field_name].append(header)
    columns = tuple(
        replace(c, aliases=(*c.aliases, *extra[c.field])) if c.field in extra else c
        for c in profile.columns
    )
    return replace(profile, columns=columns)
