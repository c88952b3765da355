"""Zero-shot editing with VAR: masks onto every scale, teacher-forced sampling, canvas work.

picture + mask -> `canvas` (region, fill) -> `masks` (per-scale keep maps) -> `teacher_forcing`
(the one edit loop over scales) -> `canvas` (paste-back); `Editor` ties them together.
"""

from .canvas import load_image, outpaint_canvas
from .editor import EditOptions, Editor, EditResult, ModelInfo, available_models
from .errors import EditCancelled, EditError
from .metadata import read_params, save_png

__all__ = [
    "EditCancelled",
    "EditError",
    "EditOptions",
    "EditResult",
    "Editor",
    "ModelInfo",
    "available_models",
    "load_image",
    "outpaint_canvas",
    "read_params",
    "save_png",
]
