"""Undo and Redo around the mask tools, in a real Chromium against the real app: every tool (upload,
invert, grow, shrink, select, clear) is one step of the canvas's history; Undo gives back exactly the
mask before it, strokes included, Redo the tool's mask again, and the cells view follows.

Run with ``pytest -m browser tests/test_undo_ui.py``. Screenshots go to test-artifacts/undo/.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from chromium import CHROMIUM, studio_page
from PIL import Image
from playwright.sync_api import Browser, Page
from test_app import ROOT, wait_picture
from test_mask_tools_ui import SIZE, UPLOAD_MASK, box_stroke, scene

from studio.canvas_io import PREFIX
from studio.mask_panel import SELECTING

ARTIFACTS = ROOT / "test-artifacts" / "undo"
TOOLS = ("upload", "invert", "grow", "shrink", "select", "clear")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scene and a mask file for it (a box in the top-left, white = regenerate)."""
    d = tmp_path_factory.mktemp("undo-files")
    scene().save(d / "scene.png")
    box = np.zeros((SIZE, SIZE), np.uint8)
    box[40:90, 30:100] = 255
    Image.fromarray(box, "L").save(d / "mask.png")
    return {"scene": d / "scene.png", "mask": d / "mask.png"}


@pytest.fixture(scope="module")
def studio_tab(browser: Browser, app_url: str) -> Iterator[Page]:
    """One page for the module: each test ends back at the empty canvas, so the scene is uploaded once."""
    with studio_page(browser, app_url, ARTIFACTS, height=1300) as pg:
        yield pg


@pytest.fixture
def page(studio_tab: Page, files: dict[str, Path]) -> Page:
    """The module's page with the scene on the canvas and nothing painted (uploaded again when a
    test before left a mask behind), the cells note saying so."""
    pg = studio_tab
    if not pg.locator("#canvas button[title='Brush Size']").count() or mask_now(pg).any():
        pg.set_input_files("#canvas input[type=file]", str(files["scene"]))
        pg.wait_for_selector("#canvas button[title='Brush Size']")
        wait_picture(pg, SIZE, SIZE)
        pg.wait_for_timeout(300)  # the canvas's pointer handlers follow the new picture
    pg.wait_for_function(f"() => {NOTE_JS}.startsWith('Paint on the picture')", polling=100)
    return pg


def mask_now(pg: Page) -> np.ndarray:
    """The mask a run would read off the canvas now (bool, the canvas's size; all False: nothing painted)."""
    payload = json.loads(pg.evaluate(f"window.__varEdit.mask(['{PREFIX}'])[0]")[len(PREFIX) :])
    if not payload.get("mask"):
        return np.zeros((payload["height"], payload["width"]), bool)
    png = base64.b64decode(payload["mask"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("L")) >= 128


def wait_mask(pg: Page, expected: np.ndarray | None = None, unlike: np.ndarray | None = None) -> np.ndarray:
    """Wait until the canvas's mask equals `expected` (or differs from `unlike`); return it."""
    for _ in range(200):
        now = mask_now(pg)
        if (expected is not None and np.array_equal(now, expected)) or (
            unlike is not None and not np.array_equal(now, unlike)
        ):
            return now
        pg.wait_for_timeout(50)
    raise AssertionError("the canvas's mask did not become what was expected")


NOTE_JS = (
    "(() => { const t = document.querySelector('#mask-note').innerText.trim().split('\\n');"
    " return t[t.length - 1]; })()"
)


def note_now(pg: Page) -> str:
    """The cells note's sentence (without the progress timer a tool shows above it)."""
    return pg.evaluate(NOTE_JS)


def wait_note(pg: Page, note: str) -> None:
    pg.wait_for_function(f"(n) => {NOTE_JS} === n", arg=note, polling=100)


def history_button(pg: Page, name: str):
    return pg.locator(f"#canvas button[aria-label='{name}']").first


@pytest.mark.parametrize("tool", TOOLS)
def test_undo_and_redo_around_a_mask_tool(page: Page, files: dict[str, Path], tool: str) -> None:
    """Stroke, then the tool: Undo gives the stroke back exactly (and its cells), Redo the tool's mask."""
    empty = mask_now(page)
    box_stroke(page)
    stroke = wait_mask(page, unlike=empty)
    page.wait_for_function("() => document.querySelector('#mask-note').innerText.includes('redraws')", polling=100)
    stroke_note = note_now(page)

    if tool == "upload":
        page.set_input_files(UPLOAD_MASK, str(files["mask"]))
    elif tool == "clear":
        page.click("#clear-mask")
    else:
        page.click(f"#mask-{tool}")
    after = wait_mask(page, unlike=stroke)
    page.wait_for_function(  # the tool's own note: not the stroke's, a progress timer or Select object's "working"
        f"([n, w]) => {NOTE_JS} !== n && !/^[0-9.]+s$/.test({NOTE_JS}) && !{NOTE_JS}.startsWith(w)",
        arg=[stroke_note, SELECTING],
        polling=100,
    )
    after_note = note_now(page)
    page.screenshot(path=str(ARTIFACTS / f"{tool}-1-after.png"))

    history_button(page, "Undo").click()
    wait_mask(page, expected=stroke)
    wait_note(page, stroke_note)
    page.screenshot(path=str(ARTIFACTS / f"{tool}-2-undone.png"))

    assert history_button(page, "Redo").is_enabled(), "Redo should be offered after Undo"
    history_button(page, "Redo").click()
    wait_mask(page, expected=after)
    wait_note(page, after_note)

    history_button(page, "Undo").click()  # back to the stroke, and once more: the empty canvas
    wait_mask(page, expected=stroke)
    history_button(page, "Undo").click()
    wait_mask(page, expected=empty)
