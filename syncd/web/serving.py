"""Serving the back office with uvicorn: in the foreground (`syncd web`) or in a thread
of the daemon (`syncd run` with `[web] listen`).

The socket is bound before uvicorn starts, so an address in use is an error the caller
sees at once. uvicorn's access log is off (URLs may name people: the audit log says
what was done), and it never reads X-Forwarded-* headers: `syncd.web.access` decides
whom to believe.
"""

from __future__ import annotations

import socket
import threading

import uvicorn
from starlette.types import ASGIApp

from syncd.errors import ConfigError


def bind(listen: str) -> socket.socket:
    """A listening socket on `host:port` (port 0: any free port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"the back office cannot listen on {listen}: {exc.strerror}",
            ["web.listen: choose a free address, e.g. 127.0.0.1:8080"],
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _server(app: ASGIApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""
    _server(app).run(sockets=[sock])


class Background:
    """The back office served from a thread of the daemon."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        self.sock = sock
        self.server = _server(app)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
