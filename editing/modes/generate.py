"""Generate: draw a new picture of a class (or of anything) at the model's resolution."""

from __future__ import annotations

from typing import Any

from .base import Inputs, Mode
from .class_edit import class_field


class Generate(Mode):
    name = "generate"
    title = "Class edit"  # the studio shows it beside the class edit, with the same class list
    tab_id = "class"
    button = "Generate new picture"
    button_id = "run-generate"
    doc = "Draw a new picture of a class at the model's resolution (no class: anything)."
    fields = (class_field(),)

    def inputs(self, request: Any, limits: Any) -> Inputs:
        return Inputs(None, None)

    def label(self, request: Any) -> int | None:
        return request.class_id
