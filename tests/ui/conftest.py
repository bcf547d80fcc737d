"""The UI under test: a live server on a store in tmp_path, and headless Chromium to drive it.

``ui`` gives a :class:`UI`: ``ui.client`` seeds the store (the Python API), ``ui.url`` is the
server's base URL, ``ui.get(path)`` fetches a page's HTML. ``page`` is a Playwright page in
Debian's Chromium (``/usr/bin/chromium``, no browser download), 1280x800; ``shot(page, name)``
saves a screenshot under ``test-output/screenshots/`` (kept by CI with the test output).
Browser tests are marked ``browser``; they skip when Chromium is missing unless
``MLTRAIL_REQUIRE_CHROMIUM`` is set (as CI does), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@dataclass
class UI:
    """A served store: its base URL and a client on the same store."""

    url: str
    client: Any
    store_uri: str
    objects: str

    def get(self, path: str, **kw: Any) -> Any:
        """GET ``path`` as a browser would (asking for HTML); the httpx response."""
        import httpx

        headers = {"Accept": "text/html", **kw.pop("headers", {})}
        return httpx.get(self.url + path, headers=headers, follow_redirects=True, **kw)


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[UI]:
    """A live server (auth off) over a fresh SQLite store and object folder, with a client."""
    pytest.importorskip("jinja2")
    pytest.importorskip("plotly")
    from mltrail import MltrailClient
    from mltrail.server.app import ServerSettings
    from tests.live import serve

    folder = tmp_path / "served"
    folder.mkdir()
    store_uri = f"sqlite:///{folder / 'mltrail.db'}"
    objects = str(folder / "objects")
    client = MltrailClient(store_uri, objects=objects)
    settings = ServerSettings(store_uri, objects, access_log=False)
    try:
        with serve(settings) as url:
            yield UI(url, client, store_uri, objects)
    finally:
        client.close()


def _chromium() -> str | None:
    return os.environ.get("MLTRAIL_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (one per test process)."""
    path = _chromium()
    if path is None:
        if os.environ.get("MLTRAIL_REQUIRE_CHROMIUM"):
            pytest.fail("chromium not found; install Debian's chromium package (see .ci/run)")
        pytest.skip("chromium not found (install Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh 1280x800 browser page; JavaScript errors on it fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``test-output/screenshots/<name>.png``; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class HeldPlotly:
    """Holds the page's request for plotly.js unanswered until :meth:`release`, so a test sees
    what the page draws before plotly.js has loaded (its sketches)."""

    PATTERN = "**/static/plotly-*.min.js"

    def __init__(self, page) -> None:
        self.page = page
        self.routes: list = []
        page.route(self.PATTERN, lambda route: self.routes.append(route))

    def release(self) -> None:
        for route in self.routes:
            route.continue_()
        self.page.unroute(self.PATTERN)
