"""Out-paint's own studio tool: preview the grown canvas before running."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from editing import EditError, EditRequest, outpaint_canvas
from editing.modes.outpaint import SIDES

from .. import canvas_io
from ..pictures import tinted
from . import EXTRAS, Values


def describe(picture: Image.Image, request_fields: dict[str, Any]) -> tuple[Image.Image, str]:
    """The grown canvas with the new area tinted, and a sentence saying what grows."""
    fields = EditRequest("outpaint", picture, **request_fields).fields  # the mode's own checks, one sentence each
    margins = {side: fields[side] for side in SIDES}
    canvas, mask = outpaint_canvas(picture, zoom_out=fields["zoom_out"], **margins)
    W, H = picture.size
    zoom = fields["zoom_out"]
    if zoom:
        w, h = round(W / zoom), round(H / zoom)
        text = (
            f"Zoom out {zoom:g}x: the picture shrinks to {w}×{h} px in the middle of a {W}×{H} px canvas; "
            "the tinted border around it will be generated."
        )
    else:
        grown = ", ".join(f"{margins[s]} px {s}" for s in SIDES if margins[s])
        size = f"{W}×{H} to {canvas.width}×{canvas.height} px"
        text = f"The canvas grows from {size} ({grown}); the tinted area will be generated."
    return tinted(canvas, mask), text


@dataclass
class Preview:
    """The "Preview canvas" button, the grown canvas it shows and its note."""

    widgets: dict[str, gr.components.Component]
    button: gr.Button
    shown: gr.Image
    note: gr.Markdown

    def wire(self, mask_box: gr.Textbox, picture_of: Callable[[Values], Image.Image], inputs: set[Any]) -> None:
        """mask_box: the hidden box the page's script fills from the canvas (canvas_io); picture_of: the
        picture from the values of `inputs` (mask_box among them)."""
        quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
        widgets = self.widgets

        def preview(values: Values) -> tuple[Any, str]:
            try:
                return describe(picture_of(values), {name: values[w] for name, w in widgets.items()})
            except EditError as e:
                raise gr.Error(str(e), print_exception=False) from e

        read = self.button.click(None, [mask_box], [mask_box], js=canvas_io.READ_MASK_JS, **quick)
        read.then(
            preview, {*inputs, *widgets.values()}, [self.shown, self.note], show_progress_on=[self.note],
            api_visibility="private",
        )  # fmt: skip


def build(widgets: dict[str, gr.components.Component]) -> Preview:
    button = gr.Button("Preview canvas", elem_id="preview-canvas")
    shown = gr.Image(label="Grown canvas", type="pil", format="png", interactive=False)
    note = gr.Markdown(elem_id="canvas-note")
    return Preview(widgets, button, shown, note)


EXTRAS["outpaint"] = build
