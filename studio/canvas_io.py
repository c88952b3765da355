"""What travels between the canvas and the server: the picture once, then only the strokes.

The picture lives on the server (gr.State) from the moment it is opened or dropped. Gradio's
ImageEditor (6.x) exports and uploads background, layers and composite as three PNGs whenever
Gradio reads it: when an event takes it as input, when an event it triggers starts, when its
props change without a new value, and, once it has been an event's input, at every streamed step of
every later event. On a photo that is seconds per run, and its own 'upload' event fires again
and again. So no event reads, listens to or sends bare props to the editor. A script in the page
(`HEAD`; it also catches the editor's PixiJS application as it starts) reads the PixiJS scene and
puts what it read into a hidden textbox that the event reads:

- a run (and the out-paint preview): the painted layers as one black-and-white PNG of a few KB,
  with the canvas's size and a 16x16 fingerprint of its picture, so that the server can tell the
  canvas holds the picture it has (`READ_MASK_JS`);
- a new picture on the canvas (dropped, pasted, photographed; the script watches the scene and
  clicks a hidden button): the picture as a PNG, unless its fingerprint is that of the picture
  the server put there itself (`READ_PICTURE_JS`);
- the other way, a mask the server made (mask tools): a small black-and-white PNG at the canvas's
  size in a hidden box, which the script draws into the canvas's own first layer (`WRITE_MASK_JS`),
  never a value or layer pushed into the editor (Gradio draws those offset from the picture);
- after a stroke, a toolbar click, a drawn mask or a new picture, the script clicks another hidden
  button a moment later, so that the server can say which token cells the mask will redraw.

The studio launches with `head=HEAD`; an embedding page must too.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from editing import EditError
from editing.masks import Mask

log = logging.getLogger("var-edit-studio")
PREFIX = "__var_edit__"  # a hidden box's value; the page's script replaces it with PREFIX + JSON
CHANGED_BUTTON = "canvas-changed"  # elem_id of the hidden button the script clicks for a new picture
GRID = 16  # the fingerprint: mean colour of GRID x GRID cells of the picture on the canvas
SAME_PICTURE = 8.0  # largest difference (0..255) of a cell's mean colour between two reads of one picture
MASK_CHANGED_BUTTON = "mask-changed"  # elem_id of the hidden button the script clicks when the mask may have changed
MASK_RGB = (255, 0, 255)  # how a mask the server made is drawn on the canvas: the brush's first colour,
MASK_ALPHA = 150  # half see-through, so that the picture shows under it

_SCRIPT = (resources.files("studio") / "static" / "canvas.js").read_text(encoding="utf-8")
HEAD = (
    "<script>"
    + _SCRIPT.replace("@PREFIX@", PREFIX)
    .replace("@GRID@", str(GRID))
    .replace("@SAME@", str(SAME_PICTURE))
    .replace("@CHANGED@", CHANGED_BUTTON)
    .replace("@MASK_CHANGED@", MASK_CHANGED_BUTTON)
    .replace("@MASK_RGB@", json.dumps(list(MASK_RGB)))
    .replace("@MASK_ALPHA@", str(MASK_ALPHA))
    + "</script>"
)

_MISSING = f'"{PREFIX}" + JSON.stringify({{error: "the page was served without the studio\'s script (head=HEAD)"}})'
# The events' scripts: fill the hidden box among their inputs (the page's script must be in the head).
READ_MASK_JS = (
    "(...args) => window.__varEdit ? window.__varEdit.mask(args) : "
    f"args.map((v) => typeof v === 'string' && v.startsWith('{PREFIX}') ? {_MISSING} : v)"
)
READ_PICTURE_JS = (
    "(...args) => window.__varEdit ? window.__varEdit.picture(args) : "
    f"args.map((v) => typeof v === 'string' && v.startsWith('{PREFIX}') ? {_MISSING} : v)"
)


# An event's script that draws the mask in its first input (mask_data_url's value) on the canvas and
# passes its second input (a note) on, or the sentence saying why it could not.
WRITE_MASK_JS = "(mask, note) => window.__varEdit ? window.__varEdit.writeMask(mask, note) : note"


def mask_changed_button() -> gr.Button:
    """The hidden button the page's script clicks when the mask on the canvas may have changed."""
    return gr.Button("The mask may have changed", visible="hidden", elem_id=MASK_CHANGED_BUTTON)


def mask_data_url(mask: np.ndarray) -> str:
    """A bool (H, W) mask at the canvas's size as the PNG data URL that WRITE_MASK_JS draws."""
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def changed_button() -> gr.Button:
    """The hidden button the page's script clicks when a new picture is on the canvas."""
    return gr.Button("New picture on the canvas", visible="hidden", elem_id=CHANGED_BUTTON)


def hidden_box(elem_id: str) -> gr.Textbox:
    """A hidden textbox that a script fills with what it read off the canvas (create inside the gr.Blocks)."""
    return gr.Textbox(PREFIX, visible=False, elem_id=elem_id)


def known_picture(picture: Image.Image | None) -> str:
    """The value of the hidden box that tells the page's script which picture the server has."""
    if picture is None:
        return ""
    fp = fingerprint(picture).round().astype(int).ravel().tolist()
    return json.dumps({"width": picture.width, "height": picture.height, "fingerprint": fp})


