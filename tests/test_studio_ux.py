"""The studio as a person meets it, in a real Chromium against the real app: the result in view after a
run at laptop and phone sizes, a picture dropped right after the page shows, honest controls (seed,
candidates, fast mode), small pictures' cells, the start log. Screenshots go to test-artifacts/ux/.

Run with ``pytest -m browser tests/test_studio_ux.py`` (the first tests need no browser).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chromium import CHROMIUM, studio_page
from PIL import Image
from playwright.sync_api import Browser, Page
from test_app import ROOT, files, paint_line, run_and_wait, wait_picture

from editing.canvas import Region
from editing.options import EditOptions, option_fields
from studio.cells import VIEW_MIN, cells_view, covering, redrawn
from studio.mask_panel import cells_note

__all__ = ["files"]  # the fixture, shared with test_app.py

ARTIFACTS = ROOT / "test-artifacts" / "ux"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def test_the_cells_note_counts_only_cells_on_the_picture() -> None:
    """A 451x300 picture in the model's 451-px square: the padding rows above and below are not counted."""
    region = Region(0, -75, 451)  # the square reaches 75 px past the picture's top and bottom
    on_picture = covering(region, 16, 451, 300)
    assert on_picture.all(1).sum() == on_picture.any(1).sum() == 12  # rows 2..13 (28.2 px each) touch 0..300 px
    regenerated = np.ones((16, 16), bool)  # everything, padding included
    mask = np.ones((300, 451), bool)
    note = cells_note(mask, redrawn(regenerated, region, mask), region)
    assert "**192** of the 16×12 cells" in note, note


def test_only_cells_holding_masked_pixels_are_redrawn() -> None:
    """A stroke across the middle of a 451x300 picture: the sampled cells that straddle the picture's top and
    bottom edges (the padding past the border is always sampled) hold no masked pixel, so they are not shown."""
    region = Region(0, -75, 451)
    mask = np.zeros((300, 451), bool)
    mask[140:160, 20:430] = True
    regenerated = np.zeros((16, 16), bool)
    regenerated[[0, 1, 2, 13, 14, 15], :] = True  # the padding rows and the two rows straddling the edges
    regenerated[7:10, :] = True  # the stroke's rows: pixels 215..235 of the region
    cells = redrawn(regenerated, region, mask)
    assert cells is not None and set(np.flatnonzero(cells.any(1))) == {7, 8}
    brute = np.zeros((16, 16), bool)
    for y, x in zip(*np.nonzero(mask), strict=True):
        brute[(y + 75) * 16 // 451, x * 16 // 451] = True
    assert (cells == (regenerated & brute)).all()
    whole = redrawn(regenerated, region, mask, paste_back=False)
    assert (whole == (regenerated & covering(region, 16, 451, 300))).all()


def test_a_small_picture_s_cells_are_shown_enlarged() -> None:
    small = Image.new("RGB", (64, 48), (200, 100, 50))
    view = cells_view(small, np.ones((4, 4), bool), Region(0, -8, 64))
    assert max(view.size) >= VIEW_MIN and view.width * 48 == view.height * 64


def test_the_fast_mode_help_promises_by_hardware_class() -> None:
    fast = next(spec for name, _, spec in option_fields(EditOptions) if name == "fast")
    assert "2-2.5x" not in fast.help and "other CPUs" in fast.help and "docs/speed.md" in fast.help


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def in_view(pg: Page, selector: str) -> bool:
    """Whether some of the element is inside the viewport."""
    box = pg.locator(selector).first.bounding_box()
    size = pg.viewport_size
    return bool(box) and box["y"] < size["height"] and box["y"] + box["height"] > 0 and box["x"] < size["width"]


def open_and_paint(pg: Page, image: Path) -> None:
    pg.set_input_files("#canvas input[type=file]", str(image))
    wait_picture(pg, 256, 256)
    pg.wait_for_timeout(300)  # the canvas's pointer handlers follow the new picture
    paint_line(pg)


@pytest.mark.parametrize("sized", [(1280, 720), (1440, 900)], indirect=True, ids=["1280x720", "1440x900"])
@pytest.mark.browser
@needs_chromium
def test_the_result_is_in_view_after_a_run(sized: Page, files: dict[str, Path], artifacts: Path) -> None:
    """Scrolled down to the run button and clicked: the live preview and the candidates are on screen."""
    pg = sized
    open_and_paint(pg, files["image"])
    pg.locator("#run-inpaint").scroll_into_view_if_needed()
    status = run_and_wait(pg, "#run-inpaint")
    assert status.startswith("Done"), status
    pg.wait_for_selector("#candidates img")
    pg.wait_for_timeout(800)  # a smooth scroll, if one was needed, ends
    size = pg.viewport_size
    pg.screenshot(path=str(artifacts / f"result-{size['width']}x{size['height']}.png"))
    assert in_view(pg, "#live-preview") and in_view(pg, "#candidates img"), "the result is out of sight"


@pytest.mark.parametrize("sized", [(390, 844)], indirect=True, ids=["390px"])
@pytest.mark.browser
@needs_chromium
def test_nothing_is_clipped_at_phone_width(sized: Page, files: dict[str, Path], artifacts: Path) -> None:
    pg = sized
    open_and_paint(pg, files["image"])
    status = run_and_wait(pg, "#run-inpaint")
    assert status.startswith("Done"), status
    pg.wait_for_function("() => document.querySelectorAll('#candidates img').length === 4")
    pg.locator("#candidates").scroll_into_view_if_needed()
    pg.screenshot(path=str(artifacts / "phone-390.png"), full_page=True)
    page_width = pg.evaluate("document.documentElement.clientWidth")
    for img in pg.locator("#candidates img").all():
        box = img.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= page_width + 0.5, box


@pytest.mark.browser
@needs_chromium
def test_a_picture_dropped_right_after_the_page_shows_is_taken(
    browser: Browser, app_url: str, files: dict[str, Path]
) -> None:
    for _ in range(3):
        with studio_page(browser, app_url) as pg:
            pg.set_input_files("#canvas input[type=file]", str(files["image"]))  # at once, no wait
            wait_picture(pg, 256, 256)


@pytest.mark.browser
@needs_chromium
def test_seed_and_candidates_say_what_they_do(browser: Browser, app_url: str) -> None:
    with studio_page(browser, app_url) as pg:
        pg.click("#settings button.label-wrap")
        seed = pg.locator("#opt-seed input")
        assert pg.is_checked("#random-seed input[type=checkbox]")
        assert seed.input_value() == "" and seed.get_attribute("placeholder") == "random"
        seed.fill("123")
        seed.press("Tab")
        pg.wait_for_function("() => !document.querySelector('#random-seed input').checked")
        pg.check("#random-seed input[type=checkbox]")
        pg.wait_for_function("() => document.querySelector('#opt-seed input').value === ''")
        box = pg.locator("#opt-num-samples input[type=number]")
        box.fill("64")
        box.press("Enter")
        pg.wait_for_timeout(300)
        assert box.input_value() == "64", "64 candidates is the studio's limit and should be kept"
        assert "Up to 64" in pg.inner_text("#opt-num-samples")


@pytest.mark.browser
@needs_chromium
def test_the_start_log_names_the_model_and_device(app_url: str, app_log: Path) -> None:
    log = app_log.read_text(errors="replace")
    assert "Model demo loaded: 64 px pictures" in log and "on cpu in float32" in log, log[-2000:]
