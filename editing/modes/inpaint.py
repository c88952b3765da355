"""In-paint: regenerate the painted area so that it fits the rest."""

from __future__ import annotations

from .base import IMAGE, MASK, Mode


class Inpaint(Mode):
    name = "inpaint"
    title = "In-paint"
    tab_id = "inpaint"
    button = "In-paint"
    button_id = "run-inpaint"
    doc = "Regenerate the masked part of a picture so that it fits the rest; every pixel outside the mask is kept."
    fields = (IMAGE, MASK)
