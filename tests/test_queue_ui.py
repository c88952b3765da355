"""A visitor whose edit waits behind another visitor's sees their place in line, in a real Chromium against a studio
started as the README says: while another client's long panorama holds the device step by step, the page's in-paint
says "Waiting, number 2 in line: ..." before its first scale, then runs to the end beside the panorama."""

from __future__ import annotations

import time

from chromium import BROWSER, studio_page
from playwright.sync_api import Browser
from studio_server import running
from test_app import SIZE, files, paint_line, run_and_wait, wait_picture

__all__ = ["files"]  # the fixture, shared with test_app.py

pytestmark = BROWSER
# Every value the status line takes, recorded in the page (a waiting line lasts one of the panorama's steps).
RECORD = """() => { window.__statuses = []; setInterval(() => {
    const v = document.querySelector('#status textarea').value;
    if (window.__statuses[window.__statuses.length - 1] !== v) window.__statuses.push(v); }, 10); }"""


def test_a_waiting_visitor_sees_their_place_in_line(browser: Browser, files, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.utils import Status

    with running([], tmp_path / "studio.log") as studio:
        other = Client(studio.url, verbose=False)
        panorama = other.submit(handle_file(str(files["image"])), right=16384 - SIZE, options={"seed": 1},
                                api_name="/outpaint")  # fmt: skip
        deadline = time.monotonic() + 600  # a loaded machine may start it late
        while panorama.status().code != Status.PROCESSING:  # the server says the panorama has started
            assert not panorama.done() and time.monotonic() < deadline, panorama.status()
            time.sleep(0.1)
        try:
            with studio_page(browser, studio.url) as pg:
                pg.set_input_files("#canvas input[type=file]", str(files["image"]))
                wait_picture(pg, SIZE, SIZE)
                pg.wait_for_timeout(300)  # the canvas's pointer handlers follow the new picture
                paint_line(pg)
                pg.evaluate(RECORD)
                assert run_and_wait(pg, "#run-inpaint").startswith("Done")
                seen = pg.evaluate("window.__statuses")
                assert not panorama.done(), "the in-paint waited for the whole panorama"
        finally:
            panorama.cancel()
    waiting = [s for s in seen if s.startswith("Waiting")]
    assert waiting and waiting[0].startswith("Waiting, number 2 in line: 1 other visitor's edit goes first"), seen
