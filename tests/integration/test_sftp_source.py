"""The SFTP source against a real OpenSSH sshd: the shared source contract, uploads by the
stock `sftp` client and by a slow sender, host keys that are unknown or changed, keys with
passphrases, a server that goes away mid-download, and settling on the server."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import paramiko
import pytest
from structlog.testing import capture_logs

from syncd.config import SourceConfig
from syncd.errors import SourceError
from syncd.probes import check_sftp
from syncd.sources.sftp import SftpRefused, SftpSource
from syncd.sources.spool import Spool, Spooled
from tests.contract.source_contract import Harness, SourceContract
from tests.servers import free_port
from tests.servers.sshd import (
    Sshd,
    SshdServer,
    client_key_with_passphrase,
    sshd_factory,
)

__all__ = ["sshd_factory"]  # a fixture, used by name

pytestmark = pytest.mark.sshd

PASSPHRASE = "correct horse battery staple"


def _drop(server: SshdServer) -> Path:
    """A drop folder of the test's own inside the server's, so tests do not see each other."""
    folder = server.root / uuid.uuid4().hex
    folder.mkdir()
    return folder


def _config(server: SshdServer, drop: Path, **changes: object) -> SourceConfig:
    values: dict[str, object] = {
        "name": "hr",
        "kind": "sftp",
        "profile": "default",
        "mode": "full",
        "directory": "hr",
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "key_file": server.client_key,
        "known_hosts": server.known_hosts,
        "remote_dir": str(drop),
        "processed_dir": str(drop / "processed"),
        "failed_dir": str(drop / "failed"),
        "settle_seconds": 5,
        "timeout_seconds": 5,
    }
    values.update(changes)
    return SourceConfig(**values)  # type: ignore[arg-type]


def _source(
    server: SshdServer, drop: Path, env: dict[str, str] | None = None, **changes: object
) -> SftpSource:
    return SftpSource.from_config(_config(server, drop, **changes), env or {}, cap=64 << 20)


def _fingerprint(public_keys: Path) -> str:
    """The SHA256 fingerprint OpenSSH itself prints for a key file or known_hosts line."""
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public_keys)], capture_output=True, text=True, check=True
    )
    return listed.stdout.split()[1]


def _known_hosts_with_other_key(server: SshdServer, folder: Path, port: int) -> Path:
    """A known_hosts that pins a freshly made key (not the server's) for 127.0.0.1:`port`."""
    key = folder / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    known = folder / "known_hosts"
    key_type, key_data = key.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"[{server.host}]:{port} {key_type} {key_data}\n")
    return known


class TestSftpSource(SourceContract):
    @pytest.fixture
    def harness(self, sshd_server: SshdServer) -> Iterator[Harness]:
        drop = _drop(sshd_server)
        source = _source(sshd_server, drop)
        mtimes = iter(range(1_000_000, 2_000_000, 10))

        def put(name: str, data: bytes) -> None:
            path = drop / name
            path.write_bytes(data)
            stamp = next(mtimes)
            os.utime(path, (stamp, stamp))

        def settled(where: str) -> dict[str, bytes]:
            folder = drop / where
            return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}

        yield Harness(source, put, settled, lambda name: (drop / name).unlink(), 5)
        source.close()


