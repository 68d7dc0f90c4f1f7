"""`syncd run` with an SFTP source on a real OpenSSH sshd: files put with the stock `sftp`
client are taken once complete, settled on the server under their job ID (processed/ for
applied, held and skipped files, failed/ for rejected ones); a slow upload is taken only
whole; a server that goes away mid-download costs nothing but time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import syncd_json
from tests.e2e.test_daemon_exactly_once import Running
from tests.servers.sshd import Sshd, SshdServer

FULL_HEADER = "Employee ID,Primary Email,First Name,Last Name,Current Status\r\n"


def _config(root: Path, server: SshdServer, remote: Path, **extra: object) -> Path:
    values: dict[str, object] = {
        "settle_seconds": 2,
        "interval_seconds": 1,
        "profile": "hr_full",
        "mode": "full",
        "max_archive_percent": 20,
        "max_archive_count": 100,
        **extra,
    }
    config = root / "syncd.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
        f'[[sources]]\nname = "hr"\nkind = "sftp"\nhost = "{server.host}"\n'
        f'port = {server.port}\nusername = "{server.username}"\n'
        f'key_file = "{server.client_key}"\nknown_hosts = "{server.known_hosts}"\n'
        f'remote_dir = "{remote}"\ntimeout_seconds = 5\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
        + '[directory]\nroles = ["User"]\ngroups = []\n',
        encoding="utf-8",
    )
    return config


def _export(people: range) -> str:
    rows = [f"E{n:03d},p{n}@example.com,Zoë{n},Ødegård,Active" for n in people]
    return FULL_HEADER + "\r\n".join(rows) + "\r\n"


def sftp_put(server: SshdServer, local: Path, remote: str) -> None:
    """Upload with the stock OpenSSH client, as an HR system does: straight to the name."""
    command = [
        "sftp", "-b", "-", "-i", str(server.client_key), "-P", str(server.port),
        "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
        f"{server.username}@{server.host}",
    ]  # fmt: skip
    done = subprocess.run(
        command, input=f"put {local} {remote}\n", capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Run:
    root: Path
    remote: Path
    jobs: dict[str, dict[str, Any]]  # by file name
    settled: dict[str, str]  # settled name -> folder ("processed" | "failed")
    daemon: Running


def _settled(remote: Path) -> dict[str, str]:
    found = {}
    for folder in ("processed", "failed"):
        if (remote / folder).is_dir():
            found |= {p.name: folder for p in (remote / folder).iterdir()}
    return found


def _wait(daemon: Running, what: str, done: Callable[[], bool], seconds: float = 90) -> None:
    daemon.wait_for(what, done, seconds)


@pytest.fixture(scope="module")
def sftp_run(tmp_path_factory: pytest.TempPathFactory, sshd_server: SshdServer) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("sftp-daemon")
    remote = sshd_server.root / "daemon"
    remote.mkdir()
    config = _config(root, sshd_server, remote)
    daemon = Running(root, config)
    try:
        # Night 1: 20 people. Then: the same content again under another name (skipped),
        # a binary file (rejected), a night without 10 of them (held: 50% > 20%).
        files = root / "files"
        files.mkdir()
        plan = {
            "n1.csv": _export(range(1, 21)),
            "n1-again.csv": _export(range(1, 21)),
            "junk.csv": "\x00\x01binary\x00",
            "n2.csv": _export(range(1, 11)),
        }
        for name, content in plan.items():
            (files / name).write_text(content, encoding="utf-8")
            sftp_put(sshd_server, files / name, str(remote / name))
            _wait(daemon, f"{name} to be settled", lambda n=name: any(
                s.startswith(n.removesuffix(".csv") + ".") for s in _settled(remote)
            ))  # fmt: skip
        # A slow upload over about 30 s, through SFTP, in chunks closer together than
        # settle_seconds: taken only once whole.
        slow = _export(range(1, 21)).replace("Zoë", "Slow")
        chunks = [
            slow[i : i + len(slow) // 15 + 1] for i in range(0, len(slow), len(slow) // 15 + 1)
        ]
        import paramiko

        transport = paramiko.Transport((sshd_server.host, sshd_server.port))
        transport.connect(
            username=sshd_server.username,
            pkey=paramiko.Ed25519Key.from_private_key_file(str(sshd_server.client_key)),
        )
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        with sftp.open(str(remote / "slow.csv"), "w") as out:
            for chunk in chunks:
                out.write(chunk.encode("utf-8"))
                out.flush()
                time.sleep(1.9)
        transport.close()
        _wait(daemon, "slow.csv to be settled", lambda: any(
            s.startswith("slow.") for s in _settled(remote)
        ))  # fmt: skip
        listed, jobs = syncd_json("--config", config, "jobs", "list", "--json", cwd=root)
        assert listed.code == 0, listed.stderr
        yield Run(root, remote, {j["file"]: j for j in jobs}, _settled(remote), daemon)
    finally:
        assert daemon.stop() == 0


def _where(run: Run, name: str) -> tuple[str, str]:
    [(settled, folder)] = [
        (s, f) for s, f in run.settled.items() if s.startswith(name.removesuffix(".csv") + ".")
    ]
    return settled, folder


def test_a_file_put_with_the_sftp_client_is_applied_once_and_settled_under_its_job_id(
    sftp_run: Run,
) -> None:
    """The night's file: one job, applied, moved to processed/ named with the job ID."""
    job = sftp_run.jobs["n1.csv"]
    assert (job["status"], job["counts"]["created"]) == ("applied", 20)
    settled, folder = _where(sftp_run, "n1.csv")
    assert (folder, settled) == ("processed", f"n1.{job['job_id']}.csv")
    assert not (sftp_run.remote / "n1.csv").exists()


