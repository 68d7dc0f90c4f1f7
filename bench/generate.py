"""Synthetic HR full exports for the benchmark: a first night, the nights after, dirt.

Every function is deterministic for a given seed and returns CSV bytes the way an HR
system writes them: UTF-8, CRLF, a header row, the `hr_full` profile's twelve columns.
Frames are built column by column with polars and numpy, so a million rows take a few
seconds; nothing loops over rows in Python.

Identity stays consistent across nights, as it does in a real directory where archived
users keep their key and email: a new employee ID is always above the file's highest,
and a new email's number is above the highest used for the same name. Neither the row
holding the highest ID nor a row holding its name's highest email number ever leaves or
is renamed, so those maxima never drop and a later night cannot reuse an identity that
an archived user still holds.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import polars as pl

COLUMNS: tuple[str, ...] = (
    "Employee ID",
    "Primary Email",
    "First Name",
    "Last Name",
    "Display Name",
    "Current Status",
    "Role",
    "Groups",
    "Department",
    "Start Date",
    "Cost Center",
    "Phone",
)

# fmt: off
FIRST_NAMES: tuple[str, ...] = (
    "Zoë", "José", "Łukasz", "Søren", "Ngọc", "Anna", "Björn", "Chloé", "Đức", "Émile",
    "François", "Gérard", "Hélène", "Inés", "Jürgen", "Kåre", "Léa", "Małgorzata", "Núria",
    "Oğuz", "Pål", "Renée", "Sébastien", "Tomás", "Ulrike", "Wojciech", "Yusuf", "Zdeněk",
    "Amélie", "Ben", "Carla", "David", "Eva", "Fatima", "George", "Hana", "Ivan", "Julia",
    "Kenji", "Laura", "Mohamed", "Nina", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Thu",
    "Uwe", "Vera", "William", "Xiomara", "Yara", "Zainab", "Ágnes", "Ørjan", "Siobhán",
    "Mateusz", "Dagný", "Aleksandr",
)

LAST_NAMES: tuple[str, ...] = (
    "Müller", "García", "Nowak", "Jørgensen", "Nguyễn", "Smith", "O'Connor", "Dubois",
    "Kowalczyk", "Åberg", "Schröder", "Fernández", "Novák", "Lefèvre", "Yılmaz", "Østergaard",
    "Papadopoulos", "Rossi", "Bianchi", "Fischer", "Weiß", "Horváth", "Szabó", "Kovačević",
    "Petrović", "Johansson", "Lindqvist", "Martínez", "López", "González", "Pérez", "Sánchez",
    "Gómez", "Brown", "Taylor", "Wilson", "Anderson", "Thomas", "Moore", "Jackson", "Martin",
    "Lee", "Tanaka", "Suzuki", "Kim", "Park", "Chen", "Wang", "Singh", "Patel", "Khan", "Ali",
    "Okafor", "Mensah", "Haddad", "Cohen", "Levi", "Ivanova", "Dvořák", "Šimek",
)

ROLES: tuple[str, ...] = ("User", "Admin", "Supervisor")
ROLE_WEIGHTS: tuple[float, ...] = (0.90, 0.02, 0.08)
GROUPS: tuple[str, ...] = (
    "Engineering", "Sales", "Support", "Finance", "People", "Marketing", "Legal", "Operations",
)
# Every membership a row can have: one group, or two in the list's order.
GROUP_SETS: tuple[str, ...] = (*GROUPS, *(",".join(p) for p in combinations(GROUPS, 2)))
DEPARTMENTS: tuple[str, ...] = (
    "Engineering", "Sales", "Customer Support", "Finance", "Human Resources", "Marketing",
    "Legal", "Operations", "Product", "Research & Development", "Facilities", "IT",
)
# fmt: on
COST_CENTERS: tuple[str, ...] = tuple(f"CC-{n}" for n in range(1000, 1200))
# Mobile numbers as each country writes them after its calling code: the code, the
# national number's first digits and its length. Each gives numbers phonenumbers finds
# possible (the Phone column is a phone type), as an HR system's would be.
PHONE_PLANS: tuple[tuple[str, str, int], ...] = (
    ("+1", "415", 10),
    ("+44", "7", 10),
    ("+49", "15", 11),
    ("+33", "6", 9),
    ("+34", "6", 9),
    ("+45", "2", 8),
    ("+48", "5", 9),
    ("+84", "9", 9),
    ("+46", "7", 9),
)
DOMAIN = "example.com"

_ID_PREFIX = "E"
_ID_DIGITS = 7
_FIRST_START_DAY = np.datetime64("2000-01-01")
_START_DAYS = 9_500  # start dates spread over about 26 years


def _ascii_fold(name: str) -> str:
    """How a name appears in an email address: lower-case ASCII letters only."""
    special = {"ł": "l", "ø": "o", "ß": "ss", "đ": "d", "æ": "ae", "œ": "oe", "ı": "i"}
    lowered = "".join(special.get(ch, ch) for ch in name.lower())
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalpha())


def to_csv(frame: pl.DataFrame) -> bytes:
    """CSV bytes as an HR system writes them: UTF-8, CRLF, header row."""
    out = io.BytesIO()
    frame.select(COLUMNS).write_csv(out, line_terminator="\r\n")
    return out.getvalue()


def read_export(export: bytes) -> pl.DataFrame:
    """An export back as a frame of strings (blank cells stay empty strings)."""
    return pl.read_csv(export, infer_schema=False, empty_string_is_null=False)


def _pick(options: Sequence[str], indices: np.ndarray) -> pl.Series:
    return pl.Series(options).gather(indices)


def _people(count: int, first_id: int, rng: np.random.Generator) -> pl.DataFrame:
    """`count` new employees numbered from `first_id`, with an email base but no email yet."""
    first = rng.integers(0, len(FIRST_NAMES), count)
    last = rng.integers(0, len(LAST_NAMES), count)
    days = _FIRST_START_DAY + rng.integers(0, _START_DAYS, count).astype("timedelta64[D]")
    frame = pl.DataFrame(
        {
            "id_number": np.arange(first_id, first_id + count, dtype=np.int64),
            "First Name": _pick(FIRST_NAMES, first),
            "Last Name": _pick(LAST_NAMES, last),
            "Role": _pick(ROLES, rng.choice(len(ROLES), count, p=ROLE_WEIGHTS)),
            "Groups": _pick(GROUP_SETS, rng.integers(0, len(GROUP_SETS), count)),
            "Department": _pick(DEPARTMENTS, rng.integers(0, len(DEPARTMENTS), count)),
            "Start Date": pl.Series(days).dt.to_string("%Y-%m-%d"),
            "Cost Center": _pick(COST_CENTERS, rng.integers(0, len(COST_CENTERS), count)),
            "plan": rng.integers(0, len(PHONE_PLANS), count),
            "number": rng.integers(100_000_000, 1_000_000_000, count),
            "fold_first": _pick([_ascii_fold(n) for n in FIRST_NAMES], first),
            "fold_last": _pick([_ascii_fold(n) for n in LAST_NAMES], last),
        }
    )
    return frame.select(
        (pl.lit(_ID_PREFIX) + pl.col("id_number").cast(pl.String).str.zfill(_ID_DIGITS)).alias(
            "Employee ID"
        ),
        "First Name",
        "Last Name",
        pl.concat_str("First Name", "Last Name", separator=" ").alias("Display Name"),
        pl.lit("Active").alias("Current Status"),
        "Role",
        "Groups",
        "Department",
        "Start Date",
        "Cost Center",
        _phone(pl.col("plan"), pl.col("number")).alias("Phone"),
        pl.concat_str("fold_first", "fold_last", separator=".").alias("base"),
    )


def _phone(plan: pl.Expr, number: pl.Expr) -> pl.Expr:
    """`+CC NNNNNNNNN`: a plan's code, then its first digits and the number's last ones."""

    def part(field: int) -> pl.Expr:
        return pl.lit(pl.Series([p[field] for p in PHONE_PLANS])).gather(plan)

    rest = pl.lit(pl.Series([length - len(lead) for _, lead, length in PHONE_PLANS]))
    digits = number.cast(pl.String).str.tail(rest.gather(plan))
    return pl.concat_str(part(0), pl.lit(" "), part(1), digits)


def _email(base: pl.Expr, number: pl.Expr) -> pl.Expr:
    """`anna.smith@…` for the first of a name, then `anna.smith2@…`, `anna.smith3@…`."""
    suffix = pl.when(number > 1).then(number.cast(pl.String)).otherwise(pl.lit(""))
    return pl.concat_str(base, suffix, pl.lit("@" + DOMAIN))


def _split_emails(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's email base (`anna.smith`) and number (1 when the address has none)."""
    local = pl.col("Primary Email").str.extract(r"^(.*[^0-9])([0-9]*)@", 1)
    digits = pl.col("Primary Email").str.extract(r"^(.*[^0-9])([0-9]*)@", 2)
    return frame.with_columns(
        base=local,
        email_number=pl.when(digits == "").then(1).otherwise(digits.cast(pl.Int64)),
    )


