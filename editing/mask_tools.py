"""Making masks the way people make them: invert, grow or shrink, select an object (GrabCut),
and which token cells a mask will redraw before anything runs.

Masks here are bool (H, W) arrays, True = regenerate.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import EditError

WORK_SIDE = 256  # GrabCut's first pass runs on a copy with at most this longer side (pixels)


def invert(mask: np.ndarray) -> np.ndarray:
    """Everything that was kept is regenerated and the other way round."""
    return ~mask.astype(bool)


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the mask by `pixels` (a disc), or shrink it for a negative number."""
    if pixels == 0:
        return mask.astype(bool)
    radius = abs(int(pixels))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    binary = mask.astype(np.uint8)
    changed = cv2.dilate(binary, disc) if pixels > 0 else cv2.erode(binary, disc)
    return changed.astype(bool)


def select_object(
    picture: np.ndarray, hint: np.ndarray, iterations: int = 5, work_side: int | None = WORK_SIDE
) -> np.ndarray:
    """The object inside a rough box or strokes, by OpenCV's GrabCut (nothing downloaded).

    picture: uint8 (H, W, 3); hint: bool (H, W), what the user drew around or over the object; its
    bounding box is GrabCut's rectangle (outside: background; inside: to be decided). GrabCut runs on a
    copy whose longer side is `work_side` (None: on the picture itself, several times slower), then its
    edge is refined at full size in a narrow band, so a photo takes about as long as a thumbnail.
    """
    ys, xs = np.nonzero(hint)
    if len(xs) == 0:
        raise EditError("Draw a rough box or a few strokes around the object first.")
    H, W = hint.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise EditError("Draw a larger box around the object: it must be a few pixels wide and tall.")
    if (x1 - x0) * (y1 - y0) >= 0.98 * H * W:
        raise EditError("The box covers the whole picture; draw it closer around the object.")
    box = (int(x0), int(y0), int(x1), int(y1))
    picture = np.ascontiguousarray(picture)
    scale = 1.0 if work_side is None else min(1.0, work_side / max(H, W))
    if scale == 1.0:
        return _grabcut_box(picture, box, iterations)
    small = cv2.resize(picture, (max(1, round(W * scale)), max(1, round(H * scale))), interpolation=cv2.INTER_AREA)
    sx0, sy0 = int(x0 * scale), int(y0 * scale)
    small_box = (sx0, sy0, max(sx0 + 2, round(x1 * scale)), max(sy0 + 2, round(y1 * scale)))
    rough = _grabcut_box(small, small_box, iterations).astype(np.uint8)
    found = cv2.resize(rough, (W, H), interpolation=cv2.INTER_LINEAR).astype(bool)
    return _refine_edge(picture, found, box, band=max(2, int(np.ceil(1.5 / scale))))


def _grabcut_box(picture: np.ndarray, box: tuple[int, int, int, int], iterations: int) -> np.ndarray:
    """GrabCut from a rectangle (x0, y0, x1, y1) -> bool (H, W), True = the object."""
    labels = np.zeros(picture.shape[:2], np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    x0, y0, x1, y1 = box
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models from OpenCV's thread RNG: the same box, the same object
    cv2.grabCut(picture, labels, (x0, y0, x1 - x0, y1 - y0), background, foreground, iterations, cv2.GC_INIT_WITH_RECT)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def _refine_edge(picture: np.ndarray, found: np.ndarray, box: tuple[int, int, int, int], band: int) -> np.ndarray:
    """The enlarged selection `found` with its edge redone at full size: GrabCut decides only the pixels within
    `band` of the edge (inside the box), on a crop around the box; everything else stays as found."""
    if not found.any():
        return found
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    binary = found.astype(np.uint8)
    labels = np.full(found.shape, cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(binary, disc) > 0] = cv2.GC_PR_BGD
    labels[found] = cv2.GC_PR_FGD
    labels[cv2.erode(binary, disc) > 0] = cv2.GC_FGD
    x0, y0, x1, y1 = box
    inside = np.zeros(found.shape, bool)
    inside[y0:y1, x0:x1] = True
    labels[~inside] = cv2.GC_BGD
    H, W = found.shape
    crop = (slice(max(0, y0 - band), min(H, y1 + band)), slice(max(0, x0 - band), min(W, x1 + band)))
    part = np.ascontiguousarray(labels[crop])
    sure_bg, sure_fg = (part == cv2.GC_BGD) | (part == cv2.GC_PR_BGD), (part == cv2.GC_FGD) | (part == cv2.GC_PR_FGD)
    if not sure_bg.any() or not sure_fg.any():  # GrabCut needs both to learn its colour models
        return found & inside
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(picture[crop]), part, None, background, foreground, 2, cv2.GC_INIT_WITH_MASK)
    out = np.zeros(found.shape, bool)
    out[crop] = (part == cv2.GC_FGD) | (part == cv2.GC_PR_FGD)
    return out
