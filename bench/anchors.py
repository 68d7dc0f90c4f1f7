"""The anchors: the plainest ways to read and store the same file, measured in each run.

Every time target is a ratio to one of these (see `bench.targets`), measured on the same
first export and the same machine minutes apart from syncd, so a slow day slows both:

- **csv.reader**: a standard-library `csv.reader` pass over the file, nothing done per row;
- **SQLite floor**: `executemany` of the file's rows (12 strings each, in memory before
  the clock starts) into a WAL table with unique indexes on key and email, in one
  transaction, committed, with the pragmas syncd's engine gives every connection;
- **PostgreSQL floor**: `COPY` of the same rows into such a table on the bench's
  throwaway cluster, committed.

Each runs in a child process (`python -m bench.anchors ANCHOR FILE [DATABASE]`), which
times only the pass or the load itself ("in-process", after its imports and, for the
floors, after reading the rows into memory) and then counts what it wrote: a floor that
stored fewer rows than the file holds is a problem, not a fast result.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import measure, say
from bench.targets import ANCHORS, CSV_READER, POSTGRES_FLOOR, SQLITE_FLOOR, median

#: What syncd's engine sets on each SQLite connection (syncd/store/engine.py), so the
#: floor is the same database under the same durability: WAL, synchronous=NORMAL.
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "cache_size=-32768",
    "temp_store=FILE",
)
_FLOOR_COLUMNS = ("key", "email", *(f"c{i}" for i in range(2, 12)))
_CREATE = "CREATE TABLE users ({})".format(
    ", ".join(f"{name} TEXT{' NOT NULL' if i < 2 else ''}" for i, name in enumerate(_FLOOR_COLUMNS))
)
_INDEXES = (
    "CREATE UNIQUE INDEX users_key ON users (key)",
    "CREATE UNIQUE INDEX users_email ON users (email)",
)
# Columns that differ on every row; the others (names, roles, dates...) repeat, and their
# cells share one string each, so the rows of 5M users take ~1.7 GB in memory, not ~4.4.
_UNIQUE_HEADERS = frozenset({"Employee ID", "Primary Email", "Phone"})


def csv_reader_pass(path: Path) -> int:
    """Parse every row with the standard library and do nothing with it; the data rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for _row in reader:
            pass
        # The generated exports have no line breaks inside cells: lines are records.
        return max(reader.line_num - 1, 0)


def read_rows(path: Path) -> list[tuple[str, ...]]:
    """The file's data rows as tuples of strings, repeated values shared."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        shared = [name not in _UNIQUE_HEADERS for name in next(reader, [])]
        pool: dict[str, str] = {}
        keep = pool.setdefault
        return [
            tuple(
                keep(cell, cell) if repeats else cell
                for cell, repeats in zip(row, shared, strict=True)
            )
            for row in reader
        ]


def sqlite_floor(path: Path, database: Path) -> tuple[float, int]:
    """Seconds to insert the rows in one committed transaction; the rows stored."""
    rows = read_rows(path)
    database.unlink(missing_ok=True)
    conn = sqlite3.connect(database)
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        conn.execute(_CREATE)
        for index in _INDEXES:
            conn.execute(index)
        conn.commit()
        insert = f"INSERT INTO users VALUES ({', '.join('?' * len(_FLOOR_COLUMNS))})"
        started = time.perf_counter()
        conn.executemany(insert, rows)  # pysqlite begins the transaction before the insert
        conn.commit()
        seconds = time.perf_counter() - started
        stored: int = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()
    return seconds, stored


def postgres_floor(path: Path, conninfo: str) -> tuple[float, int]:
    """Seconds to COPY the rows in and commit; the rows stored."""
    import psycopg

    rows = read_rows(path)
    with psycopg.connect(conninfo) as conn:
        conn.execute("DROP TABLE IF EXISTS users")
        conn.execute(_CREATE)
        for index in _INDEXES:
            conn.execute(index)
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy("COPY users FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        found = conn.execute("SELECT count(*) FROM users").fetchone()
    return seconds, int(found[0]) if found else 0


@dataclass(frozen=True, slots=True)
class AnchorRun:
    """One run of one anchor; `seconds` is in-process, `wall_seconds` the whole child."""

    anchor: str
    n: int
    seconds: float | None
    wall_seconds: float | None
    peak_rss_mib: float | None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class AnchorFigures:
    """An anchor's medians over the runs of one size, for the anchors table."""

    anchor: str
    n: int
    runs: int
    seconds: float | None
    wall_seconds: float | None
    peak_rss_mib: float | None
    note: str
    all_seconds: tuple[float, ...] = ()


def run_anchor(anchor: str, path: Path, n: int, workdir: Path, target: str = "") -> AnchorRun:
    """Run one anchor on `path` in a child process; `target` is the floor's database."""
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"anchor: {anchor}, N={n:,}")
    # The child runs in the work directory, so it finds this package through PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "bench.anchors", anchor, str(path), target]
    run = measure(command, cwd=workdir, env=env)
    figures = run.json()
    if run.exit_code != 0 or figures is None:
        problem = f"exit {run.exit_code}: {run.stderr_tail()}"
        return AnchorRun(anchor, n, None, run.wall_seconds, run.peak_rss_mib, problem)
    seconds, rows = float(figures["seconds"]), int(figures["rows"])
    say(f"anchor: {anchor} took {seconds:.2f} s")
    problem = "" if rows == n else f"{rows:,} rows, expected {n:,}"
    return AnchorRun(
        anchor,
        n,
        None if problem else seconds,
        run.wall_seconds,
        run.peak_rss_mib,
        problem,
    )


def summarize(anchor: str, n: int, runs: Sequence[AnchorRun]) -> AnchorFigures:
    """The medians of an anchor's runs; each problem said once."""
    problems = list(dict.fromkeys(r.problem for r in runs if r.problem))
    seconds = tuple(r.seconds for r in runs if r.seconds is not None)
    return AnchorFigures(
        anchor,
        n,
        len(runs),
        median(seconds),
        median(r.wall_seconds for r in runs),
        median(r.peak_rss_mib for r in runs),
        "; ".join(problems),
        seconds,
    )


def _child(anchor: str, path: Path, target: str) -> None:
    if anchor == CSV_READER:
        started = time.perf_counter()
        rows = csv_reader_pass(path)
        seconds = time.perf_counter() - started
    elif anchor == SQLITE_FLOOR:
        seconds, rows = sqlite_floor(path, Path(target))
    elif anchor == POSTGRES_FLOOR:
        seconds, rows = postgres_floor(path, target)
    else:
        sys.exit(f"anchors are {', '.join(ANCHORS)}; got {anchor!r}")
    print(json.dumps({"seconds": seconds, "rows": rows}))


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
