"""PNG files that carry the parameters that made them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

PARAMS_KEY = "var-edit"


def save_png(
    image: Image.Image, path: str | Path, params: dict[str, Any], overwrite: bool = False, compress_level: int = 6
) -> Path:
    """Write `image` as PNG with `params` as JSON in a text chunk; never half-written, never clobbering
    an existing file unless `overwrite`. compress_level: 0 (fast, big) to 9 (slow, small)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it.")
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMS_KEY, json.dumps(params, sort_keys=True))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        image.save(tmp, format="PNG", pnginfo=info, compress_level=compress_level)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_params(path: str | Path) -> dict[str, Any]:
    """The parameters stored by `save_png` ({} if none)."""
    with Image.open(path) as image:
        text = image.text.get(PARAMS_KEY) if hasattr(image, "text") else None
    return json.loads(text) if text else {}
