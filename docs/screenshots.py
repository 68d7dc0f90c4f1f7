"""The README's pictures of the back office, taken with Debian's headless Chromium.

`.venv/bin/python docs/screenshots.py` makes a demo in a temporary folder with the real
`syncd` command (an HR source, a file with row errors, a held file, an upload), serves
it with `syncd run`, and saves docs/back-office-*.png.
"""

from __future__ import annotations

import re
import sys
import tempfile
import unicodedata
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CONFIG,
    LAUNCH_ARGS,
    PASSWORD,
    BackOffice,
    people,
)
from tests.e2e.cli import spawn  # noqa: E402
from tests.servers import free_port  # noqa: E402

HR = "Employee ID,Email,First Name,Last Name,Role,Groups\r\n"
NAMES = [
    ("Zoë", "Kowalczyk"),
    ("José", "Núñez"),
    ("Björn", "Åström"),
    ("Chloé", "Dubois"),
    ("Siobhán", "O'Brien"),
    ("Jürgen", "Hoffmann"),
    ("Małgorzata", "Nowak"),
    ("Camille", "Rousseau"),
    ("Ngọc", "Nguyễn"),
    ("Søren", "Jørgensen"),
]


def _hr(count: int) -> str:
    rows = []
    for i in range(count):
        first, last = NAMES[i % len(NAMES)]
        plain = unicodedata.normalize("NFKD", f"{first[0]}.{last}{i}").encode("ascii", "ignore")
        email = plain.decode().lower().replace("'", "") + "@example.com"
        rows.append(f"E-{1000 + i},{email},{first},{last},User,")
    return HR + "\r\n".join(rows) + "\r\n"


def _fixes() -> str:
    return (
        "Email,First Name,Last Name,Role\r\n"
        "ana.kovac@example.hr,Ana,Kovač,User\r\n"
        "bruno.costa@example,Bruno,Costa,User\r\n"
        "lucia.ferrari@example.it,Lucia,Ferrari,Boss\r\n"
        ",Henrik,Larsen,User\r\n"
        "<script>alert(1)</script>,Mallory,Test,User\r\n"
        "ines.garcia@example.es,Inés,García,Admin\r\n"
    )


def _shoot(page: Page, name: str) -> None:
    page.screenshot(path=DOCS / f"back-office-{name}.png", full_page=False)
    print(f"docs/back-office-{name}.png")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="syncd-shots-"))
    port = free_port()
    config = root / "syncd.toml"
    config.write_text(CONFIG.format(root=root, port=port), encoding="utf-8")
    (root / "password").write_text(PASSWORD + "\n", encoding="utf-8")
    office = BackOffice(root, config, f"http://127.0.0.1:{port}", None, root / "daemon.log")  # type: ignore[arg-type]
    office.cli("web", "user", "add", "ada", "--role", "admin", "--password-file", root / "password")
    office.job("hr", _hr(40), "users_2026-11-21.csv")
    fixes = office.job("uploads", _fixes(), "team-fixes.csv", expect=1)
    held = office.job("hr", _hr(6), "users_2026-11-22.csv", expect=3)
    with office.log.open("wb") as stderr:
        office.process = spawn("--config", config, "run", cwd=root, stderr=stderr)
    try:
        while b"web_listening" not in office.log.read_bytes():
            if office.process.poll() is not None:
                raise SystemExit(office.log.read_text())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.goto(f"{office.url}/login")
            page.fill("#name", "ada")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/jobs")
            page.locator("#job-id").press_sequentially(fixes.replace("-", "").lower()[:7])
            page.wait_for_timeout(600)
            _shoot(page, "jobs")
            page.set_viewport_size({"width": 1200, "height": 1180})
            page.goto(f"{office.url}/jobs/{fixes}")
            _shoot(page, "job")
            page.set_viewport_size({"width": 1200, "height": 820})
            page.goto(f"{office.url}/held/{held}")
            _shoot(page, "held")
            path = root / "new-starters.csv"
            path.write_text(people(3, 900, header="Email,Given Name,Last Name"), encoding="utf-8")
            page.goto(f"{office.url}/upload")
            page.select_option("#source", "uploads")
            page.set_input_files("#file", str(path))
            page.get_by_role("button", name="Upload").click()
            page.wait_for_url(re.compile(r".*/uploads/[A-Za-z0-9_-]{16}$"))
            page.select_option("#map-1", "first_name")
            _shoot(page, "columns")
            page.get_by_role("button", name="Preview").click()
            page.wait_for_url("**/preview")
            _shoot(page, "preview")
            browser.close()
    finally:
        office.process.terminate()
        office.process.wait()


if __name__ == "__main__":
    main()
