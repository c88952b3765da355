"""Plan: a request -> what the sampler needs (the first stage of `Editor.run`).

Geometry (the model's schedule a request is drawn at and the region of the picture it draws: the square around
the mask with its context on a model of one square geometry; on a model of several aspects, the window of the
aspect nearest the mask's box with its context, or the whole out-paint canvas at the aspect nearest its own), the
region at the model's picture size, the per-scale regenerate maps on the model's (h, w) token grids, the
resolved seed and conditioning, and the encoded picture (encoded by the model's family once per
distinct region; repeated edits and candidates reuse it).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from . import canvas
from .canvas import Region
from .errors import EditError
from .families import Conditioning, FamilyModel, ModelGeometry, aspect_ratio, fits, pick_geometry
from .limits import Limits
from .modes import Inputs, get_mode
from .options import EditOptions
from .request import EditRequest

MAX_SEED_DRAWN = 2**31 - 1


@dataclass
class Plan:
    """One request ready to sample: options with the seed fixed, its conditioning, the model geometry it is
    drawn at, the region (picture pixels, of the geometry's aspect), the region at model size x uint8 (H, W, 3),
    per-scale regenerate maps [(h_k * w_k,) bool] (None = generate), and the family's encoding of the region once
    the editor encoded it."""

    request: EditRequest
    options: EditOptions
    conditioning: Conditioning
    geometry: ModelGeometry
    inputs: Inputs
    region: Region
    x: np.ndarray | None
    regenerate: list[torch.Tensor] | None
    source: Any | None = None

    @property
    def seed(self) -> int:
        assert self.options.seed is not None
        return self.options.seed


def draw_seed() -> int:
    """A fresh seed for a request that has none (recorded in its result)."""
    return secrets.randbelow(MAX_SEED_DRAWN)


def load_inputs(request: EditRequest, limits: Limits) -> Inputs:
    """Read the request's picture and mask, as its mode prepares them (out-paint: the grown canvas)."""
    return get_mode(request.mode).inputs(request, limits)


def resolve(request: EditRequest, model: ModelGeometry) -> EditOptions:
    """The options with a seed (drawn when none was given), checked against the model's scales."""
    options = request.options
    if options.strength >= model.num_scales:
        raise EditError(f"'strength' is the first redrawn scale: 0 to {model.num_scales - 1} for this model.")
    if options.seed is None:
        options = options.replace(seed=draw_seed())
    return options


def plan(
    request: EditRequest,
    model: ModelGeometry,
    inputs: Inputs,
    options: EditOptions,
    conditioning: Conditioning,
    allow_full: bool = False,
    region: Region | None = None,
) -> Plan:
    """Geometry and regenerate maps of one request (inputs from `load_inputs`, options from `resolve`).

    allow_full: a mask over the whole picture is fine (panorama windows with the 'strength' policy);
    region: the window of the picture drawn, of the geometry's aspect (`choose_geometry`; None: the square around
    the mask with its context).
    """
    R = model.resolution
    if inputs.picture is None:
        H, W = model.size
        return Plan(request, options, conditioning, model, inputs, Region(0, 0, W, None if W == H else H), None, None)
    picture, mask = inputs.picture, inputs.mask
    assert mask is not None
    W, H = mask.size
    box = canvas.mask_box(mask.regenerate)
    if box is None:
        raise EditError("The mask is empty: paint over the area to regenerate.")
    whole = box == (0, 0, W, H) and bool(mask.regenerate.all())
    if whole and not (allow_full and options.policy == "strength" and options.strength > 0):
        raise EditError(
            "The mask covers the whole picture, so nothing is left to keep: leave part of it unpainted, "
            "or generate a new picture instead."
        )
    if region is None:
        region = canvas.edit_region(mask.regenerate, options.context, min_side=R // 2)
    # Beyond the picture's border the model may draw freely; that part is cropped away later.
    region_mask = mask.crop(region)
    region_image = canvas.crop(picture, region)
    if options.fill == "neutral":
        region_image = canvas.neutral_fill(region_image, region_mask.regenerate)
    x = _resize(region_image, model.size, cv2.INTER_CUBIC)
    regenerate = region_mask.scales(model.size, model.scales, options.policy, options.dilation, options.strength)
    return Plan(request, options, conditioning, model, inputs, region, x, regenerate)


def choose_geometry(
    geometries: tuple[ModelGeometry, ...], request: EditRequest, inputs: Inputs
) -> tuple[ModelGeometry, Region | None]:
    """The geometry a request is drawn at and the region of its picture drawn (None: `plan`'s square around the
    mask, or a generation's new picture). A generation: at its `aspect` (the default geometry without one). On a
    model with aspect templates: a mode that draws the whole canvas (out-paint) at the aspect nearest the canvas's,
    in the smallest window of that aspect holding it (`canvas.fitted_region`; a canvas longer than the templates is
    a panorama: None), any other the window of the aspect nearest the mask's box grown by its context
    (`canvas.aspect_region`). A model of one geometry draws everything at it, around the mask."""
    if inputs.picture is None:
        aspect = request.fields.get("aspect")
        return (geometries[0] if aspect is None else pick_geometry(geometries, aspect_ratio(aspect))), None
    H, W = inputs.picture.shape[:2]
    if len(geometries) == 1:
        return geometries[0], None
    if get_mode(request.mode).whole_canvas:
        if not fits(geometries, H / W):
            return geometries[0], None
        geometry = pick_geometry(geometries, H / W)
        return geometry, canvas.fitted_region(W, H, geometry.size)
    assert inputs.mask is not None
    box = canvas.context_box(inputs.mask.regenerate, request.options.context)
    if box is None:  # `plan` refuses it
        return geometries[0], None
    geometry = pick_geometry(geometries, (box[3] - box[1]) / (box[2] - box[0]))
    return geometry, canvas.aspect_region(box, W, H, geometry.size)


def _resize(image: np.ndarray, size: tuple[int, int], upscale: int) -> np.ndarray:
    """A picture at (H, W) pixels."""
    H, W = size
    if image.shape[:2] == (H, W):
        return np.ascontiguousarray(image)
    interpolation = cv2.INTER_AREA if image.shape[0] > H else upscale
    return cv2.resize(image, (W, H), interpolation=interpolation)


class EncodingCache:
    """A model's encodings of model-size pictures, newest kept, keyed by their pixels."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()

    def encode(self, model: FamilyModel, x: np.ndarray, device: str) -> Any:
        """uint8 (H, W, 3) -> the model's encoding of it (from the cache when the same pixels were seen)."""
        key = hashlib.sha1(x.tobytes()).hexdigest() + str(x.shape)  # one schedule per picture size
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        encoded = model.encode(x, device)
        self._items[key] = encoded
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return encoded
