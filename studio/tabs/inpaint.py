"""In-paint: regenerate the painted area so that it fits the rest."""

from __future__ import annotations

import gradio as gr

from . import Run


def build() -> list[Run]:
    with gr.Tab("In-paint", id="inpaint"):
        gr.Markdown("Regenerates the painted area; everything else is kept.")
        button = gr.Button("In-paint", variant="primary", elem_id="run-inpaint")
    return [Run("inpaint", button)]
