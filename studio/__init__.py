"""The editing studio: a Gradio page on top of `editing` (no model code here).

layout (the page) -> settings (widgets generated from the option table) + tabs (made from the
mode registry, editing/modes) -> session (the handlers: every run becomes one `EditRequest` for `Editor.submit`).
`launch` is the command line (`python app.py`, `var-edit-studio`).
"""

from typing import Any

__all__ = ["build_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `studio.launch` can set Gradio's environment before Gradio is imported.
    if name == "build_app":
        from .layout import build_app

        return build_app
    raise AttributeError(name)
