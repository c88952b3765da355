"""Class edit: regenerate the painted area as a chosen class."""

from __future__ import annotations

from typing import Any

from .base import IMAGE, MASK, Mode, field


def class_field(required: str | None = None) -> Any:
    """The class to draw: any whole number here; the loaded model's own range is checked (and quoted) when the
    edit is planned."""
    return field(
        "class_id",
        int,
        "Class",
        "the class to draw, 0 to the model's number of classes minus one" + ("." if required else "; empty for none."),
        required=required,
        elem_id="class-dd",
        widget="classes",
    )


class ClassEdit(Mode):
    name = "edit_class"
    title = "Class edit"
    tab_id = "class"
    button = "Apply class"
    button_id = "run-class"
    doc = "Redraw the masked part of a picture as a chosen class (e.g. an ImageNet class), keeping the rest."
    fields = (IMAGE, MASK, class_field(required="needs a class_id"))

    def label(self, request: Any) -> int | None:
        return request.class_id
