"""Per-candidate seeds in the studio: each candidate's caption shows its own seed, its PNG records it, and
"Make this one again" makes the picked candidate alone, pixel for pixel, from that seed; and the mistakes
of opening something that is not a picture each get one sentence in a toast."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from chromium import BROWSER, studio_page
from PIL import Image
from playwright.sync_api import Browser, Page
from test_app import (
    ROOT,
    download,
    fix_seed_and_candidates,
    open_accordion,
    open_on_canvas,
    paint_line,
    picture,
    run_and_wait,
)

from editing import read_params

pytestmark = BROWSER
TOAST = "[data-testid='toast-body']"
ARTIFACTS = ROOT / "test-artifacts" / "again"
SENTENCE = "is not an image this app can read; use a PNG, JPEG, WebP or similar."


@pytest.fixture
def page(browser: Browser, app_url: str) -> Iterator[Page]:
    with studio_page(browser, app_url) as pg:
        yield pg


def captions(pg: Page, n: int) -> list[str]:
    pg.wait_for_function(f"() => document.querySelectorAll('#candidates .caption-label').length === {n}")
    return [c.strip() for c in pg.locator("#candidates .caption-label").all_inner_texts()]


def download_named(pg: Page, folder: Path, part: str) -> Path:
    """Download PNG once it gives the file whose name holds `part` (the pick reaches the server after the click)."""
    for _ in range(60):
        path = download(pg, folder)
        if part in path.name:
            return path
        pg.wait_for_timeout(500)
    pytest.fail(f"Download PNG never gave the file of {part}")


def test_make_this_one_again_gives_the_candidate_alone(page: Page, tmp_path: Path) -> None:
    photo = tmp_path / "emoji.png"
    picture().save(photo)
    open_on_canvas(page, photo)
    paint_line(page)
    page.wait_for_function("() => window.__varEdit.inspect().painted > 0")
    open_accordion(page, "settings", "Candidates")
    fix_seed_and_candidates(page, 5, 3)
    assert run_and_wait(page, "#run-inpaint").startswith("Done: 3 candidate(s)")

    shown = captions(page, 3)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "three-candidates.png"), full_page=True)
    seeds = [int(re.fullmatch(r"#\d · seed (\d+)", caption)[1]) for caption in shown]
    assert shown[0] == "#1 · seed 5" and len(set(seeds)) == 3, shown
    page.locator("#candidates .thumbnail-item").nth(1).click()
    second = download_named(page, tmp_path / "first", f"seed{seeds[1]}")
    assert read_params(second)["candidate_seed"] == seeds[1] and read_params(second)["candidate"] == 2

    page.evaluate("document.querySelector('#status textarea').value = ''")
    page.click("#again")
    page.wait_for_function(
        "() => /^(Done|Failed)/.test(document.querySelector('#status textarea').value)"
        f" || document.querySelector(\"{TOAST}\") !== null",
        timeout=120_000,
    )
    assert not page.locator(TOAST).count(), page.locator(TOAST).all_inner_texts()
    assert page.input_value("#status textarea").startswith("Done: 1 candidate(s)")
    assert captions(page, 1) == [f"#1 · seed {seeds[1]}"]
    page.screenshot(path=str(ARTIFACTS / "made-again.png"), full_page=True)
    assert page.input_value("#opt-seed input") == str(seeds[1])
    assert not page.is_checked("#random-seed input[type=checkbox]")
    again = download_named(page, tmp_path / "again", f"seed{seeds[1]}")
    with Image.open(second) as a, Image.open(again) as b:
        assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))), "not the same picture"


OPEN = "input[type=file][data-testid='Open image file…-upload-button']"


@pytest.mark.parametrize("where", ["#canvas input[type=file]", OPEN])
@pytest.mark.parametrize("name", ["notes.txt", "holiday.png"])
def test_a_file_that_is_not_a_picture_gets_one_sentence(page: Page, tmp_path: Path, where: str, name: str) -> None:
    (tmp_path / name).write_text("a shopping list, not a picture\n")
    page.set_input_files(where, str(tmp_path / name))
    toast = page.locator(TOAST).filter(has_text=SENTENCE)
    toast.first.wait_for()
    (text,) = page.locator(TOAST).all_inner_texts()
    assert "Traceback" not in text and "Invalid file type" not in text
    assert name not in text
