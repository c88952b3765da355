"""The regenerated token cells drawn over a result (numpy and PIL only)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from editing.canvas import Region

from .pictures import DISPLAY_MAX, display_copy

VIEW_MIN = 256  # the cells view's longer side at least (small pictures enlarged by whole pixels)
TINT = np.array([255, 64, 160], np.float32)


def cells_overlay(picture: Image.Image, regenerated: np.ndarray | None, region: Region | None) -> Image.Image:
    """Tint the finest-scale cells that were sampled (regenerated: (P, P) bool over `region`) and
    draw their grid; a generated picture (no region) is returned as it is."""
    if regenerated is None or region is None:
        return picture.copy()
    base = np.asarray(picture.convert("RGB")).astype(np.float32)
    P, side = regenerated.shape[0], region.side
    cell = np.asarray(Image.fromarray(regenerated.astype(np.uint8) * 255).resize((side, side), Image.NEAREST)) > 0
    grid = np.zeros((side, side), bool)
    ticks = (np.arange(1, P) * side / P).astype(int)
    grid[ticks, :] = True
    grid[:, ticks] = True
    inside, local = region.overlap(base.shape[1], base.shape[0])
    view = base[inside]
    tint = cell[local]
    view[tint] = view[tint] * 0.55 + TINT * 0.45
    view[grid[local] & tint] = (255, 255, 255)
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def cells_view(picture: Image.Image, regenerated: np.ndarray | None, region: Region | None) -> Image.Image:
    """The cells overlay as the page shows it (display_copy of the overlay), drawn on the display copy for big
    pictures (no full-size overlay); small pictures enlarged by whole pixels to at least VIEW_MIN px on their
    longer side, so that their cells can be seen."""
    if region is None or max(picture.size) <= DISPLAY_MAX:
        view = display_copy(cells_overlay(picture, regenerated, region))
    else:
        shown = display_copy(picture)
        s = shown.width / picture.width
        scaled = Region(round(region.x0 * s), round(region.y0 * s), max(1, round(region.side * s)))
        view = cells_overlay(shown, regenerated, scaled)
    factor = -(-VIEW_MIN // max(view.size))
    if factor > 1:
        view = view.resize((view.width * factor, view.height * factor), Image.Resampling.NEAREST)
    return view
