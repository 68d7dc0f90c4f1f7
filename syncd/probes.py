"""`syncd check` probes whether this configuration can work: database, SFTP servers, SMTP.

Each check answers with one line a person can act on. SFTP host keys are verified against
the source's `known_hosts` and never added: an unknown or changed key is a failure that
says which key the server showed, so the admin can compare it out of band.

Checking creates nothing: a SQLite file or a local folder that is not there yet is
reported as such, with whether syncd will be able to create it.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from syncd.config import Config, SourceConfig
from syncd.errors import ConfigError, SyncdError


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    #: 69 for an unreachable service, 78 for a problem the configuration must fix
    exit_code: int = 0


def check_database(config: Config) -> CheckResult:
    from syncd.store import make_engine, schema_state, sqlite_file

    try:
        path = sqlite_file(config.database.url)
        if path is not None and not path.exists():
            return _missing("database", path, "`syncd import` or `syncd run` creates it")
        engine = make_engine(config.database.url, create=False)
        try:
            state = schema_state(engine)
        finally:
            engine.dispose()
    except SyncdError as exc:
        return CheckResult("database", False, str(exc), exc.exit_code)
    except Exception as exc:  # driver errors: the server is not there or refused us
        return CheckResult("database", False, f"{type(exc).__name__}: {exc}", 69)
    where = _redacted(config.database.url)
    if state.at_head:
        return CheckResult("database", True, f"{where}: schema up to date ({state.head})")
    if state.current is None:
        return CheckResult(
            "database",
            True,
            f"{where}: empty; `syncd db upgrade`, `syncd import` or `syncd run` creates the schema",
        )
    if state.behind:
        return CheckResult(
            "database",
            False,
            f"{where}: schema {state.current} is behind {state.head}; run `syncd db upgrade`",
            78,
        )
    return CheckResult(
        "database",
        False,
        f"{where}: schema {state.current} is newer than this syncd knows; upgrade syncd",
        78,
    )


def check_local(source: SourceConfig) -> CheckResult:
    """A local source's folder: there and writable, or creatable by `syncd run`."""
    name = f"source {source.name} (local {source.path})"
    path = source.path or Path(".")
    if path.is_dir():
        if os.access(path, os.W_OK | os.X_OK):
            return CheckResult(name, True, "writable")
        return CheckResult(name, False, "not writable by this user", 78)
    if path.exists():
        return CheckResult(name, False, "is not a folder", 78)
    return _missing(name, path, "`syncd run` creates it")


def _missing(name: str, path: Path, who_creates: str) -> CheckResult:
    """What to say of a path that does not exist yet: can syncd create it, or not?"""
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir():
        return CheckResult(
            name, False, f"{path} does not exist and cannot be created: {parent} is a file", 78
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        return CheckResult(
            name,
            False,
            f"{path} does not exist and cannot be created: {parent} is not writable by this user",
            78,
        )
    return CheckResult(
        name, True, f"{path} does not exist yet; {who_creates} ({parent} is writable)"
    )


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_sftp(source: SourceConfig, env: Mapping[str, str]) -> CheckResult:
    """Connect as the daemon does (so a refused host key reads the same, fingerprint and
    all) and list the remote folder; 78 for what the admin must fix (host key, login,
    folder), 69 for a server that cannot be reached."""
    from syncd.sources.sftp import SftpSource

    name = f"source {source.name} (sftp {source.host}:{source.port})"
    try:
        sftp = SftpSource.from_config(source, env, cap=0)
        try:
            found = sftp.candidates()
        finally:
            sftp.close()
    except SyncdError as exc:
        return CheckResult(name, False, str(exc), exc.exit_code)
    return CheckResult(
        name,
        True,
        f"logged in as {source.username}; {source.remote_dir} ({source.pattern}): "
        f"{len(found)} entries",
    )


def check_smtp(config: Config, env: Mapping[str, str]) -> CheckResult:
    from syncd.report import smtp_session

    mail = config.mail
    if not mail.smtp_host:
        return CheckResult("mail", True, f"no smtp_host: reports are written to {mail.outbox_dir}")
    name = f"mail (smtp {mail.smtp_host}:{mail.smtp_port}, tls {mail.tls})"
    try:
        with smtp_session(mail, env) as smtp:
            smtp.noop()
    except smtplib.SMTPAuthenticationError as exc:
        return CheckResult(name, False, f"login refused: {exc.smtp_error!r}", 78)
    except ConfigError as exc:
        return CheckResult(name, False, str(exc), 78)
    except (OSError, smtplib.SMTPException) as exc:
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}", 69)
    return CheckResult(name, True, "reachable" + (", login accepted" if mail.username else ""))


def check_mail_templates(config: Config) -> CheckResult:
    """Every report template renders, the admin's overrides included."""
    from syncd.report import check_templates

    problems = check_templates(config)
    folder = config.mail.templates_dir
    if problems:
        return CheckResult("mail templates", False, "; ".join(problems), 78)
    return CheckResult("mail templates", True, str(folder) if folder else "built in")


def run_checks(config: Config, env: Mapping[str, str] | None = None) -> list[CheckResult]:
    environ = os.environ if env is None else env
    results = [CheckResult("config", True, str(config.path or "embedded defaults"))]
    results.append(check_database(config))
    results += [check_sftp(s, environ) for s in config.sources if s.kind == "sftp"]
    results += [check_local(s) for s in config.sources if s.kind == "local"]
    results.append(check_smtp(config, environ))
    results.append(check_mail_templates(config))
    return results
