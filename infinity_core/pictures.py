"""Pictures in and out of the model, as upstream converts them.

In: resize so the target size is covered (Lanczos), crop the centre, bytes -> [-1, 1]. Out: [-1, 1] ->
bytes by (x + 1) / 2 * 255 truncated. Pixel arrays are (B, H, W, 3) uint8 RGB; model pictures
(B, 3, H, W) float32 in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def fit(picture: Image.Image, height: int, width: int) -> Image.Image:
    """The RGB picture scaled to cover height x width (aspect kept) and cropped to it, centred."""
    picture = picture.convert("RGB")
    w, h = picture.size
    if w / h <= width / height:
        size = (width, int(width / (w / h)))
    else:
        size = (int((w / h) * height), height)
    arr = np.asarray(picture.resize(size, resample=Image.LANCZOS))
    top, left = (arr.shape[0] - height) // 2, (arr.shape[1] - width) // 2
    return Image.fromarray(arr[top : top + height, left : left + width])


def from_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [-1, 1] (x / 255 doubled minus 1, as upstream)."""
    x = pixels.permute(0, 3, 1, 2).float().div(255)
    return x.add(x).add_(-1)


def to_uint8(pictures: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 RGB, (x + 1) / 2 * 255 truncated as upstream."""
    return ((pictures + 1) / 2).permute(0, 2, 3, 1).mul(255).to(torch.uint8)
