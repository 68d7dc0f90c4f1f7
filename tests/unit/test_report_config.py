"""The configuration of reports: `[mail]` keys and each source's recipients and changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import Config, MailConfig, load_config
from syncd.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "syncd.example.toml"
LOCAL = '[[sources]]\nname = "hr"\nkind = "local"\npath = "drop"\n'


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={})


def _mail(tmp_path: Path, text: str) -> MailConfig:
    return _load(tmp_path, "[mail]\n" + text).mail


def _problems(tmp_path: Path, text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, text)
    return raised.value.problems


def test_without_mail_keys_reports_use_starttls_on_587_and_keep_trying_three_days(
    tmp_path: Path,
) -> None:
    """The defaults: STARTTLS, port 587, 5 MB of attachments, 72 hours of retries."""
    mail = _mail(tmp_path, "")
    assert (mail.tls, mail.starttls, mail.smtp_port) == ("starttls", True, 587)
    assert (mail.attach_max_bytes, mail.retry_for_hours) == (5_000_000, 72)
    assert (mail.install_name, mail.templates_dir, mail.ca_file) == (None, None, None)


@pytest.mark.parametrize(
    ("keys", "tls", "port"),
    [
        ('tls = "implicit"', "implicit", 465),
        ('tls = "none"', "none", 25),
        ("starttls = false", "none", 25),
        ("starttls = true", "starttls", 587),
        ('tls = "implicit"\nsmtp_port = 2465', "implicit", 2465),
        ('starttls = true\ntls = "starttls"', "starttls", 587),
    ],
)
def test_tls_says_how_smtp_is_secured_and_the_older_starttls_key_still_works(
    tmp_path: Path, keys: str, tls: str, port: int
) -> None:
    """`tls` picks the default port; `starttls = false` means no TLS, as it always did."""
    mail = _mail(tmp_path, keys + "\n")
    assert (mail.tls, mail.smtp_port, mail.starttls) == (tls, port, tls == "starttls")


def test_tls_and_starttls_that_disagree_are_refused_with_their_key(tmp_path: Path) -> None:
    """Asking for implicit TLS and for STARTTLS at once is a mistake worth naming."""
    assert _problems(tmp_path, '[mail]\nstarttls = true\ntls = "implicit"\n') == (
        "mail.tls: 'implicit' contradicts starttls = true; set tls alone",
    )
    (problem,) = _problems(tmp_path, '[mail]\ntls = "ssl"\n')
    assert problem == "mail.tls: 'ssl' is not one of starttls, implicit, none"


def test_report_keys_of_mail_are_read_with_paths_as_paths(tmp_path: Path) -> None:
    """install_name, templates_dir, ca_file, attach_max_bytes and retry_for_hours."""
    mail = _mail(
        tmp_path,
        'install_name = "hr-prod"\ntemplates_dir = "/etc/syncd/templates"\n'
        'ca_file = "/etc/syncd/ca.pem"\nattach_max_bytes = 1000\nretry_for_hours = 0.5\n',
    )
    assert mail.install_name == "hr-prod"
    assert mail.templates_dir == Path("/etc/syncd/templates")
    assert mail.ca_file == Path("/etc/syncd/ca.pem")
    assert (mail.attach_max_bytes, mail.retry_for_hours) == (1000, 0.5)
    assert _problems(tmp_path, "[mail]\nretry_for_hours = 0\nattach_max_bytes = -1\n") == (
        "mail.attach_max_bytes: should be at least 0, not -1",
        "mail.retry_for_hours: should be more than 0, not 0",
    )


def test_held_jobs_go_to_approvers_who_default_to_notify(tmp_path: Path) -> None:
    """approvers is its own list when given; without it, notify decides held jobs too."""
    config = _load(
        tmp_path,
        LOCAL + 'notify = ["it@example.com"]\napprovers = ["boss@example.com"]\n'
        '[[sources]]\nname = "up"\nkind = "local"\npath = "up"\nnotify = ["a@example.com"]\n',
    )
    hr, up = config.sources
    assert (hr.notify, hr.approvers) == (("it@example.com",), ("boss@example.com",))
    assert up.approvers == ("a@example.com",)
    assert _problems(tmp_path, LOCAL + 'approvers = ["not an address"]\n')[0].startswith(
        "sources[0].approvers[0]: 'not an address' is not an email address"
    )


@pytest.mark.parametrize(
    ("keys", "sent"),
    [
        ('mode = "full"\n', True),
        ('mode = "partial"\n', False),
        ('mode = "full"\nsend_changes = false\n', False),
        ('mode = "partial"\nsend_changes = true\n', True),
    ],
)
def test_the_changes_csv_goes_with_full_syncs_unless_a_source_says_otherwise(
    tmp_path: Path, keys: str, sent: bool
) -> None:
    """send_changes defaults to the source's mode being full."""
    (source,) = _load(tmp_path, LOCAL + keys).sources
    assert source.send_changes is sent


def test_the_example_configuration_documents_the_report_keys() -> None:
    """config/syncd.example.toml sets tls, install_name, approvers and send_changes."""
    config = load_config(EXAMPLE, env={})
    assert (config.mail.tls, config.mail.install_name) == ("starttls", "syncd-example")
    hr = config.source("hr")
    assert (hr.approvers, hr.send_changes) == (("it@example.com",), True)
    assert config.source("uploads").send_changes is False
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in ("ca_file", "templates_dir", "attach_max_bytes", "retry_for_hours"):
        assert f"{key} = " in text
