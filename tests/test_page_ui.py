"""The page as a person meets it at laptop and phone sizes, in a real Chromium against the real app: at 1280x720
the run button is in view while painting and the result after a run, with no scrolling; the keyboard shortcuts;
the before/after slider; at 390 px the page brings the result into view, labels never cover pictures and
nothing is cut off. Screenshots go to test-artifacts/app/ and, for the guide, test-artifacts/guide/.

Run with ``pytest -m browser tests/test_page_ui.py``.
"""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from chromium import BROWSER
from guide import guide_shot
from PIL import Image
from playwright.sync_api import Browser, Page
from test_app import ARTIFACTS, SIZE, brush_size, download, files, paint_line, painted, run_and_wait, wait_picture

__all__ = ["files"]  # the fixture, shared with test_app.py

pytestmark = BROWSER


@pytest.fixture
def sized(browser: Browser, app_url: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page at the viewport size `request.param` (width, height)."""
    width, height = request.param
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url)
    pg.wait_for_selector("#canvas button[title='Upload']")
    yield pg
    context.close()


def box(pg: Page, selector: str) -> dict[str, float]:
    found = pg.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def in_view(pg: Page, selector: str) -> bool:
    """Whether all of the element is inside the viewport."""
    b, size = box(pg, selector), pg.viewport_size
    inside_y = b["y"] >= 0 and b["y"] + b["height"] <= size["height"]
    return inside_y and b["x"] >= 0 and b["x"] + b["width"] <= size["width"]


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and (b["y"] < a["y"] + a["height"])
    )


def fetch(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as r:
        return np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB"), np.int16)


def open_and_paint(pg: Page, image: Path) -> None:
    pg.set_input_files("#canvas input[type=file]", str(image))
    wait_picture(pg, SIZE, SIZE)
    pg.wait_for_timeout(300)  # the canvas's pointer handlers follow the new picture
    paint_line(pg)
    pg.wait_for_function("() => window.__varEdit.inspect().painted > 0")


def becomes(pg: Page, wanted: Callable[[int], bool]) -> bool:
    """Whether the brush size the toolbar shows comes to be `wanted` (the shortcut moves it in a moment)."""
    for _ in range(40):
        if wanted(brush_size(pg)):
            return True
    return False


@pytest.mark.parametrize("sized", [(1280, 720)], indirect=True, ids=["1280x720"])
def test_paint_run_and_compare_at_1280x720_without_scrolling(
    sized: Page, files: dict[str, Path], tmp_path: Path
) -> None:
    pg = sized
    open_and_paint(pg, files["image"])
    assert in_view(pg, "#run-inpaint"), f"the run button is out of sight while painting: {box(pg, '#run-inpaint')}"
    guide_shot(pg, "paint")

    size = brush_size(pg)  # shortcuts: [ and ] resize the brush, E and B pick the eraser and the brush
    pg.keyboard.press("]")
    assert becomes(pg, lambda now: now > size)
    pg.keyboard.press("[")
    pg.keyboard.press("[")
    assert becomes(pg, lambda now: now < size)
    pg.keyboard.press("e")
    pg.wait_for_function("() => document.querySelector('#canvas button.highlight').title === 'Erase'")
    pg.keyboard.press("b")
    pg.wait_for_function("() => document.querySelector('#canvas button.highlight').title === 'Brush'")
    stroke = painted(pg)
    pg.keyboard.press("Control+z")
    pg.wait_for_function("() => window.__varEdit.inspect().painted === 0")
    pg.keyboard.press("Control+Shift+z")
    pg.wait_for_function(f"() => window.__varEdit.inspect().painted === {stroke}")

    pg.evaluate("window.scrollTo(0, 0)")  # as after painting (the brush-size checks above scrolled the page)
    status = run_and_wait(pg, "#run-inpaint")
    assert status.startswith("Done"), status
    pg.wait_for_function("() => [...document.querySelectorAll('#candidates img')].every((i) => i.complete)")
    assert in_view(pg, "#live-preview img") and in_view(pg, "#candidates img"), "the result is out of sight"
    pg.screenshot(path=str(ARTIFACTS / "14-result-1280x720.png"))
    guide_shot(pg, "result")

    pg.locator("#compare img").nth(1).wait_for()  # before / after: the input against candidate 1
    before, after = (fetch(pg.locator("#compare img").nth(i).get_attribute("src")) for i in (0, 1))
    assert np.array_equal(before, np.asarray(Image.open(files["image"]).convert("RGB"), np.int16))
    assert np.array_equal(after, np.asarray(Image.open(download(pg, tmp_path)).convert("RGB"), np.int16))
    pg.locator("#compare").scroll_into_view_if_needed()
    guide_shot(pg, "compare", "#compare")


@pytest.mark.parametrize("sized", [(390, 844)], indirect=True, ids=["390px"])
def test_at_390px_the_result_comes_into_view_and_labels_cover_nothing(sized: Page, files: dict[str, Path]) -> None:
    pg = sized
    open_and_paint(pg, files["image"])
    label, toolbar = box(pg, "#canvas [data-testid='block-label']"), box(pg, "#canvas button[title='Pan']")
    assert label["x"] + label["width"] <= toolbar["x"] and label["height"] < 30, "the canvas's label is cut or wraps"
    pg.screenshot(path=str(ARTIFACTS / "15-paint-390.png"))
    pg.locator("#run-inpaint").scroll_into_view_if_needed()
    status = run_and_wait(pg, "#run-inpaint")
    assert status.startswith("Done"), status
    pg.wait_for_function("() => [...document.querySelectorAll('#candidates img')].every((i) => i.complete)")
    pg.wait_for_function("() => { const b = document.querySelector('#live-preview img').getBoundingClientRect();"
                         " return b.top >= 0 && b.top < innerHeight; }")  # fmt: skip
    pg.screenshot(path=str(ARTIFACTS / "16-result-390.png"))
    guide_shot(pg, "phone")
    for widget in ("#live-preview", "#candidates", "#compare"):
        label = box(pg, f"{widget} [data-testid='block-label']")
        for img in pg.locator(f"{widget} img").all():
            assert not overlaps(label, img.bounding_box()), f"the label of {widget} covers a picture"
    width = pg.evaluate("document.documentElement.clientWidth")
    assert pg.evaluate("document.documentElement.scrollWidth") <= width, "the page is wider than the phone"
    pg.screenshot(path=str(ARTIFACTS / "17-page-390.png"), full_page=True)


@pytest.mark.parametrize("sized", [(1280, 900)], indirect=True, ids=["1280x900"])
def test_a_tour_of_the_page_for_the_guide(sized: Page, files: dict[str, Path]) -> None:
    """The mask tools with the cells a run redraws, the Class edit tab, the Model panel, Continue and Back."""
    pg = sized
    open_and_paint(pg, files["image"])
    pg.wait_for_function("() => document.querySelector('#mask-note').innerText.includes('redraws')", polling=200)
    pg.locator("#mask-tools").scroll_into_view_if_needed()
    guide_shot(pg, "mask-tools", "#mask-tools")
    pg.click("role=tab[name='Class edit']")
    pg.locator("#run-class").wait_for()
    guide_shot(pg, "class-edit", "#tab-class")
    pg.click("role=tab[name='In-paint']")
    status = run_and_wait(pg, "#run-inpaint")
    assert status.startswith("Done"), status
    pg.click("#continue")
    pg.wait_for_function("() => document.querySelector('#history').innerText.includes('Earlier versions: 1')")
    guide_shot(pg, "continue")
    pg.click("#back")
    pg.wait_for_function("() => document.querySelector('#history').innerText.includes('No earlier versions')")
    pg.click("#model button.label-wrap")
    pg.locator("#model-info").wait_for()
    pg.locator("#model").scroll_into_view_if_needed()
    guide_shot(pg, "model-panel", "#model")
