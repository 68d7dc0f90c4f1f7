"""The soak's rig: the servers and folders files arrive through, each daemon's
configuration, and the timeline that drops the files and takes the servers down.

Sources `hr` and `branch` are each on an OpenSSH sshd of their own (so `hr`'s can be
restarted alone), files put with the stock `sftp` client as an HR system does; `uploads`
and `bulk` are local folders both daemons watch. Every source notifies someone, through
one aiosmtpd relay that can be stopped and started on its port.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.generate import GROUPS, ROLES
from tests.e2e.test_daemon_sftp import sftp_put
from tests.integration.test_report_delivery import Relay
from tests.servers.sshd import Sshd
from tests.soak.feeds import FULL, SOURCES, Drop

#: The feeds' sources, and `bulk`, which takes one very large file at the end.
ALL_SOURCES = (*SOURCES, "bulk")
NOTIFY = {
    "hr": ["it@example.com", "hr-systems@example.com"],
    "branch": ["branch-it@example.com"],
    "uploads": ["helpdesk@example.com"],
    "bulk": ["it@example.com"],
}
#: A running job past this is rolled back when its daemon is told to stop.
STOP_TIMEOUT_SECONDS = 5


def _toml_list(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


@dataclass
class Rig:
    """The servers and folders of one soak run."""

    sshd: dict[str, Sshd]
    folders: dict[str, Path]
    relay: Relay

    def drop_dir(self, source: str) -> Path:
        return self.sshd[source].server.root if source in self.sshd else self.folders[source]

    def config(self, root: Path, name: str, db_url: str, secret: Path) -> Path:
        """One daemon's configuration: a state folder of its own (as on a host of its
        own), the shared database and password-tag secret, the sources and the relay."""
        lines = [
            f'state_dir = "{root / name}"',
            f'secret_file = "{secret}"',
            f"stop_timeout_seconds = {STOP_TIMEOUT_SECONDS}",
            f'[database]\nurl = "{db_url}"',
            '[mail]\nfrom = "syncd@example.com"\nsmtp_host = "127.0.0.1"',
            f'smtp_port = {self.relay.server.port}\ntls = "none"\ntimeout_seconds = 10',
        ]
        for source in ALL_SOURCES:
            mode = "full" if FULL.get(source) else "partial"
            lines.append(
                f'[[sources]]\nname = "{source}"\nmode = "{mode}"\ndirectory = "{source}"\n'
                f'notify = {_toml_list(NOTIFY[source])}\nprofile = "hr_full"\n'
                "settle_seconds = 2\ninterval_seconds = 5\nmax_archive_count = 5000"
            )
            if source in self.sshd:
                server = self.sshd[source].server
                lines.append(
                    f'kind = "sftp"\nhost = "{server.host}"\nport = {server.port}\n'
                    f'username = "{server.username}"\nkey_file = "{server.client_key}"\n'
                    f'known_hosts = "{server.known_hosts}"\nremote_dir = "{server.root}"\n'
                    "timeout_seconds = 10"
                )
            else:
                lines.append(f'kind = "local"\npath = "{self.folders[source]}"')
        lines.append(f"[directory]\ngroups = {_toml_list(GROUPS)}\nroles = {_toml_list(ROLES)}")
        config = root / f"{name}.toml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def drop(self, drop: Drop) -> None:
        """Hand a file over as its sender does: the stock sftp client, or a copy."""
        if drop.source in self.sshd:
            server = self.sshd[drop.source].server
            sftp_put(server, drop.staged, str(server.root / drop.name))
        else:
            shutil.copyfile(drop.staged, self.folders[drop.source] / drop.name)
        drop.staged.unlink()

    def settled(self) -> dict[tuple[str, str], str]:
        """(source, settled name) -> processed | failed, for every source."""
        found = {}
        for source in ALL_SOURCES:
            for where in ("processed", "failed"):
                folder = self.drop_dir(source) / where
                if folder.is_dir():
                    found |= {(source, p.name): where for p in folder.iterdir()}
        return found

    def left(self) -> list[str]:
        """Files still in a drop folder."""
        return sorted(
            f"{s}/{p.name}" for s in ALL_SOURCES for p in self.drop_dir(s).iterdir() if p.is_file()
        )


Event = tuple[float, str, Drop | None]


def timeline(drops: list[Drop], seconds: float) -> list[Event]:
    """The drops, and when the relay (a fifth of the way in, for a quarter of the
    window) and `hr`'s sshd (half-way, for a tenth) go down and come back."""
    smtp_down = 0.2 * seconds
    sshd_down = 0.5 * seconds
    events: list[Event] = [(d.at, "drop", d) for d in drops]
    events += [
        (smtp_down, "smtp_stop", None),
        (smtp_down + max(20.0, 0.25 * seconds), "smtp_start", None),
        (sshd_down, "sshd_stop", None),
        (sshd_down + max(15.0, 0.1 * seconds), "sshd_start", None),
    ]
    return sorted(events, key=lambda e: e[0])


def play(
    rig: Rig, events: list[Event], clock: Callable[[], float], check: Callable[[], None]
) -> None:
    """Run the timeline on `clock` (seconds, events' times counted from its current
    reading), calling `check` before each event. Files for `hr` wait while its server
    is down and go once it is back, as an HR system retries."""
    began = clock()
    held_back: list[Drop] = []
    hr_down = False
    for at, what, drop in events:
        check()
        delay = began + at - clock()
        if delay > 0:
            time.sleep(delay)
        if what == "drop":
            assert drop is not None
            if drop.source == "hr" and hr_down:
                held_back.append(drop)
            else:
                rig.drop(drop)
        elif what == "smtp_stop":
            rig.relay.stop()
        elif what == "smtp_start":
            rig.relay.start()
        elif what == "sshd_stop":
            rig.sshd["hr"].stop()
            hr_down = True
        elif what == "sshd_start":
            rig.sshd["hr"].start()
            hr_down = False
            for waiting in held_back:
                rig.drop(waiting)
            held_back = []
