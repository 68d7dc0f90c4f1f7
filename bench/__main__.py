"""`python -m bench`: anchors and scenarios per size, the verdicts, the tables and the plot.

Defaults: N = 100,000, 1,000,000 and 5,000,000 on SQLite and PostgreSQL, three runs of
everything (each figure is the median), then the comparison on 1,000,000 rows.
`--quick` is a smoke run at N = 10,000, one run. Each run measures the anchors on the
first export, then runs the scenarios on each database, so a machine that slows down
during the benchmark slows anchors and syncd alike. Progress goes to stderr, tables to
stdout, and the results to `bench/out/results.{json,md}` and `bench/out/scaling.png`.
The exit code is 0 unless `--strict` is given and a verdict is "no".
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from bench import say
from bench.anchors import AnchorFigures, AnchorRun, run_anchor, summarize
from bench.compare import Comparison, compare, expected_flags, ratios
from bench.generate import dirty, first_export
from bench.scenarios import (
    DIRTY_RATE,
    Cluster,
    Generated,
    PostgresUnavailable,
    make_nights,
    postgres_cluster,
    run_scenarios,
)
from bench.tables import (
    Table,
    anchor_rows,
    comparison_rows,
    generated_rows,
    markdown_table,
    text_table,
    verdict_rows,
)
from bench.targets import (
    CSV_READER,
    POSTGRES_FLOOR,
    SCENARIOS,
    SQLITE_FLOOR,
    Sample,
    Verdict,
    judge,
)

DATABASES = ("sqlite", "postgresql")
OUT = Path(__file__).with_name("out")
DEFAULT_SIZES = [100_000, 1_000_000, 5_000_000]
# One name each, dropped and made again for every run: only one run's data at a time.
SCENARIO_DATABASE, FLOOR_DATABASE = "syncd_bench", "syncd_bench_floor"


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of row counts, e.g. 100000,1000000"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive row counts")
    return sizes


def _runs(text: str) -> int:
    try:
        runs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of runs") from None
    if runs < 1:
        raise argparse.ArgumentTypeError("runs must be at least 1")
    return runs


def _databases(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(DATABASES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"databases are {', '.join(DATABASES)}; got {text!r}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        help="row counts, comma-separated (default 100000,1000000,5000000)",
    )
    parser.add_argument(
        "--databases",
        type=_databases,
        default=list(DATABASES),
        help="sqlite, postgresql or both (default both)",
    )
    parser.add_argument(
        "--runs",
        type=_runs,
        default=None,
        help="runs of every anchor and scenario; figures are their medians (default 3)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: N=10,000 only, one run unless --runs, comparison on 10,000 rows",
    )
    parser.add_argument(
        "--compare-rows",
        type=int,
        default=None,
        help="rows of the comparison file (default 1,000,000)",
    )
    parser.add_argument(
        "--skip-frictionless",
        action="store_true",
        help="leave frictionless out of the comparison (~40 s at 1M rows)",
    )
    parser.add_argument("--skip-compare", action="store_true", help="no comparison")
    parser.add_argument("--skip-scenarios", action="store_true", help="comparison only")
    parser.add_argument("--out", type=Path, default=OUT, help="where results go (bench/out)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a verdict is no")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [10_000]
        args.compare_rows = args.compare_rows or 10_000
        args.runs = args.runs or 1
    args.runs = args.runs or 3
    args.compare_rows = args.compare_rows or 1_000_000
    return args


@dataclass(slots=True)
class Measured:
    """Everything the scenarios part of a benchmark run found, size by size."""

    generated: list[Generated] = field(default_factory=list)
    anchors: list[AnchorFigures] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)


def _anchors_wanted(databases: list[str]) -> list[str]:
    """csv.reader always; each database's floor when its first load runs."""
    floors = {"sqlite": SQLITE_FLOOR, "postgresql": POSTGRES_FLOOR}
    return [CSV_READER, *(floors[d] for d in databases)]