def first_export(n: int, seed: int) -> bytes:
    """The first full export of a company of `n` employees, all active."""
    rng = np.random.default_rng(seed)
    people = _people(n, 1, rng)
    people = people.with_columns(
        _email(pl.col("base"), pl.int_range(1, pl.len() + 1).over("base")).alias("Primary Email")
    )
    return to_csv(people)


def _id_number() -> pl.Expr:
    return pl.col("Employee ID").str.strip_prefix(_ID_PREFIX).cast(pl.Int64)


def _shifted(column: str, options: Sequence[str], shift: pl.Expr) -> pl.Expr:
    """Another of `options` than the cell holds: its index moved by 1 to len-1 places."""
    index = pl.col(column).replace_strict(
        list(options), list(range(len(options))), default=0, return_dtype=pl.Int64
    )
    moved = (index + 1 + shift % (len(options) - 1)) % len(options)
    return pl.lit(pl.Series(list(options))).gather(moved)


def _changed_phone(shift: pl.Expr) -> pl.Expr:
    """The same phone number with another last digit."""
    last = pl.col("Phone").str.tail(1).cast(pl.Int64)
    digit = (last + 1 + shift % 9) % 10
    return pl.concat_str(pl.col("Phone").str.head(-1), digit.cast(pl.String))


