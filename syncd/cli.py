"""The `syncd` command: parses arguments, calls the job function, maps errors to exit codes.

Exit codes (the contract): 0 done without row errors, 1 done with row errors, 2 file
rejected, 3 held for approval, 64 bad usage, 69 a service unreachable, 78 bad
configuration. A `SyncdError` is printed as a sentence (and its problems), never as a
traceback.

Commands that only read (`jobs list/show/errors`, `users list/show`, `status`, `check`)
create nothing where they run: no database, folder or secret (`runtime.open_reader`). Commands
that write (`import`, `run`, `jobs approve/reject`, `db upgrade`) create what they need.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from syncd import __version__
from syncd.config import Config, SourceConfig, find_config_path, load_config
from syncd.display import job_text, jobs_table, progress_display, user_text, users_table
from syncd.errors import ServiceUnavailable, SyncdError, UsageError
from syncd.intake import Drop, rejected, validate_file
from syncd.outcome import JobOutcome
from syncd.private import write_private

if TYPE_CHECKING:
    from collections.abc import Callable

    from syncd.core.profile import Mode
    from syncd.runtime import Runtime

# The database layer (SQLAlchemy, Alembic) is imported inside the commands that use it:
# `syncd validate` starts without it, a third of a second sooner.

EX_USAGE = 64
#: How many rows the `users list` and `jobs list` tables show without --limit.
USERS_SHOWN = 50
JOBS_SHOWN = 20
JSON_HELP = "Print JSON instead of text."


class _State:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._runtime: Runtime | None = None
        self._reader: Runtime | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(find_config_path(self.config_path, os.environ), os.environ)
        return self._config

    @property
    def runtime(self) -> Runtime:
        """For commands that write: creates the database, its schema and the secret."""
        if self._runtime is None:
            import structlog

            from syncd.logs import configure_logging
            from syncd.runtime import open_runtime

            if not structlog.is_configured():  # `syncd run` configures its own level
                configure_logging("warning")
            self._runtime = self._open(open_runtime)
        return self._runtime

    @property
    def reader(self) -> Runtime:
        """For commands that only read: creates nothing, says what to run if it must."""
        if self._reader is None:
            from syncd.runtime import open_reader

            self._reader = self._open(open_reader)
        return self._reader

    def _open(self, opener: Callable[[Config], Runtime]) -> Runtime:
        try:
            return opener(self.config)
        except SyncdError:
            raise
        except Exception as exc:  # a driver error: the database is not reachable
            raise ServiceUnavailable(
                "the database cannot be reached",
                [f"database.url: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"],
            ) from exc

    def close(self) -> None:
        """Close the database connections: SQLite then removes its -wal and -shm files."""
        for rt in (self._runtime, self._reader):
            if rt is not None:
                rt.engine.dispose()


pass_state = click.make_pass_decorator(_State)


def _source(config: Config, name: str | None) -> SourceConfig:
    if name:
        return config.source(name)
    if len(config.sources) == 1:
        return config.sources[0]
    names = ", ".join(s.name for s in config.sources)
    raise UsageError(f"the configuration has several sources; name one with --source ({names})")


@dataclass(frozen=True, slots=True)
class _Oversized:
    """A file refused by its size, before a byte of it was read."""

    name: str
    size: int
    message: str


def _read_drop(path: Path, cap: int) -> Drop | _Oversized:
    """The file's bytes. A file over `cap` (its profile's max_bytes) is refused before a
    byte of it is read, so a 50 GB file is not read into memory to be rejected; one that
    grows past the cap while read (a pipe, a file still being written) is read one byte
    past it, which the reader rejects."""
    try:
        with path.open("rb") as handle:
            facts = os.fstat(handle.fileno())
            size = facts.st_size
            if size > cap:
                return _Oversized(
                    path.name,
                    size,
                    f"{path.name} is {size:,} bytes, more than the {cap:,} its profile "
                    "allows; split it or raise max_bytes in the profile",
                )
            data = handle.read(cap + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    # A file (not a pipe) can be read again for the job's copy (`syncd.intake.Drop`).
    return Drop(path.name, data, path=path if stat.S_ISREG(facts.st_mode) else None)


def _emit(outcome: JobOutcome, as_json: bool, *, verbose: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(outcome.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(job_text(outcome, verbose=verbose))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncd")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration file (default: $SYNCD_CONFIG, /etc/syncd/syncd.toml, or "
    "the embedded defaults).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Keep the user directory in step with CSV exports."""
    ctx.obj = _State(config_path)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="The least important log events to write (to stderr, JSON lines off a terminal).",
)
@click.option(
    "--web",
    "web_listen",
    metavar="HOST:PORT",
    help="Serve the back office there too (default: [web] listen; none when unset).",
)
@pass_state
def run(state: _State, log_level: str, web_listen: str | None) -> None:
    """Run the daemon in the foreground (SIGTERM: finish the current job, then stop)."""
    from syncd.daemon import Daemon
    from syncd.logs import configure_logging

    configure_logging(log_level)
    config_path = find_config_path(state.config_path, os.environ)
    sys.exit(Daemon(state.runtime, config_path=config_path, web_listen=web_listen).run())


