"""The mail templates: every kind renders, HTML is safe for mail clients, and an admin's
override replaces a built-in template, or falls back to it when broken."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.config import Config, MailConfig, load_config
from syncd.report import REPORT_KINDS, ReportKind, check_templates, compose_report
from syncd.report.content import MAIL_KINDS
from syncd.report.samples import sample_contexts, sample_report, sample_source
from syncd.report.templates import PARTS, render_part, render_report, template_name

NOW = datetime(2026, 11, 22, 3, 0, 9, tzinfo=UTC)
MAIL = MailConfig(sender="syncd@example.com", install_name="hr-prod")


def overriding(folder: Path, **files: str) -> MailConfig:
    """Mail settings whose templates_dir holds `files` (name -> text)."""
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return replace(MAIL, templates_dir=folder)


def configured(mail: MailConfig) -> Config:
    return replace(load_config(None, env={}), mail=mail)


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_every_kind_renders_its_three_parts_with_the_job_id_and_the_install_name(
    kind: ReportKind,
) -> None:
    """Subject (one line, outcome, source, job ID, install name), text and HTML, for
    every sample: files attached, files too big, a held job with few or many users."""
    for context in sample_contexts(kind, MAIL):
        rendered = render_report(MAIL, kind, context)
        assert "\n" not in rendered.subject
        assert rendered.subject.startswith("[hr-prod] ")
        assert "source hr, job 0HZMJ-MWQ42" in rendered.subject
        for part in (rendered.text, rendered.html):
            assert "0HZMJ-MWQ42" in part
            assert "users_2026-11-22.csv" in part
            assert "syncd on hr-prod" in part
        assert "Quote job 0HZMJ-MWQ42 to support" in rendered.text
        assert "\n\n\n" not in rendered.text


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_html_parts_hold_no_script_no_remote_content_and_only_inline_styles(
    kind: ReportKind,
) -> None:
    """What common mail clients show as meant: tables and style attributes; nothing that
    runs or loads; a cell's `<script>` arrives as text."""
    html = render_report(MAIL, kind, sample_contexts(kind, MAIL)[0]).html
    assert "<table" in html
    for forbidden in ("<script", "<style", "<link", "<img", "src=", "http://", "https://"):
        assert forbidden not in html.lower()
    if kind in ("applied_with_errors", "rejected", "approved"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_override_replaces_the_built_in_template_of_that_name_only(tmp_path: Path) -> None:
    """A subject in templates_dir is used; the parts it does not replace stay built in."""
    mail = overriding(tmp_path / "t", **{"applied.subject.txt": "Done: {{ job.id }}\n"})
    composed = compose_report(mail, sample_source(), sample_report("applied"), now=NOW)
    assert composed is not None
    assert composed.subject == "Done: 0HZMJ-MWQ42"
    text = composed.message.get_body(("plain",))
    assert text is not None
    assert "Quote job 0HZMJ-MWQ42 to support" in text.get_content()


def test_an_override_may_extend_the_built_in_layout(tmp_path: Path) -> None:
    """An admin's held.txt can change one block and keep the rest of the report."""
    mail = overriding(
        tmp_path / "t",
        **{
            "held.txt": '{% extends "_layout.txt" %}{% block next %}'
            "Call Ana on 555-0100 before approving.{% endblock %}"
        },
    )
    text, problem = render_part(mail, "held", "text", sample_contexts("held", mail)[0])
    assert problem is None
    assert "Call Ana on 555-0100 before approving." in text
    assert "Thresholds crossed:" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{% if %}", "applied.html, line 1: Expected an expression"),
        ("Hello\n{{ job.nope }}", "applied.html, line 2:"),
        ("{{ unknown_name }}", "'unknown_name' is undefined"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ],
    ids=["syntax", "unknown attribute", "unknown variable", "raises"],
)
def test_a_broken_override_falls_back_to_the_built_in_and_is_logged(
    tmp_path: Path, text: str, expected: str
) -> None:
    """The report still goes out, rendered from the built-in template, and the log says
    which template broke and why."""
    mail = overriding(tmp_path / "t", **{"applied.html": text})
    with capture_logs() as logs:
        composed = compose_report(mail, sample_source(), sample_report("applied"), now=NOW)
    assert composed is not None
    html = composed.message.get_body(("html",))
    assert html is not None
    assert "Quote job <strong>0HZMJ-MWQ42</strong> to support" in html.get_content()
    (event,) = [e for e in logs if e["event"] == "mail_template_broken"]
    assert event["template"] == "applied.html"
    assert expected in event["problem"]
    assert event["log_level"] == "error"


