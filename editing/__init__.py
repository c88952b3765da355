"""Zero-shot editing with VAR: one request type, one pipeline shared by every entry point.

EditRequest (request, options) -> plan (geometry, region, per-scale regenerate maps, encoding)
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
from .masks import Mask
from .metadata import read_params, save_png
from .options import EditOptions, OptionSpec, option_fields
from .request import MODES, EditRequest

__all__ = [
    "MODES",
    "EditCancelled",
    "EditError",
    "EditJob",
    "EditOptions",
    "EditRequest",
    "EditResult",
    "Editor",
    "Limits",
    "Mask",
    "ModelEntry",
    "ModelInfo",
    "OptionSpec",
    "Progress",
    "available_models",
    "default_device",
    "free_memory",
    "list_models",
    "load_image",
    "load_listed",
    "option_fields",
    "outpaint_canvas",
    "read_params",
    "save_png",
]
