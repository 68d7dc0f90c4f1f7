"""No secret and no row's contents where they do not belong, through a real `syncd run`.

The daemon logs in to an SMTP server that takes mail only after a login (the password
from a file), to an SFTP server with a key protected by a passphrase (from the
environment), and reads files of the `agents` profile, which has a password column:
an applied file, one with row errors (a bad email, a password too short, a password
split by an unquoted comma), two rejected ones, and one the database refuses mid-apply
(a trigger: the error quotes the row it refused, password hash included). Afterwards
everything syncd wrote or said is gathered: its stdout and stderr, the output of the
commands support runs, every report the SMTP server received (each part and attachment
decoded) and the .eml files of a second configuration without an SMTP server, the
errors and changes CSVs, the files it kept for support, the files it settled on the
server, and the database itself.

None of it holds the SMTP password, the key's passphrase or any password cell; the logs
hold no name or email of any row (their values carry a marker that is looked for).
"""

from __future__ import annotations

import email.policy
import gzip
import json
import os
import pty
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from syncd.packing import unpack
from tests.e2e.cli import SYNCD, environment, syncd
from tests.e2e.test_daemon_exactly_once import Running
from tests.servers.smtp import PASSWORD as SMTP_PASSWORD
from tests.servers.smtp import SmtpServer, serving_smtp
from tests.servers.sshd import SshdServer, client_key_with_passphrase

PASSPHRASE = "Kp-phrase-Vw83x!"
PASSPHRASE_ENV = "SYNCD_TEST_KEY_PASSPHRASE"

#: Every password cell of every file below; none may be found anywhere afterwards.
PASSWORDS = (
    "PwLeak-Alpha-7731",
    "PwLeak-Bravo-4410",
    "PwLeak-Charlie-5521",
    "Qk7z!",  # too short: a row error, whose message must not quote it
    "PwLeakDelta1",  # split by an unquoted comma: both halves are secret
    "PwLeakDelta2",
    "PwLeak-Echo-9012",
    "PwLeak-Fox-3141",
    "PwLeak-Golf-2718",
    "PwLeak-Hotel-1618",
    "PwLeak-India-1414",
)
#: What marks a row's name or email: never in a log line.
ROW_MARKER = "qzrowmark"

HEADER = "email,first_name,last_name,password,active\r\n"
FILES = {
    "agents-ok.csv": HEADER
    + "qzrowmark.alpha@example.com,Alphaqzrowmark,Nowak,PwLeak-Alpha-7731,true\r\n"
    + "qzrowmark.bravo@example.com,Bravoqzrowmark,Ødegård,PwLeak-Bravo-4410,false\r\n",
    "agents-errors.csv": HEADER
    + "qzrowmark.charlie(at)example.com,Charlieqzrowmark,Bad,PwLeak-Charlie-5521,true\r\n"
    + "qzrowmark.short@example.com,Shortqzrowmark,Pw,Qk7z!,true\r\n"
    + "qzrowmark.delta@example.com,Deltaqzrowmark,Split,PwLeakDelta1,PwLeakDelta2,true\r\n"
    + "qzrowmark.echo@example.com,Echoqzrowmark,Fine,PwLeak-Echo-9012,true\r\n",
    # A column twice: rejected once its header is read.
    "agents-twice.csv": "email,first_name,password,password\r\n"
    + "qzrowmark.fox@example.com,Foxqzrowmark,PwLeak-Fox-3141,PwLeak-Fox-3141\r\n",
    # No email column: rejected.
    "agents-noemail.csv": "first_name,last_name,password\r\n"
    + "Golfqzrowmark,Nowak,PwLeak-Golf-2718\r\n",
    # Refused by the database as it is written (REFUSING below): the job crashes.
    "agents-refused.csv": HEADER
    + "qzrowmark.india@example.com,Indiaqzrowmark,Db,PwLeak-India-1414,true\r\n",
}
#: A database that refuses one user, as a constraint or a full disk would refuse a write.
REFUSING = (
    "CREATE TRIGGER refuse_india BEFORE INSERT ON users WHEN NEW.email LIKE 'qzrowmark.india%' "
    "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
)
#: Imported from the command line with a configuration that writes .eml files.
LATER = HEADER + "qzrowmark.hotel(at)example.com,Hotelqzrowmark,Late,PwLeak-Hotel-1618,true\r\n"


