"""Pixel helpers of the page (PIL only): display and canvas copies, tiles, tints."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

DISPLAY_MAX = 1024  # big pictures are shown as a downscaled copy; edits use the full-size original
PREVIEW_MAX = 384  # each candidate in the live preview strip
# The canvas shows every picture with this longer side (big photos downscaled, small pictures enlarged),
# so that one brush, about 3 % of it, suits every picture: Gradio re-reads the whole canvas whenever the
# brush is changed on its own, so the brush is never changed.
CANVAS_SIDE = 1024
BRUSH_SIZE = round(0.03 * CANVAS_SIDE)
BRUSH_COLOURS = ["#ff00ff", "#00e0ff", "#ffe600"]


def display_copy(image: Image.Image, longest_side: int = DISPLAY_MAX) -> Image.Image:
    """The picture as shown: big photos as a downscaled copy, others as they are."""
    longest = max(image.size)
    if longest <= longest_side:
        return image
    scale = longest_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def canvas_copy(image: Image.Image, side: int = CANVAS_SIDE) -> Image.Image:
    """The picture for the canvas: its longer side `side` (enlarged by 2x or more: pixels kept sharp)."""
    longest = max(image.size)
    if longest == side:
        return image
    scale = side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    sharp = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    return image.resize(size, sharp)


def grid_columns(count: int, most: int = 4) -> int:
    """Columns for `count` candidates: one row up to `most`, then rows as even as they can be (5 -> 3 + 2)."""
    rows = max(1, -(-count // most))
    return max(1, -(-count // rows))


def tile(images: Sequence[Image.Image], gap: int = 4, min_height: int = 256) -> Image.Image:
    """Candidates in a grid of `grid_columns` columns (each enlarged when tiny) for the live preview."""
    columns = grid_columns(len(images))
    cell_w, cell_h = max(im.width for im in images), max(im.height for im in images)
    factor = max(1, min_height // cell_h)
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * cell_w + gap * (columns - 1), rows * cell_h + gap * (rows - 1)), "white")
    for i, im in enumerate(images):
        row, col = divmod(i, columns)
        x = col * (cell_w + gap) + (cell_w - im.width) // 2
        sheet.paste(im.convert("RGB"), (x, row * (cell_h + gap) + (cell_h - im.height) // 2))
    if factor > 1:
        sheet = sheet.resize((sheet.width * factor, sheet.height * factor), Image.Resampling.NEAREST)
    return sheet


def tinted(canvas: Image.Image, mask: Image.Image) -> Image.Image:
    """The canvas with the masked (to be generated) area tinted magenta."""
    rgb = canvas.convert("RGB")
    return Image.composite(Image.blend(rgb, Image.new("RGB", rgb.size, (255, 0, 255)), 0.35), rgb, mask)
