"""Zero-shot editing with VAR: one request type, one pipeline shared by every entry point.

EditRequest (request, options) -> plan (geometry, region, per-scale keep maps, encoding)
-> sample (teacher-forced, one batched pass) -> compose (paste-back, metadata) -> EditResult.
`Editor.run` ties the stages together; `EditJob` follows and stops a running edit.
"""

from .canvas import load_image, outpaint_canvas
from .catalog import ModelEntry, free_memory, list_models, load_listed
from .compose import EditResult
from .edit_job import EditJob, Progress
from .editor import Editor, ModelInfo, available_models, default_device
from .errors import EditCancelled, EditError
from .limits import Limits
from .metadata import read_params, save_png
from .modes import Mode, get_mode, mode_names, register, registered, unregister
from .options import EditOptions, OptionSpec, option_fields
from .request import EditRequest

__all__ = [
    "EditCancelled",
    "EditError",
    "EditJob",
    "EditOptions",
    "EditRequest",
    "EditResult",
    "Editor",
    "Limits",
    "ModelEntry",
    "Mode",
    "ModelInfo",
    "OptionSpec",
    "Progress",
    "available_models",
    "default_device",
    "free_memory",
    "get_mode",
    "list_models",
    "load_image",
    "load_listed",
    "mode_names",
    "option_fields",
    "outpaint_canvas",
    "read_params",
    "register",
    "registered",
    "save_png",
    "unregister",
]
