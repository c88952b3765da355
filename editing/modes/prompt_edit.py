"""Prompt edit: redraw the painted area as a prompt describes it (the text counterpart of class edit; the
prompt fields are the text families')."""

from __future__ import annotations

from .base import IMAGE, MASK, Mode


class PromptEdit(Mode):
    name = "prompt_edit"
    title = "Prompt edit"
    tab_id = "prompt"
    button = "Apply prompt"
    button_id = "run-prompt-edit"
    doc = "Redraw the masked part of a picture as a prompt describes it, keeping the rest."
    fields = (IMAGE, MASK)
