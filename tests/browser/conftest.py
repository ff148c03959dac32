"""Fixtures for the browser tests: one real madoguchi server and one Chromium for the package.

These tests never touch pytest-django's database: the server is another process with its own
data dir, and customers write in through a helper process (see driver.py). Package scope keeps
Playwright's event loop from outliving these tests and upsetting Django's async-safety checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .harness import AGENT, AGENT2, CHROMIUM, Server, launch, log_in, running_server

# Several steps are asynchronous: a reply goes through the worker's outbox to the platform and
# back as a live event, a customer's message through the driver, ingest and the event stream. On
# a loaded 2-core CI machine that can take seconds; these tests check that it happens, not how
# fast (Playwright's default wait for an expectation is 5 s).
expect.set_options(timeout=15_000)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="package")
def server() -> Iterator[Server]:
    with running_server() as s:
        yield s


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium fonts-ipafont-gothic (scripts/test.sh does)")
    with sync_playwright() as pw:
        browser = launch(pw)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def sessions(server: Server, chromium: Browser) -> dict[str, Any]:
    """Each agent logs in once through the form; later pages reuse the session cookie."""
    states = {}
    for email in (AGENT, AGENT2):
        context = chromium.new_context()
        log_in(context, server, email)
        states[email] = context.storage_state()
        context.close()
    return states


@pytest.fixture
def open_page(chromium: Browser, sessions: dict[str, Any], server: Server) -> Iterator[Callable[..., Page]]:
    """open_page(path, as_=email, viewport=...) → a logged-in page in its own browser context."""
    contexts = []

    def make(path: str = "inbox/", *, as_: str = AGENT, viewport: dict[str, int] | None = None, has_touch: bool = False) -> Page:
        context = chromium.new_context(storage_state=sessions[as_], viewport=viewport or DESKTOP, has_touch=has_touch)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(server.url + path)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing browser test shows the end of the server's and worker's log: the data dir is
    deleted afterwards, and a CI failure is otherwise hard to explain."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("server")
    if report.failed and call.when == "call" and isinstance(server, Server):
        log = server.data_dir / "server.log"
        if log.exists():
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-80:]
            report.sections.append(("server and worker log (last 80 lines)", "\n".join(tail)))
