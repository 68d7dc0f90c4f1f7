"""`python -m bench`: run the scenarios and the comparison, print and save the tables.

Defaults: N = 100,000 and 1,000,000 on SQLite and PostgreSQL, then the comparison on
1,000,000 rows. `--quick` is a smoke run at N = 10,000. Progress goes to stderr, tables
to stdout, and the results to `bench/out/results.{json,md}`. The exit code is 0 unless
`--strict` is given and a target was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench import say
from bench.compare import Comparison, compare, expected_flags, ratios
from bench.generate import dirty, first_export
from bench.scenarios import (
    DIRTY_RATE,
    RSS_TARGET_MIB,
    Cluster,
    PostgresUnavailable,
    Result,
    failed,
    make_nights,
    postgres_cluster,
    run_scenarios,
)

DATABASES = ("sqlite", "postgresql")
OUT = Path(__file__).with_name("out")


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
        default=[100_000, 1_000_000],
        help="row counts, comma-separated (default 100000,1000000)",
    )
    parser.add_argument(
        "--databases",
        type=_databases,
        default=list(DATABASES),
        help="sqlite, postgresql or both (default both)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: N=10,000 only, comparison on 10,000 rows"
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
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [10_000]
        args.compare_rows = args.compare_rows or 10_000
    args.compare_rows = args.compare_rows or 1_000_000
    return args


def run_all_scenarios(args: argparse.Namespace, work: Path) -> list[Result]:
    """Every size on every database, each on a fresh database; one PostgreSQL cluster."""
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        cluster: Cluster | str | None = None
        for n in args.sizes:
            nights, timings = make_nights(n, work / f"n{n}")
            results.extend(timings)
            for database in args.databases:
                if database == "sqlite":
                    url = "sqlite:///var/syncd.db"
                else:
                    if cluster is None:
                        try:
                            cluster = stack.enter_context(postgres_cluster())
                        except (PostgresUnavailable, OSError, KeyError) as exc:
                            cluster = f"PostgreSQL did not start: {exc}"
                    if isinstance(cluster, str):
                        results.append(failed("all scenarios", n, database, cluster))
                        continue
                    url = cluster.fresh_database(f"syncd_bench_{n}")
                results.extend(run_scenarios(nights, database, url, work / f"n{n}-{database}"))
            shutil.rmtree(work / f"n{n}", ignore_errors=True)
    return results


def _cell(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def scenario_rows(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    header = ["scenario", "N", "database", "wall s", "peak RSS MiB", "target", "met?", "note"]
    rows = []
    for r in results:
        target = "" if r.target_seconds is None else f"<= {r.target_seconds:g} s, "
        target = f"{target}<= {RSS_TARGET_MIB:g} MiB" if r.peak_rss_mib is not None else "-"
        rows.append(
            [
                r.scenario,
                _cell(r.n),
                r.database,
                _cell(r.wall_seconds),
                _cell(r.peak_rss_mib, 0),
                target,
                _cell(r.met),
                r.note,
            ]
        )
    return header, rows


def comparison_rows(comparisons: list[Comparison]) -> tuple[list[str], list[list[str]]]:
    header = ["tool", "validation s", "process wall s", "peak RSS MiB", "rows flagged", "note"]
    return header, [
        [
            c.tool,
            _cell(c.seconds),
            _cell(c.wall_seconds),
            _cell(c.peak_rss_mib, 0),
            _cell(c.flagged_rows),
            c.note,
        ]
        for c in comparisons
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    say(f"working in {work}")
    results: list[Result] = []
    comparisons: list[Comparison] = []
    try:
        if not args.skip_scenarios:
            results = run_all_scenarios(args, work)
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

    sections: list[tuple[str, tuple[list[str], list[list[str]]]]] = []
    if results:
        sections.append(("Scenarios", scenario_rows(results)))
    if comparisons:
        sections.append(
            (f"Validation of the same {args.compare_rows:,}-row file", comparison_rows(comparisons))
        )
    notes = (
        [*ratios(comparisons), f"planted: {expected_flags(args.compare_rows, DIRTY_RATE)}"]
        if comparisons
        else []
    )
    for title, (header, rows) in sections:
        print(f"\n{title}\n\n{text_table(header, rows)}")
    print("\n" + "\n".join(notes))

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "when": stamp,
                "machine": info,
                "scenarios": [asdict(r) for r in results],
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
    for title, (header, rows) in sections:
        markdown += [f"## {title}", "", markdown_table(header, rows), ""]
    markdown += [f"- {note}" for note in notes]
    (args.out / "results.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    say(f"results written to {args.out}/results.json and results.md")
    missed = [r for r in results if r.met is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
