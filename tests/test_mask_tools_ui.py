"""The studio's mask tools in a real Chromium against the real app (test_app.py's server and browser):
select an object with a rough box (GrabCut), grow, invert, save and upload masks, the cells view
before a run against the cells the run redraws. Screenshots go to test-artifacts/mask-tools/.

Run with ``pytest -m browser tests/test_mask_tools_ui.py``.
"""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from chromium import BROWSER, studio_page
from PIL import Image
from playwright.sync_api import Browser, Page
from test_app import ROOT, download, fix_seed_and_candidates, run_and_wait, wait_picture

from studio.mask_panel import select, to_canvas

ARTIFACTS = ROOT / "test-artifacts" / "mask-tools"
SIZE = 256
DISC = (150, 120, 52)  # the object: centre x, y and radius in picture pixels
UPLOAD_MASK = "input[type=file][data-testid='Upload mask…-upload-button']"  # the button's own file input

pytestmark = BROWSER


def disc_mask(size: int = SIZE) -> np.ndarray:
    """Where the object is (bool, the picture's size)."""
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy, r = DISC
    return np.hypot(xx - cx, yy - cy) <= r


def scene() -> Image.Image:
    """A solid blue disc on a textured, colourful background (seeded noise over gradients)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    background = np.stack([120 + xx // 4, 110 + yy // 4, 90 + (xx + yy) // 8], -1).astype(np.int16)
    background += rng.integers(-40, 41, (SIZE, SIZE, 3))
    arr = np.clip(background, 0, 255).astype(np.uint8)
    arr[disc_mask()] = (30, 60, 200)
    return Image.fromarray(arr, "RGB")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scene, the disc's mask, a mask at twice its size (same shape) and one of another shape."""
    d = tmp_path_factory.mktemp("mask-files")
    scene().save(d / "scene.png")
    Image.fromarray(disc_mask().astype(np.uint8) * 255, "L").save(d / "disc.png")
    big = np.zeros((2 * SIZE, 2 * SIZE), np.uint8)
    big[2 * 40 : 2 * 90, 2 * 30 : 2 * 100] = 255  # a box in the top-left, white = regenerate
    Image.fromarray(big, "L").save(d / "mask-512.png")
    Image.new("L", (300, 200), 255).save(d / "mask-300x200.png")
    return {
        "scene": d / "scene.png",
        "disc": d / "disc.png",
        "big": d / "mask-512.png",
        "shape": d / "mask-300x200.png",
    }


@pytest.fixture
def page(browser: Browser, app_url: str, files: dict[str, Path]) -> Iterator[Page]:
    """A page of the test's own with the scene on the canvas (no mask yet)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with studio_page(browser, app_url, height=1300) as pg:
        pg.set_input_files("#canvas input[type=file]", str(files["scene"]))
        pg.wait_for_selector("#canvas button[title='Brush Size']")
        wait_picture(pg, SIZE, SIZE)
        yield pg


def with_disc(pg: Page, files: dict[str, Path]) -> tuple[str, str]:
    """Put the disc's mask on the canvas (Upload mask…); the cells view it then shows."""
    before = cells_state(pg)
    pg.set_input_files(UPLOAD_MASK, str(files["disc"]))
    return wait_cells_change(pg, before)


def shot(pg: Page, name: str) -> None:
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def geometry(pg: Page) -> tuple[float, float, float]:
    """Screen position of the picture's centre and screen pixels per picture pixel."""
    scale = pg.evaluate("window.__varEdit.inspect().width") / SIZE
    zoom = scale * float(pg.inner_text("#canvas .zoom-number").strip().rstrip("%")) / 100
    box = pg.locator("#canvas canvas").first.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, zoom


def to_screen(pg: Page, x: float, y: float) -> tuple[float, float]:
    cx, cy, zoom = geometry(pg)
    return cx + (x - SIZE / 2) * zoom, cy + (y - SIZE / 2) * zoom


