"""Panorama out-painting: a canvas much longer than wide is planned as a whole at the model's
resolution (layout and colour), then refined in overlapping square windows, in order, each
keeping the plan's coarse scales and redrawing only finer detail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from . import canvas
from .compose import EditResult, Naming, compose, keep_info, params_of
from .families import Conditioning, ModelGeometry
from .masks import Mask
from .options import EditOptions
from .plan import Inputs, Plan, plan
from .request import EditRequest
from .sample import row_seed

SamplePlans = Callable[[list[Plan], int, int], list[np.ndarray]]  # (plans, window, windows) -> pictures
PLAN_SIDE = 8  # the whole is planned on a canvas at most this many model resolutions long (then refined)


def is_panorama(inputs: Inputs) -> bool:
    """Whether a canvas is too far from square to be drawn in one region."""
    if inputs.picture is None:
        return False
    H, W = inputs.picture.shape[:2]
    return max(W, H) > 1.5 * min(W, H)


def _overview(inputs: Inputs, longest: int) -> Inputs:
    """The canvas for planning the whole: as it is, or shrunk to `longest` px on its long side. The plan's
    square region is as long as the canvas, so a 16384 x 64 canvas would need a 16384 x 16384 one."""
    assert inputs.picture is not None and inputs.mask is not None
    W, H = inputs.mask.size
    scale = longest / max(W, H)
    if scale >= 1:
        return inputs
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    painted = np.multiply(inputs.mask.regenerate, 255, dtype=np.uint8)
    mask = Mask(cv2.resize(painted, size, interpolation=cv2.INTER_AREA) >= 128)
    return Inputs(cv2.resize(inputs.picture, size, interpolation=cv2.INTER_AREA), mask)


def _full_size(planned: np.ndarray, grown: np.ndarray, todo: np.ndarray) -> np.ndarray:
    """The planned canvas at the canvas's size: the plan where the mask is, the picture elsewhere."""
    if planned.shape == grown.shape:
        return planned.copy()
    H, W = todo.shape
    return np.where(todo[..., None], cv2.resize(planned, (W, H), interpolation=cv2.INTER_CUBIC), grown)


def window_boxes(mask: np.ndarray) -> list[tuple[slice, slice]]:
    """The square windows along a long canvas (mask: bool (H, W), True = to draw) that have something left
    to draw when drawn in order, each overlapping the one before by half."""
    H, W = mask.shape
    side = min(W, H)
    stride = max(1, side // 2)
    long = max(W, H)
    todo = mask.copy()
    boxes = []
    for start in [*range(0, long - side, stride), long - side]:
        box = (slice(0, H), slice(start, start + side)) if W >= H else (slice(start, start + side), slice(0, W))
        if todo[box].any():
            boxes.append(box)
            todo[box] = False
    return boxes


def panorama_passes(inputs: Inputs, options: EditOptions) -> int:
    """Sampling passes of a panorama: the plan of the whole, then each window of each candidate."""
    assert inputs.mask is not None
    return 1 + options.num_samples * len(window_boxes(inputs.mask.regenerate))


def run_panorama(
    request: EditRequest,
    inputs: Inputs,
    options: EditOptions,
    conditioning: Conditioning,
    model: ModelGeometry,
    sample_plans: SamplePlans,
    names: Naming,
) -> EditResult:
    """Out-paint a long canvas. sample_plans: the pipeline's sampling stage, one pass ((plans, window,
    windows) -> uint8 (n, R, R, 3); window 0 for the plan of the whole)."""
    assert inputs.picture is not None and inputs.mask is not None
    grown, mask = inputs.picture, inputs.mask
    whole = plan(
        request, model, _overview(inputs, PLAN_SIDE * model.resolution), options.replace(feather=0), conditioning
    )
    boxes = window_boxes(mask.regenerate)
    planned = compose(whole, sample_plans([whole], 0, 0)[0], names)
    K = model.num_scales
    windows = options.replace(
        policy="strength", strength=max(options.strength, K // 3), num_samples=1, context=0.0, feather=0
    )
    finals = []
    for i, (candidate, seed) in enumerate(zip(planned.images, planned.seeds, strict=True)):
        todo = mask.regenerate.copy()  # what no window has drawn yet
        work = _full_size(np.asarray(candidate), grown, todo)
        for j, box in enumerate(boxes):
            # Each window is sampled on its own, scale by scale in its visitor's turns: other visitors'
            # edits go between any two of its steps, and only the window's pixels are copied.
            window_mask = todo[box].copy()
            window = Inputs(work[box].copy(), Mask(window_mask))
            # From the candidate's own seed, so that the request with that seed alone makes this candidate again.
            seeded = windows.replace(seed=row_seed(seed, 1 + j))
            step = plan(request, model, window, seeded, conditioning, allow_full=True)
            number = i * len(boxes) + j + 1
            drawn = compose(step, sample_plans([step], number, len(boxes) * len(planned.images))[0], names).images[0]
            work[box] = np.where(window_mask[..., None], np.asarray(drawn), work[box])
            todo[box] = False
        finals.append(canvas.paste_into(grown, work, (0, 0), mask.regenerate, 0))
        del work
    params = params_of(replace(whole, options=options), names)
    keep_info(finals, inputs.info)
    return EditResult(finals, options.seed, params, mask.image(), None, None)
