"""The daemon's outbox rounds: a job that ends while a round is sending gets its report
sent by a round right after, not by the next scheduled one half a minute later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import syncd.report
from syncd.config import load_config
from syncd.daemon import Daemon
from syncd.runtime import open_runtime


def test_a_job_ending_during_a_send_round_gets_a_round_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round already running takes no second one (the scheduler runs one at a time):
    the request is remembered and the round goes again once, and only once."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "syncd.db"}"\n'
        '[mail]\nfrom = "syncd@example.com"\n',
        encoding="utf-8",
    )
    rt = open_runtime(load_config(config))
    daemon = Daemon(rt)
    rounds: list[int] = []
    deliver = syncd.report.deliver_pending

    def a_job_ends_during_the_first_round(*args: Any) -> Any:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            daemon._send_soon()
        return deliver(*args)

    monkeypatch.setattr(syncd.report, "deliver_pending", a_job_ends_during_the_first_round)
    try:
        daemon._send()
    finally:
        rt.engine.dispose()
    assert rounds == [0, 1]
