"""Class edit: regenerate the painted area as a chosen class (the class field is the VAR family's)."""

from __future__ import annotations

from .base import IMAGE, MASK, Mode


class ClassEdit(Mode):
    name = "edit_class"
    title = "Class edit"
    tab_id = "class"
    button = "Apply class"
    button_id = "run-class"
    doc = "Redraw the masked part of a picture as a chosen class (e.g. an ImageNet class), keeping the rest."
    fields = (IMAGE, MASK)