def box_stroke(pg: Page) -> None:
    """A rough box drawn with the brush around the scene's disc: one drag through its corners (the
    brush joins the points it is given, and every extra point costs a canvas redraw)."""
    cx, cy, r = DISC
    x0, y0, x1, y1 = cx - r - 14, cy - r - 14, cx + r + 14, cy + r + 14
    corners = [to_screen(pg, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    pg.mouse.move(*corners[0])
    pg.mouse.down()
    for x, y in corners[1:]:
        pg.mouse.move(x, y, steps=2)
    pg.mouse.up()


def canvas_pixels(pg: Page) -> tuple[np.ndarray, dict[str, float]]:
    """A screenshot of the canvas element and where it is on the page."""
    box = pg.locator("#canvas canvas").first.bounding_box()
    png = pg.screenshot(clip=box)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16), box


def cells_state(pg: Page) -> tuple[str, str]:
    """The cells view's picture address and note."""
    src = pg.evaluate("(document.querySelector('#mask-cells img') || {}).src || ''")
    return src, pg.inner_text("#mask-note")


def wait_cells_change(pg: Page, before: tuple[str, str]) -> tuple[str, str]:
    """Wait until the cells view shows another picture and note than `before`."""
    pg.wait_for_function(
        "([src, note]) => { const img = document.querySelector('#mask-cells img');"
        " return img && img.src && img.complete && img.src !== src"
        " && document.querySelector('#mask-note').innerText !== note; }",
        arg=list(before),
        polling=200,
    )
    return cells_state(pg)


def no_toasts(pg: Page) -> None:
    toasts = pg.locator("[data-testid='toast-body']")
    assert not toasts.count(), toasts.all_inner_texts()


def close_toasts(pg: Page) -> None:
    for close in pg.locator("[data-testid='toast-close']").all():
        close.click()


def redrawn(note: str) -> int:
    """The number of finest-scale cells the note says a run redraws."""
    return int(note.split("redraws", 1)[1].split("of", 1)[0].strip())


def fetch(url: str) -> Image.Image:
    with urllib.request.urlopen(url, timeout=30) as r:
        return Image.open(io.BytesIO(r.read())).convert("RGB")


def save_mask(pg: Page, tmp: Path) -> np.ndarray:
    """The canvas's mask through Save mask PNG (bool, the picture's size)."""
    with pg.expect_download() as info:
        pg.click("#mask-save")
    path = tmp / info.value.suggested_filename
    info.value.save_as(path)
    with Image.open(path) as im:
        assert im.size == (SIZE, SIZE)
        return np.asarray(im.convert("L")) >= 128


def test_helpers_scale_masks_the_way_a_run_reads_the_canvas() -> None:
    """Enlarged by whole factors and read back as a run reads the canvas, a mask is unchanged."""
    mask = disc_mask()
    on_canvas = to_canvas(mask, (4 * SIZE, 4 * SIZE))
    assert on_canvas.shape == (4 * SIZE, 4 * SIZE) and on_canvas.sum() == 16 * mask.sum()
    back = np.asarray(Image.fromarray(on_canvas.astype(np.uint8) * 255).resize((SIZE, SIZE), Image.BILINEAR)) >= 128
    assert (back == mask).all()
    hint = np.zeros((SIZE, SIZE), bool)
    hint[DISC[1] - DISC[2] - 12 : DISC[1] + DISC[2] + 12, DISC[0] - DISC[2] - 12 : DISC[0] + DISC[2] + 12] = True
    assert iou(select(hint, scene()), mask) >= 0.9


def test_a_box_around_the_object_selects_it(page: Page, files: dict[str, Path], tmp_path: Path) -> None:
    """A rough box drawn with the brush around the disc, then Select object: the canvas shows a mask
    over the disc (lined up on screen) and Save mask PNG gives it at the picture's size."""
    page.wait_for_timeout(500)
    clean, box = canvas_pixels(page)
    box_stroke(page)
    shot(page, "01-box")
    before = cells_state(page)
    # Every text the note under the cells shows, from the click on (it says at once that the selection is working).
    page.evaluate(
        "() => { const note = document.querySelector('#mask-note'); window.__notes = [];"
        " new MutationObserver(() => window.__notes.push(note.innerText))"
        ".observe(note, {childList: true, subtree: true, characterData: true}); }"
    )
    page.click("#mask-select")
    state = wait_cells_change(page, before)
    no_toasts(page)
    shot(page, "02-selected")
    notes = page.evaluate("window.__notes")
    assert any(n.startswith("Selecting the object in the box") for n in notes), f"no sign of work: {notes}"

    mask = save_mask(page, tmp_path)
    overlap = iou(mask, disc_mask())
    assert overlap >= 0.7, f"the selection covers the disc with IoU {overlap:.2f}"

    # On screen: the pixels the selection tinted lie over the disc.
    tinted, _ = canvas_pixels(page)
    changed = np.abs(tinted - clean).max(-1) > 40
    cx, cy, r = DISC
    _, _, zoom = geometry(page)
    yy, xx = np.mgrid[0 : changed.shape[0], 0 : changed.shape[1]]
    sx, sy = to_screen(page, cx, cy)
    dpr = changed.shape[1] / box["width"]
    disc_on_screen = np.hypot(xx / dpr + box["x"] - sx, yy / dpr + box["y"] - sy) <= r * zoom
    assert iou(changed, disc_on_screen) >= 0.7, "the mask shown on the canvas does not line up with the disc"
    assert redrawn(state[1]) > 0


def test_grow_and_invert_change_the_cells_view(page: Page, files: dict[str, Path], tmp_path: Path) -> None:
    """Grow redraws more cells; Invert another set; Shrink and Invert again come back."""
    first = with_disc(page, files)
    page.fill("#mask-pixels input", "12")
    page.press("#mask-pixels input", "Enter")
    page.click("#mask-grow")
    grown = wait_cells_change(page, first)
    shot(page, "03-grown")
    assert redrawn(grown[1]) > redrawn(first[1]), (first[1], grown[1])
    page.click("#mask-invert")
    inverted = wait_cells_change(page, grown)
    shot(page, "04-inverted")
    mask = save_mask(page, tmp_path)
    assert 0.4 < mask.mean() < 0.95 and not mask[DISC[1], DISC[0]], "the disc should be kept after Invert"
    assert redrawn(inverted[1]) != redrawn(grown[1])
    page.click("#mask-invert")
    again = wait_cells_change(page, inverted)
    assert redrawn(again[1]) == redrawn(grown[1])
    page.click("#mask-shrink")
    wait_cells_change(page, again)
    assert iou(save_mask(page, tmp_path), disc_mask()) >= 0.7
    no_toasts(page)


def test_the_cells_view_is_what_the_run_redraws(page: Page, files: dict[str, Path], tmp_path: Path) -> None:
    """The cells shown before the run are the cells the in-paint run reports it regenerated."""
    view = fetch(with_disc(page, files)[0])
    page.click("#settings button.label-wrap")
    fix_seed_and_candidates(page, 5, 1)
    status = run_and_wait(page, "#run-inpaint")
    assert status.startswith("Done"), status
    page.check("text=Show the regenerated token cells")
    page.wait_for_selector("#cells img")
    shot(page, "05-inpainted")
    result = np.asarray(Image.open(download(page, tmp_path)).convert("RGB"), np.int16)
    after = np.asarray(fetch(page.evaluate("document.querySelector('#cells img').src")), np.int16)
    before = np.asarray(Image.open(files["scene"]).convert("RGB"), np.int16)
    preview_cells = np.abs(np.asarray(view, np.int16) - before).max(-1) > 0
    run_cells = np.abs(after - result).max(-1) > 0
    assert preview_cells.any() and (preview_cells == run_cells).all(), (
        f"{int((preview_cells != run_cells).sum())} pixels differ between the cells shown and the cells redrawn"
    )


def test_an_uploaded_mask_is_drawn_and_used_by_the_run(page: Page, files: dict[str, Path], tmp_path: Path) -> None:
    """A mask of twice the picture's size is scaled with a notice, drawn on the canvas, counted in the
    cells view and used by the run (nothing outside it changes); one of another shape is refused."""
    close_toasts(page)
    before = cells_state(page)
    page.set_input_files(UPLOAD_MASK, str(files["big"]))
    page.locator("[data-testid='toast-body']").filter(has_text="scaled to the picture").first.wait_for()
    state = wait_cells_change(page, before)
    shot(page, "06-uploaded")
    box = np.zeros((SIZE, SIZE), bool)
    box[40:90, 30:100] = True
    assert (save_mask(page, tmp_path) == box).all(), "the canvas should hold the uploaded mask"
    assert redrawn(state[1]) > 0
    status = run_and_wait(page, "#run-inpaint")
    assert status.startswith("Done"), status
    shot(page, "07-uploaded-inpainted")
    result = np.asarray(Image.open(download(page, tmp_path)).convert("RGB"), np.int16)
    original = np.asarray(scene(), np.int16)
    changed = np.abs(result - original).max(-1) > 0
    assert changed[box].mean() > 0.5 and not changed[~box].any()

    page.set_input_files(UPLOAD_MASK, str(files["shape"]))
    toast = page.locator("[data-testid='toast-body']").filter(has_text="another shape")
    toast.first.wait_for()
    text = toast.first.inner_text()
    assert "300×200 px" in text and "Traceback" not in text, text
    shot(page, "08-wrong-shape")


def test_clear_empties_the_view_and_out_paint_hides_the_tools(page: Page, files: dict[str, Path]) -> None:
    with_disc(page, files)
    page.click("#clear-mask")
    page.wait_for_function("() => !document.querySelector('#mask-cells img')", polling=200)
    assert "Paint on the picture" in page.inner_text("#mask-note")
    page.click("role=tab[name='Out-paint']")
    page.locator("#mask-tools").wait_for(state="hidden")
    page.click("role=tab[name='Class edit']")
    page.locator("#mask-tools").wait_for(state="visible")
    for helper in ("#mask-file", "#mask-changed"):  # the script's buttons stay out of sight
        assert not page.locator(helper).is_visible(), helper
    shot(page, "09-class-edit-tab")
