"""The one place that wires adapters: config -> engine, clock, entropy, secret.

Nothing connects at import time. Commands that write (`import`, `run`, `jobs approve`)
call `open_runtime`, which creates what a first run needs: the database's folder, its
schema, the password-tag secret. Commands that only read call `open_reader`, which creates
nothing at all and says what to run when there is nothing to read yet. Tests build a
`Runtime` with their own clock.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from syncd.config import Config
from syncd.errors import ConfigError, ServiceUnavailable
from syncd.private import private_folder
from syncd.store import ensure_schema, make_engine, require_schema, sqlite_file


def utc_now() -> datetime:
    return datetime.now(UTC)


class _LoadedOnce:
    """A field holding bytes, or a function that gives them on first read (then kept)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"

    def __get__(self, instance: object | None, owner: type | None = None) -> bytes:
        if instance is None:
            raise AttributeError(self._slot)  # the dataclass field has no default
        value: bytes | Callable[[], bytes] = instance.__dict__[self._slot]
        if not isinstance(value, bytes):
            value = value()
            instance.__dict__[self._slot] = value
        return value

    def __set__(self, instance: object, value: bytes | Callable[[], bytes]) -> None:
        instance.__dict__[self._slot] = value


# No generated repr or ==: they would show the secret, and load it.
@dataclass(frozen=True, repr=False, eq=False)
class Runtime:
    """What a job needs from the outside world.

    `secret` may be given as the bytes, or as a function that loads them the first time
    `rt.secret` is read: a command that only reads never needs them, so never looks.
    """

    config: Config
    engine: Engine
    secret: _LoadedOnce = _LoadedOnce()
    clock: Callable[[], datetime] = utc_now
    entropy: Callable[[int], bytes] = secrets.token_bytes

    @property
    def errors_dir(self) -> Path:
        return self.config.state_dir / "errors"

    def __repr__(self) -> str:
        return f"Runtime(config={self.config.path or 'embedded defaults'}, engine={self.engine!r})"


def load_secret(config: Config, env: Mapping[str, str], *, create: bool = True) -> bytes:
    """The key that tags passwords (see `core.passwords`): env var, file, or a new file.

    Kept out of the database on purpose: a stolen database alone cannot be used to test
    password guesses against the tags. `create=False` never makes the file or its folder.
    """
    if config.secret_env and env.get(config.secret_env):
        return env[config.secret_env].encode("utf-8")
    path = config.secret_file or config.state_dir / "secret"
    try:
        if path.exists() or not create:
            return path.read_bytes().strip()
        private_folder(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        value = secrets.token_hex(32).encode("ascii")
        with os.fdopen(fd, "wb") as handle:
            handle.write(value)
        return value
    except OSError as exc:
        doing = "read or created" if create else "read"
        raise ConfigError(
            f"the password-tag secret cannot be {doing}",
            [f"secret_file: {path}: {exc.strerror}; set secret_file or secret_env"],
        ) from exc


def open_runtime(config: Config, env: Mapping[str, str] | None = None) -> Runtime:
    """Connect to the database (creating the schema on an empty one) and load the secret."""
    environ = os.environ if env is None else env
    engine = make_engine(config.database.url)
    ensure_schema(engine)
    if engine.dialect.name == "sqlite":
        # Whoever writes takes SQLite's write lock when its transaction begins: a
        # transaction that reads first and writes later (a scan claiming a file) would
        # otherwise be refused at once, not made to wait, while another one writes.
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    return Runtime(config=config, engine=engine, secret=load_secret(config, environ))


def open_reader(config: Config, env: Mapping[str, str] | None = None) -> Runtime:
    """The runtime of a command that only reads: no folder, file, schema or secret created.

    A SQLite file that is not there is a `ServiceUnavailable` naming it and what to run; a
    database without the schema this syncd needs is a `ConfigError` saying `syncd db
    upgrade`. The secret is read (never created) only if something asks for it.
    """
    environ = dict(os.environ if env is None else env)
    origin = f"from {config.path}" if config.path else "from the embedded defaults"
    path = sqlite_file(config.database.url)
    if path is not None and not path.exists():
        raise ServiceUnavailable(
            f"no database at {path} ({origin}): run `syncd import` or `syncd run` first, "
            "or point --config at the right configuration"
        )
    engine = make_engine(config.database.url, create=False)
    where = str(path) if path is not None else _shown(config.database.url)
    require_schema(engine, f"{where} ({origin})")
    return Runtime(
        config=config,
        engine=engine,
        secret=lambda: load_secret(config, environ, create=False),
    )


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