_CHANGE_KINDS = ("Department", "Role", "Groups", "Cost Center", "Phone")


def _apply_changes(frame: pl.DataFrame, kind: pl.Expr, shift: pl.Expr) -> pl.DataFrame:
    """One field changed on each row whose `kind` is set: a move, promotion, new phone."""
    options = {
        "Department": DEPARTMENTS,
        "Role": ROLES,
        "Groups": GROUP_SETS,
        "Cost Center": COST_CENTERS,
    }
    updates = []
    for number, column in enumerate(_CHANGE_KINDS):
        new = (
            _changed_phone(shift) if column == "Phone" else _shifted(column, options[column], shift)
        )
        updates.append(pl.when(kind == number).then(new).otherwise(pl.col(column)).alias(column))
    return frame.with_columns(updates)


def next_night(
    prev: bytes,
    seed: int,
    *,
    leavers: float = 0.01,
    joiners: float = 0.01,
    changes: float = 0.01,
    renames: float = 0.001,
) -> bytes:
    """The next night's export: some employees gone, some new, some edited or renamed.

    Proportions are of the previous file's rows. A rename is a new last name with the
    email that follows from it, under the same employee ID. Leavers, renames and field
    changes touch disjoint rows; joiners are appended at the end, as HR systems list
    employees by ID.
    """
    rng = np.random.default_rng(seed)
    frame = _split_emails(read_export(prev)).with_row_index("row")
    n = frame.height
    # The holders of the maxima must stay (see the module docstring).
    highest_id = _id_number() == _id_number().max()
    highest_number = pl.col("email_number") == pl.col("email_number").max().over("base")
    movable = frame.filter(~highest_id & ~highest_number)["row"].to_numpy()
    order = rng.permutation(movable)
    n_leave, n_rename, n_change = (round(n * p) for p in (leavers, renames, changes))
    leaving = order[:n_leave]
    renamed = order[n_leave : n_leave + n_rename]
    untouched = np.ones(n, dtype=bool)
    untouched[leaving] = untouched[renamed] = False
    changed = rng.permutation(np.flatnonzero(untouched))[:n_change]

    action = np.zeros(n, dtype=np.int8)  # 0 stays, 1 leaves, 2 renamed, 3 changed
    action[leaving], action[renamed], action[changed] = 1, 2, 3
    kind = np.full(n, -1, dtype=np.int64)
    kind[changed] = rng.integers(0, len(_CHANGE_KINDS), len(changed))
    new_last = rng.integers(0, len(LAST_NAMES), n)
    frame = frame.with_columns(
        action=pl.Series(action),
        kind=pl.Series(kind),
        shift=pl.Series(rng.integers(0, 1_000_000, n)),
        new_last=_pick(LAST_NAMES, new_last),
        new_fold=_pick([_ascii_fold(name) for name in LAST_NAMES], new_last),
    )
    frame = _apply_changes(frame, pl.col("kind"), pl.col("shift"))
    is_renamed = pl.col("action") == 2
    # A rename may draw the same last name; the email still moves to a fresh address.
    frame = frame.with_columns(
        pl.when(is_renamed).then(pl.col("new_last")).otherwise("Last Name").alias("Last Name"),
        pl.when(is_renamed)
        .then(pl.concat_str("First Name", "new_last", separator=" "))
        .otherwise("Display Name")
        .alias("Display Name"),
        pl.when(is_renamed)
        .then(pl.concat_str(_folded("First Name", FIRST_NAMES), "new_fold", separator="."))
        .otherwise("base")
        .alias("new_base"),
    )
    highest = frame.group_by("base").agg(pl.col("email_number").max().alias("highest"))
    staying = frame.filter(pl.col("action") != 1)
    next_id = int(frame.select(_id_number().max()).item()) + 1
    arrivals = _people(round(n * joiners), next_id, rng)
    return to_csv(_assign_new_emails(staying, arrivals, highest, n))


