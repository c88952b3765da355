"""The named endpoints: in-paint, out-paint, class edit and generate, for gradio_client and MCP.

Each returns one picture as a PNG carrying its parameters, and the parameters. The docstrings
are what an agent reads when the studio runs with --mcp (Gradio turns each endpoint into a tool).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from .session import Session, user_error


def add_endpoints(session: Session) -> None:
    """Create the endpoints inside the current gr.Blocks (their widgets stay hidden)."""

    def inpaint(
        image: str, mask: str, options: dict[str, Any] | None = None, request: gr.Request | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Regenerate the masked part of a picture so that it fits the rest; every pixel outside the mask is kept.

        Args:
            image: the picture (a PNG, JPEG or WebP file).
            mask: a picture of the same size; painted pixels (white or any colour, or opaque where it has
                transparency) are regenerated, black or transparent ones kept.
            options: optional settings, e.g. {"seed": 1, "top_k": 100}; unknown keys are refused.
        Returns:
            The edited picture (PNG with its parameters in its metadata) and those parameters.
        """
        _need(image=image, mask=mask)
        return session.api_run({"mode": "inpaint", "image": image, "mask": mask, "options": options}, _visitor(request))

    def outpaint(
        image: str, margins: dict[str, Any], options: dict[str, Any] | None = None, request: gr.Request | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Grow a picture's canvas and fill the new area so that it continues the picture.

        Args:
            image: the picture (a PNG, JPEG or WebP file).
            margins: pixels to add per side, e.g. {"left": 64, "right": 64, "top": 0, "bottom": 32}, or
                {"zoom_out": 1.5} to shrink the picture into the middle of a canvas of the same size.
            options: optional settings, e.g. {"seed": 1}.
        Returns:
            The grown picture (PNG with its parameters in its metadata) and those parameters.
        """
        _need(image=image)
        if not isinstance(margins, dict):
            raise user_error('Margins must be a JSON object such as {"left": 64}.')
        return session.api_run({"mode": "outpaint", "image": image, **margins, "options": options}, _visitor(request))

    def edit_class(
        image: str, mask: str, class_id: int, options: dict[str, Any] | None = None, request: gr.Request | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Redraw the masked part of a picture as a chosen class (e.g. an ImageNet class), keeping the rest.

        Args:
            image: the picture (a PNG, JPEG or WebP file).
            mask: a picture of the same size; painted pixels are redrawn, black or transparent ones kept.
            class_id: the class to draw, 0 to the model's number of classes minus one.
            options: optional settings, e.g. {"seed": 1, "cfg": 4.0} (cfg: how strongly to follow the class).
        Returns:
            The edited picture (PNG with its parameters in its metadata) and those parameters.
        """
        _need(image=image, mask=mask)
        return session.api_run(
            {"mode": "edit_class", "image": image, "mask": mask, "class_id": class_id, "options": options},
            _visitor(request),
        )

    def generate(
        class_id: int | None = None, options: dict[str, Any] | None = None, request: gr.Request | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Draw a new picture of a class at the model's resolution (no class: anything).

        Args:
            class_id: the class to draw, 0 to the model's number of classes minus one; empty for no class.
            options: optional settings, e.g. {"seed": 1, "cfg": 4.0}.
        Returns:
            The picture (PNG with its parameters in its metadata) and those parameters.
        """
        return session.api_run({"mode": "generate", "class_id": class_id, "options": options}, _visitor(request))

    with gr.Row(visible=False):
        image, mask = gr.File(label="image"), gr.File(label="mask")
        options, margins = gr.JSON(label="options"), gr.JSON(label="margins")
        class_id = gr.Number(label="class_id", precision=0)
        result, params = gr.Image(label="result", type="filepath", format="png"), gr.JSON(label="params")
    calls = (
        (inpaint, [image, mask, options]),
        (outpaint, [image, margins, options]),
        (edit_class, [image, mask, class_id, options]),
        (generate, [class_id, options]),
    )
    for fn, inputs in calls:
        trigger = gr.Button(visible=False)
        trigger.click(fn, inputs, [result, params], api_name=fn.__name__, concurrency_id="edit")


def _visitor(request: gr.Request | None) -> str | None:
    """An API caller is its session (one gradio_client Client): its edits share one turn on the device."""
    return None if request is None else request.session_hash


def _need(**files: str | None) -> None:
    missing = [name for name, value in files.items() if not value]
    if missing:
        raise user_error(f"Send the {' and the '.join(missing)} file.")
