"""The one exception hierarchy; each class carries the exit code the CLI maps it to.

Exit codes follow the CLI contract: 2 file rejected, 64 bad usage, 69 a service
unreachable, 78 bad configuration. Problems are lists of sentences a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable


class SyncdError(Exception):
    """Base of every error syncd raises on purpose; printed without a traceback."""

    exit_code = 70

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[str, ...] = tuple(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return "\n".join([self.message, *(f"  - {p}" for p in self.problems)])


class UsageError(SyncdError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = 64


class ConfigError(SyncdError):
    """The configuration is invalid; `problems` names every broken key at once."""

    exit_code = 78


class FileRejected(SyncdError):
    """The whole file is rejected: nothing of it is applied."""

    exit_code = 2


class ServiceUnavailable(SyncdError):
    """A database, SFTP or SMTP server could not be reached."""

    exit_code = 69


class SourceError(ServiceUnavailable):
    """A source (SFTP server, local folder) failed while listing, fetching or settling."""


class JobNotFound(UsageError):
    """No job has the ID that was asked for."""


class JobStateError(UsageError):
    """The job is not in a state that allows the asked action (approve a job not held...)."""