def test_a_held_and_a_skipped_file_land_in_processed_and_a_bad_one_in_failed(
    sftp_run: Run,
) -> None:
    """Held (waiting for approval) and skipped (identical to an applied file) went
    through; a binary file was rejected: failed/."""
    assert sftp_run.jobs["n2.csv"]["status"] == "held"
    assert sftp_run.jobs["n1-again.csv"]["status"] == "skipped"
    assert sftp_run.jobs["junk.csv"]["status"] == "rejected"
    assert _where(sftp_run, "n2.csv")[1] == "processed"
    assert _where(sftp_run, "n1-again.csv")[1] == "processed"
    assert _where(sftp_run, "junk.csv")[1] == "failed"


def test_a_file_uploaded_slowly_is_taken_only_once_whole(sftp_run: Run) -> None:
    """Written over about 30 s in chunks closer together than settle_seconds: one job,
    of the whole file (20 rows), never of a part."""
    job = sftp_run.jobs["slow.csv"]
    assert job["counts"]["rows"] == 20, job
    assert len([j for j in sftp_run.jobs.values() if j["file"] == "slow.csv"]) == 1


def test_sshd_stopped_mid_download_costs_only_time(
    tmp_path: Path, sshd_factory: Callable[[], Sshd]
) -> None:
    """The server goes away while a large file downloads: nothing half downloaded is
    applied, the daemon keeps running, and once the server is back the file is applied
    once, whole."""
    sshd = sshd_factory()
    remote = sshd.server.root / "big"
    remote.mkdir()
    config = _config(tmp_path, sshd.server, remote, mode="partial", settle_seconds=1)
    rows = 150_000
    (remote / "big.csv").write_text(_export(range(1, rows + 1)), encoding="utf-8")
    daemon = Running(tmp_path, config)
    try:
        daemon.wait_for("the download to start", lambda: bool(daemon.events("file_taken")))
        sshd.stop()
        daemon.wait_for("the download to fail", lambda: bool(daemon.events("fetch_failed")))
        assert list((tmp_path / "state" / "spool").glob("*")) == []
        sshd.start()
        daemon.wait_for(
            "the file to be settled",
            lambda: (remote / "processed").is_dir() and any((remote / "processed").iterdir()),
            120,
        )
        listed, jobs = syncd_json("--config", config, "jobs", "list", "--json", cwd=tmp_path)
        assert listed.code == 0, listed.stderr
        assert [(j["status"], j["counts"]["created"]) for j in jobs] == [("applied", rows)]
    finally:
        assert daemon.stop() == 0
