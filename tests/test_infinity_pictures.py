"""Pictures in and out of Infinity as upstream converts them: cover-resize and centre crop, bytes <-> [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import infinity_core as ic


def test_fit_covers_then_crops_the_centre():
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 150:] = 255  # black left half, white right half: scaled to 192 x 64, the middle 64 columns kept
    out = ic.fit(Image.fromarray(wide), 64, 64)
    assert out.size == (64, 64) and out.mode == "RGB"
    arr = np.asarray(out)
    assert arr[:, :28].max() <= 5 and arr[:, 36:].min() >= 250
    tall = ic.fit(Image.fromarray(np.zeros((300, 100, 3), np.uint8)), 176, 352)
    assert tall.size == (352, 176)


def test_bytes_round_trip_through_minus_one_to_one():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16, 1).expand(1, 16, 16, 3).contiguous()
    pictures = ic.from_uint8(pixels)
    assert pictures.shape == (1, 3, 16, 16) and pictures.min() == -1 and pictures.max() == 1
    back = ic.to_uint8(pictures)
    assert (back.int() - pixels.int()).abs().max() <= 1  # truncation, as upstream
