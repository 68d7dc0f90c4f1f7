"""Phone numbers: the fast path agrees with phonenumbers, and the column is read in chunks."""

from __future__ import annotations

import phonenumbers
import polars as pl
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from phonenumbers import NumberParseException, PhoneNumberFormat

from syncd.core.national_prefixes import national_prefix_starts
from syncd.core.phones import (
    IMPOSSIBLE,
    POSSIBLE,
    UNDECIDED,
    e164_column,
    e164_numbers,
    fast_path,
    phone_numbers,
)

CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# Codes several regions share (+1 NANP, +7 Russia and Kazakhstan, ...) and codes whose
# national prefix pattern is more than a single digit.
SHARED = [c for c in CODES if len(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[c]) > 1]
TRICKY = [1, 7, 39, 44, 54, 55, 57, 61, 81, 82, 86, 261, 298, 352, 375, 378, 506, 672]
REGIONS = [None, "GB", "US", "DE", "IT", "AR", "RU", "CN", "JP", "BR"]
SEPARATORS = [" ", "-", ".", "", "", "  ", " - ", ". "]


def phonenumbers_says(cell: str, region: str | None) -> str | None:
    """phonenumbers' own word: the E.164 form of a possible number, else None."""
    try:
        number = phonenumbers.parse(cell, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def verdicts(cells: list[str]) -> list[tuple[str, int]]:
    fast = fast_path(pl.Series(cells, dtype=pl.String))
    return list(zip(fast["e164"].to_list(), fast["verdict"].to_list(), strict=True))


@st.composite
def written_numbers(draw: st.DrawFn) -> str:
    """International numbers as people write them, near misses included: any calling
    code (shared, tricky, unknown, with leading zeros), national numbers of any length
    starting with any digit (trunk prefixes and Italian leading zeros too), separators
    anywhere after the +."""
    code = draw(
        st.one_of(
            st.sampled_from(CODES),
            st.sampled_from(SHARED),
            st.sampled_from(TRICKY),
            st.integers(0, 999),
        )
    )
    code_text = "0" * draw(st.integers(0, 1)) + str(code)
    lead = "0" * draw(st.integers(0, 3))
    national = lead + draw(st.text("0123456789", min_size=0, max_size=18))
    digits = code_text + national
    cuts = sorted(draw(st.sets(st.integers(0, len(digits)), max_size=5)))
    parts = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    written = "".join(part + draw(st.sampled_from(SEPARATORS)) for part in parts[:-1])
    written += parts[-1]
    plus = draw(st.sampled_from(["+", "+", "+", "", "++", "+ "]))
    return (plus + written).strip()


@settings(max_examples=300, deadline=None)
@given(st.lists(written_numbers(), min_size=1, max_size=40), st.sampled_from(REGIONS))
def test_where_the_fast_path_decides_it_agrees_with_phonenumbers(
    cells: list[str], region: str | None
) -> None:
    """Possible or impossible, and the E.164 form, are phonenumbers' own (`parse`,
    `is_possible_number`, `format_number`) for every cell the fast path decides, with
    any default region."""
    for cell, (e164, verdict) in zip(cells, verdicts(cells), strict=True):
        if verdict == UNDECIDED:
            continue
        expected = phonenumbers_says(cell, region)
        assert verdict == (POSSIBLE if expected else IMPOSSIBLE), cell
        if expected is not None:
            assert e164 == expected, cell


def test_the_generated_numbers_reach_every_verdict() -> None:
    """The property above is not vacuous: its numbers are decided both ways, and some
    are left to phonenumbers."""
    for wanted in (POSSIBLE, IMPOSSIBLE, UNDECIDED):
        find(written_numbers(), lambda cell, wanted=wanted: verdicts([cell])[0][1] == wanted)


def test_every_entry_of_the_table_agrees_with_phonenumbers() -> None:
    """For each calling code, national length and first national digit, one number of
    that shape gets phonenumbers' verdict where the fast path decides."""
    cells = [
        f"+{code} {first}{'2345678901234567'[: length - 1]}"
        for code in CODES
        for length in range(1, 19)
        for first in "0123456789"
    ]
    decided = 0
    for cell, (e164, verdict) in zip(cells, verdicts(cells), strict=True):
        if verdict == UNDECIDED:
            continue
        decided += 1
        expected = phonenumbers_says(cell, None)
        assert (verdict, e164 if expected else None) == (
            POSSIBLE if expected else IMPOSSIBLE,
            expected,
        ), cell
    assert decided > 0.8 * len(cells)  # all but trunk-prefix digits and very short numbers


@pytest.mark.parametrize(
    ("cell", "verdict"),
    [
        ("+44 20 7946 0958", POSSIBLE),
        ("+1 212-555-0147", POSSIBLE),
        ("+33.1.55.50.01.04", POSSIBLE),
        ("+390612345678", POSSIBLE),  # Italy keeps the leading 0
        ("+33 1 55 50", IMPOSSIBLE),
        ("+45 3355 01 09 1", IMPOSSIBLE),
        ("+44 020 7946 0958", UNDECIDED),  # parse strips the trunk 0
        ("+1 1 212 555 0147", UNDECIDED),  # and the NANP 1
        ("+0044 20 7946 0958", UNDECIDED),  # a default region's IDD may follow the +
        ("+999 1234 5678", UNDECIDED),  # no such calling code
        ("+44 (0)20 7946 0958", UNDECIDED),
        ("020 7946 0958", UNDECIDED),
    ],
)
def test_the_fast_path_decides_plain_international_numbers_only(cell: str, verdict: int) -> None:
    """International numbers with spaces, hyphens or dots are decided; trunk prefixes,
    unknown codes and anything else are left to phonenumbers."""
    assert verdicts([cell])[0][1] == verdict


@pytest.mark.parametrize(
    ("pattern", "transforms", "starts"),
    [
        ("0", False, "0"),
        ("0|180020", False, "01"),
        ("(183[12])|0", False, "01"),
        ("[08]", False, "08"),
        ("0|80?", False, "08"),
        ("(?:0|90)(?:(1[245]|2[1-35]|31)(\\d{10,11}))?", True, "09"),
        ("([24-9]\\d{6})$|0", True, "02456789"),
        ("0?(?:(11|2(?:2(?:02?|[13]))|3(?:6))15)?", True, "0123"),
        ("0?(\\d?)", True, "0123456789"),  # an empty group would still be rewritten
        ("0(?=1)", False, "0123456789"),  # look-ahead: not read, so every digit
        ("[^0]", False, "0123456789"),
    ],
)
def test_national_prefix_starts_are_read_from_the_pattern(
    pattern: str, transforms: bool, starts: str
) -> None:
    """The digits a national prefix can start with; anything unclear gives every digit."""
    assert national_prefix_starts(pattern, transforms) == frozenset(starts)


def test_a_column_in_many_chunks_gets_each_cells_own_answer() -> None:
    """Chunks checked apart (some spaced, some with hyphens, some for phonenumbers, some
    blank) give every cell phonenumbers' answer, in E.164."""
    chunks = [
        ["+44 20 7946 0958", "+1 212 555 0147", None],
        ["+1-212-555-0147", "+44 20 7946 0958", "+49 30 555 0106"],
        ["+44 (0)20 7946 0958", "+44 020 7946 0958", "+44 20 7946"],
        ["020 7946 0958", "+999 1234", None],
    ]
    cells = pl.concat([pl.Series("phone", c, dtype=pl.String) for c in chunks], rechunk=False)
    frame = pl.DataFrame({"phone": cells})
    value, ok = phone_numbers(pl.col("phone"), "GB")
    checked = frame.with_columns(value.alias("value"), ok.alias("ok"))
    for cell, got, passed in checked.iter_rows():
        expected = None if cell is None else phonenumbers_says(cell, "GB")
        assert passed == (cell is None or expected is not None), cell
        if expected is not None:
            assert got == expected, cell
    assert checked["value"].n_chunks() == cells.n_chunks()
    assert e164_numbers(cells, "GB").equals(checked.select("value", "ok"))


def test_a_whole_column_at_once_gets_the_same_answers_chunked_like_the_cells() -> None:
    """`e164_column` (what validation uses) and the expressions agree, and its answers
    are chunked like the column, so the frame they join is not copied to line up."""
    chunks = [["+44 20 7946 0958", None], ["+1-212-555-0147", "+44 020 7946 0958", "x"]]
    cells = pl.concat([pl.Series("phone", c, dtype=pl.String) for c in chunks], rechunk=False)
    value, ok = e164_column(cells, None)
    expected = e164_numbers(cells, None)
    assert ok.to_list() == expected["ok"].to_list() == [True, True, True, True, False]
    assert value.to_list()[:4] == expected["value"].to_list()[:4]
    assert value.chunk_lengths() == ok.chunk_lengths() == cells.chunk_lengths()
