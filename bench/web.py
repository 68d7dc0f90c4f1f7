"""The back office under a million-row job: how fast the page of a job with 5,000 row
errors answers, and how much memory uploading the 140 MB file adds to the daemon until
its job starts.

`python -m bench.web` makes a million-row HR export with 0.5% of its rows broken
(`bench.generate`: 5,000 rows with errors), imports it with `syncd import` (the job
whose page is timed), then starts `syncd run` with its back office on a free loopback
port and, as a logged-in admin over real HTTP:

- asks for the job's page (the first page of its row errors), then page 50 of its row
  errors, and the row-error part htmx swaps in, `--requests` times each after one
  warm-up: median, 95th percentile and slowest, in milliseconds;
- uploads the same file through the upload form (streamed by the client) and opens its
  column mapping, sampling the daemon's resident memory every 20 ms from before the
  upload until the mapping page answered: the peak above what it used before. Nothing
  after that is measured: the preview is the job itself, and reads the file whole.

Figures go to stdout and to bench/out/web.json; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.daemon import _rss_mib
from bench.generate import dirty, first_export

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"
SYNCD = Path(sys.executable).with_name("syncd")
PASSWORD = "benchmark password"
CONFIG_EXTRA = '\n[web]\nlisten = "127.0.0.1:{port}"\n'


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _syncd(root: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SYNCD), "--config", str(root / "syncd.toml"), *map(str, args)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _timed(client: httpx.Client, url: str, count: int, **kwargs: object) -> dict[str, float]:
    client.get(url, **kwargs).raise_for_status()  # type: ignore[arg-type]
    took = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(url, **kwargs)  # type: ignore[arg-type]
        took.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    took.sort()
    return {
        "median_ms": round(statistics.median(took), 1),
        "p95_ms": round(took[min(len(took) - 1, int(len(took) * 0.95))], 1),
        "max_ms": round(took[-1], 1),
    }


class _Peak(threading.Thread):
    """The highest resident memory of a process while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, _rss_mib(self.pid))
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--again", action="store_true", help="Reuse the last run's file and job.")
    args = parser.parse_args()

    root = OUT / "web"
    export = root / "export.csv"
    port = _free_port()
    config = (ROOT / "config" / "sqlite.toml").read_text(encoding="utf-8") + CONFIG_EXTRA.format(
        port=port
    )
    imported_s = float("nan")
    if args.again:
        (root / "syncd.toml").write_text(config, encoding="utf-8")
        shutil.rmtree(root / "var" / "uploads", ignore_errors=True)
        job = json.loads(_syncd(root, "jobs", "list", "--limit", "1", "--json").stdout)[0]
    else:
        shutil.rmtree(root, ignore_errors=True)
        (root / "var").mkdir(parents=True)
        (root / "syncd.toml").write_text(config, encoding="utf-8")
        print(f"generating {args.rows:,} rows (0.5% broken)...", flush=True)
        export.write_bytes(dirty(first_export(args.rows, seed=7), rate=0.005, seed=7))
        print("importing it with syncd import...", flush=True)
        started = time.perf_counter()
        job = json.loads(_syncd(root, "import", export, "--source", "hr", "--json").stdout)
        imported_s = time.perf_counter() - started
        (root / "password").write_text(PASSWORD + "\n", encoding="utf-8")
        add = ("web", "user", "add", "bench", "--role", "admin", "--password-file")
        _syncd(root, *add, root / "password").check_returncode()
    size_mb = export.stat().st_size / 1e6
    job_id, errors = job["job_id"], job["counts"]["invalid"]

    log = (root / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(SYNCD), "--config", str(root / "syncd.toml"), "run"],
        cwd=root,
        stderr=log,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while b"web_listening" not in (root / "daemon.log").read_bytes():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((root / "daemon.log").read_text())
            time.sleep(0.2)
        client = httpx.Client(base_url=url, headers={"Origin": url}, timeout=600)
        client.post("/login", data={"name": "bench", "password": PASSWORD})
        pages = {
            "job page (row errors page 1)": _timed(client, f"/jobs/{job_id}", args.requests),
            "job page, row errors page 50": _timed(
                client, f"/jobs/{job_id}", args.requests, params={"page": 50}
            ),
            "row errors part (htmx), page 50": _timed(
                client,
                f"/jobs/{job_id}/errors",
                args.requests,
                params={"page": 50},
                headers={"HX-Request": "true"},
            ),
        }

        time.sleep(2)
        before = _rss_mib(daemon.pid)
        peak = _Peak(daemon.pid)
        peak.start()
        started = time.perf_counter()
        with export.open("rb") as handle:
            answer = client.post(
                "/upload",
                data={"source": "hr", "mode": "partial"},
                files={"file": ("export.csv", handle, "text/csv")},
                follow_redirects=False,
            )
        upload_s = time.perf_counter() - started
        location = answer.headers.get("location", "")
        if not re.fullmatch(r"/uploads/[A-Za-z0-9_-]{16}", location):
            raise SystemExit(f"the upload was not taken: {answer.status_code} {answer.text[:500]}")
        client.get(location).raise_for_status()
        peak.done.set()
        peak.join()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()

    results = {
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "row_errors": errors,
        "import_s": round(imported_s, 1),
        "pages": pages,
        "upload": {
            "seconds": round(upload_s, 1),
            "daemon_rss_before_mib": round(before, 1),
            "daemon_rss_peak_mib": round(peak.peak, 1),
            "extra_mib": round(peak.peak - before, 1),
        },
    }
    (OUT / "web.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(
        f"\n{args.rows:,} rows, {size_mb:.0f} MB, {errors:,} rows with errors "
        f"(imported in {imported_s:.1f} s)"
    )
    print(f"{'request':36} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for name, figures in pages.items():
        print(f"{name:36} {figures['median_ms']:>10} {figures['p95_ms']:>8} {figures['max_ms']:>8}")
    up = results["upload"]
    print(
        f"\nupload of {size_mb:.0f} MB through the form: {up['seconds']} s; daemon RSS "  # type: ignore[index]
        f"{up['daemon_rss_before_mib']} MiB before, peak {up['daemon_rss_peak_mib']} MiB, "  # type: ignore[index]
        f"extra {up['extra_mib']} MiB until the mapping page"
    )  # type: ignore[index]


if __name__ == "__main__":
    main()
