"""The runtime's secret: given as bytes or loaded on first use; readers never create it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from syncd.config import load_config
from syncd.errors import ConfigError
from syncd.runtime import Runtime, load_secret

NO_ENGINE = cast(Any, None)  # the secret does not need the database


def test_a_secret_given_as_bytes_is_the_secret() -> None:
    """`Runtime(config, engine, b"...")` works as it always did."""
    rt = Runtime(load_config(None, {}), NO_ENGINE, b"k3y")
    assert rt.secret == b"k3y"


def test_a_secret_loader_runs_once_and_only_when_the_secret_is_read() -> None:
    """Building, printing and replacing a runtime loads nothing; reading loads once."""
    calls: list[int] = []

    def load() -> bytes:
        calls.append(1)
        return b"loaded"

    rt = Runtime(load_config(None, {}), NO_ENGINE, load)
    assert "loaded" not in repr(rt)
    assert calls == []
    assert (rt.secret, rt.secret, calls) == (b"loaded", b"loaded", [1])
    assert replace(rt, clock=lambda: rt.clock()).secret == b"loaded"


def test_reading_the_secret_without_create_never_makes_it(tmp_path: Path) -> None:
    """`load_secret(create=False)` of a missing file is a ConfigError and creates nothing."""
    config = replace(load_config(None, {}), secret_file=tmp_path / "state" / "secret")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_secret(config, {}, create=False)
    assert list(tmp_path.iterdir()) == []
    created = load_secret(config, {})
    assert load_secret(config, {}, create=False) == created
