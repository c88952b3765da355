"""Class edit: regenerate the painted area as a chosen class, or draw a new picture of it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from editing import EditError

from . import Run, Values


def build(choices: list[tuple[str, int]]) -> tuple[list[Run], gr.Dropdown]:
    with gr.Tab("Class edit", id="class", elem_id="tab-class"):
        classes = gr.Dropdown(
            choices,
            value=0,
            label="Class",
            filterable=True,
            info="Type to search; paint the area to change on the picture.",
            elem_id="class-dd",
        )
        with gr.Row():
            apply = gr.Button("Apply class", variant="primary", elem_id="run-class")
            generate = gr.Button("Generate new picture", elem_id="run-generate")

    def fields(values: Values) -> dict[str, Any]:
        if values[classes] is None:
            raise EditError("Choose a class first.")
        return {"class_id": int(values[classes])}

    return [
        Run("edit_class", apply, [classes], fields),
        Run("generate", generate, [classes], fields, uses_mask=False, uses_picture=False),
    ], classes