@dataclass
class Gathered:
    """Everything the run left, by where it was found."""

    logs: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)  # reports, CSVs, kept files
    jobs: dict[str, dict[str, object]] = field(default_factory=dict)  # by file name
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str | None] = field(default_factory=list)
    emls: list[Path] = field(default_factory=list)

    def everything(self) -> dict[str, str]:
        return self.logs | self.documents


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _message_texts(label: str, raw: bytes) -> dict[str, str]:
    """A message as sent, and each of its parts decoded (quoted-printable, base64)."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    found = {label: _text(raw), f"{label} headers": str(message.items())}
    for n, part in enumerate(message.walk()):
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            name = part.get_filename() or part.get_content_type()
            found[f"{label} part {n} ({name})"] = _text(payload)
    return found


def _config(root: Path, sshd: SshdServer, key: Path, remote: Path, mail: str) -> Path:
    config = root / f"syncd-{'smtp' if 'smtp_host' in mail else 'eml'}.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n'
        f'[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
        f"[mail]\n{mail}"
        f'[[sources]]\nname = "hr"\nkind = "sftp"\nhost = "{sshd.host}"\nport = {sshd.port}\n'
        f'username = "{sshd.username}"\nkey_file = "{key}"\n'
        f'passphrase_env = "{PASSPHRASE_ENV}"\nknown_hosts = "{sshd.known_hosts}"\n'
        f'remote_dir = "{remote}"\ntimeout_seconds = 5\nsettle_seconds = 1\n'
        'interval_seconds = 1\nprofile = "agents"\nmode = "partial"\n'
        'notify = ["it@example.com"]\n',
        encoding="utf-8",
    )
    return config


def _settled(remote: Path) -> dict[str, Path]:
    """Settled files by their original name (`a.JOBID.csv` -> `a.csv`)."""
    found = {}
    for folder in ("processed", "failed"):
        for path in (remote / folder).glob("*") if (remote / folder).is_dir() else ():
            stem, _, suffix = path.name.rpartition(".")
            found[stem.rpartition(".")[0] + "." + suffix] = path
    return found


def _database(root: Path) -> dict[str, str]:
    """What the database keeps of jobs, decompressed: retained inputs, job files (errors
    and changes CSVs, a held job's state), row errors and messages; and the raw files."""
    found: dict[str, str] = {}
    engine = create_engine(f"sqlite:///{root / 'syncd.db'}")
    try:
        with engine.connect() as conn:
            for job_id, name, content in conn.execute(
                text("SELECT job_id, file_name, content FROM retained_files")
            ):
                found[f"retained input of {job_id} ({name})"] = _text(unpack(content))
            for job_id, name, content in conn.execute(
                text("SELECT job_id, name, content FROM job_files")
            ):
                data = gzip.decompress(content) if name.endswith(".gz") else content
                found[f"job file {name} of {job_id}"] = _text(data)
            rows = conn.execute(text('SELECT job_id, row, "column", message FROM row_errors'))
            found["row errors"] = "\n".join(map(str, rows))
            found["job messages"] = "\n".join(
                str(m) for (m,) in conn.execute(text("SELECT messages FROM jobs"))
            )
            found["outbox"] = "\n".join(
                _text(c) for (c,) in conn.execute(text("SELECT content FROM outbox"))
            )
    finally:
        engine.dispose()
    for path in root.glob("syncd.db*"):
        found[f"database file {path.name}"] = _text(path.read_bytes())
    return found


@pytest.fixture(scope="module")
def gathered(
    tmp_path_factory: pytest.TempPathFactory,
    sshd_server: SshdServer,
) -> Iterator[Gathered]:
    # One SMTP server for the module (the fixtures of tests.servers.smtp are per test).
    with serving_smtp(auth_required=True) as smtp:
        yield _run(tmp_path_factory.mktemp("secrets"), sshd_server, smtp)


def _run(root: Path, sshd: SshdServer, smtp: SmtpServer) -> Gathered:
    found = Gathered()
    key = client_key_with_passphrase(sshd, root / "id_ed25519", PASSPHRASE)
    password_file = root / "smtp-password"
    password_file.write_text(smtp.password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    remote = sshd.root / root.name
    remote.mkdir()
    smtp_config = _config(
        root, sshd, key, remote,
        f'from = "syncd@example.com"\nsmtp_host = "{smtp.host}"\nsmtp_port = {smtp.port}\n'
        f'tls = "none"\nusername = "{smtp.username}"\npassword_file = "{password_file}"\n',
    )  # fmt: skip
    env = {PASSPHRASE_ENV: PASSPHRASE}
    daemon = Running(root, smtp_config, env=env)
    with sqlite3.connect(root / "syncd.db") as conn:  # the daemon made the schema
        conn.execute(REFUSING)
    try:
        for name, content in FILES.items():
            staging = remote / f"{name}.part"
            staging.write_text(content, encoding="utf-8")
            os.replace(staging, remote / name)
            daemon.wait_for(f"{name} to be settled", lambda n=name: n in _settled(remote))
        daemon.wait_for("every report to be sent", lambda: len(smtp.messages) == len(FILES))
    finally:
        assert daemon.stop() == 0
    found.logs["daemon stderr"] = daemon.log.read_text(encoding="utf-8")
    found.logs["daemon stdout"] = daemon.stdout.read_text(encoding="utf-8")
    for n, received in enumerate(smtp.messages):
        found.logins.append(received.login)
        found.messages.append(received.parsed())
        found.documents |= _message_texts(f"report {n} sent by SMTP", received.data)

    # A second configuration, without an SMTP server: reports become .eml files.
    outbox = root / "outbox"
    eml_config = _config(root, sshd, key, remote, f'outbox_dir = "{outbox}"\n')
    (root / "later.csv").write_text(LATER, encoding="utf-8")

    def command(label: str, *args: str | Path) -> None:
        done = syncd("--config", eml_config, *args, cwd=root, env=env)
        found.logs[f"syncd {label}: stdout"] = done.stdout
        found.logs[f"syncd {label}: stderr"] = done.stderr

    command("import", "import", root / "later.csv", "--source", "hr")
    command("outbox send", "outbox", "send")
    found.emls = sorted(outbox.glob("*.eml"))
    for path in found.emls:
        found.messages.append(
            BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
        )
        found.documents |= _message_texts(f"outbox {path.name}", path.read_bytes())

    # What support runs, and what it gets (each job's CSVs are also read from the
    # database below).
    command("jobs list", "jobs", "list", "--json")
    jobs = json.loads(found.logs["syncd jobs list: stdout"])
    found.jobs = {job["file"]: job for job in jobs}
    command("outbox list", "outbox", "list")
    command("check", "check")
    job_id = str(found.jobs["agents-errors.csv"]["job_id"])
    command("jobs show", "jobs", "show", job_id)
    for kind in ("errors", "changes"):
        out = root / f"{job_id}-{kind}.out.csv"
        command(f"jobs {kind}", "jobs", kind, job_id, "-o", out)
        found.documents[f"{kind} CSV of {job_id}"] = _text(out.read_bytes())
    for path in sorted((root / "state" / "errors").glob("*")):
        found.documents[f"errors CSV {path.name}"] = _text(path.read_bytes())
    for name, path in _settled(remote).items():
        found.documents[f"settled {name} ({path.parent.name}/{path.name})"] = _text(
            path.read_bytes()
        )
    found.documents |= _database(root)
    return found


def test_the_run_did_what_the_files_asked(gathered: Gathered) -> None:
    """The scan below is only as good as the run: reports went out through the login,
    errors CSVs and kept copies exist, .eml files were written."""
    statuses = {name: job["status"] for name, job in gathered.jobs.items()}
    assert statuses == {
        "agents-ok.csv": "applied",
        "agents-errors.csv": "applied_with_errors",
        "agents-twice.csv": "rejected",
        "agents-noemail.csv": "rejected",
        "agents-refused.csv": "rejected",
        "later.csv": "applied_with_errors",
    }
    assert gathered.logins == ["syncd"] * len(FILES)
    assert gathered.emls
    names = set(gathered.documents)
    assert any(n.startswith("errors CSV ") for n in names), names
    assert any(n.startswith("changes CSV ") for n in names), names
    assert any(n.startswith("retained input ") for n in names), names
    assert sum(n.startswith("settled ") for n in names) == len(FILES)
    attachments = [p.get_filename() for m in gathered.messages for p in m.iter_attachments()]
    assert any(a and a.endswith(".csv") for a in attachments), attachments


def test_what_was_gathered_holds_the_rows_it_should(gathered: Gathered) -> None:
    """The places searched are the right ones: the settled file, the errors CSV and the
    report of the file with errors name its people (only their passwords are blanked)."""
    documents = gathered.documents
    errors_job = str(gathered.jobs["agents-errors.csv"]["job_id"])
    assert "Deltaqzrowmark" in documents[f"errors CSV {errors_job}.csv"]
    [settled] = [v for k, v in documents.items() if k.startswith("settled agents-errors.csv")]
    assert "Echoqzrowmark" in settled
    assert any(
        "qzrowmark.charlie(at)example.com" in v for k, v in documents.items() if "report" in k
    )


@pytest.mark.parametrize("secret", [PASSPHRASE, SMTP_PASSWORD, *PASSWORDS], ids=lambda s: s)
def test_no_secret_anywhere(gathered: Gathered, secret: str) -> None:
    """Not in a log line or command's output, a report or its attachments, an .eml file,
    an errors or changes CSV, a kept or settled file, or the database."""
    holding = [where for where, content in gathered.everything().items() if secret in content]
    assert holding == []


def test_no_password_hash_outside_the_database(gathered: Gathered) -> None:
    """The refused job's error quoted its row, argon2 hash and tag: they were left out
    of its log lines, its message and its report."""
    refused = gathered.jobs["agents-refused.csv"]
    assert "refused by a trigger" in str(refused["messages"])
    assert "job_crashed" in gathered.logs["daemon stderr"]
    holding = [
        where
        for where, content in gathered.everything().items()
        if "$argon2" in content and not where.startswith("database file")
    ]
    assert holding == []


def test_the_logs_hold_no_row_contents(gathered: Gathered) -> None:
    """The daemon's and the commands' logs name files, jobs and counts, never a person
    (the reports do, to the people the configuration names)."""
    daemon_logs = {k: v for k, v in gathered.logs.items() if k.startswith("daemon")}
    assert daemon_logs["daemon stderr"].count("\n") > 10
    commands_stderr = {k: v for k, v in gathered.logs.items() if k.endswith("stderr")}
    holding = [
        where
        for where, content in (daemon_logs | commands_stderr).items()
        if ROW_MARKER in content.lower()
    ]
    assert holding == []


def _on_a_terminal(*args: str | Path, cwd: Path) -> str:
    """Run `syncd ARGS...` with stdout and stderr on a pseudo-terminal (the console
    renderer, colours, a progress bar) and return all it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(SYNCD), *map(str, args)],
        cwd=cwd, env=environment(), stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    written = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed: the command is done
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    process.wait(timeout=60)
    return written.decode("utf-8", errors="replace")


def test_a_crash_shown_on_a_terminal_holds_no_row_and_no_hash(tmp_path: Path) -> None:
    """`syncd import` at a terminal, the database refusing the row: the console log
    line and the traceback of the crash name the error, never the row, its password or
    its hash (rich's console tracebacks would show every frame's variables)."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "syncd.db"}"\n'
        f'[[sources]]\nname = "drop"\nkind = "local"\npath = "{tmp_path / "drop"}"\n'
        'profile = "agents"\nmode = "partial"\n',
        encoding="utf-8",
    )
    assert syncd("--config", config, "db", "upgrade", cwd=tmp_path).code == 0
    with sqlite3.connect(tmp_path / "syncd.db") as conn:
        conn.execute(REFUSING)
    people = tmp_path / "people.csv"
    people.write_text(FILES["agents-refused.csv"], encoding="utf-8")
    shown = _on_a_terminal("--config", config, "import", people, cwd=tmp_path)
    assert "job_crashed" in shown
    assert "refused by a trigger" in shown
    assert "Traceback" in shown
    assert ROW_MARKER not in shown.lower()
    assert "PwLeak-India-1414" not in shown
    assert "$argon2" not in shown