def fingerprint(picture: Image.Image, grid: int = GRID) -> np.ndarray:
    """Mean colour of `grid` x `grid` cells (the script's cells: floor(i * side / grid) boundaries)."""
    rgb = np.asarray(picture.convert("RGB"), np.float64)
    h, w = rgb.shape[:2]
    ys = [i * h // grid for i in range(grid + 1)]
    xs = [i * w // grid for i in range(grid + 1)]
    out = np.zeros((grid, grid, 3))
    for gy in range(grid):
        y0, y1 = ys[gy], max(ys[gy] + 1, ys[gy + 1])
        for gx in range(grid):
            x0, x1 = xs[gx], max(xs[gx] + 1, xs[gx + 1])
            out[gy, gx] = rgb[y0:y1, x0:x1].reshape(-1, 3).mean(0)
    return out


def _payload(value: Any) -> dict[str, Any]:
    unreadable = "The page sent something that could not be read; reload the page and try again."
    if not isinstance(value, str) or not value.startswith(PREFIX) or value == PREFIX:
        raise EditError("The page did not send what is on the canvas; reload the page and try again.")
    try:
        data = json.loads(value[len(PREFIX) :])
    except json.JSONDecodeError as e:
        raise EditError(unreadable) from e
    if not isinstance(data, dict):
        raise EditError(unreadable)
    if "error" in data:
        raise EditError(f"The page could not read the canvas ({data['error']}); reload the page and try again.")
    return data


def _png(data_url: Any) -> bytes:
    return base64.b64decode(str(data_url).split(",", 1)[1], validate=True)


@dataclass
class CanvasMask:
    """What the script read off the canvas for a run. empty: no picture on it; mask: (H, W) bool at
    the canvas's size, None where nothing is painted; fingerprint: (GRID, GRID, 3) of its picture."""

    empty: bool
    size: tuple[int, int] = (0, 0)
    mask: np.ndarray | None = None
    fingerprint: np.ndarray | None = None

    def difference(self, picture: Image.Image) -> float:
        """The largest difference of a fingerprint cell's colour between the canvas and `picture`."""
        if self.fingerprint is None or self.size != picture.size:
            return float("inf")
        return float(np.abs(fingerprint(picture) - self.fingerprint).max())

    def shows(self, picture: Image.Image) -> bool:
        """Whether the canvas holds `picture` (the display copy the server has): same size, same fingerprint."""
        return not self.empty and self.difference(picture) <= SAME_PICTURE

    def mask_at(self, size: tuple[int, int]) -> Image.Image:
        """The painted mask as 'L' (255 = regenerate) at `size` (the full-resolution picture's)."""
        if self.mask is None:
            return Image.new("L", size, 0)
        return Mask(self.mask).scaled(size).image()  # strokes on a display copy, read at the original's size


def parse_mask(value: Any) -> CanvasMask:
    """The run's hidden box after the script filled it; EditError (one sentence) if it could not."""
    data = _payload(value)
    if data.get("empty"):
        return CanvasMask(empty=True)
    try:
        size = (int(data["width"]), int(data["height"]))
        print_ = np.asarray(data["fingerprint"], np.float64).reshape(GRID, GRID, 3)
        mask = None
        if data.get("mask"):
            with Image.open(io.BytesIO(_png(data["mask"]))) as im:
                mask = np.asarray(im.convert("L")) >= 128
            if mask.shape != (size[1], size[0]):
                raise ValueError("the mask is not the canvas's size")
            if not mask.any():
                mask = None
    except (KeyError, TypeError, ValueError, IndexError, binascii.Error, OSError) as e:
        raise EditError("The page sent a mask that could not be read; reload the page and try again.") from e
    return CanvasMask(False, size, mask, print_)


class PictureOnItsWay(EditError):
    """The canvas shows a picture the server has not received yet (it follows in a moment)."""


def read_canvas(
    payload: str | None, original: Image.Image | None, shown: Image.Image | None
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """The full-resolution input, its display copy and the mask ('L', the input's size), from what the
    page's script read off the canvas (only the strokes travel: the picture is already here). EditError
    where the canvas does not hold the picture the server has (PictureOnItsWay: a new one on its way)."""
    canvas = parse_mask(payload)
    if canvas.empty:
        raise EditError("Upload or paste a picture first.")
    if original is None or shown is None or not canvas.shows(shown):
        if shown is not None and canvas.size == shown.size:
            log.info("canvas fingerprint differs from the picture by %.1f", canvas.difference(shown))
        raise PictureOnItsWay("The picture on the canvas has not reached the server yet; try again in a moment.")
    return original, shown, canvas.mask_at(original.size)


def parse_picture(value: Any) -> bytes | None:
    """The PNG of a picture dropped on the canvas, or None where it is the one the server put there."""
    data = _payload(value)
    if data.get("same") or data.get("empty"):
        return None
    try:
        return _png(data["picture"])
    except (KeyError, IndexError, binascii.Error) as e:
        raise EditError("The page sent a picture that could not be read; try another file.") from e
