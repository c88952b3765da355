"""Plan: a request -> what the sampler needs (the first stage of `Editor.run`).

Geometry (out-paint canvas, the square region around the mask with its context), the region at
the model's resolution, the per-scale keep maps, the resolved seed and class, and the encoded
picture (encoded once per distinct region; repeated edits and candidates reuse it).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch

from var_core import VQVAE

from . import canvas
from .canvas import Region
from .errors import EditError
from .limits import Limits
from .masks import scale_masks
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
class Inputs:
    """A request's pixels: picture uint8 (H, W, 3) (out-paint: the grown canvas) and mask float32
    (H, W), 1 = regenerate; both None for generation. info: what the results keep of the picture
    (canvas.kept_info: its ICC profile and EXIF)."""

    picture: np.ndarray | None
    mask: np.ndarray | None
    info: dict[str, bytes] = field(default_factory=dict)


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
    """Read the request's picture and mask (out-paint: build the grown canvas and its mask)."""
    if request.mode == "generate":
        return Inputs(None, None)
    picture = canvas.load_image(request.image, limits.picture_pixels)
    if request.mode == "outpaint":
        W, H = picture.size
        if request.zoom_out is None:
            W, H = W + request.left + request.right, H + request.top + request.bottom
        limits.check_canvas(W, H, request.options.num_samples)
        grown, mask_image = canvas.outpaint_canvas(picture, zoom_out=request.zoom_out, **request.margins)
        return Inputs(np.asarray(grown), np.asarray(mask_image, np.float32) / 255.0, picture.info)
    limits.check_canvas(picture.width, picture.height, request.options.num_samples)
    mask = canvas.load_mask(request.mask, picture.size, limits.picture_pixels)
    return Inputs(np.asarray(picture), mask, picture.info)


def resolve(request: EditRequest, model: ModelGeometry) -> tuple[EditOptions, int]:
    """The options with a seed (drawn when none was given) and the class label to sample with."""
    options = request.options
    if request.class_id is not None and request.class_id > model.num_classes:
        raise EditError(
            f"Class {request.class_id} does not exist: this model has classes 0 to {model.num_classes - 1} "
            f"({model.num_classes} for none)."
        )
    if options.strength >= len(model.patch_nums):
        raise EditError(f"'strength' is the first redrawn scale: 0 to {len(model.patch_nums) - 1} for this model.")
    if options.seed is None:
        options = replace(options, seed=draw_seed())
    label = request.class_id if request.mode in ("edit_class", "generate") and request.class_id is not None else None
    return options, model.num_classes if label is None else label


def plan(
    request: EditRequest,
    model: ModelGeometry,
    inputs: Inputs,
    options: EditOptions,
    label: int,
    allow_full: bool = False,
) -> Plan:
    """Geometry and keep maps of one request (inputs from `load_inputs`, options/label from `resolve`).

    allow_full: a mask over the whole picture is fine (panorama windows with the 'strength' policy).
    """
    R = model.resolution
    if inputs.picture is None:
        return Plan(request, options, label, inputs, Region(0, 0, R), None, None)
    picture, mask = inputs.picture, inputs.mask
    assert mask is not None
    coverage = float((mask >= 0.5).mean())
    if coverage == 0:
        raise EditError("The mask is empty: paint over the area to regenerate.")
    if coverage == 1 and not (allow_full and options.policy == "strength" and options.strength > 0):
        raise EditError(
            "The mask covers the whole picture, so nothing is left to keep: leave part of it unpainted, "
            "or generate a new picture instead."
        )
    H, W = mask.shape
    region = canvas.edit_region(mask, options.context, min_side=R // 2)
    # Beyond the picture's border the model may draw freely; that part is cropped away later.
    region_mask = np.maximum(canvas.crop(mask, region), region.outside(W, H))
    region_image = canvas.crop(picture, region)
    if options.fill == "neutral":
        region_image = canvas.neutral_fill(region_image, region_mask)
    x = _resize(region_image, R, cv2.INTER_CUBIC)
    mask_R = cv2.resize(region_mask, (R, R), interpolation=cv2.INTER_AREA if region.side > R else cv2.INTER_LINEAR)
    regenerate = scale_masks(
        torch.from_numpy(mask_R), model.patch_nums, options.policy, options.dilation, options.strength
    )
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

    def clear(self) -> None:
        self._items.clear()
