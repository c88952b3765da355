"""Edit modes, one module each, in one registry (see base.py); importing this registers the five,
in the order the studio shows them."""

from . import class_edit, generate, inpaint, outpaint, prompt_edit
from .base import (
    IMAGE,
    MASK,
    Field,
    Inputs,
    Mode,
    Picture,
    add_family_fields,
    field,
    get_mode,
    mode_names,
    register,
    registered,
    remove_family_fields,
    unregister,
)

for _mode in (inpaint.Inpaint, outpaint.Outpaint, class_edit.ClassEdit, generate.Generate, prompt_edit.PromptEdit):
    register(_mode)

__all__ = [
    "IMAGE",
    "MASK",
    "Field",
    "Inputs",
    "Mode",
    "Picture",
    "add_family_fields",
    "field",
    "get_mode",
    "mode_names",
    "register",
    "registered",
    "remove_family_fields",
    "unregister",
]
