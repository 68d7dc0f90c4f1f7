"""`python -m bench --quick` end to end: anchors, ratios, verdicts, results and the plot.

One small run (10,000 users, one run, SQLite only, no comparison) of the real harness
driving the real `syncd` command, as `make bench` does at full size.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The bench's quick run with --strict, its results in a folder of the test's own."""
    out = tmp_path_factory.mktemp("bench-out")
    command = [
        sys.executable, "-m", "bench", "--quick", "--databases", "sqlite", "--skip-compare",
        "--strict", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    return done, out


def _results(out: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return results


def test_a_quick_run_meets_every_verdict_and_says_so(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """--strict exits 0 only when every scenario's exit code, counts and memory are right."""
    done, _ = quick_run
    assert done.returncode == 0, done.stderr[-2000:]
    for title in ("Anchors (median of 1 run)", "Scenarios (median of 1 run"):
        assert title in done.stdout
    assert "ratio" in done.stdout
    assert "time ok?" in done.stdout
    assert "memory ok?" in done.stdout


def test_the_anchors_are_measured_on_the_same_rows(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """csv.reader and the SQLite floor each ran on the 10,000 rows, without a problem."""
    anchors = {a["anchor"]: a for a in _results(quick_run[1])["anchors"]}
    assert set(anchors) == {"csv.reader", "SQLite floor"}
    for anchor in anchors.values():
        assert anchor["n"] == 10_000
        assert anchor["note"] == ""
        assert anchor["seconds"] > 0


def test_every_scenario_has_its_ratio_to_its_anchor(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Six scenarios, each a ratio of syncd's wall time to its anchor's seconds; no time
    target at 10,000 users, memory held to 1 GiB. The first load is held to the run's
    SQLite floor; the others to a csv.reader pass timed just before each of them."""
    results = _results(quick_run[1])
    anchors = {a["anchor"]: a["seconds"] for a in results["anchors"]}
    verdicts = results["scenarios"]
    assert [v["scenario"] for v in verdicts] == [
        "validate clean", "validate dirty", "first load", "no-change", "churn", "dirty night",
    ]  # fmt: skip
    for verdict in verdicts:
        assert verdict["met"], verdict
        assert verdict["anchor_seconds"] > 0
        assert verdict["ratio"] == pytest.approx(
            verdict["wall_seconds"] / verdict["anchor_seconds"]
        )
        assert verdict["target_ratio"] is None
        assert verdict["memory_target_mib"] == 1024
    first_load = next(v for v in verdicts if v["scenario"] == "first load")
    assert first_load["anchor"] == "SQLite floor"
    assert first_load["anchor_seconds"] == anchors["SQLite floor"]
    paired = {v["anchor_seconds"] for v in verdicts if v["anchor"] == "csv.reader"}
    assert len(paired) > 1  # five passes of their own, not the run's one figure
    dirty = next(v for v in verdicts if v["scenario"] == "validate dirty")
    assert dirty["note"].startswith("errors CSV written")


def test_the_scaling_plot_is_a_real_png(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """bench/out/scaling.png (here in the test's folder) is a PNG of a readable size."""
    out = quick_run[1]
    assert _results(out)["plot"] == "scaling.png"
    data = (out / "scaling.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000
    assert height >= 500
    assert "![Wall time and peak memory against users](scaling.png)" in (
        out / "results.md"
    ).read_text(encoding="utf-8")
