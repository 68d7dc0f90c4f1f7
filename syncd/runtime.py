"""The one place that wires adapters: config -> engine, clock, entropy, secret.

Nothing connects at import time; `open_runtime` is called by the CLI and the daemon once,
and tests build a `Runtime` with their own clock.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from syncd.config import Config
from syncd.errors import ConfigError
from syncd.store import ensure_schema, make_engine


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    """What a job needs from the outside world."""

    config: Config
    engine: Engine
    secret: bytes
    clock: Callable[[], datetime] = utc_now
    entropy: Callable[[int], bytes] = secrets.token_bytes

    @property
    def errors_dir(self) -> Path:
        return self.config.state_dir / "errors"


def load_secret(config: Config, env: Mapping[str, str]) -> bytes:
    """The key that tags passwords (see `core.passwords`): env var, file, or a new file.

    Kept out of the database on purpose: a stolen database alone cannot be used to test
    password guesses against the tags.
    """
    if config.secret_env and env.get(config.secret_env):
        return env[config.secret_env].encode("utf-8")
    path = config.secret_file or config.state_dir / "secret"
    try:
        if path.exists():
            return path.read_bytes().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        value = secrets.token_hex(32).encode("ascii")
        with os.fdopen(fd, "wb") as handle:
            handle.write(value)
        return value
    except OSError as exc:
        raise ConfigError(
            "the password-tag secret cannot be read or created",
            [f"secret_file: {path}: {exc.strerror}; set secret_file or secret_env"],
        ) from exc


def open_runtime(config: Config, env: Mapping[str, str] | None = None) -> Runtime:
    """Connect to the database (creating the schema on an empty one) and load the secret."""
    environ = os.environ if env is None else env
    engine = make_engine(config.database.url)
    ensure_schema(engine)
    return Runtime(config=config, engine=engine, secret=load_secret(config, environ))
