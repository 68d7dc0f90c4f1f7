"""Validation: a file's cells -> typed records of its valid rows, plus every row error.

Pure and columnar. The header is mapped first (file-level problems raise FileRejected);
then every column is stripped, put in NFC, and checked by its rule as polars expressions
over the whole column, keys are normalised and checked for repeats, and Python runs only
for the cells that failed (to say why) and for addresses the fast email pattern left
undecided. Whether a file with row errors is rejected (`on_row_error`) is the caller's
decision. A file read in parts (`syncd.core.reading.FileParts`) is checked a part at a
time by `validate_parts`, which says exactly what `validate` says of the whole file.

A row's key counts as unreadable (so the planner archives nobody that job) when the key
cannot be trusted: blank or invalid (an email key), holding text lost to a wrong
encoding, or on a row whose cells cannot be trusted at all: a row with more cells than
the header (some cell held an unquoted delimiter, so every cell after it is shifted) or
the row a file cut short ends in.

Working columns, per mapped column n: `s{n}` the cell (stripped, null when blank, for
rules that run on every cell; as received for rules that run on distinct values), `v{n}`
the normalised value, `k{n}` whether the cell passed, `x{n}` (only for a column holding
any) whether the cell holds lost text; emails add `l{n}`, the whole address lower-cased,
which keys and repeats compare. Phone columns are checked a whole column at a time, after
the others (see `_phones`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, replace

import polars as pl

from syncd.core.decoding import lost_bytes_in, shown_lost
from syncd.core.emails import decide, keep_local_case, upper_in_local
from syncd.core.fields import CellRule, EmailRule, PhoneRule, TextRule, quoted, rule_for
from syncd.core.headers import MappedColumn, map_header
from syncd.core.normal_form import any_suspect, is_lost, nfc
from syncd.core.profile import FIXED_FIELDS, DirectoryRules, Profile
from syncd.core.records import CUSTOM_PREFIX, FAILED, Validated
from syncd.core.table import ROW, RawTable, RowError
from syncd.errors import FileRejected

_KEY = "_key"
_REPEATED_KEY = "_repeated_key"
_REPEATED_EMAIL = "_repeated_email"
_BAD = "_bad"
_SHOWN_ROWS = 10
# Below this many rows a file is checked in one piece; splitting costs more than it saves.
_PARALLEL_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class _Spec:
    """One mapped column and how it is checked."""

    n: int
    mapped: MappedColumn
    rule: CellRule
    required: bool

    @property
    def field(self) -> str:
        return self.mapped.column.field

    def col(self, prefix: str) -> pl.Expr:
        return pl.col(f"{prefix}{self.n}")


def validate(
    table: RawTable,
    profile: Profile,
    rules: DirectoryRules,
    *,
    keep_records: bool = True,
    flag_failed: bool = False,
) -> Validated:
    """Check every cell of `table` against `profile` and `rules`.

    Raises FileRejected for file-level problems only (the header, no data rows); row
    problems come back in `Validated.errors`, sorted by row, then column. Without
    `keep_records` (a file checked, not applied) the records come back empty and only
    counted: copying out the valid rows of a file with errors costs 16 bytes a cell.
    With `flag_failed` the records of a file with errors keep every row, the failed
    ones flagged in a `FAILED` column, for a caller that takes them out itself once it
    has let go of the cells (`syncd.core.records.take_valid`).
    """
    part = _check_part(table, profile, rules)
    frame = _with_repeats(part)
    frame = frame.with_columns(
        (_failed(part) | pl.col(_REPEATED_KEY) | pl.col(_REPEATED_EMAIL)).alias(_BAD)
    )
    # `frame` holds the part's columns and more: the part lets go of them, so that the
    # working columns go with `frame` below.
    part = replace(part, frame=frame.clear())
    specs, trusted, problems = part.specs, part.trusted, part.problems

    any_bad = bool(frame[_BAD].any())
    errors = [*table.row_errors]
    if any_bad:
        errors += _cell_errors(frame, trusted, specs, problems)
    errors += _repeats_said(part, frame)
    errors.sort(key=part.error_order)

    # Columns are picked before rows are: filtering copies every column it is given.
    bad = pl.col(_BAD)
    invalid = frame.select(_KEY, _BAD).filter(bad)[_KEY] if any_bad else pl.Series(dtype=pl.String)
    records = frame.select(*_record_exprs(specs), bad)
    del frame  # its working columns go before the valid rows are copied out
    valid_rows = None
    flagged = flag_failed and any_bad
    if not keep_records or flagged:
        valid_rows = records.height - (int(records[_BAD].sum()) if any_bad else 0)
    if not keep_records:
        records = records.clear().drop(_BAD)
    elif flagged:
        records = records.rename({_BAD: FAILED})
    else:
        records = (records.filter(~bad) if any_bad else records).drop(_BAD)
    return _validated(part, table, records, errors, invalid, valid_rows)


@dataclass(frozen=True, slots=True)
class _Part:
    """A table's cells checked (columns `s`, `v`, `k`, ... and `_KEY`), repeats not yet
    looked for: what a table read whole and each part of a file read in parts share."""

    frame: pl.DataFrame
    specs: list[_Spec]
    key: _Spec
    #: the email column when it is not the key (its addresses may each appear once)
    email: _Spec | None
    trusted: pl.Expr
    #: rows the reading already found broken (too many cells, cut short, a cell too long)
    broken: pl.Series
    problems: dict[int, dict[str, str]]
    notices: tuple[str, ...]
    #: each mapped column's place in the file, by its header
    places: dict[str, int]

    def error_order(self, error: RowError) -> tuple[int, int]:
        """Errors go by row, then by the column's place in the file (the row's own first)."""
        return error.row, self.places.get(error.column, -1) if error.column else -1


def _check_part(table: RawTable, profile: Profile, rules: DirectoryRules) -> _Part:
    columns = map_header(table, profile)
    if table.rows == 0:
        raise FileRejected(
            "the file has no data rows; nothing was applied",
            ["add the users below the header row, one user per row"],
        )
    specs = [
        _Spec(
            n,
            m,
            rule_for(m.column, rules, profile.phone_region),
            m.column.required or m.column.field == profile.key,
        )
        for n, m in enumerate(columns.columns)
    ]
    key = next(s for s in specs if s.field == profile.key)
    email = next((s for s in specs if s.field == "email"), None)

    # email-validator's reasons for the addresses it refused, by column: asked once.
    problems: dict[int, dict[str, str]] = {}
    frame = _checked(table, specs, problems)
    untrusted = _untrusted_rows(table)
    trusted = pl.lit(True) if untrusted.is_empty() else ~pl.col(ROW).is_in(untrusted.implode())
    frame = frame.with_columns(_key_expr(key, frame, trusted).alias(_KEY))
    return _Part(
        frame=frame,
        specs=specs,
        key=key,
        email=email if email is not None and email is not key else None,
        trusted=trusted,
        broken=pl.Series(sorted({e.row for e in table.row_errors}), dtype=pl.UInt32),
        problems=problems,
        notices=columns.notices,
        places={s.mapped.header: s.mapped.index for s in specs},
    )


def _failed(part: _Part) -> pl.Expr:
    """A row that failed a cell's rule, or that the reading found broken."""
    return ~pl.all_horizontal([s.col("k") for s in part.specs]) | pl.col(ROW).is_in(
        part.broken.implode()
    )


