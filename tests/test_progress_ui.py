"""A long out-paint as a person follows it, in a real Chromium against the real app: the status line says the
window i of n, the share done and the time left; the run before's candidates are marked as earlier and can be
neither downloaded nor continued from while it runs; Stop says where the run ended.

Run with ``pytest -m browser tests/test_progress_ui.py``. Screenshots go to test-artifacts/guide/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chromium import BROWSER, studio_page
from guide import ARTIFACTS, guide_shot
from playwright.sync_api import Browser
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_app import SIZE, files, open_accordion, paint_line, run_and_wait, wait_picture

from studio.runs import EARLIER

__all__ = ["files"]  # the fixture, shared with test_app.py

pytestmark = BROWSER
STATUS = "document.querySelector('#status textarea').value"
RUNNING = re.compile(r"^Window (\d+) of (\d+), scale \d+/\d+ · \d+ % done · about (\d+ s|\d+ min \d\d s) left$")


def test_a_panorama_says_its_window_share_and_time_left(browser: Browser, app_url: str, files: dict[str, Path]):
    with studio_page(browser, app_url, height=1000) as pg:
        pg.set_input_files("#canvas input[type=file]", str(files["image"]))
        wait_picture(pg, SIZE, SIZE)
        pg.wait_for_timeout(300)  # the canvas's pointer handlers follow the new picture
        paint_line(pg)
        open_accordion(pg, "settings", "Candidates")
        pg.fill("#opt-num-samples input[type=number]", "1")
        pg.press("#opt-num-samples input[type=number]", "Enter")
        assert run_and_wait(pg, "#run-inpaint").startswith("Done")
        pg.wait_for_selector("#candidates img")

        pg.fill("#opt-num-samples input[type=number]", "4")
        pg.press("#opt-num-samples input[type=number]", "Enter")
        pg.click("role=tab[name='Out-paint']")
        right = pg.locator("#out-right input[type=number]")
        for _ in range(10):  # a freshly shown tab may reset a number typed at once (as test_app's zoom test)
            right.fill("2048")
            right.press("Enter")
            pg.wait_for_timeout(200)
            if right.input_value() == "2048":
                break
        pg.evaluate(f"{STATUS} = ''")
        pg.click("#run-outpaint")
        try:
            pg.wait_for_function(
                f"(re) => new RegExp(re).test({STATUS})", arg=RUNNING.pattern, timeout=180_000, polling=100
            )
        except PlaywrightTimeout:
            pg.screenshot(path=str(ARTIFACTS / "panorama-missed.png"))
            pytest.fail(
                f"the status line never said the window, share and time left: {pg.input_value('#status textarea')!r}"
            )
        status = pg.input_value("#status textarea")
        guide_shot(pg, "panorama-progress")
        window, windows = map(int, RUNNING.match(status).groups()[:2])
        assert 1 <= window <= windows and windows >= 8, status
        assert EARLIER in pg.inner_text("#candidates"), "the run before's candidates are not marked as earlier"
        assert not pg.is_enabled("#download") and not pg.is_enabled("#continue")

        pg.click("#stop")
        pg.wait_for_function(f"() => /^(Stopped|Done)/.test({STATUS})", timeout=120_000)
        status = pg.input_value("#status textarea")
        assert re.match(r"^Stopped after window \d+ of \d+, scale \d+/\d+ \(\d+ % done\)\.$", status), status
        pg.locator("[data-testid='toast-body']").filter(has_text="Stopped after window").first.wait_for()
        pg.wait_for_function("() => !document.querySelector('#candidates').innerText.includes('run before')")
        assert pg.is_enabled("#download") and pg.is_enabled("#continue"), "the earlier results are offered again"
