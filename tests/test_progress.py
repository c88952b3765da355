"""Progress a person can read: a panorama reports its window i of n and the share of all its work done, and the
studio's status line and Stop message say so with the time left (on the tiny reference model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editing import EditOptions, Editor, EditRequest, Progress
from editing.panorama import window_boxes
from studio.progress import Clock, duration, status_text, stopped_text

TINY = Path(__file__).parent / "fixtures" / "tiny"


@pytest.fixture(scope="module")
def editor() -> Editor:
    return Editor.from_pretrained(TINY, device="cpu")


def test_a_panorama_reports_its_windows_and_the_share_of_all_its_work(editor: Editor) -> None:
    picture = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    request = EditRequest("outpaint", picture, left=64, right=128, options=EditOptions(seed=0, num_samples=2))
    job = editor.submit([request], previews=True)
    reports = list(job.updates())
    job.result()
    K = editor.num_scales
    canvas = np.zeros((64, 256), bool)
    canvas[:, :64] = canvas[:, 128:] = True
    windows = 2 * len(window_boxes(canvas))  # each candidate's windows
    assert windows >= 4
    assert {p.work for p in reports} == {(1 + windows) * K}
    assert [p.done for p in reports] == sorted(p.done for p in reports) and reports[-1].done == reports[-1].work
    assert {p.windows for p in reports} == {0, windows}
    assert [p.window for p in reports if p.step == K and p.windows] == list(range(1, windows + 1))
    assert all(not p.window for p in reports[:K])  # the plan of the whole comes first


def test_an_in_paint_is_one_pass(editor: Editor) -> None:
    picture = Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 40, 40))
    job = editor.submit([EditRequest("inpaint", picture, mask, options=EditOptions(seed=0))], previews=True)
    reports = list(job.updates())
    job.result()
    assert all(p.work == p.total and p.done == p.step and not p.windows for p in reports)


def test_the_status_line_says_the_window_the_share_and_the_time_left() -> None:
    clock = Clock()
    first = Progress(2, 8, {}, window=3, windows=20, done=2 * 8 + 16, work=21 * 8)
    assert clock.left(first, now=100.0) is None  # nothing timed yet
    later = Progress(4, 8, {}, window=3, windows=20, done=2 * 8 + 18, work=21 * 8)
    left = clock.left(later, now=104.0)  # 2 scales in 4 s; 134 to go
    assert left == pytest.approx(268.0)
    assert status_text(later, left) == "Window 3 of 20, scale 4/8 · 20 % done · about 4 min 28 s left"
    assert status_text(Progress(3, 8, {}, done=3, work=8), None) == "Scale 3/8 · 38 % done"
    assert status_text(Progress(3, 8, {}, done=3, work=24), 2.4).startswith("Planning the whole, scale 3/8")
    assert stopped_text(later) == " after window 3 of 20, scale 4/8 (20 % done)"
    assert stopped_text(None) == "" and duration(59.6) == "1 min 00 s"
