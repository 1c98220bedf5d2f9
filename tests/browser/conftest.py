"""Fixtures for real-browser tests: a JupyterLab server and a headless Chromium page.

    def test_x(jupyterlab, page): ...                      # shared server, default env
    def test_y(jupyterlab_factory, page, tmp_path):        # own server, kernels see FTKIT_HOME
        lab = jupyterlab_factory({"FTKIT_HOME": str(tmp_path)})

Missing Playwright or /usr/bin/chromium skips these tests, except under CI (env CI set), where
it fails them: CI installs both, so a skip there would hide a broken setup.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING

import pytest

from .jupyterlab import JupyterLabServer, launch_chromium, require_browser
from .jupyterlab import screenshot as save_screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

JupyterLabFactory = Callable[..., JupyterLabServer]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Remember each phase's report so `page` can screenshot a failed test at teardown.
    report = yield
    setattr(item, f"_lab_report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def jupyterlab_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JupyterLabFactory]:
    """Start a JupyterLab server with extra environment for its kernels.

    Calls with equal `extra_env` share one server; all are stopped at session end.
    """
    from .jupyterlab import start_jupyterlab

    servers: dict[tuple[tuple[str, str], ...], JupyterLabServer] = {}

    def factory(extra_env: Mapping[str, str] | None = None) -> JupyterLabServer:
        require_browser()
        key = tuple(sorted((extra_env or {}).items()))
        server = servers.get(key)
        if server is None or not server.is_running():
            server = start_jupyterlab(tmp_path_factory.mktemp("jupyterlab"), extra_env)
            servers[key] = server
        return server

    yield factory
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def jupyterlab(jupyterlab_factory: JupyterLabFactory) -> JupyterLabServer:
    """The shared JupyterLab server (no extra environment)."""
    return jupyterlab_factory()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    # Package scope: Playwright's sync API keeps an asyncio loop running while it is
    # open, and tests outside this package call asyncio.run().
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Page]:
    """A fresh browser context and page (1400x900).

    When the test body fails, a full-page screenshot is saved as `failure*/<test name>.png`
    under pytest's base temp dir and its path printed with the captured teardown output.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        yield page
        report = getattr(request.node, "_lab_report_call", None)
        if report is not None and report.failed:
            path = tmp_path_factory.mktemp("failure") / f"{request.node.name}.png"
            try:
                save_screenshot(page, path)
            except Exception as exc:  # the page may be gone; the report matters more
                print(f"could not save failure screenshot: {exc!r}")
            else:
                print(f"failure screenshot: {path}")
    finally:
        context.close()