def _compared(part: _Part) -> tuple[tuple[pl.Expr, pl.Expr], tuple[pl.Expr, pl.Expr] | None]:
    """What repeats are looked for in, each with the rows it is read on: the key, and
    the email column when it is not the key."""
    key = (pl.col(_KEY), pl.col(_KEY).is_not_null())
    email = part.email
    return key, None if email is None else (email.col("l"), _readable(email) & part.trusted)


def _with_repeats(part: _Part) -> pl.DataFrame:
    """The part's frame with the rows whose key or address repeats flagged."""
    key, email = _compared(part)
    return part.frame.with_columns(
        _repeated(part.frame, *key).alias(_REPEATED_KEY),
        (pl.lit(False) if email is None else _repeated(part.frame, *email)).alias(_REPEATED_EMAIL),
    )


def _hashes(part: _Part) -> pl.DataFrame:
    """Each row's key and address as `_repeated` hashes them (null where not compared)."""
    key, email = _compared(part)
    return part.frame.select(
        pl.col(ROW),
        _hashed(*key).alias(_REPEATED_KEY),
        (pl.lit(None, pl.UInt64) if email is None else _hashed(*email)).alias(_REPEATED_EMAIL),
    )


def _shared_rows(hashes: pl.DataFrame) -> list[int]:
    """The rows whose key or address hash another row's too: every row that may repeat
    one, and none other can."""
    found = pl.lit(False)
    for name in (_REPEATED_KEY, _REPEATED_EMAIL):
        shared = _shared(hashes[name])
        if not shared.is_empty():
            found = found | pl.col(name).is_in(shared.implode())
    return hashes.filter(found)[ROW].to_list()