def measure_size(
    n: int, args: argparse.Namespace, work: Path, cluster: Cluster | str | None
) -> Measured:
    """One size: its nights once, then per run the anchors and every database's scenarios.

    `cluster` is the PostgreSQL cluster, or why it did not start.
    """
    nights, generated = make_nights(n, work / f"n{n}")
    anchor_runs: dict[str, list[AnchorRun]] = {a: [] for a in _anchors_wanted(args.databases)}
    samples: dict[tuple[str, str], list[Sample]] = {}
    for number in range(1, args.runs + 1):
        say(f"run {number} of {args.runs} at N={n:,}")
        rundir = work / f"n{n}-run{number}"
        for anchor, runs in anchor_runs.items():
            target = str(rundir / "anchors" / "floor.db")  # the SQLite floor's database
            if anchor == POSTGRES_FLOOR:
                url, problem = _fresh(cluster, FLOOR_DATABASE)
                if url is None or not isinstance(cluster, Cluster):
                    runs.append(AnchorRun(anchor, n, None, None, None, problem))
                    continue
                target = cluster.conninfo(FLOOR_DATABASE)
            runs.append(run_anchor(anchor, nights.first, n, rundir / "anchors", target))
        for database in args.databases:
            url, problem = (
                ("sqlite:///var/syncd.db", "")
                if database == "sqlite"
                else _fresh(cluster, SCENARIO_DATABASE)
            )
            if url is None:
                for scenario in SCENARIOS:
                    samples.setdefault((scenario, database), []).append(
                        Sample(None, None, (problem,))
                    )
                continue
            got = run_scenarios(nights, database, url, rundir / database)
            for scenario, sample in got.items():
                samples.setdefault((scenario, database), []).append(sample)
        if not args.keep:
            # A run's databases and errors CSVs go before the next; at 5M, gigabytes.
            shutil.rmtree(rundir, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(work / f"n{n}", ignore_errors=True)
    anchors = [summarize(a, n, runs) for a, runs in anchor_runs.items()]
    medians = {a.anchor: a.seconds for a in anchors}
    verdicts = [
        judge(scenario, n, database, samples.get((scenario, database), []), medians)
        for database in args.databases
        for scenario in SCENARIOS
    ]
    return Measured(generated, anchors, verdicts)


def _fresh(cluster: Cluster | str | None, name: str) -> tuple[str | None, str]:
    """A fresh PostgreSQL database `name`: its URL, or None and why there is none."""
    if not isinstance(cluster, Cluster):
        return None, str(cluster)
    try:
        return cluster.fresh_database(name), ""
    except psycopg.Error as exc:
        return None, f"PostgreSQL: {exc}"


def measure_all(args: argparse.Namespace, work: Path) -> Measured:
    """Every size in turn; one PostgreSQL cluster for all of them."""
    measured = Measured()
    compile_syncd()
    with contextlib.ExitStack() as stack:
        cluster: Cluster | str | None = None
        if "postgresql" in args.databases:
            try:
                cluster = stack.enter_context(postgres_cluster())
            except (PostgresUnavailable, OSError, KeyError) as exc:
                cluster = f"PostgreSQL did not start: {exc}"
        for n in args.sizes:
            size = measure_size(n, args, work, cluster)
            measured.generated += size.generated
            measured.anchors += size.anchors
            measured.verdicts += size.verdicts
    return measured


def compile_syncd() -> None:
    """Write syncd's bytecode before any command is timed, as installing a package does.

    An editable install compiles each module on its first import and keeps the result;
    where PYTHONDONTWRITEBYTECODE is set it would compile every module again in every
    command (about 0.07 s each), a cost no installed syncd pays.
    """
    spec = importlib.util.find_spec("syncd")
    if spec is not None and spec.origin is not None:
        compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def machine() -> dict[str, object]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        # Timings on a busy machine are not comparable; the load says how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def sections(
    args: argparse.Namespace, measured: Measured, comparisons: list[Comparison]
) -> list[tuple[str, Table]]:
    """The tables of a run, titled, in the order they are printed."""
    runs = _median_of(args.runs)
    out: list[tuple[str, Table]] = []
    if measured.generated:
        out.append(("Generated files", generated_rows(measured.generated)))
    if measured.anchors:
        out.append((f"Anchors ({runs})", anchor_rows(measured.anchors)))
    if measured.verdicts:
        out.append((f"Scenarios ({runs}; syncd's whole process)", verdict_rows(measured.verdicts)))
    if comparisons:
        title = f"Validation of the same {args.compare_rows:,}-row file"
        out.append((title, comparison_rows(comparisons)))
    return out


def _median_of(runs: int) -> str:
    return f"median of {runs} run{'s' if runs > 1 else ''}"


def draw(measured: Measured, out: Path, title: str) -> str:
    """The scaling plot's file name in `out`, or why there is none."""
    if not measured.verdicts:
        return ""
    try:
        from bench.plot import scaling_plot
    except ImportError:  # matplotlib is in the bench extra; `make bench` installs it
        return "no plot: matplotlib is not installed (pip install -e '.[bench]')"
    path = scaling_plot(measured.verdicts, measured.anchors, out / "scaling.png", title)
    return path.name


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    say(f"working in {work}")
    measured = Measured()
    comparisons: list[Comparison] = []
    try:
        if not args.skip_scenarios:
            measured = measure_all(args, work)
        if not args.skip_compare:
            say(
                f"generating the comparison file: {args.compare_rows:,} rows, "
                f"{DIRTY_RATE:.1%} dirty"
            )
            path = work / "compare" / "compare.csv"
            path.parent.mkdir(parents=True)
            path.write_bytes(dirty(first_export(args.compare_rows, 11), DIRTY_RATE, 12))
            comparisons = compare(path, work / "compare", skip_frictionless=args.skip_frictionless)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    tables = sections(args, measured, comparisons)
    notes = (
        [*ratios(comparisons), f"planted: {expected_flags(args.compare_rows, DIRTY_RATE)}"]
        if comparisons
        else []
    )
    for title, table in tables:
        print(f"\n{title}\n\n{text_table(table)}")
    if notes:
        print("\n" + "\n".join(notes))

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    plot = draw(
        measured,
        args.out,
        f"syncd, {stamp}: {_median_of(args.runs)}, {info['cpus']} CPUs",
    )
    if plot:
        say(f"plot: {args.out / plot}" if plot.endswith(".png") else plot)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "when": stamp,
                "machine": info,
                "runs": args.runs,
                "generated": [asdict(g) for g in measured.generated],
                "anchors": [asdict(a) for a in measured.anchors],
                "scenarios": [asdict(v) for v in measured.verdicts],
                "plot": plot,
                "comparison": {
                    "rows": args.compare_rows,
                    "tools": [asdict(c) for c in comparisons],
                    "ratios": ratios(comparisons) if comparisons else [],
                },
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    described = ", ".join(f"{key} {value}" for key, value in info.items())
    markdown = [f"# syncd benchmark, {stamp}", "", f"Machine: {described}", ""]
    for title, table in tables:
        markdown += [f"## {title}", "", markdown_table(table), ""]
    if plot.endswith(".png"):
        markdown += [f"![Wall time and peak memory against users]({plot})", ""]
    markdown += [f"- {note}" for note in notes]
    (args.out / "results.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    say(f"results written to {args.out}/results.json and results.md")
    missed = [v for v in measured.verdicts if not v.met]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
