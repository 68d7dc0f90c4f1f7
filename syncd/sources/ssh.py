"""An SSH connection to an SFTP server: the host key checked, the login, the SFTP session.

The server is trusted only if its host key is in the configured known_hosts (OpenSSH's
format, hashed entries included; a non-22 port is written `[host]:port`). A key that is
unknown or changed is refused before any credential is sent, and nothing is ever added to
known_hosts: the message names the key's type and fingerprint as `ssh-keygen -l` prints
them, so an admin can compare it with the server's own before adding it.

Every step has a timeout: connect, banner, key exchange, login, opening the SFTP session,
and each SFTP request afterwards (the channel's timeout). No secret ever reaches a message.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from syncd.errors import SourceError

#: Seconds between keepalives, so a firewall does not drop the connection between scans.
KEEPALIVE_SECONDS = 15
#: Errors that say the connection failed (an SFTP status error is an OSError too).
TRANSPORT_ERRORS = (paramiko.SSHException, OSError, EOFError)


class SftpRefused(SourceError):
    """The server answers, but not to what syncd is configured with: its host key is not
    the one in known_hosts, the login is refused, the remote folder is missing or holds a
    name that cannot be read. Someone must act; trying again later alone will not help."""

    exit_code = 78


@dataclass(frozen=True, slots=True)
class SftpLogin:
    """Where the server is, how it is recognised, and how to log in."""

    host: str
    port: int
    username: str
    known_hosts: Path
    key_file: Path | None = None
    passphrase: str | None = field(default=None, repr=False, compare=False)
    password: str | None = field(default=None, repr=False, compare=False)
    timeout: float = 30

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def reason(self, exc: BaseException) -> str:
        """What went wrong with a call, in a few words."""
        # paramiko wraps a timeout while reading the server's greeting in its own error
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        if isinstance(exc, EOFError) or "connection dropped" in str(exc).lower():
            return "the connection dropped"
        if isinstance(exc, OSError) and exc.strerror:
            return str(exc.strerror)
        return str(exc) or type(exc).__name__


def connect(login: SftpLogin) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    """An SFTP session with the server, once its host key matched and the login passed."""
    known = _known_hosts(login)
    sock = _socket(login)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = login.timeout
        transport.handshake_timeout = login.timeout
        transport.auth_timeout = login.timeout
        transport.channel_timeout = login.timeout
        _prefer_known_key_types(transport, known)
        # start_client(timeout=...) returns quietly when time is up; an event tells.
        negotiated = threading.Event()
        transport.start_client(event=negotiated)
        if not negotiated.wait(login.timeout):
            raise TimeoutError
        if not transport.is_active():
            raise transport.get_exception() or paramiko.SSHException("key exchange failed")
        _check_host_key(login, transport.get_remote_server_key(), known)
        _log_in(login, transport)
        transport.set_keepalive(KEEPALIVE_SECONDS)
        return transport, _open_sftp(login, transport)
    except BaseException as exc:
        # What stopped paramiko's own thread says more than what this one met after it
        # ("No existing session").
        cause = transport.get_exception() or exc
        transport.close()
        if isinstance(exc, TRANSPORT_ERRORS):
            what = f"cannot open an SSH session with {login.address}"
            raise SourceError(f"{what}: {login.reason(cause)}") from cause
        raise


def _socket(login: SftpLogin) -> socket.socket:
    try:
        sock = socket.create_connection((login.host, login.port), timeout=login.timeout)
    except socket.gaierror as exc:
        raise SourceError(
            f"cannot find the SFTP server {login.host}: {exc.strerror}; check host, and DNS"
        ) from exc
    except TimeoutError as exc:
        raise SourceError(
            f"the SFTP server {login.address} did not answer within {login.timeout:g} s; "
            "is it reachable from here (firewall, VPN)?"
        ) from exc
    except OSError as exc:
        raise SourceError(
            f"cannot connect to the SFTP server {login.address}: {exc.strerror}; is it "
            "running, and are host and port right?"
        ) from exc
    # Many small SFTP requests: waiting to fill packets (Nagle) would only add latency.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _open_sftp(login: SftpLogin, transport: paramiko.Transport) -> paramiko.SFTPClient:
    # Asking for the sftp subsystem waits without a timeout of its own: a timer closes
    # the connection if the server never answers, which ends the wait with an error.
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        transport.close()

    deadline = threading.Timer(login.timeout, expire)
    deadline.start()
    try:
        channel = transport.open_session(timeout=login.timeout)
        channel.settimeout(login.timeout)
        channel.invoke_subsystem("sftp")
        return paramiko.SFTPClient(channel)
    except paramiko.SSHException as exc:
        if expired.is_set():
            raise TimeoutError from exc
        raise
    finally:
        deadline.cancel()


# -- the host key


def host_entry(host: str, port: int) -> str:
    """The name known_hosts knows a server by: `host`, or `[host]:port` off port 22."""
    return host if port == 22 else f"[{host}]:{port}"


def _known_hosts(login: SftpLogin) -> Mapping[str, paramiko.PKey]:
    """The keys known_hosts holds for this server, by key type (none if it is not there)."""
    try:
        keys = paramiko.HostKeys(str(login.known_hosts))
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not a text file"
        raise SftpRefused(
            f"cannot read the known_hosts file {login.known_hosts}: {why}; write into it the "
            f"line `ssh-keyscan -p {login.port} {login.host}` prints, once its fingerprint "
            "matches the one the server's admin gives you"
        ) from None
    found: Mapping[str, paramiko.PKey] | None = keys.lookup(host_entry(login.host, login.port))
    return found or {}


def _prefer_known_key_types(
    transport: paramiko.Transport, known: Mapping[str, paramiko.PKey]
) -> None:
    """Ask first for the host key types known_hosts holds for this server, as OpenSSH
    does: a server with several host keys then shows the one we can check."""
    if not known:
        return
    options = transport.get_security_options()

    def family(algorithm: str) -> str:
        return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm

    first = [a for a in options.key_types if family(a) in known]
    options.key_types = first + [a for a in options.key_types if a not in first]


def key_kind(key: paramiko.PKey) -> str:
    """The key type as OpenSSH names it in messages: ED25519, RSA, ECDSA."""
    name: str = key.get_name()
    if name.startswith("ecdsa-"):
        return "ECDSA"
    return {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA"}.get(name, name)


def _check_host_key(
    login: SftpLogin, offered: paramiko.PKey, known: Mapping[str, paramiko.PKey]
) -> None:
    expected = known.get(offered.get_name())
    if expected is not None and expected.asbytes() == offered.asbytes():
        return
    kind, fingerprint = key_kind(offered), offered.fingerprint
    keyscan = f"ssh-keyscan -p {login.port} -t {kind.lower()} {login.host}"
    if not known:
        raise SftpRefused(
            f"the SFTP server {login.address} is not in {login.known_hosts}, so it is not "
            f"trusted: it offered the {kind} host key {fingerprint}. Compare this fingerprint "
            "with the one the server's admin gives you; if they match, add the line "
            f"`{keyscan}` prints to {login.known_hosts}"
        )
    was = ", ".join(f"{key_kind(k)} {k.fingerprint}" for k in known.values())
    raise SftpRefused(
        f"the host key of the SFTP server {login.address} has CHANGED: {login.known_hosts} "
        f"expects {was}, the server offered {kind} {fingerprint}. This may be an attack "
        "(someone between syncd and the server), or the server was reinstalled; nothing was "
        "sent to it. Ask the server's admin; only if they confirm the new fingerprint, "
        f"replace the server's line in {login.known_hosts} with the one `{keyscan}` prints"
    )


# -- the login


def _log_in(login: SftpLogin, transport: paramiko.Transport) -> None:
    """The key first, then the password, as OpenSSH tries them."""
    user, server = login.username, f"the SFTP server {login.address}"
    if login.key_file is not None:
        key = _load_key(login.key_file, login.passphrase)
        about = f"the key {login.key_file} ({key_kind(key)} {key.fingerprint})"
        try:
            more = transport.auth_publickey(user, key)
        except paramiko.AuthenticationException as exc:
            if login.password is None:
                raise SftpRefused(
                    f"{server} refused {about} for user {user}{_accepted(exc)}; add its public "
                    f"key to the authorized_keys of {user} on the server"
                ) from None
        else:
            if not more:
                return
            if login.password is None:
                raise SftpRefused(
                    f"{server} accepted {about} for user {user} but asks for more "
                    f"({', '.join(more)}); set password_env or password_file"
                )
    if login.password is None:
        raise SftpRefused("there is no key_file and no password to log in with")
    try:
        more = transport.auth_password(user, login.password)
    except paramiko.AuthenticationException as exc:
        raise SftpRefused(
            f"{server} refused the password of user {user}{_accepted(exc)}; check "
            "password_env or password_file"
        ) from None
    if more:
        raise SftpRefused(
            f"{server} accepted the password of user {user} but asks for more ({', '.join(more)})"
        )


def _load_key(path: Path, passphrase: str | None) -> paramiko.PKey:
    secret = None if passphrase is None else passphrase.encode("utf-8")
    try:
        return paramiko.PKey.from_path(path, secret)
    except OSError as exc:
        raise SftpRefused(
            f"cannot read the key file {path}: {exc.strerror}; check key_file"
        ) from None
    except TypeError:
        # cryptography's way of saying the key is encrypted and no passphrase was given
        raise SftpRefused(
            f"the key file {path} is protected by a passphrase, and none is configured; set "
            "passphrase_env or passphrase_file"
        ) from None
    except (ValueError, paramiko.SSHException, paramiko.pkey.UnknownKeyType):
        # Never the library's words: they do not help, and must not echo the secret.
        if secret is not None:
            raise SftpRefused(
                f"the key file {path} cannot be opened with the configured passphrase "
                "(passphrase_env or passphrase_file): the passphrase is wrong, or the file is "
                "not a private key"
            ) from None
        raise SftpRefused(
            f"the key file {path} is not a private key syncd can read (ed25519, RSA or ECDSA, "
            "in OpenSSH or PEM format)"
        ) from None


def _accepted(exc: paramiko.AuthenticationException) -> str:
    if isinstance(exc, paramiko.BadAuthenticationType):
        return f" (it accepts only: {', '.join(exc.allowed_types)})"
    return ""
