"""Before and after: the input and a candidate in the page's compare slider, at the candidate's size (PIL only)."""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from editing import EditResult

from .pictures import display_copy

GREY = (128, 128, 128)  # the new area of an out-paint, before


def before_view(picture: Image.Image | None, result: EditResult) -> Image.Image | None:
    """The input as the compare slider shows it (a display copy at the first candidate's size): the picture
    itself, or for a grown canvas the candidate with its new area grey (the rest is the input, pasted back);
    None for a generated picture."""
    if picture is None:
        return None
    first = result.images[0]
    if picture.size != first.size:
        picture = Image.composite(Image.new("RGB", first.size, GREY), first.convert("RGB"), result.mask)
    return display_copy(picture.convert("RGB"))


def compare_update(before: Image.Image | None, candidate: Image.Image | str | None) -> dict[str, Any]:
    """The slider showing `before` against a candidate (a picture or its PNG file); hidden without both."""
    if before is None or candidate is None:
        return gr.update(value=None, visible=False)
    if isinstance(candidate, str):
        with Image.open(candidate) as im:
            candidate = im.convert("RGB")
    after = display_copy(candidate.convert("RGB"))
    if after.size != before.size:
        after = after.resize(before.size, Image.Resampling.LANCZOS)
    return gr.update(value=(before, after), visible=True)


def compare_selected(paths: list[str] | None, index: int, before: Image.Image | None) -> dict[str, Any]:
    """The slider for the candidate picked in the gallery."""
    if not paths:
        return compare_update(None, None)
    return compare_update(before, paths[min(max(index, 0), len(paths) - 1)])
