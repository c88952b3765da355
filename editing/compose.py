"""Compose: model-resolution candidates -> full pictures with their parameters (the last stage).

The region is resized back to its size in the picture, pasted in, and blended with a feathered
edge inside the mask, so every pixel outside the mask is the original's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from . import canvas
from .canvas import Region
from .masks import Mask, finest_cells
from .plan import Plan
from .sample import row_seed


@dataclass
class EditResult:
    """images: full-resolution RGB candidates, their `info` holding the input's ICC profile and EXIF
    (`save_png` writes them); seed: the request's seed; params: what made them (PNG metadata); mask:
    'L', 255 = regenerated; regenerated: the finest scale's sampled cells (h, w) bool and region: where
    they lie in picture pixels (both None for generation)."""

    images: list[Image.Image]
    seed: int
    params: dict[str, Any]
    mask: Image.Image
    regenerated: np.ndarray | None
    region: Region | None

    @property
    def seeds(self) -> list[int]:
        """Each candidate's own seed, distinct: the same request with `seed` = seeds[i] and `num_samples` 1 makes
        candidate i again, pixel for pixel (seeds[0] is the request's seed)."""
        return [row_seed(self.seed, i) for i in range(len(self.images))]

    def png_params(self, i: int) -> dict[str, Any]:
        """What candidate i's PNG records: the parameters, its number (from 1) and its own seed."""
        return {**self.params, "candidate": i + 1, "candidate_seed": self.seeds[i]}


@dataclass(frozen=True)
class Naming:
    """What results record of their model: its name, its class names (empty for a text model) and the
    registered options its family uses (recorded even at their default)."""

    model: str
    labels: list[str]
    options: frozenset[str] = frozenset()


def params_of(plan: Plan, naming: Naming) -> dict[str, Any]:
    """The parameters recorded with every result: model, conditioning (class or prompt), every option (seed
    included) and the mode with its fields (`EditRequest.recorded`, which the CLI's rerun-skip reads back)."""
    request = plan.request
    params: dict[str, Any] = {"model": naming.model, **plan.conditioning.recorded(naming.labels)}
    options = plan.options.to_dict()
    params.update(options)
    params.update({name: getattr(plan.options, name) for name in sorted(naming.options) if name not in options})
    params.update(request.recorded())
    if request.name is not None:
        params["name"] = request.name
    return params


def compose(plan: Plan, generated: np.ndarray, naming: Naming) -> EditResult:
    """generated: uint8 (n, H, W, 3) candidates of the plan's region at the model's size -> EditResult."""
    params = params_of(plan, naming)
    picture, mask = plan.inputs.picture, plan.inputs.mask
    if picture is None or mask is None:
        full = np.ones(generated.shape[1:3], np.uint8) * 255
        images = [Image.fromarray(g) for g in generated]
        return EditResult(images, plan.seed, params, Image.fromarray(full, "L"), None, None)
    images = [_paste(picture, mask, plan.region, g, plan.options.feather, plan.options.paste_back) for g in generated]
    keep_info(images, plan.inputs.info)
    finest = None if plan.regenerate is None else finest_cells(plan.regenerate, plan.geometry.scales[-1])
    return EditResult(images, plan.seed, params, mask.image(), finest, plan.region)


def keep_info(images: list[Image.Image], info: dict[str, bytes]) -> None:
    """Give each result the input's ICC profile and EXIF (canvas.kept_info), for `save_png`."""
    for image in images:
        image.info.update(info)


def _paste(
    picture: np.ndarray, mask: Mask, region: Region, generated_R: np.ndarray, feather: int, paste_back: bool
) -> Image.Image:
    """The region's drawing (uint8 (h, w, 3) at the model's size) at the region's size, pasted into the picture."""
    W, H = mask.size
    size, drawn = (region.rows, region.side), generated_R.shape[:2]
    generated = (
        generated_R
        if drawn == size
        else cv2.resize(
            generated_R, (region.side, region.rows),
            interpolation=cv2.INTER_CUBIC if region.side > drawn[1] else cv2.INTER_AREA,
        )
    )  # fmt: skip
    if paste_back:
        return canvas.paste_into(picture, generated, (region.x0, region.y0), mask.regenerate, feather)
    full = Image.fromarray(picture)
    inside, local = region.overlap(W, H)
    full.paste(Image.fromarray(np.ascontiguousarray(generated[local])), (inside[1].start, inside[0].start))
    return full
