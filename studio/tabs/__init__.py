"""One module per mode: each builds its tab's widgets and says how they complete an `EditRequest`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

Values = dict[gr.components.Component, Any]


@dataclass
class Run:
    """A run button: the request mode it starts, the tab's widgets it reads, and the request fields
    (class_id, margins, ...) those widgets give; `uses_mask`: the painted mask is part of the request."""

    mode: str
    button: gr.Button
    components: list[gr.components.Component] = field(default_factory=list)
    fields: Callable[[Values], dict[str, Any]] = lambda values: {}
    uses_mask: bool = True
    uses_picture: bool = True
