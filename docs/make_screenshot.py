"""Make docs/app-mid-edit.png: the studio caught while an in-paint streams coarse to fine.

    python docs/make_screenshot.py [--app-args "--model demo"]

Starts `app.py` on a free port, uploads the browser tests' drawn smiley, paints a stroke, asks
for 8 candidates and takes the screenshot while the status line still says "Scale k/K".
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def _tests_module(name: str) -> Any:
    """tests/NAME.py, loaded from its file (and known by its name, for the test modules that import it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


studio_server = _tests_module("studio_server")  # how the tests start the studio
_tests = _tests_module("test_app")  # the browser tests' Chromium settings and test picture
CHROMIUM, CHROMIUM_ARGS, picture = _tests.CHROMIUM, _tests.CHROMIUM_ARGS, _tests.picture


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--app-args", default="")
    p.add_argument("--out", default=str(ROOT / "docs" / "app-mid-edit.png"))
    args = p.parse_args()
    log = Path(tempfile.mkdtemp(prefix="var-edit-screenshot-"))
    with studio_server.running(shlex.split(args.app_args), log) as app:
        image = Path("/tmp/var-edit-screenshot.png")
        picture().save(image)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(app.url)
            page.wait_for_selector("#canvas button[title='Upload']")
            page.set_input_files("#canvas input[type=file]", str(image))
            page.wait_for_selector("#canvas button[title='Brush Size']")
            page.wait_for_function("() => !document.querySelector('#canvas').innerText.includes('processing')")
            # the page's script has checked that the canvas holds the picture the server has
            page.wait_for_function("() => window.__varEdit && window.__varEdit.inspect().settled", polling=200)
            box = page.locator("#canvas canvas").first.bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(cx - 60, cy + 40)
            page.mouse.down()
            page.mouse.move(cx + 60, cy + 40, steps=12)
            page.mouse.up()
            page.click("#settings button.label-wrap")
            page.fill("#opt-num-samples input[type=number]", "8")
            page.press("#opt-num-samples input[type=number]", "Enter")
            page.click("#settings button.label-wrap")  # closed again, so the page fits one screenshot
            page.click("#run-inpaint")
            page.wait_for_function(
                "() => /Scale [3-7]\\//.test(document.querySelector('#status textarea').value)"
                " && [...document.querySelectorAll('#live-preview img')].some(i => i.complete && i.naturalWidth > 0)",
                polling=20,
            )
            page.screenshot(path=args.out, full_page=True)
            browser.close()
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
