"""A file read and checked in parts says exactly what it says read whole.

`syncd validate` reads a big file a part at a time (`FileParts`, `validate_parts`) so
that its memory stops growing with the file. Parts here are a few bytes long, so that
their ends fall anywhere: between rows, next to blank rows, short rows and rows with a
cell too many, beside a repeated key on the far side of a boundary. Whatever the file,
either it is not read in parts (and is read whole, as before), or the parts give the
same errors, counts, keys, notices and errors CSV as the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.config import load_config
from syncd.core.errors_csv import render_errors_csv
from syncd.core.profile import Profile
from syncd.core.reading import FileParts, NotInParts
from syncd.intake import Checked, Drop, check, check_in_parts, read_options
from tests.hostile_corpus import CORPUS
from tests.unit.test_full_sync_safety import HEADER, PROFILE, Person, damaged, people

CONFIG = load_config(None, {})
#: The same columns keyed on the email: its repeats are the key's.
BY_EMAIL = replace(PROFILE, key="email")


def whole(profile: Profile, data: bytes) -> Checked:
    return check(CONFIG, profile, Drop("users.csv", data), keep_records=False)


def said(checked: Checked) -> object:
    """All a check says to whoever reads its outcome, and the errors CSV it gives."""
    v = checked.validated
    if v is None:
        return ("rejected", checked.problems, checked.password_below)
    return (
        v.errors,
        (v.rows, v.valid, v.invalid),
        v.invalid_keys,
        v.unreadable_keys,
        v.notices,
        v.fields,
        dict(v.headers),
        v.key_header,
        v.table.header,
        v.table.encoding,
        v.table.secret_columns,
        render_errors_csv(v.table, v.errors) if v.errors else None,
    )


def rows_of(staff: list[Person], draw: st.DrawFn) -> list[list[str]]:
    """The staff's rows, with what makes checking in parts hard: keys and addresses
    repeated (in another case too) far from their first row, invalid cells, cells across
    lines, short rows, rows with a cell too many, blank rows and rows of spaces."""
    rows: list[list[str]] = [list(p) for p in staff]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["key", "email", "bad", "lines", "short", "long", "blank"]))
        source = list(draw(st.sampled_from(staff)))
        if kind == "key":
            row = [source[0], f"other{len(rows)}@example.com", "Ann", "Lee"]
        elif kind == "email":
            row = [f"X-{len(rows)}", draw(st.sampled_from([source[1], source[1].upper()])), "", ""]
        elif kind == "bad":
            row = [draw(st.sampled_from(["", source[0]])), "not an address", "Bo", "Ng"]
        elif kind == "lines":
            row = [f"L-{len(rows)}", f"l{len(rows)}@example.com", "Ann\nMarie", 'Le "Roux"']
        elif kind == "short":
            row = [f"S-{len(rows)}", f"s{len(rows)}@example.com"]
        elif kind == "long":
            row = [f"W-{len(rows)}", f"w{len(rows)}@example.com", "Ann", "Lee", "extra"]
        else:
            row = draw(st.sampled_from([[], ["  "], ["", "", "", ""]]))
        rows.insert(draw(st.integers(0, len(rows))), row)
    return rows


def written(rows: list[list[str]], eol: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=eol)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_file_checked_in_parts_says_what_it_says_checked_whole(data: st.DataObject) -> None:
    staff = data.draw(people())
    if data.draw(st.booleans()):
        file = written(rows_of(staff, data.draw), data.draw(st.sampled_from(["\r\n", "\n"])))
        file += data.draw(st.sampled_from([b"", b"   ", b"\t", b"E-9,e9@example.com"]))  # no eol
    else:  # damaged as real feeds are: encodings, normal forms, cuts, stray bytes
        file = data.draw(damaged(staff)).data
    part_bytes = data.draw(st.integers(1, 120))
    profile = data.draw(st.sampled_from([PROFILE, BY_EMAIL]))
    drop = Drop("users.csv", file)
    in_parts = check_in_parts(CONFIG, profile, drop, part_bytes=part_bytes)
    if in_parts is None:
        assert drop.data == file  # handed back as it came, to be read whole
    else:
        assert said(in_parts) == said(whole(profile, file)), file


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
@pytest.mark.parametrize("part_bytes", [1, 7, 40, 1000])
def test_a_clean_export_and_one_with_row_errors_are_read_in_parts(
    eol: str, part_bytes: int
) -> None:
    """The files parts are for (one polars reads whole: no row longer than the header)
    are read in parts, whatever their row errors; each part holds whole rows."""
    staff = [(f"{n:05}", f"u{n}@example.com", "Zoë", 'O"Brien, Jr') for n in range(1, 40)]
    rows = [list(p) for p in staff]
    rows[30] = [staff[3][0], "U4@EXAMPLE.COM", "", "Lee"]  # both repeat row 5
    rows[12] = ["", "no address"]
    rows.insert(20, ["", "", "", ""])
    rows.insert(21, ["A-1", "a@example.com", "Two\nlines", "Lee"])
    file = written(rows, eol)
    parts = list(FileParts(file, read_options(PROFILE), part_bytes))
    assert len(parts) > (1 if part_bytes < 1000 else 0)
    numbers = [n for p in parts for n in p.cells["_row"].to_list()]
    assert numbers == [*range(2, 22), *range(23, 43)]  # row 22 is blank
    checked = check_in_parts(CONFIG, PROFILE, Drop("users.csv", file), part_bytes=part_bytes)
    assert checked is not None
    assert said(checked) == said(whole(PROFILE, file))
    v = checked.validated
    assert v is not None
    assert [(e.row, e.render()) for e in v.errors if "also on" in e.message] == [
        (5, "Employee ID: '00004' is also on row 34; each user may appear once"),
        (5, "Email: 'u4@example.com' is also on row 34; each email address may appear once"),
        (34, "Employee ID: '00004' is also on row 5; each user may appear once"),
        (34, "Email: 'U4@EXAMPLE.COM' is also on row 5; each email address may appear once"),
    ]
    assert v.table.cells["_row"].to_list() == [5, 14, 23, 34]  # the failed rows alone


@pytest.mark.parametrize(
    ("file", "why"),
    [
        (b"Report\r\nEmployee ID,Email\r\n1,a@example.com\r\n", "a title row above the header"),
        (b"Employee ID,Email,\r\n1,a@example.com,\r\n", "an empty header cell at its end"),
        (b'Employee ID,Email\r\n1,a@exa"mple.com\r\n2,b@example.com\r\n', "a stray quote"),
        (b"Employee ID,Email\r1,a@example.com\r", "bare CR line ends"),
        (b"Employee ID,Email\r\n", "no data rows"),
        ("Employee ID,Email\r\n1,zoë@example.com\r\n".encode("cp1252"), "not UTF-8"),
    ],
)
def test_a_file_parts_cannot_read_exactly_is_read_whole(file: bytes, why: str) -> None:
    with pytest.raises(NotInParts):
        list(FileParts(file, read_options(PROFILE), 10))
    assert check_in_parts(CONFIG, PROFILE, Drop("users.csv", file), part_bytes=10) is None


def test_a_header_refused_in_parts_is_refused_as_whole() -> None:
    """A required column missing: the file is refused as reading it whole refuses it,
    its first rows kept to look for a password header in."""
    rows = b"1,Ann\r\n" * 5
    for below in (b"", b"Employee ID,Password\r\n"):
        file = b"Employee ID,First Name\r\n" + rows + below + rows
        checked = check_in_parts(CONFIG, PROFILE, Drop("users.csv", file), part_bytes=16)
        assert checked is not None
        assert checked.validated is None
        assert any("'Email'" in problem for problem in checked.problems)
        assert checked.password_below is bool(below)
        assert said(checked) == said(whole(PROFILE, file))


_BIG = 2_000_000  # bytes: the corpus's few huge files are read whole, as in parts


def _hostile() -> list[tuple[str, bytes, str]]:
    """The hostile files of `syncd validate` (default profile) and of the daemon
    (`hr_full`), under the size above."""
    from tests.e2e.test_hostile_files import CASES

    files = []
    for name, case in CASES.items():
        out = io.BytesIO()
        case.data(out)
        files.append((name, out.getvalue(), "default"))
    for hostile in CORPUS:
        out = io.BytesIO()
        hostile.write(out)
        files.append((hostile.name, out.getvalue(), "hr_full"))
    return [f for f in files if len(f[1]) <= _BIG]


@pytest.mark.parametrize(
    ("name", "file", "profile"),
    [pytest.param(*case, id=f"{case[2]}-{case[0]}") for case in _hostile()],
)
def test_a_hostile_file_says_the_same_in_parts_as_whole(
    name: str, file: bytes, profile: str
) -> None:
    """Every file of the hostile corpora, in parts of 1, 50 and 4,000 bytes: read whole
    instead, or saying exactly what it says read whole."""
    chosen = CONFIG.profiles[profile]
    for part_bytes in (1, 50, 4000):
        if len(file) > part_bytes * 2000:
            continue  # a part a line of a megabyte of blank lines is a test of patience
        drop = Drop("users.csv", file)
        in_parts = check_in_parts(CONFIG, chosen, drop, part_bytes=part_bytes)
        if in_parts is None:
            assert drop.data == file, (name, part_bytes)
        else:
            assert said(in_parts) == said(whole(chosen, file)), (name, part_bytes)


@pytest.mark.parametrize(
    "before", [b"", codecs.BOM_UTF8, b"sep=,\r\n", codecs.BOM_UTF8 + b"sep=,\r\n"]
)
def test_a_file_found_unreadable_in_parts_is_handed_back_as_it_came(before: bytes) -> None:
    """Parts hold a file's text once (without its BOM or `sep=` line); when a late part
    cannot be read in parts (a stray quote), the drop gets the file back byte for byte,
    and the whole read says what it says of that file."""
    rows = "".join(f"E-{n},u{n}@example.com,Zoë,Lee\r\n" for n in range(40))
    last = 'E-x,x@example.com,5" tall,Ng\r\n'
    file = before + ("Employee ID,Email,First Name,Last Name\r\n" + rows + last).encode()
    drop = Drop("users.csv", file)
    assert check_in_parts(CONFIG, PROFILE, drop, part_bytes=64) is None
    assert drop.data == file
    checked = check(CONFIG, PROFILE, drop, keep_records=False)
    assert checked.validated is not None
    assert checked.validated.rows == 41