def _folded(column: str, names: Sequence[str]) -> pl.Expr:
    """The column's names as they appear in emails (names from elsewhere lower-cased)."""
    return pl.col(column).replace_strict(
        list(names),
        [_ascii_fold(name) for name in names],
        default=pl.col(column).str.to_lowercase(),
    )


def _assign_new_emails(
    staying: pl.DataFrame, arrivals: pl.DataFrame, highest: pl.DataFrame, row_offset: int
) -> pl.DataFrame:
    """Emails for renamed rows and joiners, numbered above every number their name had."""
    renamed = pl.col("action") == 2
    kept = staying.with_columns(
        pl.when(renamed).then(pl.col("new_base")).otherwise("base").alias("base"),
        needs_email=renamed,
    ).select(*COLUMNS, "base", "needs_email", "row")
    joined = arrivals.with_columns(
        pl.lit(None, dtype=pl.String).alias("Primary Email"),
        needs_email=pl.lit(True),
        row=pl.int_range(pl.len(), dtype=pl.UInt32) + pl.lit(row_offset, dtype=pl.UInt32),
    ).select(*COLUMNS, "base", "needs_email", "row")
    frame = pl.concat([kept, joined]).join(highest, on="base", how="left", maintain_order="left")
    rank = pl.int_range(1, pl.len() + 1).over("base", "needs_email")
    number = pl.col("highest").fill_null(0) + rank
    return frame.with_columns(
        pl.when("needs_email")
        .then(_email(pl.col("base"), number))
        .otherwise("Primary Email")
        .alias("Primary Email")
    ).sort("row")


def shuffled(export: bytes, seed: int) -> bytes:
    """The same rows in another order (its checksum differs, its content does not)."""
    frame = read_export(export)
    return to_csv(frame.sample(fraction=1.0, shuffle=True, seed=seed))


DIRTY_KINDS: tuple[str, ...] = (
    "bad email",
    "unknown role",
    "bad date",
    "duplicate key",
    "duplicate email in another case",
    "blank key",
)
_PAIRED = frozenset({"duplicate key", "duplicate email in another case"})