def validate_parts(
    parts: Iterable[RawTable],
    rows_of: Callable[[Collection[int]], RawTable],
    profile: Profile,
    rules: DirectoryRules,
) -> Validated:
    """`validate(keep_records=False)` of a file read in parts, holding one part's cells
    at a time: the same errors, counts, keys and notices as the file validated whole, and
    a table holding only the failed rows' cells (for the errors CSV).

    Repeats are found across the parts: each row's key and address are kept as hashes
    (20 bytes a row), and the rows whose hash another row shares are read again
    (`rows_of`, a table of the rows asked for) and checked together, which finds every
    repeat a whole file's check finds, with the same rows named.
    """
    errors: list[RowError] = []
    broken: list[RowError] = []
    hashes: list[pl.DataFrame] = []
    failed: list[pl.DataFrame] = []
    kept: list[RawTable] = []
    first: _Part | None = None
    notices: tuple[str, ...] = ()
    records = pl.DataFrame()
    rows = 0
    last: RawTable | None = None
    for table in parts:
        if last is None:
            notices = table.notices
        last = table
        rows += table.rows
        if table.rows == 0:
            continue
        part = _check_part(table, profile, rules)
        bad = part.frame.select(ROW, _KEY, _failed(part).alias(_BAD)).filter(pl.col(_BAD))
        broken += table.row_errors
        if not bad.is_empty():
            errors += _cell_errors(part.frame, part.trusted, part.specs, part.problems)
        hashes.append(_hashes(part))
        failed.append(bad.select(ROW, _KEY))
        kept.append(table.keep_rows(set(bad[ROW].to_list())))
        if first is None:
            records = part.frame.clear().select(_record_exprs(part.specs))
            first = replace(part, frame=records)
        del table, part, bad  # one part's cells in memory at a time
    if first is None or last is None:
        raise FileRejected(
            "the file has no data rows; nothing was applied",
            ["add the users below the header row, one user per row"],
        )
    shared = _shared_rows(pl.concat(hashes))
    del hashes
    if shared:
        again = rows_of(shared)
        part = _check_part(again, profile, rules)
        frame = _with_repeats(part)
        errors += _repeats_said(part, frame)
        repeated = frame.filter(pl.col(_REPEATED_KEY) | pl.col(_REPEATED_EMAIL))
        failed.append(repeated.select(ROW, _KEY))
        kept.append(again.keep_rows(set(repeated[ROW].to_list())))
    errors = [*broken, *errors]
    errors.sort(key=first.error_order)
    invalid = pl.concat(failed).unique(ROW).sort(ROW)[_KEY]
    table = replace(
        last,
        cells=pl.concat([t.cells for t in kept]).unique(ROW).sort(ROW),
        row_errors=tuple(broken),
        notices=notices,
        overflow={row: cells for t in kept for row, cells in t.overflow.items()},
        total_rows=rows,
    )
    return _validated(first, table, records, errors, invalid, rows - invalid.len())


