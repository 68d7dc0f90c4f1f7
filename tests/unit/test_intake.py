"""A drop hands its bytes over once: a job must not leave a second hold on a big file."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.config import load_config
from syncd.core.table import ROW
from syncd.intake import Drop, check, read_file, sniffed_header


def test_a_drop_gives_its_bytes_once() -> None:
    drop = Drop("users.csv", b"email\r\nada@example.com\r\n")
    assert drop.sha256 == hashlib.sha256(b"email\r\nada@example.com\r\n").hexdigest()
    assert drop.take() == b"email\r\nada@example.com\r\n"
    with pytest.raises(RuntimeError, match=r"users\.csv were handed to a job already"):
        drop.take()


def test_check_takes_the_bytes_and_still_reads_the_file() -> None:
    config = load_config(None, {})
    source = config.sources[0]
    drop = Drop("users.csv", b"email,first_name\r\nada@example.com,Ada\r\n")
    checked = check(config, config.profiles[source.profile], drop)
    assert checked.validated is not None
    assert checked.validated.records["key"].to_list() == ["ada@example.com"]
    with pytest.raises(RuntimeError):
        _ = drop.data


_HEADERS = ["First Name", "Last Name", "Role", "Groups", "Display Name", "Employee ID"]
_TITLE_WORDS = ["Employee", "export", "Report:", "users", "2026-12-01", "HRIS", "page 1", "total"]


def _spelled(header: str, how: int) -> str:
    """One of the ways exports write a header: as is, lower case, upper case, snake case."""
    return [header, header.lower(), header.upper(), header.lower().replace(" ", "_")][how]


@settings(max_examples=150, deadline=None)
@given(
    titles=st.lists(
        st.lists(st.sampled_from(_TITLE_WORDS), min_size=1, max_size=3), min_size=1, max_size=5
    ),
    others=st.lists(st.sampled_from(_HEADERS), max_size=3, unique=True),
    key=st.sampled_from(["Email", "Primary Email", "e-mail"]),
    where=st.integers(0, 3),
    how=st.integers(0, 3),
)
def test_the_profiles_header_is_found_under_any_title_rows(
    titles: list[list[str]], others: list[str], key: str, where: int, how: int
) -> None:
    """The default profile's header, its key column under any of its names, anywhere among
    other columns and however cased, is found under title rows of words that name no
    column; every row above it is skipped and counted."""
    header = [_spelled(h, how) for h in others]
    header.insert(min(where, len(header)), _spelled(key, how))
    row = ["ada@example.com" if h == _spelled(key, how) else "x" for h in header]
    lines = [" ".join(words) for words in titles] + [",".join(header), ",".join(row)]
    data = ("\r\n".join(lines) + "\r\n").encode()
    profile = load_config(None, {}).profiles["default"]
    table = read_file(profile, data)
    assert list(table.header) == header
    assert table.cells[ROW].to_list() == [len(titles) + 2]
    assert sniffed_header(profile, data) == tuple(header)


def test_a_data_row_holding_the_key_columns_name_is_no_header() -> None:
    """A first row without the key column stays the header when the only row below that
    names it holds nothing else the profile knows: that row is data."""
    profile = load_config(None, {}).profiles["default"]
    table = read_file(profile, b"Name,Note\r\nAda,x\r\nBo,Email\r\n")
    assert table.header == ("Name", "Note")
