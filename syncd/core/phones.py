"""Phone numbers: possible numbers stored in E.164, decided column-wise where that is sure.

A phone cell passes when phonenumbers (Google's libphonenumber) finds the number
*possible*: as many digits as numbers of its country have. It is stored in E.164
(`+442079460958`). A number written without a country code is read as a number of the
profile's `phone_region`; without one it cannot be read.

phonenumbers takes tens of microseconds a number, far too long for a million of them.
Most exports write numbers internationally: `+`, the country calling code and the
national number, with spaces, dots or hyphens between groups. For those phonenumbers'
answer follows from a few facts that vectorised operations find (polars takes the
separators out, reads the digits as a number, does the arithmetic and one lookup in a
table per cell):

- the country calling code: codes are a prefix code, so the first four digits name it
  and the first digit of the national number;
- the length of the national number: phonenumbers calls a number possible when it is
  one of its country's possible lengths (local-only lengths count);
- that `parse` keeps the national number as written. It strips a national (trunk)
  prefix, like the 0 of +44 020..., so a number whose national part starts with a digit
  such a prefix can start with is left to phonenumbers.

The table (first four digits x number of digits -> possible, impossible, undecided) is
filled from phonenumbers' metadata for a country the first time a number of it is seen.
What the fast path leaves undecided goes to phonenumbers, once per distinct cell.
tests/unit/test_phones.py proves with Hypothesis that wherever the fast path decides,
its verdict and E.164 form are phonenumbers' own.

phonenumbers is imported where it is used: loading it takes tens of milliseconds that
commands which never read a phone column need not spend.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from typing import TYPE_CHECKING

import polars as pl

from syncd.core.national_prefixes import national_prefix_starts
from syncd.core.table import chunked_like

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

UNDECIDED, POSSIBLE, IMPOSSIBLE = 0, 1, 2

# Digits after the + of the numbers the table covers: with fewer the first four digits
# are not all there; more would overflow an integer, and no country's numbers have more
# than 17 digits after a code of at least one.
_FEWEST, _MOST = 4, 19
_SPAN = _MOST - _FEWEST + 1
_PREFIXES = 10_000
_OUTSIDE = _PREFIXES * _SPAN  # the table's last entry: undecided, for cells it does not cover

_SEPARATORS = r"[ .\-]"
# What a message shows when neither the number nor the profile names a country.
_EXAMPLE_REGION = "GB"


def e164_numbers(cells: pl.Series, region: str | None) -> pl.DataFrame:
    """Each stripped cell's `value`, its number in E.164, and whether it is `ok`: blank or
    a possible number. `value` is not meant to be read where `ok` is false."""
    value, ok = phone_numbers(pl.col("cell"), region)
    return cells.to_frame("cell").select(value.alias("value"), ok.alias("ok"))


def e164_column(cells: pl.Series, region: str | None) -> tuple[pl.Series, pl.Series]:
    """`e164_numbers` of a whole column at once, each answer chunked like `cells`.

    The same answers as the expressions of `phone_numbers`, in one pass: polars works
    those out apart from each other, chunk by chunk, which costs several times as much
    on a long column.
    """
    read = cells.to_frame("cell").select(_reading(pl.col("cell"))).unnest("read")
    judged = _judged(read, region)
    lengths = cells.chunk_lengths()
    return chunked_like(judged["value"], lengths), chunked_like(judged["ok"], lengths)


def fast_path(cells: pl.Series) -> pl.DataFrame:
    """For each cell, `e164` (the cell without separators) and the fast path's `verdict`.

    The verdict is POSSIBLE or IMPOSSIBLE where phonenumbers would say so, with `e164`
    then its E.164 form; UNDECIDED where only phonenumbers can tell (and for blanks).
    """
    return _fast(cells.to_frame("cell").select(_reading(pl.col("cell"))).unnest("read"))


def _reading(cell: pl.Expr) -> pl.Expr:
    """What polars works out of each cell for the fast path: the cell, and the cell
    without its spaces (`e164`), which is the E.164 form of most numbers.

    Most columns separate digit groups with spaces only, and taking out one literal
    character costs half what a character class does; `_fast` takes the dots and
    hyphens out of the few cells that need it.
    """
    spaceless = cell.str.replace_all(" ", "", literal=True)
    return pl.struct(cell.alias("cell"), spaceless.alias("e164")).alias("read")


def _numbers(e164: pl.Series) -> pl.DataFrame:
    """Cells without separators as whole numbers: the digits after a + and a first digit
    other than 0 (0 for anything else, a leading 0 included, which the number would
    hide), and how many digits that is; and which cells after a + are not digits."""
    cell, number, plus = pl.col("e164"), pl.col("n"), pl.col("plus")
    whole = plus & ~cell.str.starts_with("+0") & number.is_not_null()
    return (
        e164.to_frame("e164")
        .lazy()
        .with_columns(
            cell.str.to_integer(dtype=pl.UInt64, strict=False).alias("n"),
            cell.str.starts_with("+").fill_null(False).alias("plus"),
        )
        .select(
            pl.when(whole).then(number).otherwise(0).alias("number"),
            pl.when(whole).then(cell.str.len_bytes() - 1).otherwise(0).alias("digits"),
            (plus & number.is_null()).alias("retry"),
        )
        .collect()
    )


def _fast(read: pl.DataFrame) -> pl.DataFrame:
    """The fast path on what `_reading` gives: each cell's `e164` and `verdict`."""
    e164 = read["e164"]
    numbers = _numbers(e164)
    number, digits = numbers["number"], numbers["digits"]  # digits after the + (0: none)
    retry = numbers["retry"].arg_true()
    if retry.len():  # dots or hyphens, or no number at all
        again = read["cell"].gather(retry).str.replace_all(_SEPARATORS, "")
        numbers_again = _numbers(again)
        number = number.scatter(retry, numbers_again["number"])
        digits = digits.scatter(retry, numbers_again["digits"])
        e164 = e164.scatter(retry, again)
    count = pl.col("digits")
    shift = (count - _FEWEST).clip(0, _SPAN - 1)
    power = shift.replace_strict(
        list(range(_SPAN)), [10**i for i in range(_SPAN)], return_dtype=pl.UInt64
    )
    first_four = (pl.col("number") // power).cast(pl.Int64)
    index = (
        pl.DataFrame({"number": number, "digits": digits.cast(pl.Int64)})
        .select(
            pl.when(count.is_between(_FEWEST, _MOST))
            .then(first_four * _SPAN + shift)
            .otherwise(_OUTSIDE)
            .alias("index")
        )
        .to_series()
    )
    return pl.DataFrame({"e164": e164, "verdict": _table().verdicts(index)})


def _judged(read: pl.DataFrame, region: str | None) -> pl.DataFrame:
    """`value` and `ok` from what `_reading` gives: the fast path, then phonenumbers for
    the distinct cells it left undecided."""
    fast = _fast(read)
    value, verdict = fast["e164"], fast["verdict"]
    blank = read["cell"].is_null()
    ok = blank | (verdict == POSSIBLE)
    undecided = ((verdict == UNDECIDED) & ~blank).arg_true()
    if undecided.len():
        asked = read["cell"].gather(undecided).to_list()
        answers = {cell: e164_of(cell, region) for cell in set(asked)}
        slow = [answers[cell] for cell in asked]
        value = value.scatter(undecided, pl.Series(slow, dtype=pl.String))
        ok = ok.scatter(undecided, pl.Series([answer is not None for answer in slow]))
    return pl.DataFrame({"value": value, "ok": ok})


class _Table:
    """Fast-path verdicts by first four digits and number of digits, filled per country."""

    def __init__(self) -> None:
        import phonenumbers

        # Each prefix's country calling code (0: none). A leading 0 is never a code:
        # phonenumbers then tries the default region's international prefix, so such
        # numbers stay undecided.
        self.code = [0] * _PREFIXES
        codes = set(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
        for width in (1, 2, 3):
            for prefix in range(_PREFIXES):
                head = prefix // 10 ** (4 - width)
                if not self.code[prefix] and head in codes and len(str(head)) == width:
                    self.code[prefix] = head
        self.table = bytearray([UNDECIDED]) * (_OUTSIDE + 1)
        self.filled: set[int] = set()
        self.lock = threading.Lock()

    def verdicts(self, index: pl.Series) -> pl.Series:
        """The verdicts at `index` (prefix x SPAN + digits - FEWEST), filling the table
        first for the countries it names."""
        seen = (index // _SPAN).unique()
        with self.lock:
            wanted = {self.code[p] for p in seen.to_list() if p < _PREFIXES}
            for code in wanted - self.filled - {0}:
                self._fill(code)
                self.filled.add(code)
            return pl.Series(self.table, dtype=pl.UInt8).gather(index)

    def _fill(self, code: int) -> None:
        lengths, trunk_starts = _country(code)
        width = len(str(code))
        national = [count - width for count in range(_FEWEST, _MOST + 1)]
        by_length = bytes(POSSIBLE if n in lengths else IMPOSSIBLE for n in national)
        undecided = bytes([UNDECIDED]) * _SPAN
        for row in (p for p, c in enumerate(self.code) if c == code):
            first = (row // 10 ** (3 - width)) % 10  # the national number's first digit
            block = undecided if first in trunk_starts else by_length
            self.table[row * _SPAN : (row + 1) * _SPAN] = block


@functools.cache
def _table() -> _Table:
    return _Table()


@functools.cache
def _country(code: int) -> tuple[list[int], frozenset[int]]:
    """A calling code's possible national lengths as `is_possible_number` counts them
    (its main region's, local-only lengths included), and the digits a national prefix
    `parse` strips can start with (all of them when unsure)."""
    import phonenumbers

    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None or metadata.general_desc is None:
        return [], frozenset(range(10))
    general = metadata.general_desc
    lengths = [*general.possible_length, *general.possible_length_local_only]
    prefix = metadata.national_prefix_for_parsing
    if not prefix:
        return lengths, frozenset()
    starts = national_prefix_starts(prefix, bool(metadata.national_prefix_transform_rule))
    return lengths, frozenset(int(d) for d in starts)


# --- one number at a time ------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)  # chunks of one file often share odd cells
def e164_of(cell: str, region: str | None) -> str | None:
    """phonenumbers' word on one cell: its E.164 form if it is a possible number.

    A number with an extension is refused: E.164 has no room for it, and dropping it
    would lose what the file says.
    """
    import phonenumbers

    try:
        number = phonenumbers.parse(cell, region)
    except phonenumbers.NumberParseException:
        return None
    if number.extension or not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def problem(cell: str, region: str | None) -> str:
    """What is wrong with a cell `e164_of` refused, and the form it should have."""
    import phonenumbers
    from phonenumbers import NumberParseException as Unreadable
    from phonenumbers import ValidationResult as Length

    try:
        number = phonenumbers.parse(cell, region)
    except Unreadable as unreadable:
        kind = unreadable.error_type
        if kind == Unreadable.INVALID_COUNTRY_CODE and region is None and cell[:1] not in "+\uff0b":
            return (
                f"has no country code: write it with one, like {_shown(_example(None))[0]}, "
                "or set the profile's phone_region"
            )
        unreadable_because = {
            Unreadable.INVALID_COUNTRY_CODE: "does not start with a known country code",
            Unreadable.TOO_SHORT_NSN: "has too few digits to be a phone number",
            Unreadable.TOO_SHORT_AFTER_IDD: "has too few digits to be a phone number",
            Unreadable.TOO_LONG: "has too many digits to be a phone number",
        }
        return f"{unreadable_because.get(kind, 'is not a phone number')}; {_expected(region)}"
    if number.extension:
        return "has an extension, which E.164 cannot hold; remove it"
    code = number.country_code or 0
    country = phonenumbers.region_code_for_country_code(code)
    where = (
        f"+{code}"
        if country == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
        else f"+{code} ({country})"
    )
    impossible_because = {
        Length.TOO_SHORT: f"has too few digits for a number of {where}",
        Length.TOO_LONG: f"has too many digits for a number of {where}",
        Length.INVALID_LENGTH: f"has a number of digits no number of {where} has",
    }
    reason = phonenumbers.is_possible_number_with_reason(number)
    return f"{impossible_because.get(reason, 'is not a possible phone number')}; " + _expected(
        region, code
    )


def _expected(region: str | None, code: int | None = None) -> str:
    """The form expected: an example of the number's country, else of the profile's."""
    international, e164 = _shown(_example(region, code))
    return f"write it like {international} (stored in E.164 form, {e164})"


def _example(region: str | None, code: int | None = None) -> PhoneNumber:
    """phonenumbers' example number for a calling code, else a region, else GB's."""
    import phonenumbers

    example = None
    if code:
        country = phonenumbers.region_code_for_country_code(code)
        if country == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
            example = phonenumbers.example_number_for_non_geo_entity(code)
        else:
            example = phonenumbers.example_number(country)
    example = example or phonenumbers.example_number(region or _EXAMPLE_REGION)
    example = example or phonenumbers.example_number(_EXAMPLE_REGION)
    assert example is not None, "phonenumbers has an example for GB"
    return example


def _shown(number: PhoneNumber) -> tuple[str, str]:
    """A number INTERNATIONAL (as people write it) and in E.164 (as it is stored)."""
    from phonenumbers import PhoneNumberFormat, format_number

    return (
        format_number(number, PhoneNumberFormat.INTERNATIONAL),
        format_number(number, PhoneNumberFormat.E164),
    )


# --- the column ----------------------------------------------------------------------------


def phone_numbers(cell: pl.Expr, region: str | None) -> tuple[pl.Expr, pl.Expr]:
    """Expressions for a column of stripped cells: each one's number in E.164 (not meant
    to be read where it fails) and whether it passes (blank, or a possible number).

    polars takes the spaces out (`_reading`); `_judged` does the rest in Python, chunk
    by chunk. Each cell's answer depends on that cell alone, and saying so
    (`is_elementwise`) lets polars work chunk by chunk with the frame's other
    expressions; otherwise it works them all out over whole columns, which leaves the
    frame's columns chunked unlike each other, and every later step copies the whole
    frame to line them up. For the same reason the two are plain columns, not a struct.
    """
    read = _reading(cell)
    judge = _Judge(region)
    return (
        read.map_batches(judge.value, return_dtype=pl.String, is_elementwise=True),
        read.map_batches(judge.ok, return_dtype=pl.Boolean, is_elementwise=True),
    )


class _Judge:
    """`_judged` on the chunks polars hands over, for a profile's phone region.

    polars evaluates a rule's value and its ok apart (an eager frame does not share
    their common part), and both need the judgement: whichever asks second for a chunk
    takes what the first left, once it is sure the cells are the same. The two may ask
    at the same time, on two threads, and then both work it out: waiting for the other
    could hold up the polars threads it needs. Each answer comes in one piece, like the
    chunk it answers: polars lines the pieces up with the frame's chunks.
    """

    def __init__(self, region: str | None) -> None:
        self.region = region
        self.recent: deque[tuple[pl.Series, pl.DataFrame]] = deque(maxlen=4)

    def value(self, read: pl.Series) -> pl.Series:
        return self._judged(read)["value"].rechunk()

    def ok(self, read: pl.Series) -> pl.Series:
        return self._judged(read)["ok"].rechunk()

    def _judged(self, read: pl.Series) -> pl.DataFrame:
        fields = read.struct.unnest()
        cells = fields["cell"]
        for seen, judged in list(self.recent):
            if seen.len() == cells.len() and seen.equals(cells):
                return judged
        judged = _judged(fields, self.region)
        self.recent.append((cells, judged))
        return judged
