"""Tracebacks and error descriptions that hold no secret and no row of a file.

A traceback's frames (file, line, function) say where something failed; what is left
out is what the errors quote of the data they were handed: a database error's statement
parameters (a refused INSERT quotes the row it refused, password hash included) and
PostgreSQL's DETAIL, CONTEXT and HINT lines (the values of a broken constraint, the line
of a COPY), and a polars error's message (the cells it could not convert). No frame's
local variables are ever shown. Kept apart from `syncd.logs` so the CLI can install
its `excepthook` without loading structlog.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType

#: Libraries whose errors quote the data they were handed: database drivers and
#: SQLAlchemy (the statement's parameters, the refused row) and polars (cells).
_DATABASE = frozenset({"sqlalchemy", "sqlite3", "psycopg", "psycopg2"})
_FRAMES = frozenset({"polars"})

#: What Python prints between an exception and the one it led to.
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def describe(exc: BaseException) -> str:
    """`Type: message`, safe for a log line, a job's message and a report: a database
    error's message is cut to its first line (the driver's words, without the statement
    and its parameters, or PostgreSQL's DETAIL, CONTEXT and HINT), and a polars error's
    message is left out."""
    name = type(exc).__name__
    library = type(exc).__module__.partition(".")[0]
    message = str(exc)
    if library in _DATABASE:
        message = message.strip().splitlines()[0] if message.strip() else ""
    elif library in _FRAMES:
        message = "(its message may quote the file's cells and is left out)"
    return f"{name}: {message}" if message else name


def safe_traceback(exc_info: ExcInfo) -> str:
    """The traceback of `exc_info` and of the exceptions that led to it, as Python
    prints them, but with each exception's message as `describe` gives it."""
    chain: list[tuple[BaseException, str]] = []
    exc: BaseException | None = exc_info[1]
    link = ""
    while exc is not None and all(exc is not seen for seen, _ in chain):
        chain.append((exc, link))
        if exc.__cause__ is not None:
            exc, link = exc.__cause__, _CAUSE
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc, link = exc.__context__, _CONTEXT
        else:
            exc = None
    parts: list[str] = []
    for each, link in reversed(chain):
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(each.__traceback__))
        module = type(each).__module__
        where = "" if module in ("builtins", "__main__") else f"{module}."
        parts.append(f"{where}{describe(each)}\n")
        if link:
            parts.append(link)
    return "".join(parts)


def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """`sys.excepthook`: an exception nothing caught is printed as `safe_traceback` does."""
    sys.stderr.write(safe_traceback((kind, exc, tb)))
