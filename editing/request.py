"""`EditRequest`: everything one edit needs, checked on construction, serialisable as JSON.

The studio, the CLI, the API and batch jobs all build one of these and hand it to `Editor.run`;
none of them talks to the model in its own way.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from .errors import EditError
from .metadata import carried
from .options import EditOptions, OptionSpec, check_value

MODES = ("inpaint", "outpaint", "edit_class", "generate")
SIDES = ("left", "right", "top", "bottom")
MAX_MARGIN = 16384  # pixels per side; the canvas limits of `Limits` apply on top
MAX_ZOOM_OUT = 8.0
PNG_PREFIX = "data:image/png;base64,"

Picture = str | Path | IO[bytes] | Image.Image | np.ndarray | bytes


def _whole(name: str, value: Any, low: int, high: int, optional: bool = False) -> int | None:
    return check_value(name, OptionSpec(int, name, "", low=low, high=high, nullable=optional), value, "Field")


def _picture_ok(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str | Path | Image.Image | np.ndarray | bytes | io.IOBase):
        raise EditError(f"'{name}' must be a picture: a file path, PNG bytes or an image, not {type(value).__name__}.")


@dataclass(frozen=True)
class EditRequest:
    """One edit. mode: inpaint / outpaint / edit_class / generate.

    image: the picture (path, PNG/JPEG bytes, PIL image or uint8 (H, W, 3) array), not for generate.
    mask: what to regenerate (white, any colour or opaque = regenerate; same size as image), for
    inpaint and edit_class. left/right/top/bottom: out-paint pixels per side; zoom_out: out-paint
    by shrinking the picture into the middle (> 1, replaces the margins). class_id: the class for
    edit_class and generate (generate without one is unconditional). name: names the output files.
    """

    mode: str
    image: Picture | None = None
    mask: Picture | None = None
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    zoom_out: float | None = None
    class_id: int | None = None
    options: EditOptions = field(default_factory=EditOptions)
    name: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EditError(f"Unknown mode {self.mode!r}; use one of {', '.join(MODES)}.")
        if not isinstance(self.options, EditOptions):
            raise EditError("'options' must be EditOptions (or a dict of options in from_dict).")
        _picture_ok("image", self.image)
        _picture_ok("mask", self.mask)
        for side in SIDES:
            object.__setattr__(self, side, _whole(side, getattr(self, side), 0, MAX_MARGIN))
        if self.zoom_out is not None:
            z = self.zoom_out
            if isinstance(z, bool) or not isinstance(z, int | float) or not math.isfinite(z) or not 1 <= z <= 8:
                raise EditError(f"'zoom_out' must be a number from 1 to {MAX_ZOOM_OUT:g}, not {z!r}.")
            object.__setattr__(self, "zoom_out", float(z) if z > 1 else None)
        object.__setattr__(self, "class_id", _whole("class_id", self.class_id, 0, 1 << 17, optional=True))
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise EditError("'name' must be a non-empty text.")
        if self.mode != "generate" and self.image is None:
            raise EditError(f"A {self.mode} request needs an image.")
        if self.mode in ("inpaint", "edit_class") and self.mask is None:
            raise EditError(f"A {self.mode} request needs a mask: white (or any colour) where to regenerate.")
        if self.mode == "edit_class" and self.class_id is None:
            raise EditError("A class edit needs a class_id.")
        if self.mode == "outpaint" and self.zoom_out is None and not any(getattr(self, s) for s in SIDES):
            raise EditError("Nothing to out-paint: give pixels for at least one side, or a zoom_out above 1.")

    @property
    def margins(self) -> dict[str, int]:
        return {side: getattr(self, side) for side in SIDES}

    def with_options(self, **changes: Any) -> EditRequest:
        """A copy with some options changed (checked)."""
        return dataclasses.replace(self, options=dataclasses.replace(self.options, **changes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data: pictures as file paths, or as PNG data URLs when they are in memory."""
        out: dict[str, Any] = {"mode": self.mode}
        for key in ("image", "mask"):
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value) if isinstance(value, str | Path) else _png_data_url(value)
        out.update({side: v for side, v in self.margins.items() if v})
        for key in ("zoom_out", "class_id", "name"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["options"] = self.options.to_dict()
        return out

    @classmethod
    def from_dict(
        cls, data: Any, defaults: EditOptions | None = None, base_dir: str | Path | None = None
    ) -> EditRequest:
        """A request from JSON-like data, every field checked (one sentence per mistake).

        Options may be nested under "options" or given at the top level; the ones not given keep
        `defaults` (the model's). Relative picture paths are read from `base_dir`.
        """
        if not isinstance(data, dict):
            raise EditError(f"An edit request must be a JSON object, not {type(data).__name__}.")
        own = {f.name for f in dataclasses.fields(cls)} - {"options"}
        option_names = {f.name for f in dataclasses.fields(EditOptions)}
        given_options: dict[str, Any] = {}
        if "options" in data:
            if not isinstance(data["options"], dict):
                raise EditError('"options" must be a JSON object such as {"seed": 1}.')
            given_options.update(data["options"])
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "options":
                continue
            if key in option_names:
                given_options[key] = value
            elif key in own:
                kwargs[key] = value
            else:
                known = ", ".join(sorted(own | {"options"}))
                raise EditError(f"Unknown field '{key}'; a request has {known} and the option names.")
        for key in ("image", "mask"):
            if key in kwargs and kwargs[key] is not None:
                kwargs[key] = _picture_from_json(key, kwargs[key], base_dir)
        if "mode" not in kwargs:
            raise EditError(f"The request has no 'mode'; use one of {', '.join(MODES)}.")
        for key in ("mode", "name"):
            if key in kwargs and kwargs[key] is not None and not isinstance(kwargs[key], str):
                raise EditError(f"'{key}' must be a text, not {kwargs[key]!r}.")
        return cls(**kwargs, options=EditOptions.from_dict(given_options, defaults))


def _png_data_url(value: Picture) -> str:
    if isinstance(value, bytes):
        data = value
    else:
        image = value if isinstance(value, Image.Image) else _array_image(value)
        buf = io.BytesIO()
        image.save(buf, format="PNG", **carried(image))
        data = buf.getvalue()
    return PNG_PREFIX + base64.b64encode(data).decode("ascii")


def _array_image(value: Any) -> Image.Image:
    if isinstance(value, np.ndarray):
        array = value
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif array.dtype != np.uint8:
            array = np.clip(np.asarray(array, np.float64) * (255 if array.max() <= 1 else 1), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    return Image.open(value)


def _picture_from_json(key: str, value: Any, base_dir: str | Path | None) -> Picture:
    """A path (relative ones from base_dir) or a data URL; pictures already in memory pass through."""
    if isinstance(value, Image.Image | np.ndarray | bytes):
        return value
    if not isinstance(value, str | Path):
        raise EditError(f"'{key}' must be a file path or a PNG data URL, not a {type(value).__name__}.")
    value = str(value)
    if value.startswith("data:"):
        try:
            return base64.b64decode(value.split(",", 1)[1], validate=True)
        except (IndexError, binascii.Error) as e:
            raise EditError(f"'{key}' is a data URL that does not hold base64 picture data.") from e
    path = Path(value)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path
