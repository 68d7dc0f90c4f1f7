"""The back office in-process: its app on a real SQLite database and configuration,
driven with Starlette's TestClient (real HTTP requests through the ASGI app, cookies and
all). Jobs are made with `run_job`, the function `syncd import` calls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from syncd.config import load_config
from syncd.flow import run_job
from syncd.intake import Drop
from syncd.outcome import JobOutcome
from syncd.runtime import Runtime, open_runtime
from syncd.web.accounts import add_account
from syncd.web.app import create_app

PASSWORD = "a long enough password"
#: What a browser says about a request made from one of the back office's own pages.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
CONFIG = """
state_dir = "{root}/var"

[database]
url = "sqlite:///{root}/syncd.db"

[[sources]]
name = "hr"
kind = "local"
path = "{root}/drop-hr"
profile = "default"
mode = "full"
notify = ["it@example.com"]

[[sources]]
name = "uploads"
kind = "local"
path = "{root}/drop-uploads"
profile = "small"
mode = "partial"

[profiles.small]
key = "email"
max_bytes = 4000
columns = [
  {{ field = "email", header = "Email", required = true }},
  {{ field = "first_name", header = "First Name" }},
  {{ field = "last_name", header = "Last Name" }},
  {{ field = "department", type = "select", options = ["Sales", "Support"] }},
]
{extra}
"""


def people(count: int, start: int = 0, *, header: str = "Email,First Name,Last Name") -> str:
    """A CSV of `count` valid people."""
    rows = [header] + [
        f"person{i:03d}@example.com,First{i},Last{i}" for i in range(start, start + count)
    ]
    return "\r\n".join(rows) + "\r\n"


@dataclass
class Site:
    """A configuration, its database and the back office app on them."""

    root: Path
    rt: Runtime
    config_path: Path
    app: object = field(init=False)
    #: session cookies by account: argon2 makes each login slow on purpose
    sessions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app = create_app(self.rt)

    def job(self, source: str, text: str, name: str = "people.csv", **kwargs: object) -> JobOutcome:
        cfg = self.rt.config.source(source)
        return run_job(self.rt, cfg, Drop(name, text.encode("utf-8")), **kwargs)  # type: ignore[arg-type]

    def account(self, name: str, role: str, password: str | None = PASSWORD) -> None:
        add_account(self.rt, name, "admin" if role == "admin" else "support", password)

    def client(
        self,
        name: str | None = None,
        *,
        address: str = "testclient",
        fresh: bool = False,
        **headers: str,
    ) -> TestClient:
        """A browser on the back office: logged in as `name` (if given; in a session of
        its own if `fresh`), sending same-origin headers unless told otherwise."""
        client = TestClient(
            self.app,  # type: ignore[arg-type]
            base_url="http://testserver",
            headers={**SAME_ORIGIN, **headers},
            client=(address, 50000),
        )
        if name is not None and not fresh and name in self.sessions:
            client.cookies.set("syncd_session", self.sessions[name])
        elif name is not None:
            done = client.post(
                "/login", data={"name": name, "password": PASSWORD}, follow_redirects=False
            )
            assert done.status_code == 303, done.text
            if not fresh:
                self.sessions[name] = client.cookies["syncd_session"]
        return client


def make_site(root: Path, extra: str = "") -> Site:
    path = root / "syncd.toml"
    path.write_text(CONFIG.format(root=root, extra=extra), encoding="utf-8")
    return Site(root, open_runtime(load_config(path)), path)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site with an admin and a support account (module-wide: logins are slow on
    purpose)."""
    made = make_site(tmp_path_factory.mktemp("web"))
    made.account("ada", "admin")
    made.account("sam", "support")
    yield made
    made.rt.engine.dispose()


def follow_task(client: TestClient, response: object, timeout: float = 60) -> str:
    """Follow a long piece of work's page until it leads elsewhere; that address."""
    location = response.headers["location"]  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while location.startswith("/tasks/"):
        page = client.get(location, follow_redirects=False)
        if page.status_code == 303:
            location = page.headers["location"]
            continue
        assert page.status_code == 200, page.text
        assert 'class="problem"' not in page.text, page.text
        assert time.monotonic() < deadline, page.text
        time.sleep(0.05)
    return location


def text_of(html: str) -> str:
    """A page's text, roughly: tags dropped, entities left as they are."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
