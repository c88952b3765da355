"""The token cells a run redraws, drawn over the picture (numpy and PIL only).

A run samples the finest-scale cells of `EditResult.regenerated` over its `region` (a square, or a rectangle
at a model's aspect template), which may
reach past the picture's border (the model draws freely there, and that part is cropped away). With
paste-back (the default) only the masked pixels of the result change, so a sampled cell that holds no
masked pixel of the picture changes nothing. The page shows and counts only the cells that can change:
`redrawn`. Pixel row r of the region (0 at its top) lies in cell row r * P // rows (P cell rows, the region's
height in pixels), and columns likewise, everywhere here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from editing.canvas import Region

from .pictures import DISPLAY_MAX, display_copy

VIEW_MIN = 256  # the cells view's longer side at least (small pictures enlarged by whole pixels)
TINT = np.array([255, 64, 160], np.float32)


def _cell_of(start: int, stop: int, side: int, cells: int) -> np.ndarray:
    """The cell index of each region pixel row (or column) from start to stop."""
    return (np.arange(start, stop) * cells) // side


def _grid(cells: int | tuple[int, ...]) -> tuple[int, int]:
    """(P, Q) cell rows and columns (an int: a square grid)."""
    return (cells, cells) if isinstance(cells, int) else (int(cells[0]), int(cells[1]))


def covering(region: Region, cells: int | tuple[int, ...], width: int, height: int) -> np.ndarray:
    """Which of the region's (P, Q) cells (an int: P x P) hold pixels of the width x height picture, bool (P, Q);
    the rest pad the model's picture past the picture's border."""
    grid = _grid(cells)
    _, (rows, cols) = region.overlap(width, height)
    out = np.zeros(grid, bool)
    if rows.stop > rows.start and cols.stop > cols.start:
        r, c = (
            _cell_of(rows.start, rows.stop, region.rows, grid[0]),
            _cell_of(cols.start, cols.stop, region.side, grid[1]),
        )
        out[r[0] : r[-1] + 1, c[0] : c[-1] + 1] = True
    return out


def holding(mask: np.ndarray, region: Region, cells: int | tuple[int, ...]) -> np.ndarray:
    """Which cells of the region's (P, Q) grid (an int: P x P) hold at least one True pixel of `mask` (bool (H, W),
    the picture's size)."""
    grid = _grid(cells)
    H, W = mask.shape
    (prows, pcols), (rows, cols) = region.overlap(W, H)
    out = np.zeros(grid, bool)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return out
    r = _cell_of(rows.start, rows.stop, region.rows, grid[0])
    c = _cell_of(cols.start, cols.stop, region.side, grid[1])
    col_starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    sub = mask[prows, pcols]
    for i in np.unique(r):
        band = sub[r == i].any(0)  # one band of picture rows at a time: no full-size temporary
        out[i, c[col_starts]] = np.logical_or.reduceat(band, col_starts)
    return out


def redrawn(
    regenerated: np.ndarray | None, region: Region | None, mask: np.ndarray, paste_back: bool = True
) -> np.ndarray | None:
    """The finest-scale cells a run changes on the picture (bool (P, Q), None for generation): sampled,
    on the picture, and with paste-back holding masked pixels (mask: bool (H, W), the picture's size)."""
    if regenerated is None or region is None:
        return None
    H, W = mask.shape
    grid = regenerated.shape
    where = holding(mask, region, grid) if paste_back else covering(region, grid, W, H)
    return np.asarray(regenerated, bool) & where


def cells_overlay(picture: Image.Image, cells: np.ndarray | None, region: Region | None) -> Image.Image:
    """Tint the cells (bool (P, Q) over `region`, from `redrawn`) and draw their grid; a generated
    picture (no region) is returned as it is."""
    if cells is None or region is None:
        return picture.copy()
    base = np.asarray(picture.convert("RGB")).astype(np.float32)
    P, Q = cells.shape
    inside, (rows, cols) = region.overlap(base.shape[1], base.shape[0])
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return picture.copy()
    r, c = _cell_of(rows.start, rows.stop, region.rows, P), _cell_of(cols.start, cols.stop, region.side, Q)
    tint = cells[r][:, c]
    edge = (np.r_[False, r[1:] != r[:-1]])[:, None] | (np.r_[False, c[1:] != c[:-1]])[None, :]
    view = base[inside]
    view[tint] = view[tint] * 0.55 + TINT * 0.45
    view[edge & tint] = (255, 255, 255)
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def cells_view(picture: Image.Image, cells: np.ndarray | None, region: Region | None) -> Image.Image:
    """The cells overlay as the page shows it (display_copy of the overlay), drawn on the display copy for big
    pictures (no full-size overlay); small pictures enlarged by whole pixels to at least VIEW_MIN px on their
    longer side, so that their cells can be seen."""
    if region is None or max(picture.size) <= DISPLAY_MAX:
        view = display_copy(cells_overlay(picture, cells, region))
    else:
        shown = display_copy(picture)
        s = shown.width / picture.width
        height = None if region.height is None else max(1, round(region.height * s))
        scaled = Region(round(region.x0 * s), round(region.y0 * s), max(1, round(region.side * s)), height)
        view = cells_overlay(shown, cells, scaled)
    factor = -(-VIEW_MIN // max(view.size))
    if factor > 1:
        view = view.resize((view.width * factor, view.height * factor), Image.Resampling.NEAREST)
    return view