@cli.command(name="scan")
@click.argument("source_name", metavar="[SOURCE]", required=False)
@pass_state
def scan_(state: _State, source_name: str | None) -> None:
    """One pass over [SOURCE] (or every source): take its complete files, run their jobs
    in file order and settle the files, as the daemon would; then exit with the highest
    exit code of the jobs run."""
    from syncd.scanning import scan_and_run

    names = None if source_name is None else [state.config.source(source_name).name]
    outcomes = scan_and_run(state.runtime, names, on_outcome=lambda o: _emit(o, False))
    if not outcomes:
        click.echo("No complete file to take.")
    sys.exit(max((o.exit_code for o in outcomes), default=0))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--source",
    "source_name",
    help="Source whose profile reads the file (needed when the config has several).",
)
@click.option(
    "--errors-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the errors CSV (default: ./<file name>.errors.csv).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def validate(
    state: _State, file: Path, source_name: str | None, errors_out: Path | None, as_json: bool
) -> None:
    """Check FILE against its profile without changing anything.

    Nothing is stored; rows with errors are written to an errors CSV.
    """
    config = state.config
    source = _source(config, source_name)
    drop = _read_drop(file, config.profiles[source.profile].max_bytes)
    if isinstance(drop, _Oversized):
        refused = rejected(source, drop.name, source.mode, (drop.message,))
        _emit(refused, as_json)
        sys.exit(refused.exit_code)

    with progress_display(f"Validating {file.name}") as progress:
        outcome, errors_csv = validate_file(config, source, drop, progress=progress)
    if errors_csv is not None:
        path = errors_out or Path(f"{file.stem}.errors.csv")
        try:
            write_private(path, errors_csv, make_folder=False)
        except OSError as exc:
            raise UsageError(
                f"cannot write the errors CSV to {path}: {exc.strerror}; "
                "name a file in a folder that exists with --errors-out"
            ) from exc
        outcome = replace(outcome, errors_csv=str(path))
    _emit(outcome, as_json)
    sys.exit(outcome.exit_code)


