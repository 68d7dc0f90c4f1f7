"""The scaling plot: syncd's wall time and peak memory against the number of users.

Two panels on log-log axes, where time that grows in proportion to the users is a
straight line of slope 1 (ten times the users, ten times the time) and memory that grows
less than that is a flatter one. One line per scenario and database (a colour per
scenario; solid SQLite, dashed PostgreSQL), the anchors in grey on the time panel, the
memory targets as red dotted lines on the memory panel. Points are the medians of the
runs; a scenario that did not complete at a size has no point there.

matplotlib draws on its Agg canvas straight into the PNG: no screen, no pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.anchors import AnchorFigures
from bench.targets import MIB_1M, MIB_ABOVE_1M, SCENARIOS, Verdict

_ANCHOR_GREYS = ("#222222", "#777777", "#aaaaaa")
_LINESTYLE = {"sqlite": "-", "postgresql": "--"}


def _size_label(n: int) -> str:
    for unit, name in ((1_000_000, "M"), (1_000, "k")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{name}"
    return f"{n:,}"


def _two_three_five(value: float, _position: int) -> str:
    return f"{value:g}" if f"{value:.0e}"[0] in "235" else ""


def scaling_plot(
    verdicts: Sequence[Verdict], anchors: Sequence[AnchorFigures], path: Path, title: str
) -> Path:
    """Draw the plot into `path` (a PNG) and return it."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    figure = Figure(figsize=(14, 6.5), layout="constrained")
    time_axes, memory_axes = figure.subplots(1, 2)
    colours = {s: f"C{i}" for i, s in enumerate(SCENARIOS)}
    series: dict[tuple[str, str], list[Verdict]] = {}
    for verdict in verdicts:
        series.setdefault((verdict.scenario, verdict.database), []).append(verdict)
    for (scenario, database), points in series.items():
        points = sorted(points, key=lambda v: v.n)
        style = {
            "color": colours.get(scenario, "black"),
            "linestyle": _LINESTYLE.get(database, ":"),
            "marker": "o",
            "label": f"{scenario}, {database}",
        }
        timed = [(v.n, v.wall_seconds) for v in points if v.wall_seconds is not None]
        measured = [(v.n, v.peak_rss_mib) for v in points if v.peak_rss_mib is not None]
        if timed:
            time_axes.plot(*zip(*timed, strict=True), **style)
        if measured:
            memory_axes.plot(*zip(*measured, strict=True), **style)
    by_anchor: dict[str, list[AnchorFigures]] = {}
    for anchor in anchors:
        by_anchor.setdefault(anchor.anchor, []).append(anchor)
    for grey, (name, figures) in zip(_ANCHOR_GREYS, by_anchor.items(), strict=False):
        timed = sorted((a.n, a.seconds) for a in figures if a.seconds is not None)
        if timed:
            time_axes.plot(
                *zip(*timed, strict=True),
                color=grey,
                linestyle=":",
                linewidth=2.5,
                marker="s",
                label=f"anchor: {name} (in-process)",
            )
    sizes = sorted({v.n for v in verdicts} | {a.n for a in anchors})
    memory_axes.axhline(MIB_1M, color="red", linestyle=":", label="memory target, up to 1M")
    if sizes and sizes[-1] > 1_000_000:
        memory_axes.axhline(
            MIB_ABOVE_1M, color="darkred", linestyle=":", label="memory target, above 1M"
        )
    for axes, label in ((time_axes, "wall time, s"), (memory_axes, "peak RSS, MiB")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("users in the file")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        if sizes:
            axes.set_xticks(sizes, [_size_label(n) for n in sizes])
            axes.xaxis.set_minor_locator(NullLocator())
        # Plain figures (0.5, 2, 800) rather than powers of ten; between the powers, only
        # the 2s, 3s and 5s are labelled, or the labels run into each other.
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.yaxis.set_minor_formatter(FuncFormatter(_two_three_five))
    time_axes.set_title("Time (log-log: proportional growth is a line of slope 1)")
    memory_axes.set_title("Peak memory of the syncd process")
    handles, labels = time_axes.get_legend_handles_labels()
    extra = [
        (h, lab)
        for h, lab in zip(*memory_axes.get_legend_handles_labels(), strict=True)
        if lab not in labels
    ]
    figure.legend(
        [*handles, *(h for h, _ in extra)],
        [*labels, *(lab for _, lab in extra)],
        loc="outside right upper",
        fontsize="small",
    )
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
