"""Plan: a request -> what the sampler needs (the first stage of `Editor.run`).

Geometry (out-paint canvas, the square region around the mask with its context), the region at
the model's resolution, the per-scale regenerate maps, the resolved seed and class, and the encoded
picture (encoded once per distinct region; repeated edits and candidates reuse it).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from var_core import VQVAE

from . import canvas
from .canvas import Region
from .errors import EditError
from .limits import Limits
from .modes import Inputs, get_mode
from .options import EditOptions
from .request import EditRequest
from .teacher_forcing import EncodedImage, encode_source

MAX_SEED_DRAWN = 2**31 - 1


@dataclass(frozen=True)
class ModelGeometry:
    """What planning needs to know of the model: resolution R, schedule and classes."""

    resolution: int
    patch_nums: tuple[int, ...]
    num_classes: int


@dataclass
class Plan:
    """One request ready to sample: options with the seed fixed, label (num_classes = none), the
    region (square, picture pixels), the region at model size x uint8 (R, R, 3), per-scale
    regenerate maps [(pn_k^2,) bool] (None = generate), and the encoded region once `encode` ran."""

    request: EditRequest
    options: EditOptions
    label: int
    inputs: Inputs
    region: Region
    x: np.ndarray | None
    regenerate: list[torch.Tensor] | None
    source: EncodedImage | None = None

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


def resolve(request: EditRequest, model: ModelGeometry) -> tuple[EditOptions, int]:
    """The options with a seed (drawn when none was given) and the class label to sample with."""
    options = request.options
    label = get_mode(request.mode).label(request)
    if label is not None and not 0 <= label <= model.num_classes:
        named = f"Class {label}" if abs(label) < 10**9 else "That class"
        raise EditError(
            f"{named} does not exist: this model has classes 0 to {model.num_classes - 1} "
            f"({model.num_classes} for none)."
        )
    if options.strength >= len(model.patch_nums):
        raise EditError(f"'strength' is the first redrawn scale: 0 to {len(model.patch_nums) - 1} for this model.")
    if options.seed is None:
        options = replace(options, seed=draw_seed())
    return options, model.num_classes if label is None else label


def plan(
    request: EditRequest,
    model: ModelGeometry,
    inputs: Inputs,
    options: EditOptions,
    label: int,
    allow_full: bool = False,
) -> Plan:
    """Geometry and regenerate maps of one request (inputs from `load_inputs`, options/label from `resolve`).

    allow_full: a mask over the whole picture is fine (panorama windows with the 'strength' policy).
    """
    R = model.resolution
    if inputs.picture is None:
        return Plan(request, options, label, inputs, Region(0, 0, R), None, None)
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
    region = canvas.edit_region(mask.regenerate, options.context, min_side=R // 2)
    # Beyond the picture's border the model may draw freely; that part is cropped away later.
    region_mask = mask.crop(region)
    region_image = canvas.crop(picture, region)
    if options.fill == "neutral":
        region_image = canvas.neutral_fill(region_image, region_mask.regenerate)
    x = _resize(region_image, R, cv2.INTER_CUBIC)
    regenerate = region_mask.scales(R, model.patch_nums, options.policy, options.dilation, options.strength)
    return Plan(request, options, label, inputs, region, x, regenerate)


def _resize(image: np.ndarray, side: int, upscale: int) -> np.ndarray:
    if image.shape[0] == side:
        return np.ascontiguousarray(image)
    interpolation = cv2.INTER_AREA if image.shape[0] > side else upscale
    return cv2.resize(image, (side, side), interpolation=interpolation)


class EncodingCache:
    """Encodings of model-resolution pictures, newest kept, keyed by their pixels."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[str, EncodedImage] = OrderedDict()

    def encode(self, vqvae: VQVAE, x: np.ndarray, device: str) -> EncodedImage:
        """uint8 (R, R, 3) -> its EncodedImage (from the cache when the same pixels were seen)."""
        key = hashlib.sha1(x.tobytes()).hexdigest()
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        tensor = torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        encoded = encode_source(vqvae, tensor)
        self._items[key] = encoded
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return encoded
