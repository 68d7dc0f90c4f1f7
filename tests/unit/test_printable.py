"""Senders' text (file names, quoted cells) shown on one line, as it reads: in reports,
in the CLI's job list and job view."""

from __future__ import annotations

import pytest

from syncd.core.counts import Counts
from syncd.core.fields import quoted
from syncd.core.printable import printable
from syncd.core.table import RowError
from syncd.display import job_text, jobs_table
from syncd.outcome import JobOutcome

#: A name that starts a line of its own, overwrites the line, clears the screen and
#: reverses what follows.
HOSTILE = "line\nbreak\r0HZQW-AAAAA applied\x1b[2J\u202evsc.exe"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("people.csv", "people.csv"),
        ("Zoë Ødegård 東京 👩\u200d💻.csv", "Zoë Ødegård 東京 👩\u200d💻.csv"),
        ("tab\tname.csv", "tab\\tname.csv"),
        (HOSTILE, "line\\nbreak\\r0HZQW-AAAAA applied\\x1b[2J\\u202evsc.exe"),
        ("nel\x85ls\u2028ps\u2029", "nel\\x85ls\\u2028ps\\u2029"),
    ],
)
def test_control_and_direction_characters_are_shown_escaped(text: str, shown: str) -> None:
    """Accents, CJK and emoji (with their joiners) as they are; the rest escaped."""
    assert printable(text) == shown


def test_the_cli_shows_a_hostile_file_name_on_its_own_line_and_inert() -> None:
    """`jobs list` and `jobs show`: one line per job, no character a terminal acts on."""
    outcome = JobOutcome(
        job_id="0HZQW-KSDF6",
        status="rejected",
        source="hr",
        mode="full",
        file=HOSTILE,
        encoding=None,
        counts=Counts(),
        messages=(f"{HOSTILE} vanished before it could be read; nothing was applied",),
        row_errors=(RowError(2, "Email", f"{quoted(HOSTILE)} is not a valid email address"),),
        row_error_total=1,
    )
    table = jobs_table([outcome])
    assert len(table.splitlines()) == 2
    for shown in (table, job_text(outcome)):
        assert not [ch for ch in shown if ch in "\r\x1b\u202e"]
        assert "line\\nbreak\\r0HZQW-AAAAA" in shown
    assert len(job_text(outcome).splitlines()) == 5
