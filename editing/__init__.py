"""Zero-shot editing with next-scale models: one request type, one pipeline shared by every entry point.

EditRequest (request, options) -> plan (geometry, region, per-scale regenerate maps, encoding)
-> sample (teacher-forced, one batched pass) -> compose (paste-back, metadata) -> EditResult.
`Editor.run` ties the stages together; `EditJob` follows and stops a running edit. What a kind of
model does in each stage is its family's (families.py); importing this registers VAR's (var_family.py) and
Infinity's (infinity_family.py).
"""

from . import infinity_family  # noqa: E402, F401  (registers the Infinity family)
from .canvas import load_image, outpaint_canvas
from .compose import EditResult
from .device import default_device
from .edit_job import EditJob, Progress
from .editor import Editor
from .errors import EditCancelled, EditError
from .families import ClassLabel, Conditioning, FamilyModel, ModelFamily, Prompt, register_family, unregister_family
from .interface import EditorProtocol, ModelInfo
from .limits import Limits
from .masks import Mask
from .metadata import read_params, save_png
from .models import ModelEntry, ModelSwitch, SwitchError, free_memory, list_models, load_model
from .modes import Mode, get_mode, mode_names, register, registered, unregister
from .options import EditOptions, OptionSpec, option_fields
from .request import EditRequest
from .var_family import VarModel

__all__ = [
    "ClassLabel",
    "Conditioning",
    "FamilyModel",
    "Prompt",
    "VarModel",
    "unregister_family",
    "EditCancelled",
    "EditError",
    "EditJob",
    "EditOptions",
    "EditRequest",
    "EditResult",
    "Editor",
    "EditorProtocol",
    "Limits",
    "Mask",
    "Mode",
    "ModelEntry",
    "ModelFamily",
    "ModelInfo",
    "ModelSwitch",
    "OptionSpec",
    "Progress",
    "SwitchError",
    "default_device",
    "free_memory",
    "get_mode",
    "list_models",
    "load_image",
    "load_model",
    "mode_names",
    "option_fields",
    "outpaint_canvas",
    "read_params",
    "register",
    "register_family",
    "registered",
    "save_png",
    "unregister",
]
