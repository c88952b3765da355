"""Pixel helpers of the page (PIL and numpy only): display copies, masks from canvas layers, tiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

DISPLAY_MAX = 1024  # big photos are shown as a downscaled copy; edits use the full-size original
PREVIEW_MAX = 384  # each candidate in the live preview strip


def display_copy(image: Image.Image, longest_side: int = DISPLAY_MAX) -> Image.Image:
    """The picture as shown: big photos as a downscaled copy, others as they are."""
    longest = max(image.size)
    if longest <= longest_side:
        return image
    scale = longest_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def same_picture(a: Image.Image, b: Image.Image | None) -> bool:
    """Whether `a` is (up to canvas round-trip noise) the picture `b`."""
    if b is None or a.size != b.size:
        return False
    small_a, small_b = (im.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR) for im in (a, b))
    diff = np.abs(np.asarray(small_a, np.int16) - np.asarray(small_b, np.int16))
    return float(diff.mean()) < 2.0


def mask_from_layers(layers: Sequence[Image.Image], size: tuple[int, int]) -> Image.Image:
    """Union of the painted layers' alpha, as an 'L' mask (255 = regenerate) of `size`."""
    union = np.zeros((size[1], size[0]), bool)
    for layer in layers:
        alpha = layer.convert("RGBA").getchannel("A").point(lambda v: 255 if v > 0 else 0)
        if alpha.size != size:  # a display copy: scale the strokes to the full-resolution original
            alpha = alpha.resize(size, Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
        union |= np.asarray(alpha) > 0
    return Image.fromarray(union.astype(np.uint8) * 255, "L")


def tile(images: Sequence[Image.Image], gap: int = 4, min_height: int = 256) -> Image.Image:
    """Candidates side by side (enlarged when tiny) for the live preview."""
    height = max(im.height for im in images)
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for im in images:
        sheet.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    factor = max(1, min_height // height)
    if factor > 1:
        sheet = sheet.resize((sheet.width * factor, sheet.height * factor), Image.Resampling.NEAREST)
    return sheet


def brush_size(image: Image.Image) -> int:
    """A brush radius that suits the picture: about 3 % of its longer side, at least 2 px."""
    return max(2, round(0.03 * max(image.size)))


def tinted(canvas: Image.Image, mask: Image.Image) -> Image.Image:
    """The canvas with the masked (to be generated) area tinted magenta."""
    rgb = canvas.convert("RGB")
    return Image.composite(Image.blend(rgb, Image.new("RGB", rgb.size, (255, 0, 255)), 0.35), rgb, mask)
