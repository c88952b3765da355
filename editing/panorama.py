"""Panorama out-painting: a canvas much longer than wide is planned as a whole at the model's
resolution (layout and colour), then refined in overlapping square windows, in order, each
keeping the plan's coarse scales and redrawing only finer detail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PIL import Image

from . import canvas
from .compose import EditResult, compose, keep_info, params_of
from .options import EditOptions
from .plan import Inputs, ModelGeometry, Plan, plan
from .request import EditRequest

SamplePlans = Callable[[list[Plan]], list[np.ndarray]]


def is_panorama(inputs: Inputs) -> bool:
    """Whether a canvas is too far from square to be drawn in one region."""
    if inputs.picture is None:
        return False
    H, W = inputs.picture.shape[:2]
    return max(W, H) > 1.5 * min(W, H)


def run_panorama(
    request: EditRequest,
    inputs: Inputs,
    options_label: tuple[EditOptions, int],
    model: ModelGeometry,
    sample_plans: SamplePlans,
    names: tuple[str, list[str]],
) -> EditResult:
    """Out-paint a long canvas. sample_plans: the pipeline's sampling stage (plans -> uint8 (n, R, R, 3))."""
    options, label = options_label
    assert inputs.picture is not None and inputs.mask is not None
    grown, mask = inputs.picture, inputs.mask
    H, W = mask.shape
    whole = plan(request, model, inputs, replace(options, feather=0), label)
    planned = compose(whole, sample_plans([whole])[0], *names)
    side = min(W, H)
    stride = max(1, side // 2)
    long = max(W, H)
    starts = list(range(0, long - side, stride)) + [long - side]
    K = len(model.patch_nums)
    windows = replace(
        options, policy="strength", strength=max(options.strength, K // 3), num_samples=1, context=0.0, feather=0
    )
    finals = []
    for i, candidate in enumerate(planned.images):
        work = np.asarray(candidate).copy()
        todo = mask >= 0.5
        for j, start in enumerate(starts):
            box = (slice(0, H), slice(start, start + side)) if W >= H else (slice(start, start + side), slice(0, W))
            window_mask = np.zeros_like(mask)
            window_mask[box] = todo[box]
            if not window_mask.any():
                continue
            window = Inputs(work[box].copy(), window_mask[box])
            seeded = replace(windows, seed=options.seed + 1 + 1000 * i + j)
            step = plan(request, model, window, seeded, label, allow_full=True)
            drawn = compose(step, sample_plans([step])[0], *names).images[0]
            work[box] = np.where(window_mask[box][..., None] >= 0.5, np.asarray(drawn), work[box])
            todo &= window_mask < 0.5
        finals.append(canvas.paste_back(grown, work, canvas.feather_alpha(mask, 0)))
    params = params_of(replace(whole, options=options), *names)
    binary = Image.fromarray((mask >= 0.5).astype(np.uint8) * 255, "L")
    images = [Image.fromarray(f) for f in finals]
    keep_info(images, inputs.info)
    return EditResult(images, options.seed, params, binary, None, None)
