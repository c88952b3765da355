"""Clicking a candidate in the page makes it the one Download saves (the select handler reads the click
from the event's data; the same handler called without a click answers one sentence, see
tests/test_bounded_requests.py)."""

from __future__ import annotations

import pytest
from chromium import BROWSER, studio_page
from test_app import download, files, fix_seed_and_candidates, open_on_canvas, paint_line, run_and_wait  # noqa: F401

from editing import read_params

pytestmark = BROWSER


def test_the_clicked_candidate_is_the_one_downloaded(browser, app_url, files, tmp_path):  # noqa: F811
    with studio_page(browser, app_url) as page:
        open_on_canvas(page, files["image"])
        paint_line(page)
        page.click("#settings button.label-wrap")
        fix_seed_and_candidates(page, 5, 2)
        assert run_and_wait(page, "#run-inpaint").startswith("Done")
        assert read_params(download(page, tmp_path))["candidate"] == 1
        page.locator("#candidates .thumbnail-item").nth(1).click()
        for _ in range(60):  # the click's answer comes from the server: poll what Download saves
            if read_params(download(page, tmp_path))["candidate"] == 2:
                break
            page.wait_for_timeout(500)
        else:
            pytest.fail("Download still saves the first candidate after the second was clicked")
