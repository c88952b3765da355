"""Strokes and the cells preview on a non-square photo, in a real Chromium against the real app: a box that
starts and ends on the margin around the picture is clipped to it, never dropped; the cells view before a
run shows exactly the cells whose pixels the run changes, with the same grid whether the mask was painted
or uploaded. Screenshots go to test-artifacts/cells/.

Run with ``pytest -m browser tests/test_cells_ui.py``. One page for the module (each test starts by
clearing the mask).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from chromium import BROWSER, studio_page
from PIL import Image
from playwright.sync_api import Browser, Page
from studio_server import running
from test_app import ROOT, download, fix_seed_and_candidates, open_accordion, run_and_wait, wait_picture
from test_mask_tools_ui import UPLOAD_MASK, cells_state, fetch, wait_cells_change
from test_undo_ui import NOTE_JS, mask_now, wait_mask

ARTIFACTS = ROOT / "test-artifacts" / "cells"
W, H = 451, 300  # the photo shape: the model's square reaches past its top and bottom

pytestmark = BROWSER


def photo() -> np.ndarray:
    """Seeded colour noise: any pixel a run redraws changes."""
    return (np.random.default_rng(3).random((H, W, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cells") / "photo.png"
    Image.fromarray(photo()).save(path)
    return path


@pytest.fixture(scope="module")
def own_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A studio of this module's own: the cells it shows do not depend on what earlier tests did to the shared one."""
    with running([], tmp_path_factory.mktemp("cells-studio")) as studio:
        yield studio.url


@pytest.fixture(scope="module")
def page(browser: Browser, own_url: str, photo_file: Path) -> Iterator[Page]:
    with studio_page(browser, own_url, ARTIFACTS, height=1300) as pg:
        pg.set_input_files("#canvas input[type=file]", str(photo_file))
        pg.wait_for_selector("#canvas button[title='Brush Size']")
        wait_picture(pg, W, H)
        pg.wait_for_timeout(300)  # the canvas's pointer handlers follow the new picture
        yield pg


@pytest.fixture
def clean(page: Page) -> Page:
    """The module's page with nothing painted."""
    if mask_now(page).any():
        page.click("#clear-mask")
        wait_mask(page, expected=np.zeros_like(mask_now(page)))
    return page


def picture_on_screen(pg: Page) -> tuple[float, float, float]:
    """The picture's left and top edges on the screen and screen pixels per canvas pixel (the picture is
    centred in the canvas element at the zoom its toolbar shows)."""
    box = pg.locator("#canvas canvas").first.bounding_box()
    zoom = float(pg.inner_text("#canvas .zoom-number").strip().rstrip("%")) / 100
    size = pg.evaluate("window.__varEdit.inspect()")
    left = box["x"] + (box["width"] - size["width"] * zoom) / 2
    return left, box["y"] + (box["height"] - size["height"] * zoom) / 2, zoom


def drag(pg: Page, points: list[tuple[float, float]]) -> None:
    pg.mouse.move(*points[0])
    pg.mouse.down()
    for x, y in points[1:]:
        pg.mouse.move(x, y, steps=2)
    pg.mouse.up()