def planted_rows(n: int, rate: float) -> dict[str, int]:
    """How many rows of each kind `dirty` makes invalid in a file of `n` rows.

    A duplicate makes both its rows invalid (every occurrence is named), so paired kinds
    get an even count; what rounding leaves over goes to bad emails.
    """
    total = min(n, round(n * rate))
    share = total // len(DIRTY_KINDS)
    counts = {kind: share - share % 2 if kind in _PAIRED else share for kind in DIRTY_KINDS}
    counts["bad email"] += total - sum(counts.values())
    return counts


def dirty(export: bytes, rate: float = 0.005, seed: int = 0) -> bytes:
    """The export with about `rate` of its rows made invalid, each in one way.

    See `planted_rows` for the exact counts. Typos rather than noise: an email without
    its `@` or top-level domain, a misspelt role, an impossible or non-ISO date, a key
    repeated on another row, an email repeated in upper case, an empty key.
    """
    rng = np.random.default_rng(seed)
    frame = read_export(export)
    counts = planted_rows(frame.height, rate)
    chosen = rng.permutation(frame.height)[: sum(counts.values())]
    kind = np.full(frame.height, -1, dtype=np.int64)
    partner = np.zeros(frame.height, dtype=np.int64)
    start = 0
    for number, name in enumerate(DIRTY_KINDS):
        rows = chosen[start : start + counts[name]]
        start += counts[name]
        if name in _PAIRED:
            # The second row of each pair copies from the first, which stays as it was.
            originals, copies = rows[0::2], rows[1::2]
            kind[copies] = number
            partner[copies] = originals
        else:
            kind[rows] = number
    variant = pl.Series(rng.integers(0, 3, frame.height))
    return to_csv(_damage(frame, pl.Series(kind), pl.Series(partner), variant))


def _damage(
    frame: pl.DataFrame, kind: pl.Series, partner: pl.Series, variant: pl.Series
) -> pl.DataFrame:
    """Each row's planted error (`kind` indexes DIRTY_KINDS), in one of a few spellings."""
    key, email = pl.col("Employee ID"), pl.col("Primary Email")
    frame = frame.with_columns(
        kind=kind,
        variant=variant,
        partner_key=key.gather(partner),
        partner_email=email.gather(partner),
    )
    is_kind = {name: pl.col("kind") == n for n, name in enumerate(DIRTY_KINDS)}
    which = pl.col("variant")
    bad_email = (
        pl.when(which == 0)
        .then(email.str.replace("@", "."))
        .when(which == 1)
        .then(email.str.replace(r"\.[a-z]+$", ""))
        .otherwise(email.str.replace(".", " ", literal=True))
    )
    bad_role = pl.when(which == 0).then(pl.lit("Admn")).otherwise(pl.lit("Superviser"))
    bad_date = (
        pl.when(which == 0)
        .then(pl.col("Start Date").str.slice(0, 5) + pl.lit("02-30"))
        .when(which == 1)
        .then(pl.col("Start Date").str.slice(0, 5) + pl.lit("13-01"))
        .otherwise(
            pl.col("Start Date").str.to_date("%Y-%m-%d", strict=False).dt.to_string("%d/%m/%Y")
        )
    )
    shouted = pl.concat_str(
        pl.col("partner_email").str.extract(r"^([^@]*)@", 1).str.to_uppercase(),
        pl.lit("@"),
        pl.col("partner_email").str.extract(r"@(.*)$", 1),
    )
    return frame.with_columns(
        pl.when(is_kind["duplicate key"])
        .then("partner_key")
        .when(is_kind["blank key"])
        .then(pl.lit(""))
        .otherwise(key)
        .alias("Employee ID"),
        pl.when(is_kind["bad email"])
        .then(bad_email)
        .when(is_kind["duplicate email in another case"])
        .then(shouted)
        .otherwise(email)
        .alias("Primary Email"),
        pl.when(is_kind["unknown role"]).then(bad_role).otherwise("Role").alias("Role"),
        pl.when(is_kind["bad date"]).then(bad_date).otherwise("Start Date").alias("Start Date"),
    )