def test_a_file_put_with_the_openssh_sftp_client_is_listed_only_once_it_settled(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    """What an HR system does: stock `sftp` writes straight to the final name. The first
    listing sees the file but does not hand it over; one settle_seconds later it does,
    and it fetches whole."""
    drop = _drop(sshd_server)
    data = b"Email,First Name\n" + b"".join(b"p%d@example.com,P\n" % i for i in range(5000))
    local = tmp_path / "users.csv"
    local.write_bytes(data)
    sftp = [
        "sftp", "-b", "-", "-F", "/dev/null", "-i", str(sshd_server.client_key),
        "-o", f"UserKnownHostsFile={sshd_server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-P", str(sshd_server.port),
        f"{sshd_server.username}@{sshd_server.host}",
    ]  # fmt: skip
    done = subprocess.run(
        sftp, input=f"put {local} {drop}/users.csv\n", capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    source = _source(sshd_server, drop, settle_seconds=2)
    try:
        assert source.list_complete(100.0) == []
        assert source.waiting
        assert source.list_complete(101.0) == []
        [file] = source.list_complete(102.0)
        assert (file.name, file.size) == ("users.csv", len(data))
        spooled = source.fetch(file, Spool(tmp_path / "spool"), "J1")
        assert spooled.read() == data
    finally:
        source.close()


def test_a_file_uploaded_slowly_is_not_listed_before_it_is_complete(
    sshd_server: SshdServer,
) -> None:
    """A sender writing in chunks with pauses shorter than settle_seconds is never taken
    halfway: every listing during the upload is empty, and the first file handed over
    has its full size."""
    drop = _drop(sshd_server)
    source = _source(sshd_server, drop, settle_seconds=1.5)
    transport = paramiko.Transport((sshd_server.host, sshd_server.port))
    chunk, chunks, pause = b"x" * 20_000 + b"\n", 5, 0.5
    try:
        transport.connect(
            username=sshd_server.username, pkey=paramiko.PKey.from_path(sshd_server.client_key)
        )
        sender = paramiko.SFTPClient.from_transport(transport)
        during: list[object] = []
        with sender.open(str(drop / "slow.csv"), "wb") as remote:
            for _ in range(chunks):
                remote.write(chunk)
                remote.flush()
                deadline = time.monotonic() + pause
                while time.monotonic() < deadline:
                    during += source.list_complete(time.monotonic())
                    time.sleep(0.1)
        assert during == []
        deadline = time.monotonic() + 10
        while not (listed := source.list_complete(time.monotonic())):
            assert time.monotonic() < deadline, "the finished upload was never listed"
            time.sleep(0.1)
        assert [(f.name, f.size) for f in listed] == [("slow.csv", len(chunk) * chunks)]
    finally:
        transport.close()
        source.close()


def test_an_unknown_host_key_is_refused_with_its_fingerprint_and_never_added(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    """A known_hosts without this server (here: only another port of it) lets nothing
    through: the source and `syncd check` name the key type, its SHA256 fingerprint, the
    file read and the ssh-keyscan line to add; the file is left as it was (78)."""
    drop = _drop(sshd_server)
    known = _known_hosts_with_other_key(sshd_server, tmp_path, sshd_server.port + 1)
    before = known.read_bytes()
    offered = _fingerprint(sshd_server.known_hosts)
    source = _source(sshd_server, drop, known_hosts=known)
    with pytest.raises(SftpRefused) as refused:
        source.list_complete(0.0)
    message = str(refused.value)
    assert f"ED25519 host key {offered}" in message
    assert f"is not in {known}" in message
    assert f"`ssh-keyscan -p {sshd_server.port} -t ed25519 {sshd_server.host}`" in message
    checked = check_sftp(_config(sshd_server, drop, known_hosts=known), {})
    assert (checked.ok, checked.exit_code) == (False, 78)
    assert offered in checked.detail
    assert known.read_bytes() == before


def test_a_changed_host_key_is_refused_naming_the_expected_and_the_offered_key(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    """known_hosts pins another key for this server: the source and `syncd check` say it
    changed, show both fingerprints, warn of an attack, and add nothing (78)."""
    drop = _drop(sshd_server)
    known = _known_hosts_with_other_key(sshd_server, tmp_path, sshd_server.port)
    before = known.read_bytes()
    expected, offered = _fingerprint(known), _fingerprint(sshd_server.known_hosts)
    source = _source(sshd_server, drop, known_hosts=known)
    with pytest.raises(SftpRefused) as refused:
        source.list_complete(0.0)
    message = str(refused.value)
    assert "CHANGED" in message
    assert "attack" in message
    assert f"expects ED25519 {expected}, the server offered ED25519 {offered}" in message
    checked = check_sftp(_config(sshd_server, drop, known_hosts=known), {})
    assert (checked.ok, checked.exit_code) == (False, 78)
    assert expected in checked.detail
    assert offered in checked.detail
    assert known.read_bytes() == before


@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_the_line_the_refusal_names_lets_the_source_in_hashed_or_not(
    sshd_server: SshdServer, tmp_path: Path, hashed: bool
) -> None:
    """Following the message (run the ssh-keyscan it names, add its line) is enough, and a
    known_hosts hashed by `ssh-keygen -H` works the same."""
    drop = _drop(sshd_server)
    known = tmp_path / "known_hosts"
    known.write_text("")
    source = _source(sshd_server, drop, known_hosts=known)
    with pytest.raises(SftpRefused) as refused:
        source.list_complete(0.0)
    command = re.search(r"`(ssh-keyscan [^`]+)`", str(refused.value))
    assert command is not None
    scanned = subprocess.run(command[1].split(), capture_output=True, text=True, timeout=30)
    known.write_text(scanned.stdout)
    if hashed:
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True)
        assert str(sshd_server.port) not in known.read_text()
    assert source.list_complete(0.0) == []
    assert check_sftp(_config(sshd_server, drop, known_hosts=known), {}).ok
    source.close()


@pytest.mark.parametrize(
    ("key_type", "origin"),
    [("ed25519", "env"), ("ecdsa", "file"), ("rsa", "env")],
)
def test_a_key_with_a_passphrase_logs_in_with_the_passphrase_from_env_or_file(
    sshd_server: SshdServer, tmp_path: Path, key_type: str, origin: str
) -> None:
    """ed25519, ECDSA and RSA (PEM) keys protected by a passphrase log in, the passphrase
    read from an environment variable or a file."""
    drop = _drop(sshd_server)
    key = client_key_with_passphrase(sshd_server, tmp_path / f"id_{key_type}", PASSPHRASE, key_type)
    (tmp_path / "passphrase").write_text(PASSPHRASE + "\n")
    where = (
        {"passphrase_env": "SYNCD_KEY_PASSPHRASE"}
        if origin == "env"
        else {"passphrase_file": tmp_path / "passphrase"}
    )
    env = {"SYNCD_KEY_PASSPHRASE": PASSPHRASE}
    (drop / "people.csv").write_text("Email\n")
    source = _source(sshd_server, drop, env, key_file=key, **where)
    assert source.list_complete(0.0) == []
    assert [f.name for f in source.list_complete(10.0)] == ["people.csv"]
    source.close()
    assert check_sftp(_config(sshd_server, drop, key_file=key, **where), env).ok


def test_a_wrong_or_missing_passphrase_is_a_clear_error_that_never_shows_a_passphrase(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    """A wrong passphrase says so and names the key file, a missing one says where to set
    it; neither message nor log carries a passphrase, and `syncd check` gives 78."""
    drop = _drop(sshd_server)
    key = client_key_with_passphrase(sshd_server, tmp_path / "id_ed25519", PASSPHRASE)
    wrong = "not the passphrase at all"
    env = {"SYNCD_KEY_PASSPHRASE": wrong}
    with capture_logs() as logs:
        source = _source(
            sshd_server, drop, env, key_file=key, passphrase_env="SYNCD_KEY_PASSPHRASE"
        )
        with pytest.raises(SftpRefused) as refused:
            source.list_complete(0.0)
        checked = check_sftp(
            _config(sshd_server, drop, key_file=key, passphrase_env="SYNCD_KEY_PASSPHRASE"), env
        )
    message = str(refused.value)
    assert f"the key file {key} cannot be opened with the configured passphrase" in message
    assert (checked.ok, checked.exit_code) == (False, 78)
    for shown in (message, checked.detail, repr(source.login), repr(logs)):
        assert wrong not in shown
        assert PASSPHRASE not in shown
    with pytest.raises(SftpRefused, match="protected by a passphrase, and none is configured"):
        _source(sshd_server, drop, key_file=key).list_complete(0.0)


def test_check_tells_a_server_that_is_not_there_from_a_setting_to_fix(
    sshd_server: SshdServer,
) -> None:
    """`syncd check`: nothing listening is 69 (try again later), a remote folder that does
    not exist is 78 (fix remote_dir); each is one line that says what to look at."""
    drop = _drop(sshd_server)
    down = check_sftp(_config(sshd_server, drop, port=free_port()), {})
    assert (down.ok, down.exit_code) == (False, 69)
    assert "cannot connect to the SFTP server" in down.detail
    missing = check_sftp(_config(sshd_server, drop, remote_dir=str(drop / "nowhere")), {})
    assert (missing.ok, missing.exit_code) == (False, 78)
    assert f"cannot list {drop / 'nowhere'}" in missing.detail
    assert "check remote_dir" in missing.detail
    assert "\n" not in down.detail + missing.detail


class _StopsTheServerMidway(Spool):
    """A spool that stops the server once the first chunk of a download arrived."""

    def __init__(self, folder: Path, stop: Callable[[], None]) -> None:
        super().__init__(folder)
        self.stop = stop

    def receive(self, name: str, chunks: Iterable[bytes], *, cap: int) -> Spooled:
        def cut() -> Iterator[bytes]:
            for index, chunk in enumerate(chunks):
                if index == 1:
                    self.stop()
                yield chunk

        return super().receive(name, cut(), cap=cap)


def test_a_download_cut_by_the_server_going_away_leaves_nothing_and_the_next_fetch_reconnects(
    sshd_factory: Callable[[], Sshd], tmp_path: Path
) -> None:
    """sshd and its sessions stop mid-download: the fetch is a SourceError and the spool
    keeps nothing; while the server is down listing says it cannot connect; once it is
    back, the same source connects again and the file fetches whole."""
    sshd = sshd_factory()
    server = sshd.server
    data = os.urandom(24 << 20)
    (server.root / "big.csv").write_bytes(data)
    source = _source(server, server.root, settle_seconds=0)
    try:
        source.list_complete(0.0)
        [file] = source.list_complete(0.0)
        spool = _StopsTheServerMidway(tmp_path / "spool", sshd.stop)
        with pytest.raises(SourceError, match="cannot read"):
            source.fetch(file, spool, "J1")
        assert list(spool.folder.iterdir()) == []
        with pytest.raises(SourceError, match="cannot connect to the SFTP server"):
            source.list_complete(1.0)
        sshd.start()
        spooled = source.fetch(file, Spool(tmp_path / "spool"), "J2")
        assert spooled.sha256 == hashlib.sha256(data).hexdigest()
        assert [p.name for p in spool.folder.iterdir()] == ["J2"]
    finally:
        source.close()


def test_a_server_that_stops_answering_is_a_source_error_within_the_timeout(
    sshd_factory: Callable[[], Sshd],
) -> None:
    """sshd and its sessions hang: a call on the open connection, then a new connection
    (waiting for the server's greeting), each fail within about the timeout; once the
    server answers again the source connects again."""
    sshd = sshd_factory()
    source = _source(sshd.server, sshd.server.root, timeout_seconds=1)
    try:
        assert source.list_complete(0.0) == []
        sshd.freeze()
        for expected in ("cannot list", "cannot open an SSH session"):
            started = time.monotonic()
            with pytest.raises(SourceError, match=f"{expected} .*: no answer within 1 s"):
                source.list_complete(1.0)
            assert time.monotonic() - started < 4
        sshd.freeze(False)
        assert source.list_complete(2.0) == []
    finally:
        sshd.freeze(False)
        source.close()


def test_a_file_name_that_is_not_utf8_is_named_as_the_problem_until_it_is_gone(
    sshd_server: SshdServer,
) -> None:
    """A Latin-1 name in the drop folder makes the listing fail with a message that says
    what to do (not a crash); once the file is renamed, listing goes on."""
    drop = _drop(sshd_server)
    (drop / "people.csv").write_bytes(b"Email\n")
    latin1 = os.fsencode(drop) + b"/caf\xe9.csv"
    Path(os.fsdecode(latin1)).write_bytes(b"Email\n")
    source = _source(sshd_server, drop, settle_seconds=0)
    try:
        with pytest.raises(SftpRefused, match="a file name in it is not UTF-8; rename or remove"):
            source.list_complete(0.0)
        os.rename(latin1, os.fsencode(drop) + b"/cafe.csv")
        source.list_complete(0.0)
        assert {f.name for f in source.list_complete(0.0)} == {"people.csv", "cafe.csv"}
    finally:
        source.close()


def test_settling_creates_missing_remote_folders_and_a_replacement_leaves_only_itself(
    sshd_server: SshdServer,
) -> None:
    """processed/ and failed/ (nested, missing) are made on the server, 0700; a replacement
    is the only copy left, readable by its owner alone, with no temporary file beside it."""
    drop = _drop(sshd_server)
    processed, failed = drop / "archive" / "2026" / "processed", drop / "archive" / "failed"
    source = _source(sshd_server, drop, processed_dir=str(processed), failed_dir=str(failed))
    (drop / "pw.csv").write_bytes(b"email,password\na@x.com,hunter22\n")
    (drop / "bad.csv").write_bytes(b"bad")
    source.list_complete(0.0)
    listed = {f.name: f for f in source.list_complete(10.0)}
    redacted = b"email,password\na@x.com,\n"
    where = source.settle(listed["pw.csv"], "AAAAA-00001", True, redacted)
    source.settle(listed["bad.csv"], "AAAAA-00002", False)
    source.close()
    assert where == str(processed / "pw.AAAAA-00001.csv")
    assert {p.name: p.read_bytes() for p in processed.iterdir()} == {"pw.AAAAA-00001.csv": redacted}
    assert (processed / "pw.AAAAA-00001.csv").stat().st_mode & 0o777 == 0o600
    assert {p.name: p.read_bytes() for p in failed.iterdir()} == {"bad.AAAAA-00002.csv": b"bad"}
    assert processed.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in drop.iterdir()) == ["archive"]


def test_with_markers_a_file_is_taken_once_its_marker_exists_and_the_marker_goes_with_it(
    sshd_server: SshdServer,
) -> None:
    """`NAME.done` says the upload is complete, without waiting; settling removes both."""
    drop = _drop(sshd_server)
    source = _source(sshd_server, drop, markers=True)
    (drop / "people.csv").write_bytes(b"Email\n")
    assert source.list_complete(0.0) == []
    (drop / "people.csv.done").write_bytes(b"")
    [file] = source.list_complete(0.0)
    source.settle(file, "AAAAA-00003", True)
    source.close()
    assert sorted(p.name for p in drop.iterdir()) == ["processed"]


def test_a_source_that_deletes_settled_files_leaves_nothing_behind(
    sshd_server: SshdServer,
) -> None:
    """settle = "delete": the file goes, and no processed/ folder is made."""
    drop = _drop(sshd_server)
    source = _source(sshd_server, drop, settle="delete")
    (drop / "people.csv").write_bytes(b"Email\n")
    source.list_complete(0.0)
    [file] = source.list_complete(10.0)
    assert source.settle(file, "AAAAA-00004", True) == "deleted"
    source.close()
    assert list(drop.iterdir()) == []