def test_a_box_from_the_margin_is_clipped_to_the_picture(clean: Page) -> None:
    """A box drawn with the brush from the grey margin left of the picture, round a part of it and back to the
    margin: the part over the picture is painted, reaching the picture's left edge."""
    pg = clean
    left, top, zoom = picture_on_screen(pg)
    size = pg.evaluate("window.__varEdit.inspect()")
    x0, x1 = left - 25, left + 0.4 * size["width"] * zoom  # x0: on the margin, right of the tool bar
    y0, y1 = top + 0.3 * size["height"] * zoom, top + 0.7 * size["height"] * zoom
    drag(pg, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    mask = wait_mask(pg, unlike=np.zeros((size["height"], size["width"]), bool))
    pg.screenshot(path=str(ARTIFACTS / "01-box-from-the-margin.png"))
    rows = np.flatnonzero(mask[:, 0])
    assert rows.size, "the stroke should reach the picture's left edge"
    top_row, bottom_row = 0.3 * size["height"], 0.7 * size["height"]
    assert abs(rows.min() - top_row) < 40 and abs(rows.max() - bottom_row) < 40, (rows.min(), rows.max())
    right = np.flatnonzero(mask.any(0)).max()
    assert abs(right - 0.4 * size["width"]) < 40, right


def test_the_cells_preview_is_what_the_run_changes(clean: Page, tmp_path: Path) -> None:
    """A stroke across the middle of the 451x300 photo: the cells shown before the run are the cells whose
    pixels the result changed (none along the top and bottom edges), and an uploaded copy of the same mask
    shows the very same cells."""
    pg = clean
    left, top, zoom = picture_on_screen(pg)
    size = pg.evaluate("window.__varEdit.inspect()")
    y = top + size["height"] * zoom / 2
    before = cells_state(pg)
    drag(pg, [(left + 0.15 * size["width"] * zoom, y), (left + 0.85 * size["width"] * zoom, y)])
    wait_cells_change(pg, before)
    # On a busy machine the first view can be of the stroke in the making: take the view once it has held still
    # for 2 s (the picture and the note of the whole stroke).
    pg.wait_for_function(
        f"""() => {{ const now = [{NOTE_JS}, (document.querySelector('#mask-cells img') || {{}}).src].join('|');
        if (window.__cellsSeen !== now) {{ window.__cellsSeen = now; window.__cellsSince = Date.now(); return false; }}
        return Date.now() - window.__cellsSince > 2000; }}""",
        polling=200,
        timeout=120_000,
    )
    painted_src, painted_note = cells_state(pg)
    pg.screenshot(path=str(ARTIFACTS / "02-stroke-cells.png"), full_page=True)

    with pg.expect_download() as info:  # the same mask, uploaded
        pg.click("#mask-save")
    mask_file = tmp_path / info.value.suggested_filename
    info.value.save_as(mask_file)
    pg.click("#clear-mask")
    pg.wait_for_function("() => !document.querySelector('#mask-cells img')", polling=200)
    pg.set_input_files(UPLOAD_MASK, str(mask_file))
    wait_cells_change(pg, ("", ""))
    # The view follows the mask as it is drawn: it comes to the painted mask's note (a grid of another size
    # never does, and the wait fails), then its picture must be the painted one's.
    pg.wait_for_function(f"(n) => {NOTE_JS} === n", arg=painted_note.strip().split("\n")[-1], polling=100)
    uploaded_src = cells_state(pg)[0]
    shown = np.asarray(fetch(painted_src), np.int16)
    assert np.array_equal(shown, np.asarray(fetch(uploaded_src), np.int16)), "another grid for an uploaded mask"

    open_accordion(pg, "settings", "Candidates")
    fix_seed_and_candidates(pg, 7, 1)
    status = run_and_wait(pg, "#run-inpaint")
    assert status.startswith("Done"), status
    pg.screenshot(path=str(ARTIFACTS / "03-result.png"), full_page=True)
    result = np.asarray(Image.open(download(pg, tmp_path)).convert("RGB"), np.int16)
    original = photo().astype(np.int16)
    assert shown.shape == original.shape, shown.shape
    tinted = np.abs(shown - original).max(-1) > 0
    changed = np.abs(result - original).max(-1) > 0
    cell = float(painted_note.rsplit("(", 1)[1].split(" px")[0])
    # Masked pixels of a kept cell (a sliver of the brush's edge, under half a model pixel) get the picture's own
    # tokens back, decoded: they may differ a little, next to a shown cell, and are no cell the run redrew.
    reach = int(np.ceil(cell / 4)) + 1
    near = cv2.dilate(tinted.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    outside = changed & ~tinted
    assert changed.any() and not (outside & ~near).any(), "the run changed pixels away from the cells shown"
    assert outside.sum() <= 0.01 * changed.sum(), f"{outside.sum()} of {changed.sum()} changed pixels are not shown"
    for axis in (0, 1):  # the cells shown reach at most one cell past what changed: no cell lies idle
        shown_span = np.flatnonzero(tinted.any(axis))
        changed_span = np.flatnonzero(changed.any(axis))
        assert shown_span.min() >= changed_span.min() - cell and shown_span.max() <= changed_span.max() + cell
    assert not tinted[0].any() and not tinted[-1].any(), "cells along the top or bottom edge are shown"
