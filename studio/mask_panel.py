"""Mask tools beside the canvas: upload or save a mask, invert, grow, shrink, select an object
(OpenCV GrabCut), and the token cells the mask will redraw, shown before anything runs.

The mask lives on the canvas (canvas_io): a tool reads it with READ_MASK_JS, the server changes it
at the picture's full resolution (editing.mask_tools) and sends it back as a small PNG at the
canvas's size, which the page's script draws into the canvas's own layer (WRITE_MASK_JS): it lines
up with the picture and the brush and eraser correct it. Whenever the mask may have changed (a
stroke, a tool, a new picture) the script asks for the cells again, read off the canvas as a run
reads it, so the view shows what a run will redraw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageOps

from editing import EditError, EditRequest
from editing.canvas import Region, load_mask, open_guarded
from editing.mask_tools import grow, invert, select_object
from editing.masks import Mask

from . import canvas_io
from .canvas_io import PictureOnItsWay
from .cells import cells_view, covering, redrawn
from .pictures import display_copy
from .session import Session, user_error
from .settings import Settings
from .tabs import Values

GROW_PIXELS = 8  # the default of "by N pixels" (picture pixels)
SELECT_SIDE = 1600  # GrabCut refines its edge on a copy of the picture with at most this longer side
SAME_SHAPE = 0.01  # a mask of another size is scaled when its shape differs by at most this share
Change = Callable[[np.ndarray, Image.Image, int], np.ndarray]  # (mask, picture, pixels) -> mask
CELL_OPTIONS = ("policy", "strength", "dilation", "context", "paste_back")  # the options the cells depend on
SELECTING = "Selecting the object in the box…"
CLICK_CHANGED = f"() => document.getElementById('{canvas_io.MASK_CHANGED_BUTTON}').click()"
# "Clear mask": every layer wiped as one step of the canvas's history (Undo brings the mask back).
NOTHING = "Paint on the picture (or use a tool) to see which token cells a run will redraw."
CLEAR_JS = f"async () => (window.__varEdit && await window.__varEdit.clearMask()) || {NOTHING!r}"


class MaskPanel:
    """The mask tools' widgets (build inside the gr.Blocks) and their events (wire)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def build(self) -> gr.Accordion:
        """The panel: tools on the left, the cells the mask will redraw on the right."""
        with gr.Accordion("Mask tools", open=True, elem_id="mask-tools") as panel:
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=220):
                    with gr.Row():
                        self.upload = gr.UploadButton(
                            "Upload mask…", file_types=["image"], size="sm", min_width=80, elem_id="mask-upload"
                        )
                        self.save = gr.Button("Save mask PNG", size="sm", min_width=80, elem_id="mask-save")
                    with gr.Row():
                        self.invert = gr.Button("Invert", size="sm", min_width=80, elem_id="mask-invert")
                        self.grow = gr.Button("Grow", size="sm", min_width=80, elem_id="mask-grow")
                        self.shrink = gr.Button("Shrink", size="sm", min_width=80, elem_id="mask-shrink")
                    self.pixels = gr.Number(
                        GROW_PIXELS, label="Grow / shrink by (pixels of the picture)", minimum=1, maximum=500,
                        precision=0, elem_id="mask-pixels",
                    )  # fmt: skip
                    self.select = gr.Button("Select object in the box", size="sm", elem_id="mask-select")
                    gr.Markdown(
                        "Select instead of paint: draw a rough box (or a few strokes) around an object, "
                        "press **Select object in the box**, then correct the selection with the brush.",
                        elem_id="mask-help",
                    )
                with gr.Column(scale=1, min_width=220):
                    self.view = gr.Image(
                        label="Token cells the mask will redraw (finest scale)",
                        type="pil",
                        format="png",
                        interactive=False,
                        height=300,
                        elem_id="mask-cells",
                    )
                    self.note = gr.Markdown(NOTHING, elem_id="mask-note")
        # Hidden: the mask the server made, for the page's script to draw; the mask file to save. Outside the
        # panel, which the tabs show and hide: showing it again would show its hidden children too.
        self.mask_out = gr.Textbox("", visible=False, elem_id="mask-out")
        self.file = gr.DownloadButton("Mask file", visible="hidden", elem_id="mask-file")
        self.changed = canvas_io.mask_changed_button()
        return panel

    def wire(
        self,
        mask_box: gr.Textbox,
        original: gr.State,
        shown: gr.State,
        settings: Settings,
        clear_btn: gr.Button,
        tabs: list[tuple[gr.Tab, bool]],
        panel: gr.Accordion,
    ) -> None:
        """Connect the tools. mask_box: the hidden box READ_MASK_JS fills; original / shown: the
        picture's states; clear_btn: the canvas's "Clear mask"; tabs: the mode tabs, each with
        whether its modes use the painted mask (the panel is hidden on the others, e.g. Out-paint)."""
        quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
        tool: dict[str, Any] = {**quick, "show_progress_on": [self.note], "show_progress": "minimal"}
        picture = {mask_box, original, shown}
        draw: dict[str, Any] = {"js": canvas_io.WRITE_MASK_JS, **quick}

        def on_canvas(button: gr.Button, change: Change) -> None:
            read = button.click(None, [mask_box], [mask_box], js=canvas_io.READ_MASK_JS, **quick)
            handler = self._tool(mask_box, original, shown, change)
            changed = read.then(handler, {*picture, self.pixels}, [self.mask_out], **tool)
            changed.success(None, [self.mask_out, self.note], [self.note], **draw)
            changed.failure(None, None, None, js=CLICK_CHANGED, **quick)  # the note of the mask as it stays

        self.select.click(None, None, [self.note], js=f"() => {SELECTING!r}", **quick)  # at once, in the page

        on_canvas(self.invert, lambda mask, picture, pixels: invert(mask))
        on_canvas(self.grow, lambda mask, picture, pixels: grow(mask, pixels))
        on_canvas(self.shrink, lambda mask, picture, pixels: grow(mask, -pixels))
        on_canvas(self.select, lambda mask, picture, pixels: select(mask, picture))

        read_mask = self.session.uploads.releasing(self.uploaded)
        uploaded = self.upload.upload(read_mask, [self.upload, original, shown], [self.mask_out], **tool)
        uploaded.success(None, [self.mask_out, self.note], [self.note], **draw)

        read = self.save.click(None, [mask_box], [mask_box], js=canvas_io.READ_MASK_JS, **quick)
        saved = read.then(self._saver(mask_box, original, shown), picture, [self.file], **tool)
        saved.success(None, None, None, js="() => document.getElementById('mask-file').click()", **quick)

        latest: dict[str, Any] = {"trigger_mode": "always_last", **quick}
        read = self.changed.click(None, [mask_box], [mask_box], js=canvas_io.READ_MASK_JS, **latest)
        read.then(
            self._refresh(mask_box, original, shown, settings),
            {*picture, *settings.components},
            [self.view, self.note],
            **latest,
        )
        clear_btn.click(None, None, [self.note], js=CLEAR_JS, **quick)
        for name in CELL_OPTIONS:  # the settings that change which cells are redrawn: look again
            if name in settings.widgets:
                settings.widgets[name].change(None, None, None, js=CLICK_CHANGED, **quick)
        for tab, uses_mask in tabs:
            tab.select(lambda on=uses_mask: gr.update(visible=on), None, [panel], **quick)

    # ---- handlers ------------------------------------------------------------------------
    @staticmethod
    def _canvas_mask(payload: str | None, original: Any, shown: Any) -> tuple[Image.Image, Image.Image, np.ndarray]:
        picture, display, mask = canvas_io.read_canvas(payload, original, shown)
        return picture, display, np.asarray(mask) >= 128

    def _tool(
        self, mask_box: gr.Textbox, original: gr.State, shown: gr.State, change: Change
    ) -> Callable[[Values], str]:
        """A tool's handler: the canvas's mask -> `change` at the picture's resolution -> the canvas."""

        def handler(values: Values) -> str:
            try:
                picture, display, mask = self._canvas_mask(values[mask_box], values[original], values[shown])
                changed = change(mask, picture, max(1, int(values[self.pixels] or GROW_PIXELS)))
            except EditError as e:
                raise user_error(str(e)) from e
            return canvas_io.mask_data_url(to_canvas(changed, display.size))

        return handler

    def uploaded(self, path: str | None, original: Image.Image | None, shown: Image.Image | None) -> str:
        """A mask file (white or opaque = regenerate) for the picture; another size of the same shape
        is scaled with a notice, another shape refused."""
        if original is None or shown is None:
            raise user_error("Open a picture first, then upload its mask.")
        if not path:
            raise user_error("No file was received.")
        try:
            image = ImageOps.exif_transpose(open_guarded(path, "mask", self.session.editor.limits.picture_pixels))
            mask = load_mask(image, image.size)
        except EditError as e:
            raise user_error(str(e)) from e
        (w, h), (W, H) = image.size, original.size
        if (w, h) != (W, H):
            if abs(w * H - h * W) > SAME_SHAPE * max(w * H, h * W):
                raise user_error(
                    f"The mask is {w}×{h} px but the picture is {W}×{H} px, another shape; "
                    "make the mask from this picture (Save mask PNG gives one of the right size)."
                )
            mask = to_canvas(mask, (W, H))
            gr.Info(f"The mask was {w}×{h} px; it was scaled to the picture's {W}×{H} px.")
        return canvas_io.mask_data_url(to_canvas(mask, shown.size))

    def _saver(self, mask_box: gr.Textbox, original: gr.State, shown: gr.State) -> Callable[[Values], str]:
        def save(values: Values) -> str:
            """The canvas's mask as a black-and-white PNG at the picture's size (white = regenerate)."""
            try:
                picture, _, mask = self._canvas_mask(values[mask_box], values[original], values[shown])
            except EditError as e:
                raise user_error(str(e)) from e
            if not mask.any():
                raise user_error("Nothing is painted yet, so there is no mask to save.")
            path = self.session.workdir.masks() / f"mask-{picture.width}x{picture.height}.png"
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(path)
            return str(path)

        return save

    def _refresh(
        self, mask_box: gr.Textbox, original: gr.State, shown: gr.State, settings: Settings
    ) -> Callable[[Values], tuple[Any, str]]:
        def refresh(values: Values) -> tuple[Any, str]:
            """The cells the canvas's mask will redraw with the current settings (never an error box)."""
            try:
                picture, _, mask = self._canvas_mask(values[mask_box], values[original], values[shown])
            except PictureOnItsWay:
                return gr.skip(), gr.skip()  # its own refresh follows
            except EditError:
                return None, NOTHING
            if not mask.any():
                return None, NOTHING
            editor = self.session.editor
            try:
                options = settings.options(values, editor.defaults)
                mask_image = Image.fromarray(mask.astype(np.uint8) * 255, "L")
                preview = editor.preview_cells(EditRequest("inpaint", picture, mask_image, options=options))
            except EditError as e:
                return None, str(e)
            cells = redrawn(preview.regenerated, preview.region, mask, options.paste_back)
            return cells_view(picture, cells, preview.region), cells_note(mask, cells, preview.region)

        return refresh


