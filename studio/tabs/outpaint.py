"""Out-paint: grow the canvas on any side (or zoom out) and fill what is new."""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from editing import EditRequest, outpaint_canvas

from ..pictures import tinted
from . import Run, Values

SIDES = ("left", "right", "top", "bottom")


def margins(values: Values, widgets: dict[str, gr.components.Component]) -> dict[str, Any]:
    """The request's out-paint fields from the widgets (zoom 1 = off)."""
    out: dict[str, Any] = {side: values[widgets[side]] or 0 for side in SIDES}
    zoom = values[widgets["zoom_out"]]
    out["zoom_out"] = float(zoom) if zoom and float(zoom) > 1 else None
    return out


def describe(picture: Image.Image, request_fields: dict[str, Any]) -> tuple[Image.Image, str]:
    """The grown canvas with the new area tinted, and a sentence saying what grows."""
    EditRequest("outpaint", picture, **request_fields)  # the request's own checks, one sentence each
    canvas, mask = outpaint_canvas(picture, **request_fields)
    W, H = picture.size
    zoom = request_fields["zoom_out"]
    if zoom:
        w, h = round(W / zoom), round(H / zoom)
        text = (
            f"Zoom out {zoom:g}x: the picture shrinks to {w}×{h} px in the middle of a {W}×{H} px canvas; "
            "the tinted border around it will be generated."
        )
    else:
        grown = ", ".join(f"{request_fields[s]} px {s}" for s in SIDES if request_fields[s])
        size = f"{W}×{H} to {canvas.width}×{canvas.height} px"
        text = f"The canvas grows from {size} ({grown}); the tinted area will be generated."
    return tinted(canvas, mask), text


def build() -> tuple[list[Run], dict[str, gr.components.Component], gr.Button, gr.Image, gr.Markdown]:
    widgets: dict[str, gr.components.Component] = {}
    with gr.Tab("Out-paint", id="outpaint", elem_id="tab-outpaint"):
        with gr.Row():
            for side in SIDES:
                widgets[side] = gr.Number(
                    0, label=f"{side.title()} (px)", precision=0, minimum=0, elem_id=f"out-{side}"
                )
        widgets["zoom_out"] = gr.Slider(
            1.0,
            4.0,
            value=1.0,
            step=0.25,
            label="Zoom-out factor",
            info="Above 1 it replaces the margins: the picture shrinks into the middle and the border is generated.",
            elem_id="out-zoom",
        )
        with gr.Row():
            preview = gr.Button("Preview canvas", elem_id="preview-canvas")
            run = gr.Button("Out-paint", variant="primary", elem_id="run-outpaint")
        shown = gr.Image(label="Grown canvas", type="pil", format="png", interactive=False)
        note = gr.Markdown(elem_id="canvas-note")
    components = list(widgets.values())
    return (
        [Run("outpaint", run, components, lambda values: margins(values, widgets), uses_mask=False)],
        widgets,
        preview,
        shown,
        note,
    )
