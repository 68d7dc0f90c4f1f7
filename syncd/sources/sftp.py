"""An SFTP server as a source: files in `remote_dir`, settled into remote processed/ or failed/.

What connecting involves (the host key checked against known_hosts, never added; the
login; timeouts on every step) is `syncd.sources.ssh`. This module keeps one connection per
source across calls; any transport error (a timeout, a dropped connection, a protocol
error) closes it and raises SourceError, and the next call connects again.

Stock `sftp`/`scp` write straight to the final name, so a file is listed complete only once
its size and mtime (whole seconds over SFTP) stayed the same for `settle_seconds`, or its
`NAME.done` marker exists when the source asks for markers. A sender's name is joined to
the remote folders only: the spool names what it receives, settled names come from
`settled_name`.
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import paramiko
import structlog

from syncd.config import SourceConfig
from syncd.core.limits import MAX_BYTES
from syncd.errors import ConfigError, SourceError
from syncd.sources import (
    OtherNames,
    RemoteFile,
    Settling,
    is_candidate,
    marker_name,
    settled_name,
)
from syncd.sources.settling import SettleTracker
from syncd.sources.spool import FileChanged, Spool, Spooled
from syncd.sources.ssh import TRANSPORT_ERRORS, SftpLogin, SftpRefused, connect

__all__ = ["SftpLogin", "SftpRefused", "SftpSource"]

log = structlog.get_logger("syncd.sources.sftp")

#: Bytes asked of each read; paramiko splits them into pipelined 32 KiB SFTP requests.
CHUNK = 1024 * 1024


class SftpSource:
    """A folder on an SFTP server, over one connection kept across calls."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int = 22,
        username: str,
        known_hosts: Path,
        key_file: Path | None = None,
        passphrase: str | None = None,
        password: str | None = None,
        remote_dir: str = ".",
        processed_dir: str,
        failed_dir: str,
        pattern: str = "*.csv",
        settle_seconds: float = 10,
        markers: bool = False,
        settling: Settling = "move",
        cap: int = MAX_BYTES,
        timeout: float = 30,
    ) -> None:
        self.name = name
        self.login = SftpLogin(
            host=host,
            port=port,
            username=username,
            known_hosts=known_hosts,
            key_file=key_file,
            passphrase=passphrase,
            password=password,
            timeout=timeout,
        )
        self.remote_dir = remote_dir
        self.processed_dir = processed_dir
        self.failed_dir = failed_dir
        self.pattern = pattern
        self.markers = markers
        self.settling: Settling = settling
        self.cap = cap
        self._tracker = SettleTracker(settle_seconds)
        self._other_names = OtherNames(name, pattern)
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @classmethod
    def from_config(cls, config: SourceConfig, env: Mapping[str, str], cap: int) -> SftpSource:
        """The source an `[[sources]]` entry of kind sftp describes, its secrets read now."""
        if config.host is None or config.username is None or config.known_hosts is None:
            raise ConfigError(f"source {config.name} is not an sftp source")
        return cls(
            config.name,
            host=config.host,
            port=config.port,
            username=config.username,
            known_hosts=config.known_hosts,
            key_file=config.key_file,
            passphrase=config.passphrase(env),
            password=config.password(env),
            remote_dir=config.remote_dir or ".",
            processed_dir=config.processed_dir,
            failed_dir=config.failed_dir,
            pattern=config.pattern,
            settle_seconds=config.settle_seconds,
            markers=config.markers,
            settling=config.settle,
            cap=cap,
            timeout=config.timeout_seconds,
        )

    # -- the Source contract

    def list_complete(self, now: float) -> list[RemoteFile]:
        listing = self.candidates()
        if self.markers:
            return sorted(listing.values(), key=lambda f: f.order)
        return self._tracker.complete(listing, now)

    def candidates(self) -> dict[str, RemoteFile]:
        """The regular files of `remote_dir` that may be taken, complete or not (with
        markers: only those whose `NAME.done` exists)."""
        sftp = self._session()
        with self._remote(f"cannot list {self.remote_dir}"):
            try:
                entries = sftp.listdir_attr(self.remote_dir)
            except (FileNotFoundError, PermissionError) as exc:
                raise SftpRefused(
                    f"cannot list {self.remote_dir} on {self.login.address}: {exc.strerror}; check "
                    f"remote_dir, and that {self.login.username} may read it"
                ) from None
            except UnicodeDecodeError:
                # paramiko reads names as UTF-8 and gives up on the whole listing otherwise
                self._drop()
                raise SftpRefused(
                    f"cannot list {self.remote_dir} on {self.login.address}: a file name in it "
                    "is not UTF-8; rename or remove that file (`ls` on the server shows it)"
                ) from None
        names = {e.filename for e in entries}
        listing: dict[str, RemoteFile] = {}
        files = [
            e.filename
            for e in entries
            if e.st_mode is not None and stat.S_ISREG(e.st_mode) and "/" not in e.filename
        ]
        self._other_names.note(files)
        for entry in entries:
            if entry.st_mode is None or not stat.S_ISREG(entry.st_mode):
                continue
            if "/" in entry.filename or not is_candidate(entry.filename, self.pattern):
                continue
            if self.markers and f"{entry.filename}.done" not in names:
                continue
            listing[entry.filename] = RemoteFile(
                entry.filename, entry.st_size or 0, float(entry.st_mtime or 0)
            )
        return listing

    @property
    def waiting(self) -> bool:
        """Whether some file was seen but has not settled yet (another look is due)."""
        return self._tracker.waiting

    def fetch(self, file: RemoteFile, spool: Spool, spooled_name: str) -> Spooled:
        sftp = self._session()
        path = self._path(file.name)
        with self._remote(f"cannot read {path}"):
            try:
                handle = sftp.open(path, "rb")
            except FileNotFoundError:
                raise FileChanged(
                    f"{file.name} vanished before it could be read; nothing was applied"
                ) from None
        try:
            with self._remote(f"cannot read {path}"):
                before = handle.stat()
                if (before.st_size, before.st_mtime) != (file.size, file.mtime):
                    raise FileChanged(_changed(file.name))
                # Reads are pipelined up to what the cap lets through, so a file over the
                # cap is read just past it and no request is left unanswered.
                _quiet_prefetch(handle)
                handle.prefetch(min(file.size, self.cap + 1))
            spooled = spool.receive(spooled_name, self._chunks(handle, path), cap=self.cap)
        finally:
            with suppress(*TRANSPORT_ERRORS):
                handle.close()
        try:
            with self._remote(f"cannot read {path}"):
                try:
                    after = sftp.stat(path)
                except FileNotFoundError:
                    raise FileChanged(_changed(file.name)) from None
                if spooled.size != file.size or (after.st_size, after.st_mtime) != (
                    file.size,
                    file.mtime,
                ):
                    raise FileChanged(_changed(file.name))
        except BaseException:
            spooled.discard()
            raise
        return spooled

    def settle(
        self, file: RemoteFile, job_id: str, ok: bool, replacement: bytes | None = None
    ) -> str:
        sftp = self._session()
        source = self._path(file.name)
        with self._remote(f"cannot settle {source}"):
            try:
                now = sftp.stat(source)
            except FileNotFoundError:
                raise FileChanged(f"{source} is no longer on the server") from None
            if (now.st_size, float(now.st_mtime or 0)) != (file.size, file.mtime):
                # Written again since its job took it: the new file is a job of its own.
                raise FileChanged(
                    f"{source} was written again after its job took it; the new file is "
                    "left for a job of its own"
                )
            if self.settling == "delete":
                with suppress(FileNotFoundError):
                    sftp.remove(source)
                target = "deleted"
            else:
                folder = self.processed_dir if ok else self.failed_dir
                self._make_folder(sftp, folder)
                target = posixpath.join(folder, settled_name(file.name, job_id))
                if replacement is None:
                    self._rename(sftp, source, target)
                    # What is settled is people's data: readable by syncd's account alone.
                    sftp.chmod(target, 0o600)
                else:
                    # Named by the job, not the file: a name near 255 bytes has no room
                    # for more.
                    temporary = posixpath.join(folder, f".{job_id}.tmp")
                    with sftp.open(temporary, "wb") as out:
                        out.set_pipelined(True)
                        # Private before the first byte: the replacement had secrets blanked,
                        # but the rest of the file is still people's data.
                        out.chmod(0o600)
                        out.write(replacement)
                    self._rename(sftp, temporary, target)
                    sftp.remove(source)
            marker = marker_name(file.name) if self.markers else None
            if marker is not None:
                with suppress(FileNotFoundError):
                    sftp.remove(self._path(marker))
        self._tracker.forget(file.name)
        return target

    def close(self) -> None:
        self._drop()

    # -- the connection

    def _session(self) -> paramiko.SFTPClient:
        """The open SFTP session, or a new one if there is none or it broke."""
        if self._sftp is not None and self._transport is not None and self._transport.is_active():
            return self._sftp
        self._drop()
        self._transport, self._sftp = connect(self.login)
        log.info("sftp_connected", source=self.name, server=self.login.address)
        return self._sftp

    def _drop(self) -> None:
        sftp, transport = self._sftp, self._transport
        self._sftp = self._transport = None
        if sftp is not None:
            with suppress(*TRANSPORT_ERRORS):
                sftp.close()
        if transport is not None:
            transport.close()

    @contextmanager
    def _remote(self, what: str) -> Iterator[None]:
        """Turn a failed remote call into SourceError, dropping the connection: the next
        call connects again."""
        try:
            yield
        except SourceError:
            raise
        except TRANSPORT_ERRORS as exc:
            self._drop()
            raise SourceError(f"{what} on {self.login.address}: {self.login.reason(exc)}") from exc

    # -- remote paths

    def _path(self, name: str) -> str:
        return posixpath.join(self.remote_dir, name)

    def _make_folder(self, sftp: paramiko.SFTPClient, folder: str) -> None:
        """Create `folder` and its missing parents (0700); another daemon may race us."""
        try:
            if stat.S_ISDIR(sftp.stat(folder).st_mode or 0):
                return
            raise SftpRefused(
                f"{folder} on {self.login.address} is not a folder; check its setting"
            )
        except FileNotFoundError:
            pass
        parent = posixpath.dirname(folder.rstrip("/"))
        if parent and parent != folder:
            self._make_folder(sftp, parent)
        try:
            sftp.mkdir(folder, mode=0o700)
        except PermissionError:
            raise SftpRefused(
                f"cannot create {folder} on {self.login.address}: permission denied; create it "
                f"for {self.login.username}, or let {self.login.username} create it"
            ) from None
        except OSError as exc:
            # OpenSSH answers a plain failure when the folder exists: made by a peer just now.
            if exc.errno is not None or isinstance(exc, TimeoutError):
                raise
            if not stat.S_ISDIR(sftp.stat(folder).st_mode or 0):
                raise

    def _rename(self, sftp: paramiko.SFTPClient, old: str, new: str) -> None:
        """POSIX rename (OpenSSH's extension, atomic, replaces), else plain SFTP rename."""
        try:
            sftp.posix_rename(old, new)
        except OSError as exc:
            # Only a request the server turned down without a reason (OpenSSH answers an
            # unknown extension so) is worth another try; a timeout or a missing file is not.
            if exc.errno is not None or isinstance(exc, TimeoutError):
                raise
            sftp.rename(old, new)

    def _chunks(self, handle: paramiko.SFTPFile, path: str) -> Iterator[bytes]:
        while True:
            with self._remote(f"cannot read {path}"):
                chunk = handle.read(CHUNK)
            if not chunk:
                return
            yield chunk


def _quiet_prefetch(handle: paramiko.SFTPFile) -> None:
    """paramiko queues prefetched reads from a thread of its own, which fails too when the
    connection drops, and its traceback would reach stderr. The reader meets the same
    failure on its next read (or reads what was not queued itself), so the thread's goes.
    Should paramiko rename the method, this only brings the traceback back."""
    queue = getattr(handle, "_prefetch_thread", None)
    if queue is None:
        return

    def quietly(*args: object) -> None:
        with suppress(*TRANSPORT_ERRORS):
            queue(*args)

    handle._prefetch_thread = quietly


def _changed(name: str) -> str:
    return (
        f"{name} changed while it was being read; nothing was applied, and it is taken "
        "again once it stays the same"
    )