def select(hint: np.ndarray, picture: Image.Image) -> np.ndarray:
    """The object in the box around the strokes `hint` (bool, the picture's size), by GrabCut (on a reduced
    copy, its edge refined on a copy of at most SELECT_SIDE px), as a mask of the picture's size."""
    if not hint.any():
        raise EditError("Draw a rough box or a few strokes around the object first.")
    work = display_copy(picture, SELECT_SIDE)
    small = np.asarray(Image.fromarray(hint).resize(work.size, Image.Resampling.NEAREST))
    found = select_object(np.asarray(work.convert("RGB")), small)
    if not found.any():
        raise EditError("No object was found in the box; draw the box closer around the object.")
    return to_canvas(found, picture.size)


def to_canvas(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool (H, W) mask at another size (width, height): enlarged by copying pixels, shrunk by
    averaging (half or more = regenerate), the way a run reads the canvas."""
    regenerate = Mask(mask.astype(bool))
    if regenerate.size != tuple(size) and size[0] >= mask.shape[1] and size[1] >= mask.shape[0]:
        return np.asarray(regenerate.image().resize(size, Image.Resampling.NEAREST)) > 0
    return regenerate.scaled(size).regenerate


def cells_note(mask: np.ndarray, cells: np.ndarray | None, region: Region | None) -> str:
    """One line: how much of the picture (mask: bool (H, W), the picture's size) is masked and how many
    finest-scale cells on the picture a run redraws (cells: from `cells.redrawn`)."""
    if cells is None or region is None:
        return NOTHING
    on_picture = covering(region, cells.shape, mask.shape[1], mask.shape[0])
    rows, cols = int(on_picture.any(1).sum()), int(on_picture.any(0).sum())
    return (
        f"The mask covers {100 * mask.mean():.1f} % of the picture: a run redraws "
        f"**{int(cells.sum())}** of the {cols}×{rows} cells of the finest scale on the picture "
        f"({region.side / cells.shape[1]:.0f} px each)."
    )
