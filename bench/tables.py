"""The tables `python -m bench` prints and writes: inputs, anchors, scenarios, comparison.

Each table is a header and rows of strings, rendered as aligned text for the terminal
and as Markdown for `bench/out/results.md`.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.anchors import AnchorFigures
from bench.compare import Comparison
from bench.scenarios import Generated
from bench.targets import Verdict

Table = tuple[list[str], list[list[str]]]


def cell(value: object, digits: int = 2) -> str:
    """A figure as the tables show it: yes/NO for verdicts, "-" for nothing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def generated_rows(generated: Sequence[Generated]) -> Table:
    header = ["file", "N", "generated in s", "MB"]
    return header, [[g.file, cell(g.n), cell(g.seconds), cell(g.megabytes, 0)] for g in generated]


def anchor_rows(anchors: Sequence[AnchorFigures]) -> Table:
    header = ["anchor", "N", "s (in-process)", "process wall s", "peak RSS MiB", "note"]
    return header, [
        [
            a.anchor,
            cell(a.n),
            cell(a.seconds),
            cell(a.wall_seconds),
            cell(a.peak_rss_mib, 0),
            a.note,
        ]
        for a in anchors
    ]


def verdict_rows(verdicts: Sequence[Verdict]) -> Table:
    header = [
        "scenario", "N", "database", "wall s", "anchor", "anchor s", "ratio", "target",
        "time ok?", "peak RSS MiB", "RSS target", "memory ok?", "met?", "note",
    ]  # fmt: skip
    return header, [
        [
            v.scenario,
            cell(v.n),
            v.database,
            cell(v.wall_seconds),
            v.anchor,
            cell(v.anchor_seconds),
            "-" if v.ratio is None else f"{v.ratio:.2f} x",
            "-" if v.target_ratio is None else f"<= {v.target_ratio:g} x",
            cell(v.time_met),
            cell(v.peak_rss_mib, 0),
            f"<= {v.memory_target_mib:g} MiB",
            cell(v.memory_met),
            cell(v.met),
            v.note,
        ]
        for v in verdicts
    ]


def comparison_rows(comparisons: Sequence[Comparison]) -> Table:
    header = ["tool", "validation s", "process wall s", "peak RSS MiB", "rows flagged", "note"]
    return header, [
        [
            c.tool,
            cell(c.seconds),
            cell(c.wall_seconds),
            cell(c.peak_rss_mib, 0),
            cell(c.flagged_rows),
            c.note,
        ]
        for c in comparisons
    ]


def text_table(table: Table) -> str:
    header, rows = table
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(table: Table) -> str:
    header, rows = table

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])
