"""Out-paint: grow the canvas on any side (or zoom out) and fill what is new; a long canvas is
drawn as a panorama in overlapping windows."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import canvas
from ..errors import EditError
from ..masks import Mask
from .base import IMAGE, Inputs, Mode, field

SIDES = ("left", "right", "top", "bottom")
MAX_MARGIN = 16384  # pixels per side; the canvas limits of `Limits` apply on top
MAX_ZOOM_OUT = 8.0


def _side(side: str) -> Any:
    return field(
        side, int, f"{side.title()} (px)", f"pixels to add on the {side}.", 0, low=0, high=MAX_MARGIN,
        step=1, elem_id=f"out-{side}",
    )  # fmt: skip


class Outpaint(Mode):
    name = "outpaint"
    title = "Out-paint"
    tab_id = "outpaint"
    button = "Out-paint"
    button_id = "run-outpaint"
    doc = "Grow a picture's canvas and fill the new area so that it continues the picture."
    whole_canvas = True  # a model with aspect templates draws the grown canvas at its own aspect
    fields = (
        IMAGE,
        *(_side(side) for side in SIDES),
        field(
            "zoom_out",
            float,
            "Zoom-out factor",
            "above 1 it replaces the margins: the picture shrinks into the middle of a canvas of the same "
            "size and the border is generated.",
            low=1.0,
            high=MAX_ZOOM_OUT,
            step=0.25,
            studio_default=1.0,
            elem_id="out-zoom",
        ),
    )

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        if values["zoom_out"] is not None and values["zoom_out"] <= 1:
            values["zoom_out"] = None  # 1 is no zoom
        if values["zoom_out"] is None and not any(values[side] for side in SIDES):
            raise EditError("Nothing to out-paint: give pixels for at least one side, or a zoom_out above 1.")
        return values

    def inputs(self, request: Any, limits: Any) -> Inputs:
        picture = canvas.load_image(request.image, limits.picture_pixels)
        W, H = picture.size
        margins = margins_of(request.fields)
        if request.zoom_out is None:
            W, H = W + margins["left"] + margins["right"], H + margins["top"] + margins["bottom"]
        limits.check_canvas(W, H, request.options.num_samples)
        grown, mask_image = canvas.outpaint_canvas(picture, zoom_out=request.zoom_out, **margins)
        return Inputs(np.asarray(grown), Mask(np.asarray(mask_image) >= 128), picture.info)

    def windowed(self, inputs: Inputs) -> bool:
        from ..panorama import is_panorama  # panorama.py builds on the pipeline, which builds on the modes

        return is_panorama(inputs)


def margins_of(values: dict[str, Any]) -> dict[str, int]:
    """The pixels per side of out-paint field values."""
    return {side: values[side] for side in SIDES}
