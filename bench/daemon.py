"""`python -m bench.daemon`: the daemon's own figures, measured on the real `syncd run`.

- **Latency**: the time from a file's upload completing (its last byte written and the
  file closed) to its job starting (`jobs.started_at`), for a local folder on inotify and
  for an SFTP source (a throwaway OpenSSH sshd on loopback, as in the tests), with
  `settle_seconds = 2` and, for SFTP, `interval_seconds = 10`. A file can only be taken
  once a second look `settle_seconds` after the first saw it unchanged, so the floor is
  settle_seconds (plus, for SFTP, the wait for the next scheduled listing).
- **Idle**: CPU seconds and resident memory of a daemon with 10 local sources on
  10-second schedules, idle for a minute.

Results are printed; nothing is written to the repository.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import command_environment, say, syncd_command

SETTLE = 2.0
SFTP_INTERVAL = 10


@contextmanager
def _daemon(root: Path, config: str) -> Iterator[subprocess.Popen[bytes]]:
    (root / "syncd.toml").write_text(config, encoding="utf-8")
    log = (root / "daemon.log").open("wb")
    process = subprocess.Popen(
        [syncd_command(), "--config", str(root / "syncd.toml"), "run"],
        cwd=root,
        env=command_environment(),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while b'"started"' not in (root / "daemon.log").read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "daemon.log").read_text())
            time.sleep(0.05)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def _started(db: Path, name: str, timeout: float = 120) -> float:
    """When the job of file `name` started (epoch seconds)."""
    engine = create_engine(f"sqlite:///{db}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                found = conn.execute(
                    text("SELECT started_at FROM jobs WHERE file_name = :n AND started_at > ''"),
                    {"n": name},
                ).scalar()
            if found is not None:
                stamp = found if not isinstance(found, str) else found.replace(" ", "T")
                from datetime import UTC, datetime

                when = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp)
                return when.replace(tzinfo=UTC).timestamp()
            time.sleep(0.02)
    finally:
        engine.dispose()
    raise RuntimeError(f"no job started for {name}")


def _drop(folder: Path, name: str, n: int) -> float:
    """Write a small export straight to its final name, as stock sftp does; return when
    it was complete."""
    with (folder / name).open("w", encoding="utf-8") as out:
        out.write("Email,First Name\n")
        out.write(f"latency{n}@example.com,Ann\n")
    return time.time()


def local_latency(rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="syncd-latency-") as tmp:
        root = Path(tmp)
        (root / "drop").mkdir()
        config = (
            f'state_dir = "{root / "state"}"\n[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
            f'[[sources]]\nname = "drop"\nkind = "local"\npath = "{root / "drop"}"\n'
            f"settle_seconds = {SETTLE}\ninterval_seconds = 3600\n"
        )
        with _daemon(root, config):
            seconds = []
            for n in range(rounds):
                complete = _drop(root / "drop", f"file{n}.csv", n)
                seconds.append(_started(root / "syncd.db", f"file{n}.csv") - complete)
                time.sleep(0.5)
            return seconds


def sftp_latency(rounds: int) -> list[float]:
    from tests.servers.sshd import running_sshd

    with tempfile.TemporaryDirectory(prefix="syncd-latency-") as tmp, running_sshd() as server:
        sshd = server.server
        root = Path(tmp)
        config = (
            f'state_dir = "{root / "state"}"\n[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
            f'[[sources]]\nname = "sftp"\nkind = "sftp"\nhost = "{sshd.host}"\nport = {sshd.port}\n'
            f'username = "{sshd.username}"\nkey_file = "{sshd.client_key}"\n'
            f'known_hosts = "{sshd.known_hosts}"\nremote_dir = "{sshd.root}"\n'
            f"settle_seconds = {SETTLE}\ninterval_seconds = {SFTP_INTERVAL}\n"
        )
        with _daemon(root, config):
            seconds = []
            for n in range(rounds):
                time.sleep(n * 1.7 % SFTP_INTERVAL)  # land anywhere between two scans
                complete = _drop(sshd.root, f"file{n}.csv", n)
                seconds.append(_started(root / "syncd.db", f"file{n}.csv") - complete)
            return seconds


def idle(sources: int = 10, seconds: float = 60) -> tuple[float, float]:
    """CPU seconds used and resident MiB of an idle daemon with `sources` folders."""
    with tempfile.TemporaryDirectory(prefix="syncd-idle-") as tmp:
        root = Path(tmp)
        body = "".join(
            f'[[sources]]\nname = "s{i}"\nkind = "local"\npath = "{root / f"s{i}"}"\n'
            "interval_seconds = 10\n"
            for i in range(sources)
        )
        config = (
            f'state_dir = "{root / "state"}"\n[database]\nurl = "sqlite:///{root / "syncd.db"}"\n'
            + body
        )
        with _daemon(root, config) as process:
            time.sleep(5)  # past start-up
            before = _cpu(process.pid)
            time.sleep(seconds)
            used = _cpu(process.pid) - before
            rss = _rss_mib(process.pid)
        return used, rss


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.daemon", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    say("latency, local folder on inotify")
    local = local_latency(args.rounds)
    say("latency, SFTP")
    sftp = sftp_latency(args.rounds)
    say("idle daemon, 10 sources")
    cpu, rss = idle(seconds=args.idle_seconds)
    print(f"settle_seconds = {SETTLE:g}; SFTP interval_seconds = {SFTP_INTERVAL}")
    for name, values in (("local (inotify)", local), ("sftp", sftp)):
        print(
            f"{name:16} upload complete -> job started: median {statistics.median(values):.2f} s, "
            f"min {min(values):.2f} s, max {max(values):.2f} s over {len(values)} files"
        )
    share = 100 * cpu / args.idle_seconds
    print(
        f"idle, 10 sources on 10 s schedules: {cpu:.2f} CPU s in {args.idle_seconds:g} s "
        f"({share:.2f}% of a core), {rss:.0f} MiB resident"
    )


if __name__ == "__main__":
    main()
