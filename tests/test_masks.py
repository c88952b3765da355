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
