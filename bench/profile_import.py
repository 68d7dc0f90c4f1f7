"""Where a million-user `syncd import` spends its time and memory, stage by stage.

`python -m bench.profile_import [--rows N] [--database sqlite|postgresql] [FILE ...]`
runs `syncd.flow.run_job` on each file in turn against one fresh database (without FILEs:
the bench's first load, no-change and churn nights, generated once into `--data`). Each
file runs in its own process, as `syncd import` would, so its peak RSS is its own. For
every stage it prints the seconds, the resident memory after it and, for the store's and
the planner's functions, their own time; then the status, the counts, the wall time and
the peak RSS (`ru_maxrss`) of the job. "peak +N MiB" is how far above its starting RSS a
function took the process (the kernel's high-water mark, reset before the call).

`--py-spy DIR` records each job with py-spy (raw folded stacks, `DIR/<file>.txt`) for
a look at what the numbers do not say.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import syncd  # noqa: F401  (sets polars' allocator options in the jobs' environment)
from bench import say
from bench.scenarios import CONFIG, SQLITE_URL, make_nights, postgres_cluster

NIGHTS = ("first.csv", "first_reordered.csv", "night2_churn.csv")
STORE_CALLS = (
    "lock_directory",
    "snapshot",
    "details",
    "apply_plan",
    "hold_plan",
    "add_row_errors",
    "retain_file",
    "finish_job",
)
JOB_CALLS = ("fingerprint", "match", "candidates", "build_plan", "errors_csv_bytes")


def rss_mib() -> int:
    """The resident memory of this process now, in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20


_EARLIER_PEAK_KIB = [0]  # the peak before the last `reset_peak`


def peak_mib() -> float:
    """The peak resident memory of this process so far, in MiB (Linux: KiB units)."""
    now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(now, _EARLIER_PEAK_KIB[0]) / 1024


def reset_peak() -> None:
    """Start measuring the peak resident memory afresh (Linux: `VmHWM`, which is also
    what `ru_maxrss` reads, so the peak so far is kept aside first)."""
    _EARLIER_PEAK_KIB[0] = round(peak_mib() * 1024)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")


def recent_peak_mib() -> int:
    """The peak resident memory since `reset_peak`, in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def _timed(owner: Any, name: str, label: str) -> None:
    """Replace `owner.name` with a wrapper that prints its own time and the RSS after
    (nothing when the module no longer has that name)."""
    inner: Callable[..., Any] | None = getattr(owner, name, None)
    if inner is None:
        return

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = rss_mib()
        reset_peak()
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            took = time.perf_counter() - started
            peak = recent_peak_mib() - before
            print(
                f"       {label}.{name:<16} {took:6.2f} s   rss {rss_mib():5d} MiB"
                f"   peak +{peak} MiB",
                flush=True,
            )

    setattr(owner, name, wrapper)


def run_one(config_path: Path, path: Path) -> None:
    """Run one job on `path` in this process, printing stage times and memory."""
    import syncd.flow as jobs_module
    import syncd.store as store_module
    from syncd.config import load_config
    from syncd.intake import Drop
    from syncd.runtime import open_runtime

    for name in STORE_CALLS:
        _timed(store_module, name, "store")
    for name in JOB_CALLS:
        _timed(jobs_module, name, "jobs")
    config = load_config(config_path, {})
    runtime = open_runtime(config, {})
    source = config.source("hr")
    started = last = time.perf_counter()
    print(f"  {path.name}: start rss {rss_mib()} MiB", flush=True)

    def progress(stage: str) -> None:
        nonlocal last
        now = time.perf_counter()
        peak = recent_peak_mib()  # since the previous stage began
        print(
            f"    -> {stage:<12} +{now - last:6.2f} s   rss {rss_mib():5d} MiB"
            f"   (peak before it {peak} MiB)",
            flush=True,
        )
        reset_peak()
        last = now

    drop = Drop(path.name, path.read_bytes(), path=path)  # as `syncd import` reads it
    outcome = jobs_module.run_job(runtime, source, drop, progress=progress)
    progress("done")  # the time since the last stage: recording the job and the commit
    took = time.perf_counter() - started
    counts = {k: v for k, v in outcome.counts.as_dict().items() if v}
    print(f"  {path.name}: {outcome.status} {counts}", flush=True)
    print(f"  {path.name}: {took:.2f} s, peak rss {peak_mib():.0f} MiB", flush=True)
    runtime.engine.dispose()


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database's URL: a file under `workdir`, or a throwaway PostgreSQL cluster."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'var' / 'syncd.db'}"
        return
    with postgres_cluster() as cluster:
        yield cluster.fresh_database("syncd_profile")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_import", description=__doc__.splitlines()[0]
    )
    parser.add_argument("files", nargs="*", type=Path, help="exports to import, in order")
    parser.add_argument("--rows", type=int, default=1_000_000, help="size of generated nights")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--data", type=Path, help="where generated nights are kept")
    parser.add_argument("--py-spy", type=Path, help="record each job with py-spy into DIR")
    parser.add_argument("--one", nargs=2, type=Path, help=argparse.SUPPRESS)  # CONFIG FILE
    args = parser.parse_args(argv)
    if args.one:
        run_one(*args.one)
        return 0
    files: list[Path] = args.files
    if not files:
        data = args.data or Path(tempfile.gettempdir()) / f"syncd-profile-{args.rows}"
        if not all((data / name).is_file() for name in NIGHTS):
            make_nights(args.rows, data)
        files = [data / name for name in NIGHTS]
    with tempfile.TemporaryDirectory(prefix="syncd-profile-") as tmp:
        workdir = Path(tmp)
        (workdir / "var" / "drop").mkdir(parents=True)
        with database(args.database, workdir) as url:
            config = workdir / "syncd.toml"
            text = CONFIG.read_text(encoding="utf-8").replace(SQLITE_URL, f'url = "{url}"')
            config.write_text(text, encoding="utf-8")
            for path in files:
                command = [sys.executable, "-m", "bench.profile_import", "--one", str(config)]
                command.append(str(path.resolve()))
                if args.py_spy:
                    args.py_spy.mkdir(parents=True, exist_ok=True)
                    spy = Path(sys.executable).with_name("py-spy")
                    out = args.py_spy / f"{path.stem}.txt"
                    record = [str(spy), "record", "--idle", "-f", "raw", "-o", str(out), "--"]
                    command = [*record, *command]
                say(f"importing {path.name} on {args.database}")
                root = Path(__file__).resolve().parent.parent
                # A PYTHONPATH given wins (e.g. another copy of syncd to compare with).
                search = [os.environ.get("PYTHONPATH", ""), str(root)]
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, search))}
                subprocess.run(command, cwd=workdir, env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