def test_check_templates_names_each_broken_override_with_its_line(tmp_path: Path) -> None:
    """`syncd check` lists broken overrides (a broken layout once) and unknown files."""
    folder = tmp_path / "t"
    mail = overriding(
        folder,
        **{
            "held.subject.txt": "Held {{ held.totl }}",
            "_layout.txt": "{{ job.id }}\n{% block intro %}{% endblock %}\n{{ nope }}\n",
            "aplied.html": "typo in the name",
            "rejected.txt": '{% extends "_layout.txt" %}',
        },
    )
    problems = check_templates(configured(mail))
    assert problems[0] == (
        f"{folder / 'aplied.html'}: not a template syncd uses (one is named "
        "<kind>.subject.txt, <kind>.txt or <kind>.html, kind one of applied, "
        "applied_with_errors, rejected, held, skipped, approved, dismissed, late, resumed)"
    )
    assert f"{folder / '_layout.txt'}, line 3: 'nope' is undefined (rendering applied.txt)" in (
        problems
    )
    assert f"{folder / 'held.subject.txt'}, line 1: 'dict object' has no attribute 'totl'" in (
        problems
    )
    # The layout serves source alerts too, which have no job.
    assert f"{folder / '_layout.txt'}, line 1: 'job' is undefined (rendering late.txt)" in (
        problems
    )
    assert len(problems) == 4


def test_check_templates_is_quiet_for_good_overrides_and_for_none(tmp_path: Path) -> None:
    """No templates_dir, or overrides that render: nothing to report; a missing folder is."""
    assert check_templates(configured(MAIL)) == []
    good = overriding(tmp_path / "t", **{"applied.txt": "{{ title }} {{ job.id }}\n"})
    assert check_templates(configured(good)) == []
    missing = replace(MAIL, templates_dir=tmp_path / "absent")
    assert check_templates(configured(missing)) == [
        f"mail.templates_dir: {tmp_path / 'absent'} is not a folder"
    ]


def test_every_template_file_the_package_ships_is_one_syncd_reads() -> None:
    """The built-in folder has a subject, text and HTML for each kind, and nothing else."""
    folder = Path(__file__).resolve().parents[2] / "syncd" / "templates" / "mail"
    names = {p.name for p in folder.iterdir()}
    expected = {template_name(k, p) for k in MAIL_KINDS for p in PARTS}
    assert names - expected == {"_layout.txt", "_layout.html", "_macros.txt", "_macros.html"}
    assert expected <= names
    for kind in MAIL_KINDS:  # one shared layout, no copies of it
        for part, layout in (("text", "_layout.txt"), ("html", "_layout.html")):
            first = (folder / template_name(kind, part)).read_text().splitlines()[0]
            assert first == f'{{% extends "{layout}" %}}'


def test_counts_of_one_read_in_the_singular() -> None:
    """A count of one is singular (would archive 1 user); more are plural, with separators."""
    one = compose_report(MAIL, sample_source(), sample_report("held", archived=1), now=NOW)
    assert one is not None
    assert one.subject.startswith("[hr-prod] Held for approval: would archive 1 user: ")
    many = compose_report(MAIL, sample_source(), sample_report("held", archived=1234), now=NOW)
    assert many is not None
    assert "would archive 1,234 users: " in many.subject