def _validated(
    part: _Part,
    table: RawTable,
    records: pl.DataFrame,
    errors: list[RowError],
    invalid: pl.Series,
    valid_rows: int | None,
) -> Validated:
    """What validation says of `table`: its records, its errors, and the keys of its
    failed rows (`invalid`, in row order, null where unreadable)."""
    fields, headers, _ = _record_columns(part.specs)
    return Validated(
        table=table,
        records=records,
        fields=fields,
        errors=tuple(errors),
        invalid_keys=tuple(invalid.drop_nulls().unique(maintain_order=True).to_list()),
        unreadable_keys=invalid.null_count(),
        notices=(*table.notices, *part.notices),
        headers=headers,
        key_header=part.key.mapped.header,
        valid_rows=valid_rows,
    )


def _repeats_said(part: _Part, frame: pl.DataFrame) -> list[RowError]:
    """The errors of the repeated keys and addresses `frame` flags."""
    errors = _repeat_errors(frame, part.key, pl.col(_REPEATED_KEY), pl.col(_KEY), "user")
    if part.email is not None:
        errors += _repeat_errors(
            frame, part.email, pl.col(_REPEATED_EMAIL), part.email.col("l"), "email address"
        )
    return errors


def _in_parts(cells: pl.DataFrame) -> pl.DataFrame:
    """The cells in as many chunks as polars has threads.

    Polars runs a string kernel over a column chunk by chunk, in parallel; a frame read
    as one chunk would keep every core but one idle.
    """
    parts = pl.thread_pool_size()
    if parts < 2 or cells.height < _PARALLEL_ROWS or min(cells.n_chunks("all")) >= parts:
        return cells
    size = -(-cells.height // parts)
    return pl.concat([cells.slice(i * size, size) for i in range(parts)], rechunk=False)


def _blank_is_null(cell: pl.Expr) -> pl.Expr:
    return pl.when(cell.str.len_bytes() > 0).then(cell)


def _checked(
    table: RawTable, specs: list[_Spec], problems: dict[int, dict[str, str]]
) -> pl.DataFrame:
    """Run each column's rule over its cells; columns `s`, `v`, `k` (`l` for emails, `x`
    for columns holding lost text). `problems` gets email-validator's reasons for the
    addresses it refused, by column.

    Cells checked one by one are stripped first (`s`, null when blank) and put in NFC
    where they hold a character NFC could change. Columns checked by distinct value keep
    `s` as received: stripping and normalising the few distinct values is enough.
    """
    direct = [s for s in specs if not s.rule.by_distinct]
    distinct = [s for s in specs if s.rule.by_distinct]
    cells = _in_parts(table.cells)
    raw = {s.n: pl.col(table.column_name(s.mapped.index)) for s in specs}
    rules, suspect, untidy, blank = _screened(cells, direct, raw)
    frame = cells.select(
        pl.col(ROW),
        *(
            _tidied(raw[s.n], untidy=s.n in untidy, blank=s.n in blank).alias(f"s{s.n}")
            for s in direct
        ),
        *(raw[s.n].alias(f"s{s.n}") for s in distinct),
    )
    if suspect:
        frame = frame.with_columns(
            *(nfc(s.col("s")).alias(f"s{s.n}") for s in suspect),
            *(is_lost(s.col("s")).fill_null(False).alias(f"x{s.n}") for s in suspect),
        )
    checks: list[pl.Expr] = []
    for s in direct:
        if isinstance(s.rule, PhoneRule):
            continue  # a whole column at once, below
        value, ok = rules[s.n].check(s.col("s"))
        if s in suspect:
            ok = ok & ~s.col("x")
        if s.required:
            ok = ok & s.col("s").is_not_null()
        checks += [value.alias(f"v{s.n}"), ok.alias(f"k{s.n}")]
        if isinstance(s.rule, EmailRule):
            checks += [
                s.col("s").str.to_lowercase().alias(f"l{s.n}"),
                upper_in_local(s.col("s")).alias(f"u{s.n}"),
            ]
    frame = frame.with_columns(*checks, *_distinct_checks(frame, distinct))
    emails = [
        e
        for s in direct
        if isinstance(s.rule, EmailRule)
        for e in _settled(frame, s, problems.setdefault(s.n, {}))
    ]
    phones = [e for s in direct if isinstance(s.rule, PhoneRule) for e in _phones(frame, s)]
    settled = [*emails, *phones]
    return frame.with_columns(settled) if settled else frame


def _tidied(cell: pl.Expr, *, untidy: bool, blank: bool) -> pl.Expr:
    """A column's cells stripped, null when blank; as read when the screen found no cell
    to strip (`untidy`) and no blank one, sharing the table's memory (a stripped copy of
    a million cells is 16 MB of views, whether or not one cell changed)."""
    if untidy:
        return _blank_is_null(cell.str.strip_chars())
    return _blank_is_null(cell) if blank else cell


def _screened(
    cells: pl.DataFrame, specs: list[_Spec], raw: dict[int, pl.Expr]
) -> tuple[dict[int, CellRule], list[_Spec], set[int], set[int]]:
    """What one look at each column's cells as read shows: each column's rule, text
    rules narrowed; the columns holding a character NFC could change or lost text; the
    columns with a cell to strip; the columns with a blank cell.

    The cells are looked at as read, before they are stripped: a stripped cell holds
    less, so each answer is one a stripped cell could only make less needed (a rule
    narrowed a little less, NFC run on a column that turns out not to need it).
    Email and phone columns are not screened: their fast paths take ASCII only, and what
    they leave is normalised where it is decided (`syncd.core.emails.decide`,
    `syncd.core.phones`); a lost byte in either fails its cell all the same.
    """
    rules: dict[int, CellRule] = {s.n: s.rule for s in specs}
    if not specs:
        return rules, [], set(), set()
    texts = [(s, s.rule) for s in specs if isinstance(s.rule, TextRule)]
    screened = [s for s in specs if not isinstance(s.rule, EmailRule | PhoneRule)]
    facts = cells.select(
        *(
            expr.alias(f"{i}:{s.n}")
            for s, rule in texts
            for i, expr in enumerate(rule.screens(raw[s.n]))
        ),
        *(any_suspect(raw[s.n]).alias(f"u:{s.n}") for s in screened),
        *(
            (raw[s.n].str.strip_chars().str.len_bytes() != raw[s.n].str.len_bytes())
            .any()
            .alias(f"t:{s.n}")
            for s in specs
        ),
        *((raw[s.n].str.len_bytes() == 0).any().alias(f"b:{s.n}") for s in specs),
    ).row(0, named=True)
    for s, rule in texts:
        rules[s.n] = rule.narrowed(bool(facts[f"0:{s.n}"]), facts[f"1:{s.n}"])
    return (
        rules,
        [s for s in screened if facts[f"u:{s.n}"]],
        {s.n for s in specs if facts[f"t:{s.n}"]},
        {s.n for s in specs if facts[f"b:{s.n}"]},
    )


def _distinct_checks(frame: pl.DataFrame, specs: list[_Spec]) -> list[pl.Expr]:
    """Run each rule on its column's distinct cells; expressions mapping results back."""
    if not specs:
        return []
    distinct = frame.select(s.col("s").drop_nulls().unique().implode() for s in specs)
    checks: list[pl.Expr] = []
    for s in specs:
        received = distinct[f"s{s.n}"][0]
        stripped = nfc(_blank_is_null(pl.col("r").str.strip_chars()))
        value, ok = s.rule.check(pl.col("c"))
        ok = ok & ~is_lost(pl.col("c")).fill_null(False)
        if s.required:
            ok = ok & pl.col("c").is_not_null()
        outcome = (
            pl.DataFrame({"r": received}, schema={"r": pl.String})
            .with_columns(stripped.alias("c"))
            .with_columns(value.alias("v"), ok.alias("k"))
        )
        cell = s.col("s")
        bad = outcome.filter(~pl.col("k"))["r"]
        passed = ~cell.is_in(bad.implode()).fill_null(False) if bad.len() else pl.lit(True)
        if s.required:
            passed = passed & cell.is_not_null()
        checks += [_mapped(cell, outcome).alias(f"v{s.n}"), passed.alias(f"k{s.n}")]
    return checks


def _mapped(cell: pl.Expr, outcome: pl.DataFrame) -> pl.Expr:
    """Each cell's value, looked up by the cell as received (`outcome`: r -> v)."""
    if outcome["v"].dtype == pl.String:
        passing = outcome.filter(pl.col("k"))
        same = (passing["v"] == passing["r"]).fill_null(passing["r"] == "")
        if same.all():
            # Most files already hold canonical values: nothing to look up.
            return _blank_is_null(cell)
    # Plain lists keep the lookup element-wise, so the result keeps the frame's chunks.
    return cell.replace_strict(
        outcome["r"].to_list(),
        outcome["v"].to_list(),
        default=None,
        return_dtype=outcome["v"].dtype,
    )


def _settled(frame: pl.DataFrame, spec: _Spec, problems: dict[str, str]) -> list[pl.Expr]:
    """An email column's final `v`, `k`, `l`: domains lower-cased, and the addresses the
    fast pattern left undecided decided by email-validator.

    Almost every address is stored as its lower-cased self (`l`). The few that are not
    (upper case before the @, or left to email-validator) are worked out once each, as
    distinct values, and looked up by cell: working them out over the whole column would
    build a million new strings to keep a few hundred. Everything stays an expression
    over the frame (no Series patched in place), so the frame's columns keep one chunk
    layout and polars never has to copy them to realign.
    """
    cell, fast, lowered = spec.col("s"), spec.col("k"), spec.col("l")
    upper = spec.col("u")
    differ = (
        frame.select(cell.alias("c"), lowered.alias("l"), fast.alias("f"), upper.alias("u"))
        .filter((pl.col("f") & pl.col("u")) | (~pl.col("f") & pl.col("c").is_not_null()))
        .unique("c")
    )
    if differ.is_empty():
        return [lowered.alias(f"v{spec.n}"), fast.alias(f"k{spec.n}"), lowered.alias(f"l{spec.n}")]
    cased = differ.filter("f")
    undecided = differ.filter(~pl.col("f"))["c"]
    answers = decide(undecided, problems) if undecided.len() else pl.Series(dtype=pl.String)
    kept = cased.select(keep_local_case(pl.col("c"), pl.col("l"))).to_series()
    cells, values = pl.concat([cased["c"], undecided]), pl.concat([kept, answers.alias("c")])
    value = _looked_up(cell, cells, values, lowered)
    if undecided.len():
        accepted = answers.is_not_null()
        # Compared lower-cased (`l`) as stored: only an accepted address whose stored
        # form lower-cases otherwise than its cell (another normal form) needs looking
        # up. A refused one is never compared, and a second whole-column lookup for
        # nothing cost 0.24 GiB at 5,000,000 rows.
        stored = answers.str.to_lowercase()
        moved = accepted & (stored != undecided.str.to_lowercase())
        if moved.any():
            lowered = _looked_up(cell, undecided.filter(moved), stored.filter(moved), lowered)
        fast = fast | cell.is_in(undecided.filter(accepted).implode()).fill_null(False)
    return [value.alias(f"v{spec.n}"), fast.alias(f"k{spec.n}"), lowered.alias(f"l{spec.n}")]


def _looked_up(cell: pl.Expr, cells: pl.Series, values: pl.Series, otherwise: pl.Expr) -> pl.Expr:
    """`values[i]` where the cell is `cells[i]`, else `otherwise`.

    Picked by `when` rather than by `replace_strict`'s default: the column then shares
    the strings of `otherwise` instead of copying every one (at 5,000,000 addresses,
    16 MiB against 409 MiB).
    """
    found = cell.replace_strict(
        cells.to_list(), values.to_list(), default=None, return_dtype=pl.String
    )
    return pl.when(cell.is_in(cells.implode())).then(found).otherwise(otherwise)


def _phones(frame: pl.DataFrame, spec: _Spec) -> list[pl.Expr]:
    """A phone column's `v` and `k`, from the whole column at once.

    The rule's two expressions would each work the numbers out, chunk by chunk, in
    Python: on a million rows several times the cost of one pass (see PhoneRule).
    """
    assert isinstance(spec.rule, PhoneRule)
    value, ok = spec.rule.check_column(frame[f"s{spec.n}"])
    passed = pl.lit(ok) & spec.col("s").is_not_null() if spec.required else pl.lit(ok)
    return [pl.lit(value).alias(f"v{spec.n}"), passed.alias(f"k{spec.n}")]


def _readable(email: _Spec) -> pl.Expr:
    """Only valid addresses are compared (as `l`, lower-cased whole)."""
    return email.col("k") & email.col("s").is_not_null()


def _key_expr(key: _Spec, frame: pl.DataFrame, trusted: pl.Expr) -> pl.Expr:
    """The normalised key, null when it cannot be read: blank, an invalid email key, lost
    text, or a row that cannot be trusted (see the module docstring)."""
    email = isinstance(key.rule, EmailRule)
    if email:
        readable = _readable(key)
    elif f"x{key.n}" in frame.columns:
        readable = ~key.col("x")
    else:
        readable = pl.lit(True)
    return pl.when(readable & trusted).then(key.col("l" if email else "s"))


def _untrusted_rows(table: RawTable) -> pl.Series:
    """Rows whose cells may sit under the wrong header: too many cells, or cut short."""
    rows = set(table.overflow)
    if table.cut_row is not None:
        rows.add(table.cut_row)
    return pl.Series(ROW, sorted(rows), dtype=pl.UInt32)


def _repeated(frame: pl.DataFrame, values: pl.Expr, readable: pl.Expr) -> pl.Expr:
    """True where a value occurs on more than one of the readable rows."""
    # Hashes are far cheaper to compare than strings: sorted, a hash equal to the one
    # before it is shared, and only the rows sharing a hash need their values compared.
    # (Sorting 1M hashes takes a fifth of the time `is_duplicated` does.)
    keyed = frame.select(pl.col(ROW), values.alias("v"), _hashed(values, readable).alias("h"))
    shared = _shared(keyed["h"])
    if shared.is_empty():
        return pl.lit(False)
    candidates = keyed.filter(pl.col("h").is_in(shared.implode()))
    rows = candidates.filter(pl.col("v").is_duplicated())[ROW]
    return pl.col(ROW).is_in(rows.implode())


def _hashed(values: pl.Expr, readable: pl.Expr) -> pl.Expr:
    return pl.when(readable).then(values.hash())


def _shared(hashes: pl.Series) -> pl.Series:
    """The hashes that occur more than once (sorted, a hash equal to the one before it)."""
    ordered = hashes.drop_nulls().sort()
    return ordered.filter(ordered == ordered.shift(1)).unique()


def _cell_errors(
    frame: pl.DataFrame, trusted: pl.Expr, specs: list[_Spec], problems: dict[int, dict[str, str]]
) -> Iterator[RowError]:
    """A RowError for every cell of a `trusted` row that failed its rule (or is required
    and blank); `problems`: reasons email columns already have (see `_checked`)."""
    # Columns are picked before rows: a filter copies every column it is given, and
    # nearly every row of a million is trusted.
    failed = ~pl.all_horizontal([s.col("k") for s in specs])
    failing = frame.select(
        pl.col(ROW), *(s.col("s") for s in specs), *(s.col("k") for s in specs), _failed=failed
    ).filter(pl.col("_failed") & trusted)
    explained: dict[tuple[int, str], str] = {}
    for record in failing.iter_rows(named=True):
        for s in specs:
            if record[f"k{s.n}"]:
                continue
            # Cells checked by distinct value are kept as received.
            cell = (record[f"s{s.n}"] or "").strip()
            if not cell:
                message = "a value is required"
            elif (s.n, cell) in explained:
                message = explained[(s.n, cell)]
            else:
                message = _lost_text(cell, secret=s.field == "password") or _explain(
                    s, cell, problems
                )
                explained[(s.n, cell)] = message
            yield RowError(record[ROW], s.mapped.header, message)


def _explain(spec: _Spec, cell: str, problems: dict[int, dict[str, str]]) -> str:
    if isinstance(spec.rule, EmailRule):
        return spec.rule.explain(cell, problems.get(spec.n, {}).get(cell))
    return spec.rule.explain(cell)


def _lost_text(cell: str, *, secret: bool) -> str | None:
    """The message for a cell holding text lost to a wrong encoding, if it does; a
    password is neither quoted nor are its bytes named."""
    if cell.isascii():  # lost bytes and U+FFFD are not ASCII; most failed cells are
        return None
    lost = lost_bytes_in(cell)
    if not lost and "\ufffd" not in cell:
        return None
    shown = "the cell" if secret else quoted(shown_lost(cell))
    if not lost:
        return (
            f"{shown} holds \ufffd, which stands for text the program that wrote the file "
            "could not read; type the original characters again"
        )
    count = "a byte that is" if len(lost) == 1 else f"{len(lost)} bytes that are"
    named = "" if secret else " (" + " ".join(f"0x{b:02X}" for b in lost[:8]) + ")"
    return (
        f"{shown} holds {count} not UTF-8{named}, although the rest of the file is UTF-8, so "
        "the characters were lost; type them again and save the file as CSV UTF-8"
    )


def _repeat_errors(
    frame: pl.DataFrame, spec: _Spec, repeated: pl.Expr, compared: pl.Expr, what: str
) -> list[RowError]:
    """Every occurrence of a repeated value, each naming the rows of the others."""
    rows = frame.filter(repeated).select(pl.col(ROW), compared.alias("c"), spec.col("s"))
    groups: dict[str, list[int]] = defaultdict(list)
    for row, value, _ in rows.iter_rows():
        groups[value].append(row)
    errors: list[RowError] = []
    for row, value, cell in rows.iter_rows():
        others = [r for r in groups[value][: _SHOWN_ROWS + 1] if r != row][:_SHOWN_ROWS]
        more = len(groups[value]) - 1 - len(others)
        listed = ", ".join(str(r) for r in others) + (f" and {more:,} more" if more else "")
        where = "row" if len(groups[value]) == 2 else "rows"
        message = f"{quoted(cell)} is also on {where} {listed}; each {what} may appear once"
        errors.append(RowError(row, spec.mapped.header, message))
    return errors


def _status(specs: list[_Spec]) -> pl.Expr:
    """From a status column, else an active column, else active (both rules give
    active/archived directly)."""
    ranked = sorted(
        (s for s in specs if s.field in ("status", "active")), key=lambda s: s.field != "status"
    )
    return pl.coalesce(*(s.col("v") for s in ranked), pl.lit("active"))


def _record_exprs(specs: list[_Spec]) -> list[pl.Expr]:
    """A record's columns: its row, key, status and the fields the file carries."""
    _, _, values = _record_columns(specs)
    return [pl.col(ROW), pl.col(_KEY).alias("key"), _status(specs).alias("status"), *values]


def _record_columns(specs: list[_Spec]) -> tuple[tuple[str, ...], dict[str, str], list[pl.Expr]]:
    """The directory fields the file carries, their headers, and their value columns."""
    has_display_name = any(s.field == "display_name" for s in specs)
    fields: list[str] = []
    headers: dict[str, str] = {}
    values: list[pl.Expr] = []
    for s in specs:
        if s.field in ("status", "active"):
            if s.field == "status" or "status" not in headers:
                headers["status"] = s.mapped.header
            continue
        if s.field == "full_name" and has_display_name:
            continue
        name = "display_name" if s.field == "full_name" else s.field
        if name not in FIXED_FIELDS:
            name = CUSTOM_PREFIX + name
        fields.append(name)
        headers[name] = s.mapped.header
        values.append(s.col("v").alias(name))
    return tuple(fields), headers, values
