"""Test-wide fixtures: the throwaway real servers, and markers that follow their use.

A test that asks for a server fixture gets that server's marker on its own, so
`pytest -m "not postgres"` leaves out exactly the tests that need PostgreSQL. The soak
(`tests/soak`, half an hour) runs only when `-m` names it, as `make soak` does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.e2e.cli import SPAWNED, kill_left_running
from tests.servers.postgres import db_url, postgres_server, postgres_url
from tests.servers.smtp import smtp_server, smtp_server_requiring_login
from tests.servers.sshd import sshd_factory, sshd_server

# Property tests check behaviour, never speed: on a busy two-core machine one example of
# a reading test took 386 ms against Hypothesis' default 200 ms deadline, and failed a run
# it had nothing to do with. Speed is measured by `make bench`.
settings.register_profile("syncd", deadline=None)
settings.load_profile("syncd")

__all__ = [
    "db_url",
    "postgres_server",
    "postgres_url",
    "smtp_server",
    "smtp_server_requiring_login",
    "sshd_factory",
    "sshd_server",
]


@pytest.fixture(autouse=True)
def _no_daemon_left_running() -> Iterator[None]:
    """A `syncd run` a test started and left running (it failed before stopping it) is
    killed when the test ends. Those a module's or class's shared fixture started were
    started before this runs, and are left to their fixture."""
    since = len(SPAWNED)
    yield
    kill_left_running(since)


MARKER_BY_FIXTURE = {
    "postgres_server": "postgres",
    "postgres_url": "postgres",
    "sshd_server": "sshd",
    "sshd_factory": "sshd",
    "smtp_server": "smtp",
    "smtp_server_requiring_login": "smtp",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the servers it uses (db_url marks its postgresql case itself),
    and leave the soak out unless the marker expression names it."""
    for item in items:
        fixturenames: list[str] = getattr(item, "fixturenames", [])
        for marker in sorted({MARKER_BY_FIXTURE.get(name, "") for name in fixturenames} - {""}):
            item.add_marker(marker)
    if "soak" not in (config.option.markexpr or ""):
        soak = [item for item in items if item.get_closest_marker("soak")]
        if soak:
            config.hook.pytest_deselected(items=soak)
            items[:] = [item for item in items if not item.get_closest_marker("soak")]


def pytest_itemcollected(item: pytest.Item) -> None:
    """Group the tests that share a fixture (see below) as each is collected: xdist reads
    the groups off the marks before any `pytest_collection_modifyitems` here runs."""
    group = _shared_fixture_group(item)
    if group is not None:
        item.add_marker(pytest.mark.xdist_group(group))


def _shared_fixture_group(item: pytest.Item) -> str | None:
    """The module (or class) whose tests share a fixture set up once for them all (a
    daemon run over a corpus, a back office with its accounts): under `--dist loadgroup`
    they stay on one worker, which sets it up once, while every other test goes to
    whichever worker is free (a module of slow tests no longer runs on one worker alone).
    """
    info = getattr(item, "_fixtureinfo", None)
    scopes = {defs[-1].scope for defs in (info.name2fixturedefs.values() if info else ()) if defs}
    module, _, rest = item.nodeid.partition("::")
    if "module" in scopes or "package" in scopes:
        return module
    if "class" in scopes and "::" in rest:
        return f"{module}::{rest.split('::')[0]}"
    return None
