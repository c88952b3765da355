"""The Mask type: thresholded once where it enters, then cropped, resized and turned into per-scale maps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from editing import EditError, EditOptions, Mask
from editing.canvas import Region, load_mask
from editing.masks import finest_cells


def test_a_mask_is_thresholded_where_it_enters_and_nowhere_else(tmp_path):
    grey = np.full((8, 8), 100, np.uint8)
    grey[:, 4:] = 200
    Image.fromarray(grey).save(tmp_path / "grey.png")
    mask = Mask(load_mask(tmp_path / "grey.png", (8, 8)))
    assert mask.regenerate.dtype == bool and mask.coverage == 0.5
    with pytest.raises(TypeError, match="bool"):
        Mask(grey / 255.0)


def test_a_crop_past_the_border_regenerates_what_lies_outside_the_picture():
    regenerate = np.zeros((8, 8), bool)
    regenerate[2:4, 2:4] = True
    cropped = Mask(regenerate).crop(Region(-2, 0, 6)).regenerate
    assert cropped.shape == (6, 6)
    assert cropped[:, :2].all() and cropped[2:4, 4:6].all() and cropped[:, 2:4].sum() == 0


def test_scale_maps_and_cells_of_a_square_mask():
    regenerate = np.zeros((64, 64), bool)
    regenerate[0:40, 0:24] = True
    maps = Mask(regenerate).scales(32, (1, 2, 4, 8))
    assert [m.numel() for m in maps] == [1, 4, 16, 64] and not maps[0].any()
    cells = finest_cells(maps)
    assert cells.shape == (8, 8) and cells[:5, :3].all() and cells.sum() == 15


def test_the_canvas_size_rule_keeps_a_stroke_where_it_was_painted():
    regenerate = np.zeros((10, 20), bool)
    regenerate[2:6, 4:10] = True
    big = Mask(regenerate).scaled((40, 20)).regenerate
    assert big.shape == (20, 40) and big[5:11, 9:19].all() and not big[:3].any()


LOST = [{"replay": True}, {"keep_fitting": True}, {"policy": "compat"}, {"policy": "touch-all"}]


@pytest.mark.parametrize("given", LOST)
def test_options_that_did_not_win_are_not_options(given):
    with pytest.raises(EditError):
        EditOptions.from_dict(given)


def _photo(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic photo: a textured warm object (an ellipse and a bar) on a noisy, graded background -> the
    picture uint8 (H, W, 3) and where the object is, bool (H, W)."""
    import cv2

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([90 + 60 * xx / width, 120 + 40 * yy / height, 140 - 50 * xx / width], -1)
    background += cv2.GaussianBlur(rng.normal(0, 25, (height, width, 3)), (0, 0), 3)
    shape = np.zeros((height, width), np.uint8)
    cx, cy = width // 2, height // 2
    cv2.ellipse(shape, (cx, cy + height // 25), (int(width * 0.18), int(height * 0.28)), 15, 0, 360, 1, -1)
    cv2.rectangle(shape, (cx - width // 25, cy - int(height * 0.38)), (cx + width // 30, cy), 1, -1)
    texture = np.stack([200 + 0 * xx, 80 + 30 * np.sin(xx / 9), 60 + 20 * np.cos(yy / 7)], -1)
    picture = np.where(shape[..., None] > 0, texture + rng.normal(0, 12, (height, width, 3)), background)
    return np.clip(cv2.GaussianBlur(picture, (0, 0), 0.8), 0, 255).astype(np.uint8), shape.astype(bool)


def test_select_object_on_a_reduced_copy_matches_the_full_size_run():
    """GrabCut on a reduced copy with its edge refined at full size finds what GrabCut on the whole picture
    finds (the time each takes: bench/select_object.py)."""
    from editing.mask_tools import select_object

    picture, truth = _photo(600, 400)
    ys, xs = np.nonzero(truth)
    hint = np.zeros_like(truth)
    hint[ys.min() - 20 : ys.max() + 20, xs.min() - 20 : xs.max() + 20] = True  # a rough box around it
    fast = select_object(picture, hint, work_side=160)
    full = select_object(picture, hint, work_side=None)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / (a | b).sum())

    assert iou(full, truth) >= 0.97
    assert iou(fast, full) >= 0.97, iou(fast, full)
    assert iou(fast, truth) >= 0.97
    # The edge is found at full size, not copied blockwise from the reduced copy.
    rough = np.asarray(Image.fromarray(truth).resize((160, 107), Image.Resampling.NEAREST).resize((600, 400)))
    assert (fast != truth).sum() < (rough != truth).sum() / 10


def test_select_object_gives_the_same_mask_whatever_ran_before():
    """The same box on the same picture selects the same pixels, whatever OpenCV's random state other work
    left (GrabCut seeds its colour models from it)."""
    import cv2

    from editing.mask_tools import select_object

    picture, truth = _photo(600, 400)
    ys, xs = np.nonzero(truth)
    hint = np.zeros_like(truth)
    hint[ys.min() - 20 : ys.max() + 20, xs.min() - 20 : xs.max() + 20] = True
    masks = []
    for state in (1, 2, 3):
        cv2.setRNGSeed(state)
        masks.append(select_object(picture, hint, work_side=160))
    assert all(np.array_equal(masks[0], m) for m in masks[1:])