@cli.command(name="import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--source",
    "source_name",
    help="Source (directory, profile, guard) to use (needed when the config has several).",
)
@click.option(
    "--mode",
    type=click.Choice(["full", "partial"]),
    help="full archives users missing from the file; partial only upserts "
    "(default: the source's mode).",
)
@click.option("--dry-run", is_flag=True, help="Plan and report without writing anything.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def import_(
    state: _State,
    file: Path,
    source_name: str | None,
    mode: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Apply FILE (a CSV export) to the directory."""
    from syncd.flow import refuse_unread, run_job

    source = _source(state.config, source_name)
    rt = state.runtime
    asked: Mode | None = "full" if mode == "full" else "partial" if mode == "partial" else None
    # The job takes the bytes over and lets go of them early.
    drop = _read_drop(file, rt.config.profiles[source.profile].max_bytes)
    if isinstance(drop, _Oversized):
        outcome = refuse_unread(
            rt,
            source,
            drop.name,
            drop.size,
            mode=asked or source.mode,
            message=drop.message,
            dry_run=dry_run,
        )
    else:
        with progress_display(f"Importing {file.name}") as progress:
            outcome = run_job(rt, source, drop, mode=asked, dry_run=dry_run, progress=progress)
    _emit(outcome, as_json)
    sys.exit(outcome.exit_code)


@cli.command()
@click.option(
    "--source",
    "source_name",
    help="Source whose profile gives the columns (needed when the config has several).",
)
@pass_state
def template(state: _State, source_name: str | None) -> None:
    """Print the CSV header row (the template) for a source's profile."""
    config = state.config
    profile = config.profiles[_source(config, source_name).profile]
    delimiter = profile.delimiter if profile.delimiter not in ("auto", "") else ","
    line = io.StringIO()
    # The csv module quotes a header holding the delimiter or a quote, and doubles its quotes.
    csv.writer(line, delimiter=delimiter, lineterminator="").writerow(
        c.header for c in profile.columns
    )
    click.echo(line.getvalue())


@cli.group()
def jobs() -> None:
    """Look up jobs, re-issue errors CSVs, decide held jobs."""


@jobs.command(name="list")
@click.option(
    "--limit",
    type=click.IntRange(1, None),
    metavar="N",
    help=f"Show at most N jobs (default: {JOBS_SHOWN} in the table; "
    "--json lists every job unless --limit is given).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, newest first.")
@pass_state
def jobs_list(state: _State, limit: int | None, as_json: bool) -> None:
    """The latest jobs, newest first."""
    from syncd import store

    shown = limit if limit is not None or as_json else JOBS_SHOWN
    total = None
    with state.reader.engine.connect() as conn:
        outcomes = [JobOutcome.from_job(job) for job in store.list_jobs(conn, shown)]
        if not as_json and len(outcomes) == shown:
            total = store.count_jobs(conn)
    if as_json:
        click.echo(json.dumps([o.as_json() for o in outcomes], ensure_ascii=False, indent=2))
    else:
        click.echo(jobs_table(outcomes, total))


@jobs.command(name="show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def jobs_show(state: _State, job_id: str, as_json: bool) -> None:
    """One job, as support reads it.

    JOB_ID may be typed in any case, with or without its dash.
    """
    from syncd import store

    with state.reader.engine.connect() as conn:
        job = store.require_job(conn, job_id)
        errors = store.row_errors(conn, job.id)
    outcome = JobOutcome.from_job(job, tuple(errors[:20]), len(errors))
    _emit(outcome, as_json, verbose=True)


@jobs.command(name="errors")
@click.argument("job_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write it (default: ./<job_id>.csv).",
)
@pass_state
def jobs_errors(state: _State, job_id: str, output: Path | None) -> None:
    """Write the errors CSV of job JOB_ID again, byte for byte as the job wrote it."""
    from syncd.support import write_errors_csv

    path, rows = write_errors_csv(state.reader, job_id, output)
    click.echo(f"{path}: {rows} rows with errors")


@jobs.command(name="changes")
@click.argument("job_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write it (default: ./<job_id>-changes.csv).",
)
@pass_state
def jobs_changes(state: _State, job_id: str, output: Path | None) -> None:
    """Write the changes CSV of job JOB_ID: who was created, updated (old and new values),
    archived, reactivated and renamed, as its report attached it."""
    from syncd.support import write_changes_csv

    click.echo(str(write_changes_csv(state.reader, job_id, output)))


def _decider() -> str | None:
    """Who decides a held job from the command line: the system user running syncd."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


REASON_HELP = "Why: kept in the job's messages and its report, beside who decided and when."


@jobs.command(name="approve")
@click.argument("job_id")
@click.option("--reason", help=REASON_HELP)
@pass_state
def jobs_approve(state: _State, job_id: str, reason: str | None) -> None:
    """Apply the held job JOB_ID (re-planned against the directory as it is now)."""
    from syncd.approval import approve

    outcome = approve(state.runtime, job_id, by=_decider(), reason=reason)
    _emit(outcome, False)
    sys.exit(outcome.exit_code)


@jobs.command(name="reject")
@click.argument("job_id")
@click.option("--reason", help=REASON_HELP)
@pass_state
def jobs_reject(state: _State, job_id: str, reason: str | None) -> None:
    """Drop the held job JOB_ID: nothing of it is applied."""
    from syncd.approval import dismiss

    _emit(dismiss(state.runtime, job_id, by=_decider(), reason=reason), False)


@cli.group()
def outbox() -> None:
    """Report emails waiting to be sent, sent, or given up on."""


@outbox.command(name="list")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, None), metavar="N",
    help="How many of the latest messages to show.",
)  # fmt: skip
@pass_state
def outbox_list(state: _State, limit: int) -> None:
    """The latest report messages, newest first, with their status and last error."""
    from syncd.display import outbox_table
    from syncd.store.outbox import count_outbox, list_outbox

    with state.reader.engine.connect() as conn:
        entries = list_outbox(conn, limit)
        totals = count_outbox(conn)
    click.echo(outbox_table(entries, totals))


@outbox.command(name="send")
@pass_state
def outbox_send(state: _State) -> None:
    """Send every report that is due now (what `syncd run` does every half minute)."""
    from syncd.report import deliver_pending

    rt = state.runtime
    sent = failed = 0
    while True:
        done = deliver_pending(rt.engine, rt.config.mail, os.environ, rt.clock())
        sent, failed = sent + done.sent, failed + done.failed
        if done.sent + done.failed == 0:
            break
    click.echo(f"{sent} sent, {failed} given up, {done.waiting} waiting to be tried again")
    sys.exit(1 if failed else 0)


@cli.group()
def users() -> None:
    """Look up users of the directory."""


@users.command(name="list")
@click.option(
    "--status", type=click.Choice(["active", "archived"]), help="Only users with this status."
)
@click.option(
    "--limit",
    type=click.IntRange(1, None),
    metavar="N",
    help=f"Show at most N users (default: {USERS_SHOWN} in the table; "
    "--json lists every user unless --limit is given).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of users.")
@pass_state
def users_list(state: _State, status: str | None, limit: int | None, as_json: bool) -> None:
    """Users, by key."""
    from syncd import store

    shown = limit if limit is not None or as_json else USERS_SHOWN
    total = None
    with state.reader.engine.connect() as conn:
        found = [u.as_json() for u in store.list_users(conn, status=status, limit=shown)]
        if not as_json and len(found) == shown:
            total = store.count_users(conn, status=status)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        click.echo(users_table(found, total))


@users.command(name="show")
@click.argument("email_or_key")
@click.option("--json", "as_json", is_flag=True, help="Print the user as one JSON object.")
@pass_state
def users_show(state: _State, email_or_key: str, as_json: bool) -> None:
    """One user, by EMAIL_OR_KEY: an email (any case) or a key."""
    from syncd import store

    with state.reader.engine.connect() as conn:
        found = [u.as_json() for u in store.find_user(conn, email_or_key)]
    if not found:
        raise UsageError(f"no user has the email or key {email_or_key!r}")
    if as_json:
        click.echo(json.dumps(found[0] if len(found) == 1 else found, ensure_ascii=False, indent=2))
    else:
        click.echo("\n\n".join(user_text(u) for u in found))


@cli.command(name="status")
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print a JSON array, one object per source, in the configuration's order.",
)  # fmt: skip
@pass_state
def status(state: _State, as_json: bool) -> None:
    """Each source: its last file and job, its next scan, how often files are expected
    and whether they are late. Exits 0 whether or not a source is late (see `late` in
    --json)."""
    from syncd.display import status_text
    from syncd.overview import source_overviews

    rt = state.reader
    with rt.engine.connect() as conn:
        shown = source_overviews(conn, rt.config.sources, now=rt.clock())
    if as_json:
        click.echo(json.dumps([o.as_json() for o in shown], ensure_ascii=False, indent=2))
    else:
        click.echo(status_text(shown))


@cli.command(name="check")
@pass_state
def check_(state: _State) -> None:
    """Check the configuration, the database, SFTP servers (host keys!) and SMTP."""
    from syncd.probes import run_checks

    results = run_checks(state.config)
    for result in results:
        click.echo(f"{'ok  ' if result.ok else 'FAIL'}  {result.name}: {result.detail}")
    failures = [r.exit_code for r in results if not r.ok]
    # A configuration the admin must fix outranks a server that is down right now.
    sys.exit(78 if 78 in failures else 69 if failures else 0)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command(name="upgrade")
@pass_state
def db_upgrade(state: _State) -> None:
    """Apply schema migrations."""
    from syncd import store

    engine = store.make_engine(state.config.database.url)
    try:
        store.upgrade(engine)
    finally:
        engine.dispose()
    click.echo("database schema is up to date")


DEFAULT_WEB_LISTEN = "127.0.0.1:8080"


@cli.group(invoke_without_command=True)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help=f"Where to serve (default: [web] listen, else {DEFAULT_WEB_LISTEN}).",
)
@click.pass_context
def web(ctx: click.Context, listen: str | None) -> None:
    """Serve the back office alone, in the foreground (`syncd run` serves it beside the
    daemon when [web] listen is set). `syncd web user` manages its accounts."""
    if ctx.invoked_subcommand is not None:
        return
    from syncd.logs import configure_logging
    from syncd.web.app import create_app
    from syncd.web.serving import address, bind, serve

    configure_logging("info")
    state: _State = ctx.obj
    sock = bind(listen or state.config.web.listen or DEFAULT_WEB_LISTEN)
    app = create_app(state.runtime)
    click.echo(f"The back office is at {address(sock)} (Ctrl-C stops it)", err=True)
    serve(app, sock)


@web.group(name="user")
def web_user() -> None:
    """Back office accounts: support (look up, download errors and changes) or admin
    (also approve, reject, upload, scan)."""


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the password from {password_file}: {exc}") from exc
        return lines[0] if lines else ""
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


PASSWORD_FILE_HELP = "Read the password from the first line of this file instead of asking."


@web_user.command(name="add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["support", "admin"]), required=True, help="What it may do."
)
@click.option(
    "--password-file", type=click.Path(path_type=Path, dir_okay=False), help=PASSWORD_FILE_HELP
)
@click.option(
    "--no-password",
    is_flag=True,
    help="No password: only a trusted proxy naming NAME logs it in ([web] proxy_user_header).",
)
@pass_state
def web_user_add(
    state: _State, name: str, role: str, password_file: Path | None, no_password: bool
) -> None:
    """Create the back office account NAME (the password is asked for twice)."""
    from syncd.web.accounts import ROLE_WORDS, add_account

    if no_password and password_file is not None:
        raise UsageError("give --password-file or --no-password, not both")
    password = None if no_password else _password(password_file)
    account = add_account(state.runtime, name, "admin" if role == "admin" else "support", password)
    click.echo(f"account {account.name} ({account.role}: {ROLE_WORDS[account.role]})")


@web_user.command(name="passwd")
@click.argument("name")
@click.option(
    "--password-file", type=click.Path(path_type=Path, dir_okay=False), help=PASSWORD_FILE_HELP
)
@pass_state
def web_user_passwd(state: _State, name: str, password_file: Path | None) -> None:
    """Set a new password for account NAME (its open sessions end)."""
    from syncd.web.accounts import change_account

    change_account(state.runtime, name, password=_password(password_file))
    click.echo(f"account {name}: password changed; its sessions were ended")


@web_user.command(name="list")
@pass_state
def web_user_list(state: _State) -> None:
    """The accounts and their roles."""
    from syncd.web.accounts import list_accounts

    accounts = list_accounts(state.runtime)
    if not accounts:
        click.echo("No accounts yet: `syncd web user add NAME --role admin` creates one.")
    for account in accounts:
        how = "password" if account.password_hash else "proxy only"
        click.echo(f"{account.name}  {account.role}  {how}")


@web_user.command(name="remove")
@click.argument("name")
@pass_state
def web_user_remove(state: _State, name: str) -> None:
    """Delete account NAME and end its sessions."""
    from syncd.web.accounts import remove_account

    remove_account(state.runtime, name)
    click.echo(f"account {name} removed")


def _fail(error: SyncdError) -> NoReturn:
    click.echo(f"syncd: {error}", err=True)
    sys.exit(error.exit_code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's own usage errors exit 64, ours their class's code."""
    # Everything syncd writes (databases, errors CSVs, retained and settled files, the
    # secret) holds personal data: readable by syncd's own user alone.
    os.umask(0o077)
    # A crash's traceback leaves out what its errors quote of people's data.
    from syncd.tracebacks import excepthook

    sys.excepthook = excepthook
    try:
        cli.main(args=argv, prog_name="syncd", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(EX_USAGE)
    except SyncdError as exc:
        _fail(exc)
    sys.exit(0)
