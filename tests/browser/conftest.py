"""The back office in a real browser: Debian's headless Chromium, driven by Playwright,
on the back office of a real `syncd run` daemon.

Playwright drives `/usr/bin/chromium` (installed by `make test`, as the Debian package
`chromium`); its own browser downloads are never used. One browser per module; each
test gets a fresh browser context (no cookies). A test that fails leaves a screenshot
of its page in `tests/browser/screenshots/` (ignored by git).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e.cli import spawn, syncd
from tests.servers import free_port
from tests.web.conftest import people as people

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).with_name("screenshots")
PASSWORD = "a long enough password"
START_SECONDS = 60
#: How long the browser waits for any one thing on a page.
WAIT_MS = 15_000

CONFIG = """
state_dir = "{root}/var"

[database]
url = "sqlite:///{root}/syncd.db"

[web]
listen = "127.0.0.1:{port}"

[[sources]]
name = "hr"
kind = "local"
path = "{root}/drop-hr"
profile = "default"
mode = "full"
notify = ["it@example.com"]
settle_seconds = 0.5

[[sources]]
name = "uploads"
kind = "local"
path = "{root}/drop-uploads"
profile = "default"
mode = "partial"
settle_seconds = 0.5
"""


@dataclass
class BackOffice:
    """A daemon serving the back office, its configuration and working folder."""

    root: Path
    config: Path
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def cli(self, *args: str | Path, expect: int | None = 0) -> str:
        """Run `syncd --config CONFIG ARGS...` as an admin on the server would."""
        done = syncd("--config", self.config, *args, cwd=self.root)
        if expect is not None:
            assert done.code == expect, f"{args}: {done.code}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def job(self, source: str, text: str, name: str, *extra: str, expect: int = 0) -> str:
        """Import `text` as file `name` with the CLI; the job ID it printed."""
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        out = self.cli("import", path, "--source", source, "--json", *extra, expect=expect)
        job_id: str = json.loads(out)["job_id"]
        return job_id


def _wait(what: str, done: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not done():
        if process.poll() is not None:
            pytest.fail(f"the daemon exited before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def back_office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackOffice]:
    """`syncd run` with [web] listen on a free port, two accounts made with the CLI."""
    root = tmp_path_factory.mktemp("office")
    port = free_port()
    config = root / "syncd.toml"
    config.write_text(CONFIG.format(root=root, port=port), encoding="utf-8")
    (root / "password").write_text(PASSWORD + "\n", encoding="utf-8")
    office = BackOffice(root, config, f"http://127.0.0.1:{port}", None, root / "daemon.log")  # type: ignore[arg-type]
    office.cli("web", "user", "add", "ada", "--role", "admin", "--password-file", root / "password")
    office.cli(
        "web", "user", "add", "sam", "--role", "support", "--password-file", root / "password"
    )
    with office.log.open("wb") as stderr:
        office.process = spawn("--config", config, "run", cwd=root, stderr=stderr)
    try:
        _wait(
            "the back office listened",
            lambda: '"web_listening"' in office.log.read_text(),
            office.process,
            office.log,
        )
        yield office
    finally:
        office.process.send_signal(signal.SIGTERM)
        try:
            office.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            office.process.kill()
            office.process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright (never `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield launched
        launched.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Keep each phase's report on the test, so its page fixture knows it failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) whose pages are screenshot if the test fails."""
    made = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    made.set_default_timeout(WAIT_MS)
    yield made
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(exist_ok=True)
        for index, page in enumerate(made.pages):
            page.screenshot(path=SCREENSHOTS / f"{request.node.name}-{index}.png", full_page=True)
    made.close()


def log_in(context: BrowserContext, office: BackOffice, name: str, path: str = "/jobs") -> Page:
    """A page of `context`, logged in as `name` through the login form, at `path`."""
    page = context.new_page()
    page.goto(f"{office.url}{path}")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{office.url}{path}*")
    return page
