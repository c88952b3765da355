"""The browser tests' Chromium: where it is, how it starts, the marks every browser test carries,
and a fresh page on a studio (the fixtures that use these are in conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # conftest.py imports this module for every test: no browser stack at import
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")
BROWSER = [pytest.mark.browser, needs_chromium]  # pytestmark of a module of browser tests


@contextmanager
def studio_page(
    browser: Browser,
    url: str,
    artifacts: Path | None = None,
    height: int = 1100,
    offsite: list[str] | None = None,
    width: int = 1400,
) -> Iterator[Page]:
    """A fresh page (its own browser context, a `width` x `height` viewport) on the studio at `url`; `artifacts`:
    a screenshot folder to make (emptied first); requests off this machine are added to `offsite`."""
    if artifacts is not None:
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True)
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    if offsite is not None:
        local = (url, "data:", "blob:", "http://127.0.0.1", "http://localhost")
        pg.on("request", lambda r: None if r.url.startswith(local) else offsite.append(r.url))
    pg.goto(url)
    pg.wait_for_selector("#canvas button[title='Upload']")
    try:
        yield pg
    finally:
        context.close()
