"""Making masks the way people make them: invert, grow or shrink, select an object (GrabCut),
and which token cells a mask will redraw before anything runs.

Masks here are bool (H, W) arrays, True = regenerate.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import EditError


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


def select_object(picture: np.ndarray, hint: np.ndarray, iterations: int = 5) -> np.ndarray:
    """The object inside a rough box or strokes, by OpenCV's GrabCut (nothing downloaded).

    picture: uint8 (H, W, 3); hint: bool (H, W), what the user drew around or over the object; its
    bounding box is GrabCut's rectangle (outside: background; inside: to be decided).
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
    labels = np.zeros((H, W), np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    rect = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
    cv2.grabCut(np.ascontiguousarray(picture), labels, rect, background, foreground, iterations, cv2.GC_INIT_WITH_RECT)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
