"""syncd's validation beside other ways of checking the same file with the same rules.

The rules, as close as each tool can state them: employee ID required and unique, email
required and matching one pattern, status and role from their options, start date an
ISO date. The file is a dirty export (0.5% of rows broken in the ways `generate.dirty`
breaks them), so each tool's count of flagged rows shows how far its rules match.

Each contender runs in its own child process (`python -m bench.compare TOOL FILE`), so
its peak RSS is measured exactly and a crash is a result, not the end of the benchmark;
the child times only the validation itself, after its imports ("in-process"). syncd is
timed as a user runs it: the whole `syncd validate` command, start-up included. The
ratios compare that whole command with the others' in-process time, which flatters
them, not syncd.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from bench import Run, anchors, measure, say, syncd_command
from bench.generate import COLUMNS, DIRTY_KINDS, ROLES, planted_rows
from bench.scenarios import CONFIG, SOURCE

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
STATUSES = ["Active", "Archived"]
TOOLS = ("csv.reader", "pandera", "frictionless")


@dataclass(frozen=True, slots=True)
class Comparison:
    """One contender's figures on the file."""

    tool: str
    seconds: float | None  # the validation alone, in-process; the whole command for syncd
    wall_seconds: float | None
    peak_rss_mib: float | None
    flagged_rows: int | None
    note: str = ""


def csv_reader_pass(path: Path) -> int:
    """The floor, as the csv.reader anchor: parse every row and check nothing."""
    anchors.csv_reader_pass(path)
    return 0


def pandera_validation(path: Path) -> int:
    """pandera's polars backend: a DataFrameSchema with the rules as checks."""
    import pandera.polars as pa

    def iso_date(data: Any) -> Any:
        column = pl.col(data.key).str.to_date("%Y-%m-%d", strict=False)
        return data.lazyframe.select(column.is_not_null() | pl.col(data.key).is_null())

    schema = pa.DataFrameSchema(
        {
            "Employee ID": pa.Column(str, nullable=False, unique=True),
            "Primary Email": pa.Column(
                str, nullable=False, checks=pa.Check.str_matches(EMAIL_PATTERN)
            ),
            "Current Status": pa.Column(str, nullable=True, checks=pa.Check.isin(STATUSES)),
            "Role": pa.Column(str, nullable=True, checks=pa.Check.isin(list(ROLES))),
            "Start Date": pa.Column(str, nullable=True, checks=pa.Check(iso_date, name="iso_date")),
        }
    )
    frame = pl.read_csv(path, infer_schema=False)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return int(errors.failure_cases["index"].drop_nulls().n_unique())
    return 0


def frictionless_validation(path: Path) -> int:
    """frictionless 5: a Table Schema with constraints, every error collected."""
    from frictionless import Resource, Schema

    constrained: dict[str, dict[str, Any]] = {
        "Employee ID": {"constraints": {"required": True, "unique": True}},
        "Primary Email": {"constraints": {"required": True, "pattern": EMAIL_PATTERN[1:-1]}},
        "Current Status": {"constraints": {"enum": STATUSES}},
        "Role": {"constraints": {"enum": list(ROLES)}},
        "Start Date": {"type": "date"},
    }
    fields = [{"name": name, "type": "string", **constrained.get(name, {})} for name in COLUMNS]
    resource = Resource(
        path=path.name, basepath=str(path.parent), schema=Schema.from_descriptor({"fields": fields})
    )
    report = resource.validate(limit_errors=10**9)
    return len({e.row_number for e in report.tasks[0].errors if hasattr(e, "row_number")})


VALIDATORS = {
    "csv.reader": csv_reader_pass,
    "pandera": pandera_validation,
    "frictionless": frictionless_validation,
}


def _contender(tool: str, path: Path, workdir: Path) -> Comparison:
    say(f"compare: {tool} on {path.name}")
    # The child runs in the work directory, so it finds this package through PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = measure([sys.executable, "-m", "bench.compare", tool, str(path)], cwd=workdir, env=env)
    figures = run.json()
    if run.exit_code != 0 or figures is None:
        return Comparison(
            tool,
            None,
            run.wall_seconds,
            run.peak_rss_mib,
            None,
            f"exit {run.exit_code}: {run.stderr_tail()}",
        )
    say(f"compare: {tool} took {figures['seconds']:.2f} s")
    return Comparison(
        tool, figures["seconds"], run.wall_seconds, run.peak_rss_mib, figures["flagged"]
    )


def _syncd(path: Path, workdir: Path) -> list[Comparison]:
    config = workdir / "syncd.toml"
    shutil.copyfile(CONFIG, config)
    (workdir / "var" / "drop").mkdir(parents=True, exist_ok=True)
    base = [syncd_command(), "--config", str(config)]
    startup = measure([*base, "--version"], cwd=workdir)
    say("compare: syncd validate")
    run: Run = measure([*base, "validate", str(path), "--source", SOURCE, "--json"], cwd=workdir)
    counts = (run.json() or {}).get("counts") or {}
    ok = run.exit_code in (0, 1) and run.json() is not None
    return [
        Comparison(
            "syncd --version (start-up only)",
            startup.wall_seconds,
            startup.wall_seconds,
            startup.peak_rss_mib,
            None,
            "" if startup.exit_code == 0 else f"exit {startup.exit_code}",
        ),
        Comparison(
            "syncd validate",
            run.wall_seconds if ok else None,
            run.wall_seconds,
            run.peak_rss_mib,
            counts.get("invalid"),
            "" if ok else f"exit {run.exit_code}: {run.stderr_tail()}",
        ),
    ]


def compare(path: Path, workdir: Path, *, skip_frictionless: bool = False) -> list[Comparison]:
    """Every contender on `path`, then syncd; frictionless is the slow one (~40 s at 1M)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tools = [t for t in TOOLS if not (skip_frictionless and t == "frictionless")]
    return [*(_contender(tool, path, workdir) for tool in tools), *_syncd(path, workdir)]


def ratios(comparisons: list[Comparison]) -> list[str]:
    """Lines like "syncd 0.9 s = 0.64 x csv.reader (1.4 s)"."""
    syncd = next((c for c in comparisons if c.tool == "syncd validate"), None)
    if syncd is None or syncd.seconds is None:
        return ["syncd validate did not complete; no ratios"]
    return [
        f"syncd {syncd.seconds:.2f} s = {syncd.seconds / other.seconds:.2f} x {other.tool} "
        f"({other.seconds:.2f} s)"
        for other in comparisons
        if other.tool in TOOLS and other.seconds
    ]


def expected_flags(n: int, rate: float) -> str:
    """What a tool with all the rules should flag, for the notes under the table."""
    counts = planted_rows(n, rate)
    return ", ".join(f"{counts[kind]} {kind}" for kind in DIRTY_KINDS)


def _child(tool: str, path: Path) -> None:
    started = time.perf_counter()
    flagged = VALIDATORS[tool](path)
    print(json.dumps({"seconds": time.perf_counter() - started, "flagged": flagged}))


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]))
