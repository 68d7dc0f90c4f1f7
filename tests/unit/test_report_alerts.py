"""Source alerts as messages: a late source and files coming again, to the source's
notify list, saying since when, what was expected and where to look."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from syncd.config import MailConfig
from syncd.report.alerts import SourceAlert, compose_alert
from syncd.report.samples import sample_alert, sample_sftp_source, sample_source

NOW = datetime(2026, 11, 22, 3, 1, tzinfo=UTC)
MAIL = MailConfig(sender="syncd@example.com", install_name="hr-prod")


def _parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def _compose(alert: SourceAlert, **source: object) -> EmailMessage:
    message = compose_alert(MAIL, replace(sample_sftp_source(), **source), alert, now=NOW)
    assert message is not None
    return message


def test_a_late_alert_says_since_when_what_was_expected_and_where_to_look() -> None:
    """Subject: install name, late, the newest file's time, the expectation, the source.
    Body: the last file, since when it is late, the SFTP host and folder, what to check."""
    message = _compose(sample_alert("late"))
    assert message["Subject"] == (
        "[hr-prod] Late, no file since 2026-11-21 03:00:04 UTC (expected every 24h): source hr"
    )
    assert message["To"] == "it@example.com"
    assert (message["X-Syncd-Source"], message["X-Syncd-Report"]) == ("hr", "late")
    assert message["X-Syncd-Job"] is None
    assert message["Auto-Submitted"] == "auto-generated"
    for part in _parts(message):
        assert "users_2026-11-21.csv" in part
        assert "late since" in part.lower()
        assert "2026-11-22 03:00:04 UTC" in part
        assert "every 24h, counting Monday to Friday only (UTC)" in part
        assert "sftp.example.com (port 22) into /drop" in part
        assert "syncd check" in part
        assert "syncd on hr-prod" in part


def test_a_late_alert_for_a_local_folder_names_the_folder_and_a_source_that_never_sent() -> None:
    """No file ever: measured from when watching began; the folder is what to check."""
    alert = sample_alert("late", last_file=None)
    local = replace(sample_source(), path=Path("/srv/drop/hr"), expect_every="2d")
    message = compose_alert(MAIL, local, alert, now=NOW)
    assert message is not None
    text, html = _parts(message)
    assert "no file since syncd began watching it" in text
    assert "writes into the folder /srv/drop/hr" in text
    assert "writes into the folder /srv/drop/hr" in html
    assert "every 2d" in message["Subject"]


def test_a_resumed_alert_names_the_file_that_came_and_how_long_it_was_late() -> None:
    """Subject and body: the new file, when it came, and since when the source was late."""
    message = _compose(sample_alert("resumed"))
    assert message["Subject"] == (
        "[hr-prod] Files again, users_2026-11-23.csv came "
        "(late since 2026-11-22 03:00:04 UTC): source hr"
    )
    assert message["X-Syncd-Report"] == "resumed"
    for part in _parts(message):
        assert "users_2026-11-23.csv" in part
        assert "2026-11-23 03:00:09 UTC" in part
        assert "2026-11-22 03:00:04 UTC" in part


def test_a_file_name_in_an_alert_is_text_in_the_html_part() -> None:
    """A file name holding markup arrives escaped, never as markup."""
    alert = replace(sample_alert("resumed"), file="<script>alert(1)</script>.csv")
    _, html = _parts(_compose(alert))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html


def test_an_alert_for_a_source_without_notify_is_not_made() -> None:
    """Nobody to tell: no message."""
    assert (
        compose_alert(MAIL, replace(sample_sftp_source(), notify=()), sample_alert("late"), now=NOW)
        is None
    )


@pytest.mark.parametrize("kind", ["late", "resumed"])
def test_an_admin_may_override_an_alert_template(tmp_path: Path, kind: str) -> None:
    """`templates_dir` replaces an alert's subject like a report's."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / f"{kind}.subject.txt").write_text("{{ kind }}: {{ source.name }}\n", "utf-8")
    alert = sample_alert("late" if kind == "late" else "resumed")
    message = compose_alert(
        replace(MAIL, templates_dir=folder), sample_sftp_source(), alert, now=NOW
    )
    assert message is not None
    assert message["Subject"] == f"{kind}: hr"


@pytest.mark.parametrize("kind", ["late", "resumed"])
def test_alert_html_holds_no_script_no_remote_content_and_the_reports_layout(kind: str) -> None:
    """The same frame as a report (the header, the footer with the install name), and
    nothing that runs or loads."""
    alert = sample_alert("late" if kind == "late" else "resumed")
    _, html = _parts(_compose(alert))
    assert "<table" in html
    assert "syncd on hr-prod" in html
    assert "source hr</div>" in html
    for forbidden in ("<script", "<style", "<link", "<img", "src=", "http://", "https://"):
        assert forbidden not in html.lower()
