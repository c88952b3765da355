"""Generate: draw a new picture at the model's resolution, of what the model's family is conditioned on
(a class, a prompt) or of anything; a family whose models draw several aspects adds an `aspect` field."""

from __future__ import annotations

from typing import Any

from .base import Inputs, Mode


class Generate(Mode):
    name = "generate"
    title = "Generate"
    tab_id = "generate"
    button = "Generate new picture"
    button_id = "run-generate"
    doc = (
        "Draw a new picture at the model's resolution, of a class or a prompt (none given: anything), square or "
        "at an aspect the model offers."
    )
    fields = ()

    def inputs(self, request: Any, limits: Any) -> Inputs:
        return Inputs(None, None)
