"""PNG files that carry the parameters that made them, and the input's ICC profile and EXIF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .files import written_whole

PARAMS_KEY = "var-edit"
KEPT_INFO = ("icc_profile", "exif")  # what an output keeps of its input (see canvas.kept_info)


def save_png(
    image: Image.Image, path: str | Path, params: dict[str, Any], overwrite: bool = False, compress_level: int = 6
) -> Path:
    """Write `image` as PNG with `params` as JSON in a text chunk, and the ICC profile and EXIF its
    `info` carries (results carry their input's); never half-written (see `written_whole`), never
    clobbering an existing file unless `overwrite`. compress_level: 0 (fast, big) to 9 (slow, small)."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMS_KEY, json.dumps(params, sort_keys=True))
    with written_whole(path, overwrite) as file:
        image.save(file, format="PNG", pnginfo=info, compress_level=compress_level, **carried(image))
    return path


def carried(image: Image.Image) -> dict[str, bytes]:
    """The ICC profile and EXIF `image` carries in its `info`, as arguments of PIL's save (PNG writes
    the profile by itself but the EXIF only when given)."""
    return {key: image.info[key] for key in KEPT_INFO if image.info.get(key)}


def read_params(path: str | Path) -> dict[str, Any]:
    """The parameters stored by `save_png`: {} if it holds none or is not a whole PNG (a file cut short)."""
    try:
        with Image.open(path) as image:
            text = image.text.get(PARAMS_KEY) if hasattr(image, "text") else None  # .text reads the whole file
        return json.loads(text) if text else {}
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return {}
