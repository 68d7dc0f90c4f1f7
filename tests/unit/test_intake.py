"""A drop hands its bytes over once: a job must not leave a second hold on a big file."""

import hashlib

import pytest

from syncd.config import load_config
from syncd.intake import Drop, check


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
