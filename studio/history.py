"""The input picture and its earlier versions: open a file, take a picture dropped on the canvas,
continue from a candidate, step back.

The page keeps the full-resolution picture server-side (gr.State) from the moment it is opened; the
canvas only carries the display copy and the strokes (canvas_io). Every handler here answers the
same outputs: canvas, original, shown, history, history line, the page's known picture.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from editing import EditError
from editing.canvas import NOT_AN_IMAGE

from . import canvas_io
from .pictures import canvas_copy
from .session import open_picture, user_error

PROFILE_KEYS = ("icc_profile", "gamma", "chromaticity", "srgb")


def history_text(image: Image.Image, history: list[Image.Image]) -> str:
    versions = f"Earlier versions: {len(history)}" if history else "No earlier versions."
    return f"Picture: {image.width}×{image.height} px · {versions}"


def new_picture(image: Image.Image, history: list[Image.Image]) -> tuple[Any, ...]:
    """The outputs for a new input picture. The canvas gets the picture alone: any other change to it
    makes Gradio re-read it (canvas_io)."""
    shown = plain_copy(canvas_copy(image))
    return shown, image, shown, history, history_text(image, history), canvas_io.known_picture(shown)


def open_file(path: str | None) -> tuple[Any, ...]:
    """A picture file becomes the new full-resolution input."""
    if not path:
        raise user_error("No file was received.")
    return new_picture(open_picture(path), [])


def not_an_image() -> None:
    """A file put on the canvas that the browser cannot show as a picture (the page's script tells): the
    sentence the studio says for any file that is not an image."""
    raise user_error(NOT_AN_IMAGE.format(what="image"))


def canvas_uploaded(payload: str | None) -> tuple[Any, ...]:
    """A picture dropped, pasted or photographed on the canvas becomes the input (the page's script
    sends it once, as a PNG; the canvas gets it back at the canvas's size, which the brush suits).
    The script also reports the pictures the server put there itself (Open, Continue, Back) as they
    appear: it recognises those, and they change nothing."""
    try:
        png = canvas_io.parse_picture(payload)
    except EditError as e:
        raise user_error(str(e)) from e
    if png is None:
        return (gr.skip(),) * 6
    return new_picture(open_picture(png), [])


def continue_from(
    paths: list[str] | None, index: int, original: Image.Image | None, history: list[Image.Image]
) -> tuple[Any, ...]:
    """The selected candidate becomes the input; the previous input goes on the history."""
    if not paths:
        raise user_error("Run an edit first, then pick a candidate to continue from.")
    image = open_picture(paths[min(max(index, 0), len(paths) - 1)])
    return new_picture(image, [*history, original] if original is not None else list(history))


def back(history: list[Image.Image]) -> tuple[Any, ...]:
    """Step back to the previous input."""
    if not history:
        raise user_error("There is no earlier version to go back to.")
    *history, image = history
    return new_picture(image, history)


def plain_copy(image: Image.Image) -> Image.Image:
    """`image` without its colour profile: the canvas then shows the very pixel values the model edits
    (and the page's fingerprint of the canvas matches the server's copy)."""
    if not any(key in image.info for key in PROFILE_KEYS):
        return image
    copy = image.copy()
    copy.info = {k: v for k, v in image.info.items() if k not in PROFILE_KEYS}
    return copy
