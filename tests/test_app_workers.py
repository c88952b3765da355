"""The studio with two model workers on Ray Serve (`app.py --workers 2`): two browser pages edit at the
same time, each with live previews, and Stop reaches the worker; the cells view follows the strokes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chromium import BROWSER
from playwright.sync_api import Browser, Page
from studio_server import WorkersStudio
from test_app import SIZE, paint_line, picture, wait_picture

pytest.importorskip("ray", reason="Ray is an optional extra: pip install .[ray]")
pytestmark = BROWSER
ROOT = Path(__file__).resolve().parent.parent
RECORD = (  # every status the page shows, sampled every 20 ms
    "() => { window.seen = []; "
    "setInterval(() => window.seen.push(document.querySelector('#status textarea').value), 20); }"
)


@pytest.fixture
def workers_url(workers_studio: WorkersStudio) -> str:
    return workers_studio.get().url


def _page(browser: Browser, url: str, image: Path) -> Page:
    pg = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    pg.set_default_timeout(120_000)
    pg.goto(url)
    pg.wait_for_selector("#canvas button[title='Upload']")
    pg.set_input_files("#canvas input[type=file]", str(image))
    wait_picture(pg, SIZE, SIZE)
    paint_line(pg)
    pg.evaluate(RECORD)
    return pg


def _ended(pg: Page) -> str:
    pg.wait_for_function("() => /^(Done|Failed|Stopped)/.test(document.querySelector('#status textarea').value)")
    return pg.input_value("#status textarea")


def test_two_pages_edit_at_once_with_previews_and_stop(browser, workers_url, tmp_path):
    picture().save(tmp_path / "emoji.png")
    pages = [_page(browser, workers_url, tmp_path / "emoji.png") for _ in range(2)]
    for pg in pages:
        pg.click("#run-inpaint")
    for pg in pages:
        assert _ended(pg).startswith("Done"), pg.input_value("#status textarea")
        seen = pg.evaluate("window.seen")
        assert any(s.startswith("Scale") for s in seen), "no preview reached the page"
        assert pg.locator("#candidates img").count() == 4
    first = pages[0]
    for _ in range(3):
        first.evaluate("document.querySelector('#status textarea').value = ''")
        first.click("#run-inpaint")
        first.wait_for_function("() => /^(Scale|Done)/.test(document.querySelector('#status textarea').value)")
        first.click("#stop")
        if _ended(first).startswith("Stopped"):
            break
    assert first.input_value("#status textarea").startswith("Stopped")
    pages[1].evaluate("document.querySelector('#status textarea').value = ''")
    pages[1].click("#run-inpaint")
    assert _ended(pages[1]).startswith("Done")  # the workers still serve after a stopped edit


def test_the_cells_view_follows_the_strokes_with_workers(browser, workers_url, tmp_path):
    picture().save(tmp_path / "emoji.png")
    pg = _page(browser, workers_url, tmp_path / "emoji.png")  # one stroke painted
    pg.wait_for_function("() => /redraws/.test(document.querySelector('#mask-note').innerText)")
    first = pg.inner_text("#mask-note")
    assert pg.locator("#mask-cells img").count() == 1
    assert re.search(r"a run redraws \d+ of the \d+×\d+ cells", first), first
    src = pg.evaluate("document.querySelector('#mask-cells img').src")
    paint_line(pg, dx=60, dy=20)  # a second stroke: the view follows with a new picture and note
    pg.wait_for_function(
        "([src, note]) => { const img = document.querySelector('#mask-cells img');"
        " return img && img.src !== src && document.querySelector('#mask-note').innerText !== note; }",
        arg=[src, first],
    )
    assert re.search(r"a run redraws \d+ of the", pg.inner_text("#mask-note"))
    assert not pg.locator("[data-testid='toast-body']").count()
